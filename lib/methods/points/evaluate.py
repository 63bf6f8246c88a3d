"""Evaluating point-cloud classifiers and segmenters (notebook 08): predictions, reports, the
robustness sweeps (rotation, number of points) and the baselines a network must beat.

Clouds are (S, N, 3) float, y up; classification labels (S,) int64, segmentation labels (S, N)
int64. Metrics come from ``lib.metrics`` (confusion matrix, per-class accuracy, part mIoU).

Baselines (no learning beyond counting and averaging):

- **majority**: always the most frequent training class (per-point: the most frequent part);
- **nearest mean** (classification): each cloud is summarised by a permutation-invariant
  descriptor (:func:`shape_descriptor`: bounding-box extents and a histogram of distances to the
  centroid); a test cloud gets the class whose mean training descriptor is nearest
  (standardised features);
- **position prior** (segmentation): the most frequent training part in each cell of a voxel grid
  (:func:`position_prior_segment`); it is strong on aligned data, which is exactly why it is the
  bar a per-point network has to clear.

Example:
    >>> pts = torch.rand(4, 30, 3) - 0.5
    >>> tuple(shape_descriptor(pts).shape)
    (4, 19)
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from lib.metrics import confusion_matrix, part_miou, per_class_accuracy
from lib.methods.points.augment import random_rotations, rotate_points
from lib.methods.points.train import check_point_labels, random_point_subsets, take_points


@torch.no_grad()
def predict_labels(model: torch.nn.Module, points: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Argmax predictions of ``model`` in eval mode (its mode is restored afterwards): (S, N, 3)
    -> (S,) or (S, N) int64 on the CPU, ``batch_size`` clouds at a time on the model's device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [model(chunk.to(device)).argmax(-1).cpu() for chunk in points.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def classification_report(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """{"accuracy": float, "per_class": [float] * k, "confusion": (k, k) int64 (rows: truth)}."""
    return {"accuracy": (pred == labels).float().mean().item(),
            "per_class": per_class_accuracy(pred, labels, num_classes).tolist(),
            "confusion": confusion_matrix(pred, labels, num_classes)}


def segmentation_report(pred: torch.Tensor, labels: torch.Tensor, num_parts: int,
                        parts: Optional[Sequence[int]] = None) -> dict:
    """{"accuracy": per-point accuracy over all points, "miou": mean over shapes of the part mIoU
    (over ``parts``, default all), "shape_accuracy": (S,) float, "shape_miou": (S,) float}."""
    shape_acc = (pred == labels).float().mean(1)
    shape_miou = part_miou(pred, labels, num_parts, parts=parts)
    return {"accuracy": shape_acc.mean().item(), "miou": shape_miou.mean().item(),
            "shape_accuracy": shape_acc, "shape_miou": shape_miou}


def score(model: torch.nn.Module, points: torch.Tensor, labels: torch.Tensor, num_classes: int,
          parts: Optional[Sequence[int]] = None, batch_size: int = 16) -> dict:
    """Predict and report: :func:`classification_report` or :func:`segmentation_report` (task from
    the labels' shape), plus "pred"."""
    task = check_point_labels(points, labels, "score")
    pred = predict_labels(model, points, batch_size)
    labels = labels.cpu()
    report = (classification_report(pred, labels, num_classes) if task == "cls"
              else segmentation_report(pred, labels, num_classes, parts))
    return {**report, "pred": pred}


def rotation_sweep(model: torch.nn.Module, points: torch.Tensor, labels: torch.Tensor, num_classes: int,
                   angles: Sequence[float] = (0, 10, 20, 30, 60, 90), axis: str = "x", so3: bool = True,
                   seed: int = 0, parts: Optional[Sequence[int]] = None, batch_size: int = 16) -> list:
    """Accuracy (and mIoU for segmentation) of ``model`` on the test clouds rotated by each angle
    about ``axis`` (through the origin; the default "x" tips the objects forwards), and, with
    ``so3``, by one random rotation per cloud (uniform over SO(3), seeded by ``seed``).
    Returns [{"rotation": "30°" or "random SO(3)", "accuracy": float, ("miou": float)}]."""
    check_point_labels(points, labels, "rotation_sweep")
    cases = [(f"{a:g}°", rotate_points(points, float(a), axis)) for a in angles]
    if so3:
        R = random_rotations(points.shape[0], torch.Generator().manual_seed(seed)).to(points)
        cases.append(("random SO(3)", points @ R.transpose(-1, -2)))
    rows = []
    for name, pts in cases:
        r = score(model, pts, labels, num_classes, parts, batch_size)
        rows.append({"rotation": name, "accuracy": r["accuracy"], **({"miou": r["miou"]} if "miou" in r else {})})
    return rows


def point_count_sweep(model: torch.nn.Module, points: torch.Tensor, labels: torch.Tensor, num_classes: int,
                      counts: Sequence[int] = (10000, 1000, 500, 100, 50), seed: int = 0,
                      parts: Optional[Sequence[int]] = None, batch_size: int = 16) -> list:
    """Accuracy (and mIoU) with each cloud reduced to a random subset of ``counts`` points (per
    cloud, seeded by ``seed``). Counts larger than the clouds' N are an error.
    Returns [{"points": n, "accuracy": float, ("miou": float)}]."""
    check_point_labels(points, labels, "point_count_sweep")
    rows = []
    for n in counts:
        if not 1 <= int(n) <= points.shape[1]:
            raise ValueError(f"point_count_sweep: each count must be between 1 and the {points.shape[1]} points "
                             f"per cloud, got {n} (load the test set with more points)")
        idx = random_point_subsets(points.shape[0], points.shape[1], int(n), torch.Generator().manual_seed(seed))
        pts, lab = take_points(points, idx, labels)
        r = score(model, pts, lab, num_classes, parts, batch_size)
        rows.append({"points": int(n), "accuracy": r["accuracy"], **({"miou": r["miou"]} if "miou" in r else {})})
    return rows


# ------------------------------------------------------------------------------ baselines
def majority_label(train_labels: torch.Tensor) -> int:
    """The most frequent label in the training labels (any shape)."""
    return int(torch.bincount(train_labels.reshape(-1)).argmax())


def shape_descriptor(points: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """(S, N, 3) -> (S, 3 + bins) permutation-invariant summary: the bounding-box extents and the
    normalised histogram of each point's distance to the cloud's centroid (over [0, max distance
    of the cloud's points], so the histogram is scale-free; the extents carry the size)."""
    extents = points.amax(1) - points.amin(1)
    d = (points - points.mean(1, keepdim=True)).norm(dim=-1)
    d = d / d.amax(1, keepdim=True).clamp_min(1e-9)
    cell = (d * bins).long().clamp_max(bins - 1)
    hist = torch.zeros(points.shape[0], bins).scatter_add_(1, cell.cpu(), torch.ones(cell.shape)) / points.shape[1]
    return torch.cat([extents.cpu(), hist], 1)


def nearest_mean_classify(train_points: torch.Tensor, train_labels: torch.Tensor, test_points: torch.Tensor,
                          num_classes: int) -> torch.Tensor:
    """The nearest-class-mean baseline on :func:`shape_descriptor` (standardised with the training
    statistics): (S_test,) int64 predictions."""
    f_train, f_test = shape_descriptor(train_points), shape_descriptor(test_points)
    mu, sd = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    f_train, f_test = (f_train - mu) / sd, (f_test - mu) / sd
    means = torch.stack([f_train[train_labels.cpu() == c].mean(0) for c in range(num_classes)])
    return torch.cdist(f_test, means).argmin(1)


def position_prior_segment(train_points: torch.Tensor, train_labels: torch.Tensor, test_points: torch.Tensor,
                           num_parts: int, grid: int = 8, extent: float = 0.7) -> torch.Tensor:
    """The position-prior baseline: the most frequent training part label in each cell of a
    ``grid``^3 voxel grid over [-extent, extent]^3 (points outside are clamped to the border
    cells; empty cells get the overall majority). (S_test, N) int64 predictions."""
    def cells(p):
        ijk = ((p.cpu() + extent) / (2 * extent) * grid).long().clamp(0, grid - 1)
        return (ijk[..., 0] * grid + ijk[..., 1]) * grid + ijk[..., 2]

    counts = torch.zeros(grid ** 3 * num_parts)
    counts.scatter_add_(0, (cells(train_points) * num_parts + train_labels.cpu()).reshape(-1),
                        torch.ones(train_labels.numel()))
    counts = counts.view(grid ** 3, num_parts)
    best = counts.argmax(1)
    best[counts.sum(1) == 0] = majority_label(train_labels)
    return best[cells(test_points)]
