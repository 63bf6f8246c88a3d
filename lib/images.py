"""Images: the course's one convention and its edges.

Images are (..., H, W, 3) float tensors in [0, 1], channels last, at every public boundary of lib.
This module holds the checks every file reader makes (one home, so every reader says the same thing
about a bad file), resizing (antialiased), the conversions to and from the 8-bit pixels of files
(``to_uint8``, ``from_uint8``), and the model-space edge: the one place images turn into channels-first
(B, C, H, W) batches for a network and back (``to_nchw``, ``from_nchw``). Networks permute inside their
``forward`` through these; everything a notebook or another module sees is channels last.

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

from lib.checks import shape_of


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


def box_downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, H, W, C) -> (N, H / factor, W / factor, C): the mean of each ``factor`` x ``factor`` block
    (the box filter that turns a supersampled render into an antialiased one). Differentiable."""
    if int(factor) != factor or factor < 1 or images.ndim != 4 or images.shape[1] % factor or images.shape[2] % factor:
        raise ValueError(f"box_downsample: need (N, H, W, C) images with H and W divisible by an integer factor >= 1, "
                         f"got {shape_of(images)} and factor {factor}")
    if factor == 1:
        return images
    return F.avg_pool2d(images.permute(0, 3, 1, 2), int(factor)).permute(0, 2, 3, 1)


def busiest_window(values: torch.Tensor, size: int) -> Tuple[slice, slice]:
    """The ``size`` x ``size`` window of a 2-D map (H, W) whose values sum highest, as (rows, cols)
    slices: where to crop renders to show a difference that is too small to see in the whole image.

    >>> m = torch.zeros(6, 6); m[4, 1] = 1.0
    >>> busiest_window(m, 2)
    (slice(3, 5, None), slice(0, 2, None))
    """
    if values.ndim != 2 or not 1 <= int(size) <= min(values.shape):
        raise ValueError(f"busiest_window: need a 2-D map (H, W) and 1 <= size <= min(H, W), "
                         f"got {shape_of(values)} and size {size}")
    sums = F.avg_pool2d(values[None, None].float(), int(size), stride=1)[0, 0]
    top, left = divmod(int(sums.argmax()), sums.shape[1])
    return slice(top, top + int(size)), slice(left, left + int(size))


def background_colour(background, like: torch.Tensor) -> Optional[torch.Tensor]:
    """The colour behind a render as a tensor on ``like``'s device and dtype: None stays None (nothing
    behind: black), a float is a grey level, (3,); a (3,) or (..., 3) colour is kept as it is."""
    if background is None:
        return None
    bg = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    return bg.expand(3).contiguous() if bg.ndim == 0 else bg


def read_png(path, mode: str = "colour") -> np.ndarray:
    """An image file's pixels as a numpy array (PIL). ``mode``: ``"colour"``: (H, W, 3) RGB or (H, W, 4)
    RGBA uint8, palette and grey images converted (alpha kept when the file has one); ``"rgba"``: always
    (H, W, 4); ``"raw"``: the stored array as it is (e.g. a 16-bit single-channel depth PNG)."""
    from PIL import Image

    if mode not in ("colour", "rgba", "raw"):
        raise ValueError(f"read_png: mode must be 'colour', 'rgba' or 'raw', got {mode!r}")
    with Image.open(path) as im:
        if mode == "rgba":
            im = im.convert("RGBA")
        elif mode == "colour" and im.mode not in ("RGB", "RGBA"):
            alpha = im.mode in ("LA", "PA", "RGBa", "La") or "transparency" in im.info
            im = im.convert("RGBA" if alpha else "RGB")
        return np.asarray(im)


def to_uint8(images) -> np.ndarray:
    """(..., H, W, C) float in [0, 1] (tensor or array) or uint8 -> a uint8 numpy array (values clipped,
    rounded to the nearest level): what image files and video frames hold."""
    if torch.is_tensor(images):
        images = images.detach().cpu().numpy()
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or inf; cannot convert them to 8-bit colours")
    return (np.clip(images, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def from_uint8(pixels) -> torch.Tensor:
    """uint8 pixels (array or tensor, any shape) -> float32 tensor in [0, 1] (``pixels / 255``)."""
    x = pixels
    if not torch.is_tensor(x):
        x = np.ascontiguousarray(x)
        x = torch.from_numpy(x if x.flags.writeable else x.copy())  # PIL's arrays are read-only
    if x.dtype != torch.uint8:
        raise ValueError(f"from_uint8: expected uint8 pixels, got {x.dtype}")
    return x.float() / 255.0


def channels_first_hint(x, ndim: int) -> str:
    """The words an image check adds when ``x`` (expected with ``ndim`` axes, channels last) looks
    channels first instead: 3 on the axis before H and W; "" otherwise."""
    if torch.is_tensor(x) and x.ndim == ndim and x.shape[-3] == 3:
        return " (channels first? lib's images are channels last)"
    return ""


def check_images(images, name: str = "images", batch: str = "N") -> None:
    """ValueError unless ``images`` is a (batch, H, W, 3) float tensor with values in [0, 1]: lib's
    image convention, checked where images enter a function (``batch`` names the first axis)."""
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[-1] != 3 or not images.is_floating_point():
        got = f"{shape_of(images)} {images.dtype}" if torch.is_tensor(images) else shape_of(images)
        raise ValueError(f"{name} must be ({batch}, H, W, 3) float images in [0, 1] (channels last), got {got}"
                         f"{channels_first_hint(images, 4)}")
    if images.numel():
        lo, hi = images.min().item(), images.max().item()
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise ValueError(f"{name} must be in [0, 1] (not 2 x - 1, not 0..255), got values in [{lo:.3g}, {hi:.3g}]")


# ----------------------------------------------------------- the model-space edge (channels first)
def to_nchw(images: torch.Tensor, size=None, name: str = "images") -> torch.Tensor:
    """The way into a network: images (B, H, W, 3) float in [0, 1] (checked; the message names
    ``name``) -> (B, 3, h, w) channels first, resized (antialiased, :func:`resize_images`) to ``size``
    (an int for square, or (h, w); None or the images' own size: not resized). Differentiable."""
    check_images(images, name, batch="B")
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(images.shape[1:3]) != size:
            images = resize_images(images, size)
    return images.permute(0, 3, 1, 2)


def from_nchw(x: torch.Tensor) -> torch.Tensor:
    """The way out of a network: (B, C, H, W) channels first -> (B, H, W, C), the course's layout."""
    if not torch.is_tensor(x) or x.ndim != 4:
        raise ValueError(f"from_nchw: expected a (B, C, H, W) tensor, got {shape_of(x)}")
    return x.permute(0, 2, 3, 1)
