"""Sphere tracing (lib.render.surface) against the exact ray-torus intersection, and its errors."""
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from lib import cameras
from lib.geometry import torus_sdf
from lib.render.raytrace import SDFScene, render_sdf_scene, shade_sdf_scene
from lib.render.surface import (ray_torus_intersection, render_sdf, sdf_gradient, sdf_normals,
                                shade_normals, sphere_trace)

R_MAJOR, R_MINOR = 1.0, 0.35


def torus(p, r=R_MINOR):
    return torus_sdf(p, R=R_MAJOR, r=r)


def camera_rays(azimuth, elevation, distance, size=48, fov=40.0):
    from lib.rays import get_rays

    c2w = cameras.orbit_poses(torch.tensor([float(azimuth)]), elevation, distance)[0]
    o, d = get_rays(c2w, cameras.intrinsics_from_fov(fov, size), size)
    return o.reshape(-1, 3), d.reshape(-1, 3)


def random_rays(n, seed):
    """Rays from random points on a sphere of radius 3 aimed near the torus (many hits and misses)."""
    g = torch.Generator().manual_seed(seed)
    o = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1) * 3.0
    target = (torch.rand(n, 3, generator=g) * 2 - 1) * torch.tensor([1.4, 0.5, 1.4])
    return o, torch.nn.functional.normalize(target - o, dim=1)


# ------------------------------------------------------------------------- the oracle itself
@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_roots_lie_on_the_surface_and_are_first(seed):
    o, d = random_rays(300, seed)
    t = ray_torus_intersection(o, d, R_MAJOR, R_MINOR, near=0.0, far=10.0)
    assert t.dtype == torch.float64 and t.shape == (300,)
    hit = torch.isfinite(t)
    assert 50 < int(hit.sum()) < 250  # the set-up must exercise both cases
    od, dd = o.double(), d.double()
    p = od[hit] + t[hit, None] * dd[hit]
    assert torus_sdf(p, R_MAJOR, R_MINOR).abs().max() < 1e-7
    # slow reference: dense march in float64; the SDF must stay positive before the first root
    s = torch.linspace(0, 1, 4000, dtype=torch.float64)
    for i in range(300):
        end = float(t[i]) if hit[i] else 10.0
        pts = od[i] + (s[:-1, None] * end) * dd[i]
        assert torus_sdf(pts, R_MAJOR, R_MINOR).min() > -1e-9, f"ray {i} enters the torus before t={end}"


def test_oracle_single_ray_matches_numpy_roots():
    o, d = torch.tensor([[0.2, 0.1, 3.0]], dtype=torch.float64), torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    t = float(ray_torus_intersection(o, d, R_MAJOR, R_MINOR)[0])
    # along x = 0.2, y = 0.1 the outer tube wall is at sqrt(x^2 + z^2) = R + sqrt(r^2 - y^2)
    rho = R_MAJOR + math.sqrt(R_MINOR**2 - 0.1**2)
    assert t == pytest.approx(3.0 - math.sqrt(rho**2 - 0.2**2), abs=1e-10)


def test_oracle_respects_near_and_bad_shapes():
    o, d = torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]])
    t_all = ray_torus_intersection(o, d, R_MAJOR, R_MINOR)
    t_far = ray_torus_intersection(o, d, R_MAJOR, R_MINOR, near=float(t_all[0]) + 0.1)
    assert float(t_far[0]) == pytest.approx(3.0 - (R_MAJOR - R_MINOR), abs=1e-9)  # the inner wall
    with pytest.raises(ValueError, match="origins"):
        ray_torus_intersection(o, d[:, :2])


# ------------------------------------------------------------------------- sphere tracing
@pytest.mark.parametrize("azimuth, elevation, distance", [(20.0, 35.0, 4.0), (0.0, 0.0, 3.0), (130.0, 80.0, 5.0)])
def test_sphere_trace_hits_where_the_quartic_says(azimuth, elevation, distance):
    o, d = camera_rays(azimuth, elevation, distance)
    out = sphere_trace(torus, o, d, near=0.5, far=10.0, max_steps=64, eps=1e-4)
    t_true = ray_torus_intersection(o, d, R_MAJOR, R_MINOR, near=0.5, far=10.0)
    true_hit = torch.isfinite(t_true)
    assert true_hit.any() and (~true_hit).any()
    assert (out["hit"] == true_hit).float().mean() >= 0.99
    # away from grazing rays the answer is exact: rays through a slightly thinner torus must
    # hit, rays that miss a slightly fatter one must miss
    sure_hit = torch.isfinite(ray_torus_intersection(o, d, R_MAJOR, R_MINOR - 0.01, 0.5, 10.0))
    sure_miss = ~torch.isfinite(ray_torus_intersection(o, d, R_MAJOR, R_MINOR + 0.01, 0.5, 10.0))
    assert out["hit"][sure_hit].all() and not out["hit"][sure_miss].any()
    # with an exact SDF sphere tracing never passes the surface, and stops within eps of it
    both = out["hit"] & true_hit
    assert (out["t"][both].double() <= t_true[both] + 1e-5).all()
    f_hit = torus(out["points"][both])
    assert (f_hit > -1e-5).all() and (f_hit < 1e-4).all()
    # the distance error is about eps / cos(incidence): small except on grazing rays
    assert (out["t"][sure_hit].double() - t_true[sure_hit]).abs().max() < 2e-3
    torch.testing.assert_close(out["points"], o + out["t"][:, None] * d)


