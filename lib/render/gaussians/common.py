"""What the tile rasteriser and its dense oracle share: input checks, tile boxes, depth order.

Both rasterisers give a Gaussian the same support: it may touch pixel p only if p's tile
(``tile_size`` x ``tile_size`` pixels, tiles numbered from the top-left corner) overlaps the
Gaussian's box ``means2d ± radius``. :func:`tile_ranges` computes that set of tiles once, and
:func:`depth_ranks` the depth order (ties broken by Gaussian index), so the two agree exactly.
The compositing constants of the original 3DGS are here too.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch

from lib.checks import shape_of

ALPHA_MAX = 0.99  # alpha = min(ALPHA_MAX, o * exp(power))
ALPHA_MIN = 1.0 / 255.0  # a Gaussian with alpha below this is skipped at that pixel
T_MIN = 1e-4  # a pixel stops before the Gaussian that would take its transmittance below this


class FlatSplats(NamedTuple):
    """Screen-space Gaussians of I = prod(batch) * C images, flattened to (I, N, ·)."""
    means2d: torch.Tensor  # (I, N, 2) pixels
    conics: torch.Tensor  # (I, N, 3)
    colors: torch.Tensor  # (I, N, D)
    opacities: torch.Tensor  # (I, N)
    depths: torch.Tensor  # (I, N)
    radii: torch.Tensor  # (I, N) int
    background: torch.Tensor  # (I, D)
    image_shape: Tuple[int, ...]  # the (..., C) to restore on the outputs


def flatten_splats(means2d, conics, colors, opacities, depths, radii, width, height,
                   background: Optional[torch.Tensor] = None) -> FlatSplats:
    """Check the rasteriser inputs (see ``rasterize_tiles``) and flatten them to (I, N, ·)."""
    if not torch.is_tensor(means2d) or means2d.dim() < 3 or means2d.shape[-1] != 2:
        raise ValueError(f"means2d must be (..., C, N, 2), got {shape_of(means2d)}")
    image_shape, N = tuple(means2d.shape[:-2]), means2d.shape[-2]
    lead = image_shape + (N,)
    for name, x, tail in (("conics", conics, (3,)), ("depths", depths, ()), ("radii", radii, ())):
        if not torch.is_tensor(x) or tuple(x.shape) != lead + tail:
            raise ValueError(f"{name} must be {lead + tail} (..., C, N{', 3' if tail else ''}) to match "
                             f"means2d {tuple(means2d.shape)}, got {shape_of(x)}")
    if not torch.is_tensor(colors) or colors.dim() < 2:
        raise ValueError(f"colors must be (..., C, N, D), got {shape_of(colors)}")
    D = colors.shape[-1]
    if tuple(colors.shape) == image_shape[:-1] + (N, D):  # shared by all cameras
        colors = colors.unsqueeze(-3)
    if tuple(colors.shape[:-1]) not in (lead, image_shape[:-1] + (1, N)):
        raise ValueError(f"colors must be {lead + (D,)} (..., C, N, D) or {image_shape[:-1] + (N, D)} "
                         f"(..., N, D), got {shape_of(colors)}")
    colors = colors.expand(lead + (D,))
    if not torch.is_tensor(opacities):
        raise ValueError(f"opacities must be a tensor (..., C, N) or (..., N), got {shape_of(opacities)}")
    if tuple(opacities.shape) == image_shape[:-1] + (N,):
        opacities = opacities.unsqueeze(-2)
    if tuple(opacities.shape) != lead and tuple(opacities.shape) != image_shape[:-1] + (1, N):
        raise ValueError(f"opacities must be {lead} (..., C, N) or {image_shape[:-1] + (N,)} (..., N), "
                         f"got {shape_of(opacities)}")
    opacities = opacities.expand(lead)
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"width and height must be positive, got {width} x {height}")
    I = 1
    for s in image_shape:
        I *= s
    dt, dev = means2d.dtype, means2d.device
    if background is None:
        bg = torch.zeros(I, D, dtype=dt, device=dev)
    else:
        if not torch.is_tensor(background):
            background = torch.as_tensor(background, dtype=dt, device=dev)
        if tuple(background.shape) == (D,):
            bg = background.to(dev, dt).expand(I, D)
        elif tuple(background.shape) == image_shape + (D,):
            bg = background.to(dev, dt).reshape(I, D)
        else:
            raise ValueError(f"background must be ({D},) or {image_shape + (D,)} (..., C, D), "
                             f"got {shape_of(background)}")
    return FlatSplats(means2d.reshape(I, N, 2), conics.reshape(I, N, 3), colors.reshape(I, N, D),
                      opacities.reshape(I, N), depths.reshape(I, N), radii.reshape(I, N), bg, image_shape)


@torch.no_grad()
def tile_ranges(means2d: torch.Tensor, radii: torch.Tensor, tile_size: int, tiles_x: int,
                tiles_y: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tiles overlapped by each Gaussian's box ``means2d ± radius``.

    Tile ``(tx, ty)`` covers pixels ``[tx s, (tx + 1) s) x [ty s, (ty + 1) s)`` (s = tile_size) and
    is overlapped when ``tx s < x + r`` and ``(tx + 1) s > x - r`` (same for y).

    Args:
        means2d: (..., 2) pixels; radii: (...) int, 0 = invisible.

    Returns:
        x0, x1, y0, y1: (...) int64, the tiles ``x0 <= tx < x1``, ``y0 <= ty < y1`` (clipped to the
        image's tiles; empty, ``x1 == x0``, where the radius is 0).
    """
    r = radii.to(means2d.dtype)
    x, y = means2d[..., 0], means2d[..., 1]
    x0 = torch.floor((x - r) / tile_size).clamp(0, tiles_x).long()
    x1 = torch.ceil((x + r) / tile_size).clamp(0, tiles_x).long()
    y0 = torch.floor((y - r) / tile_size).clamp(0, tiles_y).long()
    y1 = torch.ceil((y + r) / tile_size).clamp(0, tiles_y).long()
    visible = radii > 0
    x1 = torch.where(visible, torch.maximum(x1, x0), x0)
    y1 = torch.where(visible, torch.maximum(y1, y0), y0)
    return x0, x1, y0, y1


@torch.no_grad()
def depth_ranks(depths: torch.Tensor) -> torch.Tensor:
    """(I, N) rank of each Gaussian in its image's front-to-back order (ties: lower index first)."""
    order = torch.sort(depths, dim=-1, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(depths.shape[-1], device=depths.device).expand_as(order))
    return ranks


def finish_outputs(accum: torch.Tensor, transmittance: torch.Tensor, background: torch.Tensor,
                   image_shape: Tuple[int, ...]):
    """(I, H, W, D + 1) accumulated ``sum w (colour, z)`` and (I, H, W) final transmittance →
    ``(colors (..., C, H, W, D), depth (..., C, H, W, 1), alpha (..., C, H, W, 1))``."""
    D = accum.shape[-1] - 1
    H, W = accum.shape[1:3]
    T = transmittance.unsqueeze(-1)
    colors = accum[..., :D] + T * background[:, None, None, :]
    alpha = 1.0 - T
    covered = alpha > 0
    depth = torch.where(covered, accum[..., D:] / torch.where(covered, alpha, torch.ones_like(alpha)),
                        torch.zeros_like(alpha))
    return (colors.reshape(image_shape + (H, W, D)), depth.reshape(image_shape + (H, W, 1)),
            alpha.reshape(image_shape + (H, W, 1)))
