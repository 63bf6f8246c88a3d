"""Quality numbers: image PSNR and SSIM, voxel IoU, point-cloud F-score. One home each.

Pure functions. They carry no gradients (they are for reporting), except :func:`ssim`, which is also
a training loss (3D Gaussian splatting's ``L1 + 0.2 (1 - SSIM)``, :mod:`lib.methods.gaussian_splatting`). Chamfer distance is a
loss and a metric at once: it lives in :func:`lib.losses.chamfer_distance` (call it under
``torch.no_grad()`` or take ``.item()`` to report it).

Images are channels-last, as everywhere in the course: (..., H, W, C) float, values in
``[0, data_range]`` (``data_range = 1`` for RGB in [0, 1]).

Example (CPU)::

    >>> a = torch.zeros(4, 4, 4, dtype=torch.bool); a[:2] = True
    >>> b = torch.zeros(4, 4, 4, dtype=torch.bool); b[1:3] = True
    >>> float(voxel_iou(a, b))  # 16 shared of 48 in the union
    0.3333333432674408
    >>> pts = torch.rand(200, 3)
    >>> f_score(pts, pts)[0.01]
    (1.0, 1.0, 1.0)
    >>> float(psnr(torch.full((8, 8, 3), 0.1), torch.zeros(8, 8, 3)))  # MSE 0.01 -> 20 dB
    20.0
    >>> img = torch.rand(2, 16, 16, 3)
    >>> ssim(img, img)
    tensor([1., 1.])
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from lib.checks import shape_of
from lib.losses import nearest_neighbors

DEFAULT_THRESHOLDS = (0.01, 0.02, 0.03, 0.04, 0.05)


# ---------------------------------------------------------------------------------- images
def mse_to_psnr(mse: Union[float, torch.Tensor], data_range: float = 1.0):
    """``PSNR = 10 log10(data_range^2 / mse)`` in dB (inf for mse = 0); float in, float out,
    tensor in, tensor out (e.g. the MSE loss of a training step)."""
    if torch.is_tensor(mse):
        return 10.0 * torch.log10(data_range ** 2 / mse.detach())
    return 10.0 * math.log10(data_range ** 2 / mse) if mse > 0 else math.inf


@torch.no_grad()
def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of the mean squared error over *all* elements, in dB.

    For the mean PSNR of several images (the usual NeRF number), call it per image and average
    (``lib.methods.nerf.evaluate_views`` does); on a stack it gives the PSNR of the pooled MSE.

    Args:
        pred, target: tensors of the same shape, e.g. (H, W, 3) float in [0, data_range]
            (values are not clamped: clamp renders first).
        data_range: the largest possible value minus the smallest (1 for RGB in [0, 1]).
    Returns:
        0-d float tensor, ``10 log10(data_range^2 / mean((pred - target)^2))`` (inf when equal).
    """
    if not torch.is_tensor(pred) or not torch.is_tensor(target) or pred.shape != target.shape:
        shapes = [shape_of(t) for t in (pred, target)]
        raise ValueError(f"psnr: `pred` and `target` must be tensors of the same shape, "
                         f"got {shapes[0]} and {shapes[1]}")
    mse = (pred.double() - target.double()).pow(2).mean()
    return mse_to_psnr(mse, data_range).float()


