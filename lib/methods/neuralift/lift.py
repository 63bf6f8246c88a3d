"""NeuralLift-360 (Xu et al., CVPR 2023): one image to a 360° NeRF (notebook 09).

A NeRF (:func:`lib.methods.dreamfusion.dreamfusion_field`: albedo, density blob) is fitted to one
reference image seen from a known camera, and every other view is left to priors:

- **reference view**: masked L1 between the rendered and the input colours on the object's
  pixels, and the rendered opacity against the mask (MSE), on ``ref_rays`` random reference
  rays per step (None: all);
- **depth ranking**: on pairs of those rays inside the mask, the rendered distance must order the
  pixels as the monocular estimate does (:func:`lib.losses.depth_ranking_loss`; the estimate is
  relative inverse depth, so only its order is used);
- **SDS** on ``views_per_step`` random novel views with view-dependent prompts
  (:func:`lib.methods.dreamfusion.render_random_views`, :func:`lib.guidance.sds.sds_loss`), with a timestep
  schedule inspired by NeuralLift-360's: ``t_max`` 0.95 and ``t_min`` falling from ``t_min_start`` 0.95 to
  0.05 over the first ``anneal_fraction`` (a third) of training (``lib.guidance.sds.TimestepSchedule``; the
  official code lowers it three times slower, to 0.65 at the end: ``t_min=0.65, anneal_fraction=1.0``);
- **CLIP loss**: ``1 - cos`` between an image encoder's embedding of each novel view in the
  reference's front half (azimuth within 90° of the reference camera's) and that of the
  reference image (:func:`lib.losses.feature_cosine_loss`). On Colab the encoder is CLIP; offline
  the judge network of notebook 07 (``lib.models.judge.Judge.features``) plays its role;
- DreamFusion's orientation, entropy and opacity regularisers.

Each term has a named weight in :class:`LiftConfig`; a weight of 0 switches it (and its cost) off,
which is how the notebook's ablation runs "reference only", "+ depth ranking", "+ SDS",
"+ CLIP".

Inputs are checked by :func:`lift_inputs`; images are (H, W, 3) float in [0, 1] on white,
masks (H, W) bool, depth estimates (H, W) relative inverse depth (1 nearest, 0 background).

Example (CPU, no prior: reference view and depth ranking only):
    >>> inp = procedural_lift_input("vase", seed=0, image_size=8)
    >>> cfg = LiftConfig(image_size=8, n_samples=8, hidden=16, sds_weight=0.0, clip_weight=0.0)
    >>> field = dreamfusion_field(cfg)
    >>> step = make_lift_step(field, cfg, reference_rays(inp, cfg))
    >>> sorted(step(0))
    ['clip', 'entropy', 'loss', 'mask', 'opacity', 'orientation', 'rank', 'rgb', 'sds']
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from lib.cameras import orbit_poses
from lib.data.srn import SRN_RADIUS, SRN_SUPERSAMPLE, procedural_object, srn_intrinsics
from lib.images import from_uint8
from lib.methods.dreamfusion import (DreamFusionConfig, dreamfusion_field, orbit_rays, regularisers, render_random_views,
                                    shaded_field_fn, step_generators)
from lib.guidance.sds import TimestepSchedule
from lib.prompts import view_prompts
from lib.losses import depth_ranking_loss, feature_cosine_loss
from lib.pretrained.depth import depth_channel
from lib.render.volume import volume_render
from lib.render.zbuffer import render_views

__all__ = ["LiftConfig", "lift_inputs", "load_lift_image", "procedural_lift_input", "reference_rays", "make_lift_step",
           "dreamfusion_field"]


@dataclass
class LiftConfig(DreamFusionConfig):
    """A NeuralLift run: every :class:`lib.methods.dreamfusion.DreamFusionConfig` setting (field, cameras,
    shading, regularisers, guidance) plus:

    Attributes:
        ref_azimuth, ref_elevation: the reference camera on the orbit (degrees; radius ``radius``).
        ref_rays: reference rays per step (None: the whole image).
        rgb_weight, mask_weight: masked L1 colour and opacity-vs-mask terms.
        rank_weight, rank_pairs, rank_margin: the depth ranking term, pixel pairs per step, margin
            (world units).
        sds_weight: multiplies the SDS loss (0: no diffusion prior, no novel views unless CLIP).
        clip_weight: the CLIP (image-embedding) term on front-half novel views (0: off).
        t_min_start: the SDS lower timestep bound at the start (falls to ``t_min``).
        anneal_fraction: the fraction of training over which it falls.
    """
    ref_azimuth: float = 30.0
    ref_elevation: float = 15.0
    ref_rays: Optional[int] = None
    rgb_weight: float = 1.0
    mask_weight: float = 1.0
    rank_weight: float = 1.0
    rank_pairs: int = 512
    rank_margin: float = 1e-4
    sds_weight: float = 1e-3
    clip_weight: float = 1.0
    t_min: float = 0.05
    t_max: float = 0.95
    t_max_final: float = 0.95
    t_min_start: Optional[float] = 0.95
    anneal_fraction: float = 1 / 3
    views_per_step: int = 2

    def __post_init__(self):
        super().__post_init__()
        for name in ("rgb_weight", "mask_weight", "rank_weight", "sds_weight", "clip_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"LiftConfig: `{name}` must be >= 0, got {getattr(self, name)}")
        if self.ref_rays is not None and self.ref_rays < 2:
            raise ValueError(f"LiftConfig: `ref_rays` must be None or >= 2, got {self.ref_rays}")

    def schedule(self, num_train_timesteps: int) -> TimestepSchedule:
        """The SDS timestep schedule of this run: DreamFusion's plus the falling lower end."""
        return TimestepSchedule(num_train_timesteps, self.t_min, self.t_max, self.anneal, self.t_max_final,
                                self.anneal_fraction, self.t_min_start)


