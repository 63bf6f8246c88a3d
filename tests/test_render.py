"""lib.render: mesh and point renderers against hand-computed expectations."""
import pytest
import torch

from lib import cameras
from lib.mesh import TriMesh
from lib.render.common import RenderSettings
from lib.render.mesh import render_mesh
from lib.render.points import render_points

# Slightly off-centre so that no pixel centre lies exactly on the shared diagonal (where a
# rasterizer may legitimately drop it from both triangles).
QUAD = TriMesh(verts=torch.tensor([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]]) + 0.013,
               faces=torch.tensor([[0, 1, 2], [0, 2, 3]]))


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


def test_unlit_render_shows_vertex_colours_and_background():
    red = QUAD.with_colors(torch.tensor([[1.0, 0.0, 0.0]]).expand(4, 3))
    out = render_mesh(red, cameras.orbit_poses(1, 0.0, 3.0), cameras.intrinsics_from_fov(50.0, 16),
                      RenderSettings(image_size=16, shading="unlit", background=(0.0, 0.0, 1.0)))
    rgb, mask = out["rgb"][0], out["mask"][0]
    torch.testing.assert_close(rgb[mask], torch.tensor([1.0, 0.0, 0.0]).expand(int(mask.sum()), 3))
    torch.testing.assert_close(rgb[~mask], torch.tensor([0.0, 0.0, 1.0]).expand(int((~mask).sum()), 3))


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


def test_face_index_output_is_per_mesh_for_every_camera():
    c2w = cameras.orbit_poses(torch.tensor([0.0, 10.0]), 0.0, 3.0)
    out = render_mesh(QUAD, c2w, cameras.intrinsics_from_fov(50.0, 16), RenderSettings(image_size=16))
    assert set(out["face"].unique().tolist()) == {-1, 0, 1}  # both cameras index faces 0..1, not 2..3
    assert torch.equal(out["face"] >= 0, out["mask"])


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
