"""`lib`: the thin package behind the course notebooks.

One module per idea, in layers; a module imports only from its own layer or below
(``tests/test_lib_layers.py`` checks the import graph; see README.md and ../shared/DESIGN.md).

The foundation (conventions, pure maths, the training loop and its outputs):

- ``lib.cameras``   the one camera convention: look-at orbits, random orbits, intrinsics, projection, rotations
- ``lib.pytorch3d_cameras`` the only conversion between PyTorch3D's cameras (objects or NDC numbers) and ours
- ``lib.quaternion`` wxyz quaternions: to and from rotation matrices, the Hamilton product
- ``lib.mesh``      ``TriMesh`` (verts, faces, uv, texture, labels) and the mesh queries: face areas
                    and normals, vertex normals, signed volume, edges and edge counts, normalisation
- ``lib.primitives`` box, cylinder, lathe, spheres, marching cubes (``mesh_from_sdf``)
- ``lib.geometry``  parametric/implicit surfaces and SDFs, surface sampling, colour gradients, floor,
                    farthest point sampling
- ``lib.voxels``    voxelization (winding numbers), voxels to mesh, the mean-shape prior
- ``lib.rays``      pixels to rays, ray/box near-far, stratified and importance samples
- ``lib.images``    THE image convention, (..., H, W, 3) float in [0, 1] channels last at every public
                    boundary: the checks every image reader makes, resizing, box downsampling, uint8,
                    and the model-space edge (``to_nchw`` / ``from_nchw``, used inside forwards and guides)
- ``lib.prompts``   the prompt grammar: view words and view-dependent prompts, prompt validation
- ``lib.checks``    argument checks shared across lib (``shape_of``: what an error message says it got)
- ``lib.exercises`` the notebooks' exercises: ``check`` runs a student's function and says in one line
                    what is right or wrong (never a traceback); student versions: ``tools/student.py``
- ``lib.losses``    chamfer (with a pure-torch nearest neighbour), voxel BCE, mesh regularisers,
                    eikonal, KL and GAN losses
- ``lib.metrics``   PSNR, SSIM, voxel IoU, F-score, confusion matrix, per-class accuracy, part mIoU
- ``lib.train``     seeding, devices, checkpoints named by their settings, the resumable ``fit`` loop
- ``lib.report``    the metrics recorder the regression tests read, the smoke/full output folders
- ``lib.budget``    the estimated T4 minutes of a notebook's full-mode run (``lib/t4_budget.json``), printed
                    before its long cells
- ``lib.viz``       turntables, GIF/MP4 writers, image grids, plotly figures
- ``lib.fileio``    atomic writes (metrics, media, meshes, voxels, checkpoints), the committed assets' folder
- ``lib.backend``   choosing the pure-torch path or nerfacc/gsplat, and the one-time CUDA-build notice

The packages, lowest first:

- ``lib.render``    renderers: PyTorch3D mesh/points (imported lazily), a pure-torch z-buffer,
                    volume rendering, the occupancy grid, sphere tracing, SDF scenes, SDF densities,
                    textures, 3D Gaussian splatting (``lib.render.gaussians``: projection, SH, a tile
                    rasteriser, pixel-aligned Gaussians)
- ``lib.data``      downloads, file formats (OBJ, binvox, Blender, R2N2, 3DGS .ply, SRN, the truck
                    scene) and datasets, real and procedural
- ``lib.models``    the learnable parts (``nn.Module``s only): embeddings, NeRF and SDF fields,
                    single- and multi-view encoders/decoders, 3D Gaussians, the Splatter Image U-Net,
                    point-cloud networks, the offline prior's text encoder, the judge
- ``lib.pretrained`` pretrained models from the hub: the loader, CLIP, monocular depth
- ``lib.guidance``  score distillation: the SDS loss, timestep schedules, the ``Guide`` interface, the
                    offline prior and Stable Diffusion as guides
- ``lib.methods``   what each notebook teaches: reconstruction (03), NeRF (04, 05), Gaussian
                    splatting and Splatter Image (06), the offline prior, the judge, SDS and
                    DreamFusion (07), point clouds (08), NeuralLift (09)
- ``lib.colab``     Colab environment set-up (``setup``, the first cell); ``lib.colab.runner`` runs its commands,
                    ``lib.colab.pytorch3d`` gets PyTorch3D into a runtime

The environment variables lib reads, each at one documented edge (``tests/test_lib_layers.py`` checks
that no other module reads the environment and that this list is complete):

- ``COURSE3D_CACHE`` (``lib.data.download``): the download cache folder (default ``~/.cache/course3d``)
- ``COURSE3D_REHEARSAL`` (``lib.data.download``): the rehearsal's override file (``lib.data.sources``)
- ``HF_HUB_OFFLINE`` (``lib.pretrained.hub``): load pretrained models from the local cache only
- ``TORCH_EXTENSIONS_DIR`` (``lib.backend``): where torch builds CUDA extensions (its lock files)
- ``TORCH_CUDA_ARCH_LIST`` (``lib.colab.pytorch3d``): the GPU architectures of a PyTorch3D build

Importing ``lib`` is cheap: no submodule (and so neither torch nor PyTorch3D) is imported here.
"""

__version__ = "0.1.0"
