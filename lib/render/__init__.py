"""Renderers. ``mesh`` and ``points`` wrap PyTorch3D's rasterizers (imported lazily inside the
functions, so this package imports without PyTorch3D); later notebooks add pure-torch volume,
surface and Gaussian renderers here."""
from lib.render.common import RenderSettings
from lib.render.mesh import render_mesh
from lib.render.points import render_points

__all__ = ["RenderSettings", "render_mesh", "render_points"]
