"""The truck scene of the 16-825 course's Gaussian-splatting assignment (``learning3d/assignment4``,
``Q1/data/truck/``), read into this course's camera convention, and written back (for tests).

Layout (``lib.data.sources.fetch_truck_scene`` downloads it, pinned file by file)::

    imgs/frame000001.jpg ...    202 RGB images, 160 x 90 (W x H)
    poses/frame000001.npy ...   16 float64 each: R (3x3, row-major), T (3), focal (2), principal point (2)
    points/points_10000.npy     (10000, 3) float64 initial points, world

A pose describes a PyTorch3D ``PerspectiveCameras`` in NDC, as the assignment builds it:
``x_view = x_world @ R + T`` with PyTorch3D view axes (+x left, +y up, +z forward), and pixels
``f_px = f min(H, W) / 2``, ``cx = W / 2 - p_x min(H, W) / 2``, ``cy = H / 2 - p_y min(H, W) / 2``.
:func:`lib.pytorch3d_cameras.from_pytorch3d_ndc` converts on load (no PyTorch3D needed); the result
projects every point to the pixel PyTorch3D's ``transform_points_screen`` gives (tested).

The held-out views are the assignment's: indices ``linspace(0, N, 7)[1:-1]`` cast to int
(for N = 202: 33, 67, 101, 134, 168); the rest are for training.

Example:
    >>> from lib import cameras
    >>> c2w = cameras.orbit_poses(8, elevation=20.0, distance=4.0)
    >>> K = cameras.intrinsics_from_fov(50.0, (9, 16)).expand(8, 3, 3)
    >>> root = write_truck_folder("/tmp/truck_demo", torch.rand(8, 9, 16, 3), c2w, K, torch.randn(50, 3))
    >>> scene = load_truck(root)
    >>> tuple(scene["images"].shape), scene["test_idx"].tolist(), bool(torch.allclose(scene["c2w"], c2w, atol=1e-5))
    ((8, 9, 16, 3), [1, 2, 4, 5, 6], True)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lib.pytorch3d_cameras import from_pytorch3d_ndc, to_pytorch3d_ndc
from lib.images import check_image, check_images, from_uint8, to_uint8

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
N_TEST_SPLITS = 7  # linspace(0, N, 7)[1:-1]: five evenly spread held-out views


def truck_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_idx, test_idx) LongTensors for ``n`` views, the assignment's split: test views at
    ``linspace(0, n, 7)[1:-1]`` cast to int (duplicates dropped for tiny n), the rest train."""
    if n < 1:
        raise ValueError(f"truck_split: need at least one view, got n={n}")
    test = np.unique(np.linspace(0, n, N_TEST_SPLITS).astype(np.int64)[1:-1])
    train = np.setdiff1d(np.arange(n), test)
    return torch.from_numpy(train), torch.from_numpy(test)


def _files(folder: Path, suffixes, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist; a truck-format folder holds imgs/, poses/ and "
                                f"points/ ({what} go in {folder.name}/)")
    found = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes}
    if not found:
        raise ValueError(f"{folder} holds no {what} (files ending in {', '.join(suffixes)})")
    return found


def _read_pose(path: Path) -> np.ndarray:
    try:
        pose = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from None
    pose = np.asarray(pose, dtype=np.float64).reshape(-1)
    if pose.size != 16:
        raise ValueError(f"{path}: expected 16 numbers (R 3x3, T 3, focal 2, principal point 2), "
                         f"got {pose.size}")
    if not np.isfinite(pose).all():
        raise ValueError(f"{path}: the pose holds NaN or inf")
    return pose


def _points_file(root: Path) -> Path:
    folder = root / "points"
    candidates = sorted(folder.glob("points_*.npy")) if folder.is_dir() else []
    if len(candidates) != 1:
        raise FileNotFoundError(f"{folder}: expected exactly one points_<M>.npy (the assignment's "
                                f"points_10000.npy), found {[p.name for p in candidates]}")
    return candidates[0]


