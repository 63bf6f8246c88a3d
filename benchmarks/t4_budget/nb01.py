"""Notebook 01 (cameras and rendering), full mode: the cow's turntables, renders and GIFs at T4 sizes.

The cow (2930 vertices, 5856 faces, a 1024x1024 texture) is stood in for by an ellipsoid of the
same vertex, face and texture counts (:func:`cow_stand_in`), normalised as the notebook normalises
the cow. Every render is ``lib.render.render_mesh`` / ``render_points`` with the notebook's
settings, on the CPU. PyTorch3D's CPU rasterizer tests every face (or point) at every pixel, so
a 512 px frame can take minutes here: a unit is then a *band* of the frame's middle rows
(:func:`band`), the same share of the per-pixel work, and a frame counts ``BANDS`` units. The
number of bands of a part is the same at every size, so that its tiny unit stays the same
share of a frame (the floor, ``measure.py``).

GIF encoding (Pillow, on the host, as on Colab) is a part of its own whose unit has a fixed
size, one megapixel of frames (:func:`gif_unit`): its tiny unit is the same work, so its floor
is its whole time. Shared with ``nb02``.

Left out (seconds on a T4): single renders (sections 1, 2, 7, 12), the two-view RGB-D capture, the
nearest-neighbour check of section 8 (PyTorch3D's kNN on the GPU), the tetrahedron and cube
turntable (12 faces; its GIF is counted), marching cubes of section 10 (three 129^3 grids on
the CPU), surface sampling (section 11).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from benchmarks.t4_budget.measure import Part

USES_SD = False
COW_VERTS, COW_FACES, COW_TEXTURE = 2930, 5856, 1024  # PyTorch3D's cow.obj and cow_texture.png
MASK_FRACTION = 0.2  # share of a section-8 RGB-D view the cow covers (the stand-in: 0.23)
GIF_WIDTHS = 12  # 512 px-wide frame strips per GIF frame, summed over the notebook's seven GIFs
BANDS = {"cow": 1, "dolly": 1, "rgbd_points": 8, "param_points": 8, "implicit": 32}  # bands per frame


def cow_stand_in():
    """A TriMesh with the cow's counts: a 62 x 48 uv-sphere (2930 vertices, 5856 faces) stretched
    to a cow's proportions, a random 1024^2 texture, normalised to extent 1.8 as in the notebook."""
    from lib.mesh import normalize_mesh
    from lib.primitives import uv_sphere

    m = uv_sphere(1.0, n_lat=62, n_lon=48)
    assert (m.num_verts, m.num_faces) == (COW_VERTS, COW_FACES)
    m = replace(m, verts=m.verts * torch.tensor([0.35, 0.6, 0.9]), texture=torch.rand(COW_TEXTURE, COW_TEXTURE, 3))
    return normalize_mesh(m, extent=1.8)


