"""Tile-based rasterisation of screen-space Gaussians in pure torch (CPU or GPU).

The algorithm of 3D Gaussian splatting (Kerbl et al. 2023), vectorised over tiles:

1. **Binning.** The image is cut into ``tile_size`` x ``tile_size`` tiles. Every visible Gaussian
   (radius > 0) is listed once per tile that its box ``means2d ± radius`` overlaps
   (:func:`~lib.render.gaussians.common.tile_ranges`).
2. **Sorting.** The (image, tile, Gaussian) intersections are sorted by the key
   ``(image * n_tiles + tile, depth)``, so each tile's Gaussians are contiguous, front to back.
3. **Compositing.** Tiles are processed in chunks: a chunk gathers a padded block of
   (tiles, K, tile_size^2) values (K = the chunk's largest Gaussian count; tiles are sorted by
   count so the padding stays small, and the block's size is bounded by ``max_chunk_elements``).
   At pixel p, Gaussian k (front to back) has ``power = -(a dx^2 + c dy^2)/2 - b dx dy``
   (``(a, b, c)`` the conic, ``(dx, dy)`` = mean - pixel centre) and
   ``alpha = min(0.99, o exp(power))``; it is skipped if ``power > 0`` or ``alpha < 1/255``.
   With ``T_k`` the transmittance in front of it, the pixel stops before the first Gaussian with
   ``T_k (1 - alpha_k) < 1e-4`` (that one is not added). Colour ``sum alpha_k T_k c_k + T bg``,
   alpha ``1 - T``, depth ``sum alpha_k T_k z_k / (1 - T)``.
   The stop rule needs no loop: ``T_incl = cumprod(1 - alpha)`` is non-increasing, so the
   contributing Gaussians are exactly those with ``T_incl >= 1e-4``.

The compositing of a chunk is a ``torch.autograd.Function`` whose backward recomputes the chunk
(so memory stays bounded by one chunk) and applies the 3DGS gradient formulas; the binning
indices carry no gradient, everything else (means2d, conics, colours, opacities, depths) does.
No (N x H x W) tensor is ever built.

Example:
    >>> means2d = torch.tensor([[[8.0, 8.0], [20.0, 4.0]]])  # (C=1, N=2, 2)
    >>> conics = torch.tensor([[[0.1, 0.0, 0.1], [0.2, 0.0, 0.2]]])
    >>> colors = torch.eye(3)[None, :2]  # red, green
    >>> opacities = torch.tensor([[0.8, 0.5]])
    >>> depths = torch.tensor([[1.0, 2.0]])
    >>> radii = torch.tensor([[10, 7]], dtype=torch.int32)
    >>> rgb, depth, alpha = rasterize_tiles(means2d, conics, colors, opacities, depths, radii, 24, 16)
    >>> rgb.shape, depth.shape, alpha.shape
    (torch.Size([1, 16, 24, 3]), torch.Size([1, 16, 24, 1]), torch.Size([1, 16, 24, 1]))
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from lib.render.gaussians.common import (ALPHA_MAX, ALPHA_MIN, T_MIN, depth_ranks, finish_outputs,
                                         flatten_splats, tile_ranges)

MAX_CHUNK_ELEMENTS = 1 << 20  # default bound on tiles * K * tile_size^2 per chunk (4 MiB float32)
SAVE_ELEMENTS = 1 << 25  # backward reuses the forward's intermediates (~21 bytes per element) up to
# this many (tile, Gaussian, pixel) elements per call, and recomputes chunks beyond it


def _composite_parts(px, py, means, conics, opac):
    """Forward pass of one chunk, keeping what backward needs.

    Args: px, py (T, P) pixel centres; means (T, K, 2); conics (T, K, 3); opac (T, K) (0 = padding).

    Returns:
        dx, dy: (T, K, P) mean - pixel; e: (T, K, P) exp(power); alpha: (T, K, P) (0 where skipped);
        t_bc: (T, K, P) transmittance in front of each Gaussian where it contributes, else 0;
        gate: (T, K, P) bool, contributes and alpha not clamped at 0.99 (where alpha has a gradient);
        t_final: (T, P) transmittance behind the pixel's last contributing Gaussian.
    """
    dx = means[..., 0:1] - px.unsqueeze(1)  # (T, K, P)
    dy = means[..., 1:2] - py.unsqueeze(1)
    ha, nb, hc = -0.5 * conics[..., 0:1], -conics[..., 1:2], -0.5 * conics[..., 2:3]
    power = torch.addcmul(nb * dy, ha, dx).mul_(dx).addcmul_(hc * dy, dy)  # -(a dx² + c dy²)/2 - b dx dy
    skip = power > 0
    e = power.exp_()  # reuses power's memory
    raw = opac.unsqueeze(-1) * e
    unclamped = raw < ALPHA_MAX
    alpha = raw.clamp_max_(ALPHA_MAX)
    skip |= alpha < ALPHA_MIN
    alpha.masked_fill_(skip, 0.0)
    one_minus = 1.0 - alpha
    t_incl = torch.cumprod(one_minus, dim=1)
    contrib = t_incl >= T_MIN  # non-increasing: the stop rule (alpha = 0 entries add nothing)
    t_bc = t_incl.div_(one_minus).mul_(contrib)  # transmittance in front, 0 after the stop
    gate = contrib.logical_and_(unclamped).logical_and_(~skip)
    return dx, dy, e, alpha, t_bc, gate


class _CompositeChunk(torch.autograd.Function):
    """Front-to-back compositing of a chunk of tiles (see the module docstring).

    Backward uses the forward's (T, K, P) intermediates when ``save`` is True, else recomputes them
    (memory bounded by one chunk).
    """

    @staticmethod
    def forward(ctx, px, py, means, conics, opac, feats, save):
        # px, py (T, P); means (T, K, 2); conics (T, K, 3); opac (T, K); feats (T, K, F)
        dx, dy, e, alpha, t_bc, gate = _composite_parts(px, py, means, conics, opac)
        w = alpha * t_bc
        accum = torch.bmm(w.transpose(1, 2), feats)  # (T, P, F)
        t_final = 1.0 - w.sum(dim=1)  # = prod over contributing Gaussians of (1 - alpha)
        ctx.save = save
        if save:
            ctx.save_for_backward(conics, opac, feats, dx, dy, e, alpha, t_bc, gate, t_final)
        else:
            ctx.save_for_backward(px, py, means, conics, opac, feats, t_final)
        return accum, t_final

    @staticmethod
    def backward(ctx, g_accum, g_t):
        if ctx.save:
            conics, opac, feats, dx, dy, e, alpha, t_bc, gate, t_final = ctx.saved_tensors
        else:
            px, py, means, conics, opac, feats, t_final = ctx.saved_tensors
            dx, dy, e, alpha, t_bc, gate = _composite_parts(px, py, means, conics, opac)
        w = alpha * t_bc
        g_feats = torch.bmm(w, g_accum)  # (T, K, F)
        u = torch.bmm(feats, g_accum.transpose(1, 2))  # (T, K, P): feats_k . g_p
        wu = w.mul_(u)
        behind = torch.cumsum(wu, dim=1).neg_().add_(wu.sum(dim=1, keepdim=True))  # sum_{j>k} w_j u_j
        # d out / d alpha_k = T_k u_k - (sum_{j>k} w_j u_j + T_final g_T) / (1 - alpha_k)
        behind.add_((t_final * g_t).unsqueeze(1)).div_(1.0 - alpha)
        g_alpha = u.mul_(t_bc).sub_(behind)
        g_raw = g_alpha.mul_(gate)  # alpha = o * e where it contributes unclamped
        g_opac = (g_raw * e).sum(dim=-1)
        g_pow = g_raw.mul_(e).mul_(opac.unsqueeze(-1))  # d alpha / d power = alpha
        gx, gy = g_pow * dx, g_pow.mul_(dy)
        s_x, s_y = gx.sum(-1), gy.sum(-1)
        s_xx, s_xy, s_yy = (gx * dx).sum(-1), gx.mul_(dy).sum(-1), gy.mul_(dy).sum(-1)
        a, b, c = conics.unbind(-1)
        g_means = torch.stack([-(a * s_x + b * s_y), -(c * s_y + b * s_x)], dim=-1)
        g_conics = torch.stack([-0.5 * s_xx, -s_xy, -0.5 * s_yy], dim=-1)
        return None, None, g_means, g_conics, g_opac, g_feats, None


@torch.no_grad()
def bin_gaussians(means2d: torch.Tensor, depths: torch.Tensor, radii: torch.Tensor, width: int,
                  height: int, tile_size: int = 16) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sorted (image, tile) → Gaussian intersections.

    Args:
        means2d: (I, N, 2) pixels; depths: (I, N); radii: (I, N) int (0 = invisible).
        width, height: image size; tile_size: tile side in pixels.

    Returns:
        gauss_ids: (M,) int64 flat Gaussian index ``image * N + n`` of each intersection, sorted by
            (image * n_tiles + tile, depth); tile_counts: (I * n_tiles,) int64 intersections per
            tile; tile_starts: (I * n_tiles,) int64 offset of each tile's first intersection.
    """
    I, N = depths.shape
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    n_tiles = tiles_x * tiles_y
    x0, x1, y0, y1 = tile_ranges(means2d, radii, tile_size, tiles_x, tiles_y)  # (I, N)
    counts = ((x1 - x0) * (y1 - y0)).reshape(-1)
    hit = torch.nonzero(counts).squeeze(1)  # Gaussians touching at least one tile
    cnt = counts[hit]
    gid = torch.repeat_interleave(hit, cnt)  # (M,)
    first = torch.cumsum(cnt, 0) - cnt
    local = torch.arange(gid.shape[0], device=gid.device) - torch.repeat_interleave(first, cnt)
    span = (x1 - x0).reshape(-1)[gid]
    tx = x0.reshape(-1)[gid] + local % span
    ty = y0.reshape(-1)[gid] + torch.div(local, span, rounding_mode="floor")
    tile = torch.div(gid, N, rounding_mode="floor") * n_tiles + ty * tiles_x + tx
    key = tile * N + depth_ranks(depths).reshape(-1)[gid]
    order = torch.sort(key).indices
    gauss_ids = gid[order]
    tile_counts = torch.bincount(tile, minlength=I * n_tiles)
    tile_starts = torch.cumsum(tile_counts, 0) - tile_counts
    return gauss_ids, tile_counts, tile_starts


