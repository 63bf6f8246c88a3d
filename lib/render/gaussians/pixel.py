"""Pixel-aligned Gaussians (Splatter Image, notebook 06): one 3D Gaussian per pixel of an input view.

A network predicts, per pixel, a depth along the pixel's ray, an offset, a scale, a rotation, an opacity
and SH colour coefficients, all in the input camera's frame; :func:`pixel_gaussians` turns them into
world-frame Gaussians that :func:`lib.render.gaussians.render_gaussians` draws from any camera.
"""
from __future__ import annotations

from typing import Union

import torch

from lib.quaternion import quat_multiply, rotmat_to_quat
from lib.rays import get_rays
from lib.render.gaussians.sh import rotate_sh1


def pixel_gaussians(depth: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, offset=None,
                    scale_px: Union[float, torch.Tensor] = 0.6, quats=None,
                    opacities: Union[float, torch.Tensor] = 0.95, sh=None) -> dict:
    """One Gaussian per pixel of an input view, in the world frame.

    Pixel (row i, column j) has the camera-frame ray ``r = ((j + 0.5 - cx) / fx, (i + 0.5 - cy) / fy, 1)``;
    its Gaussian's mean is ``depth * r + offset`` (camera frame), then ``R x + t`` (world). Its scale is
    ``scale_px`` pixels at its depth: ``scale_px * depth / sqrt(fx fy)``. Camera-frame rotations ``q``
    become ``rotmat_to_quat(R) * q`` (Hamilton product), camera-frame SH :func:`rotate_sh1` by R.

    Args:
        depth: (B, H, W) camera z of each pixel's Gaussian (> 0), world units.
        c2w: (B, 4, 4) input camera. K: (B, 3, 3) its intrinsics.
        offset: (B, H, W, 3) camera-frame offsets, or None (0).
        scale_px: (B, H, W, 3) or a float, pixels (> 0).
        quats: (B, H, W, 4) camera-frame rotations wxyz, any norm > 0, or None (identity).
        opacities: (B, H, W) in [0, 1] or a float.
        sh: (B, H, W, K, 3) camera-frame SH coefficients (K = 1 or 4), or None (grey, all 0).
    Returns:
        dict (N = H W, row-major): means (B, N, 3), quats (B, N, 4) unit, scales (B, N, 3),
        opacities (B, N), sh (B, N, K, 3).
    """
    if depth.ndim != 3 or c2w.shape != (depth.shape[0], 4, 4) or K.shape != (depth.shape[0], 3, 3):
        raise ValueError(f"pixel_gaussians: need depth (B, H, W), c2w (B, 4, 4), K (B, 3, 3), got "
                         f"{tuple(depth.shape)}, {tuple(c2w.shape)}, {tuple(K.shape)}")
    b, h, w = depth.shape
    origins, dirs = get_rays(c2w, K, (h, w), normalize=False)  # (B, H, W, 3) world, camera z = 1
    R = c2w[:, None, None, :3, :3]
    means = origins + depth[..., None] * dirs
    if offset is not None:
        means = means + (R @ offset[..., None])[..., 0]
    focal = (K[:, 0, 0] * K[:, 1, 1]).sqrt()[:, None, None, None]
    scales = torch.as_tensor(scale_px, dtype=depth.dtype, device=depth.device) * (depth[..., None] / focal)
    scales = scales.expand(b, h, w, 3)
    q_c2w = rotmat_to_quat(c2w[:, :3, :3])[:, None, None]  # (B, 1, 1, 4)
    if quats is None:
        q = q_c2w.expand(b, h, w, 4)
    else:
        q = quat_multiply(q_c2w, quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-8))
    opac = torch.as_tensor(opacities, dtype=depth.dtype, device=depth.device).expand(b, h, w)
    sh = depth.new_zeros(b, h, w, 1, 3) if sh is None else rotate_sh1(sh, R)
    return {"means": means.reshape(b, h * w, 3), "quats": q.reshape(b, h * w, 4),
            "scales": scales.reshape(b, h * w, 3), "opacities": opac.reshape(b, h * w),
            "sh": sh.reshape(b, h * w, *sh.shape[-2:])}
