"""`lib`: the thin package behind the course notebooks.

One module per idea (see README.md and ../shared/DESIGN.md):

- ``lib.cameras``   the one camera convention, look-at orbits, PyTorch3D conversion
- ``lib.mesh``      ``TriMesh``, a plain (verts, faces, uv, texture, labels) container
- ``lib.primitives`` box, cylinder, lathe, spheres, marching cubes (``mesh_from_sdf``)
- ``lib.geometry``  parametric/implicit surfaces, surface sampling, colour gradients, floor
- ``lib.render``    mesh and point renderers (PyTorch3D, imported lazily)
- ``lib.viz``       GIF/MP4 writers, image grids, plotly figures
- ``lib.report``    the metrics recorder the regression tests read
- ``lib.data``      download layer, mesh I/O, procedural datasets
- ``lib.colab``     Colab environment set-up
- ``lib.train``     seeding and devices

Importing ``lib`` is cheap: no submodule (and so neither torch nor PyTorch3D) is imported here.
"""

__version__ = "0.1.0"
