"""`lib`: the thin package behind the course notebooks.

One module per idea (see README.md and ../shared/DESIGN.md):

- ``lib.cameras``   the one camera convention, look-at orbits, PyTorch3D conversion
- ``lib.mesh``      ``TriMesh``, a plain (verts, faces, uv, texture, labels) container
- ``lib.primitives`` box, cylinder, lathe, spheres, marching cubes (``mesh_from_sdf``)
- ``lib.geometry``  parametric/implicit surfaces, surface sampling, colour gradients, floor
- ``lib.voxels``    voxelization (winding numbers), ``.binvox`` read/write, voxels to mesh
- ``lib.losses``    chamfer, Laplacian smoothing, voxel BCE
- ``lib.metrics``   voxel IoU, chamfer, F-score
- ``lib.rays``      pixels to rays, ray/box near-far, stratified samples
- ``lib.occupancy`` an occupancy grid that skips empty space (pure torch; nerfacc on CUDA)
- ``lib.render``    mesh and point renderers (PyTorch3D, imported lazily), volume rendering,
                    sphere tracing
- ``lib.models``    single-view and multi-view 3D, NeRF and SDF fields (the learnable parts)
- ``lib.viz``       GIF/MP4 writers, image grids, plotly figures
- ``lib.report``    the metrics recorder the regression tests read
- ``lib.fileio``    atomic writes (metrics, media, meshes, voxels, checkpoints)
- ``lib.data``      download layer, mesh I/O, procedural datasets, R2N2 and Blender formats
- ``lib.colab``     Colab environment set-up
- ``lib.train``     seeding, devices, checkpoints and the resumable ``fit`` loop

Importing ``lib`` is cheap: no submodule (and so neither torch nor PyTorch3D) is imported here.
"""

__version__ = "0.1.0"