def _as_float_image(image, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(image)) if not torch.is_tensor(image) else image
    if x.dtype == torch.uint8:
        x = from_uint8(x)
    if not x.is_floating_point():
        raise ValueError(f"lift_inputs: `{name}` must be float in [0, 1] or uint8, got {x.dtype}")
    return x.float()


def lift_inputs(image, mask=None, inv_depth=None) -> dict:
    """Check and normalise NeuralLift's inputs.

    Args:
        image: (H, W, 3) RGB or (H, W, 4) RGBA, float in [0, 1] or uint8. Its alpha channel is the
            mask when ``mask`` is None. The object is composited on white.
        mask: (H, W) bool/0-1 object mask, or None (then the image must have an alpha channel).
        inv_depth: (H, W) depth estimate as relative inverse depth (larger = nearer, any scale;
            what monocular estimators give), or None.
    Returns:
        dict with image (H, W, 3) float on white, mask (H, W) bool, inv_depth (H, W) float in [0, 1]
        (1 nearest, 0 background) or None.
    Raises:
        ValueError naming the input: not RGB(A); no mask and no alpha; an empty mask or one that
        covers the whole image; a depth map of another size or with NaNs.
    """
    img = _as_float_image(image, "image")
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise ValueError(f"lift_inputs: `image` must be RGB (H, W, 3) or RGBA (H, W, 4), got {tuple(img.shape)} "
                         "(a grayscale image: repeat it to 3 channels)")
    if mask is None:
        if img.shape[-1] != 4:
            raise ValueError("lift_inputs: no `mask` and the image has no alpha channel; pass mask= (H, W) "
                             "(e.g. from a segmentation tool) or an RGBA image whose alpha marks the object")
        mask = img[..., 3] > 0.5
    m = torch.as_tensor(np.asarray(mask)) if not torch.is_tensor(mask) else mask
    if m.shape != img.shape[:2]:
        raise ValueError(f"lift_inputs: `mask` must be (H, W) = {tuple(img.shape[:2])}, got {tuple(m.shape)}")
    m = m.bool() if m.dtype == torch.bool else m > 0.5
    if not bool(m.any()):
        raise ValueError("lift_inputs: the mask is empty: no object pixel to lift")
    if bool(m.all()):
        raise ValueError("lift_inputs: the mask covers the whole image; NeuralLift needs background around "
                         "the object (crop wider, or check that the mask is not inverted)")
    rgb = img[..., :3]
    if img.shape[-1] == 4:
        rgb = rgb * img[..., 3:] + (1 - img[..., 3:])
    rgb = torch.where(m[..., None], rgb, torch.ones_like(rgb))
    d = None
    if inv_depth is not None:
        d = torch.as_tensor(np.asarray(inv_depth)).float() if not torch.is_tensor(inv_depth) else inv_depth.float()
        if d.shape != img.shape[:2]:
            raise ValueError(f"lift_inputs: `inv_depth` must be (H, W) = {tuple(img.shape[:2])} like the image, got "
                             f"{tuple(d.shape)} (resize the estimate to the image first)")
        if not bool(torch.isfinite(d[m]).all()):
            raise ValueError("lift_inputs: `inv_depth` has NaN or inf values inside the mask")
        lo, hi = d[m].min(), d[m].max()
        d = torch.where(m, (d - lo) / (hi - lo).clamp_min(1e-8), torch.zeros_like(d))
    return {"image": rgb.clamp(0, 1), "mask": m, "inv_depth": d}


