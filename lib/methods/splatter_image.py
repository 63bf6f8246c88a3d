"""Splatter Image (notebook 06): pixels to Gaussians, baselines, the training step and the evaluation.

The network is :class:`lib.models.splatter.SplatterImage`; this module holds what is not a network:

The geometry of "one Gaussian per pixel" (a depth on each pixel's ray, camera-frame rotations and SH
turned into the world frame) is :func:`lib.render.gaussians.pixel.pixel_gaussians`.

- :func:`flat_card`: the first baseline: every input pixel a small Gaussian at one depth, with its colour.
  :func:`evaluate_mean_image`: the second: the mean training image, whatever the input.
- :func:`input_channels`: the network's input, RGB or RGB + relative inverse depth (``depth_input``).
- :func:`render_predictions`: Gaussians of B objects rendered into V cameras each, in one batched call.
- :func:`make_splatter_step`: a ``step(i) -> {"loss", "psnr", "dt"}`` for ``lib.train.fit``, its
  settings a :class:`SplatterTraining`.
- :func:`evaluate_splatter`: held-out objects, a fixed input view, every other view scored with
  ``lib.metrics.view_scores`` (PSNR and SSIM per view).

Data come as the dict of ``lib.data.srn.load_srn_split``: ``images`` (O, V, H, W, 3) float in [0, 1]
(white background), ``c2w`` (O, V, 4, 4) (``lib.cameras`` convention), ``K`` (O, 3, 3) pixels,
``depth`` (O, V, H, W) camera z (or None). Gaussians are dicts: ``means`` (B, N, 3) world,
``quats`` (B, N, 4) wxyz world, ``scales`` (B, N, 3) > 0, ``opacities`` (B, N), ``sh`` (B, N, K, 3).

Example (CPU):
    >>> from lib.cameras import intrinsics_from_fov, orbit_poses
    >>> g = flat_card(torch.rand(2, 8, 8, 3), orbit_poses(torch.tensor([0.0, 90.0]), 20.0, 1.3),
    ...               intrinsics_from_fov(50.0, 8).expand(2, 3, 3), depth=1.3)
    >>> g["means"].shape, g["sh"].shape
    (torch.Size([2, 64, 3]), torch.Size([2, 64, 1, 3]))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from lib.cameras import world_to_camera
from lib.images import background_colour
from lib.metrics import mse_to_psnr, psnr, view_scores
from lib.pretrained.depth import depth_channel
from lib.render.gaussians import render_gaussians, rgb_to_sh0
from lib.render.gaussians.pixel import pixel_gaussians
from lib.train import Stopwatch

def flat_card(images: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, depth: float = 1.3,
              scale_px: float = 0.3, opacity: float = 0.95) -> dict:
    """Baseline "flat card": each input pixel a small Gaussian at camera z ``depth`` with its colour.

    Same call as the network (``images`` (B, H, W, C) of which the first 3 channels are used,
    ``c2w`` (B, 4, 4), ``K`` (B, 3, 3)) and the same output dict (without ``depth``), so
    ``evaluate_splatter(functools.partial(flat_card, depth=(near + far) / 2), data)`` scores it.
    """
    d = images.new_full(images.shape[:3], float(depth))
    return pixel_gaussians(d, c2w, K, scale_px=scale_px, opacities=opacity,
                           sh=rgb_to_sh0(images[..., None, :3]))


# ------------------------------------------------------------------------------- rendering
def render_predictions(gaussians: dict, c2w: torch.Tensor, K: torch.Tensor, image_size, background=1.0,
                       backend: str = "auto", renderer: Optional[Callable] = None):
    """Render B objects' Gaussians into V cameras each, in one ``render_gaussians`` call.

    Args:
        gaussians: dict of (B, N, ...) tensors (module docstring); the SH degree is read from ``sh``
            (K = 1: degree 0, K = 4: degree 1).
        c2w: (B, V, 4, 4) target cameras. K: (B, V, 3, 3) or (B, 3, 3) intrinsics.
        image_size: (H, W). background: a float or RGB (3,), or None (black).
        backend: passed to ``lib.render.gaussians.render_gaussians``. renderer: a function with
            its signature to use instead (tests).
    Returns:
        ``GaussianRender``: rgb (B, V, H, W, 3), depth and alpha (B, V, H, W, 1), ...
    """
    renderer = render_gaussians if renderer is None else renderer
    h, w = image_size
    if K.ndim == 3:
        K = K[:, None].expand(*c2w.shape[:2], 3, 3)
    degree = {1: 0, 4: 1}.get(gaussians["sh"].shape[-2])
    if degree is None:
        raise ValueError(f"render_predictions: `sh` must be (B, N, 1 or 4, 3), got {tuple(gaussians['sh'].shape)}")
    return renderer(gaussians["means"], gaussians["quats"], gaussians["scales"], gaussians["opacities"],
                    gaussians["sh"], world_to_camera(c2w), K, w, h, sh_degree=degree,
                    background=background_colour(background, c2w), backend=backend)


# ------------------------------------------------------------------------------- training
def input_channels(data: dict, depth_input=None, generator: Optional[torch.Generator] = None,
                   noise: float = 0.0) -> torch.Tensor:
    """The network's inputs for every view: (O, V, H, W, 3) RGB, or (O, V, H, W, 4) with a depth channel.

    Args:
        data: the split (module docstring).
        depth_input: None (RGB only); ``"relative"``: ``lib.pretrained.depth.depth_channel`` of the true
            ``data["depth"]`` (what a monocular estimator gives: relative inverse depth in [0, 1] on
            the foreground, 0 on the background; ``noise`` and ``generator`` perturb it); or a
            tensor (O, V, H, W) in [0, 1] to use as it is (e.g. ``lib.pretrained.depth.estimate_inverse_depth``).
    """
    images = data["images"]
    if depth_input is None:
        return images
    if isinstance(depth_input, str):
        if depth_input != "relative":
            raise ValueError(f"depth_input must be None, 'relative' or an (O, V, H, W) tensor, got {depth_input!r}")
        if data.get("depth") is None:
            raise ValueError("depth_input='relative' needs data['depth'] (O, V, H, W); this split has none "
                             "(real SRN data: pass lib.pretrained.depth.estimate_inverse_depth of the images instead)")
        depth_input = depth_channel(data["depth"], noise=noise, generator=generator)
    if tuple(depth_input.shape) != tuple(images.shape[:-1]):
        raise ValueError(f"depth_input must be (O, V, H, W) = {tuple(images.shape[:-1])}, got {tuple(depth_input.shape)}")
    return torch.cat([images, depth_input[..., None].to(images)], -1)


@dataclass
class SplatterTraining:
    """Settings of :func:`make_splatter_step`.

    Attributes:
        n_targets: target views per object besides the input (distinct views).
        batch: objects per step.
        include_input: also render the prediction into its own input view, as the paper does.
        background: the images' background colour (white for SRN).
        backend: the Gaussian rasteriser, ``"auto"``, ``"torch"`` or ``"gsplat"`` (:mod:`lib.backend`).
    """

    n_targets: int = 3
    batch: int = 4
    include_input: bool = True
    background: float = 1.0
    backend: str = "auto"

    def __post_init__(self):
        if self.n_targets < 1 or self.batch < 1:
            raise ValueError(f"SplatterTraining: `n_targets` and `batch` must be >= 1, got {self.n_targets}, "
                             f"{self.batch}")


def make_splatter_step(model, optimizer, data: dict, generator: torch.Generator,
                       settings: Optional[SplatterTraining] = None, depth_input=None, device="cpu",
                       renderer: Optional[Callable] = None):
    """A training step for ``lib.train.fit``.

    Each call draws ``settings.batch`` objects and, per object, ``1 + settings.n_targets`` distinct
    views (from ``generator``, on the CPU): the first is the input, the others are targets. The
    network predicts Gaussians from the input; they are rendered into the targets (and, with
    ``include_input``, into the input view too) in one batched call; loss = MSE against the images.

    Args:
        model: :class:`lib.models.splatter.SplatterImage` (on ``device``). optimizer: its optimizer.
        data: the training split (module docstring). settings: default ``SplatterTraining()``.
        depth_input: see :func:`input_channels` (the depth channel is computed once, here).
        renderer: the Gaussian renderer (default ``lib.render.gaussians.render_gaussians``).
    Returns:
        ``step(i) -> {"loss": MSE, "psnr": dB of it, "dt": seconds}``.
    """
    s = settings or SplatterTraining()
    n_targets, batch, include_input = s.n_targets, s.batch, s.include_input
    inputs = input_channels(data, depth_input)
    images, c2w, Ks = data["images"], data["c2w"], data["K"]
    n_obj, n_views = images.shape[:2]
    if not 1 <= n_targets < n_views:
        raise ValueError(f"n_targets must be in [1, {n_views - 1}] (the views per object minus the input), got {n_targets}")
    size = tuple(images.shape[2:4])

    def step(i: int) -> dict:
        with Stopwatch(device) as watch:
            model.train()
            obj = torch.randint(n_obj, (batch,), generator=generator)
            views = torch.rand(batch, n_views, generator=generator).argsort(1)[:, :1 + n_targets]
            src, tgt = views[:, 0], views if include_input else views[:, 1:]
            K = Ks[obj].to(device)
            g = model(inputs[obj, src].to(device), c2w[obj, src].to(device), K)
            out = render_predictions(g, c2w[obj[:, None], tgt].to(device), K, size, s.background, s.backend, renderer)
            loss = F.mse_loss(out.rgb, images[obj[:, None], tgt].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        value = loss.item()
        return {"loss": value, "psnr": mse_to_psnr(value), "dt": watch.seconds}

    return step


# ------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_splatter(model, data: dict, input_view: int = 0, background=1.0, depth_input=None,
                      backend: str = "auto", batch: int = 8, n_renders: int = 4, device="cpu",
                      renderer: Optional[Callable] = None) -> dict:
    """Novel-view scores on held-out objects: the Gaussians predicted from view ``input_view`` are
    rendered into every view; all views but the input are scored against the images.

    Args:
        model: a :class:`~lib.models.splatter.SplatterImage` (put in eval mode) or any callable
            ``(inputs (B, H, W, C), c2w (B, 4, 4), K (B, 3, 3)) -> Gaussians`` (e.g. :func:`flat_card`).
        data: the held-out split. depth_input: as in training (:func:`input_channels`, noise-free).
        batch: objects per forward pass. n_renders: objects whose renders are returned.
    Returns:
        dict: ``psnr``, ``ssim`` (floats: means over objects of the per-object means over the scored
        views), ``psnr_per_object``, ``ssim_per_object`` (O,), ``psnr_input`` (float: the input view
        re-rendered, a reconstruction check), and ``renders``: CPU tensors of the first ``n_renders``
        objects: ``inputs`` (n, H, W, C), ``rgb`` and ``truth`` (n, V, H, W, 3) (``rgb`` clamped to
        [0, 1]), ``opacity`` (n, V, H, W), ``depth`` (n, H, W) the predicted per-pixel depth (only
        when the model returns one).
    """
    if isinstance(model, torch.nn.Module):
        model.eval()
    inputs = input_channels(data, depth_input)
    images, c2w, Ks = data["images"], data["c2w"], data["K"]
    n_obj, n_views = images.shape[:2]
    if not 0 <= input_view < n_views:
        raise ValueError(f"input_view must be in [0, {n_views - 1}], got {input_view}")
    scored = torch.arange(n_views) != input_view
    p_obj, s_obj, p_in, renders = [], [], [], {"inputs": [], "rgb": [], "truth": [], "opacity": [], "depth": []}
    for lo in range(0, n_obj, batch):
        obj = torch.arange(lo, min(lo + batch, n_obj))
        K = Ks[obj].to(device)
        g = model(inputs[obj, input_view].to(device), c2w[obj, input_view].to(device), K)
        out = render_predictions(g, c2w[obj].to(device), K, tuple(images.shape[2:4]), background, backend, renderer)
        rgb, truth = out.rgb.clamp(0, 1).cpu(), images[obj]
        for b in range(len(obj)):
            p, s = view_scores(rgb[b, scored], truth[b, scored])
            p_obj.append(p.mean())
            s_obj.append(s.mean())
            p_in.append(psnr(rgb[b, input_view], truth[b, input_view]))
        keep = max(0, min(len(obj), n_renders - lo))
        if keep:
            renders["inputs"].append(inputs[obj[:keep], input_view])
            renders["rgb"].append(rgb[:keep])
            renders["truth"].append(truth[:keep])
            renders["opacity"].append(out.alpha[:keep, ..., 0].cpu())
            if "depth" in g:
                renders["depth"].append(g["depth"][:keep].cpu())
    renders = {k: torch.cat(v) for k, v in renders.items() if v}
    p_obj, s_obj = torch.stack(p_obj), torch.stack(s_obj)
    return {"psnr": p_obj.mean().item(), "ssim": s_obj.mean().item(), "psnr_per_object": p_obj,
            "ssim_per_object": s_obj, "psnr_input": torch.stack(p_in).mean().item(), "renders": renders}


@torch.no_grad()
def evaluate_mean_image(train_images: torch.Tensor, data: dict, input_view: int = 0) -> dict:
    """Baseline "mean training image": predict the per-pixel mean of every training image for every view.

    Args:
        train_images: (O, V, H, W, 3) training images (their mean is the prediction).
        data: the held-out split; ``input_view`` is left out of the scores, as in :func:`evaluate_splatter`.
    Returns:
        dict: ``psnr``, ``ssim`` (floats), ``psnr_per_object``, ``ssim_per_object`` (O,), ``image`` (H, W, 3).
    """
    images = data["images"]
    if train_images.shape[-3:] != images.shape[-3:]:
        raise ValueError(f"train_images must be (..., H, W, 3) = (..., {', '.join(map(str, images.shape[-3:]))}), "
                         f"got {tuple(train_images.shape)}")
    mean = train_images.reshape(-1, *images.shape[-3:]).float().mean(0)
    scored = torch.arange(images.shape[1]) != input_view
    p_obj, s_obj = [], []
    for truth in images:
        p, s = view_scores(mean.expand_as(truth[scored]), truth[scored])
        p_obj.append(p.mean())
        s_obj.append(s.mean())
    p_obj, s_obj = torch.stack(p_obj), torch.stack(s_obj)
    return {"psnr": p_obj.mean().item(), "ssim": s_obj.mean().item(), "psnr_per_object": p_obj,
            "ssim_per_object": s_obj, "image": mean}
