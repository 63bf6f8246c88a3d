"""A neural signed distance field with a colour head (notebook 05).

:class:`SDFNetwork` is an MLP ``x -> (f(x), features)`` on harmonic (Fourier) features of x
(:class:`lib.models.embedding.HarmonicEmbedding`, frequencies ``2^k``), with the *geometric
initialisation* of SAL/IDR (it starts as the SDF of a sphere), plus a colour head
``(x, features) -> rgb``. What turns its SDF into a density or an opacity (VolSDF, NeuS) is in
:mod:`lib.render.sdf_density`; the eikonal regulariser is :func:`lib.losses.eikonal_loss`.

Conventions: ``f`` is negative inside, positive outside, world units; points are (N, 3) float32
world. Nothing here imports PyTorch3D.

Example (CPU)::

    >>> net = SDFNetwork(init_radius=0.5)
    >>> sdf, feat = net(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    >>> sdf.shape, feat.shape  # geometric init: about -0.5 at the centre, +0.5 at distance 1
    (torch.Size([2]), torch.Size([2, 32]))
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lib.models.embedding import HarmonicEmbedding
from lib.models.seeding import seeded


class SDFNetwork(nn.Module):
    """An SDF MLP with a colour head.

    ``f, features = net(x)``: harmonic features of x -> ``n_layers`` Softplus layers of width
    ``hidden`` -> 1 + ``n_features`` outputs. ``net.color(x, features)`` maps to RGB in (0, 1)
    (no view dependence: surfaces are treated as diffuse).

    Geometric initialisation (Atzmon & Lipman, SAL, 2020; as in IDR/NeuS): hidden weights
    ~ N(0, 2 / fan_out), the harmonic (non-xyz) inputs of the first layer start at zero (the
    embedding puts xyz first), and the last layer's SDF row has mean ``sqrt(pi / hidden)`` and
    bias ``-init_radius``. The network then starts as roughly ``|x| - init_radius``: a sphere,
    with ``|grad f|`` near 1, which sphere tracing and volume rendering need from the first step.

    Args:
        n_freqs: octaves of the embedding, frequencies ``2^k`` for k < n_freqs (0: plain xyz).
        hidden, n_layers: width and number of hidden layers of the SDF trunk.
        n_features: width of the feature vector passed to the colour head.
        color_hidden: width of the colour head's hidden layer.
        init_radius: radius of the initial sphere, world units.
        softplus_beta: sharpness of the Softplus activations (smooth, so ``grad f`` is smooth).
        geometric_init: False uses PyTorch's default initialisation (for comparison).
    """

    @seeded
    def __init__(self, n_freqs: int = 6, hidden: int = 64, n_layers: int = 4, n_features: int = 32,
                 color_hidden: int = 64, init_radius: float = 0.5, softplus_beta: float = 100.0,
                 geometric_init: bool = True):
        super().__init__()
        self.embed = HarmonicEmbedding(n_freqs, include_input=True, base_freq=1.0)
        dims = [self.embed.out_dim(3)] + [hidden] * n_layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(hidden, 1 + n_features)
        self.act = nn.Softplus(beta=softplus_beta)
        self.color_head = nn.Sequential(nn.Linear(3 + n_features, color_hidden), nn.ReLU(),
                                        nn.Linear(color_hidden, 3))
        self.n_features = n_features
        if geometric_init:
            self._geometric_init(init_radius)

    @torch.no_grad()
    def _geometric_init(self, radius: float) -> None:
        for i, layer in enumerate(self.layers):
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / layer.out_features))
            nn.init.zeros_(layer.bias)
            if i == 0:
                layer.weight[:, 3:] = 0.0  # the embedding's first 3 features are xyz; harmonics start silent
        hidden = self.out.in_features
        nn.init.normal_(self.out.weight[:1], math.sqrt(math.pi / hidden), 1e-4)
        self.out.bias[:1] = -radius

    def forward(self, x: torch.Tensor):
        """x: (..., 3) world -> sdf (...,) and features (..., n_features)."""
        if x.shape[-1] != 3:
            raise ValueError(f"SDFNetwork: `x` must be (..., 3) points, got {tuple(x.shape)}")
        h = self.embed(x)
        for layer in self.layers:
            h = self.act(layer(h))
        out = self.out(h)
        return out[..., 0], out[..., 1:]

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        """(..., 3) -> (...,) signed distances: the callable sphere tracing and marching cubes take."""
        return self(x)[0]

    def color(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(..., 3) points and (..., n_features) features -> (..., 3) RGB in (0, 1)."""
        return torch.sigmoid(self.color_head(torch.cat([x, features], -1)))
