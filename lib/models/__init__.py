"""Models: the only place in ``lib`` that holds learnable state (``nn.Module``s).
One module per family (encoders/decoders for single- and multi-view 3D, NeRF fields, SDF fields)."""
