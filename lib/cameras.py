"""Cameras: the one convention used everywhere in the course.

Convention (stated once, here; loaders convert on load and nothing else flips signs):

- World frame: right-handed, **y up**. Objects stand on or are centred at the origin.
- Camera frame: **OpenCV** axes: x right, y down, z forward (the viewing direction).
  A point in front of the camera has z > 0, and z is its *depth*.
- Pose: a camera-to-world matrix ``c2w`` of shape (4, 4) (or (..., 4, 4)):
  ``x_world = R @ x_cam + t`` with ``R = c2w[:3, :3]`` (columns = camera axes in world
  coordinates) and ``t = c2w[:3, 3]`` (camera centre in world coordinates).
- Intrinsics: a pixel-unit matrix ``K`` (3, 3) = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].
  Pixel (row i, column j) has its centre at (u, v) = (j + 0.5, i + 0.5); the image spans
  u in [0, W], v in [0, H].
- Field of view ``fov`` is the *vertical* angle in degrees.
- Orbits: a camera at azimuth ``az`` and elevation ``el`` (degrees) and distance ``d`` sits at
  ``target + d * (cos(el) sin(az), sin(el), cos(el) cos(az))`` looking at the target, so azimuth 0
  is on the +z axis (as in PyTorch3D's ``look_at_view_transform``).

PyTorch3D uses other axes (x left, y up) and row vectors; ``lib.pytorch3d_cameras`` is the only
module that converts.

Example:
    >>> c2w = orbit_poses(torch.tensor([0.0, 90.0]), elevation=30.0, distance=3.0)
    >>> c2w.shape
    torch.Size([2, 4, 4])
    >>> K = intrinsics_from_fov(60.0, (64, 64))
    >>> uv, depth = project(torch.zeros(1, 3), c2w[0], K)  # the origin projects to the centre
    >>> uv, depth
    (tensor([[32., 32.]]), tensor([3.]))
"""
from __future__ import annotations

import math
from typing import Tuple, Union

import torch

from lib.checks import shape_of

Size = Union[int, Tuple[int, int]]
_ORTHO_TOL = 1e-4


def image_hw(image_size: Size) -> Tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def _vec3(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32)
    if t.shape[-1:] != (3,):
        raise ValueError(f"`{name}` must have a last dimension of 3, got shape {tuple(t.shape)}")
    return t


# --------------------------------------------------------------------------- poses
def look_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0)) -> torch.Tensor:
    """Camera-to-world pose of a camera at ``eye`` looking at ``target``.

    Args:
        eye: (..., 3) camera centres, world.
        target: (..., 3) points looked at, world.
        up: (..., 3) world direction that appears upwards in the image.
    Returns:
        c2w: (..., 4, 4) float32, OpenCV camera axes (x right, y down, z forward).
    """
    eye, target, up = _vec3(eye, "eye"), _vec3(target, "target"), _vec3(up, "up")
    eye, target, up = torch.broadcast_tensors(eye, target, up)
    z = target - eye
    if (z.norm(dim=-1) < 1e-9).any():
        raise ValueError("look_at: `eye` and `target` coincide; the viewing direction is undefined")
    z = z / z.norm(dim=-1, keepdim=True)
    x = torch.linalg.cross(z, up)
    if (x.norm(dim=-1) < 1e-6).any():
        raise ValueError("look_at: the viewing direction is parallel to `up`; pick another `up` vector")
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.linalg.cross(z, x)
    c2w = torch.zeros(eye.shape[:-1] + (4, 4))
    c2w[..., :3, 0], c2w[..., :3, 1], c2w[..., :3, 2], c2w[..., :3, 3] = x, y, z, eye
    c2w[..., 3, 3] = 1.0
    return c2w


def orbit_position(azimuth, elevation, distance, target=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """(..., 3) camera centres on a sphere around ``target`` (angles in degrees, see module doc)."""
    az, el, d = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=torch.float32)
                                          for v in (azimuth, elevation, distance)))
    az, el = torch.deg2rad(az), torch.deg2rad(el)
    offset = torch.stack([torch.cos(el) * torch.sin(az), torch.sin(el), torch.cos(el) * torch.cos(az)], -1)
    return _vec3(target, "target") + d[..., None] * offset


