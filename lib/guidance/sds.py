"""Score Distillation Sampling (DreamFusion): timesteps and the loss, as pure functions.

A diffusion model trained with the noise-prediction objective gives, for a noised image
``x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps``, an estimate ``eps_hat`` of the noise. SDS uses
``w(t) (eps_hat - eps)`` as the gradient of "how unlikely is ``x`` under the prompt" with respect to
``x`` (an image, or Stable Diffusion latents), skipping the U-Net's Jacobian. The model comes in
as a callable ``noise_pred_fn(x_t, t, embeddings) -> eps_hat`` (shapes in :func:`sds_loss`), so
this module owns no model.

Timesteps are integers in ``[0, num_train_timesteps - 1]``; ``t_min``/``t_max`` are fractions of
``num_train_timesteps`` (defaults 0.02 and 0.98, as in DreamFusion).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> abar = torch.linspace(0.999, 0.01, 1000)
    >>> fn = lambda x_t, t, emb: torch.zeros_like(x_t)          # a stand-in noise predictor
    >>> x = torch.zeros(2, 3, 8, 8, requires_grad=True)
    >>> cond = torch.zeros(1, 5, 16)
    >>> loss, info = sds_loss(fn, x, (cond, None), abar, generator=g)
    >>> loss.backward(); x.grad.shape, info["t"].shape, info["x0_hat"].shape
    (torch.Size([2, 3, 8, 8]), torch.Size([2]), torch.Size([2, 3, 8, 8]))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

import torch

from lib.checks import shape_of

T_MIN, T_MAX = 0.02, 0.98
ANNEALS = ("constant", "linear", "exponential")
WEIGHTINGS = ("sds", "uniform")
CLIP_MODES = ("norm", "value")

NoisePredFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _check_range(t_min: float, t_max: float) -> None:
    if not (0.0 <= t_min <= t_max <= 1.0):
        raise ValueError(f"need 0 <= t_min <= t_max <= 1 (fractions of the schedule), "
                         f"got t_min={t_min}, t_max={t_max}")


def sample_timesteps(batch: int, num_train_timesteps: int, t_min: float = T_MIN,
                     t_max: float = T_MAX, generator: Optional[torch.Generator] = None,
                     device="cpu") -> torch.Tensor:
    """(batch,) int64 timesteps, uniform over the integers ``round(t_min N) .. round(t_max N)``
    (both ends included, clamped to ``[0, N - 1]``), ``N = num_train_timesteps``.

    Deterministic given ``generator`` (drawn on the CPU, then moved to ``device``).
    """
    if batch < 1 or num_train_timesteps < 1:
        raise ValueError(f"batch and num_train_timesteps must be >= 1, got {batch}, "
                         f"{num_train_timesteps}")
    _check_range(t_min, t_max)
    lo = min(max(int(round(t_min * num_train_timesteps)), 0), num_train_timesteps - 1)
    hi = min(max(int(round(t_max * num_train_timesteps)), lo), num_train_timesteps - 1)
    t = torch.randint(lo, hi + 1, (batch,), generator=generator, dtype=torch.int64)
    return t.to(device)


@dataclass(frozen=True)
class TimestepSchedule:
    """Where timesteps are drawn from as training progresses (``progress`` in [0, 1]).

    The lower end stays at ``t_min``; the upper end ``hi(p)`` depends on ``anneal``, with
    ``p = min(progress / anneal_fraction, 1)``:

    - ``"constant"``: ``hi = t_max``.
    - ``"linear"``: ``hi = t_max + (t_max_final - t_max) p`` (falls linearly, then stays).
    - ``"exponential"``: ``hi = t_max (t_max_final / t_max) ** p`` (geometric decay: the same
      ratio per unit of progress; equals ``t_max_final`` from ``p = 1`` on).

    With ``t_min_start`` set, the lower end moves too, by the same rule, from ``t_min_start`` down
    to ``t_min`` while ``t_max`` stays (``t_max_final = t_max``): early steps use only heavy noise
    (coarse shape), later ones every level (detail). Notebook 09 lowers ``t_min`` from 0.95 to
    0.05 over the first third; NeuralLift-360's code from 0.95 to 0.65 over the whole run.

    Attributes:
        num_train_timesteps: N of the model's scheduler (1000 for Stable Diffusion).
        t_min, t_max: fractions of N, ``0 <= t_min <= t_max <= 1``.
        anneal: one of ``ANNEALS``.
        t_max_final: the upper fraction reached at the end of annealing, in ``[t_min, t_max]``
            (unused for ``"constant"``).
        anneal_fraction: the fraction of training over which ``hi`` falls, in (0, 1].
        t_min_start: None (the lower end stays at ``t_min``) or its value at the start, in
            ``[t_min, t_max]``.
    """
    num_train_timesteps: int = 1000
    t_min: float = T_MIN
    t_max: float = T_MAX
    anneal: str = "constant"
    t_max_final: float = 0.5
    anneal_fraction: float = 1.0
    t_min_start: Optional[float] = None

    def __post_init__(self):
        _check_range(self.t_min, self.t_max)
        if self.anneal not in ANNEALS:
            raise ValueError(f"anneal must be one of {ANNEALS}, got {self.anneal!r}")
        if self.anneal != "constant" and not (self.t_min <= self.t_max_final <= self.t_max):
            raise ValueError(f"t_max_final must be in [t_min, t_max] = [{self.t_min}, {self.t_max}],"
                             f" got {self.t_max_final}")
        if self.anneal == "exponential" and self.t_max_final <= 0:
            raise ValueError(f"exponential annealing needs t_max_final > 0, got {self.t_max_final}")
        if not (0.0 < self.anneal_fraction <= 1.0):
            raise ValueError(f"anneal_fraction must be in (0, 1], got {self.anneal_fraction}")
        if self.t_min_start is not None and not (self.t_min <= self.t_min_start <= self.t_max):
            raise ValueError(f"t_min_start must be in [t_min, t_max] = [{self.t_min}, {self.t_max}], "
                             f"got {self.t_min_start}")
        if self.t_min_start is not None and self.anneal == "exponential" and self.t_min <= 0:
            raise ValueError(f"exponential annealing of the lower end needs t_min > 0, got {self.t_min}")
        if self.num_train_timesteps < 1:
            raise ValueError(f"num_train_timesteps must be >= 1, got {self.num_train_timesteps}")

    def bounds(self, progress: float = 0.0) -> Tuple[float, float]:
        """``(t_min, hi(progress))`` as fractions of ``num_train_timesteps``."""
        if not (0.0 <= progress <= 1.0):
            raise ValueError(f"progress must be in [0, 1], got {progress}")
        p = min(progress / self.anneal_fraction, 1.0)
        hi = self._move(self.t_max, self.t_max_final, p)
        lo = self.t_min if self.t_min_start is None else self._move(self.t_min_start, self.t_min, p)
        lo = min(max(lo, self.t_min), self.t_max)
        return lo, max(min(hi, self.t_max), lo)

    def _move(self, start: float, end: float, p: float) -> float:
        if self.anneal == "constant":
            return start
        if self.anneal == "linear":
            return start + (end - start) * p
        return start * math.exp(p * math.log(end / start))

    def sample(self, batch: int, progress: float = 0.0,
               generator: Optional[torch.Generator] = None, device="cpu") -> torch.Tensor:
        """(batch,) int64 timesteps drawn by :func:`sample_timesteps` within :meth:`bounds`."""
        lo, hi = self.bounds(progress)
        return sample_timesteps(batch, self.num_train_timesteps, lo, hi, generator, device)


def _expand_embeddings(emb: torch.Tensor, batch: int, name: str) -> torch.Tensor:
    if not torch.is_tensor(emb) or emb.ndim != 3:
        raise ValueError(f"{name} must be a (B, L, D) tensor, got "
                         f"{shape_of(emb)}")
    if emb.shape[0] == 1:
        return emb.expand(batch, -1, -1)
    if emb.shape[0] != batch:
        raise ValueError(f"{name} must have batch 1 or {batch} (as latents), got {tuple(emb.shape)}")
    return emb


def _clip(grad: torch.Tensor, grad_clip: Optional[float], clip_mode: str) -> torch.Tensor:
    if grad_clip is None:
        return grad
    if clip_mode == "value":
        return grad.clamp(-grad_clip, grad_clip)
    norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    scale = (grad_clip / norms).clamp(max=1.0)
    return grad * scale.view(-1, *([1] * (grad.ndim - 1)))


def add_noise(x: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """The forward (noising) process at a timestep: ``x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps``.

    Args:
        x: clean samples. eps: Gaussian noise of ``x``'s shape. abar: ``alphas_cumprod[t]``,
            broadcastable to ``x`` (a scalar, or (B, 1, 1, 1) for one timestep per sample).

    >>> x, eps = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
    >>> add_noise(x, eps, torch.tensor(0.25)).item(), add_noise(eps, x, torch.tensor(0.75)).item()
    (0.5, 0.5)
    """
    return abar.sqrt() * x + (1 - abar).sqrt() * eps


def predict_x0(x_t: torch.Tensor, eps_hat: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """The clean sample that :func:`add_noise` would have turned into ``x_t`` with noise ``eps_hat``:
    ``x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)`` (the model's guess when ``eps_hat`` is its
    noise prediction; exact with the true noise).

    >>> x, eps, abar = torch.rand(2, 3, 4, 4), torch.randn(2, 3, 4, 4), torch.tensor(0.3)
    >>> torch.allclose(predict_x0(add_noise(x, eps, abar), eps, abar), x, atol=1e-5)
    True
    """
    return (x_t - (1 - abar).sqrt() * eps_hat) / abar.sqrt()


def sds_loss(noise_pred_fn: NoisePredFn, latents: torch.Tensor,
             text_embeddings: Union[torch.Tensor, Tuple[torch.Tensor, Optional[torch.Tensor]]],
             alphas_cumprod: torch.Tensor, t: Union[None, int, torch.Tensor] = None, *,
             guidance_scale: float = 100.0, weighting: str = "sds",
             grad_clip: Optional[float] = None, clip_mode: str = "norm",
             t_range: Tuple[float, float] = (T_MIN, T_MAX),
             generator: Optional[torch.Generator] = None,
             noise: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, dict]:
    """The SDS loss of ``latents`` under a prompt, and what it looked like.

    Steps (all in float32, whatever ``latents.dtype``; the model sees ``latents.dtype``):

    1. ``x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps`` with ``eps ~ N(0, I)`` (or ``noise``).
    2. Classifier-free guidance: ``eps_hat = eps_u + s (eps_c - eps_u)`` from ONE batched call
       ``noise_pred_fn(cat[x_t, x_t], cat[t, t], cat[uncond, cond])``; with ``uncond`` None or
       ``s == 1`` it is one plain conditional call, ``eps_hat = eps_c``. No autograd through it.
    3. ``grad = w(t) (eps_hat - eps)`` with ``w = 1 - abar_t`` (``"sds"``) or ``1``
       (``"uniform"``); NaN/inf set to 0; then optional clipping: ``clip_mode="norm"`` scales each
       sample's gradient to L2 norm at most ``grad_clip``; ``"value"`` clamps every entry to
       ``[-grad_clip, grad_clip]``.
    4. ``loss = 0.5 ||x - (x - grad).detach()||^2`` summed, divided by the batch size B, so
       ``d loss / d latents = grad / B`` exactly (``= grad`` for one view); the loss value itself
       means nothing, only its gradient.

    Args:
        noise_pred_fn: ``(x_t (2B or B, C, H, W) latents.dtype, t (2B or B,) int64,
            embeddings (2B or B, L, D)) -> eps_hat`` of ``x_t``'s shape (any float dtype).
        latents: (B, C, H, W) float (fp16 fine): SD latents or pixels of a pixel-space prior.
        text_embeddings: ``cond`` or ``(cond, uncond)``; each (1 or B, L, D); ``uncond`` may be
            None (no guidance).
        alphas_cumprod: (N,) the scheduler's cumulative alpha products, ``N`` = number of
            training timesteps.
        t: an int, a (B,) int tensor, or None to draw with ``generator`` uniformly from
            ``t_range`` (fractions of N; see :func:`sample_timesteps`).
        guidance_scale: ``s > 0``; 7.5 is SD's sampling default, DreamFusion uses 100. A (B,)
            tensor gives each sample its own scale (a guidance sweep in one batch).
        weighting: one of ``WEIGHTINGS``.
        grad_clip, clip_mode: see step 3; ``grad_clip`` None = no clipping, else > 0.
        generator: for ``t`` and ``eps`` (drawn on the CPU, moved to ``latents.device``).
        noise: optional (B, C, H, W) ``eps`` (tests; otherwise drawn).

    Returns:
        ``(loss, info)``: loss a 0-d float32 tensor; info ``{"t": (B,) int64, "w": (B,) float32,
        "grad": (B, C, H, W) float32, "grad_norm": 0-d float32 (L2 norm of the whole clipped
        gradient), "x0_hat": (B, C, H, W) float32 = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar)}``,
        all detached.
    """
    per_sample = torch.is_tensor(guidance_scale)
    if per_sample:
        if guidance_scale.ndim != 1 or not bool((guidance_scale > 0).all()):
            raise ValueError(f"guidance_scale must be a number > 0 or a (B,) tensor of them, got "
                             f"{guidance_scale.tolist()}")
    elif not (isinstance(guidance_scale, (int, float)) and guidance_scale > 0):
        raise ValueError(f"guidance_scale must be a number > 0, got {guidance_scale!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if clip_mode not in CLIP_MODES:
        raise ValueError(f"clip_mode must be one of {CLIP_MODES}, got {clip_mode!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be None or > 0, got {grad_clip}")
    if not torch.is_tensor(latents) or latents.ndim != 4 or not latents.is_floating_point():
        raise ValueError(f"latents must be a (B, C, H, W) float tensor, got "
                         f"{tuple(latents.shape) if torch.is_tensor(latents) else type(latents)}"
                         f"{' ' + str(latents.dtype) if torch.is_tensor(latents) else ''}")
    if not torch.is_tensor(alphas_cumprod) or alphas_cumprod.ndim != 1:
        got = tuple(alphas_cumprod.shape) if torch.is_tensor(alphas_cumprod) else alphas_cumprod
        raise ValueError(f"alphas_cumprod must be (N,), got {got}")
    B, dev, n_train = latents.shape[0], latents.device, alphas_cumprod.shape[0]
    if per_sample:
        if guidance_scale.shape != (B,):
            raise ValueError(f"a per-sample guidance_scale must be ({B},) like latents' batch, got "
                             f"{tuple(guidance_scale.shape)}")
        guidance_scale = guidance_scale.to(dev, torch.float32).view(B, 1, 1, 1)
    cond, uncond = (text_embeddings if isinstance(text_embeddings, (tuple, list))
                    else (text_embeddings, None))
    cond = _expand_embeddings(cond, B, "text_embeddings cond")
    if uncond is not None:
        uncond = _expand_embeddings(uncond, B, "text_embeddings uncond")
        if uncond.shape != cond.shape:
            raise ValueError(f"uncond must match cond {tuple(cond.shape)}, got {tuple(uncond.shape)}")

    if t is None:
        t = sample_timesteps(B, n_train, t_range[0], t_range[1], generator)
    t = torch.as_tensor(t, dtype=torch.int64).reshape(-1).to(dev)
    if t.numel() == 1:
        t = t.expand(B)
    if t.shape != (B,) or t.min() < 0 or t.max() >= n_train:
        raise ValueError(f"t must be an int or (B,) = ({B},) ints in [0, {n_train - 1}], "
                         f"got {t.tolist()}")
    if noise is None:
        noise = torch.randn(latents.shape, generator=generator).to(dev)
    elif noise.shape != latents.shape:
        raise ValueError(f"noise must be {tuple(latents.shape)} like latents, got {tuple(noise.shape)}")

    x = latents.float()
    abar = alphas_cumprod.to(dev, torch.float32)[t].view(B, 1, 1, 1)
    with torch.no_grad():
        eps = noise.float()
        x_t = add_noise(x, eps, abar)
        x_in = x_t.to(latents.dtype)
        if uncond is None or (not per_sample and guidance_scale == 1):
            eps_hat = noise_pred_fn(x_in, t, cond).float()
        else:
            out = noise_pred_fn(torch.cat([x_in, x_in]), torch.cat([t, t]),
                                torch.cat([uncond, cond])).float()
            eps_u, eps_c = out.chunk(2)
            eps_hat = eps_u + guidance_scale * (eps_c - eps_u)
        if eps_hat.shape != latents.shape:
            raise ValueError(f"noise_pred_fn must return {tuple(latents.shape)} (per call half of a"
                             f" batched call), got {tuple(eps_hat.shape)}")
        w = (1 - abar) if weighting == "sds" else torch.ones_like(abar)
        grad = torch.nan_to_num(w * (eps_hat - eps), nan=0.0, posinf=0.0, neginf=0.0)
        grad = _clip(grad, grad_clip, clip_mode)
        x0_hat = predict_x0(x_t, eps_hat, abar)
    target = (x - grad).detach()
    loss = 0.5 * ((x - target) ** 2).sum() / B
    info = {"t": t, "w": w.view(B), "grad": grad, "grad_norm": grad.norm(), "x0_hat": x0_hat}
    return loss, info
