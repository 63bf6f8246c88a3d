"""Point-cloud augmentations of notebook 08: rotations about the up axis or over SO(3), scaling,
jitter and point dropout (farthest point sampling is ``lib.geometry.farthest_point_sample``; k nearest
neighbours, in 3-D or in feature space, ``lib.losses.nearest_neighbors(x, x, k=k)``).

Conventions: clouds are (B, N, 3) or (N, 3) float tensors, y up (the course's and the 16-825
point-cloud assignment's); angles in degrees, rotations ``lib.cameras.rotation``'s; every random draw
comes from an explicit ``torch.Generator`` (drawn on the CPU, moved to the points' device).

Example:
    >>> rotate_points(torch.tensor([[1.0, 0, 0]]), 90.0, axis="y")[0, 2].item()  # +x turns to -z
    -1.0
"""
from __future__ import annotations

from typing import Optional

import torch

from lib.cameras import rotation
from lib.checks import point_batch
from lib.quaternion import quat_to_rotmat


def rotate_points(points: torch.Tensor, angle_deg, axis: str = "y") -> torch.Tensor:
    """Rotate (B, N, 3) or (N, 3) points about ``axis`` through the origin; ``angle_deg`` a float
    or a (B,) tensor (one angle per cloud)."""
    pts = point_batch(points)
    R = rotation(axis, angle_deg).to(pts)
    R = R.expand(pts.shape[0], 3, 3) if R.ndim == 2 else R
    out = pts @ R.transpose(-1, -2)
    return out if points.ndim == 3 else out[0]


def random_rotations(n: int, generator: Optional[torch.Generator] = None, up_only: bool = False) -> torch.Tensor:
    """(n, 3, 3) random rotations: uniform over SO(3) (a normalised Gaussian quaternion), or, with
    ``up_only``, about the up axis by a uniform angle in [0, 360)."""
    if up_only:
        return rotation("y", torch.rand(n, generator=generator) * 360.0)
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
    pts = point_batch(points)
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
