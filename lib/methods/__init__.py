"""The methods the notebooks teach: one module (or package) per method, each holding its settings,
its ``make_*_step`` for ``lib.train.fit`` and its evaluation. They build on the layers below
(``lib.models``, ``lib.render``, ``lib.data``, ``lib.guidance``, ``lib.pretrained`` and the
foundation modules at lib's top level); nothing below imports them (``tests/test_lib_layers.py``).

- :mod:`lib.methods.recon`: 3D reconstruction from images: voxels, points, meshes, VAE-GANs (03)
- :mod:`lib.methods.nerf`: the NeRF training step, renderer and evaluation (04, 05)
- :mod:`lib.methods.gaussian_splatting`: 3DGS training: per-parameter learning rates, densify, prune,
  reset, the step (06)
- :mod:`lib.methods.splatter_image`: Splatter Image: pixels to Gaussians, baselines, step, evaluation (06)
- :mod:`lib.methods.offline_prior`: the offline diffusion prior's data and training (07,
  ``tools/train_prior.py``)
- :mod:`lib.methods.judge`: the offline judge's data, training and scores (07, ``tools/train_judge.py``)
- :mod:`lib.methods.sds`: score distillation on an image and on a mesh's vertex colours (07)
- :mod:`lib.methods.dreamfusion`: a NeRF from text: random views, shading, regularisers, SDS (07)
- :mod:`lib.methods.points`: point-cloud augmentations, training and evaluation (08)
- :mod:`lib.methods.neuralift`: NeuralLift-360, one image to a 360-degree NeRF, and its scoring (09)
"""
