"""lib.render: the PyTorch3D mesh and point renderers and lib's own z-buffer, against hand-computed
expectations and against each other."""

import pytest
import torch

from lib import cameras
from lib.data.shapes import make_shape
from lib.mesh import TriMesh
from lib.render.common import RenderSettings
from lib.render.mesh import render_mesh
from lib.render.points import render_points
from lib.render.zbuffer import interpolate, rasterize, render_views

# Slightly off-centre so that no pixel centre lies exactly on the shared diagonal (where a
# rasterizer may legitimately drop it from both triangles).
QUAD = TriMesh(verts=torch.tensor([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]]) + 0.013,
               faces=torch.tensor([[0, 1, 2], [0, 2, 3]]))


@pytest.mark.needs_pytorch3d
@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_mesh_mask_and_depth_match_projection(size):
    c2w = cameras.orbit_poses(torch.tensor([0.0]), 0.0, 3.0)[0]
    K = cameras.intrinsics_from_fov(50.0, size)
    out = render_mesh(QUAD, c2w, K, RenderSettings(image_size=size))
    uv, _ = cameras.project(QUAD.verts, c2w, K)
    centres = cameras.pixel_centers(size)
    inside = ((centres[..., 0] > uv[:, 0].min()) & (centres[..., 0] < uv[:, 0].max())
              & (centres[..., 1] > uv[:, 1].min()) & (centres[..., 1] < uv[:, 1].max()))
    assert torch.equal(out["mask"][0], inside)  # pixel centres inside the projected square
    torch.testing.assert_close(out["depth"][0][inside], torch.full((int(inside.sum()),), 3.0 - 0.013))
    assert (out["depth"][0][~inside] == 0).all()


@pytest.mark.needs_pytorch3d
def test_unlit_render_shows_vertex_colours_and_background():
    red = QUAD.with_colors(torch.tensor([[1.0, 0.0, 0.0]]).expand(4, 3))
    out = render_mesh(red, cameras.orbit_poses(1, 0.0, 3.0), cameras.intrinsics_from_fov(50.0, 16),
                      RenderSettings(image_size=16, shading="unlit", background=(0.0, 0.0, 1.0)))
    rgb, mask = out["rgb"][0], out["mask"][0]
    torch.testing.assert_close(rgb[mask], torch.tensor([1.0, 0.0, 0.0]).expand(int(mask.sum()), 3))
    torch.testing.assert_close(rgb[~mask], torch.tensor([0.0, 0.0, 1.0]).expand(int((~mask).sum()), 3))


@pytest.mark.needs_pytorch3d
def test_phong_is_brighter_facing_the_light_and_batches_cameras():
    c2w = cameras.orbit_poses(torch.tensor([0.0, 60.0, 180.0]), 0.0, 3.0)
    out = render_mesh(QUAD, c2w, cameras.intrinsics_from_fov(50.0, 16), RenderSettings(image_size=16))
    assert out["rgb"].shape == (3, 16, 16, 3)
    head_on = out["rgb"][0][out["mask"][0]].mean()
    oblique = out["rgb"][1][out["mask"][1]].mean()
    assert head_on > oblique


def test_mesh_render_rejects_bad_settings_and_cameras():
    K = cameras.intrinsics_from_fov(50.0, 8)
    with pytest.raises(ValueError, match="shading"):
        render_mesh(QUAD, cameras.orbit_poses(1, 0.0, 3.0), K, RenderSettings(image_size=8, shading="toon"))
    with pytest.raises(ValueError, match="`K`"):
        render_mesh(QUAD, cameras.orbit_poses(1, 0.0, 3.0), torch.eye(4), RenderSettings(image_size=8))


@pytest.mark.needs_pytorch3d
def test_point_renderer_lights_the_projected_pixel():
    c2w = cameras.orbit_poses(torch.tensor([0.0]), 0.0, 3.0)[0]
    K = cameras.intrinsics_from_fov(50.0, (32, 48))
    cam = torch.tensor([(10.5 - K[0, 2]) / K[0, 0] * 3, (20.5 - K[1, 2]) / K[1, 1] * 3, 3.0])
    world = cam @ c2w[:3, :3].T + c2w[:3, 3]
    out = render_points(world[None], torch.ones(1, 3), c2w, K,
                        RenderSettings(image_size=(32, 48), point_radius=0.02, points_per_pixel=1))
    assert out["mask"][0].nonzero().tolist() == [[20, 10]]


