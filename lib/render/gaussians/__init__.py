"""3D Gaussian splatting in pure torch: projection, spherical harmonics, a tile rasteriser.

- ``projection``: quaternion + scale → covariance; world → camera; EWA projection → means2d,
  conics, depths, radii (:func:`project_gaussians`).
- ``sh``: view-dependent colour, real SH of degree 0-3 (3DGS's convention), and their rotation.
- ``pixel``: pixel-aligned Gaussians, one per pixel of an input view (:func:`pixel.pixel_gaussians`).
- ``raster``: the tile rasteriser (:func:`rasterize_tiles`), never an (N x H x W) tensor.
- ``dense``: its slow oracle (:func:`rasterize_dense`), for tests and benchmarks.
- ``render``: :func:`render_gaussians`, the whole pipeline, with ``backend="torch" | "gsplat" | "auto"``.

Conventions are ``lib.cameras``': OpenCV camera axes, world-to-camera ``viewmats``
(``lib.cameras.world_to_camera(c2w)``), K in pixels, pixel centres at +0.5, quaternions wxyz.
"""
from lib.quaternion import quat_to_rotmat
from lib.render.gaussians.dense import rasterize_dense
from lib.render.gaussians.projection import (Projection, conic_and_radius, gaussians_world_to_camera,
                                             perspective_projection, project_gaussians,
                                             quat_scale_to_covariance)
from lib.render.gaussians.raster import bin_gaussians, rasterize_tiles
from lib.render.gaussians.render import GaussianRender, camera_centers, check_gaussian_inputs, render_gaussians
from lib.render.gaussians.sh import eval_sh, num_sh_bases, rgb_to_sh0, sh0_to_rgb, sh_basis, sh_to_rgb

__all__ = ["quat_to_rotmat", "quat_scale_to_covariance", "gaussians_world_to_camera",
           "perspective_projection", "conic_and_radius", "project_gaussians", "Projection",
           "eval_sh", "sh_basis", "sh_to_rgb", "rgb_to_sh0", "sh0_to_rgb", "num_sh_bases",
           "bin_gaussians", "rasterize_tiles", "rasterize_dense", "render_gaussians",
           "GaussianRender", "camera_centers", "check_gaussian_inputs"]
