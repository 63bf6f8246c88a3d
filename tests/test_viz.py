"""lib.viz.turntable and save_video: the orbit it renders, batched and side-by-side renders, dict
outputs, GIF/MP4 writing, and the errors."""
import imageio.v3 as iio
import pytest
import torch

from lib import cameras
from lib.viz import save_video, turntable


def _camera_colour(c2w):
    """An (H, W, 3) image whose colour encodes the camera centre: (x, y, z) / 4 + 0.5."""
    return (c2w[:3, 3] / 4 + 0.5).expand(6, 8, 3)


def test_frames_follow_the_orbit_poses():
    frames = turntable(_camera_colour, n_frames=6, elevation=30.0, distance=2.0, target=(0.1, 0.2, 0.3))
    eyes = cameras.orbit_poses(6, 30.0, 2.0, (0.1, 0.2, 0.3))[:, :3, 3]
    assert frames.shape == (6, 6, 8, 3) and frames.dtype == torch.float32
    torch.testing.assert_close(frames[:, 0, 0], eyes / 4 + 0.5)


def test_batched_render_gives_the_same_frames_and_lists_go_side_by_side():
    one_by_one = turntable(_camera_colour, n_frames=5)
    batched = turntable(lambda c2w: torch.stack([_camera_colour(c) for c in c2w]), n_frames=5, batched=True)
    assert torch.equal(one_by_one, batched)
    pair = turntable([_camera_colour, lambda c2w: torch.zeros(6, 3, 3)], n_frames=5)
    assert pair.shape == (5, 6, 11, 3)
    assert torch.equal(pair[:, :, :8], one_by_one) and (pair[:, :, 8:] == 0).all()


def test_dict_outputs_are_stacked_per_key(tmp_path):
    out = turntable(lambda c2w: {"rgb": _camera_colour(c2w), "depth": c2w[:3, 3].norm().expand(6, 8)},
                    n_frames=4, distance=3.0, path=tmp_path / "clip.gif")
    assert out["rgb"].shape == (4, 6, 8, 3) and out["depth"].shape == (4, 6, 8)
    torch.testing.assert_close(out["depth"], torch.full((4, 6, 8), 3.0))
    assert iio.imread(tmp_path / "clip.gif").shape[0] == 4  # the "rgb" entry was written


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_path_writes_every_frame(tmp_path, suffix):
    frames = turntable(lambda c2w: (c2w[:3, 3] / 4 + 0.5).expand(16, 16, 3), n_frames=8, path=tmp_path / f"t{suffix}")
    back = iio.imread(tmp_path / f"t{suffix}")
    assert back.shape[0] == 8 and back.shape[1:3] == (16, 16)
    torch.testing.assert_close(torch.from_numpy(back[..., :3].copy()).float() / 255, frames.clamp(0, 1),
                               atol=0.05, rtol=0)  # written clipped to [0, 1]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="callable"):
        turntable("not a renderer")
    with pytest.raises(ValueError, match="n_frames"):
        turntable(_camera_colour, n_frames=0)
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        turntable(lambda c2w: torch.zeros(4, 4), n_frames=3)  # an image without channels
    with pytest.raises(ValueError, match="one height"):
        turntable([_camera_colour, lambda c2w: torch.zeros(5, 8, 3)], n_frames=2)
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        save_video(torch.zeros(2, 4, 4, 3), tmp_path / "clip.avi")


def test_image_grid_gives_every_map_a_colour_bar():
    import matplotlib
    matplotlib.use("Agg")
    from lib.viz import image_grid

    fig = image_grid([torch.rand(8, 8, 3), torch.rand(8, 8), torch.rand(8, 8, 3)], ["rgb", "depth", "rgb"])
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and len(fig.axes) == 4