def orbit_poses(azimuths, elevation=20.0, distance=3.0, target=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """(N, 4, 4) c2w poses looking at ``target`` from each azimuth (degrees).

    ``azimuths`` may be an int N, meaning N views evenly spaced over 360 degrees (a turntable).
    ``elevation`` and ``distance`` may be scalars or (N,) tensors.
    """
    if isinstance(azimuths, int):
        azimuths = torch.arange(azimuths, dtype=torch.float32) * (360.0 / azimuths)
    eye = orbit_position(azimuths, elevation, distance, target)
    if (torch.as_tensor(elevation).abs() >= 90).any():
        raise ValueError("orbit_poses: |elevation| must be below 90 degrees (the camera would look along `up`)")
    return look_at(eye, torch.as_tensor(target, dtype=torch.float32).expand_as(eye))


def world_to_camera(c2w: torch.Tensor) -> torch.Tensor:
    """Invert rigid poses: (..., 4, 4) c2w -> (..., 4, 4) w2c (uses R^T, no general inverse)."""
    check_pose(c2w)
    R, t = c2w[..., :3, :3], c2w[..., :3, 3:]
    w2c = torch.zeros_like(c2w)
    w2c[..., :3, :3] = R.transpose(-1, -2)
    w2c[..., :3, 3:] = -R.transpose(-1, -2) @ t
    w2c[..., 3, 3] = 1.0
    return w2c


def check_pose(c2w: torch.Tensor, name: str = "c2w", tol: float = _ORTHO_TOL) -> torch.Tensor:
    """Raise ``ValueError`` unless ``c2w`` is (..., 4, 4) with an orthonormal, right-handed rotation."""
    if not torch.is_tensor(c2w) or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"`{name}` must be a (..., 4, 4) camera-to-world matrix, got "
                         f"{shape_of(c2w)}")
    if not torch.isfinite(c2w).all():
        raise ValueError(f"`{name}` contains NaN or inf")
    R = c2w[..., :3, :3].detach().double()
    errs = (R @ R.transpose(-1, -2) - torch.eye(3, dtype=R.dtype, device=R.device)).abs().amax(dim=(-1, -2))
    if (errs > tol).any():
        first = torch.nonzero(errs > tol)[0].tolist()  # the first bad matrix of a batch
        where = f"`{name}[{', '.join(map(str, first))}]`" if first else f"`{name}`"
        raise ValueError(f"{where} rotation is not orthonormal: |R R^T - I| = {errs[tuple(first)].item():.3g} "
                         f"(tolerance {tol:g}). Build poses with lib.cameras.look_at / orbit_poses, or "
                         "re-orthonormalise R (e.g. with torch.linalg.svd: U @ Vh).")
    det = torch.linalg.det(R).min().item()
    if det < 0:
        raise ValueError(f"`{name}` rotation has determinant {det:.3f}; it is a reflection, expected +1")
    return c2w


def apply_relative(c2w: torch.Tensor, R_rel, T_rel) -> torch.Tensor:
    """Move a camera by a transform expressed in its *own* (OpenCV) frame.

    A point with camera coordinates ``x_cam`` gets ``x_cam' = R_rel @ x_cam + T_rel`` in the new
    camera, i.e. ``w2c' = [R_rel | T_rel] @ w2c``. So ``T_rel = (0, 0, 2)`` pushes the scene 2
    units further away (the camera moves back) and ``R_rel`` rotates the scene as seen by the
    camera (the camera itself turns by ``R_rel^T``).

    Args:
        c2w: (4, 4) pose. R_rel: (3, 3) rotation. T_rel: (3,) translation, camera units.
    Returns:
        (4, 4) the new camera-to-world pose.
    """
    R_rel, T_rel = torch.as_tensor(R_rel, dtype=torch.float32), _vec3(T_rel, "T_rel")
    rel = torch.eye(4)
    rel[:3, :3], rel[:3, 3] = R_rel, T_rel
    check_pose(rel, "R_rel")
    return world_to_camera(rel @ world_to_camera(c2w))


