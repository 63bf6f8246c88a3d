"""A procedural still life in the NeRF-synthetic ("Blender") format: offline multi-view data.

A small still life on a round checkered table, lib world (y up), inside ``SCENE_BOUNDS``: a
glossy striped ball, a cube with a painted grid, an upright rainbow ring. Every colour is a
procedural function of position (texture detail at all scales), lit by one sun with hard
shadows; the ball and the ring have a specular highlight, which moves with the viewer (view
dependence). Placement jitter and colours are drawn from ``seed``.

This module is the scene (its SDFs, colours, cameras) and the writer; the images come from
:func:`lib.render.raytrace.render_sdf_scene` (sphere tracing, the tracer of notebook 05) and
the files from :func:`lib.data.blender.write_blender_split`. Notebooks 04 and 05 train on it in
smoke mode, where the real data (nerf_synthetic lego) is not available.

Example:
    >>> root = write_blender_scene("/tmp/scene", seed=0, n_train=4, n_val=1, n_test=1, image_size=32)
    >>> from lib.data.blender import load_blender
    >>> data = load_blender(root, "train")
    >>> data["images"].shape, data["c2w"].shape, data["near"], data["far"]
    (torch.Size([4, 32, 32, 3]), torch.Size([4, 4, 4]), 2.0, 6.0)
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from lib.cameras import image_hw, orbit_poses, pixel_intrinsics, random_orbit_angles, rotation
from lib.data.blender import LEGO_ANGLE_X, SPLITS, write_blender_split
from lib.geometry import box_sdf, torus_sdf
from lib.render.raytrace import SDFScene, render_sdf_scene

SCENE_BOUNDS = [[-1.0, -0.6, -1.0], [1.0, 0.75, 1.0]]  # (min, max) corners, lib world
# train/val cameras: area-uniform on the band whose sines are 0.1 and 0.9 (about 5.7 to 64.2 degrees up)
TRAIN_ELEVATIONS = (math.degrees(math.asin(0.1)), math.degrees(math.asin(0.9)))
OBJECTS = ("table", "ball", "cube", "ring")  # the columns of the scene's SDFs, index = object id


def _scene_params(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    j = lambda *s: (torch.rand(*s, generator=g) - 0.5)  # noqa: E731
    return {"ball_c": torch.tensor([-0.38, -0.12, 0.22]) + 0.06 * j(3) * torch.tensor([1, 0, 1]),
            "ball_r": 0.33, "cube_c": torch.tensor([0.38, -0.2, 0.05]) + 0.06 * j(3) * torch.tensor([1, 0, 1]),
            "cube_h": 0.23, "cube_angle": 0.5 + 0.4 * float(j(1)),
            "ring_c": torch.tensor([0.0, 0.22, -0.42]), "ring_R": 0.3, "ring_r": 0.085,
            "hue": float(torch.rand(1, generator=g))}


def _cube_rotation(s: dict) -> torch.Tensor:
    """(3, 3) the cube's turn about y; ``p @ R`` takes world offsets into the cube's frame."""
    return rotation("y", math.degrees(s["cube_angle"]))


def _scene_sdfs(p: torch.Tensor, s: dict) -> torch.Tensor:
    """(M, 3) points -> (M, 4) signed distances to table, ball, cube, ring (``OBJECTS``)."""
    d_xz = p[..., [0, 2]].norm(dim=-1)
    q = torch.stack([d_xz - 0.95, (p[..., 1] + 0.52).abs() - 0.04], -1)  # table: a flat cylinder
    table = q.amax(-1).clamp_max(0) + q.clamp_min(0).norm(dim=-1) - 0.01
    ball = (p - s["ball_c"]).norm(dim=-1) - s["ball_r"]
    qc = (p - s["cube_c"]) @ _cube_rotation(s)
    cube = box_sdf(qc, 0.0, 2 * (s["cube_h"] - 0.03)) - 0.03  # rounded edges
    qr = p - s["ring_c"]  # the ring stands in the xy plane: torus_sdf's y axis becomes z
    ring = torus_sdf(qr[:, [0, 2, 1]], s["ring_R"], s["ring_r"])
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
    qc = (p - s["cube_c"]) @ _cube_rotation(s)
    near_line = ((qc * 3 / s["cube_h"]).frac() - 0.5).abs() > 0.4  # painted lines (3 per side)
    face_axis = qc.abs().argmax(-1, keepdim=True)  # the face's normal axis carries no lines
    grid = near_line.scatter(-1, face_axis, False).any(-1)
    cube = torch.where(grid[:, None], torch.tensor([0.95, 0.95, 0.9]),
                       _hsv((s["hue"] + 0.5 + 0.3 * qc[:, 1]) % 1, 0.7 * one, 0.75 * one))
    qr = p - s["ring_c"]
    ring = _hsv((torch.atan2(qr[:, 1], qr[:, 0]) / (2 * math.pi)) % 1, 0.8 * one, 0.95 * one)
    cols = torch.stack([table, ball, cube, ring], 1)  # (M, 4, 3)
    return cols[torch.arange(len(p)), obj]


def still_life(seed: int = 0) -> SDFScene:
    """The still life of ``seed`` as an :class:`lib.render.raytrace.SDFScene` (the ball and the
    ring glossy, the sun above the front-right)."""
    s = _scene_params(seed)
    return SDFScene(sdfs=lambda p: _scene_sdfs(p, s), albedo=lambda p, obj: _albedo(p, obj, s),
                    bounds=SCENE_BOUNDS, light_dir=(0.45, 0.8, 0.4),
                    glossy=(OBJECTS.index("ball"), OBJECTS.index("ring")))


def scene_points(n: int, seed: int = 0, generator: torch.Generator = None, n_steps: int = 6):
    """Coloured points on the still life's surfaces: the sparse cloud that comes with a capture
    (what COLMAP gives real scenes, and ``points_10000.npy`` the truck scene), for initialising
    3D Gaussian splatting.

    Uniform samples of ``SCENE_BOUNDS`` are pulled onto the nearest surface with Newton steps
    ``p <- p - f(p) grad f(p)`` (``f`` the union SDF); those that end within 2e-3 of a surface
    are kept, coloured by the objects' albedo (no lighting).

    Args:
        n: number of points. seed: scene variant (as :func:`still_life`).
        generator: CPU ``torch.Generator`` for the samples (None: a fresh one seeded with ``seed``).
        n_steps: Newton steps.
    Returns:
        points (n, 3) float32 world; colors (n, 3) float32 in [0, 1].
    """
    if int(n) < 1:
        raise ValueError(f"scene_points: n must be >= 1, got {n}")
    s = _scene_params(seed)
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(SCENE_BOUNDS).unbind(0)
    kept = []
    while sum(len(k) for k in kept) < n:
        p = lo + (hi - lo) * torch.rand(4 * int(n), 3, generator=g)
        for _ in range(n_steps):
            p = p.detach().requires_grad_(True)
            f = _scene_sdfs(p, s).min(-1).values
            (grad,) = torch.autograd.grad(f.sum(), p)
            p = p - f[:, None] * grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        p = p.detach()
        d = _scene_sdfs(p, s)
        near = d.min(-1).values.abs() < 2e-3
        kept.append(p[near])
    points = torch.cat(kept)[:n]
    obj = _scene_sdfs(points, s).argmin(-1)
    return points, _albedo(points, obj, s).clamp(0, 1)


def render_scene(c2w: torch.Tensor, K: torch.Tensor, image_size, seed: int = 0, specular: float = 0.6,
                 supersample: int = 2) -> torch.Tensor:
    """Ray-trace the still life of ``seed`` (pure torch; no PyTorch3D).

    Args:
        c2w: (N, 4, 4) lib poses. K: (3, 3). image_size: H or (H, W).
        seed: scene variant (object placement jitter, colours). specular: highlight strength
            (0: a purely diffuse, view-independent scene). supersample: rays per pixel side.
    Returns:
        (N, H, W, 4) float32 RGBA in [0, 1]; alpha is the (antialiased) coverage.
    """
    return render_sdf_scene(still_life(seed), c2w, K, image_size, specular, supersample)


def scene_poses(n: int, split: str, seed: int = 0, distance: float = 4.0) -> torch.Tensor:
    """(n, 4, 4) poses: random on the upper hemisphere (train/val), a 30-degree circle (test)."""
    if split == "test":
        return orbit_poses(n, elevation=30.0, distance=distance)
    g = torch.Generator().manual_seed(seed * 1000 + SPLITS.index(split))
    return orbit_poses(*random_orbit_angles(n, TRAIN_ELEVATIONS, g, area_uniform=True), distance)


def write_blender_scene(root, seed: int = 0, n_train: int = 50, n_val: int = 5, n_test: int = 8,
                        image_size: int = 64, background: str = "white", specular: float = 0.6) -> Path:
    """Render the still life into a Blender-format folder (deterministic from ``seed``).

    Images are RGBA PNGs (alpha = coverage), as in nerf_synthetic, so
    :func:`lib.data.blender.load_blender` can put them on any background; ``background`` is
    recorded in the json as the intended one. The json also records ``near``/``far`` (2, 6:
    cameras at distance 4, scene inside ``SCENE_BOUNDS``) and ``scene_bounds``, in Blender's
    world frame like the poses. Lego's field of view is used.

    Returns:
        ``Path(root)``.
    """
    root = Path(root)
    h, w = image_hw(image_size)
    fov_y = math.degrees(2 * math.atan(math.tan(LEGO_ANGLE_X / 2) * h / w))
    f = 0.5 * w / math.tan(LEGO_ANGLE_X / 2)
    K = pixel_intrinsics(f, w / 2, h / 2)
    extra = {"background": background, "seed": seed, "generator": "lib.data.still_life.write_blender_scene",
             "fov_y_degrees": fov_y}
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        poses = scene_poses(n, split, seed)
        write_blender_split(root, split, render_scene(poses, K, (h, w), seed, specular), poses, LEGO_ANGLE_X,
                            near=2.0, far=6.0, scene_bounds=SCENE_BOUNDS, extra=extra)
    return root
