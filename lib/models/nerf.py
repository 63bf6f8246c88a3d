"""Radiance fields: NeRF's MLP on harmonic features, and a box-shaped density to fit by hand.

Every field here is a callable ``(points (..., 3), dirs (..., 3)) -> (sigma (...,), rgb (..., 3))``
(world frame, unit directions), the ``field_fn`` that :func:`lib.render.volume.volume_render`
takes: the renderer owns no model, the model knows nothing about rays.

Example:
    >>> field = NeRFField(NeRFConfig(hidden=32, n_layers=2, skip=None))
    >>> sigma, rgb = field(torch.rand(4, 8, 3), torch.nn.functional.normalize(torch.randn(4, 8, 3), dim=-1))
    >>> sigma.shape, rgb.shape
    (torch.Size([4, 8]), torch.Size([4, 8, 3]))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from lib.geometry import box_sdf
from lib.models.embedding import HarmonicEmbedding
from lib.models.seeding import seeded


@dataclass
class NeRFConfig:
    """Settings of :class:`NeRFField`.

    Attributes:
        n_freqs_xyz: octaves of the position encoding (10 in the paper); frequencies ``pi 2^k``
            (:class:`lib.models.embedding.HarmonicEmbedding` with ``base_freq = pi``).
        n_freqs_dir: octaves of the direction encoding (4 in the paper).
        hidden: width of the position MLP (256 in the paper).
        n_layers: depth of the position MLP (8 in the paper).
        skip: index of the layer that sees the encoded input again (4), or None.
        hidden_dir: width of the colour head (128).
        view_dependent: feed the viewing direction to the colour head. False makes colour a
            function of position only (a Lambertian world: no highlights, no reflections).
        scene_scale: positions are divided by it first, so the scene lies in about [-1, 1]^3.
        density_bias: added to the raw density before the softplus; negative starts the field
            almost empty (transparent), which helps the first steps.
    """

    n_freqs_xyz: int = 10
    n_freqs_dir: int = 4
    hidden: int = 256
    n_layers: int = 8
    skip: Optional[int] = 4
    hidden_dir: int = 128
    view_dependent: bool = True
    scene_scale: float = 1.0
    density_bias: float = -1.0


class NeRFField(nn.Module):
    """NeRF's MLP: position -> (density, feature); feature (+ direction) -> colour.

    The density depends on position only (geometry is the same from every side); the colour may
    also depend on the viewing direction (specular highlights).
    """

    @seeded
    def __init__(self, config: NeRFConfig = None):
        super().__init__()
        c = self.config = config or NeRFConfig()
        self.embed_xyz, self.embed_dir = HarmonicEmbedding(c.n_freqs_xyz), HarmonicEmbedding(c.n_freqs_dir)
        d_in = self.embed_xyz.out_dim(3)
        layers = []
        for i in range(c.n_layers):
            d = d_in if i == 0 else c.hidden + (d_in if c.skip is not None and i == c.skip else 0)
            layers.append(nn.Linear(d, c.hidden))
        self.layers = nn.ModuleList(layers)
        self.sigma_head = nn.Linear(c.hidden, 1)
        self.feature = nn.Linear(c.hidden, c.hidden)
        d_dir = self.embed_dir.out_dim(3) if c.view_dependent else 0
        self.rgb_head = nn.Sequential(nn.Linear(c.hidden + d_dir, c.hidden_dir), nn.ReLU(),
                                      nn.Linear(c.hidden_dir, 3))

    def density(self, points: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(..., 3) world points -> sigma (...,) >= 0 and features (..., hidden)."""
        e = self.embed_xyz(points / self.config.scene_scale)
        h = e
        for i, layer in enumerate(self.layers):
            if self.config.skip is not None and i == self.config.skip and i > 0:
                h = torch.cat([h, e], -1)
            h = F.relu(layer(h))
        sigma = F.softplus(self.sigma_head(h)[..., 0] + self.config.density_bias)
        return sigma, h

    def color(self, h: torch.Tensor, dirs: torch.Tensor = None) -> torch.Tensor:
        """Features (..., hidden) of :meth:`density` (+ unit dirs (..., 3) when view-dependent)
        -> rgb (..., 3) in (0, 1)."""
        f = self.feature(h)
        if self.config.view_dependent:
            f = torch.cat([f, self.embed_dir(dirs)], -1)
        return torch.sigmoid(self.rgb_head(f))

    def forward(self, points: torch.Tensor, dirs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """points (..., 3) world, dirs (..., 3) unit -> sigma (...,), rgb (..., 3) in (0, 1)."""
        sigma, h = self.density(points)
        return sigma, self.color(h, dirs)


# ---------------------------------------------------------------------- a box to fit
class BoxDensity(nn.Module):
    """A box of constant density with a colour that varies over it; centre and sides learnable.

    ``sigma = density * sigmoid(-sdf / softness)``: dense inside, empty outside, with a soft wall
    so gradients reach the box parameters from pixels near its silhouette. The colour is a fixed
    function of the position *relative to the box* (a gradient from corner to corner), so every
    face looks different and the views constrain the centre and each side.

    Args:
        center: (3,) initial centre, world. sides: (3,) initial side lengths (> 0).
        density: sigma inside (1 / world unit). softness: width of the wall (world units).
    """

    def __init__(self, center=(0.0, 0.0, 0.0), sides=(1.0, 1.0, 1.0), density: float = 50.0,
                 softness: float = 0.02):
        super().__init__()
        sides = torch.as_tensor(sides, dtype=torch.float32)
        if sides.shape != (3,) or (sides <= 0).any():
            raise ValueError(f"`sides` must be 3 positive lengths, got {sides.tolist()}")
        self.center = nn.Parameter(torch.as_tensor(center, dtype=torch.float32).clone())
        self.log_sides = nn.Parameter(sides.log())
        self.density, self.softness = float(density), float(softness)

    @property
    def sides(self) -> torch.Tensor:
        return self.log_sides.exp()

    def forward(self, points: torch.Tensor, dirs: torch.Tensor = None):
        """points (..., 3) -> sigma (...,), rgb (..., 3)."""
        sides = self.sides
        sigma = self.density * torch.sigmoid(-box_sdf(points, self.center, sides) / self.softness)
        local = ((points - self.center) / sides + 0.5).clamp(0, 1)  # (0, 0, 0) .. (1, 1, 1) corners
        rgb = 0.15 + 0.8 * local
        return sigma, rgb
