"""lib.cameras: the convention, projection round trips and PyTorch3D parity."""
import math

import pytest
import torch

from lib import cameras
from lib import pytorch3d_cameras as p3c


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


@pytest.mark.needs_pytorch3d
@pytest.mark.parametrize("n_cams,size", [(1, (32, 32)), (3, (24, 40))])
def test_pytorch3d_cameras_project_like_ours(n_cams, size):
    gen = torch.Generator().manual_seed(n_cams)
    c2w = random_pose(gen, n_cams)
    K = cameras.intrinsics_from_fov(45.0, size)
    pts = torch.rand(50, 3, generator=gen) - 0.5
    p3d = p3c.to_pytorch3d(c2w, K, size)
    screen = p3d.transform_points_screen(pts.expand(n_cams, 50, 3))
    for i in range(n_cams):
        uv, _ = cameras.project(pts, c2w[i], K)
        torch.testing.assert_close(screen[i, :, :2], uv, atol=1e-3, rtol=0)
        view = p3d.get_world_to_view_transform().transform_points(pts.expand(n_cams, 50, 3))
        torch.testing.assert_close(view[i, :, 2], cameras.project(pts, c2w[i], K)[1], atol=1e-5, rtol=0)


@pytest.mark.needs_pytorch3d
def test_from_pytorch3d_inverts_to_pytorch3d():
    gen = torch.Generator().manual_seed(3)
    c2w = random_pose(gen, 2)
    K = cameras.intrinsics_from_fov(70.0, (48, 64))
    c2w_back, K_back = p3c.from_pytorch3d(p3c.to_pytorch3d(c2w, K, (48, 64)), (48, 64))
    torch.testing.assert_close(c2w_back, c2w, atol=1e-5, rtol=0)
    torch.testing.assert_close(K_back, K.expand(2, 3, 3), atol=1e-4, rtol=0)


@pytest.mark.needs_pytorch3d
def test_from_pytorch3d_reads_fov_cameras():
    from pytorch3d.renderer import FoVPerspectiveCameras, look_at_view_transform

    R, T = look_at_view_transform(dist=2.7, elev=15, azim=40)
    fov_cams = FoVPerspectiveCameras(R=R, T=T, fov=50.0)
    c2w, K = p3c.from_pytorch3d(fov_cams, 64)
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
        p3c.to_pytorch3d(mirrored, cameras.intrinsics_from_fov(50, 8), 8)
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


def _box_corners(width, height, depth):
    """(8, 3) corners of a box centred at the origin: ``width`` along x, ``depth`` along z."""
    return torch.tensor([[x, y, z] for x in (-width / 2, width / 2) for y in (-height / 2, height / 2)
                         for z in (-depth / 2, depth / 2)])


def _projected_extent(points, d, fov, size, azimuth=0.0, elevation=0.0):
    """(width, half-width) in pixels of ``points`` seen by orbit_poses(azimuth, elevation, d)."""
    c2w = cameras.orbit_poses(torch.tensor([float(azimuth)]), elevation, d)[0]
    uv, depth = cameras.project(points, c2w, cameras.intrinsics_from_fov(fov, size))
    assert (depth > 0).all()  # the whole subject is in front of the camera
    u = uv[:, 0].double()
    return (u.max() - u.min()).item(), (u - size / 2).abs().max().item()


FOVS = torch.linspace(10.0, 80.0, 8).tolist()


def test_dolly_zoom_flat_subject_is_the_textbook_formula():
    flat = torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # width 2, no depth
    for fov in (10.0, 40.0, 90.0):
        d = cameras.dolly_zoom_distance(fov, flat)  # fill = 1: edge to edge
        assert d == pytest.approx(1.0 / math.tan(math.radians(fov) / 2))
        width, _ = _projected_extent(flat, d, fov, 100)
        assert width == pytest.approx(100.0, rel=1e-4)


def test_dolly_zoom_keeps_the_width_of_a_deep_box_and_the_flat_formula_does_not():
    # a box 0.6 wide and 1.2 deep along the view axis: its front face is 0.6 nearer than the origin
    box, size, fill = _box_corners(0.6, 0.4, 1.2), 96, 0.5
    widths, flat_widths = [], []
    for fov in FOVS:
        widths.append(_projected_extent(box, cameras.dolly_zoom_distance(fov, box, fill=fill), fov, size)[0])
        flat_d = 0.5 * 0.6 / (fill * math.tan(math.radians(fov) / 2))  # subject treated as flat at the origin
        flat_widths.append(_projected_extent(box, flat_d, fov, size)[0])
    widths, flat_widths = torch.tensor(widths), torch.tensor(flat_widths)
    spread = ((widths.max() - widths.min()) / widths.mean()).item()
    flat_spread = ((flat_widths.max() - flat_widths.min()) / flat_widths.mean()).item()
    torch.testing.assert_close(widths, torch.full_like(widths, fill * size), rtol=1e-5, atol=0)
    assert spread < 1e-5
    assert flat_spread > 0.5, flat_spread  # the old formula: the box's front balloons at wide angles
    assert flat_widths[-1] > 1.5 * flat_widths[0]


