"""Point-cloud classification and part segmentation data in the layout of the 16-825 course's
point-cloud assignment (assignment 5), read by one loader whether the files are the assignment's
own (full mode) or written here from the procedural shapes (smoke mode, tests)::

    <root>/cls/data_{train,test}.npy   (N, P, 3) float points (P = 10000 in the assignment)
    <root>/cls/label_{train,test}.npy  (N,) integer class: 0 chair, 1 vase, 2 lamp (CLS_CLASSES)
    <root>/seg/data_{train,test}.npy   (N, P, 3) float points, chairs only
    <root>/seg/label_{train,test}.npy  (N, P) integer part label in 0..5 (SEG_NUM_PARTS = 6)

Objects are y-up and roughly unit-sized. The assignment does not name its six chair parts, so
:data:`SEG_CLASS_NAMES` names only the four that the procedural chairs have
(:data:`PROCEDURAL_PARTS`: seat 0, back 1, legs 2, arms 3, the face labels of
``lib.data.furniture.chair``); labels 4 and 5 ("part 4", "part 5") never occur in procedural data.

The loader accepts labels of any integer dtype, and float labels whose every value is integral
(the assignment's label dtype is not documented); points may be float32 or float64 and are
returned as float32. Labels come back int64, as the assignment's ``.to(torch.long)`` gives them.

Example (CPU, about a second)::

    >>> import tempfile
    >>> root = write_procedural_point_data(tempfile.mkdtemp() + "/a5", n_train=2, n_test=1,
    ...                                    n_seg_train=2, n_seg_test=1, num_points=300)
    >>> points, labels = load_point_split(root, "seg", "train", num_points=100, generator=torch.Generator().manual_seed(0))
    >>> tuple(points.shape), points.dtype, tuple(labels.shape), labels.dtype
    ((2, 100, 3), torch.float32, (2, 100), torch.int64)
    >>> task = load_point_task(root, "cls")
    >>> task.num_classes, tuple(task.train_points.shape), task.class_names
    (3, (6, 300, 3), ('chair', 'vase', 'lamp'))
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CLS_CLASSES = ("chair", "vase", "lamp")
SEG_NUM_PARTS = 6
PROCEDURAL_PARTS = ("seat", "back", "legs", "arms")
SEG_CLASS_NAMES = PROCEDURAL_PARTS + ("part 4", "part 5")
TASKS = ("cls", "seg")
SPLITS = ("train", "test")
INFO_FILE = "procedural.json"
SCALE_RANGE = (0.85, 1.15)  # per-axis random scale of each procedural shape
_LAYOUT = tuple(f"{task}/{kind}_{split}.npy" for task in TASKS for split in SPLITS for kind in ("data", "label"))
_SEED_STRIDE = 1_000_000  # shape seeds of dataset seed s: s * stride + index (index < stride)


def _num_classes(task: str) -> int:
    return len(CLS_CLASSES) if task == "cls" else SEG_NUM_PARTS


# ------------------------------------------------------------------------------------- writer
def _shape_cloud(category: str, shape_seed: int, num_points: int):
    """(P, 3) float32 points (bounding box centred at 0) and (P,) int64 part labels of one shape."""
    from lib.data.shapes import make_shape
    from lib.geometry import sample_surface
    from lib.mesh import TriMesh

    mesh = make_shape(category, shape_seed)
    scale = np.random.default_rng(shape_seed).uniform(*SCALE_RANGE, size=3)
    scaled = TriMesh(mesh.verts * torch.tensor(scale, dtype=mesh.verts.dtype), mesh.faces)
    points, face_idx = sample_surface(scaled, num_points, torch.Generator().manual_seed(shape_seed))
    points = points - (points.amin(0) + points.amax(0)) / 2
    return points.numpy().astype(np.float32), mesh.face_labels[face_idx].numpy().astype(np.int64)


def _shape_seeds(seed: int, counts: dict) -> dict:
    """``{(task, split): [(category, shape_seed), ...]}`` with every shape seed distinct: one running
    index over all blocks (chairs of cls train, cls test, seg train, seg test share no seed)."""
    seeds, index = {}, 0
    for task, split in ((t, s) for t in TASKS for s in SPLITS):
        categories = CLS_CLASSES if task == "cls" else ("chair",)
        block = []
        for category in categories:
            block += [(category, seed * _SEED_STRIDE + index + i) for i in range(counts[task, split])]
            index += counts[task, split]
        seeds[task, split] = block
    if index >= _SEED_STRIDE:
        raise ValueError(f"write_procedural_point_data: at most {_SEED_STRIDE - 1} shapes in all, asked {index}")
    return seeds


def write_procedural_point_data(root, n_train: int = 100, n_test: int = 30, n_seg_train: int = 120,
                                n_seg_test: int = 30, num_points: int = 10000, seed: int = 0) -> Path:
    """Write the assignment's layout (both tasks, see the module docstring) from procedural shapes.

    cls: ``n_train`` / ``n_test`` shapes per class (so ``3 * n_train`` rows), rows shuffled
    deterministically. seg: ``n_seg_train`` / ``n_seg_test`` chairs. Every shape has its own seed
    (train, test, cls and seg never share one). Per shape: ``make_shape(category, shape_seed)``,
    scaled per axis by a factor uniform in [0.85, 1.15] drawn from the shape seed, ``num_points``
    points sampled uniformly by area (``lib.geometry.sample_surface``, CPU generator seeded with the
    shape seed), part label = the sampled face's label, centred at the cloud's bounding-box centre
    (not rescaled). Points float32, labels int64; the same arguments give byte-identical files.

    The layout is written into a temporary sibling folder and renamed onto ``root``
    (``lib.fileio.atomic_folder``). ``root/procedural.json`` records the arguments: a finished
    layout with the same arguments is returned as is; other arguments rewrite it.

    Returns:
        ``root`` as a Path.
    Raises:
        ValueError: a count < 1 (``n_*``, ``num_points``), or ``root`` holds files without
        ``procedural.json`` (not ours: never overwritten).
    """
    from lib.fileio import atomic_folder

    root = Path(root)
    args = {"n_train": n_train, "n_test": n_test, "n_seg_train": n_seg_train, "n_seg_test": n_seg_test,
            "num_points": num_points, "seed": seed}
    for name, value in args.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or (value < 1 and name != "seed"):
            raise ValueError(f"write_procedural_point_data: `{name}` must be an integer"
                             f"{'' if name == 'seed' else ' >= 1'}, got {value!r}")
    args = {k: int(v) for k, v in args.items()}
    info = {"format": "16-825 assignment 5 point clouds (procedural)", "args": args}
    if root.exists():
        if not root.is_dir():
            raise ValueError(f"write_procedural_point_data: `root` {root} is a file, expected a folder")
        info_path = root / INFO_FILE
        if info_path.is_file():
            try:
                old = json.loads(info_path.read_text())
            except ValueError:
                old = None
            if old == info and all((root / f).is_file() for f in _LAYOUT):
                return root
        elif any(root.iterdir()):
            raise ValueError(f"write_procedural_point_data: `root` {root} holds files but no {INFO_FILE}; "
                             "expected an empty or missing folder, or one written by this function "
                             "(refusing to overwrite data that is not ours)")
    counts = {("cls", "train"): n_train, ("cls", "test"): n_test,
              ("seg", "train"): n_seg_train, ("seg", "test"): n_seg_test}
    seeds = _shape_seeds(args["seed"], counts)

    def write(tmp: Path):
        for (task, split), shapes in seeds.items():
            clouds = [_shape_cloud(category, shape_seed, num_points) for category, shape_seed in shapes]
            points = np.stack([c[0] for c in clouds])  # (S, P, 3)
            if task == "cls":
                labels = np.array([CLS_CLASSES.index(category) for category, _ in shapes], dtype=np.int64)
                order = np.random.default_rng([args["seed"], TASKS.index(task), SPLITS.index(split)]
                                              ).permutation(len(shapes))
                points, labels = points[order], labels[order]
            else:
                labels = np.stack([c[1] for c in clouds])  # (S, P)
            (tmp / task).mkdir(exist_ok=True)
            np.save(tmp / task / f"data_{split}.npy", np.ascontiguousarray(points, dtype=np.float32))
            np.save(tmp / task / f"label_{split}.npy", np.ascontiguousarray(labels, dtype=np.int64))
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")

    return atomic_folder(root, write)


# ------------------------------------------------------------------------------------- reader
def _open_split(root, task: str, split: str):
    """Memory-map one split's data and label files and check their shapes and dtypes.

    Returns ``(data, labels, data_path, label_path)``: data (S, P, 3) float, labels (S,) or (S, P)."""
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}, got {task!r}")
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    data_path, label_path = root / task / f"data_{split}.npy", root / task / f"label_{split}.npy"
    for path in (data_path, label_path):
        if not path.is_file():
            raise FileNotFoundError(f"missing {path}; the layout needs <root>/cls/ and <root>/seg/, each with "
                                    "data_train.npy, label_train.npy, data_test.npy, label_test.npy "
                                    "(see find_point_data_root, write_procedural_point_data)")
    data = np.load(data_path, mmap_mode="r", allow_pickle=False)
    labels = np.load(label_path, mmap_mode="r", allow_pickle=False)
    if data.ndim != 3 or data.shape[-1] != 3:
        raise ValueError(f"{data_path}: expected points of shape (S, P, 3), found {data.shape}")
    if data.dtype not in (np.float32, np.float64):
        raise ValueError(f"{data_path}: expected float32 or float64 points, found dtype {data.dtype}")
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise ValueError(f"{label_path}: expected integer labels (or floats holding integers), "
                         f"found dtype {labels.dtype}")
    if labels.ndim == 0 or labels.shape[0] != data.shape[0]:
        raise ValueError(f"{label_path}: expected {data.shape[0]} labels, one per shape of {data_path}, "
                         f"found shape {labels.shape}")
    expected = data.shape[:1] if task == "cls" else data.shape[:2]
    if labels.shape != expected:
        what = "(S,), one class per shape" if task == "cls" else "(S, P), one part per point"
        raise ValueError(f"{label_path}: expected {what} = {expected} to match {data_path} {data.shape}, "
                         f"found {labels.shape}")
    return data, labels, data_path, label_path


def _labels_int64(labels: np.ndarray, path: Path, num_classes: int) -> torch.Tensor:
    """int64 tensor of ``labels``; ValueError naming ``path`` for non-integral or out-of-range values."""
    values = np.asarray(labels)
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            first = np.argwhere(bad)[0]
            raise ValueError(f"{path}: expected integral labels, found {float(values[tuple(first)])} at index "
                             f"{tuple(int(i) for i in first)}")
    if values.size and (values.min() < 0 or values.max() > num_classes - 1):
        raise ValueError(f"{path}: expected labels in 0..{num_classes - 1}, found values in "
                         f"{values.min():g}..{values.max():g}")
    return torch.from_numpy(values.astype(np.int64, copy=False))


def load_point_split(root, task: str, split: str, num_points: int | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one split of one task of the assignment's layout.

    The files are memory-mapped (``np.load(mmap_mode="r", allow_pickle=False)``) and only the
    selected points are read and converted, so a large file is never held twice.

    Args:
        root: the folder holding ``cls/`` and ``seg/`` (see :func:`find_point_data_root`).
        task: "cls" or "seg". split: "train" or "test".
        num_points: None keeps all P points; else each shape keeps its own random subset of this
            many points (without replacement, order random), and seg labels follow their points.
        generator: CPU ``torch.Generator`` for the subsets (required with ``num_points``).
    Returns:
        points: (S, P', 3) float32 (the file's frame), and labels: (S,) int64 class for "cls" or
        (S, P') int64 part for "seg"; P' = num_points or P.
    Raises:
        FileNotFoundError: a file of the layout is missing (the message lists the layout).
        ValueError: bad ``task``/``split``/``num_points``; points not (S, P, 3) float or not finite
        (the first bad row is named); label count, shape, dtype or range wrong (checked on what is
        returned). Each message names the file or argument.
    """
    data, labels, data_path, label_path = _open_split(root, task, split)
    num_shapes, available = data.shape[:2]
    if num_points is None:
        points = np.array(data, dtype=np.float32)
        chosen = np.array(labels)
    else:
        if not isinstance(num_points, (int, np.integer)) or isinstance(num_points, bool) or not (
                1 <= num_points <= available):
            raise ValueError(f"`num_points` must be an integer in 1..{available} (the point count of "
                             f"{data_path}), got {num_points!r}")
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"load_point_split: choosing {num_points} of {available} points needs a torch.Generator "
                             f"(`generator`), got {type(generator).__name__}")
        idx = np.stack([torch.randperm(available, generator=generator)[:num_points].numpy()
                        for _ in range(num_shapes)]) if num_shapes else np.zeros((0, num_points), np.int64)
        rows = np.arange(num_shapes)[:, None]
        points = np.asarray(data[rows, idx], dtype=np.float32)  # (S, num_points, 3)
        chosen = np.array(labels) if task == "cls" else np.asarray(labels[rows, idx])
    for start in range(0, num_shapes, 256):  # in blocks: no (S, P, 3) boolean temporary
        finite = np.isfinite(points[start:start + 256]).reshape(-1, points.shape[1] * 3).all(1)
        if not finite.all():
            raise ValueError(f"{data_path}: expected finite points, found NaN or inf in row (shape) "
                             f"{start + int(np.argmin(finite))}")
    return torch.from_numpy(points), _labels_int64(chosen, label_path, _num_classes(task))


