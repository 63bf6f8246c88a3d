"""`lib`: the thin package behind the course notebooks.

One module per idea (see README.md and ../shared/DESIGN.md):

- ``lib.cameras``   the one camera convention, look-at orbits, projection, rotations, PyTorch3D conversion
- ``lib.mesh``      ``TriMesh`` (verts, faces, uv, texture, labels) and the mesh queries: face areas
                    and normals, vertex normals, signed volume, edges and edge counts, normalisation
- ``lib.primitives`` box, cylinder, lathe, spheres, marching cubes (``mesh_from_sdf``)
- ``lib.geometry``  parametric/implicit surfaces and SDFs, surface sampling, colour gradients, floor
- ``lib.voxels``    voxelization (winding numbers), voxels to mesh, the mean-shape prior
- ``lib.rays``      pixels to rays, ray/box near-far, stratified and importance samples
- ``lib.render``    renderers: PyTorch3D mesh/points (imported lazily), a pure-torch z-buffer,
                    volume rendering, the occupancy grid, sphere tracing, SDF scenes, SDF densities,
                    3D Gaussian splatting (``lib.render.gaussians``: projection, SH, a tile rasteriser)
- ``lib.quaternion`` wxyz quaternions: to and from rotation matrices, the Hamilton product
- ``lib.losses``    chamfer (with a pure-torch nearest neighbour), voxel BCE, mesh regularisers,
                    eikonal, KL and GAN losses
- ``lib.metrics``   PSNR, SSIM, voxel IoU, F-score, confusion matrix, per-class accuracy, part mIoU
- ``lib.point_ops`` point clouds (08): farthest point sampling, up-axis and SO(3) rotations, augmentations
                    (k nearest neighbours, in 3-D or feature space: ``lib.losses.nearest_neighbors``)
- ``lib.models``    the learnable parts (``nn.Module``s only): embeddings, NeRF and SDF fields,
                    single- and multi-view encoders/decoders, 3D Gaussians, the Splatter Image U-Net
- ``lib.recon``     training and evaluating 3D reconstruction from images (notebook 03)
- ``lib.nerf_loop`` the NeRF training step, renderer and evaluation (notebooks 04, 05)
- ``lib.gaussian_train`` 3DGS training: per-parameter learning rates, densify/prune/reset, the step (06)
- ``lib.splatter_train`` Splatter Image (06): pixels to Gaussians, baselines, the step, evaluation
- ``lib.hub``       pretrained weights from the hub: the first of several ids or folders that loads
- ``lib.guidance``  score distillation: the SDS loss of any noise predictor, timestep schedules,
                    view-dependent prompts, Stable Diffusion loading by a list of mirror ids, the
                    ``Guide`` interface that the offline prior and Stable Diffusion share (07)
- ``lib.prior``     the offline diffusion prior of notebook 07: procedural multi-view training data,
                    a small ``UNet2DConditionModel``, its training (``tools/train_prior.py``), its Guide
- ``lib.judge``     the offline judge of notebook 07: labelled renders, training, accuracy, class
                    confidence (``tools/train_judge.py``)
- ``lib.sds_steps`` score distillation on an image and on a mesh's vertex colours (07)
- ``lib.dreamfusion`` a NeRF from text: random views, shading, regularisers, SDS (07)
- ``lib.point_train`` training point-cloud classifiers and part segmenters with ``fit`` (08)
- ``lib.point_eval`` evaluating them: predictions, reports, baselines, rotation and point-count sweeps (08)
- ``lib.neuralift`` NeuralLift-360: one image to a 360° NeRF, its settings and the lift step (09)
- ``lib.lift_eval`` scoring a lifted NeRF against a procedural input's true shape and views (09)
- ``lib.clip_encoder`` a differentiable CLIP image encoder for NeuralLift's CLIP loss (09)
- ``lib.mono_depth`` monocular relative inverse depth: the normaliser, a simulated estimator,
                    Depth Anything through ``transformers`` (notebooks 06, 09)
- ``lib.train``     seeding, devices, checkpoints named by their settings, the resumable ``fit`` loop
- ``lib.viz``       turntables, GIF/MP4 writers, image grids, plotly figures
- ``lib.checks``    argument checks shared across lib (``shape_of``: what an error message says it got)
- ``lib.report``    the metrics recorder the regression tests read, the smoke/full output folders
- ``lib.budget``    the estimated T4 minutes of a notebook's full-mode run (``lib/t4_budget.json``), printed
                    before its long cells
- ``lib.fileio``    atomic writes (metrics, media, meshes, voxels, checkpoints)
- ``lib.data``      downloads, file formats (OBJ, binvox, Blender, R2N2, 3DGS .ply, SRN, the truck
                    scene) and datasets, real and procedural
- ``lib.backend``   choosing the pure-torch path or nerfacc/gsplat, and the one-time CUDA-build notice
- ``lib.colab``     Colab environment set-up (``setup``, the first cell); ``lib.colab.runner`` runs its commands,
                    ``lib.colab.pytorch3d`` gets PyTorch3D into a runtime

The environment variables lib reads, each at one documented edge (``tests/test_lib_layers.py`` checks
that no other module reads the environment and that this list is complete):

- ``COURSE3D_CACHE`` (``lib.data.download``): the download cache folder (default ``~/.cache/course3d``)
- ``COURSE3D_REHEARSAL`` (``lib.data.download``): the rehearsal's override file (``lib.data.sources``)
- ``HF_HUB_OFFLINE`` (``lib.hub``): load pretrained models from the local cache only
- ``TORCH_EXTENSIONS_DIR`` (``lib.backend``): where torch builds CUDA extensions (its lock files)
- ``TORCH_CUDA_ARCH_LIST`` (``lib.colab.pytorch3d``): the GPU architectures of a PyTorch3D build

Importing ``lib`` is cheap: no submodule (and so neither torch nor PyTorch3D) is imported here.
"""

__version__ = "0.1.0"
