"""Notebook 07 (score distillation) in full mode: Stable Diffusion 1.5 guides every section.

Each part builds what the notebook builds (``lib.methods.sds``, ``lib.methods.dreamfusion``, the
``sd_guide`` Guide of ``benchmarks/t4_budget/sd.py``) with the notebook's arguments and runs one
unit of it on the CPU in float32. A unit is one image or one view where the notebook batches
several into one step (section 2's 19 images, section 3's 4 views): the UNet and the VAE cost the
same per image batched or not, and a whole step would take minutes here.

Left out, seconds on a T4: section 1's one encode and one UNet call of 6 latents; the judge (a
small 32 px network); DreamFusion's turntable and judged views (24 + 3 x 8 renders of 64 px
without gradients, no Stable Diffusion); the texture renders of section 3 (z-buffer, 64 px).
"""
from __future__ import annotations

import itertools

import torch

from benchmarks.t4_budget.measure import Part

USES_SD = True

# the notebook's plain settings (cells 5-6: the same at every size, so not in ``S``)
SEED = 0
SCALES = (1.0, 7.5, 30.0, 100.0)
MAIN_SCALE = 7.5
SWEEP_CLASSES = ("chair", "car")
DF_SCALE = 100.0  # MODE.real
PROMPT_CLASS = "chair"


def image_count(S: dict) -> int:
    """Section 2's batch: every class at MAIN_SCALE (MAIN_SEEDS each) and at 1.0, two at the high scales."""
    from lib.data.shapes import CATEGORIES
    high = [s for s in SCALES if s not in (1.0, MAIN_SCALE)]
    return len(CATEGORIES) * (S["MAIN_SEEDS"] + 1) + len(high) * len(SWEEP_CLASSES)


