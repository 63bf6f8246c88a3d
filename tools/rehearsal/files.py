"""Miniature stand-ins, in the real formats, of every file the notebooks download in full mode.

CI rehearses the notebooks' full-mode cells on a CPU with no network: a local HTTP server serves
these files where the real hosts would, so ``lib.data.sources``' fetch code, ``lib.data.download``'s
extraction and lib's readers run unchanged on them. :func:`write_files` writes them all, each a
deterministic function of ``seed``, a few MB in all, in a few seconds, drawn by lib's own
procedural writers (the offline data of smoke mode) and laid out as the real files are:

- ``cow_obj``, ``cow_mtl``, ``cow_texture``: PyTorch3D's cow (cow.obj names cow.mtl, which names
  cow_texture.png). Stand-in: ``lib.data.toy_animal`` facing -z, saved by ``mesh_io.save_obj``.
- ``nerf_synthetic``: nerf_synthetic.zip -> ``nerf_synthetic/lego/transforms_{train,val,test}.json``
  (keys ``camera_angle_x``, ``frames`` of {file_path, rotation, transform_matrix}) and
  ``{split}/r_<i>.png`` (800 px RGBA). Stand-in: the still life (``lib.data.still_life``) in RGBA
  PNGs with lego's camera_angle_x, and only the real json keys (no near/far/scene_bounds).
- ``pt3d_lego_cameras``, ``pt3d_lego_images``: PyTorch3D's NeRF project, lego.pth ({"cameras": R, T,
  focal_length, principal_point, NDC; "split": [train, val, test]}) and lego.png (the images
  stacked vertically). Stand-in: the same renders on white; the cameras converted by
  ``lib.pytorch3d_cameras.to_pytorch3d_ndc`` in Blender's z-up world, as the project keeps lego.
- ``r2n2_chairs``: r2n2_shapenet_dataset.zip -> ``r2n2_shapenet_dataset/`` with
  ``r2n2/ShapeNetRendering/03001627/<id>/rendering/`` (NN.png, rendering_metadata.txt,
  renderings.txt, feats.npy), ``r2n2/ShapeNetVoxels/03001627/<id>/model.binvox``,
  ``shapenet/03001627/<id>/model.obj`` and ``split_03001627.json``. Stand-in: chairs of
  ``write_procedural_r2n2`` renamed to 32-hex ids, the voxels moved to the course's ShapeNetVoxels/,
  feats.npy (24, 512) float32 zeros, no r2n2_info.json (lib then places voxels as for real R2N2).
- ``srn_cars``: srn_cars.zip -> ``srn_cars/cars_{train,val,test}/<id>/`` with ``rgb/NNNNNN.png``,
  ``pose/NNNNNN.txt``, ``intrinsics.txt``. Stand-in: ``lib.data.srn``'s procedural cars, RGB on
  white, no depth/ (our extension).
- ``a5_point_clouds``: a5_data.zip -> ``data/{cls,seg}/{data,label}_{train,test}.npy``. Stand-in:
  ``write_procedural_point_data`` (points float32, labels int64) without its procedural.json.
- ``truck/<path>``: learning3d/assignment4 ``Q1/data/truck/<path>``: ``imgs/frameNNNNNN.jpg``
  (160 x 90), ``poses/frameNNNNNN.npy`` (16 float64), ``points/points_10000.npy`` (float64).
  Stand-in: the still life on black seen from an orbit, by ``lib.data.truck.write_truck_folder``.

Sizes are in :data:`COUNTS`. Archives hold the real top-level folder (``lib.data.download``
extracts ``x.zip`` into a sibling ``x/``, where ``lib.data.sources``' fetch functions look for it).

Example (CPU, a few seconds)::

    >>> records = write_files("/tmp/standins", seed=0)  # doctest: +SKIP
    >>> records["srn_cars"]["path"]  # doctest: +SKIP
    'srn_cars.zip'
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from tools.rehearsal.archives import file_record, hex_id, single_thread, write_zip

# Everything the notebooks' tiny full-mode settings can count on. Views and images are per split;
# "a5" counts are shapes per class for cls (3 classes) and chairs for seg.
COUNTS = {
    "cow": {"resolution": 48},  # marching-cubes grid of the toy animal (the real cow: 2930 vertices)
    "nerf_synthetic": {"train": 6, "val": 2, "test": 4, "image": 32},  # real: 100 / 100 / 200 at 800 px
    "pt3d_lego": {"train": 6, "val": 2, "test": 4, "image": 32},  # the nerf_synthetic renders, re-packed
    "srn_cars": {"train_objects": 4, "val_objects": 1, "test_objects": 2,
                 "train_views": 10, "test_views": 66, "image": 32},  # real: 50 / 251 views at 128 px
    "r2n2": {"train": 4, "val": 1, "test": 2, "views": 24, "image": 32},  # real: 137 px, 24 views
    "a5": {"cls_train": 6, "cls_test": 3, "seg_train": 6, "seg_test": 3, "points": 1024},  # real: 10000 points
    "truck": {"frames": 12, "points": 10000, "height": 90, "width": 160},  # real: 202 frames
}
LEGO_FRAME_ROTATION = 0.012566370614359171  # the "rotation" every nerf_synthetic frame carries (unused)
SRN_SPLITS = ("cars_train", "cars_val", "cars_test")


def write_files(out, seed: int = 0) -> dict[str, dict]:
    """Write every stand-in under ``out`` (created) and return their records.

    Args:
        out: output folder; existing stand-ins in it are overwritten.
        seed: everything (shapes, colours, cameras, ids) is a deterministic function of it.
    Returns:
        ``{key: {"path": <relative to out, posix>, "sha256": ..., "size": <bytes>}}`` for the keys
        of the module docstring: the registry names of ``lib.data.sources.SOURCES`` that the
        notebooks fetch, and ``"truck/<path inside Q1/data/truck>"`` for each truck file.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with single_thread():
        paths = dict(_write_cow(out, seed))
        with tempfile.TemporaryDirectory(prefix="standins-") as tmp:
            tmp = Path(tmp)
            views, K = _render_lego(seed)
            paths["nerf_synthetic"] = _write_nerf_synthetic(out, tmp, views)
            paths.update(_write_pt3d_lego(out, views, K))
            paths["r2n2_chairs"] = _write_r2n2(out, tmp, seed)
            paths["srn_cars"] = _write_srn(out, tmp, seed)
            paths["a5_point_clouds"] = _write_a5(out, tmp, seed)
        paths.update(_write_truck(out, seed))
    return {key: file_record(out, path) for key, path in paths.items()}


