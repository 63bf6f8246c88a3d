"""Point-cloud operations in pure torch (notebook 08): farthest point sampling and augmentations.

k nearest neighbours (in 3-D or in feature space) are ``lib.losses.nearest_neighbors(x, x, k=k)``;
this module does not restate them.

Conventions: clouds are (B, N, 3) or (N, 3) float tensors, y up (the course's and the 16-825
point-cloud assignment's); angles in degrees; every random draw comes from an explicit
``torch.Generator`` (drawn on the CPU, moved to the points' device).

Example:
    >>> pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0.1, 0, 0], [0, 2, 0]])
    >>> farthest_point_sample(pts, 3).tolist()
    [0, 3, 1]
    >>> rotate_points(torch.tensor([[1.0, 0, 0]]), 90.0, axis="y")[0, 2].item()  # +x turns to -z
    -1.0
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from lib.quaternion import quat_to_rotmat


def _cloud(points: torch.Tensor, name: str = "points") -> torch.Tensor:
    if not torch.is_tensor(points) or points.ndim not in (2, 3) or not points.is_floating_point():
        got = f"{tuple(points.shape)} {points.dtype}" if torch.is_tensor(points) else type(points).__name__
        raise ValueError(f"`{name}` must be a (B, N, D) or (N, D) float tensor, got {got}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError(f"`{name}` holds NaN or inf values")
    return points if points.ndim == 3 else points[None]


def farthest_point_sample(points: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Indices of ``n`` points chosen greedily, each the farthest (Euclidean) from those chosen so
    far, starting from index ``start`` (PointNet++'s sampling).

    Args:
        points: (B, N, D) or (N, D) float. n: 1 <= n <= N. start: the first index.
    Returns:
        (B, n) int64 (or (n,) for unbatched input), the order in which the points were picked.
    """
    pts = _cloud(points)
    B, N = pts.shape[:2]
    if not 1 <= int(n) <= N:
        raise ValueError(f"farthest_point_sample: `n` must be between 1 and the {N} points, got {n}")
    if not 0 <= int(start) < N:
        raise ValueError(f"farthest_point_sample: `start` must index one of the {N} points, got {start}")
    idx = torch.empty(B, int(n), dtype=torch.int64, device=pts.device)
    idx[:, 0] = int(start)
    dist = torch.full((B, N), float("inf"), dtype=pts.dtype, device=pts.device)
    rows = torch.arange(B, device=pts.device)
    with torch.no_grad():
        for i in range(1, int(n)):
            last = pts[rows, idx[:, i - 1]]  # (B, D)
            dist = torch.minimum(dist, (pts - last[:, None]).pow(2).sum(-1))
            idx[:, i] = dist.argmax(-1)
    return idx if points.ndim == 3 else idx[0]


def axis_rotation(angle_deg, axis: str = "y") -> torch.Tensor:
    """(..., 3, 3) right-handed rotation by ``angle_deg`` (float or tensor) about ``axis`` in
    {"x", "y", "z"}, the convention of ``lib.cameras.rotation`` (batched here): about the up axis
    "y", +90 degrees takes +x to -z; about "x", +90 degrees takes +y (up) to +z (the object tips
    forwards)."""
    if axis not in ("x", "y", "z"):
        raise ValueError(f"axis_rotation: `axis` must be 'x', 'y' or 'z', got {axis!r}")
    a = torch.as_tensor(angle_deg, dtype=torch.float32) * (math.pi / 180.0)
    c, s = torch.cos(a), torch.sin(a)
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = {"x": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
            "y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
            "z": ((c, -s, zero), (s, c, zero), (zero, zero, one))}[axis]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def rotate_points(points: torch.Tensor, angle_deg, axis: str = "y") -> torch.Tensor:
    """Rotate (B, N, 3) or (N, 3) points about ``axis`` through the origin; ``angle_deg`` a float
    or a (B,) tensor (one angle per cloud)."""
    pts = _cloud(points)
    R = axis_rotation(angle_deg, axis).to(pts)
    R = R.expand(pts.shape[0], 3, 3) if R.ndim == 2 else R
    out = pts @ R.transpose(-1, -2)
    return out if points.ndim == 3 else out[0]


def random_rotations(n: int, generator: Optional[torch.Generator] = None, up_only: bool = False) -> torch.Tensor:
    """(n, 3, 3) random rotations: uniform over SO(3) (a normalised Gaussian quaternion), or, with
    ``up_only``, about the up axis by a uniform angle in [0, 360)."""
    if up_only:
        return axis_rotation(torch.rand(n, generator=generator) * 360.0, "y")
    q = torch.randn(n, 4, generator=generator)
    return quat_to_rotmat(q / q.norm(dim=-1, keepdim=True))


def augment_points(points: torch.Tensor, generator: torch.Generator, rotation: Optional[str] = None,
                   jitter: float = 0.0, scale: tuple = (1.0, 1.0), dropout: float = 0.0) -> torch.Tensor:
    """A training augmentation of (B, N, 3) clouds, each entry drawn independently.

    Args:
        rotation: None, "up" (about the up axis) or "so3" (any rotation).
        jitter: standard deviation of Gaussian noise added to every coordinate (world units).
        scale: (lo, hi) range of one uniform scale factor per cloud.
        dropout: the largest fraction of points dropped per cloud (PointNet++'s random point
            dropout: a per-cloud rate uniform in [0, dropout]; dropped points are replaced by the
            cloud's first point, so N stays the same and a max-pool is unchanged by them).
    Returns:
        (B, N, 3) on ``points``' device; ``points`` is not modified.
    """
    pts = _cloud(points)
    if rotation not in (None, "up", "so3"):
        raise ValueError(f"augment_points: `rotation` must be None, 'up' or 'so3', got {rotation!r}")
    if jitter < 0 or not 0 <= dropout < 1 or not 0 < scale[0] <= scale[1]:
        raise ValueError(f"augment_points: need jitter >= 0, 0 <= dropout < 1, 0 < scale[0] <= scale[1]; got "
                         f"jitter={jitter}, dropout={dropout}, scale={scale}")
    B, N, _ = pts.shape
    out = pts
    if rotation is not None:
        out = out @ random_rotations(B, generator, up_only=rotation == "up").to(pts).transpose(-1, -2)
    lo, hi = scale
    out = out * (lo + (hi - lo) * torch.rand(B, 1, 1, generator=generator)).to(pts)
    if jitter > 0:
        out = out + jitter * torch.randn(out.shape, generator=generator).to(pts)
    if dropout > 0:
        rate = dropout * torch.rand(B, 1, generator=generator)
        drop = (torch.rand(B, N, generator=generator) < rate).to(pts.device)
        out = torch.where(drop[..., None], out[:, :1].expand_as(out), out)
    return out if points.ndim == 3 else out[0]
