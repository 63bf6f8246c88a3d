"""Images of on-disk datasets (Blender, SRN, the truck scene): the checks every reader makes, and
resizing. One home, so that every reader says the same thing about a bad file.

Example:
    >>> import numpy as np
    >>> check_image(np.zeros((4, 6, 3), np.uint8), "a.png", reference=("first.png", (4, 6))).shape
    (4, 6, 3)
    >>> check_image(np.zeros((4, 6)), "b.png")
    Traceback (most recent call last):
    ...
    ValueError: b.png: expected an RGB or RGBA image, got array shape (4, 6)
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def check_image(img: np.ndarray, path, reference: Optional[Tuple[object, Tuple[int, int]]] = None,
                error: type = ValueError) -> np.ndarray:
    """``img`` (read from ``path``) if it is (H, W, 3) or (H, W, 4), else ``error`` naming the file.

    Args:
        img: the decoded array. path: where it came from (for the message).
        reference: ``(first_path, (H, W))`` of the first image of the same set, or None: every image
            of a set must have that size.
        error: the exception class to raise (a ``ValueError`` subclass, e.g. a format's own).
    """
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise error(f"{path}: expected an RGB or RGBA image, got array shape {img.shape}")
    if reference is not None and tuple(img.shape[:2]) != tuple(reference[1]):
        (h, w), (h0, w0) = img.shape[:2], reference[1]
        raise error(f"{path} is {w}x{h} (WxH) but {reference[0]} is {w0}x{h0}; every image of the set "
                    "must have the same size")
    return img


def resize_images(images: torch.Tensor, size) -> torch.Tensor:
    """(N, H, W, C) -> (N, h, w, C) with ``size = (h, w)``, antialiased bilinear, clamped to [0, 1]."""
    x = images.permute(0, 3, 1, 2)
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).clamp(0, 1)
