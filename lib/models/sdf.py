"""Neural signed distance fields and the SDF-to-density conversions of VolSDF and NeuS.

- :class:`SDFNetwork`: an MLP ``x -> (f(x), features)`` on harmonic (Fourier) features of x, with
  the *geometric initialisation* of SAL/IDR (it starts as the SDF of a sphere), plus a colour head
  ``(x, features) -> rgb``.
- :func:`volsdf_density`: VolSDF's ``sigma = alpha * Psi_beta(-f)``, ``Psi_beta`` the Laplace CDF.
- :func:`neus_alpha` / :func:`neus_weights`: NeuS's discrete opacity from the logistic CDF.
- :func:`eikonal_loss`, :func:`eikonal_error`: how far ``|grad f|`` is from 1.
- :func:`chamfer_distance`: symmetric mean nearest-neighbour distance of two point sets (pure torch).

Conventions: ``f`` is negative inside, positive outside, world units; points are (N, 3) float32
world. Nothing here imports PyTorch3D.

Example (CPU)::

    >>> net = SDFNetwork(init_radius=0.5)
    >>> sdf, feat = net(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    >>> sdf.shape, feat.shape  # geometric init: about -0.5 at the centre, +0.5 at distance 1
    (torch.Size([2]), torch.Size([2, 32]))
    >>> volsdf_density(torch.tensor([-1.0, 0.0, 1.0]), alpha=10.0, beta=0.1)
    tensor([9.9998e+00, 5.0000e+00, 2.2700e-04])
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


# ------------------------------------------------------------------------------- network
class HarmonicEmbedding(nn.Module):
    """``x -> (x, sin(2^k x), cos(2^k x) for k < n_harmonics)``: (..., 3) -> (..., 3 (1 + 2 L)).

    Low frequencies first; ``n_harmonics = 0`` is the identity. The frequencies are ``2^k``
    (no factor pi), suited to scenes inside roughly [-1.5, 1.5]^3.
    """

    def __init__(self, n_harmonics: int = 6):
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.arange(n_harmonics, dtype=torch.float32))  # (L,)
        self.out_dim = 3 * (1 + 2 * n_harmonics)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = (x[..., None, :] * self.freqs[:, None]).flatten(-2)  # (..., 3 L)
        return torch.cat([x, xf.sin(), xf.cos()], -1)


class SDFNetwork(nn.Module):
    """An SDF MLP with a colour head.

    ``f, features = net(x)``: harmonic features of x -> ``n_layers`` Softplus layers of width
    ``hidden`` -> 1 + ``n_features`` outputs. ``net.color(x, features)`` maps to RGB in (0, 1)
    (no view dependence: surfaces are treated as diffuse).

    Geometric initialisation (Atzmon & Lipman, SAL, 2020; as in IDR/NeuS): hidden weights
    ~ N(0, 2 / fan_out), the harmonic (non-xyz) inputs of the first layer start at zero, and the
    last layer's SDF row has mean ``sqrt(pi / hidden)`` and bias ``-init_radius``. The network then
    starts as roughly ``|x| - init_radius``: a sphere, with ``|grad f|`` near 1, which sphere
    tracing and volume rendering need from the first step.

    Args:
        n_harmonics: frequencies of :class:`HarmonicEmbedding` (0: plain xyz).
        hidden, n_layers: width and number of hidden layers of the SDF trunk.
        n_features: width of the feature vector passed to the colour head.
        color_hidden: width of the colour head's hidden layer.
        init_radius: radius of the initial sphere, world units.
        softplus_beta: sharpness of the Softplus activations (smooth, so ``grad f`` is smooth).
        geometric_init: False uses PyTorch's default initialisation (for comparison).
    """

    def __init__(self, n_harmonics: int = 6, hidden: int = 64, n_layers: int = 4, n_features: int = 32,
                 color_hidden: int = 64, init_radius: float = 0.5, softplus_beta: float = 100.0,
                 geometric_init: bool = True):
        super().__init__()
        self.embed = HarmonicEmbedding(n_harmonics)
        dims = [self.embed.out_dim] + [hidden] * n_layers
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
                layer.weight[:, 3:] = 0.0  # harmonics start silent: the initial field is smooth
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


# ----------------------------------------------------------------- SDF -> density / opacity
def _positive(x, name: str, fn: str):
    if (torch.as_tensor(x) <= 0).any():
        raise ValueError(f"{fn}: `{name}` must be > 0, got {x}")


def laplace_cdf(s: torch.Tensor, beta) -> torch.Tensor:
    """CDF of the zero-mean Laplace distribution with scale ``beta`` (elementwise):
    ``0.5 exp(s / beta)`` for ``s <= 0``, ``1 - 0.5 exp(-s / beta)`` for ``s > 0``."""
    e = 0.5 * torch.exp(-s.abs() / beta)
    return torch.where(s <= 0, e, 1.0 - e)


def volsdf_density(sdf: torch.Tensor, alpha, beta) -> torch.Tensor:
    """VolSDF density (Yariv et al., 2021, eq. 2-3): ``sigma = alpha * Psi_beta(-sdf)``.

    ``Psi_beta`` is the Laplace CDF (:func:`laplace_cdf`), so the density is ``alpha / 2`` on the
    surface, tends to ``alpha`` deep inside and decays like ``exp(-sdf / beta)`` outside. ``beta``
    is the width of the transition (smaller: sharper surface, harder to optimise); the paper ties
    ``alpha = 1 / beta``, here both are free so they can be studied apart.

    Args:
        sdf: (...) signed distances, negative inside. alpha: > 0, density scale (1 / world units).
        beta: > 0, transition width, world units. Either may be a float or a broadcastable tensor.
    Returns:
        sigma: (...) densities >= 0, same shape as ``sdf``.
    """
    _positive(alpha, "alpha", "volsdf_density")
    _positive(beta, "beta", "volsdf_density")
    return alpha * laplace_cdf(-sdf, beta)


def neus_alpha(sdf_prev: torch.Tensor, sdf_next: torch.Tensor, s) -> torch.Tensor:
    """NeuS discrete opacity (Wang et al., 2021, eq. 13) of the interval between two samples.

    ``alpha = max((Phi_s(f_prev) - Phi_s(f_next)) / Phi_s(f_prev), 0)`` with the logistic CDF
    ``Phi_s(x) = sigmoid(s x)``. Entering the surface (f falling through 0) gives opacity; leaving
    it (f rising) gives none. ``s`` is the inverse width of the surface (larger: sharper). The
    weights ``alpha_i prod_{j<i} (1 - alpha_j)`` peak *at* the zero crossing (unbiased).

    Args:
        sdf_prev, sdf_next: (...) SDF at the start and end of each interval (same shape).
        s: > 0, float or broadcastable tensor.
    Returns:
        alpha: (...) opacities in [0, 1].
    """
    _positive(s, "s", "neus_alpha")
    if sdf_prev.shape != sdf_next.shape:
        raise ValueError(f"neus_alpha: `sdf_prev` {tuple(sdf_prev.shape)} and `sdf_next` "
                         f"{tuple(sdf_next.shape)} must have the same shape")
    # 1 - Phi(f_next) / Phi(f_prev), as a difference of log-sigmoids: exact where both are tiny
    log_ratio = nn.functional.logsigmoid(s * sdf_next) - nn.functional.logsigmoid(s * sdf_prev)
    return (-torch.expm1(log_ratio)).clamp(0.0, 1.0)


def neus_weights(sdf: torch.Tensor, s) -> torch.Tensor:
    """Rendering weights of NeuS along rays: (R, S) SDF at S sorted samples -> (R, S - 1) weights
    ``w_i = alpha_i prod_{j<i} (1 - alpha_j)`` of the S - 1 intervals (``alpha`` from
    :func:`neus_alpha`). They sum to at most 1 (the ray's opacity)."""
    if sdf.ndim != 2 or sdf.shape[1] < 2:
        raise ValueError(f"neus_weights: `sdf` must be (R, S) with S >= 2, got {tuple(sdf.shape)}")
    alpha = neus_alpha(sdf[:, :-1], sdf[:, 1:], s)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
    return alpha * trans


def volsdf_field(model: SDFNetwork, alpha, beta) -> Callable:
    """A ``field_fn(points (R, S, 3), dirs (R, S, 3)) -> (sigma (R, S), rgb (R, S, 3))`` for
    ``lib.render.volume.volume_render``: the SDF network seen through :func:`volsdf_density`."""

    def field(points: torch.Tensor, dirs: torch.Tensor):
        sdf, features = model(points)
        return volsdf_density(sdf, alpha, beta), model.color(points, features)

    return field


# ---------------------------------------------------------------------------- losses
def _check_grad(grad: torch.Tensor, fn: str) -> None:
    if not torch.is_tensor(grad) or grad.shape[-1:] != (3,):
        got = tuple(grad.shape) if torch.is_tensor(grad) else type(grad).__name__
        raise ValueError(f"{fn}: `grad` must be (..., 3) SDF gradients, got {got}")


def eikonal_loss(grad: torch.Tensor) -> torch.Tensor:
    """Eikonal regulariser ``mean((|grad f| - 1)^2)`` (IGR, Gropp et al., 2020): a true SDF has
    unit gradient norm. ``grad``: (..., 3) from ``sdf_gradient(..., create_graph=True)``."""
    _check_grad(grad, "eikonal_loss")
    return (grad.norm(dim=-1) - 1.0).pow(2).mean()


def eikonal_error(grad: torch.Tensor) -> torch.Tensor:
    """``mean(| |grad f| - 1 |)``: the eikonal violation in plain units (0 for a true SDF)."""
    _check_grad(grad, "eikonal_error")
    return (grad.norm(dim=-1) - 1.0).abs().mean()


# ---------------------------------------------------------------------------- evaluation
def nearest_distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(N,) Euclidean distance from each point of ``a`` (N, 3) to its nearest point in ``b``
    (M, 3), by ``torch.cdist`` over chunks of ``a`` (memory ``chunk x M``)."""
    for name, x in (("a", a), ("b", b)):
        if not torch.is_tensor(x) or x.ndim != 2 or x.shape[1] != 3 or x.shape[0] == 0:
            got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"nearest_distances: `{name}` must be (N, 3) with N > 0, got {got}")
    out = []
    for p in a.split(chunk):
        nearest = torch.cdist(p, b).argmin(1)  # fast (matrix-product) distances pick the neighbour
        out.append((p - b[nearest]).norm(dim=-1))  # then the exact distance to it
    return torch.cat(out)


def chamfer_distance(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Symmetric chamfer distance, world units: ``(mean_a d(a, B) + mean_b d(b, A)) / 2`` with
    ``d`` the distance to the nearest point (not squared). ``a``: (N, 3), ``b``: (M, 3).
    Returns a 0-d tensor. Pure torch (no PyTorch3D ``knn_points``)."""
    return 0.5 * (nearest_distances(a, b, chunk).mean() + nearest_distances(b, a, chunk).mean())
