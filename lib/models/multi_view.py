"""Multi-view 3D reconstruction: a set of views in, a coloured point cloud or a voxel grid out.

Two models share one small image encoder (:class:`SmallConvEncoder`, applied to every view with
the same weights) and one idea: views are combined by a *symmetric* pooling across the view axis
(:class:`ViewPool`: max or mean), so the output does not depend on the order of the views.

- :class:`ColoredPointNet`: V fixed views -> (N, 3) points + (N, 3) colours. Per-view features
  are pooled with max *and* mean (concatenated), a fully connected decoder emits the points, and
  a per-point colour head maps (pooled feature, point position) -> RGB.
- :class:`MultiViewVAEGAN`: 1..V views (optionally with their camera poses) -> a 32^3 occupancy
  grid, trained as a 3D-VAE-GAN: encoder -> (mu, logvar) -> z -> 3D transposed-conv generator,
  plus a 3D conv discriminator. The losses (``voxel_bce``, ``kl_divergence``, the GAN losses) are
  in :mod:`lib.losses` (with ``colored_chamfer`` for the point model); the training step
  ``vaegan_step``, the KL schedule ``kl_weight`` and the colour targets ``colors_from_views``
  are in :mod:`lib.methods.recon`.

Shapes: images (B, V, H, W, 3) float in [0, 1] (channels last; the encoders make them channels first
inside); poses c2w (B, V, 4, 4) in the convention of ``lib.cameras``; voxels (B, 32, 32, 32) float {0, 1} indexed [ix, iy, iz]; points world units.

Example (CPU):
    >>> net = ColoredPointNet(ColoredPointNetConfig(n_views=6, image_size=64, n_points=256))
    >>> pts, rgb = net(torch.rand(2, 6, 64, 64, 3))
    >>> pts.shape, rgb.shape
    (torch.Size([2, 256, 3]), torch.Size([2, 256, 3]))
    >>> vg = MultiViewVAEGAN(VAEGANConfig(use_pose=True))
    >>> logits, mu, logvar = vg(torch.rand(2, 4, 64, 64, 3), torch.eye(4).expand(2, 4, 4, 4))
    >>> logits.shape, mu.shape
    (torch.Size([2, 32, 32, 32]), torch.Size([2, 64]))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lib.checks import shape_of
from lib.images import channels_first_hint, to_nchw
from lib.data.r2n2 import VOXEL_RES
from lib.models.seeding import seeded
from lib.voxels import occupancy_logits

POSE_DIM = 12  # pose encoding: the 12 entries of c2w[:3, :4] (rotation columns + camera centre)
FUSIONS = ("mean", "max")


# ============================================================================ checks, pooling
def _check_views(images: torch.Tensor, image_size: int, n_views: Optional[int] = None,
                 name: str = "images") -> None:
    """Raise ``ValueError`` unless ``images`` is (B, V, image_size, image_size, 3) (V = n_views if given)."""
    if not torch.is_tensor(images) or images.ndim != 5 or images.shape[-1] != 3:
        got = shape_of(images)
        raise ValueError(f"`{name}` must be (B, V, H, W, 3), got {got}{channels_first_hint(images, 5)}")
    if n_views is not None and images.shape[1] != n_views:
        raise ValueError(f"`{name}` must hold exactly {n_views} views (B, {n_views}, H, W, 3), "
                         f"got {images.shape[1]} views: shape {tuple(images.shape)}")
    if tuple(images.shape[2:4]) != (image_size, image_size):
        raise ValueError(f"`{name}` must be {image_size}x{image_size} pixels (the model's image_size), got "
                         f"{tuple(images.shape[2:4])}; resize them or build the model with that image_size")


class ViewPool(nn.Module):
    """Symmetric pooling over the view axis: (B, V, C) -> (B, C) for ``mode`` "mean" or "max",
    (B, 2C) for "maxmean" (max and mean concatenated). The result does not depend on view order."""

    MODES = ("mean", "max", "maxmean")

    def __init__(self, mode: str):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"pooling mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.mode == "mean":
            return feats.mean(1)
        if self.mode == "max":
            return feats.amax(1)
        return torch.cat([feats.amax(1), feats.mean(1)], -1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


# ============================================================================ image encoder
class SmallConvEncoder(nn.Module):
    """Shared per-view CNN: (N, 3, S, S) -> (N, out_dim). Four stride-2 3x3 convs (S -> S/16), ReLU,
    then a linear layer. No batch statistics, so a view's feature never depends on the other views.

    Args:
        image_size: S, divisible by 16. channels: conv widths. out_dim: feature size.
    """

    @seeded
    def __init__(self, image_size: int = 64, channels: Sequence[int] = (16, 32, 64, 128), out_dim: int = 128):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be divisible by 16, got {image_size}")
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = c
        self.image_size = image_size
        self.convs = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        self.fc = nn.Linear(c_in * side * side, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.convs(x * 2 - 1).flatten(1)))


# ============================================================================ coloured points
@dataclass
class ColoredPointNetConfig:
    """Settings of :class:`ColoredPointNet`.

    Attributes:
        n_views: the fixed number of views V the model takes.
        image_size: side S of the square views, pixels (divisible by 16).
        n_points: number of output points N.
        feat_dim: per-view feature size C (pooled: 2C, max and mean concatenated).
        hidden: width of the point decoder's hidden layers.
        color_dim: width of the per-point colour head.
    """

    n_views: int = 6
    image_size: int = 64
    n_points: int = 1024
    feat_dim: int = 128
    hidden: int = 512
    color_dim: int = 64


class ColoredPointNet(nn.Module):
    """V views -> coloured point cloud, invariant to the order of the views.

    ``forward(images (B, V, S, S, 3))`` -> ``points (B, N, 3)`` world units, ``colors (B, N, 3)`` in [0, 1].
    """

    @seeded
    def __init__(self, cfg: ColoredPointNetConfig = ColoredPointNetConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = SmallConvEncoder(cfg.image_size, out_dim=cfg.feat_dim)
        self.pool = ViewPool("maxmean")
        self.decoder = nn.Sequential(nn.Linear(2 * cfg.feat_dim, cfg.hidden), nn.ReLU(inplace=True),
                                     nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(inplace=True),
                                     nn.Linear(cfg.hidden, cfg.n_points * 3))
        self.color_global = nn.Linear(2 * cfg.feat_dim, cfg.color_dim)
        self.color_head = nn.Sequential(nn.Linear(cfg.color_dim + 3, cfg.color_dim), nn.ReLU(inplace=True),
                                        nn.Linear(cfg.color_dim, 3))

    @torch.no_grad()
    def set_template(self, points: torch.Tensor, scale: float = 0.1) -> None:
        """Start from a template shape: the decoder's last bias becomes ``points`` (n_points, 3) and its
        weights shrink by ``scale``, so the untrained model predicts (nearly) the template."""
        if tuple(points.shape) != (self.cfg.n_points, 3):
            raise ValueError(f"`points` must be ({self.cfg.n_points}, 3) (n_points, 3), got {tuple(points.shape)}")
        self.decoder[-1].bias.copy_(points.reshape(-1))
        self.decoder[-1].weight.mul_(scale)

    def pooled_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, V, S, S, 3) -> (B, 2C): the shared encoder on every view, then max || mean over views."""
        _check_views(images, self.cfg.image_size, self.cfg.n_views)
        b, v = images.shape[:2]
        x = to_nchw(images.flatten(0, 1), name="images").contiguous()  # (B V, 3, S, S), torch's default layout
        feats = self.encoder(x).view(b, v, -1)  # (B, V, C)
        return self.pool(feats)

    def forward(self, images: torch.Tensor):
        g = self.pooled_features(images)  # (B, 2C)
        points = self.decoder(g).view(g.shape[0], self.cfg.n_points, 3)
        cg = self.color_global(g)[:, None].expand(-1, self.cfg.n_points, -1)  # (B, N, color_dim)
        colors = torch.sigmoid(self.color_head(torch.cat([cg, points], -1)))
        return points, colors


