"""The truck-scene reader (learning3d/assignment4 Q1/data/truck): the PyTorch3D NDC conversion checked
against PyTorch3D itself, the split, write -> read, errors, and the pinned download registry."""
import numpy as np
import pytest
import torch

from lib import cameras
from lib import pytorch3d_cameras as p3c
from lib.data import sources
from lib.data.truck import load_truck, truck_split, write_truck_folder
from lib.pytorch3d_cameras import to_pytorch3d_ndc

H, W = 90, 160  # the truck images: 160 x 90 (W x H)


def _random_scene(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    az = torch.rand(n, generator=g) * 360
    el = torch.rand(n, generator=g) * 40 - 10
    c2w = cameras.orbit_poses(az, el, 3.0 + torch.rand(n, generator=g), target=(0.1, -0.2, 0.3))
    f = 80 + 40 * torch.rand(n, 2, generator=g)
    c = torch.tensor([W / 2, H / 2]) + 10 * torch.randn(n, 2, generator=g)
    K = torch.zeros(n, 3, 3)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = f[:, 0], f[:, 1], c[:, 0], c[:, 1], 1.0
    return c2w, K, torch.rand(n, H, W, 3, generator=g), torch.randn(30, 3, generator=g)


def _random_pytorch3d_params(n, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    R = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], 1).reshape(n, 3, 3)
    T = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.3 + torch.tensor([0, 0, 4.0], dtype=torch.float64)
    focal = 1.5 + torch.rand(n, 2, generator=g, dtype=torch.float64)
    pp = 0.2 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return R, T, focal, pp


@pytest.mark.needs_pytorch3d
@pytest.mark.parametrize("image_size", [(H, W), (W, H), (64, 64)])
def test_ndc_conversion_matches_pytorch3d(image_size):
    """Random NDC PerspectiveCameras: our c2w/K + lib.cameras.project land on PyTorch3D's screen pixels."""
    from pytorch3d.renderer import PerspectiveCameras

    n = 6
    R, T, focal, pp = _random_pytorch3d_params(n, seed=sum(image_size))
    cams = PerspectiveCameras(R=R.float(), T=T.float(), focal_length=focal.float(), principal_point=pp.float(),
                              in_ndc=True, image_size=(image_size,) * n)
    g = torch.Generator().manual_seed(1)
    points = torch.randn(40, 3, generator=g) * 0.7
    theirs = cams.transform_points_screen(points.expand(n, -1, -1), image_size=(image_size,) * n)
    c2w, K = p3c.from_pytorch3d_ndc(R, T, focal, pp, image_size)
    uv, depth = cameras.project(points, c2w, K)
    assert (depth > 0.5).all()
    torch.testing.assert_close(uv, theirs[..., :2], rtol=0, atol=1e-3)
    view_z = cams.get_world_to_view_transform().transform_points(points.expand(n, -1, -1))[..., 2]
    torch.testing.assert_close(depth, view_z, rtol=0, atol=1e-4)  # (screen z is PyTorch3D's 1/z)
    # the same through the files: a truck folder written from our cameras reads back as PyTorch3D sees it
    rows = to_pytorch3d_ndc(c2w, K, image_size)
    torch.testing.assert_close(rows[:, :9].reshape(n, 3, 3), R, rtol=0, atol=1e-5)
    torch.testing.assert_close(rows[:, 9:12], T, rtol=0, atol=1e-5)
    torch.testing.assert_close(rows[:, 12:], torch.cat([focal, pp], 1), rtol=0, atol=1e-5)


@pytest.mark.needs_pytorch3d
def test_written_poses_are_what_pytorch3d_projects():
    """write_truck_folder's pose rows, built into PerspectiveCameras exactly as the assignment does,
    project world points where our own cameras do."""
    from pytorch3d.renderer import PerspectiveCameras

    c2w, K, _, _ = _random_scene(5, seed=4)
    points = torch.randn(25, 3) * 0.5
    uv, _ = cameras.project(points, c2w, K)
    for i, row in enumerate(to_pytorch3d_ndc(c2w, K, (H, W)).float()):
        cam = PerspectiveCameras(focal_length=row[12:14][None], principal_point=row[14:16][None],
                                 R=row[:9].reshape(3, 3)[None], T=row[9:12][None], image_size=((H, W),))
        screen = cam.transform_points_screen(points[None], image_size=((H, W),))[0]
        torch.testing.assert_close(screen[:, :2], uv[i], rtol=0, atol=1e-3)


def test_ndc_conversion_by_hand():
    """Identity rotation, a point straight ahead and one 0.5 NDC to the PyTorch3D left (= our left)."""
    c2w, K = p3c.from_pytorch3d_ndc(torch.eye(3), torch.tensor([0.0, 0, 2]), torch.tensor([2.0, 3.0]),
                                        torch.tensor([0.1, -0.2]), (H, W))
    s = min(H, W) / 2
    torch.testing.assert_close(K[0], torch.tensor([[2 * s, 0, W / 2 - 0.1 * s], [0, 3 * s, H / 2 + 0.2 * s],
                                                   [0, 0, 1.0]]))
    # PyTorch3D view axes are x left, y up: our camera is rotated 180 degrees about z
    torch.testing.assert_close(c2w[0, :3, :3], torch.diag(torch.tensor([-1.0, -1.0, 1.0])))
    torch.testing.assert_close(c2w[0, :3, 3], torch.tensor([0.0, 0.0, -2.0]))
    uv, depth = cameras.project(torch.tensor([[0.0, 0, 0], [1.0, 0, 0]]), c2w[0], K[0])
    assert depth.tolist() == [2.0, 2.0]
    # x_ndc = f x / z + p = 2 * 1 / 2 + 0.1 = 1.1 in PyTorch3D: u = W / 2 - 1.1 s (towards the left)
    torch.testing.assert_close(uv[1], torch.tensor([W / 2 - 1.1 * s, H / 2 + 0.2 * s]))


