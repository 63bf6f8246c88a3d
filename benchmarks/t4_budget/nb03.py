"""Notebook 03 (single- and multi-view reconstruction), full mode: R2N2 chairs, every model it trains.

The data are stood in for by tensors of ``lib.data.r2n2.to_tensors``' shapes (:func:`fake_split`:
``FAKE_MODELS`` models x 24 views; a step's cost does not depend on how many models it draws
from), with the voxels and surface points of a chair-sized mesh (``nb02.chair_stand_in``).
Reading the real chairs (sections 1 and 11) is timed on an R2N2-layout folder of one model
(:func:`r2n2_root`): 24 RGBA renders at R2N2's 137 px (a procedural chair's), its binvox, and
the stand-in mesh as its ``model.obj``, read by ``R2N2Dataset`` + ``to_tensors`` as the notebook
reads each chair. How many chairs a split holds comes from ``R2N2_SPLIT``. Networks start with
random weights (the notebook loads ImageNet weights for ResNet-18: the same compute).

Every training unit is the notebook's own step (``recon.make_single_view_step``, ``point_step``,
``recon.vaegan_step``); every evaluation unit is one batch of ``recon.evaluate_single_view``
(32 image-view pairs, its default), whose marching cubes and F-scores run on the CPU as in the
notebook.

Left out (seconds on a T4): the figures (a few 128 px renders each), the mean-shape baselines,
the medoid of section 13, merging the three classes' tensors, the VAE-GANs' test pass of
section 19 (four forward passes), checkpoints (every ``CKPT_EVERY`` steps).
"""
from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import torch

from benchmarks.t4_budget.measure import Part
from benchmarks.t4_budget.nb02 import chair_stand_in
from lib.images import from_uint8

USES_SD = False
R2N2_SPLIT = {"train": 5422, "test": 1356}  # chairs per split: the course's split.json holds out 20% of 6778
FAKE_MODELS = 64  # models in a stand-in split
N_POINTS, SMOOTH_WEIGHT, LR = 1024, 0.1, 1e-3  # the notebook's plain settings
EVAL_VIEWS = [0, 6, 12, 18]  # list(range(0, 24, 6))
EVAL_BATCH = 32  # evaluate_single_view's batch_size
THRESHOLDS = (0.01, 0.02, 0.03, 0.04, 0.05)
MV_VIEWS = [0, 4, 8, 12, 16, 20]
SWEEP_WEIGHTS = 4  # len(SWEEP_WEIGHTS)
MV_EVAL_CHUNK = 16  # test chairs per unit of section 15's evaluation
_ROOTS: dict = {}  # the stand-in R2N2 folder, written once per process


def split_sizes(max_models) -> dict:
    """Chairs the notebook reads per split with ``max_models`` (None: all)."""
    return {s: min(n, max_models or n) for s, n in R2N2_SPLIT.items()}


def eval_batches(n_models: int) -> int:
    """Batches of ``evaluate_single_view`` over ``n_models`` models at the evaluation views."""
    return math.ceil(n_models * len(EVAL_VIEWS) / EVAL_BATCH)


def r2n2_root() -> Path:
    """An R2N2-layout folder with one chair: a procedural chair's 24 views at 137 px and binvox,
    the stand-in mesh (ShapeNet-normalised) as ``model.obj`` (the procedural mesh kept as
    ``original.obj``), and no ``r2n2_info.json``, so voxels are placed as for the real data."""
    if "root" not in _ROOTS:
        from lib.data.mesh_io import save_obj
        from lib.data.r2n2_procedural import write_procedural_r2n2
        from lib.mesh import TriMesh, normalize_mesh

        root = write_procedural_r2n2(f"{tempfile.mkdtemp()}/r2n2", ("chair",), 1, image_size=137,
                                     splits=(1.0, 0.0, 0.0))
        (root / "r2n2_info.json").unlink()
        obj = next((root / "shapenet").glob("*/*/model.obj"))
        obj.rename(obj.with_name("original.obj"))
        m = normalize_mesh(chair_stand_in(), 1.0, "diagonal")
        save_obj(obj, TriMesh(verts=m.verts, faces=m.faces))
        _ROOTS["root"] = root
    return _ROOTS["root"]


def read_unit(size: int):
    """Reading one chair as sections 1 and 11 do: ``R2N2Dataset`` (checks, mesh, voxels, 2048
    surface points) and ``to_tensors`` (24 PNGs, composited, resized to ``size``)."""
    from lib.data import r2n2

    root = r2n2_root()
    return lambda: r2n2.to_tensors(r2n2.R2N2Dataset(root, "train", categories="chair", views=list(range(24)),
                                                    image_size=size, n_points=2048, seed=0, max_models=1))


