"""PyTorch3D's cameras and ours: the only module that converts between the two conventions.

Ours (``lib.cameras``): OpenCV camera axes (x right, y down, z forward), column vectors, a
camera-to-world ``c2w`` and a pixel ``K``. PyTorch3D: view axes x left, y up, z forward, row vectors
(``x_view = x_world @ R + T``), so its view axes are ``diag(-1, -1, 1)`` of ours; its
``PerspectiveCameras`` take screen-space or NDC focal lengths and principal points.

- :func:`to_pytorch3d` / :func:`from_pytorch3d`: ``PerspectiveCameras`` objects (PyTorch3D imported
  lazily, only here).
- :func:`from_pytorch3d_ndc` / :func:`to_pytorch3d_ndc`: the raw NDC parameters as plain tensors (no
  PyTorch3D needed), as the truck scene and the R2N2/Blender PyTorch3D exports store them.

Example:
    >>> c2w = orbit_poses(torch.tensor([30.0]), 20.0, 3.0)
    >>> K = intrinsics_from_fov(50.0, (40, 60))
    >>> rows = to_pytorch3d_ndc(c2w, K, (40, 60))
    >>> back, K2 = from_pytorch3d_ndc(rows[:, :9].reshape(-1, 3, 3), rows[:, 9:12], rows[:, 12:14], rows[:, 14:16], (40, 60))
    >>> bool(torch.allclose(back, c2w, atol=1e-5)), bool(torch.allclose(K2[0], K, atol=1e-4))
    (True, True)
"""
from __future__ import annotations

import torch

from lib.cameras import Size, check_pose, image_hw, intrinsics_from_fov, orbit_poses, world_to_camera

FLIP = torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64)  # PyTorch3D's view axes in ours


def to_pytorch3d(c2w: torch.Tensor, K: torch.Tensor, image_size: Size, device=None):
    """PyTorch3D ``PerspectiveCameras`` (screen space) for our poses.

    Args:
        c2w: (4, 4) or (N, 4, 4). K: (3, 3) or (N, 3, 3). image_size: H or (H, W).
    Returns:
        ``PerspectiveCameras`` with N cameras on ``device`` (default CPU); a world point
        projects to the same pixel with it as with :func:`project`.
    """
    c2w = check_pose(c2w if c2w.ndim == 3 else c2w[None])  # bad poses are refused with or without PyTorch3D
    from pytorch3d.utils import cameras_from_opencv_projection

    n = c2w.shape[0]
    K = (K if K.ndim == 3 else K[None]).expand(n, 3, 3).float()
    w2c = world_to_camera(c2w)
    size = torch.tensor([image_hw(image_size)]).expand(n, 2)
    cams = cameras_from_opencv_projection(w2c[:, :3, :3], w2c[:, :3, 3], K, size)
    return cams.to(device or "cpu")


def from_pytorch3d(cameras, image_size: Size):
    """Inverse of :func:`to_pytorch3d`, for ``PerspectiveCameras`` and ``FoVPerspectiveCameras``.

    Returns:
        c2w: (N, 4, 4) and K: (N, 3, 3) in this module's convention.
    """
    from pytorch3d.renderer import FoVPerspectiveCameras
    from pytorch3d.utils import opencv_from_cameras_projection

    h, w = image_hw(image_size)
    n = len(cameras)
    w2c = _pytorch3d_w2c(cameras.R.detach().cpu(), cameras.T.detach().cpu())
    if isinstance(cameras, FoVPerspectiveCameras):
        if not cameras.degrees:
            raise ValueError("from_pytorch3d: FoVPerspectiveCameras with degrees=False are not supported")
        # PyTorch3D applies the field of view to the shorter image side.
        f = 0.5 * min(h, w) / torch.tan(torch.deg2rad(cameras.fov.detach().cpu().reshape(-1)) / 2)
        K = torch.zeros(n, 3, 3)
        K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = f, f, w / 2, h / 2, 1.0
    else:
        size = torch.tensor([[h, w]], device=cameras.device).expand(n, 2)
        K = opencv_from_cameras_projection(cameras, size)[2].detach().cpu()
    return world_to_camera(w2c), K


