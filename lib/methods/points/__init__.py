"""Point-cloud classification and part segmentation (notebook 08).

- :mod:`lib.methods.points.augment`: rotations (up axis, SO(3)), scaling, jitter, point dropout
- :mod:`lib.methods.points.train`: batches, the ``fit`` step for classifiers and segmenters
- :mod:`lib.methods.points.evaluate`: predictions, reports, baselines, rotation and point-count sweeps
"""