def fake_split(size: int, n_models: int = FAKE_MODELS) -> dict:
    """A ``to_tensors`` dict of ``n_models`` stand-in chairs: random uint8 views at ``size`` px, R2N2
    cameras, and every model the stand-in mesh's voxels and 2048 surface points."""
    from lib import geometry, voxels
    from lib.data import r2n2
    from lib.mesh import normalize_mesh

    g = torch.Generator().manual_seed(0)
    mesh = normalize_mesh(chair_stand_in(), 1.0, "diagonal")
    pts, _ = geometry.sample_surface(mesh, 2048, g)
    az, el, ratio = torch.rand(24, generator=g) * 360, 20 + 10 * torch.rand(24, generator=g), 0.8 * torch.ones(24)
    c2w, K = r2n2.r2n2_camera(az, el, ratio, size)
    return {"images": torch.randint(0, 256, (n_models, 24, size, size, 3), dtype=torch.uint8, generator=g),
            "voxels": voxels.voxelize(mesh, 32).expand(n_models, -1, -1, -1).clone(),
            "points": pts.expand(n_models, -1, -1).clone(), "c2w": c2w.expand(n_models, -1, -1, -1).clone(),
            "K": K.expand(n_models, -1, -1, -1).clone(), "category": torch.zeros(n_models, dtype=torch.long),
            "categories": ["chair"], "model_ids": [f"fake_{i}" for i in range(n_models)]}


def sv_model(kind: str, size: int, data: dict):
    """``train``'s model of section 5, its decoder's arguments as the notebook passes them."""
    from lib.models import single_view as sv

    kwargs = {"voxels": dict(mean_shape=data["voxels"].float().mean(0)), "points": dict(n_points=N_POINTS),
              "mesh": dict(level=4)}[kind]
    return sv.SingleViewModel(kind, size, pretrained=False, **kwargs)


def sv_train_unit(kind: str, size: int, batch: int):
    """One step of ``train(kind, ...)`` (sections 5 and 10): a batch of views, loss, backward, Adam."""
    from lib.methods import recon

    data = fake_split(size)
    model = sv_model(kind, size, data)
    opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    step = recon.make_single_view_step(model, data, opt, torch.Generator().manual_seed(0), batch, SMOOTH_WEIGHT, "cpu")
    return lambda: step(0)


