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


def test_masks_get_no_colour_bar_and_vmax_puts_maps_on_one_scale():
    import matplotlib
    matplotlib.use("Agg")
    from lib.viz import image_grid

    fig = image_grid([torch.rand(8, 8) > 0.5, torch.rand(8, 8), 3 * torch.rand(8, 8)], vmax=2.0)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2
    limits = [im.get_clim() for ax in fig.axes[:3] for im in ax.get_images()]
    assert limits == [(0, 1), (0.0, 2.0), (0.0, 2.0)]


def test_on_surface_blanks_the_background_and_divides_by_opacity():
    from lib.viz import colour_map, on_surface

    distance = torch.tensor([[2.0, 1.5], [0.2, 0.0]])
    shown = on_surface(distance, torch.tensor([[1.0, 0.75], [0.4, 0.0]]))
    assert shown[0].tolist() == [2.0, 2.0] and torch.isnan(shown[1]).all()  # 0.2 at opacity 0.4: not a surface
    masked = on_surface(torch.ones(2, 3, 1), torch.tensor([[True, False, True]] * 2))
    assert masked.shape == (2, 3) and torch.isnan(masked[:, 1]).all()
    rgb = colour_map(shown)
    assert rgb.shape == (2, 2, 3) and (rgb[1] == 1).all() and not (rgb[0] == 1).all()  # NaN: white
    with pytest.raises(ValueError, match="same map"):
        on_surface(torch.ones(4, 4), torch.ones(4, 5))


def test_busiest_window_finds_the_largest_sum_and_refuses_a_bad_size():
    from lib.images import busiest_window

    m = torch.zeros(10, 12)
    m[7:9, 2:4] = 1.0
    m[0, 11] = 1.5  # a single high value loses to the 2 x 2 block of ones
    rows, cols = busiest_window(m, 3)
    assert m[rows, cols].sum() == 4.0 and m[rows, cols].shape == (3, 3)
    with pytest.raises(ValueError, match="size"):
        busiest_window(m, 11)
