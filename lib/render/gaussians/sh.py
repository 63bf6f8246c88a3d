"""View-dependent colour with real spherical harmonics of degree 0-3 (as in the original 3DGS).

A Gaussian stores K = (degree + 1)^2 coefficients per colour channel. Its colour seen along the
unit direction ``d = (mean - camera centre) / |...|`` is ``clamp_min(sum_k sh_k Y_k(d) + 0.5, 0)``.
The basis ``Y_k`` is the real SH basis with the sign convention of the original 3DGS code
(degree 1 is ``C1 * (-y, z, -x)``), so coefficients trained by the usual tools render the same.
Degree 0 alone is a constant colour ``C0 * sh_0 + 0.5``: :func:`rgb_to_sh0` / :func:`sh0_to_rgb`.
:func:`rotate_sh1` carries coefficients of degree <= 1 from one frame to another.

Example:
    >>> sh = torch.zeros(5, 16, 3)
    >>> sh[:, 0] = rgb_to_sh0(torch.tensor([0.2, 0.4, 0.6]))
    >>> dirs = torch.randn(5, 3)
    >>> (eval_sh(sh, dirs, 3) + 0.5)[0]
    tensor([0.2000, 0.4000, 0.6000])
"""
from __future__ import annotations

import torch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
      0.5462742152960396)
C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
      -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def num_sh_bases(degree: int) -> int:
    """Number of SH coefficients per channel up to ``degree``: ``(degree + 1) ** 2``."""
    return (degree + 1) ** 2


def rgb_to_sh0(rgb: torch.Tensor) -> torch.Tensor:
    """Degree-0 coefficient whose (view-independent) colour is ``rgb``: ``(rgb - 0.5) / C0``."""
    return (rgb - 0.5) / C0


def sh0_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Colour of a degree-0 coefficient, before the clamp: ``C0 * x + 0.5``."""
    return C0 * x + 0.5


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Real SH basis values at unit directions.

    Args:
        dirs: (..., 3) unit directions.
        degree: 0..3.

    Returns:
        (..., (degree + 1)^2) basis values in the coefficient order of 3DGS.
    """
    if degree not in (0, 1, 2, 3):
        raise ValueError(f"SH degree must be 0, 1, 2 or 3, got {degree}")
    out = [torch.full_like(dirs[..., 0], C0)]
    if degree >= 1:
        x, y, z = dirs.unbind(-1)
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [C2[0] * xy, C2[1] * yz, C2[2] * (2 * zz - xx - yy), C2[3] * xz, C2[4] * (xx - yy)]
    if degree >= 3:
        out += [C3[0] * y * (3 * xx - yy), C3[1] * xy * z, C3[2] * y * (4 * zz - xx - yy),
                C3[3] * z * (2 * zz - 3 * xx - 3 * yy), C3[4] * x * (4 * zz - xx - yy),
                C3[5] * z * (xx - yy), C3[6] * x * (xx - 3 * yy)]
    return torch.stack(out, dim=-1)


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Raw SH colour (no +0.5, no clamp).

    Args:
        sh: (..., K, 3) coefficients, K >= (degree + 1)^2 (extra ones are ignored).
        dirs: (..., 3) view directions, any nonzero length (normalised inside); broadcastable with
            ``sh``'s leading dims.
        degree: SH degree to use, 0..3.

    Returns:
        (..., 3) ``sum_k sh[..., k, :] * Y_k(dirs)``.
    """
    k = num_sh_bases(degree)
    if sh.dim() < 2 or sh.shape[-1] != 3 or sh.shape[-2] < k:
        raise ValueError(f"sh must be (..., K, 3) with K >= {k} for degree {degree}, got {tuple(sh.shape)}")
    if dirs.shape[-1:] != (3,):
        raise ValueError(f"dirs must be (..., 3), got {tuple(dirs.shape)}")
    d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    basis = sh_basis(d, degree)  # (..., k)
    return (basis.unsqueeze(-1) * sh[..., :k, :]).sum(dim=-2)


def sh_to_rgb(sh: torch.Tensor, means: torch.Tensor, campos: torch.Tensor, degree: int) -> torch.Tensor:
    """Per-camera colours of Gaussians: ``clamp_min(eval_sh(sh, mean - campos) + 0.5, 0)``.

    Args:
        sh: (..., N, K, 3) coefficients.
        means: (..., N, 3) world positions.
        campos: (..., C, 3) camera centres, world.
        degree: 0..3.

    Returns:
        (..., C, N, 3) colours (>= 0, not clamped above).
    """
    dirs = means.unsqueeze(-3) - campos.unsqueeze(-2)  # (..., C, N, 3)
    return torch.clamp_min(eval_sh(sh.unsqueeze(-4), dirs, degree) + 0.5, 0.0)


# the degree-1 real SH basis of 3DGS is C1 * (-y, z, -x) = C1 * P @ d
_SH1_P = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])


def rotate_sh1(sh: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Rotate SH coefficients of degree <= 1 from a frame A to a frame B (``R`` maps A to B vectors).

    The degree-1 band is linear in the direction: ``c . (C1 P d)`` with ``P`` the signed permutation
    of the 3DGS basis ``(-y, z, -x)``; so ``c_B = P R P^T c_A`` gives the same colour for
    ``d_B = R d_A``. Degree 0 does not change.

    Args:
        sh: (..., K, 3) coefficients, K in {1, 4}. R: (..., 3, 3) rotations (broadcast with ``...``).
    Returns:
        (..., K, 3) the coefficients in frame B.
    """
    if sh.shape[-2] == 1:
        return sh
    if sh.shape[-2] != 4:
        raise ValueError(f"rotate_sh1: `sh` must be (..., 1 or 4, 3), got {tuple(sh.shape)}")
    P = _SH1_P.to(sh)
    band1 = P @ R @ P.T @ sh[..., 1:4, :]
    return torch.cat([sh[..., :1, :], band1], -2)