# ============================================================================ 3D-VAE-GAN
@dataclass
class VAEGANConfig:
    """Settings of :class:`MultiViewVAEGAN`.

    Attributes:
        image_size: side S of the square views, pixels (divisible by 16).
        use_pose: append each view's pose encoding (``POSE_DIM`` numbers) to its image feature,
            so the per-view layer's input width is ``feat_dim + POSE_DIM`` instead of ``feat_dim``.
        fusion: "mean" or "max" pooling of the per-view features across views.
        feat_dim: image feature size; latent_dim: size of z.
        gen_channels: channels of the generator at 4^3, 8^3, 16^3 (the discriminator mirrors them).
        max_views: most views accepted (a clear error above it).
    """

    image_size: int = 64
    use_pose: bool = False
    fusion: str = "mean"
    feat_dim: int = 128
    latent_dim: int = 64
    gen_channels: Sequence[int] = (64, 32, 16)
    max_views: int = 24


class MultiViewEncoder(nn.Module):
    """(B, V, S, S, 3) views [+ (B, V, 4, 4) poses] -> mu, logvar (B, latent_dim), order-invariant."""

    @seeded
    def __init__(self, cfg: VAEGANConfig):
        super().__init__()
        if cfg.fusion not in FUSIONS:
            raise ValueError(f"VAEGANConfig.fusion must be one of {FUSIONS}, got {cfg.fusion!r}")
        self.cfg = cfg
        self.image = SmallConvEncoder(cfg.image_size, out_dim=cfg.feat_dim)
        self.in_width = cfg.feat_dim + (POSE_DIM if cfg.use_pose else 0)
        self.view_mlp = nn.Sequential(nn.Linear(self.in_width, cfg.feat_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(cfg.feat_dim, 2 * cfg.latent_dim)
        self.pool = ViewPool(cfg.fusion)

    @staticmethod
    def encode_pose(c2w: torch.Tensor) -> torch.Tensor:
        """(..., 4, 4) camera-to-world (``lib.cameras``) -> (..., POSE_DIM): the rows of
        ``c2w[:3, :4]`` flattened (rotation and camera centre)."""
        if not torch.is_tensor(c2w) or c2w.shape[-2:] != (4, 4):
            got = shape_of(c2w)
            raise ValueError(f"`c2w` must be (..., 4, 4), got {got}")
        return c2w[..., :3, :4].reshape(*c2w.shape[:-2], POSE_DIM)

    def forward(self, images: torch.Tensor, c2w: Optional[torch.Tensor] = None):
        _check_views(images, self.cfg.image_size)
        b, v = images.shape[:2]
        if not 1 <= v <= self.cfg.max_views:
            raise ValueError(f"`images` must hold 1..{self.cfg.max_views} views, got {v}")
        x = to_nchw(images.flatten(0, 1), name="images").contiguous()  # (B V, 3, S, S), torch's default layout
        feats = self.image(x).view(b, v, -1)  # (B, V, feat_dim)
        if self.cfg.use_pose:
            if c2w is None or tuple(c2w.shape) != (b, v, 4, 4):
                got = None if c2w is None else tuple(c2w.shape)
                raise ValueError(f"use_pose=True needs `c2w` of shape {(b, v, 4, 4)} (one pose per view), got {got}")
            feats = torch.cat([feats, self.encode_pose(c2w).to(feats)], -1)  # (B, V, feat_dim + POSE_DIM)
        mu, logvar = self.head(self.pool(self.view_mlp(feats))).chunk(2, -1)
        return mu, logvar.clamp(-10, 10)


class VoxelGenerator(nn.Module):
    """z (B, L) -> occupancy logits (B, 32, 32, 32): linear to 4^3, then 3 transposed 3D convs 4->8->16->32,
    plus a learnable per-voxel ``prior`` logit (zero until :meth:`set_prior` starts it at a mean shape).
    The last convolution starts at zero, so the untrained generator outputs the prior for every z."""

    @seeded
    def __init__(self, latent_dim: int = 64, channels: Sequence[int] = (64, 32, 16)):
        super().__init__()
        c0, c1, c2 = channels
        self.c0 = c0
        self.fc = nn.Linear(latent_dim, c0 * 4 ** 3)
        up = lambda i, o: [nn.ConvTranspose3d(i, o, 4, 2, 1), nn.BatchNorm3d(o), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*up(c0, c1), *up(c1, c2), nn.ConvTranspose3d(c2, 1, 4, 2, 1))
        nn.init.zeros_(self.net[-1].weight)  # the untrained generator outputs the prior exactly,
        nn.init.zeros_(self.net[-1].bias)  # and learns a residual on it
        self.prior = nn.Parameter(torch.zeros((VOXEL_RES,) * 3))

    @torch.no_grad()
    def set_prior(self, mean_occupancy: torch.Tensor, eps: float = 0.02) -> None:
        """Start from a mean shape: prior = logit(clamp(mean_occupancy (32, 32, 32), eps, 1 - eps)),
        so the untrained generator already predicts the average training grid and learns residuals."""
        self.prior.copy_(occupancy_logits(mean_occupancy, eps, VOXEL_RES))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc(z)).view(-1, self.c0, 4, 4, 4)
        return self.net(x)[:, 0] + self.prior


class VoxelDiscriminator(nn.Module):
    """Occupancy (B, 32, 32, 32) in [0, 1] -> realness logit (B,): 3 strided 3D convs 32->16->8->4, linear."""

    @seeded
    def __init__(self, channels: Sequence[int] = (16, 32, 64)):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [nn.Conv3d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in * 4 ** 3, 1)

    def forward(self, voxels: torch.Tensor) -> torch.Tensor:
        if voxels.ndim != 4 or tuple(voxels.shape[1:]) != (VOXEL_RES,) * 3:
            raise ValueError(f"`voxels` must be (B, 32, 32, 32), got {tuple(voxels.shape)}")
        return self.fc(self.net(voxels[:, None] * 2 - 1).flatten(1))[:, 0]


class MultiViewVAEGAN(nn.Module):
    """Encoder + generator (+ discriminator, trained separately by :func:`vaegan_step`).

    ``forward(images, c2w=None, sample=False)`` -> ``logits (B, 32, 32, 32)``, ``mu``, ``logvar (B, L)``;
    ``sample=True`` draws z = mu + sigma * eps (training), else z = mu (evaluation).
    """

    @seeded
    def __init__(self, cfg: VAEGANConfig = VAEGANConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = MultiViewEncoder(cfg)
        self.generator = VoxelGenerator(cfg.latent_dim, cfg.gen_channels)
        self.discriminator = VoxelDiscriminator(tuple(reversed(cfg.gen_channels)))

    def forward(self, images, c2w=None, sample: bool = False, generator: Optional[torch.Generator] = None):
        mu, logvar = self.encoder(images, c2w)
        z = mu
        if sample:
            eps = torch.randn(mu.shape, generator=generator, device="cpu").to(mu)
            z = mu + (0.5 * logvar).exp() * eps
        return self.generator(z), mu, logvar

    def ae_parameters(self):
        """Encoder + generator parameters (the discriminator has its own optimizer)."""
        return list(self.encoder.parameters()) + list(self.generator.parameters())