def band(settings, K: torch.Tensor, n_bands: int):
    """Settings and intrinsics that render only the middle ``1 / n_bands`` of an image's rows (at
    least one row): the per-pixel work of that share of the full frame."""
    h, w = settings.hw()
    rows = max(1, h // n_bands)
    K = K.clone()
    K[1, 2] -= (h - rows) / 2  # the band's first row is row (h - rows) / 2 of the frame
    return replace(settings, image_size=(rows, w)), K


def band_unit(render, shape, size: int, n_bands: int, elevation=20.0, distance=3.0, fov=40.0, **settings):
    """One band of one turntable frame: ``render(shape, c2w, K, RenderSettings(...))`` at
    ``size`` px, one camera at azimuth 30 degrees."""
    from lib import cameras
    from lib.render import RenderSettings

    s, K = band(RenderSettings(image_size=size, device="cpu", **settings), cameras.intrinsics_from_fov(fov, size),
                n_bands)
    c2w = cameras.orbit_poses(torch.tensor([30.0]), elevation, distance)
    if torch.is_tensor(shape):  # a point cloud, coloured by position as in the notebook
        colors = (shape - shape.min(0).values) / (shape.max(0).values - shape.min(0).values)
        return lambda: render(shape, colors, c2w, K, s)["rgb"]
    return lambda: render(shape, c2w, K, s)["rgb"]


GIF_UNIT_PX = 4 * 512 * 512  # one unit of GIF encoding: four 512 x 512 frames (one megapixel)


def gif_units(n_frames: int, height: int, width: int) -> int:
    """How many :func:`gif_unit` s a GIF of ``n_frames`` frames of ``height`` x ``width`` px is."""
    return math.ceil(n_frames * height * width / GIF_UNIT_PX)


def gif_unit():
    """``lib.viz.save_gif`` of four 512 x 512 frames that look like renders (a shaded, patterned
    blob moving over a white background, which is what Pillow's palette and LZW coding see)."""
    import tempfile

    from lib.viz import save_gif

    y, x = np.mgrid[0:512, 0:512] / 512.0
    frames = []
    for k in range(4):
        cx = 0.45 + 0.03 * k
        r2 = ((x - cx) / 0.35) ** 2 + ((y - 0.5) / 0.22) ** 2  # an ellipse
        shade = np.clip(1.0 - r2, 0.0, 1.0) ** 0.5  # brighter at the centre, as a lit body
        patches = 0.5 + 0.5 * np.sign(np.sin(9 * x + 3 * k) * np.sin(7 * y))  # cow-like patches
        rgb = np.stack([0.25 + 0.6 * shade * patches, 0.2 + 0.5 * shade, 0.15 + 0.4 * shade * (1 - patches)], -1)
        frames.append(np.where((r2 < 1)[..., None], rgb, 1.0))
    frames = torch.from_numpy(np.stack(frames)).float()
    path = f"{tempfile.mkdtemp()}/unit.gif"
    return lambda: save_gif(frames, path, fps=18)


def parts(S: dict, sizes: str) -> list:
    from pytorch3d.structures import join_meshes_as_scene

    from lib import cameras, geometry
    from lib.primitives import mesh_from_sdf
    from lib.render import render_mesh, render_points

    size, frames = S["IMAGE_SIZE"], S["N_FRAMES"]

    def cow_frame():
        return band_unit(render_mesh, cow_stand_in(), size, BANDS["cow"])

    def dolly_frame():  # the cow on the checker floor, one camera at the middle field of view
        from lib.render import RenderSettings

        cow = cow_stand_in()
        floor = geometry.checker_floor(size=30.0, checks=30, height=cow.verts[:, 1].min().item())
        scene = join_meshes_as_scene([cow.to_pytorch3d(), floor.to_pytorch3d()])
        fov = 45.0
        d = cameras.dolly_zoom_distance(fov, cow.verts, fill=0.3, azimuth=180.0)
        s, K = band(RenderSettings(image_size=size, device="cpu"), cameras.intrinsics_from_fov(fov, size),
                    BANDS["dolly"])
        c2w = cameras.orbit_poses(torch.tensor([180.0]), 0.0, d)
        return lambda: render_mesh(scene, c2w, K, s)["rgb"]

    def rgbd_frame():  # one view's cloud: the pixels the cow covers, on its surface
        n = int(MASK_FRACTION * size * size)
        pts, _ = geometry.sample_surface(cow_stand_in(), n, torch.Generator().manual_seed(0))
        return band_unit(render_points, pts, size, BANDS["rgbd_points"], point_radius=0.015)

    def param_frame():
        pts = geometry.torus_points(S["N_PARAM"], R=0.8, r=0.3)
        return band_unit(render_points, pts, size, BANDS["param_points"], point_radius=0.015)

    def implicit_frame():
        torus = mesh_from_sdf(lambda p: geometry.torus_sdf(p, R=0.8, r=0.3), bounds=1.2, resolution=S["GRID"])
        return band_unit(render_mesh, torus.with_colors(torch.full((torus.num_verts, 3), 0.6)), size,
                         BANDS["implicit"])

    def per_frame(name):
        return f"{size} px frame" if BANDS[name] == 1 else f"1/{BANDS[name]} of a {size} px frame"

    return [
        Part("cow_turntables", "cow turntables (sections 3, 6)", 2 * frames * BANDS["cow"], per_frame("cow"),
             cow_frame, {"size": size}),
        Part("dolly_zoom", "dolly-zoom renders (section 4)", frames * BANDS["dolly"], per_frame("dolly"),
             dolly_frame, {"size": size}),
        # two views' clouds and their union (twice as many points: two units)
        Part("rgbd_points", "RGB-D point-cloud turntable (section 8)", 4 * frames * BANDS["rgbd_points"],
             f"{per_frame('rgbd_points')}, one view's {int(MASK_FRACTION * size * size)} points", rgbd_frame,
             {"size": size}),
        # torus and superquadric turntables, and section 10's timing of the torus points
        Part("parametric_points", "parametric point turntables (sections 9, 10)", 3 * frames * BANDS["param_points"],
             f"{per_frame('param_points')}, {S['N_PARAM'] ** 2} points", param_frame,
             {"size": size, "n_param": S["N_PARAM"]}),
        # torus and superquadric turntables, and section 10's timing of the torus mesh
        Part("implicit_meshes", "marching-cubes mesh turntables (section 10)", 3 * frames * BANDS["implicit"],
             f"{per_frame('implicit')}, the torus at grid {S['GRID']}", implicit_frame,
             {"size": size, "grid": S["GRID"]}),
        Part("gifs", "GIF writing (seven turntables and the dolly zoom)", gif_units(frames, size, GIF_WIDTHS * size),
             "megapixel of GIF frames", gif_unit, {}),
    ]
