"""One interface to "a diffusion model that guides": the course's offline prior or Stable Diffusion.

Score distillation needs four things from a model, and :class:`Guide` holds exactly those, so the
notebooks' optimisation code never asks which model it has:

- ``noise_pred_fn(x_t, t, states) -> eps_hat`` for :func:`lib.guidance.sds.sds_loss`;
- ``embed``: a :class:`lib.guidance.prompts.TextEmbeddingCache` (prompt list -> (B, L, D); "" is
  the unconditional prompt);
- ``alphas_cumprod`` (N,) of its noise schedule;
- the way between images and the model's space: ``to_model(images)`` takes renders (B, 3, H, W)
  in [0, 1] (any H = W) to the model's input (the offline prior: resized to its size, then
  ``2 x - 1``; Stable Diffusion: resized to 512 and VAE-encoded, differentiably), and
  ``from_model(x)`` goes back to pictures in [0, 1] (for x0-predictions and optimised latents).

``model_shape`` is the (C, h, w) of one sample in model space (3 x 32 x 32 for the offline prior,
4 x 64 x 64 latents for Stable Diffusion 1.5 at 512 px); optimising an image "directly" means
optimising a tensor of that shape.

Build one with :func:`lib.guidance.load.load_guide`, or from loaded parts with :func:`lib.prior.prior_guide` (offline)
or :func:`lib.guidance.stable_diffusion.sd_guide` (Colab).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import torch


@dataclass
class Guide:
    """See the module docstring. ``name`` is for printing."""

    name: str
    noise_pred_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    embed: Callable
    alphas_cumprod: torch.Tensor
    to_model: Callable[[torch.Tensor], torch.Tensor]
    from_model: Callable[[torch.Tensor], torch.Tensor]
    model_shape: Tuple[int, int, int]
    image_size: int


def check_images01(images: torch.Tensor, name: str = "images") -> None:
    """ValueError unless ``images`` is a (B, 3, H, W) float tensor with values in [0, 1]."""
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        got = f"{tuple(images.shape)} {images.dtype}" if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{name} must be a (B, 3, H, W) float tensor in [0, 1], got {got}")
    lo, hi = images.min().item(), images.max().item()
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(f"{name} must be in [0, 1] (renders, not 2 x - 1), got values in [{lo:.3g}, {hi:.3g}]")



def resize_nchw(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, size, size) by ``lib.data.images.resize_images``; unchanged if equal."""
    from lib.data.images import resize_images
    if images.shape[-2:] == (size, size):
        return images
    return resize_images(images.permute(0, 2, 3, 1), (size, size)).permute(0, 3, 1, 2)
