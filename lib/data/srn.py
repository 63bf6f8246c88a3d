"""The SRN dataset layout (Sitzmann et al. 2019; PixelNeRF's ``srn_cars``), read and written.

Layout, one folder per object::

    <root>/<split>/<object>/rgb/000000.png ...   RGB (or RGBA: composited over white) images
    <root>/<split>/<object>/pose/000000.txt ...  4x4 camera-to-world, OpenCV axes (x right, y down,
                                                 z forward, as lib.cameras), 16 numbers, row-major,
                                                 whitespace-separated (one line or four)
    <root>/<split>/<object>/intrinsics.txt       "f cx cy 0." / "0. 0. 0." / "1." / "H W"
    <root>/<split>/<object>/depth/000000.png ... OUR EXTENSION (real SRN has none): camera z of each
                                                 pixel, 16-bit PNG, value = round(depth * 1000)
                                                 (millimetres if a unit is a metre), 0 = background

Real SRN cars (``srn_cars.zip``: splits ``cars_train`` (50 views per object), ``cars_val``,
``cars_test`` (251 views)): 128 x 128 images on white, f = 131.25, cx = cy = 64, cameras on a
sphere of radius 1.3 around the object, rays bounded by near 0.8 and far 1.8. The intrinsics'
``cx cy`` are read as pixel coordinates with the image spanning [0, W] x [0, H] (lib.cameras), so
64 is the image centre. Only the first line (f cx cy) and the fourth (H W: the size the intrinsics
refer to; K is scaled to the images' actual size) are used. The world frame is the dataset's own
(not rotated); :func:`write_procedural_srn`'s objects are y up.

:func:`write_procedural_srn` is the offline stand-in: the course's procedural shapes
(``lib.data.shapes``), each part painted from a per-object random palette, normalised into a
sphere of radius 0.5 at the origin (ShapeNet's normalisation: bounding-box diagonal 1), rendered
by ``lib.render.zbuffer.render_views`` (flat shading, white background, 2x2 supersampling) from
cameras at distance 1.3 looking at the origin, so every depth lies in [0.8, 1.8] like SRN cars.
Camera directions are random per view: azimuth uniform in [0, 360), elevation area-uniform in
[-15, 75] degrees (mostly above the object, some below).

Example:
    >>> from lib import cameras
    >>> c2w = cameras.orbit_poses(3, elevation=20.0, distance=SRN_RADIUS)
    >>> K = srn_intrinsics(32)
    >>> folder = write_srn_object("/tmp/srn_demo/train/obj0", torch.rand(3, 32, 32, 3), c2w, K)
    >>> obj = load_srn_object(folder, image_size=16)
    >>> tuple(obj["images"].shape), obj["K"][0, 0].item(), obj["names"]
    ((3, 16, 16, 3), 16.40625, ['000000', '000001', '000002'])
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lib.cameras import check_pose, image_hw, intrinsics_from_fov, orbit_poses, pixel_intrinsics, random_orbit_angles
from lib.images import check_image, check_images, from_uint8, read_png, resize_images, to_uint8
from lib.data.shapes import CATEGORIES, make_shape
from lib.mesh import TriMesh, normalize_mesh
from lib.render.zbuffer import render_views

SRN_SIZE, SRN_FOCAL, SRN_RADIUS = 128, 131.25, 1.3  # SRN cars: 128 px, f = 131.25 px, camera distance
SRN_NEAR, SRN_FAR = 0.8, 1.8  # SRN cars' ray bounds (PixelNeRF, Splatter Image)
DEPTH_SCALE = 1000.0  # depth PNG value = round(depth * DEPTH_SCALE)


def srn_intrinsics(image_size: int) -> torch.Tensor:
    """(3, 3) K of SRN cars scaled to ``image_size`` pixels: f = 131.25 * image_size / 128, centred."""
    s = image_size / SRN_SIZE
    return pixel_intrinsics(SRN_FOCAL * s, image_size / 2, image_size / 2)


# ----------------------------------------------------------------------------- reading
def read_intrinsics(path) -> tuple[torch.Tensor, tuple[int, int]]:
    """(K (3, 3) float32, (H, W)) from an SRN ``intrinsics.txt`` (line 1 ``f cx cy _``, line 4 ``H W``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; an SRN object folder needs intrinsics.txt")
    lines = [(i, line.split()) for i, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]
    if len(lines) < 4:
        raise ValueError(f"{path}: expected 4 lines ('f cx cy 0.', '0. 0. 0.', '1.', 'H W'), got {len(lines)}")
    (n1, first), (n4, size) = lines[0], lines[3]
    try:
        f, cx, cy = (float(x) for x in first[:3])
        if len(first) != 4:
            raise ValueError
    except ValueError:
        raise ValueError(f"{path} line {n1}: expected 'f cx cy 0.' (4 numbers), got {' '.join(first)!r}") from None
    try:
        h, w = (int(float(x)) for x in size)
    except ValueError:
        raise ValueError(f"{path} line {n4}: expected 'H W' (2 integers), got {' '.join(size)!r}") from None
    if f <= 0 or h <= 0 or w <= 0:
        raise ValueError(f"{path}: expected a positive focal length and image size, got f={f}, H={h}, W={w}")
    return pixel_intrinsics(f, cx, cy), (h, w)


def read_pose(path) -> torch.Tensor:
    """(4, 4) float32 camera-to-world from an SRN ``pose/*.txt`` (16 numbers, row-major)."""
    path = Path(path)
    try:
        values = [float(x) for x in path.read_text().split()]
    except ValueError as err:
        raise ValueError(f"{path}: expected 16 numbers (a 4x4 camera-to-world matrix), {err}") from None
    if len(values) != 16:
        raise ValueError(f"{path}: expected 16 numbers (a 4x4 camera-to-world matrix), got {len(values)}")
    pose = torch.tensor(values, dtype=torch.float32).reshape(4, 4)
    try:
        return check_pose(pose, str(path))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _resize_depth(depth: torch.Tensor, size) -> torch.Tensor:
    """(V, H, W) -> (V, h, w) by nearest neighbour (never mixes an object's depth with the background's 0)."""
    return F.interpolate(depth[:, None], size=size, mode="nearest-exact")[:, 0]


def load_srn_object(folder, image_size=None) -> dict:
    """Load one SRN object folder (module docstring).

    Args:
        folder: ``<root>/<split>/<object>``.
        image_size: None (as stored), H or (H, W): images resized (antialiased), depth resized by
            nearest neighbour, K scaled to match.
    Returns:
        dict with images (V, H, W, 3) float32 in [0, 1] on white; c2w (V, 4, 4) float32 (OpenCV
        axes, lib.cameras); K (3, 3) float32 pixels for the returned size; depth (V, H, W) float32
        camera z (0 = background) if the object has a ``depth/`` folder, else None; names (V view
        names, the file stems, sorted); object (the folder name).
    Raises:
        FileNotFoundError: no ``rgb/`` folder or no intrinsics.txt.
        ValueError: no images, an image without its pose or depth file (named), a bad pose or
            intrinsics line (file and line named), images of different sizes.
    """
    folder = Path(folder)
    rgb_dir = folder / "rgb"
    if not rgb_dir.is_dir():
        raise FileNotFoundError(f"{rgb_dir} does not exist; an SRN object folder holds rgb/, pose/, intrinsics.txt")
    files = sorted(rgb_dir.glob("*.png"))
    if not files:
        raise ValueError(f"{rgb_dir} holds no .png images")
    K, (h_int, w_int) = read_intrinsics(folder / "intrinsics.txt")
    has_depth = (folder / "depth").is_dir()
    images, poses, depths, size = [], [], [], None
    for f in files:
        pose_file, depth_file = folder / "pose" / f"{f.stem}.txt", folder / "depth" / f"{f.stem}.png"
        if not pose_file.is_file():
            raise ValueError(f"{f} has no pose: expected {pose_file}")
        if has_depth and not depth_file.is_file():
            raise ValueError(f"{f} has no depth map: expected {depth_file} (the object has a depth/ folder)")
        img = check_image(read_png(f), f, size and (files[0].name, size))
        size = img.shape[:2]
        x = from_uint8(img)
        if x.shape[-1] == 4:  # straight alpha over white
            x = x[..., :3] * x[..., 3:] + (1 - x[..., 3:])
        images.append(x)
        poses.append(read_pose(pose_file))
        if has_depth:
            d = read_png(depth_file, "raw")
            if d.shape != size:
                raise ValueError(f"{depth_file}: expected a {size[1]}x{size[0]} single-channel 16-bit PNG, "
                                 f"got array shape {d.shape}")
            depths.append(torch.from_numpy(d.astype(np.float32) / DEPTH_SCALE))
    images, depth = torch.stack(images), (torch.stack(depths) if has_depth else None)
    h0, w0 = size
    K = K.clone()
    K[0] *= w0 / w_int  # the intrinsics refer to an (H, W) image; scale them to the stored one
    K[1] *= h0 / h_int
    h, w = size if image_size is None else image_hw(image_size)
    if (h, w) != (h0, w0):
        images = resize_images(images, (h, w))  # antialiased bilinear
        depth = None if depth is None else _resize_depth(depth, (h, w))
        K[0] *= w / w0
        K[1] *= h / h0
    return {"images": images, "c2w": torch.stack(poses), "K": K, "depth": depth,
            "names": [f.stem for f in files], "object": folder.name}


def list_srn_objects(root, split: str) -> list[Path]:
    """The object folders of ``<root>/<split>`` (those holding ``rgb/``), sorted by name."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist; expected <root>/<split>/<object>/rgb/... (SRN layout)")
    objects = sorted(p for p in folder.iterdir() if (p / "rgb").is_dir())
    if not objects:
        raise ValueError(f"{folder} holds no SRN objects (no <object>/rgb/ folders)")
    return objects


class SRNDataset:
    """Lazy SRN split: ``len`` objects; ``ds[i]`` loads object ``i`` (:func:`load_srn_object`'s dict).

    Args:
        root: the dataset folder. split: e.g. "train" or "cars_train". image_size: None, H or (H, W).
    """

    def __init__(self, root, split: str, image_size=None):
        self.objects = list_srn_objects(root, split)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, i: int) -> dict:
        return load_srn_object(self.objects[i], self.image_size)


def load_srn_split(root, split: str, image_size=None, max_objects=None) -> dict:
    """Load a whole split eagerly (the first ``max_objects`` objects by name), for batch sampling.

    Returns:
        dict with images (O, V, H, W, 3) float32; c2w (O, V, 4, 4); K (O, 3, 3); depth
        (O, V, H, W) or None (None unless every object has depth); names (O object names);
        view_names (O lists of V names).
    Raises:
        ValueError: objects with different view counts or image sizes (the object named).
    Memory: O * V * H * W * 12 bytes of images (real cars_train, 2458 objects x 50 views at
    128 px: 24 GB; use ``max_objects`` / ``image_size``, or :class:`SRNDataset`).
    """
    objects = list_srn_objects(root, split)[:max_objects]
    loaded = [load_srn_object(o, image_size) for o in objects]
    first = loaded[0]
    for obj in loaded[1:]:
        if obj["images"].shape != first["images"].shape:
            raise ValueError(f"{Path(root) / split / obj['object']}: {tuple(obj['images'].shape)} (views, H, W, 3) "
                             f"but {first['object']} has {tuple(first['images'].shape)}; load_srn_split needs the "
                             "same view count and size for every object (use SRNDataset for ragged splits)")
    with_depth = all(o["depth"] is not None for o in loaded)
    return {"images": torch.stack([o["images"] for o in loaded]), "c2w": torch.stack([o["c2w"] for o in loaded]),
            "K": torch.stack([o["K"] for o in loaded]),
            "depth": torch.stack([o["depth"] for o in loaded]) if with_depth else None,
            "names": [o["object"] for o in loaded], "view_names": [o["names"] for o in loaded]}


# ----------------------------------------------------------------------------- writing
def _fmt(x: float) -> str:
    return format(float(x), ".9g")  # 9 significant digits: float32 values come back bit-exact


def write_srn_object(folder, images: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, depth=None) -> Path:
    """Write one object in the SRN layout (module docstring), views named 000000, 000001, ...

    Args:
        folder: ``<root>/<split>/<object>`` (created).
        images: (V, H, W, 3) float in [0, 1] (on white), written as 8-bit RGB PNGs.
        c2w: (V, 4, 4) poses (lib.cameras), written with 9 significant digits (float32-exact).
        K: (3, 3) pixels with fx == fy (the format holds one focal length).
        depth: (V, H, W) camera z (0 = background) or None; written as 16-bit PNGs (our extension),
            round(depth * 1000), so depths up to 65.5 units at 1/1000 resolution.
    Returns:
        ``Path(folder)``.
    """
    from PIL import Image

    images, folder = torch.as_tensor(images).detach().cpu(), Path(folder)
    check_images(images, "write_srn_object: `images`", batch="V")
    v = images.shape[0]
    if c2w.shape != (v, 4, 4):
        raise ValueError(f"write_srn_object: `c2w` must be (V, 4, 4) for the {v} images, got {tuple(c2w.shape)}")
    check_pose(c2w)
    K = torch.as_tensor(K, dtype=torch.float64)
    if K.shape != (3, 3) or abs(K[0, 0] - K[1, 1]) > 1e-6 * K[0, 0]:
        raise ValueError(f"write_srn_object: `K` must be (3, 3) with fx == fy (SRN stores one focal length), got {K}")
    h, w = images.shape[1:3]
    if depth is not None:
        depth = torch.as_tensor(depth).detach().cpu()
        if depth.shape != (v, h, w):
            raise ValueError(f"write_srn_object: `depth` must be ({v}, {h}, {w}), got {tuple(depth.shape)}")
        if not torch.isfinite(depth).all() or depth.min() < 0 or depth.max() * DEPTH_SCALE > 65535:
            raise ValueError("write_srn_object: `depth` must be finite, >= 0 and below 65.535 (16-bit PNG)")
    for sub in ("rgb", "pose") + (("depth",) if depth is not None else ()):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "intrinsics.txt").write_text(f"{K[0, 0]:.6f} {K[0, 2]:.6f} {K[1, 2]:.6f} 0.\n0. 0. 0.\n1.\n{h} {w}\n")
    pixels = to_uint8(images)
    for i in range(v):
        name = f"{i:06d}"
        Image.fromarray(pixels[i], "RGB").save(folder / "rgb" / f"{name}.png")
        (folder / "pose" / f"{name}.txt").write_text(" ".join(_fmt(x) for x in c2w[i].reshape(-1).tolist()) + "\n")
        if depth is not None:
            mm = np.round(depth[i].double().numpy() * DEPTH_SCALE).astype(np.uint16)
            Image.fromarray(mm).save(folder / "depth" / f"{name}.png")
    return folder


# ------------------------------------------------------------------ procedural objects
ELEVATION_RANGE = (-15.0, 75.0)  # degrees, area-uniform: mostly above the object, some below
SRN_SUPERSAMPLE = 2  # the procedural renders' samples per pixel side (lib.render.zbuffer.render_views)
PROCEDURAL_INFO = "srn_procedural.json"  # written last in <root>/<split>/: a finished split


def procedural_object(category: str, shape_seed: int, rng: np.random.Generator) -> TriMesh:
    """A registry shape inside the sphere of radius 0.5 at the origin, one random colour per part.

    Returns:
        TriMesh with unshared vertices (3 per face, so each face keeps its part's colour) and
        vert_colors (3F, 3) in [0.1, 0.95].
    """
    mesh = normalize_mesh(make_shape(category, shape_seed), 1.0, "diagonal")
    palette = torch.from_numpy(rng.uniform(0.1, 0.95, (len(mesh.label_names), 3))).float()
    verts = mesh.verts[mesh.faces].reshape(-1, 3)
    return TriMesh(verts=verts, faces=torch.arange(len(verts)).reshape(-1, 3),
                   vert_colors=palette[mesh.face_labels].repeat_interleave(3, 0))


def procedural_cameras(n_views: int, rng: np.random.Generator, radius: float = SRN_RADIUS) -> torch.Tensor:
    """(V, 4, 4) c2w looking at the origin from ``radius``, random directions (module docstring)."""
    azimuth, elevation = random_orbit_angles(n_views, ELEVATION_RANGE, rng, area_uniform=True)
    return orbit_poses(azimuth.float(), elevation.float(), float(radius))


def write_procedural_srn(root, split: str, n_objects: int, n_views: int, image_size: int, seed: int = 0,
                         categories=("car",), radius: float = SRN_RADIUS, fov=None, supersample: int = SRN_SUPERSAMPLE) -> Path:
    """Write procedural objects in the SRN layout, with depth (module docstring), and return ``root``.

    Object ``i`` of ``split`` is category ``categories[i % len(categories)]``; its shape, palette
    and cameras come from ``numpy.random.default_rng([seed, crc32(split), i])``, so the files are
    the same bytes on every run and each split (e.g. "train" vs "test") holds other objects. A
    finished split is recognised by ``<root>/<split>/srn_procedural.json`` (written last) and not
    written again when the arguments match.

    Args:
        root: dataset folder. split: split folder name. n_objects, n_views, image_size: counts, pixels.
        categories: names from ``lib.data.shapes.CATEGORIES``.
        radius: camera distance (SRN cars: 1.3). fov: vertical field of view in degrees, or None
            for SRN's focal length f = 131.25 * image_size / 128 (a 51.98 degree field of view).
        supersample: samples per pixel side for the colours (depth is exact at pixel centres).
    Returns:
        ``Path(root)``.
    """
    bad = [c for c in categories if c not in CATEGORIES]
    if bad or not categories:
        raise ValueError(f"write_procedural_srn: unknown categories {bad}; choose from {list(CATEGORIES)}")
    if radius <= 0.5 + 1e-3:
        raise ValueError(f"write_procedural_srn: `radius` must exceed 0.5 (the objects' bounding sphere), got {radius}")
    folder = Path(root) / split
    info = {"generator": "lib.data.srn.write_procedural_srn", "version": 1, "split": split, "n_objects": n_objects,
            "n_views": n_views, "image_size": image_size, "seed": seed, "categories": list(categories),
            "radius": radius, "fov": fov, "supersample": supersample}
    if (folder / PROCEDURAL_INFO).is_file() and json.loads((folder / PROCEDURAL_INFO).read_text()) == info:
        return Path(root)
    K = srn_intrinsics(image_size) if fov is None else intrinsics_from_fov(fov, image_size)
    for i in range(n_objects):
        rng = np.random.default_rng([seed, zlib.crc32(split.encode()), i])
        category = categories[i % len(categories)]
        mesh = procedural_object(category, int(rng.integers(2 ** 31)), rng)
        c2w = procedural_cameras(n_views, rng, radius)
        out = render_views(mesh, c2w, K, image_size, supersample=supersample)
        images, depth = out["rgb"], out["depth"]
        write_srn_object(folder / f"{category}_{i:05d}", images, c2w, K, depth)
    (folder / PROCEDURAL_INFO).write_text(json.dumps(info, indent=1))
    return Path(root)
