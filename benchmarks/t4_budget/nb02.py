"""Notebook 02 (meshes and fitting), full mode: a ShapeNet chair, its three fits and its turntables.

The R2N2 chair (``objs[SEED]``, a ShapeNetCore v1 mesh) is stood in for by :func:`chair_stand_in`,
a mesh of a typical ShapeNet chair's size (about 10k vertices, 20k faces; ShapeNet's chairs range
from a few hundred faces to over 100k), normalised as the notebook normalises it. The three fits
run the notebook's step functions (``voxel_step``, ``point_step``, ``fit_mesh``'s ``step``) on
the CPU; turntable frames and GIFs are timed as in ``nb01`` (bands of a frame; GIF encoding in
fixed one-megapixel units, a host cost).

Left out (seconds on a T4): loading the chair, voxelising it (section 1), the binvox round trip,
surface sampling, the chamfer and Laplacian checks (sections 3, 4), and the evaluations of the fits
(chamfer and F-score against ``5 * N_POINTS`` points, a few calls).
"""
from __future__ import annotations

import torch

from benchmarks.t4_budget.measure import Part
from benchmarks.t4_budget.nb01 import band_unit, gif_unit, gif_units

USES_SD = False
MESH_RENDERS = 12  # turntable clips of meshes: target 1, voxelize 3, target_points 1, voxel_fit 3, mesh_fit 4
POINT_RENDERS = 4  # and of point clouds: target_points 1, point_fit 3
BANDS = {"mesh": 1, "points": 1}  # bands per turntable frame (see nb01)
RES = 32  # the notebook's voxel grid


def chair_stand_in():
    """A TriMesh of a typical ShapeNet chair's size: a level-5 ico-sphere (10242 vertices, 20480
    faces) with a chair's proportions, grey, normalised to extent 0.9 as in the notebook."""
    from lib.mesh import TriMesh, normalize_mesh
    from lib.primitives import ico_sphere

    m = ico_sphere(5)
    m = TriMesh(verts=m.verts * torch.tensor([0.6, 1.0, 0.65]), faces=m.faces,
                vert_colors=torch.full((m.num_verts, 3), 0.7))
    return normalize_mesh(m, extent=0.9)


def voxel_unit():
    """``voxel_step`` of section 2: IoU, BCE, backward and Adam on a 32^3 logit grid."""
    from lib import losses, metrics, voxels

    target = voxels.voxelize(chair_stand_in(), RES)
    grid = torch.nn.ParameterDict({"logits": torch.nn.Parameter(torch.randn(RES, RES, RES))})
    opt = torch.optim.Adam(grid.parameters(), lr=0.1)

    def step():
        iou = metrics.voxel_iou(grid["logits"].detach() > 0, target).item()
        loss = losses.voxel_bce(grid["logits"], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "iou": iou}

    return step


def _target_pool(n_points: int):
    """``draw_batch`` of section 1: ``n_points`` of ``20 * n_points`` surface samples, as drawn each step."""
    from lib import geometry

    pool, _ = geometry.sample_surface(chair_stand_in(), 20 * n_points, torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(0)
    return lambda: pool[torch.randint(len(pool), (n_points,), generator=gen)]


def point_unit(n_points: int):
    """``point_step`` of section 3: chamfer of ``n_points`` free points to a batch, Adam."""
    from lib import losses

    draw_batch = _target_pool(n_points)
    cloud = torch.nn.ParameterDict({"points": torch.nn.Parameter(torch.rand(n_points, 3) - 0.5)})
    opt = torch.optim.Adam(cloud.parameters(), lr=0.01)

    def step():
        loss = losses.chamfer_distance(cloud["points"], draw_batch())
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    return step


def mesh_unit(n_points: int, ico_level: int):
    """``fit_mesh``'s step of section 4: sample the deformed ico-sphere, chamfer + Laplacian, Adam."""
    from pytorch3d.ops import sample_points_from_meshes
    from pytorch3d.structures import Meshes

    from lib import losses, primitives

    draw_batch = _target_pool(n_points)
    sphere = primitives.ico_sphere(ico_level, radius=0.45)
    offsets = torch.nn.ParameterDict({"offsets": torch.nn.Parameter(torch.zeros_like(sphere.verts))})
    opt = torch.optim.Adam(offsets.parameters(), lr=0.02)

    def step():
        verts = sphere.verts + offsets["offsets"]
        samples = sample_points_from_meshes(Meshes([verts], [sphere.faces]), n_points)[0]
        chamfer = losses.chamfer_distance(samples, draw_batch())
        smooth = losses.mesh_laplacian_smoothing(verts, sphere.faces)
        loss = chamfer + 1.0 * smooth
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "chamfer": chamfer.item(), "laplacian": smooth.item()}

    return step


def parts(S: dict, sizes: str) -> list:
    from lib import geometry
    from lib.render import render_mesh, render_points

    size, frames, n = S["IMAGE_SIZE"], S["N_FRAMES"], S["N_POINTS"]
    view = dict(elevation=25.0, distance=1.9, fov=40.0)  # side_by_side's turntable, K of section 1

    def mesh_frame():
        return band_unit(render_mesh, chair_stand_in(), size, BANDS["mesh"], **view)

    def point_frame():
        pts, _ = geometry.sample_surface(chair_stand_in(), n, torch.Generator().manual_seed(2))
        return band_unit(render_points, pts, size, BANDS["points"], point_radius=0.02, **view)

    return [
        Part("voxels", "voxel-grid fit (section 2)", S["VOXEL_STEPS"], "step", voxel_unit, {}),
        Part("points", "point-cloud fit (section 3)", S["POINT_STEPS"], "step", lambda: point_unit(n), {"n_points": n}),
        # fit_mesh runs twice: without and with the Laplacian term
        Part("mesh", "mesh fits, w = 0 and W_LAPLACIAN (section 4)", 2 * S["MESH_STEPS"], "step",
             lambda: mesh_unit(n, S["ICO_LEVEL"]), {"n_points": n, "ico_level": S["ICO_LEVEL"]}),
        Part("mesh_frames", "mesh turntables (sections 1, 2, 4)", MESH_RENDERS * frames * BANDS["mesh"],
             f"1/{BANDS['mesh']} of a {size} px frame of a 20k-face mesh", mesh_frame, {"size": size}),
        Part("point_frames", "point-cloud turntables (sections 1, 3)", POINT_RENDERS * frames * BANDS["points"],
             f"{size} px frame of {n} points", point_frame, {"size": size, "n_points": n}),
        Part("gifs", "GIF writing (six turntables)", gif_units(frames, size, (MESH_RENDERS + POINT_RENDERS) * size),
             "megapixel of GIF frames", gif_unit, {}),
    ]
