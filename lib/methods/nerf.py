"""The NeRF training step, renderer and evaluation that notebooks 04, 05 and
``benchmarks/nerf_sampling.py`` share (one copy of the loop, configured by each caller).

The pieces, each small and replaceable:

- :func:`training_rays`: every pixel of a set of posed views as one ray (origin, direction, colour).
- :func:`volume_renderer`: the usual ``render(field, origins, directions, generator, perturb)``:
  stratified samples on the part of each ray inside the scene box, then volume rendering.
  Any function with that signature works in its place (e.g. one that samples an occupancy grid).
- :func:`make_nerf_step`: a ``step(i) -> {"loss", "psnr", "dt", "evals_per_ray"}`` for
  ``lib.train.fit``: a random batch of rays from a generator, render, MSE, optimizer (and
  scheduler) step, with an optional ``hook(i)`` first (e.g. refresh an occupancy grid).
- :func:`evaluate_views`: render held-out views chunk by chunk (``lib.render.volume.render_image``)
  and score them with ``lib.metrics.view_scores``.

Views come as the dicts of ``lib.data.blender.load_blender``: ``images`` (N, H, W, 3) float in
[0, 1], ``c2w`` (N, 4, 4) camera-to-world (``lib.cameras`` convention), ``K`` (3, 3).
Devices and generators are explicit arguments.

Example (CPU):
    >>> from lib.models.nerf import BoxDensity
    >>> from lib.cameras import intrinsics_from_fov, orbit_poses
    >>> views = {"images": torch.rand(2, 8, 8, 3), "c2w": orbit_poses(2, 20.0, 4.0),
    ...          "K": intrinsics_from_fov(40.0, 8)}
    >>> field = BoxDensity()
    >>> opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    >>> render = volume_renderer(2.0, 6.0, 16, background=1.0)
    >>> step = make_nerf_step(field, opt, render, training_rays(views), torch.Generator().manual_seed(0), 32)
    >>> sorted(step(0))
    ['dt', 'evals_per_ray', 'loss', 'mse', 'psnr']
    >>> scores = evaluate_views(field, render, views)
    >>> scores["psnr_per_view"].shape, scores["renders"][0]["rgb"].shape
    (torch.Size([2]), torch.Size([8, 8, 3]))
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from lib.images import check_images
from lib.metrics import mse_to_psnr, view_scores
from lib.rays import get_rays, near_far_from_aabb
from lib.render.volume import render_image, volume_render
from lib.train import Stopwatch

RenderFn = Callable[..., dict]  # (field, origins (R, 3), directions (R, 3), generator=None, perturb=True) -> dict


def _check_posed_images(data: dict, name: str = "data") -> None:
    missing = [k for k in ("images", "c2w", "K") if k not in data]
    if missing:
        raise ValueError(f"`{name}` must hold images (N, H, W, 3), c2w (N, 4, 4) and K (3, 3); missing {missing}")
    check_images(data["images"], f"`{name}['images']`")
    n = data["images"].shape[0]
    if tuple(data["c2w"].shape) != (n, 4, 4):
        raise ValueError(f"`{name}`: c2w must be (N, 4, 4) for the {n} images, got {tuple(data['c2w'].shape)}")


def training_rays(data: dict, device="cpu") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pixel of every view as a ray.

    Args:
        data: views (see the module docstring). device: where the rays go.
    Returns:
        origins (N H W, 3) world, directions (N H W, 3) unit, colors (N H W, 3) in [0, 1]; row
        ``(i * H + y) * W + x`` is pixel (x, y) of view i.
    """
    _check_posed_images(data)
    size = tuple(data["images"].shape[1:3])
    origins, dirs = (x.reshape(-1, 3).to(device) for x in get_rays(data["c2w"], data["K"], size))
    return origins, dirs, data["images"].reshape(-1, 3).to(device)


def volume_renderer(near: float, far: float, n_samples: int, background=None, aabb=None) -> RenderFn:
    """The standard NeRF render function: ``render(field, origins, directions, generator=None,
    perturb=True) -> dict`` of :func:`lib.render.volume.volume_render` (rgb (R, 3), distance (R,),
    opacity (R,), n_evals, ...).

    Args:
        near, far: ray bounds, world units. n_samples: stratified samples per ray.
        background: colour behind the scene: None (black), a float or (3,) RGB.
        aabb: optional (2, 3) or (6,) scene box; samples are then spread over the part of each
            ray inside it (:func:`lib.rays.near_far_from_aabb`), not over [near, far].
    """

    def render(field, origins: torch.Tensor, directions: torch.Tensor, generator=None, perturb: bool = True):
        lo, hi = near, far
        if aabb is not None:
            lo, hi = near_far_from_aabb(origins, directions, aabb, near, far)
        return volume_render(field, origins, directions, lo, hi, n_samples, generator,
                             background=background, perturb=perturb)

    return render


