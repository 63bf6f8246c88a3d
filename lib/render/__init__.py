"""Renderers. Each takes cameras in ``lib.cameras``' convention (c2w, OpenCV axes; K in pixels).

- ``mesh``, ``points``: PyTorch3D's mesh and point rasterizers (imported lazily inside the
  functions, so this package imports without PyTorch3D); settings in ``common.RenderSettings``.
- ``zbuffer``: a pure-torch z-buffer for small meshes: visibility (face, depth, perspective-correct
  barycentrics), attribute interpolation, flat shading.
- ``volume``: volume rendering of a field callback (stratified and importance samples, weights).
- ``occupancy``: an occupancy grid that skips empty space (pure torch; nerfacc on CUDA).
- ``surface``: sphere tracing of SDFs, their normals, and an exact ray-torus oracle.
- ``raytrace``: scenes of several SDF objects with a sun, shadows and highlights.
- ``sdf_density``: from a signed distance to a density (VolSDF) or an opacity (NeuS).
- ``texture``: differentiable colours on a z-buffer (vertex colours or a UV texture; visibility fixed),
  for optimising appearance without PyTorch3D.
- ``gaussians``: 3D Gaussian splatting in pure torch (projection, spherical harmonics, a tile
  rasteriser and its dense oracle), gsplat on CUDA when asked.
"""
from lib.render.common import RenderSettings
from lib.render.mesh import render_mesh
from lib.render.points import render_points

__all__ = ["RenderSettings", "render_mesh", "render_points"]
