"""lib.data.blender and lib.data.still_life: the procedural scene in the Blender format, convention
conversion on load and write, bad folders (missing image, malformed or incomplete json, mixed
sizes), PyTorch3D NeRF files."""
import json
import math
import shutil

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lib import cameras
from lib.data.blender import (BlenderFormatError, blender_to_lib, lib_to_blender, load_blender,
                              load_pytorch3d_nerf, write_blender_split)
from lib.data.still_life import (SCENE_BOUNDS, _scene_params, _scene_sdfs, render_scene, scene_points, scene_poses,
                                 write_blender_scene)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_blender_scene(tmp_path_factory.mktemp("scene"), seed=3, n_train=4, n_val=1, n_test=2,
                               image_size=24)


def _copy(scene, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(scene, dst)
    return dst


def test_layout_and_shapes(scene):
    for split, n in (("train", 4), ("val", 1), ("test", 2)):
        d = load_blender(scene, split)
        assert d["images"].shape == (n, 24, 24, 3) and d["alpha"].shape == (n, 24, 24)
        assert d["c2w"].shape == (n, 4, 4) and d["K"].shape == (3, 3)
        assert (d["near"], d["far"]) == (2.0, 6.0)
        cameras.check_pose(d["c2w"])
    assert (scene / "train" / "r_0.png").is_file()
    meta = json.loads((scene / "transforms_train.json").read_text())
    assert set(meta) >= {"camera_angle_x", "frames"} and meta["frames"][0]["file_path"] == "./train/r_0"


def test_deterministic_from_seed(tmp_path):
    a = write_blender_scene(tmp_path / "a", seed=1, n_train=2, n_val=1, n_test=1, image_size=16)
    b = write_blender_scene(tmp_path / "b", seed=1, n_train=2, n_val=1, n_test=1, image_size=16)
    c = write_blender_scene(tmp_path / "c", seed=2, n_train=2, n_val=1, n_test=1, image_size=16)
    ia, ib, ic = (load_blender(p)["images"] for p in (a, b, c))
    assert torch.equal(ia, ib) and not torch.equal(ia, ic)


def test_pose_round_trip():
    c2w = scene_poses(5, "train", seed=0)
    torch.testing.assert_close(blender_to_lib(lib_to_blender(c2w)), c2w)
    torch.testing.assert_close(lib_to_blender(blender_to_lib(c2w)), c2w)


def test_pose_convention_on_load_hand_built(tmp_path):
    """A Blender camera written by hand (OpenGL axes, z-up world), 4 units along -y looking at
    the origin: the origin lands at the image centre and Blender's +z (up) appears above it."""
    M = [[1, 0, 0, 0], [0, 0, -1, -4], [0, 1, 0, 0], [0, 0, 0, 1]]  # x right, y_cam = +z, z_cam (back) = -y
    (tmp_path / "train").mkdir()
    iio.imwrite(tmp_path / "train" / "r_0.png", np.zeros((20, 20, 4), np.uint8))
    meta = {"camera_angle_x": 0.5, "frames": [{"file_path": "./train/r_0", "transform_matrix": M}]}
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    d = load_blender(tmp_path)
    c2w, K = d["c2w"][0], d["K"]
    uv, depth = cameras.project(torch.tensor([[0.0, 0.0, 0.0]]), c2w, K)
    torch.testing.assert_close(uv, torch.tensor([[10.0, 10.0]]))
    torch.testing.assert_close(depth, torch.tensor([4.0]))
    f = 10.0 / math.tan(0.25)
    up_right = torch.tensor([[0.5, 0.5, 0.0]])  # Blender's (0.5, 0, 0.5) in lib's y-up world
    uv, _ = cameras.project(up_right, c2w, K)
    torch.testing.assert_close(uv, torch.tensor([[10 + f * 0.5 / 4, 10 - f * 0.5 / 4]]))


def test_loaded_cameras_see_what_was_rendered(scene):
    """The loaded (converted) poses are the lib poses the scene was rendered from, and rendering
    again from the *loaded* camera reproduces the stored images (up to 8-bit rounding): every
    3D point projects where it was rendered."""
    d = load_blender(scene, "train", background="black")
    torch.testing.assert_close(d["c2w"], scene_poses(4, "train", seed=3), atol=1e-6, rtol=0)
    again = render_scene(d["c2w"], d["K"], 24, seed=3)
    torch.testing.assert_close(again[..., 3], d["alpha"], atol=1 / 255, rtol=0)
    torch.testing.assert_close(again[..., :3] * again[..., 3:], d["images"], atol=1.5 / 255, rtol=0)
    # and a point of the scene (the ball's centre) is in front of every camera, inside the image
    uv, depth = cameras.project(_scene_params(3)["ball_c"][None].expand(1, 3), d["c2w"][0], d["K"])
    assert 0 < uv.min() and uv.max() < 24 and 2.0 < depth.item() < 6.0


def test_resize_scales_intrinsics(scene):
    full, half = load_blender(scene), load_blender(scene, image_size=12)
    assert half["images"].shape[1:3] == (12, 12)
    torch.testing.assert_close(half["K"][:2], full["K"][:2] / 2)


def test_backgrounds(scene):
    white, black = load_blender(scene, background="white"), load_blender(scene, background="black")
    empty = white["alpha"] == 0
    assert empty.any() and (white["images"][empty] == 1).all() and (black["images"][empty] == 0).all()
    with pytest.raises(ValueError, match="background"):
        load_blender(scene, background="green")


def test_written_split_loads_back_with_its_bounds(tmp_path):
    """write_blender_split is load_blender's inverse: poses, images, near/far and the scene box
    (given and returned in lib's y-up world, stored in Blender's z-up one) come back."""
    c2w = scene_poses(3, "val", seed=1)
    rgba = torch.rand(3, 10, 12, 4, generator=torch.Generator().manual_seed(0))
    write_blender_split(tmp_path, "val", rgba, c2w, 0.8, near=1.5, far=4.5, scene_bounds=SCENE_BOUNDS,
                        extra={"note": "test"})
    d = load_blender(tmp_path, "val", background="black")
    torch.testing.assert_close(d["c2w"], c2w, atol=1e-6, rtol=0)
    torch.testing.assert_close(d["alpha"], rgba[..., 3], atol=0.5 / 255, rtol=0)
    assert (d["near"], d["far"]) == (1.5, 4.5) and d["images"].shape == (3, 10, 12, 3)
    torch.testing.assert_close(d["scene_bounds"], torch.tensor(SCENE_BOUNDS))
    assert json.loads((tmp_path / "transforms_val.json").read_text())["note"] == "test"
    with pytest.raises(ValueError, match="split"):
        write_blender_split(tmp_path, "training", rgba, c2w, 0.8)


def test_view_dependent_highlight_changes_with_viewpoint():
    """With specular=0 the ball's colour at a surface point is the same from two views; with a
    highlight it differs: render the same point from two cameras and compare."""
    K = cameras.intrinsics_from_fov(40.0, 32)
    poses = cameras.orbit_poses(torch.tensor([0.0, 60.0]), elevation=30.0, distance=4.0)
    diffuse = render_scene(poses, K, 32, specular=0.0)
    glossy = render_scene(poses, K, 32, specular=1.0)
    assert (glossy[..., :3] - diffuse[..., :3]).abs().amax() > 0.2  # highlights exist
    assert torch.equal(glossy[..., 3], diffuse[..., 3])


# ------------------------------------------------------------------------ bad folders
def test_scene_points_lie_on_the_surfaces_and_are_seen():
    points, colors = scene_points(500, seed=3)
    assert points.shape == colors.shape == (500, 3) and ((colors >= 0) & (colors <= 1)).all()
    assert _scene_sdfs(points, _scene_params(3)).min(-1).values.abs().max() < 2e-3  # on a surface
    lo, hi = torch.tensor(SCENE_BOUNDS)
    assert ((points >= lo - 1e-3) & (points <= hi + 1e-3)).all()
    # every object gets points (not only the table), and the same seed gives the same cloud
    assert len(set(_scene_sdfs(points, _scene_params(3)).argmin(-1).tolist())) == 4
    torch.testing.assert_close(scene_points(500, seed=3)[0], points)
    with pytest.raises(ValueError, match="n must be >= 1"):
        scene_points(0)


def test_missing_image_is_named(scene, tmp_path):
    root = _copy(scene, tmp_path)
    (root / "train" / "r_2.png").unlink()
    with pytest.raises(BlenderFormatError, match=r"frame 2 names './train/r_2'.*r_2\.png does not exist"):
        load_blender(root)


def test_malformed_json_is_named(scene, tmp_path):
    root = _copy(scene, tmp_path)
    (root / "transforms_train.json").write_text('{"camera_angle_x": 0.7, "frames": [')
    with pytest.raises(BlenderFormatError, match=r"transforms_train\.json is not valid JSON"):
        load_blender(root)


@pytest.mark.parametrize("edit,match", [
    (lambda m: m.pop("camera_angle_x"), "missing key 'camera_angle_x'"),
    (lambda m: m.pop("frames"), "missing key 'frames'"),
    (lambda m: m.update(frames=[]), "'frames' must be a non-empty list"),
    (lambda m: m["frames"][1].pop("transform_matrix"), "frame 1 must have 'file_path' and 'transform_matrix'"),
    (lambda m: m["frames"][0].update(transform_matrix=[[1, 0, 0], [0, 1, 0], [0, 0, 1]]), "frame 0 .* must be a 4x4"),
])
def test_incomplete_json_is_named(scene, tmp_path, edit, match):
    root = _copy(scene, tmp_path)
    path = root / "transforms_train.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(BlenderFormatError, match=r"transforms_train\.json.*" + match):
        load_blender(root)


def test_missing_json_is_named(tmp_path):
    with pytest.raises(BlenderFormatError, match=r"transforms_val\.json is missing"):
        load_blender(tmp_path, "val")


def test_mixed_sizes_are_named(scene, tmp_path):
    root = _copy(scene, tmp_path)
    iio.imwrite(root / "train" / "r_3.png", np.zeros((20, 24, 4), np.uint8))
    with pytest.raises(BlenderFormatError, match=r"r_3\.png is 24x20 \(WxH\) but r_0\.png is 24x24"):
        load_blender(root)


# ------------------------------------------------------------------ PyTorch3D NeRF files
def test_pytorch3d_nerf_files(tmp_path):
    """Write a .pth/.png pair the way PyTorch3D's NeRF project stores lego (NDC cameras, x left,
    y up, row vectors) for known lib cameras, and check the loader recovers them."""
    n, h, w = 3, 10, 14
    c2w = cameras.orbit_poses(n, elevation=20.0, distance=4.0)
    K = cameras.intrinsics_from_fov(40.0, (h, w))
    w2c = cameras.world_to_camera(c2w)
    flip = torch.tensor([-1.0, -1.0, 1.0])
    R = (flip[:, None] * w2c[:, :3, :3]).transpose(1, 2)  # x_view = x_world @ R + T
    T = flip * w2c[:, :3, 3]
    s = min(h, w) / 2
    focal = torch.tensor([[K[0, 0] / s, K[1, 1] / s]]).expand(n, 2)
    pp = torch.tensor([[(w / 2 - K[0, 2]) / s, (h / 2 - K[1, 2]) / s]]).expand(n, 2)
    torch.save({"cameras": {"R": R, "T": T, "focal_length": focal, "principal_point": pp},
                "split": [[0, 1], [2], [2]]}, tmp_path / "thing.pth")
    images = (np.random.default_rng(0).random((n * h, w, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "thing.png", images)
    d = load_pytorch3d_nerf(tmp_path / "thing.pth")
    assert d["images"].shape == (n, h, w, 3)
    torch.testing.assert_close(d["c2w"], c2w, atol=1e-5, rtol=0)
    torch.testing.assert_close(d["K"], K, atol=1e-4, rtol=0)
    assert d["split"]["train"].tolist() == [0, 1]
    torch.testing.assert_close(d["images"][1], torch.from_numpy(images[h:2 * h]).float() / 255)
    test = load_pytorch3d_nerf(tmp_path / "thing.pth", split="val", image_size=(5, 7))
    assert test["images"].shape == (1, 5, 7, 3)
    torch.testing.assert_close(test["c2w"], c2w[2:], atol=1e-5, rtol=0)
    torch.testing.assert_close(test["K"][:2], K[:2] / 2, atol=1e-4, rtol=0)
    (tmp_path / "thing.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"thing\.png does not exist"):
        load_pytorch3d_nerf(tmp_path / "thing.pth")
