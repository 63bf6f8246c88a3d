"""From a signed distance to what a volume renderer needs: VolSDF's density, NeuS's opacity.

- :func:`laplace_cdf`: the CDF VolSDF is built on.
- :func:`volsdf_density`: VolSDF's ``sigma = alpha * Psi_beta(-f)``, ``Psi_beta`` the Laplace CDF.
- :func:`neus_alpha` / :func:`neus_weights`: NeuS's discrete opacity from the logistic CDF.
- :func:`volsdf_field`: an SDF network seen as a ``field_fn`` for
  :func:`lib.render.volume.volume_render`.

Conventions: ``f`` (``sdf``) is negative inside, positive outside, world units. Pure functions,
differentiable in the SDF values; nothing here holds state or imports PyTorch3D.

Example (CPU)::

    >>> volsdf_density(torch.tensor([-1.0, 0.0, 1.0]), alpha=10.0, beta=0.1)
    tensor([9.9998e+00, 5.0000e+00, 2.2700e-04])
    >>> neus_weights(torch.tensor([[0.2, 0.1, -0.1, -0.2]]), s=50.0).shape  # (R, S) -> (R, S - 1)
    torch.Size([1, 3])
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def _positive(x, name: str, fn: str):
    if (torch.as_tensor(x) <= 0).any():
        raise ValueError(f"{fn}: `{name}` must be > 0, got {x}")


def laplace_cdf(s: torch.Tensor, beta) -> torch.Tensor:
    """CDF of the zero-mean Laplace distribution with scale ``beta`` (elementwise):
    ``0.5 exp(s / beta)`` for ``s <= 0``, ``1 - 0.5 exp(-s / beta)`` for ``s > 0``.

    Args:
        s: (...) float. beta: > 0, float or a tensor broadcastable to ``s``.
    Returns:
        (...) values in [0, 1].
    """
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
    log_ratio = F.logsigmoid(s * sdf_next) - F.logsigmoid(s * sdf_prev)
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


def volsdf_field(model, alpha, beta) -> Callable:
    """A ``field_fn(points (R, S, 3), dirs (R, S, 3)) -> (sigma (R, S), rgb (R, S, 3))`` for
    :func:`lib.render.volume.volume_render`: an SDF network seen through :func:`volsdf_density`.

    Args:
        model: callable ``points (..., 3) -> (sdf (...), features (..., F))`` with a method
            ``model.color(points, features) -> (..., 3)`` (e.g. :class:`lib.models.sdf.SDFNetwork`).
        alpha, beta: as in :func:`volsdf_density`.
    """
    _positive(alpha, "alpha", "volsdf_field")
    _positive(beta, "beta", "volsdf_field")

    def field(points: torch.Tensor, dirs: torch.Tensor):
        sdf, features = model(points)
        return volsdf_density(sdf, alpha, beta), model.color(points, features)

    return field
