"""DGCNN (Wang et al., "Dynamic Graph CNN for Learning on Point Clouds", TOG 2019): PointNet plus
locality, for classification and part segmentation (notebook 08).

PointNet sees each point alone until its single max-pool, so it cannot describe the shape *around*
a point (a thin leg looks like any other few points). DGCNN's **EdgeConv** gives every point a
neighbourhood: for point i and each of its k nearest neighbours j, an MLP sees the edge feature
``[x_i, x_j - x_i]`` (where the point is, and where its neighbour is relative to it), and a max over
the k neighbours gives the new feature of i. The max keeps permutation invariance. The graph is
**dynamic**: after the first layer the k nearest neighbours are found again in the layer's
*feature* space (``lib.losses.nearest_neighbors`` on features of any width), so points far apart
but alike (two arm rests) can exchange information.

Layers (``widths``, default the paper's):

- classification: EdgeConv 64, 64, 128, 256; their outputs concatenated (512) -> shared MLP
  ``emb_dim`` (1024) -> max-pool and mean-pool concatenated -> MLP 512 -> 256 -> k, dropout 0.5;
- segmentation: EdgeConv 64, 64, 64; concatenated (192) -> ``emb_dim`` -> max-pool, tiled,
  concatenated with the 192 per-point features -> shared MLP 256 -> 256 -> 128 -> k per point.

EdgeConv MLPs are one linear layer + BatchNorm + LeakyReLU(0.2) on each of the (B, 2C, N, k) edge
features (computed without building them: :class:`EdgeConv`). Points are
(B, N, 3) float, y up. Cost: k times a PointNet layer's activations, plus one (N x N) distance
matrix per layer (chunked), so use fewer points or smaller k on a CPU.

Example:
    >>> net = DGCNN(DGCNNConfig(num_classes=3, k=4, widths=(8, 8), emb_dim=16), seed=0).eval()
    >>> tuple(net(torch.rand(2, 30, 3)).shape)
    (2, 3)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

from lib.losses import nearest_neighbors
from lib.models.pointnet import mlp_head, shared_mlp
from lib.models.seeding import seeded

CLS_WIDTHS = (64, 64, 128, 256)
SEG_WIDTHS = (64, 64, 64)


@dataclass(frozen=True)
class DGCNNConfig:
    """Settings of a :class:`DGCNN`.

    Attributes:
        num_classes: k classes (classification) or part labels (segmentation).
        task: "cls" or "seg".
        k: neighbours per point (20 in the paper).
        widths: output width of each EdgeConv layer (None: the paper's for ``task``).
        emb_dim: width of the shared layer before pooling (1024 in the paper).
        dropout: dropout before the classifier's last layer (0.5).
    """
    num_classes: int
    task: str = "cls"
    k: int = 20
    widths: Optional[Tuple[int, ...]] = None
    emb_dim: int = 1024
    dropout: float = 0.5

    def __post_init__(self):
        if self.task not in ("cls", "seg"):
            raise ValueError(f"DGCNNConfig: `task` must be 'cls' or 'seg', got {self.task!r}")
        if self.num_classes < 2 or self.k < 1 or self.emb_dim < 8:
            raise ValueError(f"DGCNNConfig: need num_classes >= 2, k >= 1, emb_dim >= 8; got "
                             f"{self.num_classes}, {self.k}, {self.emb_dim}")
        if self.widths is None:
            object.__setattr__(self, "widths", CLS_WIDTHS if self.task == "cls" else SEG_WIDTHS)
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"DGCNNConfig: `widths` must be positive layer widths, got {self.widths}")


def knn_graph(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C, N) point features -> (B, N, k) int64 indices of each point's k nearest neighbours in
    this feature space (the point itself first, at distance 0; k is clamped to N). Not
    differentiated, as in DGCNN."""
    pts = x.detach().transpose(1, 2)
    with torch.no_grad():
        _, idx = nearest_neighbors(pts, pts, backend="torch", k=min(k, x.shape[2]))
    return idx if idx.ndim == 3 else idx[..., None]


def edge_features(x: torch.Tensor, k: int) -> torch.Tensor:
    """DGCNN's edge features of (B, C, N) point features: for every point i and each of its k
    nearest neighbours j (:func:`knn_graph`), ``[x_i, x_j - x_i]``. Returns (B, 2C, N, k).
    :class:`EdgeConv` computes a linear layer of these without building them (see there)."""
    B, C, N = x.shape
    idx = knn_graph(x, k)
    kk = idx.shape[-1]
    pts = x.transpose(1, 2)  # (B, N, C)
    neighbours = torch.gather(pts, 1, idx.reshape(B, N * kk, 1).expand(-1, -1, C)).reshape(B, N, kk, C)
    centre = pts[:, :, None].expand(-1, -1, kk, -1)
    return torch.cat([centre, neighbours - centre], dim=-1).permute(0, 3, 1, 2)


class EdgeConv(nn.Module):
    """One EdgeConv layer: (B, C, N) -> (B, out, N), the max over the k neighbours of
    LeakyReLU(BN(W [x_i, x_j - x_i])).

    The linear part is computed without the (B, 2C, N, k) edge tensor: with W = [W_1, W_2],
    ``W_1 x_i + W_2 (x_j - x_i) = W_2 x_j + (W_1 - W_2) x_i``, so two per-point 1x1 convolutions
    (``neighbour`` = W_2, ``centre`` = W_1 - W_2) and a gather give the same numbers at 1/k of the
    multiply-adds (``weight()`` returns the equivalent W)."""

    @seeded
    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.k = k
        self.neighbour = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.centre = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.post = nn.Sequential(nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True))

    def weight(self) -> torch.Tensor:
        """(out, 2C): the W of ``W [x_i, x_j - x_i]``."""
        w2 = self.neighbour.weight[..., 0]
        return torch.cat([self.centre.weight[..., 0] + w2, w2], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, N = x.shape
        idx = knn_graph(x, self.k)  # (B, N, k)
        a = self.neighbour(x)  # (B, out, N)
        kk = idx.shape[-1]
        a_j = torch.gather(a, 2, idx.reshape(B, 1, N * kk).expand(-1, a.shape[1], -1)).view(B, -1, N, kk)
        h = a_j + self.centre(x)[..., None]  # (B, out, N, k)
        return self.post(h).max(dim=-1).values  # max, not amax: a cheaper backward


class DGCNN(nn.Module):
    """DGCNN classifier or part segmenter (see the module docstring).

    ``forward(points)``: (B, N, 3) -> logits (B, k) for "cls", (B, N, k) for "seg".
    """

    @seeded
    def __init__(self, config: DGCNNConfig):
        super().__init__()
        self.config = c = config
        ins = (3,) + c.widths[:-1]
        self.edge_convs = nn.ModuleList(EdgeConv(a, b, c.k) for a, b in zip(ins, c.widths))
        cat = sum(c.widths)
        self.embed = shared_mlp([cat, c.emb_dim])
        if c.task == "cls":
            self.head = mlp_head([2 * c.emb_dim, 512, 256, c.num_classes], c.dropout)
        else:
            self.head = shared_mlp([cat + c.emb_dim, 256, 256, 128, c.num_classes], last_plain=True)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if points.ndim != 3 or points.shape[-1] != 3:
            raise ValueError(f"DGCNN: `points` must be (B, N, 3), got {tuple(points.shape)}")
        x, feats = points.transpose(1, 2), []
        for conv in self.edge_convs:
            x = conv(x)
            feats.append(x)
        local = torch.cat(feats, dim=1)  # (B, sum(widths), N)
        emb = self.embed(local)  # (B, emb_dim, N)
        if self.config.task == "cls":
            return self.head(torch.cat([emb.max(dim=2).values, emb.mean(dim=2)], dim=1))
        tiled = emb.max(dim=2, keepdim=True).values.expand(-1, -1, local.shape[2])
        return self.head(torch.cat([local, tiled], dim=1)).transpose(1, 2)
