"""Renderers. ``mesh`` and ``points`` wrap PyTorch3D's rasterizers (imported lazily inside the
functions, so this package imports without PyTorch3D); later notebooks add pure-torch volume,
surface and Gaussian renderers here."""
from lib.render.common import RenderSettings  # noqa: F401
from lib.render.mesh import render_mesh  # noqa: F401
from lib.render.points import render_points  # noqa: F401