def _from_mid_training(step, steps: int):
    """``step(i)`` at successive ``i`` from half-way through training (past DreamFusion's albedo-only
    warm-up, so every later step's work is done), wrapping round."""
    i = itertools.cycle(range(steps // 2, steps))
    return lambda: step(next(i))


def _image_sds(S):
    """Section 2 for one image: ``make_image_sds_step`` on one latent image (the notebook's batch
    has ``image_count`` of them, each with its own prompt and scale: one CFG UNet call each)."""
    from benchmarks.t4_budget.sd import sd15_guide
    from lib.guidance.sds import TimestepSchedule
    from lib.methods.sds import TensorState, make_image_sds_step

    guide = sd15_guide()
    g = torch.Generator().manual_seed(SEED)
    image = TensorState(0.3 * torch.randn((1,) + tuple(guide.model_shape), generator=g))
    opt = torch.optim.Adam(image.parameters(), lr=S["IMAGE_LR"])
    schedule = TimestepSchedule(len(guide.alphas_cumprod), 0.02, 0.98, anneal="linear", t_max_final=0.3)
    step = make_image_sds_step(image, guide, [f"a {PROMPT_CLASS}"], [MAIN_SCALE], schedule, S["IMAGE_STEPS"],
                               optimizer=opt, generator=g, clamp=None)
    return _from_mid_training(step, S["IMAGE_STEPS"])


def _mesh():
    import numpy as np

    from lib.data.srn import procedural_object
    return procedural_object(PROMPT_CLASS, 11, np.random.default_rng(SEED))


def _texture_sds(S):
    """Section 3 for one view: ``make_texture_sds_step`` with one view per step (render, resize to
    512, VAE-encode with gradients, CFG UNet call, backward through the VAE encoder)."""
    from benchmarks.t4_budget.sd import sd15_guide
    from lib.data.srn import srn_intrinsics
    from lib.guidance.sds import TimestepSchedule
    from lib.methods.sds import TensorState, TextureSDSConfig, make_texture_sds_step

    guide, mesh = sd15_guide(), _mesh()
    colors = TensorState(torch.full((len(mesh.verts), 3), 0.5))
    opt = torch.optim.Adam(colors.parameters(), lr=0.02)
    schedule = TimestepSchedule(len(guide.alphas_cumprod), 0.02, 0.98, anneal="linear", t_max_final=0.4)
    cfg = TextureSDSConfig(f"a {PROMPT_CLASS}", S["TEXTURE_STEPS"], S["RENDER"], 1, guidance_scale=MAIN_SCALE)
    step = make_texture_sds_step(mesh.verts, mesh.faces, colors, guide, srn_intrinsics(S["RENDER"]), schedule, cfg,
                                 optimizer=opt, generator=torch.Generator().manual_seed(SEED))
    return _from_mid_training(step, S["TEXTURE_STEPS"])


def _dreamfusion(S, view_dependent: bool):
    """Sections 4 and 5: one ``make_dreamfusion_step`` as the notebook's ``dreamfusion(...)`` makes it."""
    from benchmarks.t4_budget.sd import sd15_guide
    from lib.methods.dreamfusion import DreamFusionConfig, dreamfusion_field, make_dreamfusion_step

    def build():
        cfg = DreamFusionConfig(prompt=f"a {PROMPT_CLASS}", view_dependent=view_dependent, steps=S["DF_STEPS"],
                                views_per_step=S["DF_VIEWS"], image_size=S["RENDER"], guidance_scale=DF_SCALE,
                                seed=SEED, **S["DF_MODEL"])
        field = dreamfusion_field(cfg)
        opt = torch.optim.Adam(field.parameters(), lr=cfg.lr)
        step = make_dreamfusion_step(field, sd15_guide(), cfg, opt, torch.Generator().manual_seed(cfg.seed))
        return _from_mid_training(step, cfg.steps)
    return build


def _decode(S):
    """``guide.from_model`` of one latent image (the VAE decoder at 512 px), as for the pictures of
    sections 1 (12 latents) and 2 (every optimised image)."""
    from benchmarks.t4_budget.sd import sd15_guide

    guide = sd15_guide()
    z = torch.randn((1,) + tuple(guide.model_shape), generator=torch.Generator().manual_seed(SEED))

    def run():
        with torch.no_grad():
            guide.from_model(z)
    return run


def _denoising_error(S):
    """Section 3's score: ``lib.methods.sds.denoising_error`` of one view (VAE encode, one conditional
    UNet call); the notebook scores 3 sets of N_EVAL_VIEWS views."""
    from benchmarks.t4_budget.sd import sd15_guide
    from lib.cameras import orbit_poses
    from lib.data.srn import srn_intrinsics
    from lib.prompts import view_prompt
    from lib.render.texture import render_vertex_colors
    from lib.methods.sds import denoising_error

    guide, mesh = sd15_guide(), _mesh()
    c2w = orbit_poses(torch.tensor([22.5]), 20.0, 1.3)
    out = render_vertex_colors(mesh.verts, mesh.faces, mesh.vert_colors, c2w, srn_intrinsics(S["RENDER"]), S["RENDER"],
                               background=1.0, shading="headlight")
    view = out["rgb"].clamp(0, 1)
    prompts = [view_prompt(f"a {PROMPT_CLASS}", 22.5, 20.0)]
    return lambda: denoising_error(guide, view, prompts)


def parts(S: dict, sizes: str) -> list:
    n_images = image_count(S)
    df_key = {k: S[k] for k in ("RENDER", "DF_VIEWS", "DF_MODEL")}
    return [
        Part("image_sds", "image SDS, every class and scale (section 2)", S["IMAGE_STEPS"] * n_images,
             "image-step", lambda: _image_sds(S), {}, kind="sd"),
        Part("decode", "decoding latents to pictures (sections 1-2)", 12 + n_images, "latent image",
             lambda: _decode(S), {}, kind="sd"),
        Part("texture_sds", "texture SDS (section 3)", S["TEXTURE_STEPS"] * S["TEXTURE_VIEWS"], "view-step",
             lambda: _texture_sds(S), {"RENDER": S["RENDER"]}, kind="sd"),
        Part("texture_eval", "the guide's denoising error (section 3)", 3 * S["N_EVAL_VIEWS"], "view",
             lambda: _denoising_error(S), {"RENDER": S["RENDER"]}, kind="sd"),
        Part("dreamfusion", "DreamFusion, view-dependent prompts (section 4)", S["DF_STEPS"], "step",
             _dreamfusion(S, True), df_key, kind="sd"),
        Part("dreamfusion_one_prompt", "DreamFusion, one prompt (section 5)", S["DF_STEPS"], "step",
             _dreamfusion(S, False), df_key, kind="sd"),
    ]
