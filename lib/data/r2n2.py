"""R2N2-layout datasets: rendered views + 32^3 voxels + meshes of ShapeNet objects, real or procedural.

One reader, :class:`R2N2Dataset`, for the ShapeNet subset of 3D-R2N2 (Choy et al., 2016) as the
course subsets ship it (Hugging Face ``learning3dvision/r2n2_shapenet_dataset``, read in full
mode) and for the procedural shapes that ``lib.data.r2n2_procedural.write_procedural_r2n2`` writes
in the same layout (smoke mode, tests; it names the voxel folder as R2N2 did, and adds
``r2n2_info.json``)::

    <root>/
      r2n2/ShapeNetRendering/<synset>/<model_id>/rendering/00.png ... 23.png   RGBA (137 px real)
                                                 rendering/rendering_metadata.txt  one line per view
                                                 rendering/renderings.txt          the PNG names
      r2n2/ShapeNetVoxels/<synset>/<model_id>/model.binvox    32^3 occupancy (the course's zip;
                                                                R2N2's own name: ShapeNetVox32)
      shapenet/<synset>/<model_id>/model.obj                                   the mesh
      split*.json   {"train": {synset: {model_id: [view indices]}}, "val": {...}, "test": {...}}

(the split file is PyTorch3D's R2N2 format; the view lists say which views each model has).

**Cameras.** A metadata line is ``azimuth elevation in_plane_rotation distance_ratio fov``
(degrees, degrees, degrees, fraction, degrees). R2N2 rendered with Blender looking at the
origin from ``distance = distance_ratio * MAX_CAMERA_DISTANCE`` (1.75) with Blender's default
35 mm lens on a 32 mm sensor, i.e. a focal length of ``BLENDER_FOCAL_NDC = 35 / 16 = 2.1875``
half-image widths; the ``fov`` column (25) and the in-plane rotation (0) are not used, as in
PyTorch3D's and Mesh R-CNN's readers. In the mesh's own frame (y up) the camera sits at
``d * (cos(el) cos(az), sin(el), cos(el) sin(az))`` (azimuth 0 on +x, towards +z), with no roll.
:func:`r2n2_camera` converts this ON LOAD to ``lib.cameras``' convention (c2w with OpenCV axes,
K in pixels); the test suite checks it against Mesh R-CNN's extrinsics
(``pytorch3d.datasets.r2n2.utils.compute_extrinsic_matrix``).

**Objects and voxels.** ShapeNetCore v1 meshes are normalised: bounding box centred at the
origin, diagonal of length 1, y up; so every object fits in ``[-0.5, 0.5]^3``. Items return the
voxels on the grid ``[-0.5, 0.5]^3`` (32^3, indexed ``[ix, iy, iz]`` as in ``lib.voxels``).
Real R2N2 grids are placed PyTorch3D's way (the occupied voxels' bounding box is stretched onto
the mesh's); procedural ones carry the exact frame in their binvox header
(``r2n2_info.json`` says ``"voxel_frame": "binvox_header"``).

Example (CPU)::

    >>> from lib.data.r2n2_procedural import write_procedural_r2n2
    >>> root = write_procedural_r2n2("/tmp/r2n2_demo", n_models=4, image_size=32)
    >>> ds = R2N2Dataset(root, split="train", n_points=256)
    >>> item = ds[0]
    >>> item["images"].shape, item["voxels"].shape, item["points"].shape, item["K"].shape
    (torch.Size([24, 32, 32, 3]), torch.Size([32, 32, 32]), torch.Size([256, 3]), torch.Size([24, 3, 3]))
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from lib import cameras
from lib.images import from_uint8, read_png, resize_images, to_uint8
from lib.mesh import TriMesh

SYNSETS = {"airplane": "02691156", "bench": "02828884", "cabinet": "02933112", "car": "02958343",
           "chair": "03001627", "display": "03211117", "lamp": "03636649", "loudspeaker": "03691459",
           "rifle": "04090263", "sofa": "04256520", "table": "04379243", "telephone": "04401088",
           "watercraft": "04530566", "vase": "03593526"}  # the 13 R2N2 classes + ShapeNet's vase
CATEGORY_OF = {v: k for k, v in SYNSETS.items()}
N_VIEWS = 24
MAX_CAMERA_DISTANCE = 1.75
BLENDER_FOCAL_NDC = 2.1875  # 35 mm lens / (32 mm sensor / 2)
VOXEL_RES = 32
GRID_BOUNDS = (-0.5, 0.5)
INFO_FILE = "r2n2_info.json"
_LAYOUT = ("<root>/r2n2/ShapeNetRendering/<synset>/<model_id>/rendering/NN.png, "
           "<root>/r2n2/ShapeNetVoxels (or ShapeNetVox32)/<synset>/<model_id>/model.binvox, "
           "<root>/shapenet/<synset>/<model_id>/model.obj and <root>/split*.json")


# ----------------------------------------------------------------------------- cameras
def r2n2_camera(azimuth, elevation, distance_ratio, image_size: int):
    """Cameras of R2N2 metadata in ``lib.cameras``' convention.

    Args:
        azimuth, elevation: (V,) degrees (or scalars). distance_ratio: (V,) fraction of
            ``MAX_CAMERA_DISTANCE``. image_size: the (square) image's side in pixels.
    Returns:
        c2w: (V, 4, 4) float32 OpenCV-axes camera-to-world, world = the mesh's frame.
        K: (V, 3, 3) float32 pixel intrinsics, focal ``BLENDER_FOCAL_NDC * image_size / 2``.
    """
    az, el, ratio = (torch.as_tensor(x, dtype=torch.float64).reshape(-1) for x in (azimuth, elevation, distance_ratio))
    az, el = torch.deg2rad(az), torch.deg2rad(el)
    d = ratio * MAX_CAMERA_DISTANCE
    eye = torch.stack([d * el.cos() * az.cos(), d * el.sin(), d * el.cos() * az.sin()], -1)
    c2w = cameras.look_at(eye.float(), torch.zeros(3).expand(len(eye), 3))
    f = BLENDER_FOCAL_NDC * image_size / 2
    K = cameras.pixel_intrinsics(f, image_size / 2, image_size / 2)
    return c2w, K.expand(len(eye), 3, 3).clone()


def read_metadata(path, n_required: int = N_VIEWS) -> np.ndarray:
    """(n_lines, 5) float64 rows ``azimuth elevation in_plane_rotation distance_ratio fov`` of a
    ``rendering_metadata.txt``; ValueError naming the file and line when a line is malformed or
    fewer than ``n_required`` lines are present (one per view)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: camera metadata missing; expected a rendering_metadata.txt "
                                f"with one line per view ('azimuth elevation in_plane_rotation distance_ratio fov')")
    rows = []
    lines = path.read_text(errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for no, line in enumerate(lines, 1):
        try:
            vals = [float(x) for x in line.split()]
        except ValueError:
            vals = []
        if len(vals) != 5 or not np.isfinite(vals).all():
            raise ValueError(f"{path} line {no}: expected 5 numbers 'azimuth elevation in_plane_rotation "
                             f"distance_ratio fov', got {line.strip()[:80]!r}")
        if not 0 < vals[3] * MAX_CAMERA_DISTANCE:
            raise ValueError(f"{path} line {no}: distance_ratio must be > 0, got {vals[3]}")
        rows.append(vals)
    if len(rows) < n_required:
        raise ValueError(f"{path}: expected {n_required} lines (one per view), got {len(rows)}")
    return np.asarray(rows, dtype=np.float64)


def write_metadata(path, rows) -> Path:
    """Write (V, 5) rows as R2N2 does: ``azimuth elevation in_plane_rotation distance_ratio fov``."""
    text = "".join(f"{a:.6f} {e:.6f} {r:g} {d:.6f} {f:g}\n" for a, e, r, d, f in np.asarray(rows))
    Path(path).write_text(text)
    return Path(path)


# ------------------------------------------------------------------------------- reading
@dataclass
class ModelRecord:
    """Where one model's files are, and its split's views."""

    synset: str
    model_id: str
    render_dir: Path
    binvox: Path
    obj: Path
    views: List[int]

    @property
    def category(self) -> str:
        return CATEGORY_OF.get(self.synset, self.synset)


def find_r2n2_root(path) -> Path:
    """The folder holding ``r2n2/ShapeNetRendering`` (``path`` itself or its only subfolder that
    does, as after extracting the course's zip); FileNotFoundError naming the layout otherwise."""
    path = Path(path)
    for cand in [path] + (sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []):
        if (cand / "r2n2" / "ShapeNetRendering").is_dir():
            return cand
    raise FileNotFoundError(f"{path}: no R2N2 dataset here; expected the layout {_LAYOUT}")


def load_mesh(path) -> TriMesh:
    """The mesh of a model: ``lib.data.mesh_io.load_obj`` (errors name the file and line). A
    ShapeNet .obj whose material or texture files are missing falls back to geometry only."""
    from lib.data.mesh_io import load_obj

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mesh missing; expected the model's Wavefront .obj here")
    try:
        return load_obj(path)
    except FileNotFoundError:  # a missing .mtl or texture: keep the geometry
        return load_obj(path, load_textures=False)


def canonical_voxels(path, mesh: TriMesh, frame: str = "mesh_bbox") -> torch.Tensor:
    """(32, 32, 32) bool ``[ix, iy, iz]`` on ``GRID_BOUNDS``^3 from a .binvox file.

    ``frame="binvox_header"`` places the voxels with the header's translate and scale;
    ``"mesh_bbox"`` (real R2N2, as PyTorch3D does) stretches the occupied voxels' bounding box
    onto the mesh's. Either way the occupied centres are re-binned onto the canonical grid.
    """
    from lib.data.binvox import read_binvox

    path = Path(path)
    try:
        grid, translate, scale = read_binvox(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: voxel grid missing; expected the model's {VOXEL_RES}^3 model.binvox") from None
    except ValueError as e:
        raise ValueError(f"{path}: not a valid voxel grid (expected a {VOXEL_RES}^3 .binvox): {e}") from None
    D = grid.shape[0]
    idx = grid.nonzero().double()  # (N, 3)
    if len(idx) == 0:
        raise ValueError(f"{path}: the voxel grid is empty; expected the occupied voxels of the model")
    if frame == "binvox_header":
        pts = translate.double() + scale * (idx + 0.5) / D
    else:
        lo, hi = idx.min(0).values, idx.max(0).values
        vlo, vhi = mesh.verts.min(0).values.double(), mesh.verts.max(0).values.double()
        pts = vlo + (idx - lo) / (hi - lo).clamp_min(1e-9) * (vhi - vlo)
    if D == VOXEL_RES and frame == "binvox_header" and torch.allclose(translate, torch.full((3,), GRID_BOUNDS[0])) \
            and abs(scale - (GRID_BOUNDS[1] - GRID_BOUNDS[0])) < 1e-6:
        return grid
    h = (GRID_BOUNDS[1] - GRID_BOUNDS[0]) / VOXEL_RES
    ijk = ((pts - GRID_BOUNDS[0]) / h).floor().long().clamp(0, VOXEL_RES - 1)
    out = torch.zeros(VOXEL_RES, VOXEL_RES, VOXEL_RES, dtype=torch.bool)
    out[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = True
    return out


class R2N2Dataset(torch.utils.data.Dataset):
    """Views, voxels, surface points and cameras of the models of one split of an R2N2-layout dataset.

    Everything is checked at construction (so training never starts on broken data): each
    listed model must have a PNG for every view its split lists, all PNGs the same size, a
    metadata file with a well-formed line for each view, a .binvox that parses and a mesh that
    loads; otherwise a ``FileNotFoundError`` / ``ValueError`` names the file and what was
    expected. The voxels and ``n_points`` surface samples (seeded by ``seed`` and the model id)
    are computed then and kept; images are read from disk by ``__getitem__``.

    Args:
        root: dataset folder (see the module docstring; the course zip's outer folder works too).
        split: "train", "val" or "test" (a key of the split file).
        categories: names ("chair") or synsets ("03001627") to keep; None keeps all.
        views: view indices every item returns (None: the views the split lists, R2N2: 24).
        image_size: resize the images to this side (K is scaled to match); None keeps the files' size.
        n_points: surface samples per model. seed: seeds the samples.
        splits_file: the split json (None: the only ``split*.json`` in the root).
        max_models: keep at most this many models per category (the first ones of the split).
    Items:
        dict with ``images`` (V, H, W, 3) float32 RGB in [0, 1] composited on white, ``voxels``
        (32, 32, 32) float32 {0, 1} ``[ix, iy, iz]`` on [-0.5, 0.5]^3, ``points`` (n_points, 3)
        float32 world, ``c2w`` (V, 4, 4) and ``K`` (V, 3, 3) (``lib.cameras`` convention),
        ``model_id`` and ``category`` (a name such as "chair") strings.
    """

    def __init__(self, root, split: str = "train", categories=None, views=None, image_size: Optional[int] = None,
                 n_points: int = 2048, seed: int = 0, splits_file=None, max_models: Optional[int] = None):
        self.root = find_r2n2_root(root)
        r2n2 = self.root / "r2n2"
        vox_dir = next((r2n2 / d for d in ("ShapeNetVox32", "ShapeNetVoxels") if (r2n2 / d).is_dir()),
                       r2n2 / "ShapeNetVox32")  # R2N2's name; the course's readers default to the second
        info_path = self.root / INFO_FILE
        self.info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        self.voxel_frame = self.info.get("voxel_frame", "mesh_bbox")
        split_dict = self._read_split(splits_file, split)
        if isinstance(categories, str):
            categories = [categories]
        keep = None if categories is None else {SYNSETS.get(c, c) for c in categories}
        unknown = sorted(keep - set(CATEGORY_OF)) if keep else []
        if unknown:
            raise ValueError(f"unknown categories {unknown}; use names {sorted(SYNSETS)} or their synsets")
        self.records: List[ModelRecord] = []
        for syn, models in split_dict.items():
            if keep is not None and syn not in keep:
                continue
            for model_id in list(models)[:max_models]:
                self.records.append(ModelRecord(
                    syn, model_id, r2n2 / "ShapeNetRendering" / syn / model_id / "rendering",
                    vox_dir / syn / model_id / "model.binvox", self.root / "shapenet" / syn / model_id / "model.obj",
                    [int(v) for v in models[model_id]]))
        if not self.records:
            raise ValueError(f"{self.root}: split {split!r} lists no model of categories {sorted(keep or [])}")
        self.views, self.image_size, self.n_points, self.seed = views, image_size, n_points, seed
        self.categories = list(dict.fromkeys(r.category for r in self.records))  # in split order
        self.file_size = None
        self.metadata, self.voxels, self.points = [], [], []
        for rec in self.records:
            self._check(rec)

    def _read_split(self, splits_file, split) -> Dict[str, Dict[str, list]]:
        if splits_file is None:
            found = sorted(self.root.glob("split*.json"))
            if len(found) != 1:
                raise FileNotFoundError(f"{self.root}: expected one split*.json file, found "
                                        f"{[p.name for p in found]}; pass splits_file=")
            splits_file = found[0]
        try:
            data = json.loads(Path(splits_file).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{splits_file}: cannot read the split file ({e}); expected JSON "
                             '{"train": {synset: {model_id: [views]}}, ...}') from None
        if split not in data:
            raise ValueError(f"{splits_file}: no split {split!r}; it has {sorted(data)}")
        return data[split]

    def _check(self, rec: ModelRecord) -> None:
        """Validate one model's files; keep its metadata, voxels and surface points."""
        from lib.geometry import sample_surface

        views = rec.views if self.views is None else list(self.views)
        if not rec.render_dir.is_dir():
            raise FileNotFoundError(f"{rec.render_dir}: renderings of model {rec.model_id} missing; expected {_LAYOUT}")
        for v in views:
            png = rec.render_dir / f"{v:02d}.png"
            if not png.is_file():
                raise FileNotFoundError(f"{png}: view {v} of model {rec.model_id} ({rec.category}) is missing; "
                                        f"expected a PNG for each of its views {min(views):02d}..{max(views):02d}")
            size = _png_size(png)
            if self.file_size is None:
                self.file_size = size
            elif size != self.file_size:
                raise ValueError(f"{png}: image is {size[0]}x{size[1]} pixels, expected {self.file_size[0]}x"
                                 f"{self.file_size[1]} like the other views of the dataset")
        meta = read_metadata(rec.render_dir / "rendering_metadata.txt", n_required=max(rec.views + views) + 1)
        mesh = load_mesh(rec.obj)
        if mesh.num_faces == 0:
            raise ValueError(f"{rec.obj}: the mesh has no faces; expected the model's surface")
        self.voxels.append(canonical_voxels(rec.binvox, mesh, self.voxel_frame))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(rec.model_id.encode()))
        self.points.append(sample_surface(mesh, self.n_points, gen)[0].float())
        self.metadata.append(meta)

    def __len__(self) -> int:
        return len(self.records)

    def mesh(self, index: int) -> TriMesh:
        """The mesh of model ``index`` (world units, the frame of the cameras)."""
        return load_mesh(self.records[index].obj)

    def cameras(self, index: int, views=None, image_size: Optional[int] = None):
        """(V, 4, 4) c2w and (V, 3, 3) K of model ``index``'s views, for images of ``image_size``."""
        rec = self.records[index]
        views = views if views is not None else (self.views if self.views is not None else rec.views)
        m = self.metadata[index][list(views)]
        return r2n2_camera(m[:, 0], m[:, 1], m[:, 3], image_size or self.image_size or self.file_size[0])

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        views = list(self.views) if self.views is not None else rec.views
        rgba = torch.from_numpy(np.stack([read_png(rec.render_dir / f"{v:02d}.png", "rgba") for v in views]))
        rgba = from_uint8(rgba)  # (V, H, W, 4)
        images = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])  # composite on white
        size = self.image_size or images.shape[2]
        if size != images.shape[2]:
            images = resize_images(images, (size, size))
        c2w, K = self.cameras(index, views, size)
        return {"images": images.contiguous(), "voxels": self.voxels[index].float(), "points": self.points[index],
                "c2w": c2w, "K": K, "model_id": rec.model_id, "category": rec.category}


