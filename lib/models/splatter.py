"""Splatter Image (Szymanowicz, Rupprecht and Vedaldi, CVPR 2024): one image in, one 3D Gaussian per pixel out.

A U-Net (plain torch: residual conv blocks with GroupNorm + SiLU, stride-2 downsampling, nearest
upsampling, skip connections) maps the input view to ``12 + 3K`` numbers per pixel. Each pixel
(u, v) becomes one Gaussian (:func:`lib.render.gaussians.pixel.pixel_gaussians` does the geometry):

- depth ``z = near + (far - near) * sigmoid(.)``: the Gaussian sits at camera z-depth ``z`` on the
  pixel's ray (``z * ((u - cx) / fx, (v - cy) / fy, 1)`` in the input camera's frame),
- plus a small offset ``max_offset * tanh(.)`` (camera frame, world units),
- opacity ``sigmoid(.)``,
- scale: ``s * z / sqrt(fx fy)`` per axis, i.e. ``s`` pixels at the Gaussian's depth, with
  ``s = exp(log(min) + (log(max) - log(min)) * sigmoid(.))`` between ``scale_min`` and ``scale_max``,
- rotation: a normalised quaternion (wxyz) in the input camera's frame, turned into the world frame
  by ``quat_multiply(rotmat_to_quat(R_c2w), q_cam)``,
- colour: SH coefficients (degree 0, or 1 with the degree-1 band rotated to the world frame).
  With ``color_skip`` the degree-0 coefficient is ``rgb_to_sh0(input pixel) + head``, so the
  network learns a correction of the pixel's own colour.

The head starts near a "card": every Gaussian at mid depth, with no offset or rotation,
``scale_init`` pixels wide, opacity ``opacity_init`` and the pixel's colour; rendered into the input
view this reproduces the input image (the paper, too, starts its heads from chosen biases: small
scales, a set opacity, zero offsets), so training starts from the flat-card baseline.

Images are channels-last as everywhere in the course: ``(B, H, W, C_in)`` float in [0, 1]; channel
3, when ``in_channels == 4``, is the relative inverse depth of :func:`lib.pretrained.depth.depth_channel`.

Example (CPU):
    >>> from lib.cameras import intrinsics_from_fov, orbit_poses
    >>> net = SplatterImage(SplatterConfig(channels=(8, 16), groups=4))
    >>> out = net(torch.rand(2, 16, 16, 3), orbit_poses(torch.tensor([0.0, 90.0]), 20.0, 1.3),
    ...           intrinsics_from_fov(50.0, 16).expand(2, 3, 3))
    >>> out["means"].shape, out["quats"].shape, out["sh"].shape, out["depth"].shape
    (torch.Size([2, 256, 3]), torch.Size([2, 256, 4]), torch.Size([2, 256, 1, 3]), torch.Size([2, 16, 16]))
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn

from lib.checks import shape_of
from lib.models.seeding import seeded
from lib.render.gaussians import rgb_to_sh0
from lib.render.gaussians.pixel import pixel_gaussians


@dataclass
class SplatterConfig:
    """Settings of :class:`SplatterImage`.

    Attributes:
        in_channels: 3 (RGB) or 4 (RGB + relative inverse depth).
        channels: U-Net widths, one per resolution level (the image is halved ``len - 1`` times,
            so H and W must be divisible by ``2 ** (len(channels) - 1)``).
        blocks: residual blocks per level (encoder and decoder side each).
        groups: GroupNorm groups (must divide every width).
        near, far: depth range of the Gaussians, camera z, world units (SRN cars: 0.8, 1.8).
        max_offset: bound of the 3D offset from the ray point, world units.
        sh_degree: 0 (RGB) or 1 (view-dependent colour, 4 coefficients per channel).
        scale_min, scale_max: bounds of a Gaussian's scale, in pixels at its depth.
        scale_init: initial scale, pixels (inside the bounds).
        opacity_init: initial opacity, in (0, 1).
        color_skip: add the input pixel's colour to the predicted degree-0 coefficient.
    """

    in_channels: int = 3
    channels: Sequence[int] = (32, 64, 128)
    blocks: int = 1
    groups: int = 8
    near: float = 0.8
    far: float = 1.8
    max_offset: float = 0.1
    sh_degree: int = 0
    scale_min: float = 0.05
    scale_max: float = 16.0
    scale_init: float = 0.3
    opacity_init: float = 0.5
    color_skip: bool = True

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        if self.in_channels not in (3, 4):
            raise ValueError(f"in_channels must be 3 (RGB) or 4 (RGB + depth), got {self.in_channels}")
        if self.sh_degree not in (0, 1):
            raise ValueError(f"sh_degree must be 0 or 1, got {self.sh_degree}")
        if not 0 < self.near < self.far:
            raise ValueError(f"need 0 < near < far, got near={self.near}, far={self.far}")
        if not 0 < self.scale_min < self.scale_init < self.scale_max:
            raise ValueError(f"need 0 < scale_min < scale_init < scale_max, got {self.scale_min}, "
                             f"{self.scale_init}, {self.scale_max}")
        if not 0 < self.opacity_init < 1:
            raise ValueError(f"opacity_init must be in (0, 1), got {self.opacity_init}")
        if not self.channels or any(c % self.groups for c in self.channels):
            raise ValueError(f"every width in channels {self.channels} must be divisible by groups={self.groups}")


class _ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv3x3, twice, plus a (1x1 when widths differ) skip: (B, cin, H, W) -> (B, cout, H, W)."""

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(min(groups, cin), cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
                                  nn.GroupNorm(groups, cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class SplatterImage(nn.Module):
    """The Splatter Image network: an image and its camera -> one world-frame Gaussian per pixel.

    Args:
        config: :class:`SplatterConfig`.
    Shapes (forward):
        images: (B, H, W, C_in) float in [0, 1], channels-last (RGB, then the optional depth channel).
        c2w: (B, 4, 4) camera-to-world of the input view (``lib.cameras`` convention).
        K: (B, 3, 3) or (3, 3) intrinsics of the input view, pixels.
    Returns:
        dict of world-frame Gaussians, N = H * W in row-major pixel order (row i, column j -> i W + j):
        ``means`` (B, N, 3) world; ``quats`` (B, N, 4) unit wxyz, world frame; ``scales`` (B, N, 3) > 0
        world units; ``opacities`` (B, N) in (0, 1); ``sh`` (B, N, K, 3) SH coefficients (K = 1 or 4,
        world frame; degree 0 alone is ``rgb_to_sh0`` of the colour); ``depth`` (B, H, W) the
        predicted camera z along each pixel's ray (before the offset), for pictures.
    """

    @seeded
    def __init__(self, config: SplatterConfig = SplatterConfig()):
        super().__init__()
        self.config = cfg = config
        ch, g = cfg.channels, cfg.groups
        self.n_sh = (cfg.sh_degree + 1) ** 2
        self.stem = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(nn.Sequential(*[_ResBlock(c, c, g) for _ in range(cfg.blocks)]) for c in ch)
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(ch[:-1], ch[1:]))
        self.ups = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(b, a, 3, padding=1))
                                 for a, b in zip(ch[:-1], ch[1:]))
        self.up_blocks = nn.ModuleList(
            nn.Sequential(_ResBlock(2 * c, c, g), *[_ResBlock(c, c, g) for _ in range(cfg.blocks - 1)]) for c in ch[:-1])
        self.head = nn.Sequential(nn.GroupNorm(g, ch[0]), nn.SiLU(), nn.Conv2d(ch[0], 12 + 3 * self.n_sh, 1))
        self._init_head()

    # outputs: depth 1 | offset 3 | opacity 1 | scale 3 | rotation 4 | sh 3K
    @torch.no_grad()
    def _init_head(self) -> None:
        """Small head weights and biases that give the card of the module docstring."""
        cfg, conv = self.config, self.head[-1]
        conv.weight.mul_(0.01)
        bias = torch.zeros(conv.bias.shape)
        bias[4] = math.log(cfg.opacity_init / (1 - cfg.opacity_init))
        frac = (math.log(cfg.scale_init) - math.log(cfg.scale_min)) / (math.log(cfg.scale_max) - math.log(cfg.scale_min))
        bias[5:8] = math.log(frac / (1 - frac))
        bias[8] = 1.0  # identity quaternion
        conv.bias.copy_(bias)

    def _check(self, images: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor) -> None:
        cfg = self.config
        if not torch.is_tensor(images) or images.ndim != 4 or images.shape[-1] != cfg.in_channels:
            got = shape_of(images)
            raise ValueError(f"`images` must be (B, H, W, {cfg.in_channels}) channels-last, got {got}")
        f = 2 ** (len(cfg.channels) - 1)
        if images.shape[1] % f or images.shape[2] % f:
            raise ValueError(f"`images` height and width must be divisible by {f} (the U-Net halves them "
                             f"{len(cfg.channels) - 1} times), got {tuple(images.shape[1:3])}")
        if tuple(c2w.shape) != (images.shape[0], 4, 4):
            raise ValueError(f"`c2w` must be (B, 4, 4) = ({images.shape[0]}, 4, 4), got {tuple(c2w.shape)}")
        if K.shape[-2:] != (3, 3) or K.ndim not in (2, 3):
            raise ValueError(f"`K` must be (B, 3, 3) or (3, 3), got {tuple(K.shape)}")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The U-Net's raw per-pixel outputs: (B, H, W, C_in) -> (B, H, W, 12 + 3K), before activations."""
        x = self.stem(images.permute(0, 3, 1, 2) * 2 - 1)
        skips = []
        for i, block in enumerate(self.down_blocks):
            x = block(x)
            if i < len(self.downs):
                skips.append(x)
                x = self.downs[i](x)
        for i in reversed(range(len(self.ups))):
            x = self.up_blocks[i](torch.cat([self.ups[i](x), skips[i]], 1))
        return self.head(x).permute(0, 2, 3, 1)

    def forward(self, images: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor) -> dict:
        self._check(images, c2w, K)
        cfg = self.config
        raw = self.features(images)
        depth = cfg.near + (cfg.far - cfg.near) * torch.sigmoid(raw[..., 0])
        offset = cfg.max_offset * torch.tanh(raw[..., 1:4])
        opacity = torch.sigmoid(raw[..., 4])
        lo, hi = math.log(cfg.scale_min), math.log(cfg.scale_max)
        scale_px = torch.exp(lo + (hi - lo) * torch.sigmoid(raw[..., 5:8]))
        quat = raw[..., 8:12]
        sh = raw[..., 12:].unflatten(-1, (self.n_sh, 3))
        if cfg.color_skip:
            sh = torch.cat([sh[..., :1, :] + rgb_to_sh0(images[..., None, :3]), sh[..., 1:, :]], -2)
        out = pixel_gaussians(depth, c2w, K.expand(images.shape[0], 3, 3), offset=offset, scale_px=scale_px,
                              quats=quat, opacities=opacity, sh=sh)
        out["depth"] = depth
        return out

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
