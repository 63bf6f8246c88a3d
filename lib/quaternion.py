"""Unit quaternions as rotations, in the course's one convention: ``(w, x, y, z)`` (scalar first).

A quaternion ``q = (w, x, y, z)`` of any nonzero norm stands for the rotation by the unit quaternion
``q / |q|`` (so a network may output raw, unnormalised quaternions). ``q`` and ``-q`` are the same
rotation; :func:`rotmat_to_quat` picks the one with ``w >= 0``. The rotation acts on column vectors:
``p' = R @ p``, and composing rotations is the Hamilton product:
``quat_to_rotmat(quat_multiply(a, b)) == quat_to_rotmat(a) @ quat_to_rotmat(b)``.

Example:
    >>> q = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]])  # identity, 180 deg about z
    >>> quat_to_rotmat(q).shape
    torch.Size([2, 3, 3])
    >>> rotmat_to_quat(quat_to_rotmat(q)).round(decimals=4).abs()
    tensor([[1., 0., 0., 0.],
            [0., 0., 0., 1.]])
"""
from __future__ import annotations

import torch

from lib.checks import shape_of


def _check_quat(q: torch.Tensor, name: str) -> None:
    if not torch.is_tensor(q) or q.shape[-1:] != (4,):
        got = shape_of(q)
        raise ValueError(f"`{name}` must be (..., 4) quaternions (w, x, y, z), got {got}")


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of quaternions.

    Args:
        q: (..., 4) quaternions ``(w, x, y, z)``, any nonzero norm (normalised inside; differentiable).

    Returns:
        (..., 3, 3) rotation matrices R (orthonormal, det +1), acting as ``R @ p`` on column vectors.
    """
    _check_quat(q, "q")
    w, x, y, z = torch.unbind(q / q.norm(dim=-1, keepdim=True), dim=-1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1)
    return R.reshape(q.shape[:-1] + (3, 3))


def rotmat_to_quat(R: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``(w, x, y, z)`` with ``w >= 0`` of rotation matrices.

    Numerically stable for every rotation (including 180 degrees): of the four candidate formulas,
    each row uses the one with the largest denominator.

    Args:
        R: (..., 3, 3) rotation matrices (orthonormal, det +1).

    Returns:
        (..., 4) unit quaternions, ``w >= 0`` (for ``w == 0`` the sign is whatever the formula gives).
    """
    if not torch.is_tensor(R) or R.shape[-2:] != (3, 3):
        got = shape_of(R)
        raise ValueError(f"`R` must be (..., 3, 3) rotation matrices, got {got}")
    m = R.reshape(-1, 3, 3)
    r00, r01, r02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    r10, r11, r12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    r20, r21, r22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    # 4*w^2, 4*x^2, 4*y^2, 4*z^2 (up to rounding); the largest gives the best-conditioned formula.
    sq = torch.stack([1 + r00 + r11 + r22, 1 + r00 - r11 - r22,
                      1 - r00 + r11 - r22, 1 - r00 - r11 + r22], dim=-1)
    # Candidate k: its k-th entry is sq[k] (= 4 q_k^2), the others 4 q_k q_j; divide by 2 sqrt(sq[k]).
    cand = torch.stack([
        torch.stack([sq[:, 0], r21 - r12, r02 - r20, r10 - r01], dim=-1),
        torch.stack([r21 - r12, sq[:, 1], r10 + r01, r02 + r20], dim=-1),
        torch.stack([r02 - r20, r10 + r01, sq[:, 2], r12 + r21], dim=-1),
        torch.stack([r10 - r01, r20 + r02, r21 + r12, sq[:, 3]], dim=-1),
    ], dim=1)  # (M, 4 candidates, 4)
    best = sq.argmax(dim=-1)
    idx = torch.arange(m.shape[0], device=R.device)
    q = cand[idx, best] / (2 * sq[idx, best].clamp_min(1e-12).sqrt()).unsqueeze(-1)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    return q.reshape(R.shape[:-2] + (4,))


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` of quaternions ``(w, x, y, z)`` (broadcasts over ``...``).

    The rotation of the product is "first b, then a": ``R(a * b) = R(a) @ R(b)``. E.g. a rotation
    ``q_cam`` predicted in a camera's frame becomes the world-frame ``quat_multiply(q_c2w, q_cam)``
    with ``q_c2w = rotmat_to_quat(c2w[..., :3, :3])``.

    Args:
        a, b: (..., 4) quaternions (any norm; the product's norm is the product of the norms).

    Returns:
        (..., 4) the product.
    """
    _check_quat(a, "a")
    _check_quat(b, "b")
    aw, ax, ay, az = torch.unbind(a, dim=-1)
    bw, bx, by, bz = torch.unbind(b, dim=-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)