def test_point_renderer_rejects_nan_and_bad_shapes():
    c2w, K = cameras.orbit_poses(1, 0.0, 3.0), cameras.intrinsics_from_fov(50.0, 8)
    pts = torch.zeros(5, 3)
    pts[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN/inf \(first: \[3\]\)"):
        render_points(pts, None, c2w, K, RenderSettings(image_size=8))
    with pytest.raises(ValueError, match=r"\(P, 3\)"):
        render_points(torch.zeros(5, 2), None, c2w, K, RenderSettings(image_size=8))
    with pytest.raises(ValueError, match="colors"):
        render_points(torch.zeros(5, 3), torch.zeros(4, 3), c2w, K, RenderSettings(image_size=8))


@pytest.mark.needs_pytorch3d
def test_face_index_output_is_per_mesh_for_every_camera():
    c2w = cameras.orbit_poses(torch.tensor([0.0, 10.0]), 0.0, 3.0)
    out = render_mesh(QUAD, c2w, cameras.intrinsics_from_fov(50.0, 16), RenderSettings(image_size=16))
    assert set(out["face"].unique().tolist()) == {-1, 0, 1}  # both cameras index faces 0..1, not 2..3
    assert torch.equal(out["face"] >= 0, out["mask"])


@pytest.mark.needs_pytorch3d
def test_point_splats_blend_into_the_background_without_dark_rims():
    c2w, K = cameras.orbit_poses(1, 0.0, 3.0), cameras.intrinsics_from_fov(50.0, 32)
    pts = torch.zeros(1, 3)
    out = render_points(pts, torch.ones(1, 3), c2w, K, RenderSettings(image_size=32, point_radius=0.2))
    # A white point on a white background: every pixel, rim included, stays white.
    torch.testing.assert_close(out["rgb"], torch.ones_like(out["rgb"]))
    red = render_points(pts, torch.tensor([[1.0, 0.0, 0.0]]), c2w, K,
                        RenderSettings(image_size=32, point_radius=0.2))["rgb"][0]
    assert red[16, 16].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=0.05)  # opaque centre
    rim = red[red[..., 1] < 0.99]  # pixels the splat touches
    assert (rim[:, 0] > 0.99).all()  # red channel never drops: mixing red and white, not black


# ------------------------------------------------------------------------------- z-buffer
def _oblique_quad_views():
    c2w = cameras.orbit_poses(torch.tensor([0.0, 50.0]), elevation=torch.tensor([0.0, 35.0]), distance=2.5)
    return c2w, cameras.intrinsics_from_fov(50.0, (24, 40))


def test_zbuffer_covers_the_projected_square_at_its_depth():
    c2w = cameras.orbit_poses(torch.tensor([0.0]), 0.0, 3.0)[0]
    K = cameras.intrinsics_from_fov(50.0, (24, 40))
    frags = rasterize(QUAD.verts, QUAD.faces, c2w, K, (24, 40))
    uv, _ = cameras.project(QUAD.verts, c2w, K)
    centres = cameras.pixel_centers((24, 40))
    inside = ((centres[..., 0] > uv[:, 0].min()) & (centres[..., 0] < uv[:, 0].max())
              & (centres[..., 1] > uv[:, 1].min()) & (centres[..., 1] < uv[:, 1].max()))
    assert frags["mask"].shape == (1, 24, 40) and torch.equal(frags["mask"][0], inside)
    torch.testing.assert_close(frags["depth"][0][inside], torch.full((int(inside.sum()),), 3.0 - 0.013))
    assert (frags["depth"][0][~inside] == 0).all() and (frags["face"][0][~inside] == -1).all()


def test_zbuffer_barycentrics_are_perspective_correct():
    """Mixing the corners' world positions with each pixel's barycentrics gives the surface point
    that projects onto the pixel centre, and its camera z is the depth: true only with the
    perspective correction (screen-space weights miss by most of a pixel on these oblique views)."""
    c2w, K = _oblique_quad_views()
    frags = rasterize(QUAD.verts, QUAD.faces, c2w, K, (24, 40))
    assert frags["mask"].sum(dim=(1, 2)).min() > 50
    centres = cameras.pixel_centers((24, 40))
    for v in range(2):
        m = frags["mask"][v]
        torch.testing.assert_close(frags["bary"][v][m].sum(-1), torch.ones(int(m.sum())))
        assert (frags["bary"][v][m] >= -1e-6).all() and (frags["bary"][v][~m] == 0).all()
        world = interpolate(QUAD.verts, QUAD.faces, frags["face"][v], frags["bary"][v])  # (H, W, 3)
        uv, z = cameras.project(world[m], c2w[v], K)
        torch.testing.assert_close(uv, centres[m], atol=1e-3, rtol=0)
        torch.testing.assert_close(z, frags["depth"][v][m], atol=1e-5, rtol=0)


