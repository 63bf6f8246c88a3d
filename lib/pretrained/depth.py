"""Monocular depth: what a single-image depth estimator gives, real (Depth Anything) or simulated.

A monocular network such as Depth Anything V2 predicts *relative inverse depth*: larger is nearer,
with an unknown scale and shift per image. The course compares like with like by normalising every
depth map the same way (:func:`relative_inverse_depth`): per image, over the foreground, to [0, 1]
(1 = the nearest pixel, 0 = the farthest), and 0 on the background.

- :func:`relative_inverse_depth`: the one normaliser (from true depth or from an estimator's output).
- :func:`depth_channel`: true depth (procedural data, smoke mode) -> the estimator-like channel,
  optionally with the errors an estimator makes (a per-image monotone distortion, pixel noise).
- :func:`load_depth_estimator` / :func:`estimate_inverse_depth`: a real estimator through ``transformers``
  (``AutoImageProcessor`` + ``AutoModelForDepthEstimation``; Colab, or a local folder saved with
  ``save_pretrained``). Nothing here downloads unless ``transformers`` is allowed to.

Depth maps are (..., H, W) float; images (B, H, W, 3) float in [0, 1], channels-last.

Example (CPU):
    >>> depth = torch.tensor([[[1.0, 2.0], [4.0, float("inf")]]])  # (1, 2, 2), inf = background
    >>> relative_inverse_depth(depth)
    tensor([[[1.0000, 0.3333],
             [0.0000, 0.0000]]])
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from lib.checks import shape_of
from lib.images import check_images
from lib.pretrained.hub import load_transformers_model

DEFAULT_MODELS = ("depth-anything/Depth-Anything-V2-Small-hf", "LiheYoung/depth-anything-small-hf")


def relative_inverse_depth(depth: torch.Tensor, mask: Optional[torch.Tensor] = None, inverse: bool = False,
                           eps: float = 1e-6) -> torch.Tensor:
    """Normalise depth maps the way a monocular estimator's output is read: per image, to [0, 1].

    ``x = 1 / depth`` (or ``depth`` itself when ``inverse``: an estimator's output is already
    inverse-like), then ``(x - min) / (max - min)`` over the image's ``mask`` pixels (1 = nearest),
    and 0 outside the mask. An image whose masked values are all equal gets 1 on its mask.

    Args:
        depth: (..., H, W) float: camera z (``inverse=False``) or relative inverse depth (``inverse=True``).
        mask: (..., H, W) bool foreground, or None: ``isfinite(depth) & (depth > 0)`` for true depth,
            every finite pixel for inverse depth.
        eps: the smallest range (max - min) divided by.
    Returns:
        (..., H, W) float32 in [0, 1].
    """
    if not torch.is_tensor(depth) or depth.ndim < 2:
        raise ValueError(f"`depth` must be a (..., H, W) tensor, got "
                         f"{shape_of(depth)}")
    depth = depth.float()
    valid = torch.isfinite(depth) & ((depth > 0) if not inverse else torch.ones_like(depth, dtype=torch.bool))
    if mask is not None:
        if mask.shape != depth.shape:
            raise ValueError(f"`mask` must match depth {tuple(depth.shape)}, got {tuple(mask.shape)}")
        valid = valid & mask.bool()
    x = depth if inverse else 1.0 / torch.where(valid, depth, torch.ones_like(depth))
    flat_x, flat_v = x.flatten(-2), valid.flatten(-2)
    lo = torch.where(flat_v, flat_x, torch.full_like(flat_x, float("inf"))).amin(-1)[..., None, None]
    hi = torch.where(flat_v, flat_x, torch.full_like(flat_x, float("-inf"))).amax(-1)[..., None, None]
    lo, hi = torch.where(torch.isfinite(lo), lo, 0.0), torch.where(torch.isfinite(hi), hi, 1.0)
    rng = hi - lo
    out = torch.where(rng > eps, (x - lo) / rng.clamp_min(eps), torch.ones_like(x))
    return torch.where(valid, out.clamp(0, 1), torch.zeros_like(out))


def depth_channel(depth: torch.Tensor, mask: Optional[torch.Tensor] = None, noise: float = 0.0,
                  distortion: float = 0.0, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """True depth -> what a monocular estimator would give: the 4th input channel of the depth experiment.

    :func:`relative_inverse_depth` of ``depth``; then, to mimic an estimator's errors, each image's
    values are raised to the power ``exp(distortion * n)`` (n ~ N(0, 1) per image: a monotone error of
    scale, order kept) and get ``noise * N(0, 1)`` per pixel, clamped to [0, 1]; the background stays 0.
    With ``noise = distortion = 0`` (the default) it is exact and needs no generator.

    Args:
        depth: (..., H, W) camera z, world units; background inf, 0 or NaN (or given by ``mask``).
        mask: (..., H, W) bool foreground, or None (finite, positive depth).
        noise, distortion: error sizes (>= 0). generator: draws them (CPU).
    Returns:
        (..., H, W) float32 in [0, 1].
    """
    if noise < 0 or distortion < 0:
        raise ValueError(f"noise and distortion must be >= 0, got {noise}, {distortion}")
    out = relative_inverse_depth(depth, mask)
    if noise == 0 and distortion == 0:
        return out
    fg = torch.isfinite(depth) & (depth > 0)
    if mask is not None:
        fg = fg & mask.bool()
    if distortion > 0:
        power = torch.exp(distortion * torch.randn(out.shape[:-2], generator=generator))[..., None, None]
        out = out.clamp_min(0) ** power.to(out)
    if noise > 0:
        out = out + noise * torch.randn(out.shape, generator=generator).to(out)
    return torch.where(fg, out.clamp(0, 1), torch.zeros_like(out))


def load_depth_estimator(model: Union[str, Sequence[str]] = DEFAULT_MODELS, device="cpu"):
    """Load a depth estimator with ``transformers``: (image processor, model in eval mode on ``device``).

    Args:
        model: a hub id or a local folder (``save_pretrained``), or several to try in order
            (default: Depth Anything V2 Small, then V1 Small).
    Raises:
        RuntimeError listing every id tried and why it failed (offline, unknown id, no transformers).
    """
    hint = ("Download the model once with network access (or save_pretrained it into a folder and pass the "
            "folder), or run the depth experiment with the true depth channel (depth_input='relative').")
    return load_transformers_model(model, "AutoImageProcessor", "AutoModelForDepthEstimation", "a depth estimator",
                                   hint, device)


@torch.no_grad()
def estimate_inverse_depth(images: torch.Tensor, model=DEFAULT_MODELS, device="cpu", batch_size: int = 8,
                           mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Monocular relative inverse depth of images, normalised by :func:`relative_inverse_depth`.

    Args:
        images: (B, H, W, 3) float in [0, 1], channels-last.
        model: hub id(s) / folder(s) for :func:`load_depth_estimator`, or its (processor, model) pair
            (load once, call many times).
        device: where the network runs. batch_size: images per forward pass.
        mask: (B, H, W) bool foreground to normalise over (0 outside), or None (the whole image).
    Returns:
        (B, H, W) float32 in [0, 1], on the CPU: the network's output resized (bilinear) to H x W.
    """
    check_images(images, "estimate_inverse_depth: `images`", batch="B")
    loaded = isinstance(model, tuple) and len(model) == 2 and not isinstance(model[0], str)  # not a tuple of ids
    processor, net = model if loaded else load_depth_estimator(model, device)
    dev = next(net.parameters()).device
    h, w = images.shape[1:3]
    out = []
    for chunk in images.float().clamp(0, 1).split(batch_size):
        pixels = processor(images=list(chunk.permute(0, 3, 1, 2)), do_rescale=False, return_tensors="pt")
        pred = net(pixel_values=pixels["pixel_values"].to(dev)).predicted_depth  # (b, h', w')
        out.append(F.interpolate(pred[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)[:, 0].cpu())
    return relative_inverse_depth(torch.cat(out), mask, inverse=True)
