"""Quality numbers for 3D reconstructions: voxel IoU, chamfer distance, F-score.

Pure functions without gradients (they are for reporting, not training).

Example (CPU)::

    >>> a = torch.zeros(4, 4, 4, dtype=torch.bool); a[:2] = True
    >>> b = torch.zeros(4, 4, 4, dtype=torch.bool); b[1:3] = True
    >>> float(voxel_iou(a, b))  # 16 shared of 48 in the union
    0.3333333432674408
    >>> pts = torch.rand(200, 3)
    >>> f_score(pts, pts)[0.01]
    (1.0, 1.0, 1.0)
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch

from lib.losses import chamfer_distance, nearest_sq_dists

DEFAULT_THRESHOLDS = (0.01, 0.02, 0.03, 0.04, 0.05)


@torch.no_grad()
def voxel_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of occupied voxels.

    Args:
        pred: (..., R, R, R) bool (threshold probabilities first, e.g. ``probs > 0.5``).
        target: same shape, bool.

    Returns:
        (...) float32 IoU per grid (a scalar for one grid); 1 when both grids are empty.
    """
    if not torch.is_tensor(pred) or not torch.is_tensor(target) or pred.shape != target.shape or pred.ndim < 3:
        shapes = [tuple(t.shape) if torch.is_tensor(t) else type(t).__name__ for t in (pred, target)]
        raise ValueError(f"`pred` and `target` must be (..., R, R, R) grids of the same shape, got {shapes[0]} and {shapes[1]}")
    if pred.dtype != torch.bool or target.dtype != torch.bool:
        raise ValueError(f"voxel_iou needs bool grids (threshold first, e.g. probs > 0.5), got {pred.dtype} and {target.dtype}")
    inter = (pred & target).flatten(-3).sum(-1).float()
    union = (pred | target).flatten(-3).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@torch.no_grad()
def chamfer_l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`lib.losses.chamfer_distance` without gradients: (B,) for (B, N, 3) and (B, M, 3)
    clouds, or a scalar for (N, 3) and (M, 3). Squared Euclidean distances, summed both ways."""
    cd = chamfer_distance(x, y)
    return cd[0] if x.ndim == 2 else cd


@torch.no_grad()
def f_score(pred: torch.Tensor, gt: torch.Tensor,
            thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Dict[float, Tuple[float, float, float]]:
    """Precision, recall and F1 of a predicted point cloud against a ground-truth one.

    At threshold t: precision = fraction of predicted points within Euclidean distance t of
    the nearest ground-truth point; recall = fraction of ground-truth points within t of the
    nearest predicted point; F1 = 2 P R / (P + R) (0 when both are 0). "Within" is ``<= t``.
    (Tatarchenko et al., "What do single-view 3D reconstruction networks learn?", CVPR 2019.)

    Args:
        pred: (N, 3) float, world units. gt: (M, 3) float.
        thresholds: distances t, world units.

    Returns:
        ``{t: (precision, recall, f1)}`` as Python floats.
    """
    for name, p in (("pred", pred), ("gt", gt)):
        if not torch.is_tensor(p) or p.ndim != 2 or p.shape[1] != 3 or p.shape[0] == 0:
            raise ValueError(f"`{name}` must be a non-empty (N, 3) point cloud, got "
                             f"{tuple(p.shape) if torch.is_tensor(p) else type(p).__name__}")
    d_pred = nearest_sq_dists(pred[None].float(), gt[None].float())[0].sqrt()  # (N,)
    d_gt = nearest_sq_dists(gt[None].float(), pred[None].float())[0].sqrt()  # (M,)
    out = {}
    for t in thresholds:
        p = float((d_pred <= t).float().mean())
        r = float((d_gt <= t).float().mean())
        out[t] = (p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0)
    return out
