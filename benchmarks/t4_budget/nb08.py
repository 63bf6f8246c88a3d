"""Notebook 08 (point clouds): the parts of its full-mode run that cost minutes.

Its real data is the assignment's ``a5_data.zip``: 10 000 points per cloud, three classes
(chair, vase, lamp) for classification, chairs with six part labels for segmentation; the held-out
splits hold ``CLS_TEST`` and ``SEG_TEST`` clouds. Here the clouds are random points of that shape:
a step's cost depends on the batch, the points and the network, not on where the points are.

Every training unit is one step of ``lib.methods.points.train.make_point_step`` (forward, backward, Adam)
with the notebook's network settings (``POINTNET``, ``DGCNN_CLS``, ``DGCNN_SEG``). Evaluation
units are forward passes of 16 clouds (``lib.methods.points.evaluate``'s batch): section 3-5's scores and sweeps
of the four PointNets (seven rotations each at ``N_POINTS``; the point-count sweep of the two
plain ones, ``COUNTS``), and section 6's DGCNN scores; every evaluation is costed with the
segmentation network, whose per-point head makes it the dearer (an upper bound).

Left out (seconds on a T4): the baselines (section 1: a descriptor per cloud, a position prior),
the critical points (three forward passes), the figures, ``seconds_per_step`` (six steps per model).
"""
from __future__ import annotations

import torch

from benchmarks.t4_budget.measure import Part
from lib.models.dgcnn import DGCNN, DGCNNConfig
from lib.models.pointnet import PointNet, PointNetConfig
from lib.methods.points.train import make_point_step

USES_SD = False

CLS_TEST, SEG_TEST = 953, 697  # held-out clouds of a5_data.zip (the assignment's cls/ and seg/ test splits)
POOL = 64  # training clouds the timed step draws from (a step's cost does not depend on the pool)
FULL_POINTS = 10_000  # points per cloud in the data
COUNTS = (10_000, 1000, 500, 100, 50)  # section 5's point-count sweep
ROTATIONS = 7  # section 5's six tilts and one random SO(3) rotation
EVAL_BATCH = 16  # lib.methods.points.evaluate's batch


def _model(S: dict, arch: str, task: str) -> torch.nn.Module:
    classes = 3 if task == "cls" else 6
    if arch == "pointnet":
        return PointNet(PointNetConfig(classes, task=task, **S["POINTNET"]), seed=0)
    return DGCNN(DGCNNConfig(classes, task=task, **S["DGCNN_CLS" if task == "cls" else "DGCNN_SEG"]), seed=0)


def train_unit(S: dict, arch: str, task: str, augment: dict | None = None):
    """build() of one training step of ``arch`` ("pointnet" or "dgcnn") on ``task`` ("cls" or "seg")."""
    def build():
        torch.manual_seed(0)
        model = _model(S, arch, task).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        points = torch.rand(POOL, S["N_POINTS"], 3, generator=g) * 2 - 1
        labels = (torch.randint(3, (POOL,), generator=g) if task == "cls"
                  else torch.randint(6, (POOL, S["N_POINTS"]), generator=g))
        step = make_point_step(model, opt, points, labels, g, S["BATCH"], S["N_POINTS"], augment)
        return lambda: step(0)
    return build


def eval_unit(S: dict, arch: str, task: str, n_points: int):
    """build() of one evaluation batch: ``EVAL_BATCH`` clouds of ``n_points`` through the model."""
    def build():
        model = _model(S, arch, task).eval()
        clouds = torch.rand(EVAL_BATCH, n_points, 3) * 2 - 1

        def run():
            with torch.no_grad():
                return model(clouds)
        return run
    return build


def batches(clouds: int) -> int:
    return -(-clouds // EVAL_BATCH)


def parts(S: dict, sizes: str) -> list[Part]:
    steps, aug_steps = S["STEPS"], S["AUG_STEPS"]
    key = dict(points=S["N_POINTS"], batch=S["BATCH"], pointnet=S["POINTNET"])
    dkey = dict(points=S["N_POINTS"], batch=S["BATCH"], cls=S["DGCNN_CLS"], seg=S["DGCNN_SEG"])
    both = batches(CLS_TEST) + batches(SEG_TEST)
    # section 3-5 at N_POINTS: one score each of the plain nets, seven rotations of all four nets,
    # the point-count sweep's subsets below N_POINTS costed at N_POINTS (an upper bound)
    pn_batches = both * (1 + 2 * ROTATIONS + sum(1 for n in COUNTS[1:]))
    full_batches = both  # the point-count sweep's 10 000-point row
    # at tiny sizes (the host-side floor, measure.py) that row is costed at tiny's own points
    full_points = S["N_POINTS"] if sizes == "tiny" else FULL_POINTS
    step = "step of " + str(S["BATCH"]) + " clouds"
    aug = dict(rotation="so3")
    return [
        Part("pointnet_cls", "PointNet classification (section 3)", steps, step, train_unit(S, "pointnet", "cls"),
             dict(key, task="cls")),
        Part("pointnet_seg", "PointNet part segmentation (section 4)", steps, step, train_unit(S, "pointnet", "seg"),
             dict(key, task="seg")),
        Part("pointnet_so3", "PointNets trained with SO(3) rotations (section 5)", aug_steps, step,
             train_unit(S, "pointnet", "cls", aug), dict(key, task="cls", aug=True)),
        Part("pointnet_so3", "PointNets trained with SO(3) rotations (section 5)", aug_steps, step,
             train_unit(S, "pointnet", "seg", aug), dict(key, task="seg", aug=True)),
        Part("pointnet_eval", "scores and sweeps of the four PointNets (sections 3-5)", pn_batches,
             f"{EVAL_BATCH} clouds of {S['N_POINTS']} points", eval_unit(S, "pointnet", "seg", S["N_POINTS"]),
             dict(key, task="seg")),
        Part("pointnet_eval", "the 10 000-point row of the point-count sweep (section 5)", full_batches,
             f"{EVAL_BATCH} clouds of {full_points} points", eval_unit(S, "pointnet", "seg", full_points),
             dict(key, task="seg", full=True)),
        Part("dgcnn", "DGCNN classification (section 6)", steps, step, train_unit(S, "dgcnn", "cls"),
             dict(dkey, task="cls")),
        Part("dgcnn", "DGCNN segmentation (section 6)", steps, step, train_unit(S, "dgcnn", "seg"),
             dict(dkey, task="seg")),
        Part("dgcnn", "DGCNN scores (section 6)", both, f"{EVAL_BATCH} clouds of {S['N_POINTS']} points",
             eval_unit(S, "dgcnn", "seg", S["N_POINTS"]), dict(dkey, task="seg")),
    ]