def _png_size(path):
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception as e:  # noqa: BLE001 - any decoder failure means an unusable view
        raise ValueError(f"{path}: cannot read the image ({e}); expected an RGBA PNG view") from None
    return (h, w)


def to_tensors(dataset: R2N2Dataset, progress: bool = False) -> dict:
    """All items of ``dataset`` stacked, for fast training from memory.

    Returns:
        dict with ``images`` (N, V, H, W, 3) uint8 (RGB composited on white), ``voxels``
        (N, 32, 32, 32) bool, ``points`` (N, P, 3) float32, ``c2w`` (N, V, 4, 4), ``K``
        (N, V, 3, 3), ``category`` (N,) int64 index into ``categories`` (a list of names),
        ``model_ids`` (a list of N strings).
    """
    items = []
    for i in range(len(dataset)):
        items.append(dataset[i])
        if progress and (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(dataset)} models read")
    n_views = {it["images"].shape[0] for it in items}
    if len(n_views) != 1:
        raise ValueError(f"to_tensors: models have different numbers of views {sorted(n_views)}; "
                         "build the dataset with views=[...] so that every item has the same views")
    return {"images": torch.stack([torch.from_numpy(to_uint8(it["images"])) for it in items]),
            "voxels": torch.stack([it["voxels"] > 0.5 for it in items]),
            "points": torch.stack([it["points"] for it in items]),
            "c2w": torch.stack([it["c2w"] for it in items]), "K": torch.stack([it["K"] for it in items]),
            "category": torch.tensor([dataset.categories.index(it["category"]) for it in items]),
            "categories": list(dataset.categories), "model_ids": [it["model_id"] for it in items]}


def merge_tensors(*parts: dict) -> dict:
    """Concatenate :func:`to_tensors` dicts (e.g. chairs from one root, cars from another); the
    ``category`` indices are remapped into the union of their ``categories``."""
    names = [c for p in parts for c in p["categories"]]
    names = sorted(set(names), key=names.index)
    out = {k: torch.cat([p[k] for p in parts]) for k in ("images", "voxels", "points", "c2w", "K")}
    out["category"] = torch.cat([torch.tensor([names.index(p["categories"][int(c)]) for c in p["category"]],
                                              dtype=torch.long) for p in parts])
    out["categories"], out["model_ids"] = names, [m for p in parts for m in p["model_ids"]]
    return out
