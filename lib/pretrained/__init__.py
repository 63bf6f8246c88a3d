"""Pretrained models from the hub (loaded through ``transformers``/``huggingface_hub``; offline the
rehearsal's tiny stand-ins in the real layout):

- :mod:`lib.pretrained.hub`: the first of several ids or folders that loads; offline mode
- :mod:`lib.pretrained.clip`: a differentiable CLIP image encoder (NeuralLift's CLIP loss, 09)
- :mod:`lib.pretrained.depth`: monocular relative inverse depth: the normaliser, a simulated
  estimator, Depth Anything (06, 09)
"""