def test_zbuffer_keeps_the_nearest_face_and_culls_back_faces():
    near = TriMesh(verts=QUAD.verts * 0.5 + torch.tensor([0.0, 0.0, 0.5]), faces=QUAD.faces)
    both = TriMesh(verts=torch.cat([QUAD.verts, near.verts]), faces=torch.cat([QUAD.faces, QUAD.faces + 4]))
    front, K = cameras.orbit_poses(torch.tensor([0.0]), 0.0, 3.0), cameras.intrinsics_from_fov(50.0, 32)
    face = rasterize(both.verts, both.faces, front, K, 32)["face"][0]
    assert set(face[16, 14:18].tolist()) <= {2, 3}  # the centre sees the nearer, smaller quad
    assert set(face[16, [10, 11, 20, 21]].tolist()) <= {0, 1}  # around it, the far quad
    back = cameras.orbit_poses(torch.tensor([180.0]), 0.0, 3.0)
    assert not rasterize(QUAD.verts, QUAD.faces, back, K, 32)["mask"].any()  # seen from behind: culled
    assert rasterize(QUAD.verts, QUAD.faces, back, K, 32, cull_back_faces=False)["mask"].any()


def test_interpolate_is_differentiable_in_the_attributes_and_checks_shapes():
    c2w, K = _oblique_quad_views()
    frags = rasterize(QUAD.verts, QUAD.faces, c2w, K, (24, 40))
    colors = torch.rand(4, 3, requires_grad=True)
    img = interpolate(colors, QUAD.faces, frags["face"], frags["bary"])
    assert img.shape == (2, 24, 40, 3) and (img[~frags["mask"]] == 0).all()
    img.sum().backward()
    assert (colors.grad > 0).all()  # every corner colours some pixel
    with pytest.raises(ValueError, match="`bary`"):
        interpolate(colors, QUAD.faces, frags["face"], frags["bary"][..., :2])


def test_render_views_shades_with_a_headlight():
    K = cameras.intrinsics_from_fov(50.0, 16)
    out = render_views(QUAD.with_colors(torch.tensor([[1.0, 0.5, 0.0]]).expand(4, 3)),
                       cameras.orbit_poses(torch.tensor([0.0, 60.0]), 0.0, 3.0), K, 16, ambient=0.4)
    m = out["mask"]
    head_on, oblique = out["rgb"][0][m[0]], out["rgb"][1][m[1]]
    assert head_on[:, 0].min() > 0.99 and (oblique[:, 0] < 0.9).all()  # |n . view| dims the oblique view
    torch.testing.assert_close(out["rgb"][~m], torch.ones(int((~m).sum()), 3))  # white background


@pytest.mark.needs_pytorch3d
@pytest.mark.parametrize("category", ["chair", "airplane"])
def test_render_views_matches_pytorch3d(category):
    from lib.data.r2n2 import r2n2_camera
    from lib.data.shapes import make_shape
    from lib.mesh import normalize_mesh

    mesh = normalize_mesh(make_shape(category, 5), 1.0, "diagonal")
    c2w, K = r2n2_camera([20.0, 140.0, 260.0], [25.0, 28.0, 22.0], [0.8, 0.7, 0.9], 48)
    ours = render_views(mesh, c2w, K, 48)
    ref = render_mesh(mesh, c2w, K, RenderSettings(image_size=48, shading="flat"))
    both = ours["mask"] & ref["mask"]
    assert float(both.sum() / (ours["mask"] | ref["mask"]).sum()) > 0.99
    assert float((ours["face"] == ref["face"])[both].float().mean()) > 0.97
    torch.testing.assert_close(ours["depth"][ours["face"] == ref["face"]], ref["depth"][ours["face"] == ref["face"]],
                               atol=1e-3, rtol=0)


def test_render_views_supersampled_is_the_block_mean_of_the_fine_render():
    mesh = make_shape("chair", 0)
    mesh = mesh.with_colors(torch.rand(len(mesh.verts), 3, generator=torch.Generator().manual_seed(0)))
    c2w = cameras.orbit_poses(torch.tensor([30.0]), 20.0, 2.5)
    K = cameras.intrinsics_from_fov(40.0, 16)
    out = render_views(mesh, c2w, K, 16, supersample=2)
    fine = render_views(mesh, c2w, cameras.intrinsics_from_fov(40.0, 32), 32)
    blocks = fine["rgb"].reshape(1, 16, 2, 16, 2, 3).mean((2, 4))
    torch.testing.assert_close(out["rgb"], blocks)
    plain = render_views(mesh, c2w, K, 16)
    assert torch.equal(out["depth"], plain["depth"]) and torch.equal(out["mask"], plain["mask"])
    edge = (blocks - plain["rgb"]).abs().sum(-1) > 1e-3
    assert edge.any() and edge.float().mean() < 0.3  # only edge pixels change
    with pytest.raises(ValueError, match="supersample"):
        render_views(mesh, c2w, K, 16, supersample=0)
