"""PointNet (Qi et al., CVPR 2017) for point-cloud classification and part segmentation (notebook 08).

A PointNet applies the same small MLP to every point independently ("shared MLP": a 1x1
convolution over the point axis), then max-pools over the points. The max is symmetric, so the
output does not depend on the order of the points; the network can only combine points through
that one pooling. Architecture, as in the paper:

- optional **input T-Net**: a mini-PointNet predicts a 3 x 3 matrix applied to the points;
- shared MLP 3 -> 64 -> 64 (the per-point "local" feature, 64 wide);
- optional **feature T-Net**: a 64 x 64 matrix applied to the local features, kept near a
  rotation by :func:`lib.losses.orthogonality_penalty` (weight 0.001 in the paper);
- shared MLP 64 -> 64 -> 128 -> ``global_dim`` (1024), then max-pool: the global feature;
- classification: MLP ``global_dim`` -> 512 -> 256 -> k with dropout before the last layer;
- segmentation: each point's 64-wide local feature concatenated with the tiled global feature
  (64 + ``global_dim``), then a shared MLP -> 512 -> 256 -> 128 -> k per point.

Every hidden layer is followed by BatchNorm and ReLU. Points are (B, N, 3) float, y up (the
course's convention; the network transposes to PyTorch's (B, C, N) inside).

Example:
    >>> net = PointNet(PointNetConfig(num_classes=3, global_dim=32), seed=0).eval()
    >>> tuple(net(torch.rand(2, 50, 3)).shape)
    (2, 3)
    >>> seg = PointNet(PointNetConfig(num_classes=6, task="seg", global_dim=32), seed=0).eval()
    >>> tuple(seg(torch.rand(2, 50, 3)).shape)
    (2, 50, 6)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from lib.models.seeding import seeded


@dataclass(frozen=True)
class PointNetConfig:
    """Settings of a :class:`PointNet`.

    Attributes:
        num_classes: k, the classes (classification) or part labels (segmentation).
        task: "cls" (one label per cloud) or "seg" (one label per point).
        input_transform: predict and apply a 3 x 3 input T-Net.
        feature_transform: predict and apply a 64 x 64 feature T-Net (add its orthogonality
            penalty to the loss: :func:`lib.losses.orthogonality_penalty`).
        global_dim: width of the global feature (1024 in the paper).
        dropout: dropout probability before the classifier's last layer (0.3: keep 0.7).
    """
    num_classes: int
    task: str = "cls"
    input_transform: bool = False
    feature_transform: bool = False
    global_dim: int = 1024
    dropout: float = 0.3

    def __post_init__(self):
        if self.task not in ("cls", "seg"):
            raise ValueError(f"PointNetConfig: `task` must be 'cls' or 'seg', got {self.task!r}")
        if self.num_classes < 2:
            raise ValueError(f"PointNetConfig: `num_classes` must be >= 2, got {self.num_classes}")
        if self.global_dim < 8:
            raise ValueError(f"PointNetConfig: `global_dim` must be >= 8, got {self.global_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"PointNetConfig: `dropout` must be in [0, 1), got {self.dropout}")


def shared_mlp(widths: Sequence[int], last_plain: bool = False) -> nn.Sequential:
    """1x1 Conv1d layers ``widths[0] -> widths[1] -> ...`` over (B, C, N), each followed by
    BatchNorm + ReLU (the last one bare when ``last_plain``: logits)."""
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Conv1d(a, b, 1, bias=last_plain and i == len(widths) - 2))
        if not (last_plain and i == len(widths) - 2):
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def mlp_head(widths: Sequence[int], dropout: float) -> nn.Sequential:
    """Linear layers over (B, C) with BatchNorm + ReLU; dropout before the last (logit) layer."""
    layers = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(widths[-2], widths[-1]))


class TNet(nn.Module):
    """A mini-PointNet that predicts a d x d transform of its (B, d, N) input: shared MLP
    d -> 64 -> 128 -> ``global_dim``, max-pool, MLP -> 512 -> 256 -> d*d, plus the identity (the
    last layer starts at zero, so an untrained T-Net is the identity)."""

    @seeded
    def __init__(self, d: int, global_dim: int = 1024):
        super().__init__()
        self.d = d
        self.features = shared_mlp([d, 64, 128, global_dim])
        self.head = mlp_head([global_dim, 512, 256, d * d], dropout=0.0)
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, d, N) -> (B, d, d)."""
        g = self.features(x).max(dim=2).values
        return self.head(g).view(-1, self.d, self.d) + torch.eye(self.d, device=x.device, dtype=x.dtype)


class PointNet(nn.Module):
    """PointNet classifier or part segmenter (see the module docstring and :class:`PointNetConfig`).

    ``forward(points)`` -> logits: (B, k) for "cls", (B, N, k) for "seg".
    ``forward_with_transform(points)`` -> (logits, feature transform (B, 64, 64) or None).
    ``critical_indices(points)`` -> (B, global_dim) the point that wins each channel's max.
    """

    @seeded
    def __init__(self, config: PointNetConfig):
        super().__init__()
        self.config = c = config
        self.input_tnet = TNet(3, c.global_dim) if c.input_transform else None
        self.local = shared_mlp([3, 64, 64])
        self.feature_tnet = TNet(64, c.global_dim) if c.feature_transform else None
        self.to_global = shared_mlp([64, 64, 128, c.global_dim])
        if c.task == "cls":
            self.head = mlp_head([c.global_dim, 512, 256, c.num_classes], c.dropout)
        else:
            self.head = shared_mlp([64 + c.global_dim, 512, 256, 128, c.num_classes], last_plain=True)

    def encode(self, points: torch.Tensor):
        """(B, N, 3) -> local (B, 64, N) per-point features, pre-pool (B, global_dim, N) features
        (the global feature is their max over N) and the feature transform (B, 64, 64) or None."""
        if points.ndim != 3 or points.shape[-1] != 3:
            raise ValueError(f"PointNet: `points` must be (B, N, 3), got {tuple(points.shape)}")
        x = points.transpose(1, 2)  # (B, 3, N)
        if self.input_tnet is not None:
            x = torch.bmm(self.input_tnet(x).transpose(1, 2), x)  # each point p -> T^T p
        local = self.local(x)  # (B, 64, N)
        transform = None
        if self.feature_tnet is not None:
            transform = self.feature_tnet(local)
            local = torch.bmm(transform.transpose(1, 2), local)
        return local, self.to_global(local), transform

    def critical_indices(self, points: torch.Tensor) -> torch.Tensor:
        """(B, global_dim) int64: for each channel of the global feature, the index of the point
        whose feature is the max (the "critical points" are the distinct indices of a row)."""
        with torch.no_grad():
            return self.encode(points)[1].argmax(dim=2)

    def forward_with_transform(self, points: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        local, pre_pool, transform = self.encode(points)
        glob = pre_pool.max(dim=2).values  # (B, global_dim): the symmetric function (max: cheaper backward than amax)
        if self.config.task == "cls":
            return self.head(glob), transform
        tiled = glob[:, :, None].expand(-1, -1, local.shape[2])
        return self.head(torch.cat([local, tiled], dim=1)).transpose(1, 2), transform

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.forward_with_transform(points)[0]
