"""Multi-view datasets for NeRF: the NeRF-synthetic ("Blender") format, the PyTorch3D NeRF-project
files, and a procedural scene written in the Blender format (offline, deterministic from a seed).

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
    >>> root = write_blender_scene("/tmp/scene", seed=0, n_train=4, n_val=1, n_test=1, image_size=32)
    >>> data = load_blender(root, "train")
    >>> data["images"].shape, data["c2w"].shape, data["near"], data["far"]
    (torch.Size([4, 32, 32, 3]), torch.Size([4, 4, 4]), 2.0, 6.0)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lib.cameras import _hw, orbit_poses
from lib.geometry import box_sdf
from lib.rays import get_rays, intersect_aabb

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


def _resize(images: torch.Tensor, size) -> torch.Tensor:
    """(N, H, W, C) -> (N, h, w, C), antialiased."""
    x = images.permute(0, 3, 1, 2)
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).clamp(0, 1)


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
        img = np.asarray(iio.imread(f))
        if img.ndim != 3 or img.shape[-1] not in (3, 4):
            raise BlenderFormatError(f"{f}: expected an RGB or RGBA image, got array shape {img.shape}")
        if size0 is not None and img.shape[:2] != size0:
            raise BlenderFormatError(f"{f} is {img.shape[1]}x{img.shape[0]} (WxH) but {files[0].name} is "
                                     f"{size0[1]}x{size0[0]}; every image of a split must have the same size")
        size0 = img.shape[:2]
        rgba = torch.from_numpy(img.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0))
        if rgba.shape[-1] == 3:
            rgba = torch.cat([rgba, torch.ones_like(rgba[..., :1])], -1)
        h, w = size0 if image_size is None else _hw(image_size)
        # resized one at a time, so 100 lego images at 800 px never sit in memory as floats
        arrays.append(rgba if (h, w) == size0 else _resize(rgba[None], (h, w))[0])
        files.append(f)
    rgba = torch.stack(arrays)
    h0, w0 = size0
    bg = _background_rgb(background)
    images = rgba[..., :3] * rgba[..., 3:] + bg * (1 - rgba[..., 3:])
    fx = 0.5 * w0 / math.tan(0.5 * float(meta["camera_angle_x"])) * (w / w0)
    fy = fx * (h / h0) / (w / w0)
    K = torch.tensor([[fx, 0.0, w / 2], [0.0, fy, h / 2], [0.0, 0.0, 1.0]])
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
    h, w = (h0, w0) if image_size is None else _hw(image_size)
    images = []
    for i in keep.tolist():
        img = torch.from_numpy(stacked[i * h0:(i + 1) * h0, :, :3].astype(np.float32) / 255.0)
        images.append(img if (h, w) == (h0, w0) else _resize(img[None], (h, w))[0])
    images = torch.stack(images)
    # NDC -> pixels; NDC units are half the shorter image side, x and y point left and up
    s = min(h, w) / 2.0
    f = cams["focal_length"].float().reshape(n, -1).expand(n, 2)[keep]
    p = cams["principal_point"].float().reshape(n, 2)[keep]
    m = len(keep)
    K = torch.zeros(m, 3, 3)
    K[:, 0, 0], K[:, 1, 1] = s * f[:, 0], s * f[:, 1]
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = w / 2 - s * p[:, 0], h / 2 - s * p[:, 1], 1.0
    flip = torch.tensor([-1.0, -1.0, 1.0])
    Rc = R[keep].transpose(1, 2) * flip[:, None]  # world -> OpenCV camera
    c2w = torch.eye(4).repeat(m, 1, 1)
    c2w[:, :3, :3] = Rc.transpose(1, 2)
    c2w[:, :3, 3] = -(Rc.transpose(1, 2) @ (flip * T[keep])[..., None])[..., 0]
    name = path.stem.lower()
    if z_up if z_up is not None else name == "lego":
        c2w = _WORLD @ c2w
    near, far = {"lego": (2.0, 6.0), "fern": (1.2, 6.28)}.get(name, (2.0, 6.0))
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]].reshape(-1, 3)
    return {"images": images, "c2w": c2w, "K": K[0] if torch.allclose(K, K[:1].expand_as(K)) else K,
            "split": splits, "near": near, "far": far,
            "scene_bounds": _bounds_to_lib(BLENDER_DEFAULTS["scene_bounds"]),
            "background": corners.median(0).values}


# ------------------------------------------------------- the procedural scene
# A small still life on a round checkered table, lib world (y up), inside SCENE_BOUNDS:
# a glossy striped ball, a cube with a painted grid, an upright rainbow ring. Every colour is a
# procedural function of position (texture detail at all scales), lit by one sun with shadows;
# the ball and the ring have a specular highlight, which moves with the viewer (view dependence).
SCENE_BOUNDS = [[-1.0, -0.6, -1.0], [1.0, 0.75, 1.0]]  # (min, max) corners, lib world
_LIGHT = torch.tensor([0.45, 0.8, 0.4]) / torch.tensor([0.45, 0.8, 0.4]).norm()


def _scene_params(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    j = lambda *s: (torch.rand(*s, generator=g) - 0.5)  # noqa: E731
    return {"ball_c": torch.tensor([-0.38, -0.12, 0.22]) + 0.06 * j(3) * torch.tensor([1, 0, 1]),
            "ball_r": 0.33, "cube_c": torch.tensor([0.38, -0.2, 0.05]) + 0.06 * j(3) * torch.tensor([1, 0, 1]),
            "cube_h": 0.23, "cube_angle": 0.5 + 0.4 * float(j(1)),
            "ring_c": torch.tensor([0.0, 0.22, -0.42]), "ring_R": 0.3, "ring_r": 0.085,
            "hue": float(torch.rand(1, generator=g))}


def _rot_y(a: float) -> torch.Tensor:
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _scene_sdfs(p: torch.Tensor, s: dict) -> torch.Tensor:
    """(..., 3) points -> (..., 4) signed distances to table, ball, cube, ring."""
    d_xz = p[..., [0, 2]].norm(dim=-1)
    q = torch.stack([d_xz - 0.95, (p[..., 1] + 0.52).abs() - 0.04], -1)  # table: a flat cylinder
    table = q.amax(-1).clamp_max(0) + q.clamp_min(0).norm(dim=-1) - 0.01
    ball = (p - s["ball_c"]).norm(dim=-1) - s["ball_r"]
    qc = (p - s["cube_c"]) @ _rot_y(s["cube_angle"])
    cube = box_sdf(qc, 0.0, 2 * (s["cube_h"] - 0.03)) - 0.03  # rounded edges
    qr = p - s["ring_c"]  # ring in the xy plane (axis along z)
    ring = torch.stack([qr[..., [0, 1]].norm(dim=-1) - s["ring_R"], qr[..., 2]], -1).norm(dim=-1) - s["ring_r"]
    return torch.stack([table, ball, cube, ring], -1)


def _hsv(h, sat, val):
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], -1)
    return val[..., None] * (1 - sat[..., None] * (torch.minimum(k, 4 - k).clamp(0, 1)))


def _albedo(p: torch.Tensor, obj: torch.Tensor, s: dict) -> torch.Tensor:
    """(M, 3) procedural colours of surface points ``p`` on objects ``obj`` (M,)."""
    one = torch.ones_like(p[:, 0])
    chk = ((torch.floor(p[:, 0] * 4) + torch.floor(p[:, 2] * 4)) % 2)[:, None]
    ring_r = p[:, [0, 2]].norm(dim=-1)
    table = torch.where(chk > 0, torch.tensor([0.93, 0.87, 0.74]), torch.tensor([0.28, 0.45, 0.5]))
    table = table * (1 - 0.25 * (ring_r > 0.85).float()[:, None])  # a darker rim
    b = p - s["ball_c"]
    lon, lat = torch.atan2(b[:, 2], b[:, 0]), torch.asin((b[:, 1] / s["ball_r"]).clamp(-1, 1))
    stripe = 0.5 + 0.5 * torch.sin(5 * lon + 3 * lat)
    ball = _hsv((s["hue"] + 0.08 * stripe) % 1, 0.75 * one, 0.45 + 0.5 * stripe)
    qc = (p - s["cube_c"]) @ _rot_y(s["cube_angle"])
    near_line = ((qc * 3 / s["cube_h"]).frac() - 0.5).abs() > 0.4  # painted lines (3 per side)
    face_axis = qc.abs().argmax(-1, keepdim=True)  # the face's normal axis carries no lines
    grid = near_line.scatter(-1, face_axis, False).any(-1)
    cube = torch.where(grid[:, None], torch.tensor([0.95, 0.95, 0.9]),
                       _hsv((s["hue"] + 0.5 + 0.3 * qc[:, 1]) % 1, 0.7 * one, 0.75 * one))
    qr = p - s["ring_c"]
    ring = _hsv((torch.atan2(qr[:, 1], qr[:, 0]) / (2 * math.pi)) % 1, 0.8 * one, 0.95 * one)
    cols = torch.stack([table, ball, cube, ring], 1)  # (M, 4, 3)
    return cols[torch.arange(len(p)), obj]


def _trace(o, d, s, t0, t1, steps=96):
    """Sphere tracing: (R,) hit distance (inf for a miss); only rays still marching are evaluated."""
    t = t0.clone()
    result = torch.full_like(t, float("inf"))
    idx = torch.nonzero(t0 < t1).squeeze(-1)
    for _ in range(steps):
        if idx.numel() == 0:
            break
        dist = _scene_sdfs(o[idx] + t[idx, None] * d[idx], s).amin(-1)
        hit = dist < 1e-3
        result[idx[hit]] = t[idx[hit]]
        t[idx] = t[idx] + 0.95 * dist
        idx = idx[~hit & (t[idx] <= t1[idx])]
    return result


def _shade(o, d, s, specular: float) -> torch.Tensor:
    """(R, 4) RGBA of rays (R, 3) through the scene."""
    t0, t1, inside = intersect_aabb(o, d, torch.tensor(SCENE_BOUNDS))
    t = _trace(o, d, s, t0.clamp_min(0), torch.where(inside, t1, t0 - 1))
    out = torch.zeros(len(o), 4)
    hit = torch.isfinite(t)
    p, dh = o[hit] + t[hit, None] * d[hit], d[hit]
    obj = _scene_sdfs(p, s).argmin(-1)
    e = 1e-3 * torch.eye(3)
    n = torch.stack([(_scene_sdfs(p + e[i], s).amin(-1) - _scene_sdfs(p - e[i], s).amin(-1)) for i in range(3)], -1)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    ps = p + 4e-3 * n  # shadow ray towards the sun
    shadow = ~torch.isfinite(_trace(ps, _LIGHT.expand_as(ps), s, torch.zeros(len(p)), torch.full((len(p),), 3.0), 48))
    diffuse = (n @ _LIGHT).clamp_min(0) * shadow
    half = _LIGHT - dh
    half = half / half.norm(dim=-1, keepdim=True)
    glossy = ((obj == 1) | (obj == 3)).float()
    spec = specular * glossy * (n * half).sum(-1).clamp_min(0) ** 40 * shadow
    rgb = _albedo(p, obj, s) * (0.35 + 0.65 * diffuse)[:, None] + spec[:, None]
    out[hit, :3], out[hit, 3] = rgb.clamp(0, 1), 1.0
    return out


def render_scene(c2w: torch.Tensor, K: torch.Tensor, image_size, seed: int = 0, specular: float = 0.6,
                 supersample: int = 2) -> torch.Tensor:
    """Ray-trace the procedural scene (pure torch; no PyTorch3D).

    Args:
        c2w: (N, 4, 4) lib poses. K: (3, 3). image_size: H or (H, W).
        seed: scene variant (object placement jitter, colours). specular: highlight strength
            (0: a purely diffuse, view-independent scene). supersample: rays per pixel side.
    Returns:
        (N, H, W, 4) float32 RGBA in [0, 1]; alpha is the (antialiased) coverage.
    """
    h, w = _hw(image_size)
    ss = int(supersample)
    Ks = K.clone().float()
    Ks[:2] *= ss
    params = _scene_params(seed)
    o, d = get_rays(c2w.reshape(-1, 4, 4), Ks, (h * ss, w * ss))  # all views in one batch of rays
    rgba = _shade(o.reshape(-1, 3), d.reshape(-1, 3), params, specular).reshape(-1, h * ss, w * ss, 4)
    return F.avg_pool2d(rgba.permute(0, 3, 1, 2), ss).permute(0, 2, 3, 1)


def scene_poses(n: int, split: str, seed: int = 0, distance: float = 4.0) -> torch.Tensor:
    """(n, 4, 4) poses: random on the upper hemisphere (train/val), a 30-degree circle (test)."""
    if split == "test":
        return orbit_poses(n, elevation=30.0, distance=distance)
    g = torch.Generator().manual_seed(seed * 1000 + SPLITS.index(split))
    az = torch.rand(n, generator=g) * 360.0
    el = torch.rad2deg(torch.asin(0.1 + 0.8 * torch.rand(n, generator=g)))  # uniform on a cap
    return orbit_poses(az, el, distance)


def write_blender_scene(root, seed: int = 0, n_train: int = 50, n_val: int = 5, n_test: int = 8,
                        image_size: int = 64, background: str = "white", specular: float = 0.6) -> Path:
    """Render the procedural scene into a Blender-format folder (deterministic from ``seed``).

    Images are RGBA PNGs (alpha = coverage), as in nerf_synthetic, so :func:`load_blender` can put
    them on any background; ``background`` is recorded in the json as the intended one. The json
    also records ``near``/``far`` (2, 6: cameras at distance 4, scene inside ``SCENE_BOUNDS``) and
    ``scene_bounds``, in Blender's world frame like the poses. Lego's field of view is used.

    Returns:
        ``Path(root)``.
    """
    import imageio.v3 as iio

    root = Path(root)
    h, w = _hw(image_size)
    fov_y = math.degrees(2 * math.atan(math.tan(LEGO_ANGLE_X / 2) * h / w))
    f = 0.5 * w / math.tan(LEGO_ANGLE_X / 2)
    K = torch.tensor([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])
    bounds_blender = _bounds_to_lib(SCENE_BOUNDS, inverse=True)
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        poses = scene_poses(n, split, seed)
        rgba = render_scene(poses, K, (h, w), seed, specular)
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for i, (pose, img) in enumerate(zip(poses, rgba)):
            iio.imwrite(root / split / f"r_{i}.png", (img.numpy() * 255 + 0.5).astype(np.uint8))
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": lib_to_blender(pose).tolist()})
        meta = {"camera_angle_x": LEGO_ANGLE_X, "frames": frames, "near": 2.0, "far": 6.0,
                "scene_bounds": bounds_blender.tolist(), "background": background, "seed": seed,
                "generator": "lib.data.blender.write_blender_scene", "fov_y_degrees": fov_y}
        (root / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1))
    return root
