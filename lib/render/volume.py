"""Volume rendering, written out in pure PyTorch (CPU and GPU; no PyTorch3D, no nerfacc needed).

A ray meets a medium of density ``sigma`` (1 / world unit) and colour ``c`` sampled at distances
``t_1 < ... < t_S``. Sample ``i`` stands for the interval ``[t_i, t_i + delta_i)``; here
``delta_i = t_{i+1} - t_i`` and the last interval ends at ``far``. Then

- opacity of interval i:       ``alpha_i = 1 - exp(-sigma_i * delta_i)``
- transmittance before it:      ``T_i = exp(-sum_{j<i} sigma_j delta_j) = prod_{j<i} (1 - alpha_j)``
- weight (light from it):       ``w_i = T_i * alpha_i``
- colour, distance, opacity:    ``C = sum w_i c_i (+ (1 - sum w_i) * background)``,
                                ``D = sum w_i t_i``, ``A = sum w_i``.

``D`` is the expected *distance along the ray* (ray length, with unit directions), weighted by
how much each sample is seen; it is *not* normalised by ``A``, so empty rays get 0. The renders
call it ``distance``: in this course ``depth`` always means camera z. For camera z multiply by :func:`lib.rays.ray_z_scale` (or render rays made with
``get_rays(..., normalize=False)``). Everything here is differentiable in ``sigma``, the colours
and ``t``. The same formulas are in nerfacc's ``render_weight_from_density`` and
``accumulate_along_rays``; ``tests/test_rays_volume.py`` checks parity on random inputs.

The field is a callback, so the renderer owns no model:
``field_fn(points (..., 3), dirs (..., 3)) -> (sigma (...,), rgb (..., 3))``.

Example:
    >>> sigma, t = torch.full((2, 8), 2.0), torch.linspace(2, 6, 8).expand(2, 8)
    >>> weights, trans = render_weights(sigma, t, far=6.0)
    >>> accumulate(weights).shape, accumulate(weights, torch.rand(2, 8, 3)).shape
    (torch.Size([2, 1]), torch.Size([2, 3]))
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch

from lib.images import background_colour
from lib.rays import Bound, ray_bound, check_rays, get_rays, ray_points, sample_stratified

FieldFn = Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


def deltas_from_t(t: torch.Tensor, far: Bound = None) -> torch.Tensor:
    """(R, S) interval lengths ``t_{i+1} - t_i``; the last interval ends at ``far`` (float or (R,)),
    or, without ``far``, has the same length as the one before it."""
    if t.ndim != 2:
        raise ValueError(f"`t` must be (R, S), got {tuple(t.shape)}")
    if far is None:
        if t.shape[1] < 2:
            raise ValueError("with a single sample per ray, pass `far` (or `deltas`) to size its interval")
        last = t[:, -1:] - t[:, -2:-1]
    else:
        last = ray_bound(far, t.shape[0], "far", t) - t[:, -1:]
    deltas = torch.cat([t[:, 1:] - t[:, :-1], last], -1)
    if (deltas < 0).any():
        raise ValueError("`t` must be sorted along each ray and not beyond `far` (a negative interval was found)")
    return deltas


def render_weights(sigma: torch.Tensor, t: torch.Tensor = None, far: Bound = None,
                   deltas: torch.Tensor = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Compositing weights of samples along rays, from their densities.

    Args:
        sigma: (R, S) non-negative densities, 1 / world unit.
        t: (R, S) sorted sample distances; intervals come from :func:`deltas_from_t`.
        far: float or (R,), where the last interval ends (see :func:`deltas_from_t`).
        deltas: (R, S) interval lengths, instead of ``t`` and ``far``.
    Returns:
        weights: (R, S) ``T_i * alpha_i``; they sum to the opacity of the ray (<= 1).
        transmittance: (R, S) ``T_i``, the fraction of light that reaches sample i unblocked.
    """
    if deltas is None:
        if t is None:
            raise ValueError("render_weights needs `t` (with optional `far`) or `deltas`")
        deltas = deltas_from_t(t, far)
    if sigma.ndim != 2 or deltas.shape != sigma.shape:
        raise ValueError(f"`sigma` must be (R, S) and match the intervals {tuple(deltas.shape)}, "
                         f"got {tuple(sigma.shape)}")
    tau = sigma * deltas  # optical thickness of each interval
    # exclusive cumulative sum: T_i depends on the intervals strictly before i
    tau_before = torch.cumsum(tau, -1) - tau
    transmittance = torch.exp(-tau_before)
    alpha = 1.0 - torch.exp(-tau)
    return transmittance * alpha, transmittance