@dataclass(frozen=True)
class PointTask:
    """Both splits of one task.

    Attributes:
        train_points: (S, P, 3) float32. train_labels: (S,) int64 class ("cls") or (S, P) int64 part ("seg").
        test_points, test_labels: likewise for the test split (same P).
        num_classes: 3 ("cls") or 6 ("seg"). class_names: CLS_CLASSES or SEG_CLASS_NAMES.
        root: the folder read.
    """

    train_points: torch.Tensor
    train_labels: torch.Tensor
    test_points: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    class_names: tuple
    root: Path


def load_point_task(root, task: str, num_points: int | None = None, seed: int = 0) -> PointTask:
    """Load the train and test splits of ``task`` ("cls" or "seg") with :func:`load_point_split`;
    the point subsets (``num_points`` not None) come from ``torch.Generator().manual_seed(seed)``,
    train first, then test.

    Raises:
        ValueError: the test file's points per shape differ from the training file's (both files and
        counts named), or anything :func:`load_point_split` rejects.
    """
    train_data, _, train_path, _ = _open_split(root, task, "train")
    test_data, _, test_path, _ = _open_split(root, task, "test")
    if train_data.shape[1] != test_data.shape[1]:
        raise ValueError(f"{test_path} has {test_data.shape[1]} points per shape but {train_path} has "
                         f"{train_data.shape[1]}; expected the same count in both")
    generator = torch.Generator().manual_seed(int(seed))
    train = load_point_split(root, task, "train", num_points, generator)
    test = load_point_split(root, task, "test", num_points, generator)
    return PointTask(*train, *test, num_classes=_num_classes(task),
                     class_names=CLS_CLASSES if task == "cls" else SEG_CLASS_NAMES, root=Path(root))


def find_point_data_root(folder) -> Path:
    """The folder holding ``cls/`` and/or ``seg/``: ``folder`` itself, ``folder/data`` (what the
    assignment's a5_data.zip unzips to), or a folder one level below ``folder``.

    Raises:
        FileNotFoundError: none of those holds ``cls/`` or ``seg/`` (the message lists where it looked).
    """
    folder = Path(folder)
    candidates = [folder, folder / "data"]
    if folder.is_dir():
        candidates += sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "data")
    for candidate in candidates:
        if (candidate / "cls").is_dir() or (candidate / "seg").is_dir():
            return candidate
    raise FileNotFoundError(f"no cls/ or seg/ folder in {folder}, {folder / 'data'} or any folder one level "
                            f"below {folder}; expected the point-cloud layout (cls/data_train.npy, ...)")
