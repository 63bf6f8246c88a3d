"""Notebook 09 (NeuralLift) in full mode: Stable Diffusion 1.5 for SDS, CLIP ViT-B/32 for the CLIP loss.

Each part builds what the notebook's ``train_stage`` (sections 2-5) or ``sweep_run`` (section 7)
builds: ``lib.methods.neuralift.lift.make_lift_step`` with the notebook's ``LiftConfig``, the ``sd_guide`` Guide
of ``benchmarks/t4_budget/sd.py`` and ``lib.pretrained.clip.load_clip_encoder`` over a random-weight
ViT-B/32 (LAION's config, saved to a temporary folder and loaded by lib's own loader). The input
is the procedural chair (``IMAGE_PATH = None``) with its simulated depth estimate in place of
Depth Anything's (same shape, so the same cost).

The stages without a novel view (reference only, + depth ranking) are our float32 NeRF alone
(``kind="fp32"``); those with SDS run the Guide, fp16 on the T4 (``kind="sd"``; the NeRF's share
of their time is scaled with it). Steps are timed half-way through training, past the albedo-only
warm-up, when every novel view computes normals.

Left out, seconds on a T4: Depth Anything V2 Small on the one reference image; CLIP on it; the
mesh by marching cubes (48^3 points); writing the videos (36 frames at 128 px); section 7's
procedural inputs.
"""
from __future__ import annotations

import itertools
import shutil
import tempfile

import torch

from benchmarks.t4_budget.measure import Part

USES_SD = True

# the notebook's plain settings (cells 2 and 5, MODE.real: the same at every size, so not in ``S``)
SEED = 0
PROMPT = "a chair"
GUIDANCE = 100.0
WEIGHTS = dict(rgb_weight=1.0, mask_weight=1.0, rank_weight=1.0, sds_weight=3e-4, clip_weight=10.0,
               orientation_weight=1.0, entropy_weight=0.01, opacity_weight=0.0)
REF_AZIMUTH, REF_ELEVATION = 30.0, 15.0
N_EVAL = 5  # EVAL_AZIMUTHS
STAGES = {"ref_only": dict(rank_weight=0.0, sds_weight=0.0, clip_weight=0.0),  # train_stage(name, **overrides)
          "rank": dict(sds_weight=0.0, clip_weight=0.0), "sds": dict(clip_weight=0.0), "full": {}}
# LAION's ViT-B/32 (lib.pretrained.clip.CLIP_MODELS[0]): vision tower and projection
CLIP_B32 = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                image_size=224, patch_size=32, projection_dim=512, hidden_act="gelu", layer_norm_eps=1e-5)

_CLIP: dict = {}  # "encode": built once per process