def rotation(axis: str, degrees) -> torch.Tensor:
    """(3, 3) right-handed rotation by ``degrees`` about ``axis`` in {'x', 'y', 'z'}; (..., 3, 3) for a
    tensor of angles. About the up axis "y", +90 degrees takes +x to -z; about "x", +90 degrees takes
    +y (up) to +z. Computed in float64, returned as float32."""
    if axis not in ("x", "y", "z"):
        raise ValueError(f"rotation axis must be 'x', 'y' or 'z', got {axis!r}")
    a = torch.as_tensor(degrees, dtype=torch.float64) * (math.pi / 180.0)
    c, s = torch.cos(a), torch.sin(a)
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = {"x": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
            "y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
            "z": ((c, -s, zero), (s, c, zero), (zero, zero, one))}[axis]
    return torch.stack([torch.stack(r, -1) for r in rows], -2).float()


# ----------------------------------------------------------------------- intrinsics
def pixel_intrinsics(fx: float, cx: float, cy: float, fy: float = None) -> torch.Tensor:
    """(3, 3) float32 pixel intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (``fy`` defaults to
    ``fx``: square pixels): the one place K is assembled. ``(cx, cy) = (W / 2, H / 2)`` is the image
    centre (pixel centres at half-integers)."""
    fy = fx if fy is None else fy
    if not float(fx) > 0 or not float(fy) > 0:
        raise ValueError(f"focal lengths must be positive pixels, got fx={fx}, fy={fy}")
    return torch.tensor([[float(fx), 0.0, float(cx)], [0.0, float(fy), float(cy)], [0.0, 0.0, 1.0]])


def intrinsics_from_fov(fov: float, image_size: Size) -> torch.Tensor:
    """(3, 3) K for a vertical field of view ``fov`` (degrees), square pixels, centred principal point."""
    if not 0.0 < float(fov) < 180.0:
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov}")
    h, w = image_hw(image_size)
    f = 0.5 * h / math.tan(math.radians(float(fov)) / 2)
    return pixel_intrinsics(f, w / 2, h / 2)


def fov_from_intrinsics(K: torch.Tensor, image_size: Size) -> float:
    """Vertical field of view (degrees) of ``K`` for an image of ``image_size``."""
    h, _ = image_hw(image_size)
    return math.degrees(2 * math.atan(0.5 * h / float(K[1, 1])))