def rasterize_tiles(means2d: torch.Tensor, conics: torch.Tensor, colors: torch.Tensor,
                    opacities: torch.Tensor, depths: torch.Tensor, radii: torch.Tensor, width: int,
                    height: int, tile_size: int = 16, background: Optional[torch.Tensor] = None,
                    max_chunk_elements: int = MAX_CHUNK_ELEMENTS):
    """Render screen-space Gaussians with the tile rasteriser (see the module docstring).

    Args:
        means2d: (..., C, N, 2) pixel coordinates (pixel centres at +0.5).
        conics: (..., C, N, 3) ``(a, b, c)`` of the inverse 2D covariance.
        colors: (..., C, N, D) (or (..., N, D), shared by the cameras) any feature channels.
        opacities: (..., C, N) or (..., N), in [0, 1].
        depths: (..., C, N) camera z (sort key, and the depth output).
        radii: (..., C, N) int box radius in pixels, 0 = skip the Gaussian.
        width, height: image size in pixels (any, not only multiples of ``tile_size``).
        tile_size: tile side in pixels.
        background: (D,) or (..., C, D) colour behind the Gaussians; None = 0.
        max_chunk_elements: bound on tiles * K * tile_size^2 per chunk (memory vs speed).

    Returns:
        colors (..., C, H, W, D); depth (..., C, H, W, 1) expected depth ``sum w z / sum w`` (0 where
        alpha is 0); alpha (..., C, H, W, 1). Differentiable w.r.t. every float input.
    """
    s = flatten_splats(means2d, conics, colors, opacities, depths, radii, width, height, background)
    I, N = s.depths.shape
    D = s.colors.shape[-1]
    dt, dev = s.means2d.dtype, s.means2d.device
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    n_tiles, P = tiles_x * tiles_y, tile_size * tile_size
    gauss_ids, tile_counts, tile_starts = bin_gaussians(s.means2d, s.depths, s.radii, width, height,
                                                        tile_size)
    flat_means = s.means2d.reshape(I * N, 2)
    flat_conics = s.conics.reshape(I * N, 3)
    flat_opac = s.opacities.reshape(I * N)
    flat_feats = torch.cat([s.colors, s.depths.unsqueeze(-1)], dim=-1).reshape(I * N, D + 1)
    # Non-empty tiles, most crowded first, cut into chunks of bounded size.
    counts_sorted, tiles_sorted = torch.sort(tile_counts, descending=True)
    n_busy = int((counts_sorted > 0).sum())
    counts_list = counts_sorted[:n_busy].tolist()
    lx = torch.arange(P, device=dev) % tile_size
    ly = torch.div(torch.arange(P, device=dev), tile_size, rounding_mode="floor")
    accums, trans = [], []
    i = saved = 0
    while i < n_busy:
        K = counts_list[i]
        n = max(1, min(n_busy - i, max_chunk_elements // (K * P)))
        tid = tiles_sorted[i:i + n]
        ks = torch.arange(K, device=dev)
        valid = ks < tile_counts[tid].unsqueeze(1)  # (n, K)
        idx = torch.where(valid, tile_starts[tid].unsqueeze(1) + ks, torch.zeros_like(ks))
        g = gauss_ids[idx]  # (n, K)
        t_local = tid % n_tiles
        px = (t_local % tiles_x * tile_size).unsqueeze(1) + lx + 0.5  # (n, P)
        py = (torch.div(t_local, tiles_x, rounding_mode="floor") * tile_size).unsqueeze(1) + ly + 0.5
        save = saved + n * K * P <= SAVE_ELEMENTS
        saved += n * K * P if save else 0
        accum, t_final = _CompositeChunk.apply(px.to(dt), py.to(dt), flat_means[g], flat_conics[g],
                                               flat_opac[g] * valid, flat_feats[g], save)
        accums.append(accum)
        trans.append(t_final)
        i += n
    busy = tiles_sorted[:n_busy]
    accum_all = torch.zeros(I * n_tiles, P, D + 1, dtype=dt, device=dev)
    t_all = torch.ones(I * n_tiles, P, dtype=dt, device=dev)
    if n_busy:
        accum_all = accum_all.index_copy(0, busy, torch.cat(accums))
        t_all = t_all.index_copy(0, busy, torch.cat(trans))

    def to_image(x):  # (I * n_tiles, P, ...) -> (I, H, W, ...)
        x = x.reshape((I, tiles_y, tiles_x, tile_size, tile_size) + x.shape[2:])
        x = x.transpose(2, 3).reshape((I, tiles_y * tile_size, tiles_x * tile_size) + x.shape[5:])
        return x[:, :height, :width]

    return finish_outputs(to_image(accum_all), to_image(t_all), s.background, s.image_shape)
