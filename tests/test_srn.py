"""The SRN layout: write -> read, resizing, a hand-written folder as real SRN cars have it, errors,
and the deterministic procedural writer with its depth extension."""
import numpy as np
import pytest
import torch
from PIL import Image

from lib import cameras
from lib.data.srn import (SRN_FAR, SRN_NEAR, SRNDataset, list_srn_objects, load_srn_object, load_srn_split,
                          srn_intrinsics, write_procedural_srn, write_srn_object)


def _views(v=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    c2w = cameras.orbit_poses(torch.rand(v, generator=g) * 360, torch.rand(v, generator=g) * 60 - 10, 1.3)
    depth = 0.8 + torch.rand(v, size, size, generator=g)
    depth[:, :3] = 0.0  # background rows
    return torch.rand(v, size, size, 3, generator=g), c2w, srn_intrinsics(size), depth


def test_write_read_round_trip(tmp_path):
    images, c2w, K, depth = _views()
    folder = write_srn_object(tmp_path / "train" / "obj", images, c2w, K, depth)
    assert (folder / "intrinsics.txt").read_text() == "16.406250 8.000000 8.000000 0.\n0. 0. 0.\n1.\n16 16\n"
    obj = load_srn_object(folder)
    assert obj["names"] == ["000000", "000001", "000002", "000003"] and obj["object"] == "obj"
    assert obj["images"].dtype == torch.float32 and obj["images"].shape == images.shape
    assert (obj["images"] - images).abs().max() <= 0.5 / 255 + 1e-6
    assert torch.equal(obj["c2w"], c2w)  # 9 significant digits: float32-exact
    torch.testing.assert_close(obj["K"], K, rtol=0, atol=1e-6)
    assert (obj["depth"] - depth).abs().max() <= 0.5e-3 + 1e-6 and (obj["depth"][:, :3] == 0).all()
    raw = np.asarray(Image.open(folder / "depth" / "000001.png"))
    assert raw.dtype == np.uint16 and raw[5, 7] == round(depth[1, 5, 7].item() * 1000)


def test_no_depth_folder_means_none(tmp_path):
    images, c2w, K, _ = _views(2)
    assert load_srn_object(write_srn_object(tmp_path / "o", images, c2w, K))["depth"] is None


@pytest.mark.parametrize("size", [8, (8, 12), (24, 20)])
def test_resize_scales_K(tmp_path, size):
    images, c2w, K, depth = _views(2, size=16)
    obj = load_srn_object(write_srn_object(tmp_path / "o", images, c2w, K, depth), image_size=size)
    h, w = (size, size) if isinstance(size, int) else size
    assert obj["images"].shape == (2, h, w, 3) and obj["depth"].shape == (2, h, w)
    expect = torch.tensor([[K[0, 0] * w / 16, 0, w / 2], [0, K[1, 1] * h / 16, h / 2], [0, 0, 1.0]])
    torch.testing.assert_close(obj["K"], expect)
    # a world point lands at the same relative image position before and after resizing
    uv16, _ = cameras.project(torch.tensor([[0.1, 0.2, -0.1]]), c2w[0], K)
    uv, _ = cameras.project(torch.tensor([[0.1, 0.2, -0.1]]), c2w[0], obj["K"])
    torch.testing.assert_close(uv / torch.tensor([w, h]), uv16 / 16)


def test_real_srn_layout_by_hand(tmp_path):
    """A folder exactly as srn_cars has it: 128 px RGBA PNGs, the SRN intrinsics text, a pose on 4 lines."""
    folder = tmp_path / "cars_train" / "1a0bc9ab92c915167ae33d942430658c"
    (folder / "rgb").mkdir(parents=True)
    (folder / "pose").mkdir()
    (folder / "intrinsics.txt").write_text("131.250000 64.000000 64.000000 0.\n0. 0. 0.\n1.\n128 128\n")
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[..., :3] = (200, 40, 10)
    rgba[:, :64, 3] = 255
    rgba[:, 64:96, 3] = 0
    rgba[:, 96:, 3] = 51
    Image.fromarray(rgba, "RGBA").save(folder / "rgb" / "000000.png")
    Image.fromarray(rgba[..., :3].copy(), "RGB").save(folder / "rgb" / "000001.png")
    pose = "-0.9 0.0 0.4358898943540674 -0.5666568626602876\n0.0 -1.0 0.0 0.0\n" \
           "0.4358898943540674 0.0 0.9 -1.17\n0.0 0.0 0.0 1.0\n"
    (folder / "pose" / "000000.txt").write_text(pose)
    (folder / "pose" / "000001.txt").write_text(pose.replace("\n", " "))
    obj = load_srn_object(folder)
    torch.testing.assert_close(obj["K"], torch.tensor([[131.25, 0, 64], [0, 131.25, 64], [0, 0, 1.0]]))
    expect = torch.tensor([float(x) for x in pose.split()]).reshape(4, 4)
    torch.testing.assert_close(obj["c2w"], expect.expand(2, 4, 4))
    assert obj["c2w"][0, :3, 3].norm().item() == pytest.approx(1.3, abs=1e-5)  # SRN cameras: radius 1.3
    img = obj["images"][0]
    torch.testing.assert_close(img[0, 0], torch.tensor([200, 40, 10]) / 255.0)
    torch.testing.assert_close(img[0, 70], torch.ones(3))  # transparent -> white
    torch.testing.assert_close(img[0, 100], (torch.tensor([200, 40, 10]) / 255.0) * 0.2 + 0.8)
    torch.testing.assert_close(obj["images"][1, 0, 100], torch.tensor([200, 40, 10]) / 255.0)
    assert obj["depth"] is None
    assert load_srn_split(tmp_path, "cars_train")["K"].shape == (1, 3, 3)


def test_errors_name_the_file(tmp_path):
    images, c2w, K, depth = _views(3)
    folder = write_srn_object(tmp_path / "train" / "car_a", images, c2w, K, depth)
    (folder / "pose" / "000001.txt").unlink()
    with pytest.raises(ValueError, match=r"rgb/000001\.png has no pose: expected .*pose/000001\.txt"):
        load_srn_object(folder)
    (folder / "pose" / "000001.txt").write_text("1 0 0 0  0 1 0 0  0 0 1 0  0 0 0")
    with pytest.raises(ValueError, match=r"000001\.txt: expected 16 numbers .* got 15"):
        load_srn_object(folder)
    (folder / "pose" / "000001.txt").write_text("2 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1")
    with pytest.raises(ValueError, match=r"000001\.txt.*not orthonormal"):
        load_srn_object(folder)
    (folder / "pose" / "000001.txt").write_text(" ".join(map(str, c2w[1].reshape(-1).tolist())))
    (folder / "depth" / "000002.png").unlink()
    with pytest.raises(ValueError, match=r"000002\.png has no depth map"):
        load_srn_object(folder)
    Image.fromarray(np.zeros((16, 16), np.uint16)).save(folder / "depth" / "000002.png")
    (folder / "intrinsics.txt").write_text("131.25 64 64\n0. 0. 0.\n1.\n128 128\n")
    with pytest.raises(ValueError, match=r"intrinsics\.txt line 1: expected 'f cx cy 0\.'"):
        load_srn_object(folder)
    (folder / "intrinsics.txt").write_text("131.25 64 64 0.\n0. 0. 0.\n1.\n128 x\n")
    with pytest.raises(ValueError, match=r"intrinsics\.txt line 4: expected 'H W'"):
        load_srn_object(folder)
    (folder / "intrinsics.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"intrinsics\.txt does not exist"):
        load_srn_object(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty holds no SRN objects"):
        list_srn_objects(tmp_path, "empty")
    with pytest.raises(FileNotFoundError, match=r"nosplit does not exist"):
        SRNDataset(tmp_path, "nosplit")


def test_split_needs_equal_view_counts(tmp_path):
    for name, v in (("a", 3), ("b", 2)):
        images, c2w, K, _ = _views(v)
        write_srn_object(tmp_path / "train" / name, images, c2w, K)
    with pytest.raises(ValueError, match=r"train/b: \(2, 16, 16, 3\).*but a has \(3, 16, 16, 3\)"):
        load_srn_split(tmp_path, "train")
    assert load_srn_split(tmp_path, "train", max_objects=1)["images"].shape == (1, 3, 16, 16, 3)
    ds = SRNDataset(tmp_path, "train", image_size=8)
    assert len(ds) == 2 and ds[1]["images"].shape == (2, 8, 8, 3)


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_procedural_is_deterministic_and_splits_differ(tmp_path):
    kwargs = dict(n_objects=2, n_views=3, image_size=16, seed=5, categories=("car", "chair"))
    a = _tree_bytes(write_procedural_srn(tmp_path / "a", "train", **kwargs))
    b = _tree_bytes(write_procedural_srn(tmp_path / "b", "train", **kwargs))
    assert a == b and "train/chair_00001/depth/000002.png" in a
    test = load_srn_split(write_procedural_srn(tmp_path / "a", "test", **kwargs), "test")
    train = load_srn_split(tmp_path / "a", "train")
    assert not torch.equal(test["images"], train["images"]) and not torch.equal(test["c2w"], train["c2w"])
    info = tmp_path / "a" / "train" / "srn_procedural.json"
    stamp = info.stat().st_mtime_ns
    write_procedural_srn(tmp_path / "a", "train", **kwargs)  # finished split: not written again
    assert info.stat().st_mtime_ns == stamp


def test_procedural_geometry_is_consistent(tmp_path):
    """Depth in SRN's [near, far]; unprojected depth lies inside the object's sphere of radius 0.5;
    background pixels are white; cameras at radius 1.3 with SRN's focal length."""
    root = write_procedural_srn(tmp_path, "train", n_objects=2, n_views=4, image_size=24, seed=1)
    data = load_srn_split(root, "train")
    assert data["names"] == ["car_00000", "car_00001"]
    depth, images, c2w, K = data["depth"], data["images"], data["c2w"], data["K"]
    torch.testing.assert_close(K[0], srn_intrinsics(24))
    torch.testing.assert_close(c2w[..., :3, 3].norm(dim=-1), torch.full((2, 4), 1.3))
    fg = depth > 0
    assert 0.05 < fg.float().mean() < 0.6
    assert depth[fg].min() >= SRN_NEAR and depth[fg].max() <= SRN_FAR
    assert (images[~fg] > 0.99).float().mean() > 0.9  # background white (edges antialiased)
    assert (images[fg] < 0.99).any(-1).float().mean() > 0.9
    for o in range(2):
        for v in range(4):
            pts = cameras.unproject_depth(depth[o, v], c2w[o, v], K[o])
            assert pts.norm(dim=-1).max() <= 0.5 + 2e-3
    # camera directions: mostly above the object, elevation within [-15, 75] degrees
    elevation = torch.rad2deg(torch.asin(c2w[..., 1, 3] / 1.3))
    assert (elevation >= -15 - 1e-3).all() and (elevation <= 75 + 1e-3).all()


def test_procedural_fov_and_bad_arguments(tmp_path):
    root = write_procedural_srn(tmp_path, "t", n_objects=1, n_views=1, image_size=8, fov=40.0)
    torch.testing.assert_close(load_srn_object(root / "t" / "car_00000")["K"], cameras.intrinsics_from_fov(40.0, 8))
    with pytest.raises(ValueError, match="unknown categories"):
        write_procedural_srn(tmp_path, "t", 1, 1, 8, categories=("boat",))
    with pytest.raises(ValueError, match="fx == fy"):
        write_srn_object(tmp_path / "x", torch.zeros(1, 4, 6, 3), cameras.orbit_poses(1, 10.0, 1.3),
                         torch.tensor([[5.0, 0, 3], [0, 6.0, 2], [0, 0, 1]]))