# ------------------------------------------------------------------------------------ the cow
def _write_cow(out: Path, seed: int) -> dict[str, Path]:
    """cow.obj (``mtllib cow.mtl``, ``usemtl material_1``), cow.mtl (``map_Kd cow_texture.png``) and
    cow_texture.png in ``out/cow``, as the PyTorch3D cow names them."""
    from lib.data.mesh_io import save_obj
    from lib.data.toy_animal import toy_animal

    obj = save_obj(out / "cow" / "cow.obj", toy_animal(seed, COUNTS["cow"]["resolution"], facing="-z"),
                   material_name="material_1")
    return {"cow_obj": obj, "cow_mtl": obj.with_name("cow.mtl"), "cow_texture": obj.with_name("cow_texture.png")}


# ------------------------------------------------------------------------ NeRF data (the lego)
def _render_lego(seed: int):
    """The still life seen as lego is: ``({split: (rgba (N, S, S, 4), c2w (N, 4, 4))}, K (3, 3))``,
    square images with lego's horizontal field of view, poses of ``still_life.scene_poses``."""
    from lib.cameras import pixel_intrinsics
    from lib.data.blender import LEGO_ANGLE_X, SPLITS
    from lib.data.still_life import render_scene, scene_poses

    c = COUNTS["nerf_synthetic"]
    s = c["image"]
    f = 0.5 * s / math.tan(LEGO_ANGLE_X / 2)
    K = pixel_intrinsics(f, s / 2, s / 2)
    views = {}
    for split in SPLITS:
        c2w = scene_poses(c[split], split, seed)
        views[split] = (render_scene(c2w, K, s, seed), c2w)
    return views, K


