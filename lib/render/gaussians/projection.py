"""3D Gaussians → 2D screen-space Gaussians: covariance, world → camera, EWA projection.

Conventions (those of ``lib.cameras``): quaternions ``(w, x, y, z)``; ``viewmats`` are
world-to-camera (4, 4) matrices (``lib.cameras.world_to_camera(c2w)``) with OpenCV camera axes
(x right, y down, z forward); ``Ks`` in pixels; pixel ``(i, j)`` (row, column) has its centre at
``(x, y) = (j + 0.5, i + 0.5)``.

A Gaussian with mean ``mu`` and covariance ``Sigma = R S S^T R^T`` (``R`` from the quaternion,
``S = diag(scales)``) is moved to the camera frame (``mu_c = W mu + t``, ``Sigma_c = W Sigma W^T``)
and projected with the local affine approximation of the perspective map (EWA splatting,
Zwicker et al. 2002): ``Sigma_2d = J Sigma_c J^T + eps2d I`` with the Jacobian
``J = [[fx/z, 0, -fx x/z^2], [0, fy/z, -fy y/z^2]]``, where ``x/z`` and ``y/z`` are first clamped
to 1.3 times the half field of view (as in the original 3DGS) so Gaussians far outside the image
do not blow up. ``eps2d`` (0.3 px^2) is the low-pass filter that keeps every splat at least about
a pixel wide. The conic is the upper triangle ``(a, b, c)`` of ``Sigma_2d^-1`` and the radius is
``ceil(3 sqrt(lambda_max(Sigma_2d)))`` pixels.

Example:
    >>> means = torch.tensor([[0.0, 0.0, 2.0]])
    >>> quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    >>> scales = torch.full((1, 3), 0.1)
    >>> viewmats = torch.eye(4)[None]
    >>> Ks = torch.tensor([[[50.0, 0.0, 32.0], [0.0, 50.0, 32.0], [0.0, 0.0, 1.0]]])
    >>> p = project_gaussians(means, quats, scales, viewmats, Ks, 64, 64)
    >>> p.means2d.shape, p.conics.shape, p.depths.shape, p.radii.shape
    (torch.Size([1, 1, 2]), torch.Size([1, 1, 3]), torch.Size([1, 1]), torch.Size([1, 1]))
    >>> p.means2d[0, 0].tolist(), p.radii.tolist()
    ([32.0, 32.0], [[8]])
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import torch

from lib.quaternion import quat_to_rotmat


class Projection(NamedTuple):
    """Screen-space Gaussians, one per (camera, Gaussian).

    Attributes:
        means2d: (..., C, N, 2) pixel coordinates (x right, y down; pixel centres at +0.5).
            Meaningless where ``radii == 0`` (the depth is replaced by 1 there to keep gradients
            finite).
        conics: (..., C, N, 3) ``(a, b, c)``: the inverse 2D covariance is ``[[a, b], [b, c]]``.
        depths: (..., C, N) camera-frame z (distance along the optical axis).
        radii: (..., C, N) int32 pixel radius of the 3-sigma box; 0 = culled (outside the near/far
            range or the box misses the image).
    """
    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor


def quat_scale_to_covariance(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """3D covariances ``R S S^T R^T`` of Gaussians.

    Args:
        quats: (..., N, 4) rotations ``(w, x, y, z)``, any nonzero norm.
        scales: (..., N, 3) positive standard deviations along the Gaussian's own axes.

    Returns:
        (..., N, 3, 3) symmetric positive (semi-)definite covariances, in the frame of ``quats``.
    """
    if quats.shape[:-1] != scales.shape[:-1] or quats.shape[-1:] != (4,) or scales.shape[-1:] != (3,):
        raise ValueError(f"quats must be (..., N, 4) and scales (..., N, 3) with the same (..., N), "
                         f"got {tuple(quats.shape)} and {tuple(scales.shape)}")
    M = quat_to_rotmat(quats) * scales[..., None, :]  # (..., N, 3, 3) = R S
    return M @ M.transpose(-1, -2)


def gaussians_world_to_camera(means: torch.Tensor, covars: torch.Tensor,
                              viewmats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Means and covariances in each camera's frame.

    Args:
        means: (..., N, 3) world.
        covars: (..., N, 3, 3) world.
        viewmats: (..., C, 4, 4) world-to-camera rigid transforms (OpenCV axes).

    Returns:
        means_c: (..., C, N, 3) camera frame; covars_c: (..., C, N, 3, 3) camera frame.
    """
    R = viewmats[..., :3, :3].unsqueeze(-3)  # (..., C, 1, 3, 3)
    t = viewmats[..., :3, 3].unsqueeze(-2)  # (..., C, 1, 3)
    means_c = (R @ means.unsqueeze(-3).unsqueeze(-1)).squeeze(-1) + t
    covars_c = R @ covars.unsqueeze(-4) @ R.transpose(-1, -2)
    return means_c, covars_c


