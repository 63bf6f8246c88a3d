"""The offline prior of notebook 07 as a guide: its text encoder, its noise predictor and its
``lib.guidance.guide.Guide`` (the model is ``lib.models.text_prior``; its data and training are
``lib.methods.offline_prior``; the committed weights are ``assets/prior``, made by
``tools/train_prior.py``).

The prior is a small pixel-space conditional diffusion model (diffusers ``UNet2DConditionModel`` +
``DDPMScheduler``) over the course's procedural shapes, prompted "a <class>, <view> view"
(``lib.prompts``). Its model space is (3, S, S) images in [-1, 1] (white = 1), the
diffusers convention; its Guide takes renders in [0, 1] of any size.
"""
from __future__ import annotations

import torch

from lib.fileio import ASSETS_DIR
from lib.guidance.guide import Guide
from lib.images import from_nchw, to_nchw
from lib.guidance.guide import TextEmbeddingCache
from lib.models.text_prior import prompt_words

PRIOR_DIR = ASSETS_DIR / "prior"  # the committed prior (tools/train_prior.py; sha256 in assets/MANIFEST)


def prior_text_encode_fn(tokenizer, text_encoder):
    """``encode(prompts: list[str]) -> (B, L, D)`` text states of the prior, no grad, for
    ``lib.guidance.guide.TextEmbeddingCache`` / ``sds_loss``; "" is the unconditional (all-pad) prompt."""
    device = next(text_encoder.parameters()).device

    def encode(prompts) -> torch.Tensor:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        unknown = sorted({w for p in prompts for w in prompt_words(p) if w not in tokenizer.ids})
        if unknown:  # the word tokenizer would map them to <unk>: the prior would not know what was asked
            raise ValueError(f"the offline prior does not know the words {unknown}; its vocabulary is "
                             f"{tokenizer.vocabulary} (e.g. 'a chair, side view')")
        ids = torch.cat([tokenizer.unconditional(1) if not p.strip() else tokenizer(p) for p in prompts])
        with torch.no_grad():
            return text_encoder(ids.to(device))
    return encode


def prior_noise_pred_fn(unet):
    """``noise_pred_fn(x_t (B, 3, S, S), t (B,), states (B, L, D)) -> eps_hat`` for ``lib.guidance.sds.sds_loss``;
    S is the UNet's ``sample_size`` (ValueError for any other shape)."""
    size = int(unet.config.sample_size)

    def noise_pred(x_t: torch.Tensor, t: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        if x_t.ndim != 4 or tuple(x_t.shape[1:]) != (3, size, size):
            raise ValueError(f"the offline prior takes (B, 3, {size}, {size}) images in [-1, 1], got "
                             f"{tuple(x_t.shape)} (render at {size} px, or resize with Guide.to_model)")
        return unet(x_t, t, encoder_hidden_states=states).sample
    return noise_pred


def prior_guide(unet, scheduler, tokenizer, text_encoder):
    """The offline prior as a ``lib.guidance.guide.Guide``: renders (B, H, W, 3) in [0, 1] of any size are
    resized to the prior's ``S`` px and mapped to ``2 x - 1``; model space is (3, S, S) pixels."""
    size = int(unet.config.sample_size)

    def to_model(images: torch.Tensor) -> torch.Tensor:
        return 2 * to_nchw(images, size, "images for the offline prior") - 1

    def from_model(x: torch.Tensor) -> torch.Tensor:
        return from_nchw(((x.float() + 1) / 2).clamp(0, 1))

    device = next(unet.parameters()).device
    return Guide("offline prior", prior_noise_pred_fn(unet), TextEmbeddingCache(prior_text_encode_fn(tokenizer, text_encoder)),
                 scheduler.alphas_cumprod.to(device), to_model, from_model, (3, size, size), size)