@torch.no_grad()
def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR of the MSE over the ``mask`` pixels only (the object, not the easy white background).

    Args: pred, target: (..., H, W, C) float; mask: (..., H, W) bool with at least one pixel.
    Returns: 0-d float tensor, dB.
    """
    if pred.shape != target.shape or mask.shape != pred.shape[:-1]:
        raise ValueError(f"masked_psnr: need pred, target (..., H, W, C) and mask (..., H, W), got "
                         f"{tuple(pred.shape)}, {tuple(target.shape)}, {tuple(mask.shape)}")
    if not bool(mask.any()):
        raise ValueError("masked_psnr: the mask is empty")
    mse = (pred.double() - target.double()).pow(2)[mask.bool()].mean()
    return mse_to_psnr(mse, data_range).float()


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, win_size: int = 7) -> torch.Tensor:
    """Structural similarity (Wang et al., 2004) of images, in the form of
    ``skimage.metrics.structural_similarity(target, pred, channel_axis=-1, data_range=...)``.

    Local means, variances and covariance over ``win_size`` x ``win_size`` uniform windows
    (sample covariance, ``N / (N - 1)``), per channel; ``SSIM = mean over the windows that lie
    fully inside the image and over channels`` of
    ``(2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``,
    ``C1 = (0.01 data_range)^2``, ``C2 = (0.03 data_range)^2``. 1 for identical images,
    lower for noise, blur or shifts. Computed in float64.

    Args:
        pred, target: (..., H, W, C) float, same shape, channels last (C = 3 for RGB, 1 for grey),
            H and W >= ``win_size``.
        data_range: the largest possible value minus the smallest (1 for RGB in [0, 1]).
        win_size: odd window side, pixels.
    Returns:
        (...) float32: one SSIM per image (0-d for a single (H, W, C) image).
    """
    if not torch.is_tensor(pred) or not torch.is_tensor(target) or pred.shape != target.shape or pred.ndim < 3:
        shapes = [shape_of(t) for t in (pred, target)]
        raise ValueError(f"ssim: `pred` and `target` must be (..., H, W, C) images of the same shape, "
                         f"got {shapes[0]} and {shapes[1]}")
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"ssim: `win_size` must be odd and >= 3, got {win_size}")
    h, w, c = pred.shape[-3:]
    if min(h, w) < win_size:
        raise ValueError(f"ssim: images of {h}x{w} pixels are smaller than the {win_size}x{win_size} window")
    batch = pred.shape[:-3]
    x, y = (t.double().reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(-1, 1, h, w) for t in (pred, target))
    mean = lambda t: F.avg_pool2d(t, win_size, stride=1)  # (N, 1, H - win + 1, W - win + 1): valid windows
    mu_x, mu_y = mean(x), mean(y)
    n = win_size * win_size
    cov = n / (n - 1)  # sample (co)variances, as skimage's default
    var_x, var_y = cov * (mean(x * x) - mu_x ** 2), cov * (mean(y * y) - mu_y ** 2)
    cov_xy = cov * (mean(x * y) - mu_x * mu_y)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.reshape(-1, c * s.shape[-2] * s.shape[-1]).mean(1).reshape(batch).float()


# ---------------------------------------------------------------------------------- shapes
@torch.no_grad()
def view_scores(pred: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-view PSNR and SSIM of (M, H, W, 3) renders against their images, as two (M,) tensors: how
    every evaluation of novel views scores (NeRF, 3DGS, Splatter Image, baselines). ``pred`` is
    clamped to [0, 1] first (a render may overshoot; the image cannot)."""
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"view_scores: need renders and images of one (M, H, W, C) shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    pred = pred.clamp(0, 1)
    return (torch.stack([psnr(p, t) for p, t in zip(pred, target)]),
            torch.stack([ssim(p, t) for p, t in zip(pred, target)]))


def mean_colour_scores(train_images: torch.Tensor, test_images: torch.Tensor) -> Dict[str, object]:
    """The constant-colour baseline of novel-view synthesis: every test view predicted as the mean
    colour of the training images, scored like the methods (:func:`view_scores`, means over views).

    Args:
        train_images: (..., H, W, 3) in [0, 1]. test_images: (M, H', W', 3).
    Returns:
        dict: ``psnr``, ``ssim`` (floats), ``psnr_per_view``, ``ssim_per_view`` (M,), ``colour`` (3,).
    """
    colour = train_images.reshape(-1, train_images.shape[-1]).float().mean(0)
    p, s = view_scores(colour.to(test_images).expand_as(test_images), test_images)
    return {"psnr": p.mean().item(), "ssim": s.mean().item(), "psnr_per_view": p, "ssim_per_view": s,
            "colour": colour}


def voxel_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of occupied voxels.

    Args:
        pred: (..., R, R, R) bool (threshold probabilities first, e.g. ``probs > 0.5``).
        target: same shape, bool.

    Returns:
        (...) float32 IoU per grid (a scalar for one grid); 1 when both grids are empty.
    """
    if not torch.is_tensor(pred) or not torch.is_tensor(target) or pred.shape != target.shape or pred.ndim < 3:
        shapes = [shape_of(t) for t in (pred, target)]
        raise ValueError(f"`pred` and `target` must be (..., R, R, R) grids of the same shape, got {shapes[0]} and {shapes[1]}")
    if pred.dtype != torch.bool or target.dtype != torch.bool:
        raise ValueError(f"voxel_iou needs bool grids (threshold first, e.g. probs > 0.5), got {pred.dtype} and {target.dtype}")
    inter = (pred & target).flatten(-3).sum(-1).float()
    union = (pred | target).flatten(-3).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@torch.no_grad()
def f_score(pred: torch.Tensor, gt: torch.Tensor,
            thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Dict[float, Tuple[float, float, float]]:
    """Precision, recall and F1 of a predicted point cloud against a ground-truth one.

    At threshold t: precision = fraction of predicted points within Euclidean distance t of
    the nearest ground-truth point; recall = fraction of ground-truth points within t of the
    nearest predicted point; F1 = 2 P R / (P + R) (0 when both are 0). "Within" is ``<= t``.
    (Tatarchenko et al., "What do single-view 3D reconstruction networks learn?", CVPR 2019.)
    Nearest neighbours come from :func:`lib.losses.nearest_neighbors`, as in the chamfer distance.

    Args:
        pred: (N, 3) float, world units. gt: (M, 3) float.
        thresholds: distances t, world units.

    Returns:
        ``{t: (precision, recall, f1)}`` as Python floats.
    """
    for name, p in (("pred", pred), ("gt", gt)):
        if not torch.is_tensor(p) or p.ndim != 2 or p.shape[1] != 3 or p.shape[0] == 0:
            raise ValueError(f"`{name}` must be a non-empty (N, 3) point cloud, got "
                             f"{shape_of(p)}")
    d_pred = nearest_neighbors(pred.float(), gt.float())[0].sqrt()  # (N,)
    d_gt = nearest_neighbors(gt.float(), pred.float())[0].sqrt()  # (M,)
    out = {}
    for t in thresholds:
        p = float((d_pred <= t).float().mean())
        r = float((d_gt <= t).float().mean())
        out[t] = (p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0)
    return out


def _labels(pred: torch.Tensor, target: torch.Tensor, n_classes: int, fn: str):
    if pred.shape != target.shape:
        raise ValueError(f"{fn}: `pred` and `target` must have one shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    for name, x in (("pred", pred), ("target", target)):
        if x.is_floating_point() or (x.numel() and (int(x.min()) < 0 or int(x.max()) >= n_classes)):
            raise ValueError(f"{fn}: `{name}` must hold integer labels in [0, {n_classes - 1}]")


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(C, C) int64 counts: entry [i, j] = how many items of true class i were predicted as j.

    Args: pred, target: integer labels of one shape (any), values in [0, C - 1].
    """
    _labels(pred, target, n_classes, "confusion_matrix")
    flat = target.reshape(-1).long() * n_classes + pred.reshape(-1).long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(C,) float: the fraction of each true class predicted correctly (NaN for a class with no items)."""
    cm = confusion_matrix(pred, target, n_classes).double()
    return (cm.diagonal() / cm.sum(1)).float()


def part_iou(pred: torch.Tensor, target: torch.Tensor, n_parts: int, parts=None,
             pooled: bool = False) -> torch.Tensor:
    """The IoU of each part, ``|pred = p and target = p| / |pred = p or target = p|``.

    Per shape (B, P), where a part that is in neither the labels nor the prediction scores 1 (the
    ShapeNet-part convention: the shape does not have it and none was predicted); or ``pooled`` (P,)
    over every point of every shape (how well the part is found across the test set; 1 for a part
    found nowhere and predicted nowhere).

    Args: pred, target: (B, N) integer part labels in [0, n_parts - 1].
        parts: the part labels to score (default all ``n_parts``); pass the parts the dataset uses
            when some labels never occur.
    """
    _labels(pred, target, n_parts, "part_iou")
    if pred.ndim != 2:
        raise ValueError(f"part_iou: labels must be (B, N), got {tuple(pred.shape)}")
    chosen = list(range(n_parts)) if parts is None else [int(p) for p in parts]
    if not chosen or any(not 0 <= p < n_parts for p in chosen):
        raise ValueError(f"part_iou: `parts` must be labels in [0, {n_parts - 1}], got {parts}")
    parts_t = torch.tensor(chosen, device=pred.device)[None, :, None]  # (1, P, 1)
    p, t = pred[:, None] == parts_t, target[:, None] == parts_t  # (B, P, N)
    inter, union = (p & t).sum(-1).float(), (p | t).sum(-1).float()
    if pooled:
        inter, union = inter.sum(0), union.sum(0)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def part_miou(pred: torch.Tensor, target: torch.Tensor, n_parts: int, parts=None) -> torch.Tensor:
    """Mean part IoU of each shape (B,): the mean over ``parts`` of :func:`part_iou` per shape; its
    mean over shapes is the usual "instance mIoU"."""
    return part_iou(pred, target, n_parts, parts).mean(-1)
