"""Notebook 06 (3D Gaussian splatting, Splatter Image): the parts of its full-mode run that cost minutes.

The real data, stood in for by tensors of their shapes (what a unit costs depends on the
Gaussians, cameras and networks, not on the pixel values):

- the truck (``lib.data.truck``): 202 views of 160 x 90 px, 197 for training and 5 held out, and
  a 10000-point cloud of which every k-th point starts the Gaussians. Here the project's own
  truck stand-in (``tools.rehearsal.files``): cameras on an orbit at elevation 20 and distance 4
  with a 45 degree field of view, looking at the still life, whose surface points
  (``lib.data.still_life.scene_points``) take the place of ``points_10000.npy``.
- SRN cars (``lib.data.srn``): 128 px views on white, 50 per training car and 251 per held-out
  car, cameras on a sphere of radius 1.3 (``srn.procedural_cameras``); a step's cost does not
  depend on how many cars it draws from, so the training split holds ``SRN_STAND_IN`` cars.
- Depth Anything V2 Small: the real architecture (DINOv2 ViT-S/14 + DPT head, 24.8 M weights)
  built from its config with random weights, and the real image processor's settings (518 px).

The notebook renders with gsplat's CUDA kernels on the T4 (``BACKEND="auto"``); here every render
takes the pure-torch tile rasteriser, so the 3DGS and Splatter Image parts are upper bounds
(gsplat is much faster). A Splatter Image step renders 8 cars x 4 views of 16384 Gaussians and
takes minutes on this CPU, so its unit is one car of a step (``batch=1``: the U-Net on one view,
four renders); a held-out car is 251 renders, so the scoring unit is ``EVAL_VIEWS`` of them.

Densification is not a separate part: it runs inside the training step every ``DENSIFY_EVERY``
steps and edits a few ten thousand rows (milliseconds). The trained scene's size is not known
before training; the densified runs are timed at ``GS_GROWTH`` times the initial points.

Skipped as seconds on a T4: sections 1-2 (a few Gaussians, one 64 px image), the ``.ply`` round
trip (two renders), the first look at the initial cloud, the training snapshots (``N_SNAPSHOTS``
renders of 160 x 90), the 5 held-out truck views of each 3DGS model, the mean-image baseline,
checkpoints and GIF encoding.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch

from benchmarks.t4_budget.measure import Part
from lib import cameras
from lib.data import srn, truck
from lib.data.still_life import scene_points
from lib.methods.gaussian_splatting import (Densifier, DensifyConfig, GaussianTrainConfig, camera_extent, make_gaussian_step,
                                make_optimizer)
from lib.models.gaussians import GaussianModel
from lib.models.splatter import SplatterConfig, SplatterImage
from lib.render import gaussians as gs
from lib.methods.splatter_image import (SplatterTraining, evaluate_splatter, flat_card, input_channels,
                                        make_splatter_step)

USES_SD = False

TRUCK_FRAMES, TRUCK_HW, TRUCK_POINTS = 202, (90, 160), 10_000  # the truck scene (lib.data.truck)
GS_GROWTH = 2.0  # Gaussians at the end of a densified run / initial points (the smoke run: 2.08)
SRN_TRAIN_VIEWS, SRN_TEST_VIEWS, SRN_INPUT_VIEW = 50, 251, 64  # SRN cars: views per car, the input view
SRN_STAND_IN = 8  # training cars in the stand-in split
EVAL_VIEWS = 8  # held-out views per scoring unit (the input view and 7 others)
DEPTH_BATCH = 8  # estimate_inverse_depth's batch_size
BACKEND = "torch"  # the notebook's "auto" is gsplat on the T4: an upper bound (module docstring)


# --------------------------------------------------------------------------- 3DGS on the truck
def truck_points(n_points: int) -> int:
    """Initial Gaussians of the notebook's ``points[::max(1, 10000 // GS_POINTS)]``."""
    return math.ceil(TRUCK_POINTS / max(1, TRUCK_POINTS // n_points))


def truck_views():
    """(images, viewmats, Ks, c2w) of the 197 training views of the truck stand-in."""
    c2w = cameras.orbit_poses(TRUCK_FRAMES, elevation=20.0, distance=4.0)[truck.truck_split(TRUCK_FRAMES)[0]]
    n = len(c2w)
    K = cameras.intrinsics_from_fov(45.0, TRUCK_HW)
    images = torch.rand(n, *TRUCK_HW, 3, generator=torch.Generator().manual_seed(0))
    return images, cameras.world_to_camera(c2w), K.expand(n, 3, 3), c2w


def truck_model(n_points: int, sh: int, growth: float = 1.0) -> GaussianModel:
    """The notebook's ``GaussianModel.from_points`` (grey: the truck's points have no colours), then,
    for ``growth > 1``, one densification (``Densifier.densify_and_prune``) of a random
    ``growth - 1`` of the Gaussians: ``growth`` times as many, cloned or split as in training."""
    points, _ = scene_points(n_points, seed=0)
    model = GaussianModel.from_points(points, None, max_sh_degree=sh)
    if growth > 1:
        densifier = Densifier(DensifyConfig())
        densifier.reset(n_points)
        g = torch.Generator().manual_seed(0)
        hot = torch.randperm(n_points, generator=g)[:round((growth - 1) * n_points)]
        densifier.grad_accum[hot] = 1.0  # over any threshold
        densifier.count[hot] = 1.0
        extent = camera_extent(truck_views()[3])
        densifier.densify_and_prune(model, None, extent, g, prune_large=False)
    return model


def gs_step_unit(S: dict, n_points: int, sh: int, densify: bool, growth: float = 1.0):
    """build() of one 3DGS step (``make_gaussian_step``, the notebook's settings) at mid-run: step
    ``GS_STEPS // 2``, where the SH degree is at its maximum (no densification falls on it)."""
    def build():
        images, viewmats, Ks, c2w = truck_views()
        extent, scale, steps = camera_extent(c2w), S["LR_SCALE"], S["GS_STEPS"]
        cfg = GaussianTrainConfig(steps=steps, means_lr=1.6e-4 * scale, means_lr_final=1.6e-6 * scale,
                                  sh_dc_lr=2.5e-3 * scale, sh_rest_lr=2.5e-3 / 20 * scale, scales_lr=5e-3 * scale,
                                  quats_lr=1e-3 * scale, sh_degree_every=max(1, steps // 6))
        densifier = Densifier(DensifyConfig(
            grad_threshold=S["GRAD_THRESHOLD"], densify_from=steps // 10, densify_until=steps * 3 // 4,
            densify_every=S["DENSIFY_EVERY"], opacity_reset_every=S["OPACITY_RESET_EVERY"])) if densify else None
        model = truck_model(n_points, sh, growth)
        step = make_gaussian_step(model, make_optimizer(model, cfg, extent), densifier, images, viewmats, Ks, cfg,
                                  extent, torch.Generator().manual_seed(0), background=torch.zeros(3), backend=BACKEND)
        return lambda: step(steps // 2)
    return build


def truck_frame_unit(n_points: int, growth: float):
    """build() of one frame of section 4's fly-through: the trained scene (SH 3) at 160 x 90."""
    def build():
        model = truck_model(n_points, 3, growth)
        model.set_sh_degree(3)
        _, viewmats, Ks, _ = truck_views()

        def run():
            with torch.no_grad():
                return model.render(viewmats[:1], Ks[:1], TRUCK_HW[1], TRUCK_HW[0], background=torch.zeros(3),
                                    backend=BACKEND)
        return run
    return build


def chair_frame_unit(n_splats: int, size: int):
    """build() of one frame of section 3's turntable: ``from_mesh`` splats of the procedural chair."""
    def build():
        chair = srn.procedural_object("chair", 0, np.random.default_rng(0))
        splats = GaussianModel.from_mesh(chair, n_splats, generator=torch.Generator().manual_seed(0), max_sh_degree=0)
        viewmat = cameras.world_to_camera(cameras.orbit_poses(torch.tensor([30.0]), elevation=25.0, distance=1.7))
        K = cameras.intrinsics_from_fov(40.0, size)[None]

        def run():
            with torch.no_grad():
                return splats.render(viewmat, K, size, size, background=torch.ones(3), backend=BACKEND)
        return run
    return build


# --------------------------------------------------------------------------- Splatter Image on SRN cars
def srn_split(n_objects: int, n_views: int, size: int, seed: int = 0) -> dict:
    """``srn.load_srn_split``'s dict of random cars: images on SRN cameras (radius 1.3, f 131.25 px at 128)."""
    rng = np.random.default_rng(seed)
    c2w = torch.stack([srn.procedural_cameras(n_views, rng) for _ in range(n_objects)])
    images = torch.rand(n_objects, n_views, size, size, 3, generator=torch.Generator().manual_seed(seed))
    return {"images": images, "c2w": c2w, "K": srn.srn_intrinsics(size).expand(n_objects, 3, 3).clone(),
            "depth": None}


def splatter_model(S: dict, in_channels: int) -> SplatterImage:
    """The notebook's ``train_splatter`` network (random weights: the same compute)."""
    torch.manual_seed(0)
    config = SplatterConfig(in_channels=in_channels, near=srn.SRN_NEAR, far=srn.SRN_FAR, **S["SPLAT_MODEL"])
    return SplatterImage(config)


def splat_step_unit(S: dict, in_channels: int):
    """build() of one car of a Splatter Image step: ``make_splatter_step`` with ``batch=1`` (the U-Net
    on one input view, the input and 3 targets rendered), the notebook's optimizer and tile size."""
    def build():
        data = srn_split(SRN_STAND_IN, SRN_TRAIN_VIEWS, S["SRN_IMAGE"])
        depth = None if in_channels == 3 else torch.rand(data["images"].shape[:-1])  # estimate_inverse_depth's output
        model = splatter_model(S, in_channels)
        step = make_splatter_step(model, torch.optim.Adam(model.parameters(), lr=S["SPLAT_LR"]), data,
                                  torch.Generator().manual_seed(0), SplatterTraining(n_targets=3, batch=1, backend=BACKEND),
                                  depth_input=depth, renderer=partial(gs.render_gaussians, tile_size=S["SPLAT_TILE"]))
        return lambda: step(0)
    return build


def splat_eval_unit(S: dict, in_channels: int):
    """build() of ``EVAL_VIEWS`` views of one held-out car scored by ``evaluate_splatter``: the renders,
    PSNR and SSIM on the CPU (as the notebook, whose batches of 8 cars render all 251 views of each).
    The network's Gaussians of the input view are made here, once: the notebook's one forward pass
    per held-out car is seconds in all on a T4."""
    def build():
        data = srn_split(1, EVAL_VIEWS, S["SRN_IMAGE"], seed=1)
        depth = None if in_channels == 3 else torch.rand(data["images"].shape[:-1])
        model = splatter_model(S, in_channels).eval()
        with torch.no_grad():
            gaussians = model(input_channels(data, depth)[:, 0], data["c2w"][:, 0], data["K"])
        renderer = partial(gs.render_gaussians, tile_size=S["SPLAT_TILE"])
        predict = lambda inputs, c2w, K: gaussians
        return lambda: evaluate_splatter(predict, data, input_view=0, backend=BACKEND, renderer=renderer)
    return build


def card_eval_unit(S: dict):
    """As :func:`splat_eval_unit` for the flat-card baseline of section 6 (no network)."""
    def build():
        data = srn_split(1, EVAL_VIEWS, S["SRN_IMAGE"], seed=1)
        card = lambda inputs, c2w, K: flat_card(inputs[..., :3], c2w, K, depth=(srn.SRN_NEAR + srn.SRN_FAR) / 2)
        renderer = partial(gs.render_gaussians, tile_size=S["SPLAT_TILE"])
        return lambda: evaluate_splatter(card, data, input_view=0, backend=BACKEND, renderer=renderer)
    return build


# --------------------------------------------------------------------------- Depth Anything V2 Small
def depth_anything(sizes: str):
    """(image processor, network) of Depth Anything V2 Small: the real config, random weights.

    At tiny sizes the processor gives 56 px instead of 518: a fixed-size pretrained network costs
    the same at every SIZES, so its tiny-size unit would not be the host-side floor that
    ``measure.py`` takes it for; the same network on a 4 x 4-patch input is."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                            image_size=518, patch_size=14, out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=384, patch_size=14,
                                 neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64, head_hidden_size=32,
                                 depth_estimation_type="relative")
    torch.manual_seed(0)
    net = DepthAnythingForDepthEstimation(config).eval()
    return depth_processor(56 if sizes == "tiny" else 518), net


def depth_processor(px: int):
    """The real repo's ``DPTImageProcessor`` settings (``tools.rehearsal.models.DEPTH_PREPROCESSOR``) at ``px``."""
    from transformers import DPTImageProcessor

    from tools.rehearsal.models import DEPTH_PREPROCESSOR

    settings = {k: v for k, v in DEPTH_PREPROCESSOR.items() if k != "image_processor_type"}
    return DPTImageProcessor(**{**settings, "size": {"height": px, "width": px}})


def depth_unit(S: dict, sizes: str):
    """build() of ``estimate_inverse_depth`` on one image (the network at batch 1: a batch of 8 at 518 px
    takes about a minute here)."""
    def build():
        from lib.pretrained.depth import estimate_inverse_depth

        estimator = depth_anything(sizes)
        image = torch.rand(1, S["SRN_IMAGE"], S["SRN_IMAGE"], 3)
        return lambda: estimate_inverse_depth(image, estimator, batch_size=1)
    return build


def depth_prep_unit(S: dict):
    """build() of the image processor on one batch of ``estimate_inverse_depth`` (8 images to 518 px, on the
    CPU in the notebook too: host work, so its tiny-size floor is its own time)."""
    def build():
        processor = depth_processor(518)
        images = list(torch.rand(DEPTH_BATCH, S["SRN_IMAGE"], S["SRN_IMAGE"], 3).permute(0, 3, 1, 2))
        return lambda: processor(images=images, do_rescale=False, return_tensors="pt")
    return build


def parts(S: dict, sizes: str) -> list[Part]:
    n0 = truck_points(S["GS_POINTS"])
    grown = round(n0 * GS_GROWTH)  # the timed size of the densified scenes
    gs_key = lambda n, sh, densify: dict(n=n, sh=sh, densify=densify, steps=S["GS_STEPS"])
    splat_key = lambda c: dict(px=S["SRN_IMAGE"], model=S["SPLAT_MODEL"], tile=S["SPLAT_TILE"], in_channels=c)
    steps = S["SPLAT_STEPS"] * S["SPLAT_BATCH"]  # units: one car of a step
    chunks = S["SRN_TEST"] * math.ceil(SRN_TEST_VIEWS / EVAL_VIEWS)  # units of one held-out scoring
    images = S["SRN_TRAIN"] * SRN_TRAIN_VIEWS + S["SRN_TEST"]  # every training view, each held-out input view
    batches = math.ceil(S["SRN_TRAIN"] * SRN_TRAIN_VIEWS / DEPTH_BATCH) + math.ceil(S["SRN_TEST"] / DEPTH_BATCH)
    car = "car of a step (1 input, 4 renders)"
    views = f"{EVAL_VIEWS} views of a held-out car"
    return [
        Part("chair_video", "Turntable of the chair's splats (section 3)", S["N_FRAMES"], "frame",
             chair_frame_unit(S["N_MESH_SPLATS"], S["VIEW_SIZE"]), dict(n=S["N_MESH_SPLATS"], px=S["VIEW_SIZE"])),
        Part("gs", "3DGS training on the truck, SH 3 + densification (section 4)", S["GS_STEPS"], "step",
             gs_step_unit(S, n0, 3, True, GS_GROWTH), gs_key(grown, 3, True)),
        Part("gs_video", "Fly-through of the trained truck (section 4)", S["N_FRAMES"], "frame",
             truck_frame_unit(n0, GS_GROWTH), dict(n=grown)),
        Part("gs_ablation", "3DGS ablation: SH 0 + densification (section 5)", S["GS_STEPS"], "step",
             gs_step_unit(S, n0, 0, True, GS_GROWTH), gs_key(grown, 0, True)),
        Part("gs_ablation", "3DGS ablation: SH 3, no densification (section 5)", S["GS_STEPS"], "step",
             gs_step_unit(S, n0, 3, False), gs_key(n0, 3, False)),
        Part("splat", "Splatter Image training, RGB (section 6)", steps, car, splat_step_unit(S, 3), splat_key(3)),
        Part("splat_eval", "Splatter Image held-out cars (section 6)", chunks, views, splat_eval_unit(S, 3),
             splat_key(3)),
        Part("splat_eval", "Flat-card baseline on the held-out cars (section 6)", chunks, views, card_eval_unit(S),
             dict(px=S["SRN_IMAGE"], tile=S["SPLAT_TILE"])),
        Part("splat_depth", "Depth Anything input resizing, on the CPU (section 7)", batches,
             f"batch of {DEPTH_BATCH} images", depth_prep_unit(S), dict(px=S["SRN_IMAGE"])),
        Part("splat_depth", "Depth Anything V2 Small on every SRN image (section 7)", images, "image",
             depth_unit(S, sizes), dict(px=S["SRN_IMAGE"])),
        Part("splat_depth", "Splatter Image training, RGB + depth (section 7)", steps, car, splat_step_unit(S, 4),
             splat_key(4)),
        Part("splat_depth", "Splatter Image RGB + depth, held-out cars (section 7)", chunks, views,
             splat_eval_unit(S, 4), splat_key(4)),
    ]
