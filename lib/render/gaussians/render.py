"""``render_gaussians``: 3D Gaussians + cameras → images, with the pure-torch or the gsplat backend.

Example:
    >>> from lib.cameras import look_at, world_to_camera, intrinsics_from_fov
    >>> g = torch.Generator().manual_seed(0)
    >>> means = torch.randn(100, 3, generator=g) * 0.5
    >>> quats = torch.randn(100, 4, generator=g)
    >>> scales = torch.full((100, 3), 0.05)
    >>> opacities = torch.full((100,), 0.7)
    >>> colors = torch.rand(100, 3, generator=g)
    >>> viewmats = world_to_camera(look_at(torch.tensor([[0.0, 0.0, -3.0]])))  # (C=1, 4, 4)
    >>> Ks = intrinsics_from_fov(50.0, (32, 48))[None]  # (1, 3, 3)
    >>> out = render_gaussians(means, quats, scales, opacities, colors, viewmats, Ks, 48, 32)
    >>> out.rgb.shape, out.depth.shape, out.alpha.shape, out.means2d.shape, out.radii.shape
    (torch.Size([1, 32, 48, 3]), torch.Size([1, 32, 48, 1]), torch.Size([1, 32, 48, 1]), torch.Size([1, 100, 2]), torch.Size([1, 100]))
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from lib.backend import announce_cuda_build, resolve_backend, with_fallback
from lib.cameras import check_pose
from lib.checks import shape_of
from lib.render.gaussians.projection import project_gaussians
from lib.render.gaussians.raster import rasterize_tiles
from lib.render.gaussians.sh import num_sh_bases, sh_to_rgb

class GaussianRender(NamedTuple):
    """What :func:`render_gaussians` returns.

    Attributes:
        rgb: (..., C, H, W, 3) colour composited over the background.
        depth: (..., C, H, W, 1) expected camera z of the visible Gaussians (0 where alpha is 0).
        alpha: (..., C, H, W, 1) accumulated opacity.
        means2d: (..., C, N, 2) projected means in pixels; when it requires grad, ``retain_grad()``
            has been called, so after ``backward()`` its ``.grad`` holds the screen-space gradient
            (what densification accumulates).
        radii: (..., C, N) int32 pixel radius, 0 = not rendered in that camera.
    """
    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    means2d: torch.Tensor
    radii: torch.Tensor


def _shape_error(name, expected, x):
    got = shape_of(x)
    return ValueError(f"{name} must be {expected}, got {got}")


def check_gaussian_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree=None,
                          background=None) -> None:
    """Raise ``ValueError`` for wrong shapes, NaN/inf, non-positive scales or non-rigid viewmats
    (arguments as in :func:`render_gaussians`)."""
    if not torch.is_tensor(means) or means.dim() < 2 or means.shape[-1] != 3:
        raise _shape_error("means", "(..., N, 3)", means)
    batch, N = tuple(means.shape[:-2]), means.shape[-2]
    b = "(" + "".join(f"{s}, " for s in batch)
    expected = {"quats": batch + (N, 4), "scales": batch + (N, 3), "opacities": batch + (N,)}
    for name, x in (("quats", quats), ("scales", scales), ("opacities", opacities)):
        if not torch.is_tensor(x) or tuple(x.shape) != expected[name]:
            raise _shape_error(name, f"{expected[name]} (batch, N=... as means {tuple(means.shape)})", x)
    if sh_degree is None:
        if not torch.is_tensor(colors) or tuple(colors.shape) != batch + (N, 3):
            raise _shape_error("colors", f"{batch + (N, 3)} RGB (sh_degree=None)", colors)
    else:
        if sh_degree not in (0, 1, 2, 3):
            raise ValueError(f"sh_degree must be None or 0..3, got {sh_degree!r}")
        k = num_sh_bases(sh_degree)
        if (not torch.is_tensor(colors) or colors.dim() != means.dim() + 1
                or tuple(colors.shape[:-2]) != batch + (N,) or colors.shape[-1] != 3 or colors.shape[-2] < k):
            raise _shape_error("colors", f"{b}{N}, K, 3) SH coefficients with K >= {k} for "
                               f"sh_degree={sh_degree}", colors)
    if not torch.is_tensor(viewmats) or viewmats.dim() != means.dim() + 1 \
            or tuple(viewmats.shape[:-3]) != batch or viewmats.shape[-2:] != (4, 4):
        raise _shape_error("viewmats", f"{b}C, 4, 4) world-to-camera", viewmats)
    C = viewmats.shape[-3]
    if not torch.is_tensor(Ks) or tuple(Ks.shape) != batch + (C, 3, 3):
        raise _shape_error("Ks", f"{batch + (C, 3, 3)} pixel intrinsics", Ks)
    named = {"means": means, "quats": quats, "scales": scales, "opacities": opacities,
             "colors": colors, "viewmats": viewmats, "Ks": Ks}
    if background is not None:
        named["background"] = background
    for name, x in named.items():
        if torch.is_tensor(x) and not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf ({int((~torch.isfinite(x)).sum())} entries)")
    if (scales <= 0).any():
        raise ValueError(f"scales must be positive after activation (e.g. exp(log_scales)), got min "
                         f"{scales.min().item():.3g}")
    if (quats.norm(dim=-1) == 0).any():
        raise ValueError("quats contains a zero quaternion (w, x, y, z) = 0; it has no rotation")
    check_pose(viewmats, "viewmats")  # rigid: orthonormal, right-handed rotations


def camera_centers(viewmats: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) rigid world-to-camera → (..., 3) camera centres in world (``-R^T t``)."""
    R, t = viewmats[..., :3, :3], viewmats[..., :3, 3:]
    return (-R.transpose(-1, -2) @ t).squeeze(-1)


