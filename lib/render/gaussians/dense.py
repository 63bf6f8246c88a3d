"""The slow oracle of the tile rasteriser: every Gaussian at every pixel, plain autograd.

For each image, the visible Gaussians are sorted front to back and evaluated at all H x W pixels
(an (N, H, W) tensor: tests and benchmarks only). A Gaussian may touch pixel p only where p's
tile overlaps its box ``means2d ± radius`` (the tile rasteriser's support rule, tested here per
pixel), so the two rasterisers agree up to float rounding. Compositing follows the 3DGS loop's
rules written with ``cumprod``: see :mod:`lib.render.gaussians.raster`.
"""
from __future__ import annotations

from typing import Optional

import torch

from lib.render.gaussians.common import (ALPHA_MAX, ALPHA_MIN, T_MIN, depth_ranks, finish_outputs,
                                         flatten_splats, tile_ranges)


def rasterize_dense(means2d: torch.Tensor, conics: torch.Tensor, colors: torch.Tensor,
                    opacities: torch.Tensor, depths: torch.Tensor, radii: torch.Tensor, width: int,
                    height: int, tile_size: int = 16, background: Optional[torch.Tensor] = None):
    """Same arguments and outputs as :func:`lib.render.gaussians.rasterize_tiles` (slow, exact)."""
    s = flatten_splats(means2d, conics, colors, opacities, depths, radii, width, height, background)
    I, N = s.depths.shape
    dt, dev = s.means2d.dtype, s.means2d.device
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    x0, x1, y0, y1 = tile_ranges(s.means2d, s.radii, tile_size, tiles_x, tiles_y)  # (I, N)
    ranks = depth_ranks(s.depths)
    jj, ii = torch.meshgrid(torch.arange(width, device=dev), torch.arange(height, device=dev), indexing="xy")
    px, py = (jj + 0.5).reshape(-1).to(dt), (ii + 0.5).reshape(-1).to(dt)  # (H*W,) row-major
    tx, ty = (jj // tile_size).reshape(-1), (ii // tile_size).reshape(-1)
    accums, trans = [], []
    for i in range(I):
        order = torch.argsort(ranks[i])  # front to back
        order = order[(s.radii[i] > 0)[order]]
        support = ((x0[i, order, None] <= tx) & (tx < x1[i, order, None])
                   & (y0[i, order, None] <= ty) & (ty < y1[i, order, None]))  # (n, H*W)
        m, con = s.means2d[i, order], s.conics[i, order]
        dx = m[:, 0:1] - px
        dy = m[:, 1:2] - py
        power = -0.5 * (con[:, 0:1] * dx ** 2 + con[:, 2:3] * dy ** 2) - con[:, 1:2] * dx * dy
        alpha = torch.clamp(s.opacities[i, order, None] * torch.exp(power), max=ALPHA_MAX)
        skip = ~support | (power > 0) | (alpha < ALPHA_MIN)
        alpha = torch.where(skip, torch.zeros_like(alpha), alpha)
        t_after = torch.cumprod(1 - alpha, dim=0)  # transmittance behind each Gaussian
        t_before = torch.cat([torch.ones_like(t_after[:1]), t_after[:-1]], dim=0)
        added = (alpha > 0) & (t_after >= T_MIN)  # the stop rule: exclusive, and final
        w = torch.where(added, alpha * t_before, torch.zeros_like(alpha))
        feats = torch.cat([s.colors[i, order], s.depths[i, order, None]], dim=-1)  # (n, D + 1)
        accums.append(w.transpose(0, 1) @ feats)  # (H*W, D + 1)
        trans.append(torch.prod(torch.where(added, 1 - alpha, torch.ones_like(alpha)), dim=0))
    accum = torch.stack(accums).reshape(I, height, width, -1)
    t = torch.stack(trans).reshape(I, height, width)
    return finish_outputs(accum, t, s.background, s.image_shape)
