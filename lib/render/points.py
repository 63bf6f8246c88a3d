"""Point-cloud rendering with PyTorch3D's points rasterizer and alpha compositing.

Example:
    >>> import pytest
    >>> _ = pytest.importorskip("pytorch3d")  # skipped where PyTorch3D is not installed
    >>> from lib.cameras import orbit_poses, intrinsics_from_fov
    >>> pts = torch.rand(500, 3) - 0.5
    >>> out = render_points(pts, pts + 0.5, orbit_poses(2, 20.0, 3.0), intrinsics_from_fov(50.0, 32),
    ...                     RenderSettings(image_size=32))
    >>> out["rgb"].shape
    torch.Size([2, 32, 32, 3])
"""
from __future__ import annotations

import torch

from lib.checks import shape_of
from lib.pytorch3d_cameras import to_pytorch3d
from lib.render.common import RenderSettings, batch_cameras


def check_points(points: torch.Tensor, colors: torch.Tensor = None, name: str = "points") -> None:
    """Raise ``ValueError`` for a point cloud that is not (P, 3), is empty or holds NaN/inf."""
    if not torch.is_tensor(points) or points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"`{name}` must be a (P, 3) tensor, got "
                         f"{shape_of(points)}")
    if points.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (0 points); nothing to render")
    bad = ~torch.isfinite(points).all(-1)
    if bad.any():
        rows = bad.nonzero()[:5, 0].tolist()
        raise ValueError(f"`{name}` has {int(bad.sum())} rows with NaN/inf (first: {rows}); "
                         f"drop them with {name}[torch.isfinite({name}).all(-1)]")
    if colors is not None and tuple(colors.shape) != tuple(points.shape):
        raise ValueError(f"`colors` must match points {tuple(points.shape)}, got {tuple(colors.shape)}")


def render_points(points: torch.Tensor, colors: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor,
                  settings: RenderSettings = None) -> dict:
    """Render one coloured point cloud from N cameras.

    Args:
        points: (P, 3) world. colors: (P, 3) in [0, 1] (None: mid grey).
        c2w: (4, 4) or (N, 4, 4). K: (3, 3) or (N, 3, 3).
        settings: ``RenderSettings`` (``point_radius`` in NDC units, ``points_per_pixel``).
    Returns:
        dict with ``rgb`` (N, H, W, 3) and ``mask`` (N, H, W) bool (a point covers the pixel).
    """
    s = settings or RenderSettings()
    check_points(points, colors)
    device = torch.device(s.device or "cpu")
    colors = torch.full_like(points, 0.5) if colors is None else colors
    c2w, K = batch_cameras(c2w, K)  # argument errors first, with or without PyTorch3D
    from pytorch3d.renderer import PointsRasterizationSettings, PointsRasterizer
    from pytorch3d.structures import Pointclouds

    n = c2w.shape[0]
    cloud = Pointclouds(points=[points.float().to(device)], features=[colors.float().to(device)]).extend(n)
    cams = to_pytorch3d(c2w, K, s.hw(), device)
    raster = PointsRasterizer(cameras=cams, raster_settings=PointsRasterizationSettings(
        image_size=s.hw(), radius=s.point_radius, points_per_pixel=s.points_per_pixel))
    frags = raster(cloud)
    # Front-to-back alpha compositing of the K nearest splats per pixel, written out so that the
    # background shows through in proportion to the light that no splat absorbed
    # (PyTorch3D's AlphaCompositor fills the background only where no point lands at all,
    # which darkens splat edges).
    hit = frags.idx >= 0  # (N, H, W, K)
    alpha = torch.where(hit, (1 - frags.dists / s.point_radius ** 2).clamp(0, 1), torch.zeros((), device=device))
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha[..., :-1]], -1), -1)
    weights = alpha * trans  # (N, H, W, K)
    feats = cloud.features_packed()[frags.idx.clamp(min=0).long()]  # (N, H, W, K, 3)
    background = torch.tensor(s.background, dtype=feats.dtype, device=device)
    rgb = (weights[..., None] * feats).sum(-2) + (1 - weights.sum(-1, keepdim=True)) * background
    return {"rgb": rgb.clamp(0, 1), "mask": frags.idx[..., 0] >= 0}