def perspective_projection(means_c: torch.Tensor, covars_c: torch.Tensor, Ks: torch.Tensor,
                           width: int, height: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection of camera-frame Gaussians (EWA, no low-pass yet).

    Args:
        means_c: (..., C, N, 3) camera frame, z > 0 in front of the camera.
        covars_c: (..., C, N, 3, 3) camera frame.
        Ks: (..., C, 3, 3) intrinsics in pixels.
        width, height: image size in pixels (for the field-of-view clamp of the Jacobian).

    Returns:
        means2d: (..., C, N, 2) pixels; cov2d: (..., C, N, 2, 2) ``J Sigma_c J^T``.
        The caller must replace z <= 0 (e.g. by 1) first if it wants finite values there.
    """
    x, y, z = means_c.unbind(-1)  # (..., C, N)
    fx, fy = Ks[..., 0, 0, None], Ks[..., 1, 1, None]  # (..., C, 1)
    cx, cy = Ks[..., 0, 2, None], Ks[..., 1, 2, None]
    # Clamp x/z, y/z to the field of view plus 30 % of the half-fov (3DGS's 1.3 * tan(fov/2)).
    margin_x, margin_y = 0.3 * 0.5 * width / fx, 0.3 * 0.5 * height / fy
    u = torch.minimum(torch.maximum(x / z, -cx / fx - margin_x), (width - cx) / fx + margin_x)
    v = torch.minimum(torch.maximum(y / z, -cy / fy - margin_y), (height - cy) / fy + margin_y)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * u / z, zero, fy / z, -fy * v / z], dim=-1)
    J = J.reshape(z.shape + (2, 3))
    cov2d = J @ covars_c @ J.transpose(-1, -2)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)
    return means2d, cov2d


def conic_and_radius(cov2d: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inverse and 3-sigma radius of 2D covariances (low-pass already added).

    Args:
        cov2d: (..., 2, 2) symmetric positive definite, pixels^2.

    Returns:
        conics: (..., 3) ``(a, b, c)`` of the inverse; radii: (...,) float ``ceil(3 sqrt(lambda_max))``
        (no gradient), 0 where the determinant is not positive.
    """
    a, b, c = cov2d[..., 0, 0], 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0]), cov2d[..., 1, 1]
    det = a * c - b * b
    ok = det > 0
    det_safe = torch.where(ok, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)
    with torch.no_grad():
        mid = 0.5 * (a + c)
        lam_max = mid + torch.sqrt((mid * mid - det).clamp_min(0.0))
        radii = torch.where(ok, torch.ceil(3.0 * torch.sqrt(lam_max.clamp_min(0.0))), torch.zeros_like(a))
    return conics, radii


def project_gaussians(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
                      viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
                      eps2d: float = 0.3, near: float = 0.01, far: float = 1e10) -> Projection:
    """Project 3D Gaussians into C cameras (see the module docstring for the maths).

    Args:
        means: (..., N, 3) world.
        quats: (..., N, 4) ``(w, x, y, z)``, any nonzero norm.
        scales: (..., N, 3) positive (activated) standard deviations.
        viewmats: (..., C, 4, 4) world-to-camera, OpenCV axes.
        Ks: (..., C, 3, 3) pixel intrinsics.
        width, height: image size in pixels.
        eps2d: low-pass variance added to the 2D covariance's diagonal (pixels^2).
        near, far: Gaussians with camera z outside ``(near, far)`` are culled (radius 0).

    Returns:
        :class:`Projection` with shapes (..., C, N, ·). Radii are 0 for culled Gaussians and for
        those whose box ``means2d ± radius`` misses ``[0, width] x [0, height]``.
    """
    covars = quat_scale_to_covariance(quats, scales)
    means_c, covars_c = gaussians_world_to_camera(means, covars, viewmats)
    depths = means_c[..., 2]
    in_range = (depths > near) & (depths < far)
    # Replace z outside (near, far) by 1 so culled Gaussians keep finite values and gradients.
    z_safe = torch.where(in_range, depths, torch.ones_like(depths))
    means_c_safe = torch.cat([means_c[..., :2], z_safe[..., None]], dim=-1)
    means2d, cov2d = perspective_projection(means_c_safe, covars_c, Ks, width, height)
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    conics, radii = conic_and_radius(cov2d)
    with torch.no_grad():
        mx, my = means2d[..., 0], means2d[..., 1]
        inside = (mx + radii > 0) & (mx - radii < width) & (my + radii > 0) & (my - radii < height)
        radii = torch.where(in_range & inside, radii, torch.zeros_like(radii)).to(torch.int32)
    return Projection(means2d, conics, depths, radii)