@pytest.mark.parametrize("n_rays", [1, 7, 256])
def test_sphere_trace_shapes_and_dtypes(n_rays):
    o, d = random_rays(n_rays, 3)
    out = sphere_trace(torus, o, d, 0.0, 8.0)
    assert out["t"].shape == (n_rays,) and out["t"].dtype == torch.float32
    assert out["hit"].shape == (n_rays,) and out["hit"].dtype == torch.bool
    assert out["steps"].shape == (n_rays,) and out["steps"].dtype == torch.int64
    assert out["points"].shape == (n_rays, 3)
    assert (out["steps"] >= 1).all() and (out["steps"] <= 64).all()
    hit = out["hit"]
    assert (torus(out["points"][hit]) < 1e-4).all()


def test_sphere_trace_inside_hits_at_once_and_misses_stop_early():
    o = torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])  # on the tube's core; above the hole
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # any direction; straight up, away
    out = sphere_trace(torus, o, d, near=0.0, far=5.0)
    assert out["hit"].tolist() == [True, False]
    assert out["steps"].tolist()[0] == 1 and out["t"][0] == 0.0
    assert out["steps"][1] < 5  # a miss leaves as soon as t > far
    # a ray that runs out of steps is a miss
    short = sphere_trace(torus, torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]]), 0.0, 8.0,
                         max_steps=1)
    assert not short["hit"][0] and short["steps"][0] == 1


def test_sphere_trace_accepts_column_output_and_needs_no_grad():
    o, d = camera_rays(0.0, 20.0, 4.0, size=8)
    net = torch.nn.Linear(3, 1)  # (N, 1) output with parameters that require grad
    out = sphere_trace(lambda p: torus(p)[:, None] + 0 * net(p), o, d, 0.5, 8.0)
    assert not out["t"].requires_grad and out["hit"].any()


# ------------------------------------------------------------------------- bad input
def nan_inside(p):
    return torch.where(p.norm(dim=-1) < 1.5, torch.nan, torus(p))


@pytest.mark.parametrize("bad_fn, what", [
    (lambda p: torus(p) * torch.nan, "NaN/inf"),
    (nan_inside, "NaN/inf"),  # fine at first, NaN only once rays get close
    (lambda p: torch.where(p[:, 0] > 0, torch.inf, torus(p)), "NaN/inf"),
    (lambda p: torus(p)[:-1], "shape"),
    (lambda p: torch.stack([torus(p)] * 3, 1), "shape"),
    (lambda p: torus(p).tolist(), "shape"),
])
def test_sphere_trace_bad_sdf_output_is_named(bad_fn, what):
    o, d = camera_rays(20.0, 35.0, 4.0, size=16)
    with pytest.raises(ValueError) as info:
        sphere_trace(bad_fn, o, d, 0.5, 8.0)
    msg = str(info.value)
    assert "sdf_fn output" in msg and what in msg, msg
    if what == "shape":
        assert f"({len(o)},)" in msg  # what was expected


def test_nan_error_names_the_step_and_point():
    o, d = camera_rays(20.0, 35.0, 4.0, size=16)
    with pytest.raises(ValueError, match=r"at step [1-9]\d* .*at point \[") as info:
        sphere_trace(nan_inside, o, d, 0.5, 8.0)
    assert "step 0" not in str(info.value)  # the first evaluation (at distance ~4) is finite


@pytest.mark.parametrize("o, d, near, far, match", [
    (torch.zeros(4, 2), torch.zeros(4, 2), 0.0, 1.0, "origins"),
    (torch.zeros(4, 3), torch.zeros(5, 3), 0.0, 1.0, "same shape"),
    (torch.zeros(4, 3), torch.ones(4, 3), 2.0, 1.0, "near < far"),
])
def test_sphere_trace_bad_rays(o, d, near, far, match):
    with pytest.raises(ValueError, match=match):
        sphere_trace(torus, o, d, near, far)


