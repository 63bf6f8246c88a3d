"""The harmonic (Fourier, positional) embedding that NeRF fields and SDF networks put before their MLPs.

``gamma(x) = [x, sin(w_0 x), ..., sin(w_{L-1} x), cos(w_0 x), ..., cos(w_{L-1} x)]`` with the
octave frequencies ``w_k = base_freq * 2^k`` (radians per world unit). Low frequencies carry the
coarse shape, high ones the detail an MLP cannot otherwise fit ("spectral bias", Tancik et al.
2020). NeRF uses ``base_freq = pi`` (its scenes lie in [-1, 1]^3, so the lowest octave is one
period over the box); the SDF network of notebook 05 uses ``base_freq = 1`` (a gentler start
for a field that must stay close to a distance function).

Layout of the output (D input dimensions, L = ``n_freqs``): the input itself (when
``include_input``), then the D * L sines, then the D * L cosines; inside each block the index is
``d * L + k`` (dimension-major): ``sin(w_0 x_0), sin(w_1 x_0), ..., sin(w_0 x_1), ...``. So the
input occupies the first D features, which the SDF network's geometric initialisation relies on.

Example (CPU):
    >>> emb = HarmonicEmbedding(2, base_freq=1.0)
    >>> emb(torch.tensor([[0.5, 0.0, 0.0]]))[0, :7]  # x, then sin(1 * 0.5), sin(2 * 0.5), sin(0), ...
    tensor([0.5000, 0.0000, 0.0000, 0.4794, 0.8415, 0.0000, 0.0000])
    >>> emb.out_dim(3)
    15
"""
from __future__ import annotations

import math

import torch
from torch import nn


class HarmonicEmbedding(nn.Module):
    """``(..., D) -> (..., D * (2 * n_freqs + include_input))``: see the module docstring.

    Args:
        n_freqs: number of octaves L (>= 0; 0 keeps only the input).
        include_input: put ``x`` itself first.
        base_freq: ``w_0`` in radians per world unit (> 0); ``w_k = base_freq * 2^k``.
    Shapes:
        x: (..., D) float, any D (3 for points, 3 for unit directions) -> (..., out_dim(D)).
    """

    def __init__(self, n_freqs: int, include_input: bool = True, base_freq: float = math.pi):
        super().__init__()
        if int(n_freqs) != n_freqs or n_freqs < 0:
            raise ValueError(f"HarmonicEmbedding: `n_freqs` must be an integer >= 0, got {n_freqs}")
        if not base_freq > 0:
            raise ValueError(f"HarmonicEmbedding: `base_freq` must be > 0, got {base_freq}")
        if n_freqs == 0 and not include_input:
            raise ValueError("HarmonicEmbedding: n_freqs=0 with include_input=False has no output features")
        self.n_freqs, self.include_input, self.base_freq = int(n_freqs), bool(include_input), float(base_freq)
        freqs = self.base_freq * 2.0 ** torch.arange(self.n_freqs, dtype=torch.float32)  # (L,)
        self.register_buffer("freqs", freqs, persistent=False)

    def out_dim(self, in_dim: int = 3) -> int:
        """Number of output features for ``in_dim`` input dimensions."""
        return in_dim * (2 * self.n_freqs + int(self.include_input))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = (x[..., None] * self.freqs).flatten(-2)  # (..., D * L), index d * L + k
        parts = ([x] if self.include_input else []) + [torch.sin(xf), torch.cos(xf)]
        return torch.cat(parts, -1)

    def extra_repr(self) -> str:
        return f"n_freqs={self.n_freqs}, include_input={self.include_input}, base_freq={self.base_freq:.6g}"