def render_gaussians(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
                     opacities: torch.Tensor, colors: torch.Tensor, viewmats: torch.Tensor,
                     Ks: torch.Tensor, width: int, height: int, sh_degree: Optional[int] = None,
                     background: Optional[torch.Tensor] = None, backend: str = "auto",
                     near: float = 0.01, far: float = 1e10, eps2d: float = 0.3,
                     tile_size: int = 16) -> GaussianRender:
    """Render 3D Gaussians into C cameras.

    Args:
        means: (..., N, 3) world.
        quats: (..., N, 4) ``(w, x, y, z)`` raw (normalised inside).
        scales: (..., N, 3) activated standard deviations (> 0), world units.
        opacities: (..., N) activated, in [0, 1].
        colors: (..., N, 3) RGB when ``sh_degree`` is None, else (..., N, K, 3) SH coefficients with
            K >= (sh_degree + 1)^2 (colour = clamp_min(SH(mean - camera centre) + 0.5, 0)).
        viewmats: (..., C, 4, 4) world-to-camera, OpenCV axes (``lib.cameras.world_to_camera``).
        Ks: (..., C, 3, 3) pixel intrinsics.
        width, height: image size in pixels.
        sh_degree: None (``colors`` are RGB) or 0..3.
        background: (3,) or (..., C, 3) colour behind the Gaussians; None = black.
        backend: ``"torch"`` (tile rasteriser here, CPU or GPU), ``"gsplat"`` (gsplat's CUDA
            kernels; CUDA only, compiles on first use) or ``"auto"`` (gsplat on CUDA when it
            imports, else torch).
        near, far: camera-z range kept; eps2d: 2D low-pass (px^2); tile_size: tile side (px).

    Returns:
        :class:`GaussianRender`. Both backends composite with 3DGS's rules; gsplat's own radii
        (3.33 sigma, opacity-aware) and alpha cap (0.999) differ slightly from ours (3 sigma, 0.99).
    """
    check_gaussian_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, background)
    args = (means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, background, near, far,
            eps2d, tile_size)
    if resolve_backend(backend, means.device, "gsplat") == "gsplat":
        return with_fallback(backend, "gsplat", lambda: _render_gsplat(*args), lambda: _render_tiles_torch(*args))
    return _render_tiles_torch(*args)


def _render_tiles_torch(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                  background, near, far, eps2d, tile_size) -> GaussianRender:
    """The pure-torch backend: projection, SH colours, tile rasteriser."""
    proj = project_gaussians(means, quats, scales, viewmats, Ks, width, height, eps2d, near, far)
    if sh_degree is None:
        rgb = colors.unsqueeze(-3)  # (..., 1, N, 3): shared by the cameras
    else:
        rgb = sh_to_rgb(colors, means, camera_centers(viewmats), sh_degree)  # (..., C, N, 3)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    C = viewmats.shape[-3]
    rgb = rgb.expand(proj.depths.shape + (3,)) if rgb.shape[-3] != C else rgb
    image, depth, alpha = rasterize_tiles(means2d, proj.conics, rgb, opacities, proj.depths, proj.radii,
                                          width, height, tile_size, background)
    return GaussianRender(image, depth, alpha, means2d, proj.radii)


def _render_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                   background, near, far, eps2d, tile_size) -> GaussianRender:
    """The gsplat backend (CUDA): ``gsplat.rasterization`` in "RGB+ED" mode, unpacked."""
    import gsplat

    announce_cuda_build("gsplat")
    C = viewmats.shape[-3]
    batch = tuple(means.shape[:-2])
    bgs = None
    if background is not None:
        background = torch.as_tensor(background, dtype=means.dtype, device=means.device)
        bgs = background.expand(batch + (C, 3)).contiguous()  # gsplat appends the depth channel's 0
    out, alpha, meta = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane=near,
        far_plane=far, eps2d=eps2d, sh_degree=sh_degree, packed=False, tile_size=tile_size,
        backgrounds=bgs, render_mode="RGB+ED")
    radii = meta["radii"]
    if radii.dim() == means.dim() + 1:  # gsplat >= 1.5: (..., C, N, 2) per-axis radii
        radii = radii.amax(dim=-1)
    means2d = meta["means2d"]
    if means2d.requires_grad:
        means2d.retain_grad()
    depth = torch.where(alpha > 0, out[..., 3:4], torch.zeros_like(alpha))
    return GaussianRender(out[..., :3], depth, alpha, means2d, radii.to(torch.int32))