def _write_nerf_synthetic(out: Path, tmp: Path, views: dict) -> Path:
    """nerf_synthetic.zip holding nerf_synthetic/lego/ with the real json keys only: camera_angle_x,
    and frames of {file_path, rotation, transform_matrix} (no near/far/scene_bounds)."""
    from lib.data.blender import LEGO_ANGLE_X, write_blender_split

    scene = tmp / "nerf_synthetic" / "lego"
    for split, (rgba, c2w) in views.items():
        path = write_blender_split(scene, split, rgba, c2w, LEGO_ANGLE_X)
        meta = json.loads(path.read_text())
        meta["frames"] = [{"file_path": fr["file_path"], "rotation": LEGO_FRAME_ROTATION,
                           "transform_matrix": fr["transform_matrix"]} for fr in meta["frames"]]
        path.write_text(json.dumps(meta, indent=4))
    return write_zip(tmp, "nerf_synthetic", out / "nerf_synthetic.zip")


def _write_pt3d_lego(out: Path, views: dict, K: torch.Tensor) -> dict[str, Path]:
    """lego.pth + lego.png of PyTorch3D's NeRF project in ``out/pt3d_nerf``: the views of every split
    (train, val, test, in that order) on white, stacked vertically in one RGB PNG; their cameras as
    PyTorch3D ``PerspectiveCameras`` in NDC (float32), in Blender's z-up world as the project keeps
    it (``lib.data.blender.load_pytorch3d_nerf`` turns lego's world y-up on load)."""
    from PIL import Image

    from lib.cameras import rotation
    from lib.pytorch3d_cameras import to_pytorch3d_ndc
    from lib.images import to_uint8

    rgba = torch.cat([v[0] for v in views.values()])
    c2w = torch.cat([v[1] for v in views.values()])
    n, s = rgba.shape[:2]
    z_up = torch.eye(4)
    z_up[:3, :3] = rotation("x", 90.0)  # lib's y-up world -> Blender's z-up world
    rows = to_pytorch3d_ndc(z_up @ c2w, K, (s, s)).float()  # (N, 16): R, T, focal, principal point
    cams = {"R": rows[:, :9].reshape(n, 3, 3), "T": rows[:, 9:12], "focal_length": rows[:, 12:14],
            "principal_point": rows[:, 14:16]}
    bounds = np.cumsum([0] + [len(v[0]) for v in views.values()])
    split = [torch.arange(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    folder = out / "pt3d_nerf"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"cameras": {k: v.clone().contiguous() for k, v in cams.items()}, "split": split},
               folder / "lego.pth")
    rgb = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
    Image.fromarray(to_uint8(rgb.reshape(n * s, s, 3)), "RGB").save(folder / "lego.png")
    return {"pt3d_lego_cameras": folder / "lego.pth", "pt3d_lego_images": folder / "lego.png"}


# -------------------------------------------------------------------------------------- R2N2
def _without_vertex_colours(obj: Path) -> None:
    """Rewrite a procedural chair's OBJ as geometry only: ShapeNet's carry no per-vertex colours."""
    from lib.data.mesh_io import load_obj, save_obj
    from lib.mesh import TriMesh

    mesh = load_obj(obj)
    save_obj(obj, TriMesh(verts=mesh.verts, faces=mesh.faces))


def _write_r2n2(out: Path, tmp: Path, seed: int) -> Path:
    """r2n2_shapenet_dataset.zip in the course's layout (module docstring) from procedural chairs."""
    from lib.data.r2n2 import SYNSETS
    from lib.data.r2n2_procedural import write_procedural_r2n2

    c = COUNTS["r2n2"]
    parts = ("train", "val", "test")
    n = sum(c[p] for p in parts)
    src = write_procedural_r2n2(tmp / "r2n2_procedural", ("chair",), n, seed, c["image"], c["views"],
                                tuple(c[p] / n for p in parts))
    syn = SYNSETS["chair"]
    root = tmp / "r2n2_shapenet_dataset"
    moves = (("r2n2/ShapeNetRendering", "r2n2/ShapeNetRendering"), ("r2n2/ShapeNetVox32", "r2n2/ShapeNetVoxels"),
             ("shapenet", "shapenet"))
    split = json.loads((src / "split.json").read_text())
    renamed = {part: {} for part in parts}
    for part in parts:
        for model_id, model_views in split[part].get(syn, {}).items():
            new = hex_id(seed, "r2n2", model_id)
            for old_dir, new_dir in moves:
                (root / new_dir / syn).mkdir(parents=True, exist_ok=True)
                shutil.move(src / old_dir / syn / model_id, root / new_dir / syn / new)
            _without_vertex_colours(root / "shapenet" / syn / new / "model.obj")  # as ShapeNet's OBJ files
            # the course's zip ships ResNet-18 features of each view (read by its r2n2_custom.py, not by lib)
            np.save(root / "r2n2/ShapeNetRendering" / syn / new / "rendering" / "feats.npy",
                    np.zeros((c["views"], 512), np.float32))
            renamed[part].setdefault(syn, {})[new] = model_views
    (root / f"split_{syn}.json").write_text(json.dumps(renamed))
    return write_zip(tmp, "r2n2_shapenet_dataset", out / "r2n2_shapenet_dataset.zip")


