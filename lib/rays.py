"""Rays: pixels to rays for a camera, and where to put samples along them.

A ray is an origin ``o`` (the camera centre) and a unit direction ``d``, both world frame; its
points are ``x(t) = o + t d`` for ``t`` in ``[near, far]``. Because ``d`` has unit length, ``t`` is
the *distance along the ray* ("ray length"). A depth map in the sense of :mod:`lib.cameras`
holds the camera **z** instead; the two differ by the cosine of the angle between the ray and the
optical axis: ``z = t * (d . forward)``, see :func:`ray_z_scale`. Pass ``normalize=False`` to
:func:`get_rays` to get directions with camera ``z = 1`` instead; then ``t`` *is* the z-depth.

Cameras follow :mod:`lib.cameras`: c2w (4, 4) with OpenCV axes, K in pixels, pixel (row i,
column j) centred at (u, v) = (j + 0.5, i + 0.5).

Example:
    >>> from lib.cameras import intrinsics_from_fov, orbit_poses
    >>> origins, dirs = get_rays(orbit_poses(2, distance=4.0), intrinsics_from_fov(40.0, 8), (8, 8))
    >>> origins.shape, dirs.shape
    (torch.Size([2, 8, 8, 3]), torch.Size([2, 8, 8, 3]))
    >>> t = sample_stratified(origins.reshape(-1, 3), dirs.reshape(-1, 3), 2.0, 6.0, 16, perturb=False)
    >>> t.shape
    torch.Size([128, 16])
"""
from __future__ import annotations

from typing import Tuple, Union

import torch

from lib.cameras import image_hw, check_pose, pixel_centers
from lib.checks import shape_of

Bound = Union[float, torch.Tensor]


def check_rays(origins: torch.Tensor, directions: torch.Tensor, fn: str = "") -> None:
    """Raise ``ValueError`` unless both are (R, 3) tensors of one shape; ``fn`` prefixes the message."""
    where = f"{fn}: " if fn else ""
    for name, x in (("origins", origins), ("directions", directions)):
        if not torch.is_tensor(x) or x.ndim != 2 or x.shape[-1] != 3:
            got = shape_of(x)
            raise ValueError(f"{where}`{name}` must be (R, 3), got {got}")
    if origins.shape != directions.shape:
        raise ValueError(f"{where}`origins` {tuple(origins.shape)} and `directions` {tuple(directions.shape)} "
                         "must have the same shape (R, 3)")


def ray_bound(x: Bound, n: int, name: str, like: torch.Tensor, fn: str = "") -> torch.Tensor:
    """A near/far bound as an (R, 1) tensor (from a float or an (R,) / (R, 1) tensor); ``fn``
    prefixes the error message."""
    t = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t.expand(n, 1)
    if t.shape in ((n,), (n, 1)):
        return t.reshape(n, 1)
    where = f"{fn}: " if fn else ""
    raise ValueError(f"{where}`{name}` must be a float or an (R,) tensor with R={n}, got shape {tuple(t.shape)}")