def load_truck(root) -> dict:
    """Load a truck-format folder (module docstring) in this course's convention.

    Args:
        root: the folder holding ``imgs/``, ``poses/`` and ``points/``.
    Returns:
        dict with images (N, H, W, 3) float32 in [0, 1]; c2w (N, 4, 4) float32 (OpenCV axes,
        ``lib.cameras``); K (N, 3, 3) float32 pixels; points (M, 3) float32 world; train_idx and
        test_idx (int64 index tensors into the N views); names (N frame names, sorted, e.g.
        "frame000001"); image_size (H, W).
    Raises:
        FileNotFoundError: a missing folder or points file.
        ValueError: an image without a pose or a pose without an image (named), a pose file
            without 16 finite numbers, images of different sizes, non-RGB images, a bad points array.
    """
    import imageio.v3 as iio

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist; expected the truck folder with imgs/, poses/, points/")
    images = _files(root / "imgs", IMAGE_SUFFIXES, "images")
    poses = _files(root / "poses", (".npy",), "poses")
    no_pose, no_image = sorted(set(images) - set(poses)), sorted(set(poses) - set(images))
    if no_pose or no_image:
        raise ValueError(f"{root}: {len(images)} images in imgs/ but {len(poses)} poses in poses/; images "
                         f"without a pose: {[images[k].name for k in no_pose][:5]}, poses without an image: "
                         f"{[poses[k].name for k in no_image][:5]}")
    names = sorted(images)
    arrays, size = [], None
    for name in names:
        first = size and (images[names[0]].name, size)
        img = check_image(np.asarray(iio.imread(images[name])), images[name], first)
        size = img.shape[:2]
        arrays.append(from_uint8(img[..., :3]))
    pose = np.stack([_read_pose(poses[name]) for name in names])  # (N, 16)
    c2w, K = from_pytorch3d_ndc(pose[:, :9].reshape(-1, 3, 3), pose[:, 9:12], pose[:, 12:14], pose[:, 14:16], size)
    points_path = _points_file(root)
    points = np.load(points_path, allow_pickle=False)
    if points.ndim != 2 or points.shape[1] != 3 or not np.isfinite(points).all():
        raise ValueError(f"{points_path}: expected (M, 3) finite points, got shape {points.shape}")
    train_idx, test_idx = truck_split(len(names))
    return {"images": torch.stack(arrays), "c2w": c2w, "K": K,
            "points": torch.from_numpy(points.astype(np.float32)), "train_idx": train_idx,
            "test_idx": test_idx, "names": names, "image_size": tuple(size)}


def write_truck_folder(root, images: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, points: torch.Tensor,
                       image_format: str = "png", first_frame: int = 1) -> Path:
    """Write views in the truck layout (module docstring), converting our cameras to PyTorch3D NDC.

    Args:
        root: output folder (created).
        images: (N, H, W, 3) float in [0, 1], written as 8-bit ``imgs/frameNNNNNN.<image_format>``.
        c2w: (N, 4, 4) poses (``lib.cameras``). K: (N, 3, 3) or (3, 3) pixel intrinsics.
        points: (M, 3) world points, written as ``points/points_<M>.npy`` (float64).
        image_format: "png" (lossless; what tests use) or "jpg" (as the assignment ships, lossy).
        first_frame: number of the first frame file (the assignment starts at 1).
    Returns:
        ``Path(root)``.
    """
    import imageio.v3 as iio

    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    images = torch.as_tensor(images)
    check_images(images, "write_truck_folder: `images`")
    if c2w.shape != (images.shape[0], 4, 4):
        raise ValueError(f"write_truck_folder: `c2w` must be (N, 4, 4) for the {images.shape[0]} images, "
                         f"got {tuple(c2w.shape)}")
    points = torch.as_tensor(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"write_truck_folder: `points` must be (M, 3), got {tuple(points.shape)}")
    root = Path(root)
    for sub in ("imgs", "poses", "points"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows = to_pytorch3d_ndc(c2w, K, images.shape[1:3]).numpy()
    pixels = to_uint8(images)
    for i, (img, row) in enumerate(zip(pixels, rows)):
        name = f"frame{first_frame + i:06d}"
        kwargs = {"quality": 95} if image_format == "jpg" else {}
        iio.imwrite(root / "imgs" / f"{name}.{image_format}", img, **kwargs)
        np.save(root / "poses" / f"{name}.npy", row)
    np.save(root / "points" / f"points_{len(points)}.npy", points.detach().cpu().double().numpy())
    return root