# --------------------------------------------------------------------------------- SRN cars
def _write_srn(out: Path, tmp: Path, seed: int) -> Path:
    """srn_cars.zip: procedural cars in the SRN layout, objects named by 32-hex ids, cameras at the
    SRN radius with SRN's focal length scaled to ``COUNTS["srn_cars"]["image"]``."""
    from lib.data import srn
    from lib.render.zbuffer import render_views

    c = COUNTS["srn_cars"]
    K = srn.srn_intrinsics(c["image"])
    sizes = {"cars_train": (c["train_objects"], c["train_views"]), "cars_val": (c["val_objects"], c["test_views"]),
             "cars_test": (c["test_objects"], c["test_views"])}
    for split in SRN_SPLITS:
        n_objects, n_views = sizes[split]
        for i in range(n_objects):
            rng = np.random.default_rng([seed, zlib.crc32(split.encode()), i])
            mesh = srn.procedural_object("car", int(rng.integers(2 ** 31)), rng)
            c2w = srn.procedural_cameras(n_views, rng)
            images = render_views(mesh, c2w, K, c["image"], supersample=srn.SRN_SUPERSAMPLE)["rgb"]
            srn.write_srn_object(tmp / "srn_cars" / split / hex_id(seed, split, i), images, c2w, K)
    return write_zip(tmp, "srn_cars", out / "srn_cars.zip")


# ------------------------------------------------------------------------------ point clouds
def _write_a5(out: Path, tmp: Path, seed: int) -> Path:
    """a5_data.zip holding data/cls/ and data/seg/ (what the assignment's zip unzips to)."""
    from lib.data.point_clouds import INFO_FILE, write_procedural_point_data

    c = COUNTS["a5"]
    data = write_procedural_point_data(tmp / "a5" / "data", c["cls_train"], c["cls_test"], c["seg_train"],
                                       c["seg_test"], c["points"], seed)
    (data / INFO_FILE).unlink()  # ours, not the assignment's
    return write_zip(tmp / "a5", "data", out / "a5_data.zip")


# --------------------------------------------------------------------------- the truck scene
def _write_truck(out: Path, seed: int) -> dict[str, Path]:
    """``out/truck/`` in the assignment's layout: the still life on black, seen from an orbit at
    160 x 90 px (JPEG), PyTorch3D NDC poses (16 float64), and ``points_<M>.npy`` (float64) on its
    surfaces. Keys are ``truck/<path inside the truck folder>``."""
    from lib import cameras
    from lib.data.still_life import render_scene, scene_points
    from lib.data.truck import write_truck_folder

    c = COUNTS["truck"]
    size = (c["height"], c["width"])
    c2w = cameras.orbit_poses(torch.arange(c["frames"]) * (360.0 / c["frames"]), elevation=20.0, distance=4.0)
    K = cameras.intrinsics_from_fov(45.0, size)
    rgba = render_scene(c2w, K, size, seed, supersample=1)
    points, _ = scene_points(c["points"], seed)
    root = out / "truck"
    if root.exists():
        shutil.rmtree(root)  # a stale run's frames would stay beside the new ones
    write_truck_folder(root, rgba[..., :3] * rgba[..., 3:], c2w, K, points, image_format="jpg")
    return {f"truck/{p.relative_to(root).as_posix()}": p for p in sorted(root.rglob("*")) if p.is_file()}