def test_dolly_zoom_front_plane_formula_for_a_box():
    box, fov, fill = _box_corners(0.6, 0.4, 2.0), 50.0, 0.5
    t = fill * math.tan(math.radians(fov) / 2)
    # d = w / (2 T) + h: the front face (h = 1 in front of the origin) sits at the textbook distance
    assert cameras.dolly_zoom_distance(fov, box, fill=fill) == pytest.approx(0.3 / t + 1.0)
    # a wider image (aspect 2) shows twice the angle across: the subject may come closer
    assert cameras.dolly_zoom_distance(fov, box, fill=fill, aspect=2.0) == pytest.approx(0.3 / (2 * t) + 1.0)


@pytest.mark.parametrize("azimuth,elevation", [(0.0, 0.0), (35.0, 20.0), (-120.0, -30.0)])
def test_dolly_zoom_keeps_the_width_of_a_lopsided_subject_from_any_direction(azimuth, elevation):
    gen = torch.Generator().manual_seed(0)
    cloud = (torch.rand(200, 3, generator=gen) - 0.5) * torch.tensor([0.5, 0.8, 2.0])  # deep, off-centre
    cloud = torch.cat([cloud + torch.tensor([0.1, 0.0, 0.2]), torch.tensor([[0.3, 0.1, 1.5]])])  # + a "snout"
    widths, halves = [], []
    for fov in FOVS:
        d = cameras.dolly_zoom_distance(fov, cloud, fill=0.4, azimuth=azimuth, elevation=elevation)
        width, half = _projected_extent(cloud, d, fov, 64, azimuth, elevation)
        widths.append(width)
        halves.append(half)
    torch.testing.assert_close(torch.tensor(widths), torch.full((len(FOVS),), 0.4 * 64), rtol=1e-6, atol=0)
    assert max(halves) - min(halves) > 0.5  # lopsided: the left and right parts change, their sum does not


def test_dolly_zoom_rejects_bad_arguments():
    box = _box_corners(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="fov"):
        cameras.dolly_zoom_distance(180.0, box)
    with pytest.raises(ValueError, match="fill"):
        cameras.dolly_zoom_distance(40.0, box, fill=0.0)
    with pytest.raises(ValueError, match="points"):
        cameras.dolly_zoom_distance(40.0, torch.zeros(0, 3))
    with pytest.raises(ValueError, match="pass between"):  # all of it right of the view axis
        cameras.dolly_zoom_distance(40.0, box + torch.tensor([1.0, 0.0, 0.0]))


def test_random_orbit_angles_ranges_and_determinism():
    az, el = cameras.random_orbit_angles(64, (-10.0, 50.0), torch.Generator().manual_seed(0))
    assert az.shape == el.shape == (64,)
    assert az.min() >= 0 and az.max() < 360 and el.min() >= -10 and el.max() <= 50
    assert az.std() > 50 and el.std() > 8  # spread over the ranges, not stuck at one end
    again = cameras.random_orbit_angles(64, (-10.0, 50.0), torch.Generator().manual_seed(0))
    assert torch.equal(az, again[0]) and torch.equal(el, again[1])


def test_random_orbit_angles_area_uniform_and_numpy_streams():
    import numpy as np
    g = torch.Generator().manual_seed(1)
    _, el = cameras.random_orbit_angles(20000, (0.0, 90.0), g, area_uniform=True)
    # area-uniform on the upper hemisphere: sin(elevation) is uniform, so half the cameras lie below 30 degrees
    assert abs((el < 30.0).float().mean().item() - 0.5) < 0.02 and el.min() >= 0 and el.max() <= 90
    _, flat = cameras.random_orbit_angles(20000, (0.0, 90.0), torch.Generator().manual_seed(1))
    assert abs((flat < 30.0).float().mean().item() - 1 / 3) < 0.02  # uniform in degrees
    az, el = cameras.random_orbit_angles(5, (20.0, 30.0), np.random.default_rng(3))
    rng = np.random.default_rng(3)  # the numpy path draws exactly as a dataset writer would, in float64
    assert az.dtype == torch.float64 and np.array_equal(az.numpy(), rng.uniform(0, 360, 5))
    assert np.array_equal(el.numpy(), rng.uniform(20, 30, 5))
    with pytest.raises(ValueError, match="elevation_range"):
        cameras.random_orbit_angles(3, (40.0, 10.0))


def test_pixel_intrinsics_is_the_fov_matrix():
    K = cameras.pixel_intrinsics(50.0, 32.0, 24.0)
    assert K.dtype == torch.float32 and K.tolist() == [[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0.0, 0.0, 1.0]]
    assert cameras.pixel_intrinsics(50.0, 32.0, 24.0, fy=40.0)[1, 1] == 40.0
    f = 24.0 / math.tan(math.radians(30.0))
    assert torch.equal(cameras.intrinsics_from_fov(60.0, (48, 64)), cameras.pixel_intrinsics(f, 32.0, 24.0))
    with pytest.raises(ValueError, match="positive"):
        cameras.pixel_intrinsics(0.0, 1.0, 1.0)