def dolly_zoom_distance(fov: float, points, fill: float = 1.0, azimuth: float = 0.0,
                        elevation: float = 0.0, target=(0.0, 0.0, 0.0), aspect: float = 1.0) -> float:
    """Camera distance at which a subject of real depth spans ``fill`` of the image width.

    The camera is ``orbit_poses([azimuth], elevation, distance, target)``: it sits at
    ``target - distance * f`` and looks along the unit vector ``f``. Keeping
    ``distance = dolly_zoom_distance(fov, points, fill, ...)`` while ``fov`` changes is the dolly
    zoom (the "Vertigo" effect): the subject keeps its width in the image, the perspective changes.

    Geometry. Write each subject point relative to the target in the camera's axes: ``x_i`` to the
    right, ``z_i`` along ``f`` (negative = towards the camera). At distance ``d`` it has depth
    ``d + z_i`` and lands ``fx * a_i(d)`` pixels right of the image centre, ``a_i(d) = x_i / (d + z_i)``.
    The image is ``2 fx * aspect * tan(fov / 2)`` pixels wide, so the subject spans ``fill`` of it when

        max_i a_i(d) - min_i a_i(d) = 2 T,   T = fill * aspect * tan(fov / 2).

    Backing away (larger ``d``) slides every point's image towards the centre, so the left side
    is strictly decreasing and the right side strictly increasing in ``d`` as long as the view
    axis passes between the points (some ``x_i < 0``, some ``> 0``): exactly one ``d`` solves it,
    and the projected width ``max u - min u`` of the points is ``fill * W`` at every ``fov``. Two
    closed forms bracket it: each point stays within ``s`` of the centre iff
    ``d >= |x_i| / s - z_i`` (its own "front plane"), so at ``d_s = max_i (|x_i| / s - z_i)`` the
    outermost point sits at exactly ``s``; the width is then between ``s`` and ``2 s``, so the
    root lies in ``[d_2T, d_T]``, found by bisection (float64, to 1e-12 relative).

    For a subject mirror-symmetric about the view axis (a box seen face-on, an animal seen from
    straight behind) the two sides match and ``d = d_T = max_i (|x_i| / T - z_i)``: for a box of
    width ``w`` whose front face is ``h`` in front of the target, ``d = w / (2 T) + h``, i.e. the
    FRONT face is kept at the textbook distance ``w / (2 T)``. Treating the subject as flat at
    the target (``d = w / (2 T)``, all ``z_i = 0``) is right only for a flat subject: a deep one
    reaches ``h`` towards the camera, whose distance to that front shrinks to ``w / (2 T) - h``,
    and at wide angles the subject balloons.

    Args:
        fov: vertical field of view in degrees, in (0, 180).
        points: (N, 3) float, world: the subject (e.g. its vertices; the silhouette's extremes
            are vertices of a triangle mesh).
        fill: fraction of the image width the subject spans (> 0; 1 = edge to edge).
        azimuth, elevation: the viewing direction, in degrees, as in :func:`orbit_poses`.
        target: (3,) the point the camera looks at, world; the view axis must pass between the
            subject's points (left and right of it).
        aspect: image width / height (``fov`` is vertical).
    Returns:
        the distance (float, world units) from ``target`` to the camera centre.

    Example:
        >>> box = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.3, 0.3) for z in (-1.0, 1.0)])
        >>> d = dolly_zoom_distance(90.0, box, fill=0.5)  # front face (z = +1) 1 unit from the camera
        >>> round(d, 6)
        2.0
    """
    if not 0.0 < float(fov) < 180.0:
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov}")
    if not float(fill) > 0.0:
        raise ValueError(f"fill must be > 0 (a fraction of the image width), got {fill}")
    if not float(aspect) > 0.0:
        raise ValueError(f"aspect must be > 0 (image width / height), got {aspect}")
    pts = _vec3(points, "points").reshape(-1, 3).double()
    if len(pts) == 0 or not torch.isfinite(pts).all():
        raise ValueError(f"`points` must be (N, 3) finite world points with N >= 1, got shape {tuple(pts.shape)}")
    axes = orbit_poses(torch.tensor([float(azimuth)]), float(elevation), 1.0, target)[0, :3, :3].double()
    rel = pts - _vec3(target, "target").double()
    x, z = rel @ axes[:, 0], rel @ axes[:, 2]  # right and forward offsets from the target
    if not ((x < 0).any() and (x > 0).any()):
        raise ValueError("dolly_zoom_distance: the view axis must pass between the subject's points; their "
                         f"offsets to its right run from {x.min().item():.4g} to {x.max().item():.4g} "
                         "(aim `target` at the subject)")
    t = float(fill) * float(aspect) * math.tan(math.radians(float(fov)) / 2)
    lo, hi = (x.abs() / (2 * t) - z).max().item(), (x.abs() / t - z).max().item()  # width >= 2t, <= 2t
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        a = x / (mid + z)  # every depth mid + z_i > lo + z_i >= 0
        if mid in (lo, hi):
            break
        if (a.max() - a.min()).item() > 2 * t:
            lo = mid
        else:
            hi = mid
    return hi