def _pytorch3d_w2c(R: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """(N, 4, 4) our world-to-camera from PyTorch3D's ``x_view = x_world @ R + T`` (R (N, 3, 3),
    T (N, 3)); PyTorch3D's view axes are diag(-1, -1, 1) of ours (x left, y up, z forward)."""
    flip = FLIP.to(R.dtype)
    w2c = torch.eye(4, dtype=R.dtype).repeat(R.shape[0], 1, 1)
    w2c[:, :3, :3] = flip[:, None] * R.transpose(1, 2)
    w2c[:, :3, 3] = flip * T
    return w2c


def from_pytorch3d_ndc(R, T, focal_length, principal_point, image_size: Size):
    """Our c2w and pixel K from the raw parameters of PyTorch3D ``PerspectiveCameras`` in NDC
    (``in_ndc=True``, the default), without importing PyTorch3D.

    PyTorch3D projects with row vectors, ``x_view = x_world @ R + T``, in view axes x left, y up,
    z forward, then ``x_ndc = f_x * x_view / z + p_x`` (and likewise y). NDC units are half the
    shorter image side, ``s = min(H, W) / 2``, and the NDC origin is the image centre, so in our
    pixels (u right, v down, the image spanning [0, W] x [0, H], as PyTorch3D's
    ``transform_points_screen``):

        fx = f_x s,   fy = f_y s,   cx = W / 2 - p_x s,   cy = H / 2 - p_y s.

    Args:
        R: (N, 3, 3) or (3, 3) rotation (PyTorch3D's, row-vector convention).
        T: (N, 3) or (3,) translation, world units.
        focal_length: (N, 2), (N, 1), (N,), (2,) or a scalar, NDC units.
        principal_point: (N, 2) or (2,), NDC units.
        image_size: H or (H, W) in pixels, shared by the N cameras.
    Returns:
        c2w: (N, 4, 4) float32 (OpenCV axes, this module's convention). K: (N, 3, 3) float32 pixels.
        A world point projects to the same pixel with :func:`project` as with PyTorch3D's
        ``transform_points_screen`` (tested against PyTorch3D).
    """
    h, w = image_hw(image_size)
    R = torch.as_tensor(R, dtype=torch.float64)
    batched = R.ndim == 3
    R = R if batched else R[None]
    n = R.shape[0]
    if R.shape[1:] != (3, 3):
        raise ValueError(f"`R` must be (N, 3, 3) or (3, 3), got {tuple(R.shape)}")
    f = torch.as_tensor(focal_length, dtype=torch.float64)
    f = f.reshape(-1, 1) if batched and f.ndim <= 1 else f.reshape(-1, f.shape[-1] if f.ndim else 1)
    f = f.expand(-1, 2) if f.shape[-1] == 1 else f
    T = torch.as_tensor(T, dtype=torch.float64).reshape(-1, 3)
    p = torch.as_tensor(principal_point, dtype=torch.float64).reshape(-1, 2)
    if T.shape[0] not in (1, n) or f.shape not in ((1, 2), (n, 2)) or p.shape[0] not in (1, n):
        raise ValueError(f"from_pytorch3d_ndc: R {tuple(R.shape)} but T {tuple(T.shape)}, focal_length "
                         f"{tuple(f.shape)}, principal_point {tuple(p.shape)}; expected N = {n} rows (or 1)")
    s = min(h, w) / 2.0
    K = torch.zeros(n, 3, 3, dtype=torch.float64)
    K[:, 0, 0], K[:, 1, 1] = (f[:, 0] * s).expand(n), (f[:, 1] * s).expand(n)
    K[:, 0, 2], K[:, 1, 2] = (w / 2 - p[:, 0] * s).expand(n), (h / 2 - p[:, 1] * s).expand(n)
    K[:, 2, 2] = 1.0
    w2c = _pytorch3d_w2c(R, T.expand(n, 3))
    check_pose(w2c, "R")
    return world_to_camera(w2c).float(), K.float()


def to_pytorch3d_ndc(c2w: torch.Tensor, K: torch.Tensor, image_size) -> torch.Tensor:
    """Inverse of :func:`from_pytorch3d_ndc`: (N, 16) float64 rows of PyTorch3D NDC camera parameters
    (the truck scene's pose files, ``lib.data.truck``).

    Args:
        c2w: (N, 4, 4) poses (``lib.cameras``). K: (N, 3, 3) or (3, 3) pixels (zero skew).
        image_size: (H, W).
    Returns:
        (N, 16) float64: R row-major (PyTorch3D, ``x_view = x_world @ R + T``), T, focal (NDC),
        principal point (NDC).
    """
    h, w = image_size
    c2w = check_pose(torch.as_tensor(c2w).double().reshape(-1, 4, 4))
    n = c2w.shape[0]
    K = torch.as_tensor(K).double().expand(n, 3, 3)
    w2c = world_to_camera(c2w)
    R = (FLIP[:, None] * w2c[:, :3, :3]).transpose(1, 2)  # x_view = x_world @ R + T
    T = FLIP * w2c[:, :3, 3]
    s = min(h, w) / 2.0
    focal = torch.stack([K[:, 0, 0], K[:, 1, 1]], 1) / s
    pp = torch.stack([(w / 2 - K[:, 0, 2]) / s, (h / 2 - K[:, 1, 2]) / s], 1)
    return torch.cat([R.reshape(n, 9), T, focal, pp], 1)
