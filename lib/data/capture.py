"""Multi-view capture: render a textured mesh scene from N cameras to RGB, depth, mask and
camera parameters, and store/load such a capture on disk (the RGB-D input of notebook 01).

On-disk layout of a capture folder::

    cameras.json        {"convention": ..., "image_size": [H, W], "K": 3x3, "c2w": [N x 4x4]}
    rgb_000.png ...     8-bit RGB
    depth_000.npy ...   float32 camera z in world units, 0 where nothing was hit
    mask_000.png ...    8-bit, 255 where the object covers the pixel

Example:
    >>> import pytest
    >>> _ = pytest.importorskip("pytorch3d")  # skipped where PyTorch3D is not installed
    >>> from lib.cameras import random_orbit_poses
    >>> from lib.primitives import box
    >>> cap = capture(box((0, 0, 0), (1, 1, 1)), random_orbit_poses(3, 3.0, generator=torch.Generator().manual_seed(0)),
    ...               fov=50.0, image_size=32)
    >>> cap["rgb"].shape, cap["depth"].shape, cap["c2w"].shape, cap["K"].shape
    (torch.Size([3, 32, 32, 3]), torch.Size([3, 32, 32]), torch.Size([3, 4, 4]), torch.Size([3, 3]))
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from lib.cameras import intrinsics_from_fov
from lib.images import from_uint8, to_uint8
from lib.render.common import RenderSettings

CONVENTION = "c2w 4x4, OpenCV camera axes (x right, y down, z forward), world y up; see lib/cameras.py"


def capture(mesh, c2w: torch.Tensor, fov: float = 50.0, image_size=128, background=(1.0, 1.0, 1.0),
            device=None) -> dict:
    """Render ``mesh`` from every pose.

    Args:
        mesh: ``TriMesh`` (textured or vertex-coloured). c2w: (N, 4, 4) poses.
        fov: vertical field of view, degrees. image_size: H or (H, W).
    Returns:
        dict with ``rgb`` (N, H, W, 3), ``depth`` (N, H, W), ``mask`` (N, H, W) bool,
        ``c2w`` (N, 4, 4) and ``K`` (3, 3), all on CPU.
    """
    from lib.render.mesh import render_mesh

    settings = RenderSettings(image_size=image_size, background=background, device=device)
    K = intrinsics_from_fov(fov, settings.hw())
    out = render_mesh(mesh, c2w, K, settings)
    return {"rgb": out["rgb"].cpu(), "depth": out["depth"].cpu(), "mask": out["mask"].cpu(),
            "c2w": c2w.cpu(), "K": K}


def save_capture(folder, cap: dict) -> Path:
    """Write a capture in the layout of the module docstring; returns the folder."""
    import imageio.v3 as iio

    from lib.report import write_json_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(cap["rgb"].shape[0]):
        iio.imwrite(folder / f"rgb_{i:03d}.png", to_uint8(cap["rgb"][i]))
        np.save(folder / f"depth_{i:03d}.npy", cap["depth"][i].numpy().astype(np.float32))
        iio.imwrite(folder / f"mask_{i:03d}.png", cap["mask"][i].numpy().astype(np.uint8) * 255)
    write_json_atomic(folder / "cameras.json", {
        "convention": CONVENTION, "image_size": list(cap["rgb"].shape[1:3]),
        "K": cap["K"].tolist(), "c2w": cap["c2w"].tolist()})
    return folder


def load_capture(folder) -> dict:
    """Read a capture folder back (same dict as :func:`capture`); errors name the missing file."""
    import imageio.v3 as iio

    folder = Path(folder)
    meta_path = folder / "cameras.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} not found: a capture folder needs cameras.json "
                                "(write one with lib.data.capture.save_capture)")
    meta = json.loads(meta_path.read_text())
    c2w = torch.tensor(meta["c2w"], dtype=torch.float32)
    rgb, depth, mask = [], [], []
    for i in range(c2w.shape[0]):
        files = [folder / f"rgb_{i:03d}.png", folder / f"depth_{i:03d}.npy", folder / f"mask_{i:03d}.png"]
        for f in files:
            if not f.exists():
                raise FileNotFoundError(f"{f} not found: cameras.json lists {c2w.shape[0]} views")
        rgb.append(from_uint8(iio.imread(files[0])[..., :3]))
        depth.append(torch.from_numpy(np.load(files[1])))
        mask.append(torch.from_numpy(iio.imread(files[2]) > 127))
    return {"rgb": torch.stack(rgb), "depth": torch.stack(depth), "mask": torch.stack(mask),
            "c2w": c2w, "K": torch.tensor(meta["K"], dtype=torch.float32)}