# --------------------------------------------------------------- projection and rays
def project(points: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor):
    """Project world points to pixels, into one camera or a batch of B cameras.

    Args:
        points: (N, 3) world. c2w: (4, 4) or (B, 4, 4). K: (3, 3) or (B, 3, 3).
    Returns:
        uv: (N, 2) (or (B, N, 2)) pixel coordinates (u right, v down; pixel centres at +0.5).
        depth: (N,) (or (B, N)) camera z (positive in front of the camera; uv is not meaningful
        where it is <= 0).
    """
    points = _vec3(points, "points")
    w2c = world_to_camera(c2w)
    cam = points @ w2c[..., :3, :3].transpose(-1, -2) + w2c[..., None, :3, 3]  # (..., N, 3)
    uvw = cam @ K.transpose(-1, -2)
    return uvw[..., :2] / uvw[..., 2:3], cam[..., 2]


def pixel_centers(image_size: Size) -> torch.Tensor:
    """(H, W, 2) pixel-centre coordinates (u, v) = (j + 0.5, i + 0.5)."""
    h, w = image_hw(image_size)
    v, u = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return torch.stack([u, v], -1)


def unproject_depth(depth: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, mask=None) -> torch.Tensor:
    """Lift a depth map to world points.

    Args:
        depth: (H, W) camera z (not ray length), world units. c2w: (4, 4). K: (3, 3).
        mask: (H, W) bool, which pixels to keep (default: depth > 0 and finite).
    Returns:
        points: (M, 3) world, in row-major pixel order of the kept pixels.
    """
    if depth.ndim != 2:
        raise ValueError(f"`depth` must be (H, W), got {tuple(depth.shape)}")
    keep = torch.isfinite(depth) & (depth > 0)
    if mask is not None:
        if mask.shape != depth.shape:
            raise ValueError(f"`mask` must match depth {tuple(depth.shape)}, got {tuple(mask.shape)}")
        keep = keep & mask.bool()
    uv = pixel_centers(depth.shape)[keep]  # (M, 2)
    z = depth[keep]
    cam = torch.cat([(uv - K[:2, 2]) / K.diagonal()[:2] * z[:, None], z[:, None]], -1)
    check_pose(c2w)
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def random_orbit_angles(n: int, elevation_range=(5.0, 45.0), generator=None, area_uniform: bool = False):
    """``(azimuth (n,), elevation (n,))`` in degrees for random orbit cameras (:func:`orbit_poses`):
    azimuth uniform in [0, 360), then elevation in ``elevation_range``, drawn in that order.

    Elevation is uniform in degrees, or, with ``area_uniform``, uniform over the area of the
    sphere's band between the two elevations (``asin`` of a uniform sine: fewer cameras near the
    poles). ``generator`` is a ``torch.Generator`` (float32 tensors, drawn on the CPU) or, for the
    dataset writers that draw everything from one stream, a ``numpy.random.Generator`` (float64
    tensors, the values as drawn, for writers that store them).
    """
    lo, hi = (float(e) for e in elevation_range)
    if not -90.0 <= lo <= hi <= 90.0:
        raise ValueError(f"elevation_range must be (lo, hi) degrees with -90 <= lo <= hi <= 90, got {elevation_range}")
    if type(generator).__module__.startswith("numpy"):
        import numpy as np
        if area_uniform:
            lo, hi = np.sin(np.radians((lo, hi)))
        az = generator.uniform(0.0, 360.0, n)
        el = generator.uniform(lo, hi, n)
        return torch.from_numpy(az), torch.from_numpy(np.degrees(np.arcsin(el)) if area_uniform else el)
    if area_uniform:
        lo, hi = math.sin(math.radians(lo)), math.sin(math.radians(hi))
    az = torch.rand(n, generator=generator) * 360.0
    el = lo + torch.rand(n, generator=generator) * (hi - lo)
    return az, torch.rad2deg(torch.asin(el)) if area_uniform else el


def random_orbit_poses(n: int, distance: float, elevation_range=(5.0, 45.0), target=(0.0, 0.0, 0.0),
                       generator: torch.Generator = None) -> torch.Tensor:
    """(n, 4, 4) poses at uniformly random azimuths and elevations (degrees) around ``target``."""
    az, el = random_orbit_angles(n, elevation_range, generator)
    return orbit_poses(az, el, distance, target)