# ------------------------------------------------------------------------- normals, shading
def test_normals_of_a_sphere_are_radial_and_gradients_keep_graph():
    p = torch.nn.functional.normalize(torch.randn(50, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    n = sdf_normals(lambda x: x.norm(dim=-1) - 1.0, p * 1.0)
    torch.testing.assert_close(n, p, atol=1e-5, rtol=0)
    w = torch.tensor(2.0, requires_grad=True)
    g = sdf_gradient(lambda x: w * (x.norm(dim=-1) - 1.0), p, create_graph=True)
    g.norm(dim=-1).sum().backward()  # d/dw sum |w x/|x|| = 50
    assert w.grad == pytest.approx(50.0)
    with pytest.raises(ValueError, match="points"):
        sdf_gradient(torus, torch.zeros(3))


def test_shade_normals_and_render_sdf():
    n = torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    rgb = shade_normals(n, torch.tensor([True, False]), light_dir=(0, 1, 0), albedo="normals", ambient=0.2,
                        background=(0, 0, 1))
    torch.testing.assert_close(rgb, torch.tensor([[0.5, 1.0, 0.5], [0.0, 0.0, 1.0]]))
    lit_from_below = shade_normals(n, torch.tensor([True, True]), light_dir=(0, -2, 0), albedo=(1.0, 0.5, 0.0),
                                   ambient=0.25)
    torch.testing.assert_close(lit_from_below, torch.tensor([[0.25, 0.125, 0.0], [1.0, 0.5, 0.0]]))
    with pytest.raises(ValueError, match="normals"):
        shade_normals(n, torch.tensor([True]))
    c2w = cameras.orbit_poses(torch.tensor([20.0]), 35.0, 4.0)[0]
    K = cameras.intrinsics_from_fov(40.0, (12, 16))
    img = render_sdf(torus, c2w, K, (12, 16), 0.5, 8.0)
    assert img["rgb"].shape == (12, 16, 3) and img["hit"].shape == (12, 16) and img["steps"].shape == (12, 16)
    assert img["hit"].any() and (~img["hit"]).any()
    torch.testing.assert_close(img["normals"][img["hit"]].norm(dim=-1), torch.ones(int(img["hit"].sum())))


def test_render_sdf_box_and_albedo():
    c2w = cameras.orbit_poses(torch.tensor([20.0]), 35.0, 4.0)[0]
    K = cameras.intrinsics_from_fov(40.0, 16)
    full = render_sdf(torus, c2w, K, 16, 0.5, 8.0, albedo_fn=lambda p: torch.ones_like(p) * torch.tensor([0.0, 1.0, 0.0]))
    assert full["hit"].any() and (full["rgb"][full["hit"]][:, [0, 2]] == 0).all()  # green only
    # a box that holds only the torus's +x half: hits there, none on the -x side
    half = render_sdf(torus, c2w, K, 16, 0.5, 8.0, aabb=torch.tensor([[0.0, -1.0, -2.0], [2.0, 1.0, 2.0]]))
    assert half["hit"].any() and half["hit"].sum() < full["hit"].sum()
    from lib.rays import get_rays

    o, d = get_rays(c2w, K, 16)
    pts = o[half["hit"]] + half["t"][half["hit"], None] * d[half["hit"]]
    assert (pts[:, 0] >= -1e-4).all()
    empty = render_sdf(torus, c2w, K, 16, 0.5, 8.0, aabb=torch.tensor([[5.0, 5.0, 5.0], [6.0, 6.0, 6.0]]))
    assert not empty["hit"].any() and (empty["steps"] == 0).all()


def test_sphere_trace_per_ray_bounds():
    o = torch.tensor([[0.0, 0.0, 3.0]] * 3)
    d = torch.tensor([[0.0, 0.0, -1.0]] * 3)
    out = sphere_trace(torus, o, d, near=torch.tensor([0.0, 1.8, 0.0]), far=torch.tensor([8.0, 8.0, -1.0]))
    # ray 0 hits the outer wall at t = 1.65; ray 1 starts past it, inside the tube (hit at once);
    # ray 2 has an empty segment: not traced
    assert out["hit"].tolist() == [True, True, False]
    assert out["t"][0].item() == pytest.approx(3.0 - (R_MAJOR + R_MINOR), abs=1e-3)
    assert out["t"][1].item() == pytest.approx(1.8) and out["steps"].tolist()[1:] == [1, 0]
    with pytest.raises(ValueError, match="near"):
        sphere_trace(torus, o, d, near=torch.zeros(2), far=8.0)


# ------------------------------------------------------------------ scenes of SDF objects
def _ball_on_floor(**kw):
    """A ball of radius 0.5 at height 0.5 resting on a floor slab y in [-0.1, 0]; sun straight up."""
    def sdfs(p):
        ball = (p - torch.tensor([0.0, 0.5, 0.0])).norm(dim=-1) - 0.5
        floor = torch.maximum(p[:, 1] - 0.0, -0.1 - p[:, 1])
        return torch.stack([floor, ball], -1)

    colours = torch.tensor([[0.8, 0.8, 0.8], [0.9, 0.2, 0.1]])
    return SDFScene(sdfs=sdfs, albedo=lambda p, obj: colours[obj], bounds=((-2.0, -0.2, -2.0), (2.0, 1.2, 2.0)),
                    light_dir=(0.0, 1.0, 0.0), **kw)


def test_scene_rays_hit_the_nearest_object_where_the_geometry_says():
    scene = _ball_on_floor()
    o = torch.tensor([[0.0, 3.0, 0.0], [1.5, 3.0, 0.0], [0.0, 0.5, 3.0], [5.0, 5.0, 5.0]])
    d = torch.tensor([[0.0, -1.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    rgba = shade_sdf_scene(scene, o, d, specular=0.0)
    assert rgba[:, 3].tolist() == [1.0, 1.0, 1.0, 0.0]  # the last ray misses the scene box
    # top of the ball, lit head-on: albedo * 1; the floor under the sun next to it: lit, grey
    torch.testing.assert_close(rgba[0, :3], torch.tensor([0.9, 0.2, 0.1]), atol=0.02, rtol=0)
    torch.testing.assert_close(rgba[1, :3], torch.tensor([0.8, 0.8, 0.8]), atol=0.02, rtol=0)
    # the ball's side, lit at grazing angle: ambient only
    torch.testing.assert_close(rgba[2, :3], 0.35 * torch.tensor([0.9, 0.2, 0.1]), atol=0.03, rtol=0)


def test_scene_shadows_and_highlights():
    scene = _ball_on_floor(glossy=(1,))
    # floor points seen obliquely (past the ball): (0.3, 0, 0) lies in the ball's shadow, (1.5, 0, 0) not
    d = torch.nn.functional.normalize(torch.tensor([[-1.0, -1.0, 0.0]]), dim=-1).expand(2, 3)
    o = torch.tensor([[0.3, 0.0, 0.0], [1.5, 0.0, 0.0]]) - 2.0 * d
    floor = shade_sdf_scene(scene, o, d, specular=0.0)
    torch.testing.assert_close(floor[:, :3], torch.tensor([[0.28] * 3, [0.8] * 3]), atol=0.01, rtol=0)
    # from above: the glossy ball gets a highlight, the matte floor does not
    o, d = torch.tensor([[0.1, 3.0, 0.0], [1.5, 3.0, 0.0]]), torch.tensor([[0.0, -1.0, 0.0]] * 2)
    plain, shiny = shade_sdf_scene(scene, o, d, 0.0), shade_sdf_scene(scene, o, d, 1.0)
    assert (shiny[0, :3] - plain[0, :3]).min() > 0.05
    torch.testing.assert_close(shiny[1], plain[1])


def test_render_sdf_scene_coverage_and_supersampling():
    scene = _ball_on_floor()
    c2w = cameras.orbit_poses(torch.tensor([0.0, 90.0]), 30.0, 5.0)
    K = cameras.intrinsics_from_fov(40.0, 12)
    rgba = render_sdf_scene(scene, c2w, K, 12, supersample=2)
    assert rgba.shape == (2, 12, 12, 4) and 0 <= rgba.min() and rgba.max() <= 1
    alpha = rgba[..., 3]
    assert ((alpha > 0) & (alpha < 1)).any()  # partly covered pixels at the silhouette of the floor
    with pytest.raises(ValueError, match="supersample"):
        render_sdf_scene(scene, c2w, K, 12, supersample=0)


# ------------------------------------------------------------------------- no PyTorch3D
def test_notebook_05_modules_do_not_import_pytorch3d():
    mods = ["lib.render.surface", "lib.render.raytrace", "lib.models.sdf", "lib.rays", "lib.render.volume",
            "lib.data.blender", "lib.data.still_life", "lib.primitives", "lib.geometry", "lib.train", "lib.viz",
            "lib.report", "lib.cameras", "lib.data.toy_animal", "lib.data.mesh_io", "lib.data.sources", "lib.colab"]
    code = ("import sys, importlib\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "print('pytorch3d' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False", "a module notebook 05 imports pulled in pytorch3d"
