"""Models: the only place in ``lib`` that holds learnable state (``nn.Module``s).

One module per family: ``embedding`` (the harmonic embedding NeRF and SDF networks share),
``nerf`` (radiance fields), ``sdf`` (a signed distance network), ``single_view`` and
``multi_view`` (image encoders and shape decoders of notebook 03), ``gaussians`` (a trainable
3D Gaussian scene), ``splatter`` (the Splatter Image U-Net: one Gaussian per pixel) and
``text_prior`` (the word tokenizer and tiny text encoder of notebook 07's diffusion prior),
``judge`` (notebook 07's class + view-word CNN), ``pointnet`` and ``dgcnn`` (notebook 08's point-cloud
classifiers and part segmenters). Their
losses are in ``lib.losses``; their training and evaluation helpers in ``lib.methods.recon``,
``lib.methods.nerf``, ``lib.methods.gaussian_splatting``, ``lib.methods.splatter_image``, ``lib.methods.points.train`` and ``lib.methods.points.evaluate``; the SDF-to-density
transforms in ``lib.render.sdf_density``."""
