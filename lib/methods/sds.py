"""Score distillation on an image and on a mesh's colours: training steps for ``lib.train.fit`` (notebook 07).

Both optimise a plain tensor by score distillation, ``lib.guidance.guide.Guide.sds``, through a guide
(the offline prior or Stable Diffusion), drawing timesteps from a
``lib.guidance.sds.TimestepSchedule`` as training progresses. The NeRF version is
:mod:`lib.methods.dreamfusion`.

- :func:`make_image_sds_step`: the image *is* the parameter, in the model's space (pixels in
  [-1, 1] for the offline prior, latents for Stable Diffusion). Each sample has its own prompt and
  guidance scale, so a whole sweep (prompts x seeds x scales) is one batch.
- :func:`make_texture_sds_step`: per-vertex colours of a fixed mesh (``lib.render.texture``),
  rendered from random cameras around it and pushed toward the prompt.

:class:`TensorState` wraps the optimised tensor as a module, so ``fit`` checkpoints it like any
model (resumable; the same settings reuse the run).

Example (a stand-in model that predicts zero noise):
    >>> from lib.guidance.guide import Guide
    >>> from lib.images import from_nchw, to_nchw
    >>> from lib.guidance.sds import TimestepSchedule
    >>> guide = Guide("stand-in", lambda x, t, e: torch.zeros_like(x), lambda p: torch.zeros(len(p), 4, 8),
    ...               torch.linspace(0.99, 0.01, 1000), lambda x: 2 * to_nchw(x) - 1,
    ...               lambda x: from_nchw(x + 1) / 2, (3, 8, 8), 8)
    >>> image = TensorState(torch.zeros(2, 3, 8, 8))
    >>> step = make_image_sds_step(image, guide, ["a chair", "a vase"], [7.5, 7.5], TimestepSchedule(), 10,
    ...                            generator=torch.Generator().manual_seed(0))
    >>> sorted(step(0))
    ['grad_norm', 'loss', 't']
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from lib.cameras import orbit_poses, random_orbit_angles
from lib.guidance.sds import TimestepSchedule, add_noise
from lib.prompts import validate_prompt, view_prompts
from lib.render.texture import render_vertex_colors


class TensorState(nn.Module):
    """One optimised tensor as a module (``.value``), so that ``lib.train.fit`` can checkpoint it."""

    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.value = nn.Parameter(init.detach().clone().float())

    def forward(self) -> torch.Tensor:
        return self.value


def _per_sample_scales(scales, n: int) -> torch.Tensor:
    s = torch.as_tensor(scales, dtype=torch.float32).reshape(-1)
    if s.numel() == 1:
        s = s.expand(n)
    if s.shape != (n,) or not bool((s > 0).all()):
        raise ValueError(f"guidance scales must be > 0, one per image ({n}) or one for all, got {s.tolist()}")
    return s.clone()


def make_image_sds_step(image: TensorState, guide, prompts: Sequence[str], guidance_scales, schedule: TimestepSchedule,
                        steps: int, *, generator: torch.Generator, lr: float = 0.03, optimizer=None,
                        clamp: Optional[float] = 1.0):
    """``step(i) -> {"loss", "t", "grad_norm"}``: SDS on ``image.value`` (B, *guide.model_shape).

    Args:
        prompts: B prompts (validated); guidance_scales: B floats or one (> 0).
        schedule: where timesteps come from; ``progress = i / (steps - 1)``.
        generator: draws the timesteps and the noise (required: no hidden default stream).
        lr: Adam learning rate (default optimizer). clamp: after each step the values are clamped
            to ``[-clamp, clamp]`` (pixels in [-1, 1]; None for latents).
    """
    x = image.value
    if tuple(x.shape[1:]) != tuple(guide.model_shape):
        raise ValueError(f"image must be (B, {', '.join(map(str, guide.model_shape))}) for {guide.name}, "
                         f"got {tuple(x.shape)}")
    prompts = [validate_prompt(p) for p in prompts]
    if len(prompts) != x.shape[0]:
        raise ValueError(f"need one prompt per image ({x.shape[0]}), got {len(prompts)}")
    scales = _per_sample_scales(guidance_scales, x.shape[0]).to(x.device)
    optimizer = optimizer or torch.optim.Adam([x], lr=lr)
    guide.embed(prompts + [""])  # cached now: the text encoder may be freed before the first step

    def step(i: int) -> dict:
        t = schedule.sample(x.shape[0], i / max(steps - 1, 1), generator)
        loss, info = guide.sds(x, prompts, t, scales, generator, model_space=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if clamp is not None:
            with torch.no_grad():
                x.clamp_(-clamp, clamp)
        return {"loss": loss.item(), "t": info["t"].float().mean().item(), "grad_norm": info["grad_norm"].item()}

    return step


@dataclass
class TextureSDSConfig:
    """Settings of :func:`make_texture_sds_step`; ``as_dict()`` is the run's identity for ``lib.train.fit``.

    Attributes:
        prompt: what the mesh should look like ("a chair"); the view word is added per camera when
            ``view_dependent`` (``lib.prompts.view_prompt``).
        steps: the run's length (the timestep schedule's progress is ``i / (steps - 1)``).
        image_size: render side, px. views_per_step: random cameras per step, azimuth uniform,
            elevation uniform in ``elevation_range`` (degrees), at ``distance``.
        guidance_scale: classifier-free guidance. lr: Adam's learning rate (the default optimizer).
    """

    prompt: str
    steps: int
    image_size: int
    views_per_step: int = 4
    distance: float = 1.3
    elevation_range: Tuple[float, float] = (-10.0, 50.0)
    guidance_scale: float = 7.5
    lr: float = 0.02
    view_dependent: bool = True

    def __post_init__(self):
        self.prompt = validate_prompt(self.prompt)
        if self.steps < 1 or self.image_size < 1 or self.views_per_step < 1:
            raise ValueError(f"TextureSDSConfig: steps, image_size and views_per_step must be >= 1, got "
                             f"{self.steps}, {self.image_size}, {self.views_per_step}")

    def as_dict(self) -> dict:
        return asdict(self)


def make_texture_sds_step(verts: torch.Tensor, faces: torch.Tensor, colors: TensorState, guide, K: torch.Tensor,
                          schedule: TimestepSchedule, config: TextureSDSConfig, *, generator: torch.Generator,
                          optimizer=None):
    """``step(i) -> {"loss", "t"}``: SDS on the per-vertex colours ``colors.value`` (V, 3) in [0, 1]
    of a fixed mesh (``verts`` (V, 3), ``faces`` (F, 3)), rendered with intrinsics ``K`` from
    ``config.views_per_step`` random cameras, headlight-shaded, on white. Colours are clamped to [0, 1].
    ``optimizer``: default Adam over the colours at ``config.lr``; ``generator`` draws cameras,
    timesteps and noise."""
    c = colors.value
    if c.ndim != 2 or c.shape != (verts.shape[0], 3):
        raise ValueError(f"colors must be (V, 3) = ({verts.shape[0]}, 3), got {tuple(c.shape)}")
    cfg = config
    optimizer = optimizer or torch.optim.Adam([c], lr=cfg.lr)
    guide.embed([""])  # cached now, as the image step does

    def step(i: int) -> dict:
        az, el = random_orbit_angles(cfg.views_per_step, cfg.elevation_range, generator)
        c2w = orbit_poses(az, el, cfg.distance)
        out = render_vertex_colors(verts, faces, c, c2w, K, cfg.image_size, background=1.0, shading="headlight")
        images = out["rgb"].clamp(0, 1)
        prompts = view_prompts(cfg.prompt, az, el, cfg.view_dependent)
        t = schedule.sample(cfg.views_per_step, i / max(cfg.steps - 1, 1), generator)
        loss, info = guide.sds(images, prompts, t, cfg.guidance_scale, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            c.clamp_(0, 1)
        return {"loss": loss.item(), "t": info["t"].float().mean().item()}

    return step


@torch.no_grad()
def denoising_error(guide, images: torch.Tensor, prompts: Sequence[str], t: int = 300, seed: int = 0) -> torch.Tensor:
    """How well the guide denoises ``images`` under ``prompts``: the per-image MSE between its noise
    prediction and the true noise at timestep ``t``, with noise from ``seed`` (the same for every
    call, so two sets of images are compared on equal terms). Lower means more typical of the
    prompt; predicting zero noise scores about 1.

    Args:
        images: (B, H, W, 3) renders in [0, 1] (``guide.to_model`` maps them). prompts: B strings.
    Returns:
        (B,) float32 on the CPU.
    """
    x0 = guide.to_model(images)
    if len(prompts) != len(x0):
        raise ValueError(f"denoising_error: need one prompt per image ({len(x0)}), got {len(prompts)}")
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(x0.shape, generator=g).to(x0.device, torch.float32)
    abar = guide.alphas_cumprod[t].float()
    x_t = add_noise(x0.float(), eps, abar)
    steps = torch.full((len(x0),), int(t), dtype=torch.int64, device=x0.device)
    eps_hat = guide.noise_pred_fn(x_t.to(x0.dtype), steps, guide.embed(list(prompts))).float()
    return ((eps_hat - eps) ** 2).flatten(1).mean(1).cpu()
