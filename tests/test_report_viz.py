"""lib.report, lib.viz writers and lib.data.capture round trips."""
import json

import numpy as np
import pytest
import torch

from lib import cameras, viz
from lib.cameras import random_orbit_poses
from lib.images import to_uint8
from lib.data.capture import capture, load_capture, save_capture
from lib.primitives import box
from lib.report import Recorder, format_table, load_metrics


def test_recorder_writes_json_and_converts_scalars(tmp_path):
    rec = Recorder(tmp_path / "out")
    assert rec.record("psnr", torch.tensor(21.5)) is None  # a cell ending in record() shows nothing
    assert rec.metrics["psnr"] == 21.5 and type(rec.metrics["psnr"]) is float
    rec.record("count", np.int64(4))
    rec.record("ok", True)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == {"psnr": 21.5, "count": 4, "ok": True}
    assert load_metrics(tmp_path / "out")["count"] == 4
    assert load_metrics(tmp_path / "missing") == {}
    with pytest.raises(ValueError, match="finite"):
        rec.record("loss", float("nan"))
    with pytest.raises(ValueError, match="number"):
        rec.record("loss", [1, 2])
    assert not list((tmp_path / "out").glob(".*.tmp-*"))  # no temporary file left behind


def test_gif_and_mp4_writers_round_trip(tmp_path):
    import imageio.v3 as iio

    frames = torch.rand(5, 20, 24, 3)
    gif = viz.save_gif(frames, tmp_path / "a.gif", fps=10)
    assert iio.imread(gif, index=None).shape[:3] == (5, 20, 24)
    mp4 = viz.save_mp4(frames, tmp_path / "a.mp4", fps=10)
    assert mp4.stat().st_size > 0
    assert iio.imread(viz.save_image(frames[0], tmp_path / "a.png")).shape == (20, 24, 3)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        viz.save_gif(torch.rand(20, 24, 3), tmp_path / "b.gif")
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(torch.full((2, 2, 3), float("nan")))


@pytest.mark.needs_pytorch3d
def test_capture_sees_the_box_surface():
    poses = random_orbit_poses(2, 3.0, generator=torch.Generator().manual_seed(0))
    cap = capture(box(), poses, fov=50.0, image_size=24)
    assert cap["mask"].any() and (cap["depth"][cap["mask"]] > 0).all()
    torch.testing.assert_close(cap["c2w"], poses)
    # Depth lifted from the capture lands on the box surface (|x|, |y| or |z| = 0.5).
    for i in range(2):
        pts = cameras.unproject_depth(cap["depth"][i], cap["c2w"][i], cap["K"], cap["mask"][i])
        assert (pts.abs().amax(1) - 0.5).abs().max() < 0.02


def test_capture_round_trip_and_missing_file(tmp_path):
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(2, 24, 32, generator=gen) > 0.5
    cap = {"rgb": torch.rand(2, 24, 32, 3, generator=gen), "depth": (1 + torch.rand(2, 24, 32, generator=gen)) * mask,
           "mask": mask, "c2w": random_orbit_poses(2, 3.0, generator=gen), "K": cameras.intrinsics_from_fov(50.0, (24, 32))}
    back = load_capture(save_capture(tmp_path / "cap", cap))
    torch.testing.assert_close(back["depth"], cap["depth"])
    assert torch.equal(back["mask"], cap["mask"])
    torch.testing.assert_close(back["rgb"], cap["rgb"], atol=1 / 255, rtol=0)
    torch.testing.assert_close(back["c2w"], cap["c2w"])
    torch.testing.assert_close(back["K"], cap["K"])
    (tmp_path / "cap" / "depth_001.npy").unlink()
    with pytest.raises(FileNotFoundError, match="depth_001.npy"):
        load_capture(tmp_path / "cap")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from lib.fileio import atomic_write

    target = atomic_write(tmp_path / "a.json", lambda p: p.write_text("good"))

    def crash(p):
        p.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_format_table_aligns_columns_and_rounds_floats():
    text = format_table([{"rotation": "0°", "accuracy": 1.0}, {"rotation": "random SO(3)", "accuracy": 0.51234}])
    lines = text.splitlines()
    assert lines[0].split() == ["rotation", "accuracy"]
    assert lines[2].split() == ["random", "SO(3)", "0.512"]
    assert len({len(line) for line in lines}) == 1  # right-aligned to common widths
    assert format_table([{"a": 1, "b": 2.0}], columns=["b"], digits=1).splitlines() == ["  b", "2.0"]
    assert format_table([]) == "(no rows)"


def test_label_colors_and_point_cloud_grid():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = viz.label_colors(torch.tensor([[0, 1], [2, 1]]))
    assert c.shape == (2, 2, 3) and np.array_equal(c[0, 1], c[1, 1]) and not np.array_equal(c[0, 0], c[0, 1])
    with pytest.raises(ValueError, match="labels must be in"):
        viz.label_colors([0, 99])
    pts = torch.rand(2, 50, 3) - 0.5
    fig = viz.point_cloud_grid(list(pts), [viz.label_colors(torch.zeros(50, dtype=torch.long)), None], ["a", "b"])
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["a", "b"]
    plt.close(fig)


def test_3d_plots_draw_a_right_handed_triad_right_handed():
    """The world's x, y, z axes (right-handed, y up) must be drawn as a right-handed triad with y up
    by every 3D plot: swapping two axes (drawing (x, z, y)) would mirror every shape."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lib.mesh import TriMesh

    triad = torch.eye(3)  # the tips of the world's x, y and z axes

    def check(X, Y, Z, where):
        drawn = np.stack([np.asarray(X, float), np.asarray(Y, float), np.asarray(Z, float)])  # column j: axis j
        assert np.linalg.det(drawn) > 0.5, f"{where}: the triad is drawn left-handed (a mirror image): {drawn}"
        assert np.allclose(drawn[:, 1], [0, 0, 1]), f"{where}: the world's y is not drawn up: {drawn[:, 1]}"

    check(*viz.plot_axes(triad), "plot_axes")
    fig = viz.point_cloud_grid([triad])
    check(*fig.axes[0].collections[0]._offsets3d, "point_cloud_grid")
    plt.close(fig)
    d = viz.plotly_points(triad).data[0]
    check(d.x, d.y, d.z, "plotly_points")
    mesh = TriMesh(verts=triad, faces=torch.tensor([[0, 1, 2]]))
    d = viz.plotly_mesh(mesh).data[0]
    check(d.x, d.y, d.z, "plotly_mesh")
