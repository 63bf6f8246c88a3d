"""Multi-view datasets for NeRF: the NeRF-synthetic ("Blender") format (read and write) and the
PyTorch3D NeRF-project files. The procedural scene written in this format offline is
``lib.data.still_life``.

Blender format (``nerf_synthetic/lego``)::

    transforms_train.json   {"camera_angle_x": radians (horizontal FoV),
    transforms_val.json      "frames": [{"file_path": "./train/r_0", "transform_matrix": 4x4}, ...]}
    transforms_test.json    (optional here: "near", "far", "scene_bounds" [[min xyz], [max xyz]])
    train/r_0.png ...       RGBA (or RGB) images, all of one size per split

Conventions, converted ON LOAD (and back on write) so everything returned follows
:mod:`lib.cameras`: the files store OpenGL camera axes (x right, y up, z *back*), so the y and z
columns of each pose flip; and Blender's world is z-up, so the world turns by -90 degrees about x
(``x, y, z -> x, z, -y``) to make it y-up. RGBA images are composited over ``background``.

Example:
    >>> from lib import cameras
    >>> c2w = cameras.orbit_poses(4, elevation=30.0, distance=4.0)
    >>> path = write_blender_split("/tmp/blender_demo", "train", torch.rand(4, 32, 32, 4), c2w, LEGO_ANGLE_X)
    >>> data = load_blender("/tmp/blender_demo", "train")
    >>> data["images"].shape, data["near"], data["far"], bool(torch.allclose(data["c2w"], c2w, atol=1e-6))
    (torch.Size([4, 32, 32, 3]), 2.0, 6.0, True)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from lib.cameras import image_hw, pixel_intrinsics
from lib.pytorch3d_cameras import from_pytorch3d_ndc
from lib.images import check_image, from_uint8, resize_images, to_uint8

SPLITS = ("train", "val", "test")
LEGO_ANGLE_X = 0.6911112070083618  # camera_angle_x of nerf_synthetic/lego
BLENDER_DEFAULTS = {"near": 2.0, "far": 6.0, "scene_bounds": [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]}
# world rotation Blender (z up) -> lib (y up), and the camera-axis flip OpenGL <-> OpenCV
_WORLD = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])
_FLIP = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


class BlenderFormatError(ValueError):
    """A Blender-format folder that cannot be read; the message names the file and what was expected."""


def blender_to_lib(c2w_blender: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) Blender pose (OpenGL axes, z-up world) -> lib pose (OpenCV axes, y-up world)."""
    return _WORLD @ c2w_blender.float() @ _FLIP