def test_split_of_the_202_frame_scene():
    train, test = truck_split(202)
    assert test.tolist() == [33, 67, 101, 134, 168]
    assert test.tolist() == np.linspace(0, 202, 7)[1:-1].astype(int).tolist()
    assert len(train) == 197 and sorted(train.tolist() + test.tolist()) == list(range(202))
    assert train.dtype == test.dtype == torch.int64
    train, test = truck_split(3)  # tiny: duplicates dropped
    assert test.tolist() == [0, 1, 2] and train.tolist() == []


def test_write_read_round_trip(tmp_path):
    n = 7
    c2w, K, images, points = _random_scene(n)
    root = write_truck_folder(tmp_path / "truck", images, c2w, K, points)
    assert sorted(p.name for p in (root / "poses").iterdir())[0] == "frame000001.npy"
    assert np.load(root / "poses" / "frame000001.npy").shape == (16,)
    scene = load_truck(root)
    assert scene["images"].shape == (n, H, W, 3) and scene["images"].dtype == torch.float32
    assert (scene["images"] - images).abs().max() <= 0.5 / 255 + 1e-6
    torch.testing.assert_close(scene["c2w"], c2w, rtol=0, atol=1e-5)
    torch.testing.assert_close(scene["K"], K, rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(scene["points"], points)
    assert scene["names"][0] == "frame000001" and scene["image_size"] == (H, W)
    assert scene["test_idx"].tolist() == [1, 2, 3, 4, 5] and scene["train_idx"].tolist() == [0, 6]


def test_jpg_folder_reads(tmp_path):
    c2w, K, _, points = _random_scene(2)
    images = torch.full((2, H, W, 3), 0.25)
    load = load_truck(write_truck_folder(tmp_path / "t", images, c2w, K, points, image_format="jpg"))
    assert (load["images"] - 0.25).abs().max() < 3 / 255


def test_errors_name_the_files(tmp_path):
    c2w, K, images, points = _random_scene(3)
    root = write_truck_folder(tmp_path / "t", images, c2w, K, points)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_truck(tmp_path / "nowhere")
    (root / "poses" / "frame000002.npy").unlink()
    with pytest.raises(ValueError, match=r"3 images in imgs/ but 2 poses.*frame000002\.png"):
        load_truck(root)
    np.save(root / "poses" / "frame000002.npy", np.zeros(15))
    with pytest.raises(ValueError, match=r"frame000002\.npy: expected 16 numbers .* got 15"):
        load_truck(root)
    np.save(root / "poses" / "frame000002.npy", np.eye(4).reshape(-1))  # 16 numbers but R = [[1,0,0],[0,1,0],[0,0,0]]
    with pytest.raises(ValueError, match="not orthonormal"):
        load_truck(root)
    np.save(root / "poses" / "frame000002.npy", to_pytorch3d_ndc(c2w[1:2], K[1], (H, W))[0].numpy())
    (root / "points" / "points_30.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"points: expected exactly one points_<M>\.npy"):
        load_truck(root)
    np.save(root / "points" / "points_30.npy", np.zeros((30, 2)))
    with pytest.raises(ValueError, match=r"points_30\.npy: expected \(M, 3\)"):
        load_truck(root)


# ------------------------------------------------------------------------- the download registry
def test_truck_registry_is_pinned_at_the_commit():
    entries = sources.truck_resources()
    assert len(entries) == 405
    paths = [p for p, _ in entries]
    assert sum(p.startswith("imgs/frame") and p.endswith(".jpg") for p in paths) == 202
    assert sum(p.startswith("poses/frame") and p.endswith(".npy") for p in paths) == 202
    assert "points/points_10000.npy" in paths and len(set(paths)) == 405
    base = "https://raw.githubusercontent.com/learning3d/assignment4/4d7fa5f42dd42d87296d63ed550b63b8f349a58c/Q1/data/truck/"
    for path, res in entries:
        assert res.urls == [base + path] and res.filename == path.split("/")[-1]
        assert len(res.sha256) == 64 and res.size > 0 and res.manual
    pose = dict(entries)["poses/frame000001.npy"]
    assert pose.size == 256  # a 128-byte .npy header + 16 float64
    assert dict(entries)["points/points_10000.npy"].size == 240128  # 10000 x 3 float64


def test_fetch_truck_scene_uses_the_cache_layout(tmp_path, monkeypatch):
    """No network: fetch_resource is replaced; each file lands in <cache>/a4_truck/<subfolder>/."""
    calls = []

    def fake_fetch(resource, cache_dir=None, **kwargs):
        calls.append((resource.filename, cache_dir, kwargs))
        return cache_dir / resource.filename

    monkeypatch.setattr(sources, "fetch_resource", fake_fetch)
    root = sources.fetch_truck_scene(cache_dir=tmp_path)
    assert root == tmp_path / "a4_truck" and len(calls) == 405
    dirs = {(name, d.relative_to(root).as_posix()) for name, d, _ in calls}
    assert ("frame000007.jpg", "imgs") in dirs and ("points_10000.npy", "points") in dirs
    assert all(kw.get("progress") is False for _, _, kw in calls)
