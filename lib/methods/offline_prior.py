"""The offline prior of notebook 07: its data, model construction and training (its Guide is
``lib.guidance.prior``; the committed weights, ``assets/prior``, are made by ``tools/train_prior.py``).

A small pixel-space conditional diffusion model (diffusers ``UNet2DConditionModel`` +
``DDPMScheduler``) learns p(image | prompt) for prompts "a <class>, <view> view" over renders of
the course's procedural shapes (``lib.data.srn.procedural_object``: part-coloured, white
background). The text goes through ``lib.models.text_prior.TinyTextEncoder``. Score distillation
then uses it as a stand-in for Stable Diffusion without any download.

Prompts and view words are ``lib.guidance``'s (one rule for training and for guidance):
``VIEW_WORDS`` and ``view_prompt(f"a {class}", azimuth, elevation)`` -> "a chair, side view"
(azimuth as ``lib.cameras.orbit_poses``: 0 on +z, where the shapes' fronts face). Training also
shows the class alone ("a chair") and the empty prompt (classifier-free guidance).

Images are (N, 3, H, W) float32 in [-1, 1] (white = 1), the diffusers convention.

Example:
    >>> images, prompts = prior_dataset(4, 16, seed=0, classes=("car",))
    >>> tuple(images.shape), prompts[:2]
    ((4, 3, 16, 16), ['a car, front view', 'a car, side view'])
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lib.cameras import orbit_poses
from lib.data.shapes import CATEGORIES
from lib.data.srn import SRN_RADIUS, procedural_object, srn_intrinsics
from lib.guidance.sds import add_noise
from lib.images import to_nchw
from lib.prompts import VIEW_RANGES, VIEW_WORDS, parse_view_prompt, view_prompt
from lib.models.text_prior import TinyTextEncoder, WordTokenizer
from lib.render.zbuffer import render_views
from lib.train import RunningLog, fit

FILLER_WORDS = ("a", "an", "the", "of", "view", "photo", "render")


def prior_vocabulary(classes=CATEGORIES) -> list[str]:
    """The tokenizer's fixed word list: filler words, then the classes, then the view words."""
    return list(FILLER_WORDS) + [c for c in classes] + list(VIEW_WORDS)


def prior_dataset(n_per_class: int, image_size: int = 32, seed: int = 0, classes=CATEGORIES,
                  supersample: int = 2):
    """Renders of procedural objects with their prompts, balanced over classes and view words.

    Image i of a class shows object ``i // 4`` (its own shape seed and part palette) from a random
    camera inside view word ``VIEW_WORDS[i % 4]``'s region, at distance 1.3 with SRN's field of
    view (``lib.data.srn``), anti-aliased with ``supersample``^2 samples.

    Returns:
        images (N, 3, H, W) float32 in [-1, 1] on white, N = n_per_class * len(classes), class-major;
        prompts: N strings "a <class>, <view> view" (the view word re-derived from each camera by
        ``lib.prompts.view_prompt``).
    """
    if n_per_class < 1:
        raise ValueError(f"prior_dataset: `n_per_class` must be >= 1, got {n_per_class}")
    unknown = [c for c in classes if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"prior_dataset: `classes` must be among {CATEGORIES}, got {unknown}")
    rng = np.random.default_rng(seed)
    K = srn_intrinsics(image_size)
    images, prompts = [], []
    for category in classes:
        for first in range(0, n_per_class, len(VIEW_WORDS)):
            mesh = procedural_object(category, int(rng.integers(2**31)), rng)
            views = [VIEW_WORDS[i % len(VIEW_WORDS)] for i in range(first, min(first + 4, n_per_class))]
            az = torch.tensor([rng.uniform(*VIEW_RANGES[v][0]) for v in views], dtype=torch.float32)
            el = torch.tensor([rng.uniform(*VIEW_RANGES[v][1]) for v in views], dtype=torch.float32)
            rgb = render_views(mesh, orbit_poses(az, el, SRN_RADIUS), K, image_size, supersample=supersample)["rgb"]
            images.append(2 * to_nchw(rgb) - 1)  # the model space: channels first, [-1, 1]
            prompts += [view_prompt(f"a {category}", a, e) for a, e in zip(az.tolist(), el.tolist())]
    return torch.cat(images).float(), prompts


def make_prior(image_size: int = 32, channels=(32, 64, 64), cross_attention_dim: int = 64,
               layers_per_block: int = 1, attention_head_dim: int = 8, norm_num_groups: int = 8,
               classes=CATEGORIES, max_length: int = 8, text_layers: int = 1, seed: int = 0):
    """A fresh prior: ``(unet, scheduler, tokenizer, text_encoder)``, weights from ``seed``.

    The UNet works in pixel space on (B, 3, image_size, image_size); the first level has plain
    ResNet blocks, the others add cross-attention to the text states (B, max_length,
    cross_attention_dim). Scheduler: DDPM, 1000 steps, linear betas, epsilon prediction.
    """
    from diffusers import DDPMScheduler, UNet2DConditionModel
    channels = tuple(int(c) for c in channels)
    if image_size % 2 ** (len(channels) - 1):
        raise ValueError(f"make_prior: `image_size` must be divisible by 2^(levels-1)={2 ** (len(channels) - 1)}, "
                         f"got {image_size}")
    if any(c % norm_num_groups for c in channels):
        raise ValueError(f"make_prior: `norm_num_groups`={norm_num_groups} must divide every channel count, "
                         f"got channels={channels}")
    n = len(channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=image_size, in_channels=3, out_channels=3, block_out_channels=channels,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
            layers_per_block=layers_per_block, cross_attention_dim=cross_attention_dim,
            attention_head_dim=attention_head_dim, norm_num_groups=norm_num_groups)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon")
    tokenizer = WordTokenizer(prior_vocabulary(classes), max_length)
    heads = 4 if cross_attention_dim % 4 == 0 else 1
    text_encoder = TinyTextEncoder(len(tokenizer), max_length, cross_attention_dim, text_layers, heads, seed=seed)
    return unet, scheduler, tokenizer, text_encoder