def lib_to_blender(c2w: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`blender_to_lib`."""
    return _WORLD.T @ c2w.float() @ _FLIP


def _bounds_to_lib(bounds, inverse: bool = False) -> torch.Tensor:
    """(2, 3) box (min, max) in Blender's world -> lib's world (or back, with ``inverse``)."""
    b = torch.as_tensor(bounds, dtype=torch.float32).reshape(2, 3)
    corners = b @ (_WORLD[:3, :3] if inverse else _WORLD[:3, :3].T)
    return torch.stack([corners.amin(0), corners.amax(0)])


# ------------------------------------------------------------------ loading
def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise BlenderFormatError(f"{path} is missing; a Blender-format folder needs transforms_<split>.json")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BlenderFormatError(f"{path} is not valid JSON ({e}); expected an object with "
                                 "'camera_angle_x' and 'frames'") from None
    if not isinstance(meta, dict):
        raise BlenderFormatError(f"{path}: expected a JSON object with 'camera_angle_x' and 'frames', "
                                 f"got {type(meta).__name__}")
    for key in ("camera_angle_x", "frames"):
        if key not in meta:
            raise BlenderFormatError(f"{path}: missing key {key!r}; expected 'camera_angle_x' (radians) "
                                     "and 'frames' (a list of {file_path, transform_matrix})")
    if not isinstance(meta["frames"], list) or not meta["frames"]:
        raise BlenderFormatError(f"{path}: 'frames' must be a non-empty list, got {meta['frames']!r:.60}")
    return meta


def _frame_pose(path: Path, i: int, frame) -> torch.Tensor:
    if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
        raise BlenderFormatError(f"{path}: frame {i} must have 'file_path' and 'transform_matrix', "
                                 f"got {frame!r:.80}")
    try:
        m = torch.tensor(frame["transform_matrix"], dtype=torch.float32)
    except (TypeError, ValueError):
        m = None
    if m is None or m.shape != (4, 4) or not torch.isfinite(m).all():
        raise BlenderFormatError(f"{path}: frame {i} ('{frame['file_path']}') transform_matrix must be "
                                 "a 4x4 list of finite numbers")
    return m


def _image_file(root: Path, file_path: str) -> Path:
    p = root / file_path
    return p if p.suffix.lower() in (".png", ".jpg", ".jpeg") else p.with_name(p.name + ".png")


def _background_rgb(background) -> torch.Tensor:
    named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
    bg = named.get(background, background) if isinstance(background, str) else background
    if isinstance(background, str) and background not in named:
        raise ValueError(f"background must be 'white', 'black' or an RGB triple, got {background!r}")
    bg = torch.as_tensor(bg, dtype=torch.float32)
    if bg.shape != (3,):
        raise ValueError(f"background must be 'white', 'black' or an RGB triple, got {background!r}")
    return bg


def load_blender(root, split: str = "train", image_size=None, background="white") -> dict:
    """Load one split of a Blender-format scene, converted to lib's conventions.

    Args:
        root: folder with ``transforms_<split>.json`` and the images.
        split: "train", "val" or "test".
        image_size: None (as stored) or H or (H, W) to resize to (K is scaled to match).
        background: "white", "black" or an RGB triple; RGBA images are composited over it.
    Returns:
        dict with images (N, H, W, 3) float32 in [0, 1], alpha (N, H, W) (ones for RGB files),
        c2w (N, 4, 4) lib convention, K (3, 3) pixels, near, far (floats, ray distances),
        scene_bounds (2, 3) world box (min, max), background (3,), files (list of Paths).
    Raises:
        BlenderFormatError: missing/invalid json, missing image, images of different sizes.
    """
    import imageio.v3 as iio

    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    json_path = root / f"transforms_{split}.json"
    meta = _read_json(json_path)
    poses, arrays, files, size0 = [], [], [], None
    for i, frame in enumerate(meta["frames"]):
        poses.append(_frame_pose(json_path, i, frame))
        f = _image_file(root, str(frame["file_path"]))
        if not f.is_file():
            raise BlenderFormatError(f"{json_path.name}: frame {i} names '{frame['file_path']}' but the "
                                     f"image {f} does not exist (expected a PNG beside the json)")
        img = check_image(np.asarray(iio.imread(f)), f, size0 and (files[0].name, size0), BlenderFormatError)
        size0 = img.shape[:2]
        rgba = torch.from_numpy(img.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0))
        if rgba.shape[-1] == 3:
            rgba = torch.cat([rgba, torch.ones_like(rgba[..., :1])], -1)
        h, w = size0 if image_size is None else image_hw(image_size)
        # resized one at a time, so 100 lego images at 800 px never sit in memory as floats
        arrays.append(rgba if (h, w) == size0 else resize_images(rgba[None], (h, w))[0])
        files.append(f)
    rgba = torch.stack(arrays)
    h0, w0 = size0
    bg = _background_rgb(background)
    images = rgba[..., :3] * rgba[..., 3:] + bg * (1 - rgba[..., 3:])
    fx = 0.5 * w0 / math.tan(0.5 * float(meta["camera_angle_x"])) * (w / w0)
    fy = fx * (h / h0) / (w / w0)
    K = pixel_intrinsics(fx, w / 2, h / 2, fy)
    return {"images": images, "alpha": rgba[..., 3], "c2w": blender_to_lib(torch.stack(poses)), "K": K,
            "near": float(meta.get("near", BLENDER_DEFAULTS["near"])),
            "far": float(meta.get("far", BLENDER_DEFAULTS["far"])),
            "scene_bounds": _bounds_to_lib(meta.get("scene_bounds", BLENDER_DEFAULTS["scene_bounds"])),
            "background": bg, "files": files}


def load_pytorch3d_nerf(path, image_size=None, split: str = None, z_up: bool = None) -> dict:
    """Load the lego/fern files of PyTorch3D's NeRF project (``<name>.pth`` + ``<name>.png``).

    The ``.pth`` holds ``{"cameras": {"R", "T", "focal_length", "principal_point"}, "split": [train,
    val, test indices]}`` for PyTorch3D ``PerspectiveCameras`` in NDC (x left, y up, row vectors:
    ``x_view = x_world @ R + T``); the ``.png`` stacks the N images vertically. Converted here to
    lib's c2w/K without importing PyTorch3D.

    Args:
        path: the ``.pth`` file (the ``.png`` is expected beside it).
        image_size: None or H or (H, W) to resize to.
        split: None (every image) or "train", "val", "test".
        z_up: whether the world is z-up (rotated to y-up); None: True for "lego", else False.
    Returns:
        dict with images (N, H, W, 3), c2w (N, 4, 4), K (3, 3) (or (N, 3, 3) if the cameras
        differ), split {"train", "val", "test"} index tensors into the full set, near, far (the
        project's ray bounds for lego/fern, else 2/6), scene_bounds (2, 3) (lego: the Blender
        default box), background (3,) (the median corner colour).
    """
    import imageio.v3 as iio

    path = Path(path)
    png = path.with_suffix(".png")
    for f in (path, png):
        if not f.is_file():
            raise FileNotFoundError(f"{f} does not exist; expected <name>.pth and <name>.png side by side")
    data = torch.load(path, map_location="cpu", weights_only=True)
    cams = data.get("cameras", {}) if isinstance(data, dict) else {}
    missing = {"R", "T", "focal_length", "principal_point"} - set(cams)
    if missing or "split" not in data:
        raise ValueError(f"{path}: expected {{'cameras': {{R, T, focal_length, principal_point}}, 'split'}}, "
                         f"missing {sorted(missing) or ['split']}")
    R, T = cams["R"].float(), cams["T"].float()
    n = R.shape[0]
    splits = {k: torch.as_tensor(v).long().reshape(-1) for k, v in zip(SPLITS, data["split"])}
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be None or one of {SPLITS}, got {split!r}")
    keep = torch.arange(n) if split is None else splits[split]
    stacked = np.asarray(iio.imread(png))  # uint8 (N * H0, W0, C)
    if stacked.shape[0] % n:
        raise ValueError(f"{png}: height {stacked.shape[0]} is not a multiple of the {n} cameras in {path.name}")
    h0, w0 = stacked.shape[0] // n, stacked.shape[1]
    h, w = (h0, w0) if image_size is None else image_hw(image_size)
    images = []
    for i in keep.tolist():
        img = from_uint8(stacked[i * h0:(i + 1) * h0, :, :3])
        images.append(img if (h, w) == (h0, w0) else resize_images(img[None], (h, w))[0])
    images = torch.stack(images)
    f = cams["focal_length"].float().reshape(n, -1).expand(n, 2)[keep]
    p = cams["principal_point"].float().reshape(n, 2)[keep]
    c2w, K = from_pytorch3d_ndc(R[keep], T[keep], f, p, (h, w))  # NDC -> our c2w and pixel K
    name = path.stem.lower()
    if z_up if z_up is not None else name == "lego":
        c2w = _WORLD @ c2w
    near, far = {"lego": (2.0, 6.0), "fern": (1.2, 6.28)}.get(name, (2.0, 6.0))
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]].reshape(-1, 3)
    return {"images": images, "c2w": c2w, "K": K[0] if torch.allclose(K, K[:1].expand_as(K)) else K,
            "split": splits, "near": near, "far": far,
            "scene_bounds": _bounds_to_lib(BLENDER_DEFAULTS["scene_bounds"]),
            "background": corners.median(0).values}


# ------------------------------------------------------------------ writing
def write_blender_split(root, split: str, images: torch.Tensor, c2w: torch.Tensor, camera_angle_x: float,
                        near: float = None, far: float = None, scene_bounds=None, extra: dict = None) -> Path:
    """Write one split in the Blender format: ``<root>/<split>/r_<i>.png`` and ``transforms_<split>.json``.

    The inverse of :func:`load_blender` for one split: poses and the scene box are converted back
    to Blender's convention (:func:`lib_to_blender`).

    Args:
        root: the scene folder (created). split: "train", "val" or "test".
        images: (N, H, W, 4) RGBA (or (N, H, W, 3) RGB) float in [0, 1], written as 8-bit PNGs.
        c2w: (N, 4, 4) lib poses. camera_angle_x: horizontal field of view, radians.
        near, far: ray distances to record (None: not written; the loader then uses 2 and 6).
        scene_bounds: (2, 3) box (min, max) holding the scene, lib world (None: not written).
        extra: more json keys to record (e.g. the generator's settings).
    Returns:
        the path of the json file.
    """
    import imageio.v3 as iio

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if images.ndim != 4 or images.shape[-1] not in (3, 4) or c2w.shape != (images.shape[0], 4, 4):
        raise ValueError(f"write_blender_split: `images` must be (N, H, W, 3 or 4) and `c2w` (N, 4, 4), "
                         f"got {tuple(images.shape)} and {tuple(c2w.shape)}")
    root = Path(root)
    (root / split).mkdir(parents=True, exist_ok=True)
    frames = []
    for i, (pose, img) in enumerate(zip(c2w, images)):
        iio.imwrite(root / split / f"r_{i}.png", to_uint8(img))
        frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": lib_to_blender(pose).tolist()})
    meta = {"camera_angle_x": float(camera_angle_x), "frames": frames}
    for key, value in (("near", near), ("far", far)):
        if value is not None:
            meta[key] = float(value)
    if scene_bounds is not None:
        meta["scene_bounds"] = _bounds_to_lib(scene_bounds, inverse=True).tolist()
    meta.update(extra or {})
    path = root / f"transforms_{split}.json"
    path.write_text(json.dumps(meta, indent=1))
    return path
