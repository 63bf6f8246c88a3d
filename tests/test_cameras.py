"""lib.cameras: the convention, projection round trips and PyTorch3D parity."""
import math

import pytest
import torch

from lib import cameras


def random_pose(gen, n=1):
    az = torch.rand(n, generator=gen) * 360
    el = torch.rand(n, generator=gen) * 120 - 60
    d = 2 + torch.rand(n, generator=gen) * 3
    target = torch.rand(3, generator=gen) - 0.5
    return cameras.orbit_poses(az, el, d, target)


def test_look_at_axes_follow_opencv():
    c2w = cameras.look_at(eye=[0.0, 0.0, 3.0], target=[0.0, 0.0, 0.0])
    R = c2w[:3, :3]
    torch.testing.assert_close(R[:, 2], torch.tensor([0.0, 0.0, -1.0]))  # z looks at the target
    torch.testing.assert_close(R[:, 1], torch.tensor([0.0, -1.0, 0.0]))  # y points down (world -y)
    torch.testing.assert_close(R[:, 0], torch.tensor([1.0, 0.0, 0.0]))  # x right = world +x seen from +z
    torch.testing.assert_close(R @ R.T, torch.eye(3))
    assert torch.linalg.det(R) > 0


def test_orbit_azimuth_zero_is_on_plus_z_and_target_projects_to_centre():
    c2w = cameras.orbit_poses(torch.tensor([0.0, 90.0]), elevation=0.0, distance=2.0)
    torch.testing.assert_close(c2w[0, :3, 3], torch.tensor([0.0, 0.0, 2.0]))
    torch.testing.assert_close(c2w[1, :3, 3], torch.tensor([2.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    K = cameras.intrinsics_from_fov(40.0, (30, 50))
    uv, z = cameras.project(torch.zeros(1, 3), c2w[1], K)
    torch.testing.assert_close(uv, torch.tensor([[25.0, 15.0]]))
    torch.testing.assert_close(z, torch.tensor([2.0]))


def test_world_up_projects_upwards():
    c2w = cameras.orbit_poses(torch.tensor([30.0]), 10.0, 3.0)[0]
    K = cameras.intrinsics_from_fov(50.0, 64)
    uv, _ = cameras.project(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.5, 0.0]]), c2w, K)
    assert uv[1, 1] < uv[0, 1]  # higher in the world = smaller row index


