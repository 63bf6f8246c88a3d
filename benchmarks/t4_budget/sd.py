"""Stable Diffusion 1.5's architecture with random weights, float32 on the CPU (notebooks 07 and 09).

The T4 estimate of Stable Diffusion work (``measure.py``, ``kind="sd"``) divides a unit's CPU time
by :func:`unet_cfg_call`'s, the classifier-free-guidance UNet call whose fp16 time on a T4 is
published. Both must run the real network, so every part is built from SD 1.5's published
configs (``unet/config.json``, ``vae/config.json``, ``text_encoder/config.json``,
``scheduler/scheduler_config.json`` of ``stable-diffusion-v1-5/stable-diffusion-v1-5``), never
downloaded: random weights change no tensor's shape, so the time is the same.

:func:`sd15_pipeline` assembles them into a ``StableDiffusionPipeline`` as
``lib.guidance.stable_diffusion.load_stable_diffusion`` returns it (frozen, eval mode), and :func:`sd15_guide` passes
it to ``lib.guidance.stable_diffusion.sd_guide``: the very ``Guide`` the notebooks get from
``load_guide("stable diffusion")`` in full mode. The tokenizer is a ``CLIPTokenizer`` over the
byte-level alphabet only (CLIP's first 512 tokens, no merges; the vocabulary files are not
here): prompts become longer id sequences, which costs nothing measurable, and the text encoder
runs once per prompt anyway (the Guide caches embeddings).

Everything is built once per process (about 40 s and 4.3 GB on 2 cores) and kept in this module.
"""
from __future__ import annotations

from typing import Callable

import torch

# SD 1.5's published configs (keys at diffusers/transformers defaults are left out)
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                 norm_num_groups=32, norm_eps=1e-5, act_fn="silu", flip_sin_to_cos=True, freq_shift=0)
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, act_fn="silu",
                scaling_factor=0.18215)
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                 projection_dim=768, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
SD15_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)  # (its clip_sample: not a PNDM setting)

_BUILT: dict = {}  # "pipe", "guide": one of each per process


def _byte_tokenizer():
    """A ``CLIPTokenizer`` (77 tokens, padded and truncated like SD's) whose vocabulary is CLIP's
    byte-level alphabet (each byte's character, alone and word-final) plus its two special tokens."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())  # the 256 characters standing for bytes
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_pipeline(unet_config: dict = SD15_UNET, vae_config: dict = SD15_VAE, text_config: dict = SD15_TEXT,
                   seed: int = 0):
    """A ``StableDiffusionPipeline`` of these configs (default SD 1.5's) with random weights from
    ``seed``, float32 on the CPU, every network frozen and in eval mode, as ``load_stable_diffusion``
    returns one. ``benchmarks/sds_memory.py`` builds smaller ones of the same structure."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**unet_config)
        vae = AutoencoderKL(**vae_config)
        text = CLIPTextModel(CLIPTextConfig(**text_config))
    for net in (unet, vae, text):
        net.eval().requires_grad_(False)
    return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=_byte_tokenizer(), unet=unet,
                                   scheduler=PNDMScheduler(**SD15_SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def sd15_pipeline():
    """:func:`build_pipeline` of SD 1.5's architecture, built once per process."""
    if "pipe" not in _BUILT:
        _BUILT["pipe"] = build_pipeline()
    return _BUILT["pipe"]


def sd15_guide():
    """The notebooks' full-mode ``Guide`` (``sd_guide`` of :func:`sd15_pipeline`); one per process,
    so its text-embedding cache is shared (the text encoder is kept: notebooks 07 and 09 need
    different prompts)."""
    if "guide" not in _BUILT:
        from lib.guidance.stable_diffusion import sd_guide

        _BUILT["guide"] = sd_guide(sd15_pipeline())
    return _BUILT["guide"]


def unet_cfg_call() -> Callable[[], None]:
    """The anchor: one classifier-free-guidance UNet call without gradients, batch 2 (uncond and
    cond) of 64 x 64 latents (512 px) with (2, 77, 768) text states, at timestep 500."""
    unet = sd15_pipeline().unet
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 64, 64, generator=g)
    states = torch.randn(2, 77, 768, generator=g)
    t = torch.tensor([500, 500])

    def run() -> None:
        with torch.no_grad():
            unet(latents, t, encoder_hidden_states=states)

    return run