def count_parameters(*modules) -> int:
    """Total number of parameters of the given modules."""
    return sum(p.numel() for m in modules for p in m.parameters())


def prior_loss(unet, scheduler, text_encoder, ids: torch.Tensor, images: torch.Tensor,
               generator: torch.Generator, timesteps=None) -> torch.Tensor:
    """Epsilon-prediction MSE: E || unet(x_t, t, text) - eps ||^2, x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps.

    Args:
        ids: (B, L) token ids. images: (B, 3, H, W) in [-1, 1]. generator: draws eps and (if
            ``timesteps`` is None) t uniform in [0, T). timesteps: optional (B,) int64.
    Returns:
        scalar loss; predicting zeros scores E[eps^2] = 1.
    """
    B = images.shape[0]
    device = images.device
    if timesteps is None:
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (B,), generator=generator)
    noise = torch.randn(images.shape, generator=generator)
    timesteps, noise = timesteps.to(device), noise.to(device)
    abar = scheduler.alphas_cumprod.to(device)[timesteps].view(B, 1, 1, 1).to(images.dtype)
    noisy = add_noise(images, noise, abar)
    pred = unet(noisy, timesteps, encoder_hidden_states=text_encoder(ids.to(device))).sample
    return F.mse_loss(pred, noise)


@dataclass
class PriorTraining:
    """Settings of :func:`train_prior`.

    Attributes:
        steps, batch, lr: AdamW steps, images per step (drawn with replacement), peak learning rate
            (cosine decay to 0).
        seed: every random draw of the run comes from ``torch.Generator().manual_seed(seed)``.
        p_uncond: probability that a prompt is replaced by the empty one (classifier-free guidance).
        p_class_only: probability that a prompt is shortened to its class ("a chair, side view" ->
            "a chair"), so that view-less prompts are in distribution too.
        flip: mirror each image left-right with probability 1/2 (a mirrored side view is a side view).
        log_every: steps per log line. checkpoint_every: steps per checkpoint (with ``checkpoint``).
    """

    steps: int
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0
    p_uncond: float = 0.1
    p_class_only: float = 0.2
    flip: bool = True
    log_every: int = 50
    checkpoint_every: int = 100

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"train_prior: `steps` and `batch` must be >= 1, got {self.steps}, {self.batch}")
        if not (0 <= self.p_uncond <= 1 and 0 <= self.p_class_only <= 1):
            raise ValueError(f"train_prior: probabilities must be in [0, 1], got p_uncond={self.p_uncond}, "
                             f"p_class_only={self.p_class_only}")


def train_prior(unet, scheduler, tokenizer, text_encoder, images: torch.Tensor, prompts, settings: PriorTraining,
                log=print, checkpoint=None) -> list[dict]:
    """Train UNet + text encoder in place with :func:`prior_loss` (AdamW, cosine LR decay, gradient
    norm clipped at 1), through ``lib.train.fit`` (the one loop; resumable with ``checkpoint``), with the
    augmentations and prompt dropout of ``settings`` (:class:`PriorTraining`).

    Args:
        images: (N, 3, H, W) in [-1, 1] on the UNet's device. prompts: N strings.
        log: called with one line every ``settings.log_every`` steps and at the end (None: silent).
        checkpoint: as ``lib.train.fit`` (None: no checkpoint).
    Returns:
        history: ``lib.train.fit``'s, one dict per step: step (0-based), loss, lr.
    """
    s = settings
    steps, batch = s.steps, s.batch
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"train_prior: `images` must be (N, 3, H, W), got {tuple(images.shape)}")
    if len(prompts) != len(images):
        raise ValueError(f"train_prior: `prompts` must have one per image ({len(images)}), got {len(prompts)}")
    gen = torch.Generator().manual_seed(s.seed)
    ids_all = tokenizer(list(prompts))
    ids_class = tokenizer([parse_view_prompt(p)[0] for p in prompts])
    uncond = tokenizer.unconditional(1)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + np.cos(np.pi * k / steps)))
    unet.train()
    text_encoder.train()
    running = RunningLog(steps, s.log_every, log, {"loss": ".4f", "lr": ".2e"})

    def step_fn(step: int) -> dict:
        idx = torch.randint(0, len(images), (batch,), generator=gen)
        x0 = images[idx]
        if s.flip:
            mirror = (torch.rand(batch, generator=gen) < 0.5).to(x0.device)
            x0 = torch.where(mirror[:, None, None, None], x0.flip(-1), x0)
        short = torch.rand(batch, generator=gen) < s.p_class_only
        ids = torch.where(short[:, None], ids_class[idx], ids_all[idx])
        drop = torch.rand(batch, generator=gen) < s.p_uncond
        ids = torch.where(drop[:, None], uncond, ids)
        rate = opt.param_groups[0]["lr"]
        loss = prior_loss(unet, scheduler, text_encoder, ids, x0, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        row = {"loss": loss.item(), "lr": rate}
        running(step, row)
        return row

    state = {"unet": unet, "text_encoder": text_encoder, "optimizer": opt, "lr_schedule": sched, "generator": gen}
    config = {**{k: v for k, v in asdict(s).items() if k not in ("log_every", "checkpoint_every")},
              "n_images": len(images), "prompts": sorted(set(prompts))}
    history = fit(step_fn, steps, state, checkpoint, s.checkpoint_every, desc="prior", progress=False,
                  config=config if checkpoint is not None else None)
    unet.eval()
    text_encoder.eval()
    return history