def accumulate(weights: torch.Tensor, values: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Weighted sum along each ray.

    Args:
        weights: (R, S). values: (R, S, C), or None to sum the weights (the opacity).
    Returns:
        (R, C), or (R, 1) when ``values`` is None.
    """
    if weights.ndim != 2:
        raise ValueError(f"`weights` must be (R, S), got {tuple(weights.shape)}")
    if values is None:
        return weights.sum(-1, keepdim=True)
    if values.shape[:2] != weights.shape or values.ndim != 3:
        raise ValueError(f"`values` must be (R, S, C) with (R, S) = {tuple(weights.shape)}, "
                         f"got {tuple(values.shape)}")
    return (weights[..., None] * values).sum(-2)


def _background(background, n: int, like: torch.Tensor) -> Optional[torch.Tensor]:
    bg = background_colour(background, like)
    if bg is None:
        return None
    if bg.shape not in ((3,), (n, 3)):
        raise ValueError(f"`background` must be a float, (3,) or (R, 3) with R={n}, got {tuple(bg.shape)}")
    return bg.expand(n, 3)


def composite(sigma: torch.Tensor, rgb: torch.Tensor, t: torch.Tensor, far: Bound = None,
              background=None, deltas: torch.Tensor = None) -> dict:
    """Turn per-sample densities and colours into per-ray colour, distance and opacity.

    Args:
        sigma: (R, S). rgb: (R, S, 3) in [0, 1]. t: (R, S) sorted distances.
        far: end of the last interval (see :func:`deltas_from_t`). deltas: (R, S) instead of far.
        background: None (nothing behind the scene: black), a float, (3,) or (R, 3) colour
            seen through the transparent part ``1 - opacity`` of each ray.
    Returns:
        dict with rgb (R, 3), distance (R,) (expected distance along the ray, ``sum w t``: not
        divided by opacity, and not camera z: :func:`lib.rays.ray_z_scale` converts), opacity (R,),
        weights (R, S), transmittance (R, S), t (R, S).
    """
    weights, trans = render_weights(sigma, t, far, deltas)
    color = accumulate(weights, rgb)
    opacity = weights.sum(-1)
    bg = _background(background, sigma.shape[0], color)
    if bg is not None:
        color = color + (1.0 - opacity[:, None]) * bg
    distance = (weights * t).sum(-1)
    return {"rgb": color, "distance": distance, "opacity": opacity, "weights": weights,
            "transmittance": trans, "t": t}


def volume_render(field_fn: FieldFn, origins: torch.Tensor, directions: torch.Tensor, near: Bound,
                  far: Bound, n_samples: int, generator: torch.Generator = None, background=None,
                  perturb: bool = True, t: torch.Tensor = None, mask: torch.Tensor = None,
                  deltas: torch.Tensor = None) -> dict:
    """Render rays through a radiance field: sample, query the field, composite.

    Args:
        field_fn: ``(points (R, S, 3), dirs (R, S, 3)) -> (sigma (R, S), rgb (R, S, 3))``; with
            ``mask`` it is called on the kept samples only, as (1, M, 3) arrays.
        origins, directions: (R, 3) world; unit directions make ``t`` and distance ray lengths.
        near, far: floats or (R,) tensors bounding the samples.
        n_samples: S, for :func:`lib.rays.sample_stratified` (ignored when ``t`` is given).
        generator: for the stratified jitter. perturb: jitter (training) or bin centres (eval).
        background: see :func:`composite`.
        t: (R, S) precomputed sample distances (e.g. from an occupancy grid), instead of sampling.
        mask: (R, S) bool, samples worth evaluating; the others get density 0 (empty space).
        deltas: (R, S) interval lengths, instead of deriving them from ``t`` and ``far``.
    Returns:
        dict of :func:`composite` plus ``n_evals``, the number of field evaluations.
    """
    check_rays(origins, directions)
    if t is None:
        t = sample_stratified(origins, directions, near, far, n_samples, generator, perturb)
    points = ray_points(origins, directions, t)  # (R, S, 3)
    dirs = directions[:, None].expand_as(points)
    if mask is None:
        sigma, rgb = field_fn(points, dirs)
        n_evals = points.shape[0] * points.shape[1]
    else:
        if mask.shape != t.shape:
            raise ValueError(f"`mask` must be (R, S) = {tuple(t.shape)}, got {tuple(mask.shape)}")
        s_kept, c_kept = field_fn(points[mask][None], dirs[mask][None])
        sigma = torch.zeros(t.shape, dtype=s_kept.dtype, device=t.device)
        rgb = torch.zeros(t.shape + (3,), dtype=c_kept.dtype, device=t.device)
        sigma = sigma.masked_scatter(mask, s_kept.reshape(-1))
        rgb = rgb.masked_scatter(mask[..., None], c_kept.reshape(-1, 3))
        n_evals = int(mask.sum())
    if sigma.shape != t.shape or rgb.shape != t.shape + (3,):
        raise ValueError(f"field_fn must return sigma {tuple(t.shape)} and rgb {tuple(t.shape) + (3,)}, "
                         f"got {tuple(sigma.shape)} and {tuple(rgb.shape)}")
    out = composite(sigma, rgb, t, far, background, deltas)
    out["n_evals"] = n_evals
    return out


@torch.no_grad()
def render_image(render_fn: Callable[[torch.Tensor, torch.Tensor], dict], c2w: torch.Tensor,
                 K: torch.Tensor, image_size, chunk: int = 4096) -> dict:
    """Render one full image, ``chunk`` rays at a time, without gradients.

    Args:
        render_fn: ``(origins (R, 3), directions (R, 3)) -> dict`` of per-ray tensors, e.g.
            ``lambda o, d: volume_render(field, o, d, 2.0, 6.0, 64, perturb=False)``.
        c2w: (4, 4). K: (3, 3). image_size: H or (H, W).
    Returns:
        dict with every per-ray output of ``render_fn`` reshaped to (H, W, ...): rgb (H, W, 3),
        distance (H, W), opacity (H, W), ...; per-sample outputs (weights, t) are dropped.
    """
    origins, dirs = get_rays(c2w, K, image_size)
    h, w = origins.shape[:2]
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    parts = [render_fn(origins[i:i + chunk], dirs[i:i + chunk]) for i in range(0, h * w, chunk)]
    keys = [k for k in ("rgb", "distance", "opacity") if k in parts[0]]
    return {k: torch.cat([p[k] for p in parts]).reshape(h, w, *parts[0][k].shape[1:]) for k in keys}