# ------------------------------------------------------------------------------ rays
def get_rays(c2w: torch.Tensor, K: torch.Tensor, image_size, normalize: bool = True
             ) -> Tuple[torch.Tensor, torch.Tensor]:
    """One ray through the centre of every pixel.

    Args:
        c2w: (4, 4) or (N, 4, 4) camera-to-world, OpenCV axes (see :mod:`lib.cameras`).
        K: (3, 3) or (N, 3, 3) intrinsics in pixels.
        image_size: H or (H, W).
        normalize: True (default) gives unit directions, so ``t`` is the distance along the ray;
            False gives directions with camera ``z = 1``, so ``t`` is the camera z-depth.
    Returns:
        origins: (..., H, W, 3) float32, world: the camera centres, repeated per pixel.
        directions: (..., H, W, 3) float32, world, through pixel centres (j + 0.5, i + 0.5);
        ``...`` is () for a single (4, 4) pose and (N,) for a batch.
    """
    check_pose(c2w.detach().cpu() if torch.is_tensor(c2w) else c2w)  # (its identity lives on the CPU)
    if not torch.is_tensor(K) or K.shape[-2:] != (3, 3):
        raise ValueError(f"`K` must be (3, 3) or (N, 3, 3), got "
                         f"{shape_of(K)}")
    h, w = image_hw(image_size)
    batch = c2w.shape[:-2]
    K = K.to(c2w).expand(*batch, 3, 3)
    uv = pixel_centers((h, w)).to(c2w)  # (H, W, 2)
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    cx, cy = K[..., 0, 2], K[..., 1, 2]
    ex = lambda v: v.reshape(*batch, 1, 1)  # noqa: E731  broadcast a per-camera scalar over pixels
    x = (uv[..., 0] - ex(cx)) / ex(fx)
    y = (uv[..., 1] - ex(cy)) / ex(fy)
    cam = torch.stack([x, y, torch.ones_like(x)], -1)  # (..., H, W, 3) camera frame, z = 1
    R = c2w[..., :3, :3]
    dirs = torch.einsum("...ij,...hwj->...hwi", R, cam)
    if normalize:
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = c2w[..., None, None, :3, 3].expand(dirs.shape)
    return origins.contiguous(), dirs