def sv_eval_unit(kind: str, size: int):
    """One batch (8 chairs x 4 views) of ``evaluate_single_view`` of section 6's ``kind`` model."""
    from lib.methods import recon

    data = fake_split(size, EVAL_BATCH // len(EVAL_VIEWS))
    model = sv_model(kind, size, data).eval()
    faces = model.decoder.faces if kind == "mesh" else None
    return lambda: recon.evaluate_single_view(lambda images: model(images).cpu(), data, EVAL_VIEWS, kind, THRESHOLDS,
                                              N_POINTS, faces, seed=0)


def features_unit(size: int):
    """Section 7's feature cache for one chair: the frozen encoder on its 24 views."""
    from lib.models import single_view as sv

    enc = sv.ResNet18Encoder(size).eval()
    images = fake_split(size, 1)["images"][0]

    def run():
        with torch.no_grad():
            return enc(from_uint8(images))

    return run


def sweep_unit(size: int, batch: int):
    """One step of section 7's sweep: a mesh decoder trained on cached encoder features (the step
    still gathers its batch's images, unused)."""
    from lib.methods import recon
    from lib.models import single_view as sv

    data = fake_split(size)
    features = torch.randn(FAKE_MODELS, 24, 512)
    dec = sv.MeshDecoder(level=4)
    opt = torch.optim.Adam(dec.parameters(), lr=LR, fused=True)
    step = recon.make_single_view_step(dec, data, opt, torch.Generator().manual_seed(0), batch, 1.0, "cpu",
                                       features=features)
    return lambda: step(0)


def sweep_eval_unit():
    """One batch of the sweep's evaluation: the decoder on cached test features, mesh F-scores."""
    from lib.methods import recon
    from lib.models import single_view as sv

    data = fake_split(32, EVAL_BATCH // len(EVAL_VIEWS))
    features = torch.randn(len(data["images"]), 24, 512)
    dec = sv.MeshDecoder(level=4).eval()
    return lambda: recon.evaluate_single_view(lambda f: dec(f).cpu(), data, EVAL_VIEWS, "mesh", THRESHOLDS, N_POINTS,
                                              dec.faces, seed=0, features=features)


def classes_data_unit(size: int):
    """Section 10's data, per model pair: a procedural car and airplane written in the R2N2 layout
    at ``size`` px, and read back."""
    from lib.data import r2n2
    from lib.data.r2n2_procedural import write_procedural_r2n2

    def run():
        root = Path(tempfile.mkdtemp())
        try:
            write_procedural_r2n2(root / "others", ("car", "airplane"), 1, image_size=size, splits=(1.0, 0.0, 0.0))
            return r2n2.to_tensors(r2n2.R2N2Dataset(root / "others", "train", image_size=size, seed=0))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    return run


def colour_unit(size: int):
    """Section 12's colour targets of one chair: its 2048 surface points seen in its six views."""
    from lib import geometry
    from lib.methods import recon
    from lib.data import r2n2
    from lib.data.r2n2 import load_mesh

    root = r2n2_root()
    item = r2n2.R2N2Dataset(root, "train", views=MV_VIEWS, image_size=size, max_models=1)[0]
    mesh = load_mesh(next((root / "shapenet").glob("*/*/original.obj")))  # the chair the views show
    pts, _ = geometry.sample_surface(mesh, 2048, torch.Generator().manual_seed(0))
    return lambda: recon.colors_from_views(pts, item["images"], item["c2w"], item["K"])


def mv_point_net(size: int, pointnet: dict):
    from lib.models import multi_view as mv

    return mv.ColoredPointNet(mv.ColoredPointNetConfig(n_views=len(MV_VIEWS), image_size=size, **pointnet))


def mv_point_unit(size: int, pointnet: dict, batch: int):
    """``point_step`` of section 14: half a batch of chairs' six shuffled views, coloured chamfer, Adam."""
    from lib.losses import colored_chamfer

    d, g = fake_split(size), torch.Generator().manual_seed(0)
    colors = torch.rand(FAKE_MODELS, 2048, 3, generator=g)
    pnet = mv_point_net(size, pointnet)
    popt = torch.optim.Adam(pnet.parameters(), lr=1e-3)
    n_points = pnet.cfg.n_points

    def step():
        idx = torch.randint(0, FAKE_MODELS, (batch // 2,), generator=g)
        perm = torch.tensor(MV_VIEWS)[torch.randperm(len(MV_VIEWS), generator=g)]
        sub = torch.randint(0, 2048, (n_points,), generator=g)
        p, c = pnet(from_uint8(d["images"][idx][:, perm]))
        cd, cl = colored_chamfer(p, c, d["points"][idx][:, sub], colors[idx][:, sub])
        popt.zero_grad()
        (cd + 0.1 * cl).backward()
        popt.step()
        return {"chamfer": cd.item(), "color_l1": cl.item()}

    return step


def mv_point_eval_unit(size: int, pointnet: dict):
    """Section 15 for ``MV_EVAL_CHUNK`` test chairs: the model on their six views, then (on the CPU,
    as in the notebook) the coloured chamfer, the chamfer check and the medoid baseline."""
    from lib.losses import chamfer_distance, colored_chamfer

    d = fake_split(size, MV_EVAL_CHUNK)
    colors = torch.rand(MV_EVAL_CHUNK, 2048, 3)
    pnet = mv_point_net(size, pointnet).eval()
    medoid = d["points"][0, :pnet.cfg.n_points]

    def run():
        with torch.no_grad():
            p, c = pnet(from_uint8(d["images"][:, MV_VIEWS]))
            cd, cl = colored_chamfer(p, c, d["points"], colors)
            chamfer_distance(p, d["points"]).mean()
            return chamfer_distance(medoid.expand(len(p), -1, -1), d["points"]).mean()

    return run


def vaegan_unit(size: int, vaegan: dict, batch: int, n_views: int):
    """One step of ``train_vaegan(n_views, use_pose=True)`` of section 18: random views of a batch
    of chairs, a discriminator update, then an encoder + generator update."""
    from lib.methods import recon
    from lib.models import multi_view as mv

    d, g = fake_split(size), torch.Generator().manual_seed(0)
    model = mv.MultiViewVAEGAN(mv.VAEGANConfig(image_size=size, use_pose=True, fusion="mean", **vaegan))
    model.generator.set_prior(d["voxels"].float().mean(0))
    opt_ae = torch.optim.Adam(model.ae_parameters(), lr=2e-3)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))

    def step():
        idx = torch.randint(0, FAKE_MODELS, (batch,), generator=g)
        views = torch.stack([torch.randperm(24, generator=g)[:n_views] for _ in idx])  # random_views
        x, c = from_uint8(d["images"][idx[:, None], views]), d["c2w"][idx[:, None], views]
        return recon.vaegan_step(model, opt_ae, opt_d, x, d["voxels"][idx].float(), c, beta=5e-4, adv_weight=1e-3,
                                 pos_weight=2.0, generator=g)

    return step


def parts(S: dict, sizes: str) -> list:
    size, mv_size, batch, mv_batch = S["IMAGE_SIZE"], S["MV_SIZE"], S["BATCH"], S["MV_BATCH"]
    pointnet, vaegan = S["POINTNET"], dict(S["VAEGAN"], gen_channels=tuple(S["VAEGAN"]["gen_channels"]))
    chairs, mv_chairs = split_sizes(S["MAX_MODELS"]), split_sizes(S["MV_MAX_MODELS"])
    n_test = chairs["test"]
    others_test = 2 * (S["N_OTHERS"] - round(0.7 * S["N_OTHERS"]) - round(0.1 * S["N_OTHERS"]))  # cars + airplanes
    gan_steps = 2 * S["MV_GAN_STEPS"]  # two VAE-GANs of each view count (with and without pose)
    at = {"size": size, "batch": batch}
    mv = {"size": mv_size, "pointnet": pointnet}
    return [
        Part("data", "reading the R2N2 chairs (section 1)", sum(chairs.values()), "chair (24 views, mesh, voxels)",
             lambda: read_unit(size), {"size": size}),
        Part("sv_voxels", "single-view voxel decoder (section 5)", S["STEPS"], f"step of {batch} images",
             lambda: sv_train_unit("voxels", size, batch), at),
        Part("sv_points", "single-view point decoder (section 5)", S["STEPS"], f"step of {batch} images",
             lambda: sv_train_unit("points", size, batch), at),
        Part("sv_mesh", "single-view mesh decoder (section 5)", S["STEPS"], f"step of {batch} images",
             lambda: sv_train_unit("mesh", size, batch), at),
        # mean shape, true 32^3 voxels and the voxel model: marching cubes for every prediction
        Part("eval", "held-out F-scores of voxel predictions (section 6)", 3 * eval_batches(n_test),
             f"batch of {EVAL_BATCH} views", lambda: sv_eval_unit("voxels", size), {"size": size}),
        Part("eval", "held-out F-scores of the point model (section 6)", eval_batches(n_test),
             f"batch of {EVAL_BATCH} views", lambda: sv_eval_unit("points", size), {"size": size}),
        Part("eval", "held-out F-scores of the mesh model (section 6)", eval_batches(n_test),
             f"batch of {EVAL_BATCH} views", lambda: sv_eval_unit("mesh", size), {"size": size}),
        Part("features", "encoder features of every view (section 7)", sum(chairs.values()), "chair (24 views)",
             lambda: features_unit(size), {"size": size}),
        Part("sweep", "smoothing-weight sweep (section 7)", SWEEP_WEIGHTS * S["SWEEP_STEPS"],
             f"step of {batch} features",
             lambda: sweep_unit(size, batch), at),
        Part("sweep", "smoothing sweep's F-scores (section 7)", SWEEP_WEIGHTS * eval_batches(n_test),
             f"batch of {EVAL_BATCH} views", sweep_eval_unit, {}),
        Part("classes", "procedural cars and airplanes (section 10)", S["N_OTHERS"],
             "car + airplane written and read", lambda: classes_data_unit(size), {"size": size}),
        Part("classes", "three-class point decoder (section 10)", S["STEPS"], f"step of {batch} images",
             lambda: sv_train_unit("points", size, batch), at),
        # f1_05 of the chairs-only and the three-class models, on held-out cars + airplanes and chairs
        Part("classes_eval", "F-scores of one class vs three (section 10)",
             2 * (eval_batches(others_test) + eval_batches(n_test)), f"batch of {EVAL_BATCH} views",
             lambda: sv_eval_unit("points", size), {"size": size}),
        Part("mv_data", "reading the R2N2 chairs again (section 11)", sum(mv_chairs.values()),
             "chair (24 views, mesh, voxels)", lambda: read_unit(mv_size), {"size": mv_size}),
        Part("colour_targets", "colour targets from six views (section 12)", sum(mv_chairs.values()), "chair",
             lambda: colour_unit(mv_size), {"size": mv_size}),
        Part("mv_points", "multi-view coloured point model (section 14)", S["MV_POINT_STEPS"],
             f"step of {mv_batch // 2} chairs x 6 views", lambda: mv_point_unit(mv_size, pointnet, mv_batch),
             {**mv, "batch": mv_batch}),
        Part("mv_points_eval", "coloured point model on the test chairs (section 15)",
             math.ceil(mv_chairs["test"] / MV_EVAL_CHUNK), f"{MV_EVAL_CHUNK} chairs",
             lambda: mv_point_eval_unit(mv_size, pointnet), mv),
        Part("vaegan", "VAE-GANs from 1 view, with and without pose (section 18)", gan_steps,
             f"step of {mv_batch} chairs", lambda: vaegan_unit(mv_size, vaegan, mv_batch, 1),
             {"size": mv_size, "vaegan": S["VAEGAN"], "batch": mv_batch}),
        Part("vaegan", "VAE-GANs from 4 views, with and without pose (section 18)", gan_steps,
             f"step of {mv_batch} chairs", lambda: vaegan_unit(mv_size, vaegan, mv_batch, 4),
             {"size": mv_size, "vaegan": S["VAEGAN"], "batch": mv_batch}),
    ]
