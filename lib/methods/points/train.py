"""Training point-cloud classifiers and part segmenters with ``lib.train.fit`` (notebook 08).

:func:`make_point_step` returns the ``step_fn`` of :func:`lib.train.fit` for any model that maps
(B, N, 3) points to logits, (B, k) (classification) or (B, N, k) (segmentation): PointNet,
DGCNN. Each step draws a batch of clouds and, for each cloud, a fresh random subset of its points
(a cheap augmentation: the network never sees the same sample twice), optionally augments them
(``lib.methods.points.augment.augment_points``: rotation, jitter, scale, point dropout), and takes one
optimizer step on the cross-entropy (plus PointNet's orthogonality penalty when the model has a
feature T-Net). Evaluation is in :mod:`lib.methods.points.evaluate`.

Example:
    >>> from lib.models.pointnet import PointNet, PointNetConfig
    >>> net = PointNet(PointNetConfig(num_classes=2, global_dim=16), seed=0)
    >>> pts, labels = torch.rand(6, 40, 3), torch.tensor([0, 1, 0, 1, 0, 1])
    >>> step = make_point_step(net, torch.optim.Adam(net.parameters()), pts, labels,
    ...                        torch.Generator().manual_seed(0), batch_size=4, num_points=20)
    >>> sorted(step(0))
    ['acc', 'loss']
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from lib.losses import orthogonality_penalty
from lib.methods.points.augment import augment_points
from lib.train import Stopwatch, global_stream_from


def check_point_labels(points: torch.Tensor, labels: torch.Tensor, who: str) -> str:
    """Check (S, N, 3) float points against (S,) or (S, N) int64 labels; return the task, "cls"
    or "seg" (from the labels' shape)."""
    if not torch.is_tensor(points) or points.ndim != 3 or points.shape[-1] != 3 or not points.is_floating_point():
        got = f"{tuple(points.shape)} {points.dtype}" if torch.is_tensor(points) else type(points).__name__
        raise ValueError(f"{who}: `points` must be (S, N, 3) float, got {got}")
    if not torch.is_tensor(labels) or labels.dtype != torch.int64 or labels.shape not in (points.shape[:1],
                                                                                          points.shape[:2]):
        got = f"{tuple(labels.shape)} {labels.dtype}" if torch.is_tensor(labels) else type(labels).__name__
        raise ValueError(f"{who}: `labels` must be int64 (S,) = {tuple(points.shape[:1])} (classification) or "
                         f"(S, N) = {tuple(points.shape[:2])} (segmentation), got {got}")
    return "cls" if labels.ndim == 1 else "seg"


def random_point_subsets(n_clouds: int, n_total: int, n_keep: int, generator: torch.Generator) -> torch.Tensor:
    """(n_clouds, n_keep) int64: for each cloud, ``n_keep`` distinct indices into its ``n_total``
    points, uniformly at random (drawn on the CPU from ``generator``)."""
    if not 1 <= n_keep <= n_total:
        raise ValueError(f"num_points must be between 1 and the {n_total} points per cloud, got {n_keep}")
    if n_keep == n_total:
        return torch.arange(n_total).expand(n_clouds, n_total)
    return torch.rand(n_clouds, n_total, generator=generator).argsort(dim=1)[:, :n_keep]


def take_points(points: torch.Tensor, idx: torch.Tensor, labels: Optional[torch.Tensor] = None):
    """Gather ``idx`` (S, n) from (S, N, 3) points and, for (S, N) per-point labels, the same
    entries of the labels (classification labels (S,) pass through). Returns (points, labels)."""
    idx = idx.to(points.device)
    sub = torch.gather(points, 1, idx[..., None].expand(-1, -1, points.shape[-1]))
    if labels is not None and labels.ndim == 2:
        labels = torch.gather(labels, 1, idx.to(labels.device))
    return sub, labels


def make_point_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, points: torch.Tensor,
                    labels: torch.Tensor, generator: torch.Generator, batch_size: int = 32,
                    num_points: Optional[int] = None, augment: Optional[dict] = None,
                    transform_weight: float = 0.001) -> Callable[[int], dict]:
    """The ``step_fn`` of :func:`lib.train.fit` for point-cloud classification or segmentation.

    Args:
        model: (B, n, 3) -> logits (B, k) or (B, n, k); a PointNet with a feature T-Net adds
            ``transform_weight * orthogonality_penalty`` (it has ``forward_with_transform``).
        points: (S, N, 3) float training clouds, on the model's device.
        labels: (S,) (classification) or (S, N) (segmentation) int64, same device.
        generator: a CPU ``torch.Generator``: the batch, the point subsets, the augmentation and the
            dropout masks are drawn from it (put it in fit's ``state`` so a resumed run draws the same).
        batch_size: clouds per step (drawn without replacement within a step).
        num_points: points per cloud per step (a fresh random subset each step); None: all N.
        augment: keyword arguments of :func:`lib.methods.points.augment.augment_points` (rotation, jitter,
            scale, dropout), or None for none.
    Returns:
        ``step -> {"loss": float, "acc": float}`` (accuracy of this batch: per cloud or per point).
    """
    task = check_point_labels(points, labels, "make_point_step")
    S, N = points.shape[:2]
    if not 1 <= batch_size <= S:
        raise ValueError(f"make_point_step: `batch_size` must be between 1 and the {S} clouds, got {batch_size}")
    n = N if num_points is None else int(num_points)
    random_point_subsets(1, N, n, torch.Generator())  # checks num_points now, not at step 0
    augment = dict(augment or {})

    def step(_: int) -> dict:
        model.train()
        rows = torch.randperm(S, generator=generator)[:batch_size]
        idx = random_point_subsets(batch_size, N, n, generator)
        pts, lab = take_points(points[rows.to(points.device)], idx, labels[rows.to(labels.device)])
        if augment:
            pts = augment_points(pts, generator, **augment)
        transform = None
        with global_stream_from(generator, points.device):  # dropout's masks, from the generator
            if hasattr(model, "forward_with_transform"):
                logits, transform = model.forward_with_transform(pts)
            else:
                logits = model(pts)
            k = logits.shape[-1]
            loss = F.cross_entropy(logits.reshape(-1, k), lab.reshape(-1))
            if transform is not None and transform_weight > 0:
                loss = loss + transform_weight * orthogonality_penalty(transform)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        acc = (logits.detach().argmax(-1) == lab).float().mean()
        return {"loss": loss.item(), "acc": acc.item()}

    step.task = task
    return step


def seconds_per_step(model: torch.nn.Module, points: torch.Tensor, labels: torch.Tensor, batch_size: int = 32,
                     num_points: Optional[int] = None, n_steps: int = 5) -> float:
    """Wall-clock seconds of one training step of ``model`` (forward, backward, Adam), timed on a
    deep copy after one warm-up step, so the model itself is untouched and a reused (already
    trained) run can still report its cost. Median of ``n_steps`` steps."""
    import copy
    import statistics

    twin = copy.deepcopy(model)
    step = make_point_step(twin, torch.optim.Adam(twin.parameters()), points, labels,
                           torch.Generator().manual_seed(0), batch_size, num_points)
    step(0)
    times = []
    for i in range(n_steps):
        with Stopwatch(points.device) as watch:
            step(i + 1)
        times.append(watch.seconds)
    return statistics.median(times)