def make_nerf_step(field, optimizer, render: RenderFn, rays: Sequence[torch.Tensor], generator: torch.Generator,
                   batch_size: int, scheduler=None, hook: Optional[Callable[[int], None]] = None,
                   extra_loss: Optional[Callable[[int], torch.Tensor]] = None):
    """A training step for ``lib.train.fit``.

    Each call ``step(i)``: ``hook(i)`` if given; draw ``batch_size`` random rays with ``generator``
    (a generator on the rays' device); ``out = render(field, o, d, generator)``; loss = MSE of
    ``out["rgb"]`` against the pixels, plus ``extra_loss(i)`` if given (called after the render, so
    its random draws come after the ray batch's); backward, ``optimizer.step()``, ``scheduler.step()``.

    Args:
        field: the radiance field the render function queries (an ``nn.Module`` or callable).
        optimizer, scheduler: torch optimizer and optional learning-rate scheduler.
        render: see :func:`volume_renderer`.
        rays: (origins, directions, colors), each (R, 3) on one device (:func:`training_rays`).
        generator: ``torch.Generator`` on that device; draws the rays and the sample jitter.
        extra_loss: ``i -> () tensor`` added to the photometric loss, e.g. VolSDF's weighted
            eikonal term at random points (notebook 05).
    Returns:
        ``step(i) -> {"loss": MSE (+ the extra term), "mse": MSE, "psnr": dB of the MSE, "dt":
        seconds of the step (CUDA synchronised), "evals_per_ray": field evaluations per ray}``.
    """
    origins, dirs, colors = rays
    if not (origins.shape == dirs.shape == colors.shape) or origins.ndim != 2 or origins.shape[1] != 3:
        raise ValueError(f"`rays` must be three (R, 3) tensors, got {[tuple(r.shape) for r in rays]}")

    def step(i: int) -> dict:
        with Stopwatch(origins.device) as watch:  # so that dt is the real time of the step
            if hook is not None:
                hook(i)
            idx = torch.randint(len(origins), (batch_size,), generator=generator, device=origins.device)
            out = render(field, origins[idx], dirs[idx], generator)
            mse = F.mse_loss(out["rgb"], colors[idx])
            loss = mse if extra_loss is None else mse + extra_loss(i)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        mse = mse.item()
        return {"loss": loss.item(), "mse": mse, "psnr": mse_to_psnr(mse), "dt": watch.seconds,
                "evals_per_ray": out.get("n_evals", 0) / batch_size}

    return step


@torch.no_grad()
def evaluate_views(field, render: RenderFn, data: dict, device="cpu", n: Optional[int] = None,
                   chunk: int = 4096) -> dict:
    """Render views without jitter and score them against their images.

    Args:
        field, render: as for :func:`make_nerf_step` (rendered with ``perturb=False``).
        data: the views to score (see the module docstring).
        device: where rays are rendered. n: score ``n`` views evenly spaced over ``data``
            (``linspace(0, N - 1, n)`` rounded), or all of them (None).
        chunk: rays per render call.
    Returns:
        dict: ``psnr`` and ``ssim`` (floats, means over the views of the per-view values),
        ``psnr_per_view`` and ``ssim_per_view`` (n,), ``index`` (n,) int64 views scored, and
        ``renders``: n dicts of CPU tensors rgb (H, W, 3) clamped to [0, 1], distance (H, W)
        (expected ray length), opacity (H, W).
    """
    _check_posed_images(data)
    count = len(data["images"])
    idx = torch.arange(count) if n is None else torch.linspace(0, count - 1, n).round().long()
    K = data["K"].to(device)
    size = tuple(data["images"].shape[1:3])
    renders = []
    for i in idx.tolist():
        out = render_image(lambda o, d: render(field, o, d, None, perturb=False), data["c2w"][i].to(device), K,
                           size, chunk)
        out = {k: v.cpu() for k, v in out.items()}
        out["rgb"] = out["rgb"].clamp(0, 1)
        renders.append(out)
    p, s = view_scores(torch.stack([r["rgb"] for r in renders]), data["images"][idx])
    return {"psnr": p.mean().item(), "ssim": s.mean().item(), "psnr_per_view": p, "ssim_per_view": s,
            "index": idx, "renders": renders}