def clip_encoder():
    """``load_clip_encoder`` of a random-weight ViT-B/32 (float32, CPU), built once."""
    if "encode" not in _CLIP:
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
        from transformers.utils import logging

        from lib.pretrained.clip import load_clip_encoder
        folder = tempfile.mkdtemp(prefix="clip_b32_")
        try:
            torch.manual_seed(0)
            logging.disable_progress_bar()  # the shard-writing and weight-loading bars
            CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_B32)).save_pretrained(folder)
            CLIPImageProcessor().save_pretrained(folder)  # 224 px, OpenAI's mean and std (LAION's too)
            _CLIP["encode"] = load_clip_encoder(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return _CLIP["encode"]


def _from_mid_training(step, steps: int):
    """``step(i)`` at successive ``i`` from half-way through training, wrapping round."""
    i = itertools.cycle(range(steps // 2, steps))
    return lambda: step(next(i))


def _config(S, steps, **overrides):
    from lib.methods.neuralift.lift import LiftConfig
    return LiftConfig(prompt=PROMPT, image_size=S["SIZE"], steps=steps, guidance_scale=GUIDANCE,
                      views_per_step=S["VIEWS"], ref_azimuth=REF_AZIMUTH, ref_elevation=REF_ELEVATION, seed=SEED,
                      **S["FIELD"], **{"ref_rays": S["REF_RAYS"], **WEIGHTS, **overrides})


def _lift_step(cfg, ref_size: int, with_optimizer: bool = True):
    """One ``make_lift_step`` as the notebook makes it; the Guide and CLIP only when a weight uses them
    (``make_lift_step`` touches neither otherwise)."""
    from lib.methods.neuralift.lift import dreamfusion_field, make_lift_step, procedural_lift_input, reference_rays

    inp = procedural_lift_input("chair", seed=SEED, image_size=ref_size, azimuth=REF_AZIMUTH, elevation=REF_ELEVATION)
    guide = encode = ref_features = None
    if cfg.sds_weight > 0:
        from benchmarks.t4_budget.sd import sd15_guide
        guide = sd15_guide()
    if cfg.clip_weight > 0:
        encode = clip_encoder()
        with torch.no_grad():
            ref_features = encode(inp["image"][None])[0]
    field = dreamfusion_field(cfg)
    if not with_optimizer:  # section 7: make_lift_step's default Adam
        return make_lift_step(field, cfg, reference_rays(inp, cfg), guide, encode, ref_features)
    opt = torch.optim.Adam(field.parameters(), lr=cfg.lr)
    return make_lift_step(field, cfg, reference_rays(inp, cfg), guide, encode, ref_features, opt,
                          torch.Generator().manual_seed(SEED))


def _stage(S, name):
    def build():
        steps = S["STEPS"] if name == "full" else S["STAGE_STEPS"]
        cfg = _config(S, steps, **STAGES[name])
        return _from_mid_training(_lift_step(cfg, S["SIZE"]), steps)
    return build


def _sweep(S):
    """Section 7's ``sweep_run`` at the grid's largest reference (rays and image): the grid's runs
    differ only there, which is the reference rays' share, small beside the novel view's SDS."""
    rays = None if None in S["GRID"]["ref_rays"] else max(S["GRID"]["ref_rays"])
    cfg = _config(S, S["SWEEP_STEPS"], clip_weight=max(S["GRID"]["clip_weight"]), ref_rays=rays)
    step = _lift_step(cfg, max(S["GRID"]["ref_size"]), with_optimizer=False)
    return _from_mid_training(step, S["SWEEP_STEPS"])


def _render(S):
    """``render_turntable`` of one view at SIZE px (no gradients), as for every picture and score of
    sections 2-6 (the field's weights do not change the cost)."""
    from lib.methods.dreamfusion import render_turntable
    from lib.methods.neuralift.lift import dreamfusion_field

    cfg = _config(S, S["STEPS"])
    field = dreamfusion_field(cfg).eval()
    return lambda: render_turntable(field, cfg, [REF_AZIMUTH + 90], REF_ELEVATION)


def sweep_runs(S: dict) -> int:
    n = 1
    for values in S["GRID"].values():
        n *= len(values)
    return n


def parts(S: dict, sizes: str) -> list:
    n_stages = len(STAGES)
    # show_views (4 per stage), the ablation's held-out and reference views, the 36-frame turntable
    n_views = n_stages * 4 + n_stages * (N_EVAL + 1) + 36
    key = {k: S[k] for k in ("SIZE", "VIEWS", "FIELD", "REF_RAYS")}
    sweep_key = {**key, "GRID": S["GRID"]}
    return [
        Part("ref_only", "reference view only (section 2)", S["STAGE_STEPS"], "step", _stage(S, "ref_only"), key),
        Part("rank", "+ depth ranking (section 3)", S["STAGE_STEPS"], "step", _stage(S, "rank"), key),
        Part("sds", "+ SDS on novel views (section 4)", S["STAGE_STEPS"], "step", _stage(S, "sds"), key, kind="sd"),
        Part("full", "+ CLIP: the full method (section 5)", S["STEPS"], "step", _stage(S, "full"), key, kind="sd"),
        Part("renders", "views, ablation scores and turntable (sections 2-6)", n_views, "view", lambda: _render(S),
             {"SIZE": S["SIZE"], "FIELD": S["FIELD"]}),
        Part("sweep", "the T4-recipe sweep (section 7)", S["SWEEP_STEPS"] * sweep_runs(S), "step", lambda: _sweep(S),
             sweep_key, kind="sd"),
    ]
