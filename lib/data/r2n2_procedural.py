"""Procedural shapes written in the R2N2 layout: the offline stand-in for ShapeNet/R2N2.

:func:`write_procedural_r2n2` writes shapes of the registry ``lib.data.shapes`` (chairs, cars,
airplanes, ... ) exactly as the real dataset is laid out (views, metadata, binvox, obj, split
file; see ``lib.data.r2n2``), so that :class:`lib.data.r2n2.R2N2Dataset` reads both the same way.

Example (CPU)::

    >>> root = write_procedural_r2n2("/tmp/r2n2_layout_demo", ("car",), n_models=2, image_size=16, n_views=3)
    >>> sorted(p.name for p in root.iterdir())
    ['r2n2', 'r2n2_info.json', 'shapenet', 'split.json']
    >>> sorted(p.name for p in (root / "r2n2/ShapeNetRendering/02958343/car_000_0000/rendering").iterdir())
    ['00.png', '01.png', '02.png', 'rendering_metadata.txt', 'renderings.txt']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lib.cameras import random_orbit_angles
from lib.data.binvox import write_binvox
from lib.data.r2n2 import GRID_BOUNDS, INFO_FILE, N_VIEWS, SYNSETS, VOXEL_RES, r2n2_camera, write_metadata
from lib.data.shapes import CATEGORIES, SHAPES, make_shape
from lib.images import box_downsample, to_uint8
from lib.mesh import TriMesh, normalize_mesh
from lib.render.zbuffer import render_views
from lib.voxels import voxelize


def write_procedural_r2n2(root, categories: Sequence[str] = ("chair",), n_models=60, seed: int = 0,
                          image_size: int = 64, n_views: int = N_VIEWS, splits=(0.7, 0.1, 0.2),
                          supersample: int = 2, progress: bool = False) -> Path:
    """Write procedural shapes in the R2N2 layout (module docstring) and return ``root``.

    Per model: ``make_shape(category, seed_i)`` (``lib.data.shapes``) normalised the ShapeNet way
    (``lib.mesh.normalize_mesh(m, 1.0, "diagonal")``), 24 views from random cameras drawn in
    R2N2's ranges (azimuth 0-360, elevation 20-30 degrees, distance ratio 0.7-0.9), rendered by
    ``lib.render.zbuffer.render_views`` (flat shading, ``supersample``^2 samples per pixel) as
    RGBA PNGs with a transparent background, the metadata encoded as R2N2 encodes it, the 32^3
    solid voxelisation (``lib.voxels.voxelize``) and the mesh as .obj. Deterministic in ``seed``.
    A finished dataset is recognised by its ``r2n2_info.json`` (written last) and not written
    again when the arguments match.

    Args:
        root: output folder. categories: names from ``lib.data.shapes.CATEGORIES`` (chair, vase,
            lamp, car, airplane).
        n_models: models per category (int) or ``{category: int}``.
        image_size: PNG side in pixels. n_views: views per model (R2N2: 24).
        splits: fractions (train, val, test) of each category's models.
    Returns:
        ``Path(root)``.
    """
    root = Path(root)
    bad = [c for c in categories if c not in SHAPES]
    if bad:
        raise ValueError(f"write_procedural_r2n2: unknown categories {bad}; choose from {list(CATEGORIES)}")
    counts = {c: int(n_models[c] if isinstance(n_models, dict) else n_models) for c in categories}
    info = {"generator": "lib.data.r2n2_procedural.write_procedural_r2n2", "version": 1, "categories": list(categories),
            "n_models": counts, "seed": seed, "image_size": image_size, "n_views": n_views,
            "splits": list(splits), "supersample": supersample, "voxel_frame": "binvox_header"}
    if (root / INFO_FILE).is_file() and json.loads((root / INFO_FILE).read_text()) == info:
        return root
    split = {"train": {}, "val": {}, "test": {}}
    for k, cat in enumerate(categories):
        syn = SYNSETS[cat]
        n = counts[cat]
        n_train, n_val = int(round(n * splits[0])), int(round(n * splits[1]))
        for i in range(n):
            rng = np.random.default_rng([seed, k, i])
            model_id = f"{cat}_{seed:03d}_{i:04d}"
            mesh = normalize_mesh(make_shape(cat, int(rng.integers(2 ** 31))), 1.0, "diagonal")
            azimuth, elevation = random_orbit_angles(n_views, (20.0, 30.0), rng)  # R2N2's renders' ranges
            meta = np.stack([azimuth.numpy(), elevation.numpy(), np.zeros(n_views),
                             rng.uniform(0.7, 0.9, n_views), np.full(n_views, 25.0)], 1)
            _write_model(root, syn, model_id, mesh, meta, image_size, supersample)
            part = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            split[part].setdefault(syn, {})[model_id] = list(range(n_views))
            if progress and (i + 1) % 10 == 0:
                print(f"{cat}: {i + 1}/{n} models written")
    (root / "split.json").write_text(json.dumps(split, indent=1))
    (root / INFO_FILE).write_text(json.dumps(info, indent=1))
    return root


def _write_model(root: Path, syn: str, model_id: str, mesh: TriMesh, meta: np.ndarray, image_size: int,
                 supersample: int) -> None:
    """One model's renders (RGBA PNGs), metadata, renderings.txt, binvox and obj."""
    from PIL import Image

    from lib.data.mesh_io import save_obj

    c2w, K = r2n2_camera(meta[:, 0], meta[:, 1], meta[:, 3], image_size * supersample)
    out = render_views(mesh, c2w, K, image_size * supersample)
    rgba = torch.cat([out["rgb"] * out["mask"][..., None], out["mask"][..., None].float()], -1)
    rgba = box_downsample(rgba, supersample)
    rgba[..., :3] = rgba[..., :3] / rgba[..., 3:].clamp_min(1e-6)  # straight (not premultiplied) alpha
    img = to_uint8(rgba)
    rdir = root / "r2n2" / "ShapeNetRendering" / syn / model_id / "rendering"
    rdir.mkdir(parents=True, exist_ok=True)
    for v in range(len(img)):
        Image.fromarray(img[v], "RGBA").save(rdir / f"{v:02d}.png")
    write_metadata(rdir / "rendering_metadata.txt", meta)
    (rdir / "renderings.txt").write_text("".join(f"{v:02d}.png\n" for v in range(len(img))))
    occ = voxelize(mesh, VOXEL_RES, bounds=GRID_BOUNDS)
    write_binvox(root / "r2n2" / "ShapeNetVox32" / syn / model_id / "model.binvox", occ,
                 translate=(GRID_BOUNDS[0],) * 3, scale=GRID_BOUNDS[1] - GRID_BOUNDS[0])
    save_obj(root / "shapenet" / syn / model_id / "model.obj", mesh)
