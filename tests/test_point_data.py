"""lib.data.point_clouds: the assignment-5 layout, its procedural writer and its checked reader."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from lib.data import point_clouds as pc
from lib.data import sources
from lib.data.download import resolve_url

SMALL = dict(n_train=3, n_test=2, n_seg_train=3, n_seg_test=2, num_points=200, seed=0)
FILES = ("cls/data_train.npy", "cls/label_train.npy", "cls/data_test.npy", "cls/label_test.npy",
         "seg/data_train.npy", "seg/label_train.npy", "seg/data_test.npy", "seg/label_test.npy")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return pc.write_procedural_point_data(tmp_path_factory.mktemp("a5") / "root", **SMALL)


def _write_split(root, task, split, points, labels):
    (root / task).mkdir(parents=True, exist_ok=True)
    np.save(root / task / f"data_{split}.npy", points)
    np.save(root / task / f"label_{split}.npy", labels)
    return root


def _cls(root, points=None, labels=None, split="train"):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(4, 20, 3)).astype(np.float32) if points is None else points
    labels = np.array([0, 1, 2, 1]) if labels is None else labels
    return _write_split(root, "cls", split, points, labels)


def _seg(root, points=None, labels=None, split="train"):
    rng = np.random.default_rng(1)
    points = rng.normal(size=(3, 20, 3)).astype(np.float32) if points is None else points
    labels = rng.integers(0, 6, size=(3, 20)) if labels is None else labels
    return _write_split(root, "seg", split, points, labels)


# ----------------------------------------------------------------------------- writer + reader
def test_round_trip(small):
    assert sorted(str(p.relative_to(small)) for p in small.rglob("*.npy")) == sorted(FILES)
    for split, per_class in (("train", 3), ("test", 2)):
        raw = np.load(small / "cls" / f"data_{split}.npy")
        assert raw.dtype == np.float32 and raw.shape == (3 * per_class, 200, 3)
        assert np.load(small / "cls" / f"label_{split}.npy").dtype == np.int64
        points, labels = pc.load_point_split(small, "cls", split)
        assert points.dtype == torch.float32 and labels.dtype == torch.int64
        assert points.shape == (3 * per_class, 200, 3) and labels.shape == (3 * per_class,)
        assert labels.bincount(minlength=3).tolist() == [per_class] * 3  # every class present
        assert not torch.equal(labels, labels.sort().values)  # rows shuffled, not sorted by class
        centre = (points.amin(1) + points.amax(1)) / 2  # centred at the bounding-box centre
        assert centre.abs().max() < 1e-5 and points.abs().max() < 1.0
        seg_points, seg_labels = pc.load_point_split(small, "seg", split)
        assert seg_points.shape == (per_class, 200, 3) and seg_labels.shape == (per_class, 200)
        assert seg_labels.dtype == torch.int64 and 0 <= seg_labels.min() and seg_labels.max() <= 3
    train, test = pc.load_point_task(small, "cls"), pc.load_point_task(small, "seg")
    clouds = torch.cat([train.train_points, train.test_points, test.train_points, test.test_points])
    for i in range(len(clouds)):  # distinct shape seeds everywhere: no two clouds alike
        for j in range(i):
            assert not torch.allclose(clouds[i], clouds[j], atol=1e-3)
    seg = test
    assert seg.num_classes == 6 and seg.class_names[:4] == pc.PROCEDURAL_PARTS
    assert seg.class_names[4:] == ("part 4", "part 5") and train.class_names == pc.CLS_CLASSES
    assert set(seg.train_labels.unique().tolist()) >= {0, 1, 2}  # seat, back, legs in every chair
    info = json.loads((small / pc.INFO_FILE).read_text())
    assert info["args"] == SMALL


def test_per_shape_scale_varies(small):
    points, labels = pc.load_point_split(small, "cls", "train")
    extent = points.amax(1) - points.amin(1)  # (S, 3)
    vases = extent[labels == 1]
    ratio = vases[:, 0] / vases[:, 1]  # anisotropic scale changes the width/height ratio per shape
    assert ratio.max() - ratio.min() > 1e-3


def test_deterministic_byte_identical(small, tmp_path):
    other = pc.write_procedural_point_data(tmp_path / "again", **SMALL)
    for name in FILES:
        assert (small / name).read_bytes() == (other / name).read_bytes(), name


def test_reuse_and_rewrite(tmp_path):
    args = dict(SMALL, n_train=1, n_test=1, n_seg_train=1, n_seg_test=1, num_points=50)
    root = pc.write_procedural_point_data(tmp_path / "r", **args)
    stamps = {name: os.stat(root / name).st_mtime_ns for name in FILES}
    os.utime(root / FILES[0], ns=(1, 1))  # a rewrite would give this file a fresh mtime
    assert pc.write_procedural_point_data(root, **args) == root
    assert os.stat(root / FILES[0]).st_mtime_ns == 1
    assert all(os.stat(root / n).st_mtime_ns == stamps[n] for n in FILES[1:])
    pc.write_procedural_point_data(root, **dict(args, num_points=60))  # other arguments: rewritten
    assert os.stat(root / FILES[0]).st_mtime_ns != 1
    assert pc.load_point_split(root, "cls", "train")[0].shape == (3, 60, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary folder left behind


def test_refuses_foreign_folder(tmp_path):
    root = _cls(tmp_path / "theirs")
    before = (root / "cls" / "data_train.npy").read_bytes()
    with pytest.raises(ValueError, match="no procedural.json"):
        pc.write_procedural_point_data(root, **SMALL)
    assert (root / "cls" / "data_train.npy").read_bytes() == before
    with pytest.raises(ValueError, match="`num_points`"):
        pc.write_procedural_point_data(tmp_path / "new", num_points=0)


# ----------------------------------------------------------------------------- subsets, dtypes
def test_subset_follows_points(small):
    full_points, full_labels = pc.load_point_split(small, "seg", "train")
    g = torch.Generator().manual_seed(3)
    points, labels = pc.load_point_split(small, "seg", "train", num_points=50, generator=g)
    assert points.shape == (3, 50, 3) and labels.shape == (3, 50)
    for s in range(3):
        # each subset point is a row of the full cloud, and its label is that row's label
        match = (points[s][:, None] == full_points[s][None]).all(-1)  # (50, 200)
        assert (match.sum(1) == 1).all()
        rows = match.float().argmax(1)
        assert rows.unique().numel() == 50  # without replacement
        assert torch.equal(labels[s], full_labels[s][rows])
    assert not torch.equal(points[0], full_points[0][:50])  # a random subset, not the first rows
    again = pc.load_point_split(small, "seg", "train", num_points=50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again[0], points) and torch.equal(again[1], labels)
    a = pc.load_point_task(small, "cls", num_points=20, seed=1)
    b = pc.load_point_task(small, "cls", num_points=20, seed=1)
    assert torch.equal(a.train_points, b.train_points) and torch.equal(a.test_points, b.test_points)
    assert a.train_points.shape == (9, 20, 3)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(a.train_points, pc.load_point_split(small, "cls", "train", 20, g)[0])
    assert torch.equal(a.test_points, pc.load_point_split(small, "cls", "test", 20, g)[0])


def test_float_labels_and_float64_points(tmp_path):
    points = np.random.default_rng(0).normal(size=(4, 20, 3))  # float64
    root = _cls(tmp_path, points=points, labels=np.array([0.0, 1.0, 2.0, 1.0]))
    got, labels = pc.load_point_split(root, "cls", "train")
    assert got.dtype == torch.float32 and torch.allclose(got.double(), torch.from_numpy(points), atol=1e-6)
    assert labels.dtype == torch.int64 and labels.tolist() == [0, 1, 2, 1]
    _seg(root, labels=np.random.default_rng(0).integers(0, 6, (3, 20)).astype(np.int32))
    assert pc.load_point_split(root, "seg", "train")[1].dtype == torch.int64


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("task, kwargs, match", [
    ("cls", dict(points=np.zeros((4, 20, 2), np.float32)), r"data_train\.npy: expected points of shape \(S, P, 3\)"),
    ("cls", dict(points=np.zeros((4, 20), np.float32)), r"data_train\.npy: expected points of shape"),
    ("cls", dict(points=np.zeros((4, 20, 3), np.int64)), r"data_train\.npy: expected float32 or float64.*int64"),
    ("cls", dict(labels=np.array([0, 1, 2])), r"label_train\.npy: expected 4 labels.*found shape \(3,\)"),
    ("cls", dict(labels=np.array([0, 1, 3, 1])), r"label_train\.npy: expected labels in 0\.\.2, found values in 0\.\.3"),
    ("cls", dict(labels=np.array([0, -1, 2, 1])), r"label_train\.npy: expected labels in 0\.\.2"),
    ("cls", dict(labels=np.array([0.0, 1.5, 2.0, 1.0])), r"label_train\.npy: expected integral labels, found 1\.5"),
    ("cls", dict(labels=np.zeros((4, 20), np.int64)), r"label_train\.npy: expected \(S,\), one class per shape"),
    ("seg", dict(labels=np.zeros((3, 19), np.int64)), r"label_train\.npy: expected \(S, P\).*\(3, 20\).*found \(3, 19\)"),
    ("seg", dict(labels=np.full((3, 20), 6)), r"label_train\.npy: expected labels in 0\.\.5"),
    ("seg", dict(labels=np.array(["a"] * 3)), r"label_train\.npy: expected integer labels"),
])
def test_bad_files(tmp_path, task, kwargs, match):
    root = (_cls if task == "cls" else _seg)(tmp_path, **kwargs)
    with pytest.raises(ValueError, match=match):
        pc.load_point_split(root, task, "train")


def test_nan_row_named(tmp_path):
    points = np.zeros((4, 20, 3), np.float32)
    points[2, 7, 1] = np.nan
    root = _cls(tmp_path, points=points)
    with pytest.raises(ValueError, match=r"data_train\.npy: expected finite points.*row \(shape\) 2"):
        pc.load_point_split(root, "cls", "train")
    points[2, 7, 1] = np.inf
    _cls(tmp_path, points=points)
    with pytest.raises(ValueError, match=r"row \(shape\) 2"):
        pc.load_point_split(root, "cls", "train", num_points=20, generator=torch.Generator().manual_seed(0))


def test_bad_arguments(tmp_path):
    root = _cls(tmp_path)
    for n in (21, 0, 2.5):
        with pytest.raises(ValueError, match=r"`num_points` must be an integer in 1\.\.20 .*data_train\.npy"):
            pc.load_point_split(root, "cls", "train", num_points=n)
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        pc.load_point_split(root, "cls", "train", num_points=10)
    with pytest.raises(ValueError, match=r"`task` must be one of \('cls', 'seg'\), got 'part'"):
        pc.load_point_split(root, "part", "train")
    with pytest.raises(ValueError, match=r"`split` must be one of \('train', 'test'\), got 'val'"):
        pc.load_point_split(root, "cls", "val")


def test_missing_file(tmp_path):
    root = _cls(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing .*cls/data_test\.npy; the layout needs"):
        pc.load_point_split(root, "cls", "test")
    (root / "cls" / "label_train.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"label_train\.npy"):
        pc.load_point_split(root, "cls", "train")
    with pytest.raises(FileNotFoundError, match=r"seg/data_train\.npy"):
        pc.load_point_task(root, "seg")


def test_task_point_count_mismatch(tmp_path):
    root = _seg(tmp_path)
    rng = np.random.default_rng(2)
    _seg(root, points=rng.normal(size=(2, 30, 3)), labels=np.zeros((2, 30), np.int64), split="test")
    with pytest.raises(ValueError, match=r"data_test\.npy has 30 points per shape but .*data_train\.npy has 20"):
        pc.load_point_task(root, "seg")
    _seg(root, points=rng.normal(size=(2, 20, 3)), labels=np.zeros((2, 20), np.int64), split="test")
    assert pc.load_point_task(root, "seg").test_points.shape == (2, 20, 3)


# ----------------------------------------------------------------------------- finding, fetching
def test_find_point_data_root(tmp_path):
    _cls(tmp_path / "unzipped" / "data")
    assert pc.find_point_data_root(tmp_path / "unzipped") == tmp_path / "unzipped" / "data"
    assert pc.find_point_data_root(tmp_path / "unzipped" / "data") == tmp_path / "unzipped" / "data"
    with pytest.raises(FileNotFoundError):  # two levels below is too deep
        pc.find_point_data_root(tmp_path)
    (tmp_path / "other" / "a5" / "seg").mkdir(parents=True)
    assert pc.find_point_data_root(tmp_path / "other") == tmp_path / "other" / "a5"
    shutil.rmtree(tmp_path / "other" / "a5" / "seg")
    with pytest.raises(FileNotFoundError, match=r"no cls/ or seg/ folder in .*other"):
        pc.find_point_data_root(tmp_path / "other")


def test_a5_source():
    res = sources.get("a5_point_clouds")
    assert res.filename == "a5_data.zip" and res.extract and res.sha256 is None
    assert "huggingface.co/datasets/learning3dvision/assignment5" in res.manual
    assert resolve_url(res.urls[0]) == \
        "https://huggingface.co/datasets/learning3dvision/assignment5/resolve/main/a5_data.zip"