def test_project_into_a_batch_of_cameras_is_each_camera_in_turn():
    c2w = cameras.orbit_poses(torch.tensor([0.0, 70.0, 200.0]), torch.tensor([10.0, 30.0, -20.0]), 2.5)
    K = cameras.intrinsics_from_fov(45.0, (20, 30))
    pts = torch.rand(7, 3, generator=torch.Generator().manual_seed(1)) - 0.5
    for Ks in (K, K.expand(3, 3, 3)):
        uv, z = cameras.project(pts, c2w, Ks)
        assert uv.shape == (3, 7, 2) and z.shape == (3, 7)
        for i in range(3):
            one_uv, one_z = cameras.project(pts, c2w[i], K)
            torch.testing.assert_close(uv[i], one_uv)
            torch.testing.assert_close(z[i], one_z)


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_unproject_then_project_round_trip(size):
    gen = torch.Generator().manual_seed(0)
    c2w = random_pose(gen)[0]
    K = cameras.intrinsics_from_fov(55.0, size)
    depth = 1 + torch.rand(size, generator=gen)
    mask = torch.rand(size, generator=gen) > 0.3
    pts = cameras.unproject_depth(depth, c2w, K, mask)
    uv, z = cameras.project(pts, c2w, K)
    torch.testing.assert_close(uv, cameras.pixel_centers(size)[mask], atol=1e-4, rtol=0)
    torch.testing.assert_close(z, depth[mask], atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_cams,size", [(1, (32, 32)), (3, (24, 40))])
def test_pytorch3d_cameras_project_like_ours(n_cams, size):
    gen = torch.Generator().manual_seed(n_cams)
    c2w = random_pose(gen, n_cams)
    K = cameras.intrinsics_from_fov(45.0, size)
    pts = torch.rand(50, 3, generator=gen) - 0.5
    p3d = cameras.to_pytorch3d(c2w, K, size)
    screen = p3d.transform_points_screen(pts.expand(n_cams, 50, 3))
    for i in range(n_cams):
        uv, _ = cameras.project(pts, c2w[i], K)
        torch.testing.assert_close(screen[i, :, :2], uv, atol=1e-3, rtol=0)
        view = p3d.get_world_to_view_transform().transform_points(pts.expand(n_cams, 50, 3))
        torch.testing.assert_close(view[i, :, 2], cameras.project(pts, c2w[i], K)[1], atol=1e-5, rtol=0)


def test_from_pytorch3d_inverts_to_pytorch3d():
    gen = torch.Generator().manual_seed(3)
    c2w = random_pose(gen, 2)
    K = cameras.intrinsics_from_fov(70.0, (48, 64))
    c2w_back, K_back = cameras.from_pytorch3d(cameras.to_pytorch3d(c2w, K, (48, 64)), (48, 64))
    torch.testing.assert_close(c2w_back, c2w, atol=1e-5, rtol=0)
    torch.testing.assert_close(K_back, K.expand(2, 3, 3), atol=1e-4, rtol=0)


def test_from_pytorch3d_reads_fov_cameras():
    from pytorch3d.renderer import FoVPerspectiveCameras, look_at_view_transform

    R, T = look_at_view_transform(dist=2.7, elev=15, azim=40)
    fov_cams = FoVPerspectiveCameras(R=R, T=T, fov=50.0)
    c2w, K = cameras.from_pytorch3d(fov_cams, 64)
    pts = torch.rand(20, 3) - 0.5
    uv, _ = cameras.project(pts, c2w[0], K[0])
    torch.testing.assert_close(uv, fov_cams.transform_points_screen(pts[None], image_size=((64, 64),))[0, :, :2],
                               atol=1e-3, rtol=0)
    assert cameras.fov_from_intrinsics(K[0], 64) == pytest.approx(50.0, abs=1e-3)


def test_non_orthonormal_rotation_is_rejected_with_a_clear_message():
    c2w = cameras.look_at([0.0, 0.0, 3.0])
    bad = c2w.clone()
    bad[:3, :3] *= 1.1
    with pytest.raises(ValueError, match="not orthonormal"):
        cameras.project(torch.zeros(1, 3), bad, cameras.intrinsics_from_fov(50, 8))
    mirrored = c2w.clone()
    mirrored[:3, 0] *= -1
    with pytest.raises(ValueError, match="reflection"):
        cameras.to_pytorch3d(mirrored, cameras.intrinsics_from_fov(50, 8), 8)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4, 4\)"):
        cameras.world_to_camera(torch.eye(3))


def test_bad_arguments_name_the_input():
    with pytest.raises(ValueError, match="fov"):
        cameras.intrinsics_from_fov(180.0, 8)
    with pytest.raises(ValueError, match="parallel to `up`"):
        cameras.look_at([0.0, 3.0, 0.0])
    with pytest.raises(ValueError, match="`eye`"):
        cameras.look_at([0.0, 3.0])
    with pytest.raises(ValueError, match="depth"):
        cameras.unproject_depth(torch.ones(2, 2, 2), torch.eye(4), torch.eye(3))


def test_apply_relative_cases():
    base = cameras.orbit_poses(torch.tensor([0.0]), 0.0, 3.0)[0]
    back = cameras.apply_relative(base, torch.eye(3), [0, 0, 2])
    torch.testing.assert_close(back[:3, 3], torch.tensor([0.0, 0.0, 5.0]))  # moved back along its axis
    side = cameras.apply_relative(base, cameras.rotation("y", 90), [-3, 0, 3])
    K = cameras.intrinsics_from_fov(50, 32)
    uv, z = cameras.project(torch.zeros(1, 3), side, K)
    torch.testing.assert_close(uv, torch.tensor([[16.0, 16.0]]), atol=1e-4, rtol=0)  # still centred
    torch.testing.assert_close(z, torch.tensor([3.0]), atol=1e-5, rtol=0)
    assert abs(side[:3, 3].norm().item() - 3.0) < 1e-5 and abs(side[2, 3].item()) < 1e-5  # now on the x axis


def test_dolly_zoom_keeps_projected_width():
    widths = []
    for fov in (10.0, 40.0, 90.0):
        d = cameras.dolly_zoom_distance(fov, 2.0)
        c2w = cameras.orbit_poses(torch.tensor([0.0]), 0.0, d)[0]
        uv, _ = cameras.project(torch.tensor([[-1.0, 0, 0], [1.0, 0, 0]]), c2w, cameras.intrinsics_from_fov(fov, 100))
        widths.append((uv[1, 0] - uv[0, 0]).abs().item())
    assert widths == pytest.approx([100.0] * 3, rel=1e-4)
    assert cameras.dolly_zoom_distance(90.0, 2.0) == pytest.approx(1.0 / math.tan(math.pi / 4))