def ray_z_scale(directions: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """Factor that turns a distance along a ray into a camera z-depth: ``z = t * scale``.

    Args:
        directions: (..., 3) unit directions, world. c2w: (4, 4) the camera they come from.
    Returns:
        (...,) the cosine between each direction and the camera's forward (z) axis.
    """
    check_pose(c2w.detach().cpu())
    return directions @ c2w[:3, 2].to(directions)


def intersect_aabb(origins: torch.Tensor, directions: torch.Tensor, aabb: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where rays enter and leave an axis-aligned box (the slab method).

    Args:
        origins, directions: (R, 3) world. aabb: (2, 3) or (6,) box corners (min, max), world.
    Returns:
        t_enter, t_exit: (R,) ray parameters (t_enter may be negative if the origin is inside).
        hit: (R,) bool, True where the ray meets the box in front of its origin.
    """
    check_rays(origins, directions)
    box = torch.as_tensor(aabb, dtype=origins.dtype, device=origins.device).reshape(2, 3)
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    t0, t1 = (box[0] - origins) / safe, (box[1] - origins) / safe
    t_enter = torch.minimum(t0, t1).amax(-1)
    t_exit = torch.maximum(t0, t1).amin(-1)
    return t_enter, t_exit, (t_exit > t_enter) & (t_exit > 0)


def near_far_from_aabb(origins: torch.Tensor, directions: torch.Tensor, aabb, near: float, far: float,
                       min_span: float = 1e-3) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-ray bounds ``[near, far]`` tightened to the part of each ray inside the scene box.

    Samples spent outside the box are wasted; clipping to it puts them all where the scene is.
    Rays that miss the box get a tiny interval at ``far`` (they render as background).

    Args:
        origins, directions: (R, 3) world. aabb: (6,) or (2, 3) box. near, far: global bounds.
        min_span: smallest interval kept, so that ``far > near`` on every ray.
    Returns:
        near, far: (R,) each.
    """
    t_enter, t_exit, hit = intersect_aabb(origins, directions, aabb)
    lo = torch.where(hit, t_enter.clamp(near, far), torch.full_like(t_enter, far - min_span))
    hi = torch.where(hit, t_exit.clamp(near, far), torch.full_like(t_exit, far))
    return lo, torch.maximum(hi, lo + min_span)


# --------------------------------------------------------------------------- samplers
def sample_stratified(origins: torch.Tensor, directions: torch.Tensor, near: Bound, far: Bound,
                      n_samples: int, generator: torch.Generator = None, perturb: bool = True
                      ) -> torch.Tensor:
    """Stratified sampling: split ``[near, far]`` into ``n_samples`` equal bins, one sample each.

    With ``perturb`` each sample is uniform inside its bin (a fresh draw every call, so over many
    training steps the field is queried everywhere, not on a fixed lattice); without it, samples
    sit at the bin centres (what evaluation uses).

    Args:
        origins, directions: (R, 3) world (only R, dtype and device are used).
        near, far: floats or (R,) tensors, distances along the rays.
        n_samples: S, samples per ray.
        generator: torch.Generator for the jitter (on the rays' device).
        perturb: jitter inside the bins.
    Returns:
        t: (R, S) increasing distances along each ray. The points are
        ``origins[:, None] + t[..., None] * directions[:, None]``, shape (R, S, 3).
    """
    check_rays(origins, directions)
    if int(n_samples) < 1:
        raise ValueError(f"`n_samples` must be >= 1, got {n_samples}")
    n = origins.shape[0]
    near, far = ray_bound(near, n, "near", origins), ray_bound(far, n, "far", origins)
    if (far <= near).any():
        raise ValueError("`far` must be greater than `near` on every ray")
    if perturb:
        u = torch.rand(n, n_samples, generator=generator, device=origins.device, dtype=origins.dtype)
    else:
        u = torch.full((n, n_samples), 0.5, device=origins.device, dtype=origins.dtype)
    bins = torch.arange(n_samples, device=origins.device, dtype=origins.dtype)
    # u < 1, but rounding can put the last sample one ulp past `far` on a short interval
    return torch.minimum(near + (far - near) * (bins + u) / n_samples, far)


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n_samples: int,
               generator: torch.Generator = None, perturb: bool = True) -> torch.Tensor:
    """Importance sampling: draw distances from the piecewise-constant pdf given by ``weights``.

    Used for NeRF's coarse-to-fine scheme: the coarse pass's weights say where the surface is,
    and the fine pass puts its samples there (inverse transform sampling of the CDF).

    Args:
        bins: (R, B + 1) increasing bin edges along each ray.
        weights: (R, B) non-negative weight per bin (need not sum to 1; not differentiated).
        n_samples: samples per ray.
        generator: for the uniform draws. perturb: random draws (else evenly spaced quantiles).
    Returns:
        t: (R, n_samples) sorted distances inside ``[bins[:, 0], bins[:, -1]]``.
    """
    if bins.ndim != 2 or weights.shape != (bins.shape[0], bins.shape[1] - 1):
        raise ValueError(f"`bins` must be (R, B + 1) and `weights` (R, B), got {tuple(bins.shape)} "
                         f"and {tuple(weights.shape)}")
    w = weights.detach() + 1e-5  # a floor keeps every bin reachable and the CDF well defined
    cdf = torch.cumsum(w / w.sum(-1, keepdim=True), -1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1).contiguous()  # (R, B + 1)
    shape = (bins.shape[0], n_samples)
    if perturb:
        u = torch.rand(shape, generator=generator, device=bins.device, dtype=bins.dtype)
    else:
        u = torch.linspace(0.5 / n_samples, 1 - 0.5 / n_samples, n_samples,
                           device=bins.device, dtype=bins.dtype).expand(shape)
    idx = torch.searchsorted(cdf, u.contiguous(), right=True).clamp(1, cdf.shape[1] - 1)
    c0, c1 = cdf.gather(1, idx - 1), cdf.gather(1, idx)
    b0, b1 = bins.gather(1, idx - 1), bins.gather(1, idx)
    frac = (u - c0) / (c1 - c0).clamp_min(1e-10)
    return torch.sort(b0 + frac * (b1 - b0), -1).values


def ray_points(origins: torch.Tensor, directions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(R, S, 3) world points ``origins + t * directions`` for (R, 3) rays and (R, S) distances."""
    return origins[:, None] + t[..., None] * directions[:, None]