def load_lift_image(path, size: int, mask_path=None) -> dict:
    """Read a photo for NeuralLift: centre-cropped to a square, resized to ``size`` (antialiased),
    then :func:`lift_inputs`. The mask is the image's alpha channel, or ``mask_path`` (a grayscale
    or RGB image, white = object, same size as the photo). The depth estimate is added later
    (``lib.pretrained.depth.estimate_inverse_depth``).

    Raises: FileNotFoundError for a missing file; ValueError (naming the file) for an image that is
    not RGB/RGBA, a mask of another size, and everything :func:`lift_inputs` rejects."""
    import imageio.v3 as iio

    from lib.images import check_image, resize_images

    def read(p, what):
        if not Path(p).is_file():
            raise FileNotFoundError(f"load_lift_image: no {what} file at {p}")
        arr = np.asarray(iio.imread(p))
        return arr[..., None].repeat(3, -1) if arr.ndim == 2 and what == "mask" else arr

    img = check_image(read(path, "image"), path)
    channels = [torch.from_numpy(img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0))]
    if mask_path is not None:
        mask = check_image(read(mask_path, "mask"), mask_path)
        if mask.shape[:2] != img.shape[:2]:
            raise ValueError(f"{mask_path}: the mask is {mask.shape[1]}x{mask.shape[0]} but {path} is "
                             f"{img.shape[1]}x{img.shape[0]} (WxH); they must match")
        channels.append(torch.from_numpy(mask[..., :1].astype(np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0)))
    x = torch.cat(channels, -1)
    h, w = x.shape[:2]
    side = min(h, w)
    x = x[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    x = resize_images(x[None], (size, size))[0]
    if mask_path is not None:
        return lift_inputs(x[..., :3], x[..., -1] > 0.5)
    return lift_inputs(x)


def procedural_lift_input(category: str = "chair", seed: int = 0, image_size: int = 32, azimuth: float = 30.0,
                          elevation: float = 15.0, radius: float = SRN_RADIUS, depth_noise: float = 0.02,
                          depth_distortion: float = 0.3) -> dict:
    """The offline input: a procedural object (``lib.data.srn.procedural_object``: inside the unit-
    diameter sphere, one colour per part) rendered from (azimuth, elevation, radius) with SRN's
    field of view, its true mask, and a depth estimate made imperfect the way a monocular
    estimator's is (``lib.pretrained.depth.depth_channel``: relative inverse depth, a random monotone
    distortion, pixel noise).

    Returns: :func:`lift_inputs`' dict plus "true_depth" (H, W) camera z (0 background), "mesh" (the
    ground truth), "c2w" (4, 4), "K" (3, 3), "azimuth", "elevation".
    """
    rng = np.random.default_rng(seed)
    mesh = procedural_object(category, int(rng.integers(2**31)), rng)
    c2w = orbit_poses(torch.tensor([float(azimuth)]), float(elevation), radius)
    K = srn_intrinsics(image_size)
    out = render_views(mesh, c2w, K, image_size, supersample=SRN_SUPERSAMPLE)
    rgb, true_depth = out["rgb"], out["depth"]
    mask = true_depth[0] > 0
    est = depth_channel(true_depth[0], mask, depth_noise, depth_distortion, torch.Generator().manual_seed(seed))
    out = lift_inputs(rgb[0], mask, est)
    return {**out, "true_depth": true_depth[0], "mesh": mesh, "c2w": c2w[0], "K": K,
            "azimuth": float(azimuth), "elevation": float(elevation)}


def reference_rays(inputs: dict, config: LiftConfig) -> dict:
    """The reference view's rays, flattened: origins, dirs (R, 3), rgb (R, 3), mask (R,) bool,
    inv_depth (R,) estimate (or None), near, far (R,), R = H W. The camera is ``config``'s reference
    pose with SRN's intrinsics at the image's size (the image must be square)."""
    H, W = inputs["image"].shape[:2]
    if H != W:
        raise ValueError(f"reference_rays: the image must be square, got {H} x {W} (crop or pad it)")
    c2w = orbit_poses(torch.tensor([config.ref_azimuth]), config.ref_elevation, config.radius)
    o, d, near, far = orbit_rays(c2w, config, H)
    inv_depth = inputs.get("inv_depth")
    return {"origins": o, "dirs": d, "rgb": inputs["image"].reshape(-1, 3).float(), "mask": inputs["mask"].reshape(-1),
            "inv_depth": None if inv_depth is None else inv_depth.reshape(-1).float(), "near": near, "far": far}


def make_lift_step(field, config: LiftConfig, ref: dict, guide=None, encoder: Optional[Callable] = None,
                   ref_features: Optional[torch.Tensor] = None, optimizer=None,
                   generator: Optional[torch.Generator] = None) -> Callable[[int], dict]:
    """``step(i) -> {"loss", "rgb", "mask", "rank", "sds", "clip", "orientation", "entropy", "opacity"}``
    for ``lib.train.fit`` (see the module docstring for the terms).

    Args:
        field: :func:`lib.methods.dreamfusion.dreamfusion_field` (``config``). ref: :func:`reference_rays`.
        guide: a ``lib.guidance.guide.Guide``; required when ``config.sds_weight > 0``.
        encoder: images (B, H, W, 3) in [0, 1] -> (B, D) embeddings; with ``ref_features`` (D,),
            required when ``config.clip_weight > 0``.
        optimizer: default Adam(field, config.lr). generator: default seeded by ``config.seed``.
    """
    if config.sds_weight > 0 and guide is None:
        raise ValueError("make_lift_step: config.sds_weight > 0 needs a guide (lib.guidance.load.load_guide)")
    if config.clip_weight > 0 and (encoder is None or ref_features is None):
        raise ValueError("make_lift_step: config.clip_weight > 0 needs `encoder` and `ref_features`")
    if config.rank_weight > 0 and ref.get("inv_depth") is None:
        raise ValueError("make_lift_step: config.rank_weight > 0 needs a depth estimate in the inputs")
    optimizer = optimizer or torch.optim.Adam(field.parameters(), lr=config.lr)
    generator, ray_generator = step_generators(field, config.seed, generator)
    device = next(field.parameters()).device
    ref = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in ref.items()}
    R = ref["origins"].shape[0]
    schedule = config.schedule(int(guide.alphas_cumprod.shape[0])) if guide is not None else None
    zero = torch.zeros((), device=device)

    def reference_terms() -> dict:
        if config.ref_rays is None:  # every reference ray
            rays = ref
        else:
            sel = torch.randperm(R, generator=generator)[:config.ref_rays].to(device)
            rays = {k: (None if v is None else v[sel]) for k, v in ref.items()}
        fn = shaded_field_fn(field, config, "albedo")
        out = volume_render(fn, rays["origins"], rays["dirs"], rays["near"], rays["far"],
                            config.n_samples, ray_generator, background=1.0, perturb=True)
        fg = rays["mask"]
        rgb = (out["rgb"][fg] - rays["rgb"][fg]).abs().mean() if bool(fg.any()) else zero
        mask = (out["opacity"] - fg.float()).pow(2).mean()
        rank = zero
        if config.rank_weight > 0 and int(fg.sum()) >= 2:
            rank = depth_ranking_loss(out["distance"][fg], rays["inv_depth"][fg], config.rank_pairs, generator,
                                      config.rank_margin)
        return {"rgb": rgb, "mask": mask, "rank": rank}

    def novel_terms(progress: float) -> dict:
        if config.sds_weight == 0 and config.clip_weight == 0:
            return {"sds": zero, "clip": zero, "orientation": zero, "entropy": zero, "opacity": zero}
        out, az, el, normals = render_random_views(field, config, progress, generator, ray_generator)
        sds = zero
        if config.sds_weight > 0:
            t = schedule.sample(len(az), progress, generator)
            prompts = view_prompts(config.prompt, az, el, config.view_dependent)
            sds, _ = guide.sds(out["images"], prompts, t, config.guidance_scale, generator)
        clip = zero
        front = ((az - config.ref_azimuth + 180) % 360 - 180).abs() <= 90  # the reference's front half
        if config.clip_weight > 0 and bool(front.any()):
            clip = feature_cosine_loss(encoder(out["images"][front.to(device)]), ref_features.to(device))
        return {"sds": sds, "clip": clip, **regularisers(out, out["directions"], normals)}

    def step(i: int) -> dict:
        progress = i / max(config.steps - 1, 1)
        terms = {**reference_terms(), **novel_terms(progress)}
        loss = (config.rgb_weight * terms["rgb"] + config.mask_weight * terms["mask"]
                + config.rank_weight * terms["rank"] + config.sds_weight * terms["sds"]
                + config.clip_weight * terms["clip"] + config.orientation_weight * terms["orientation"]
                + config.entropy_weight * terms["entropy"] + config.opacity_weight * terms["opacity"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}

    return step
