"""Training 3D Gaussian splatting (Kerbl et al., 2023): per-parameter learning rates,
densification (clone / split / prune / opacity reset), the SH-degree schedule, a training step for
``lib.train.fit`` and the evaluation of held-out views.

The defaults are the paper's (its ``arguments`` and Section 5): Adam with eps 1e-15 and one
learning rate per parameter, the means' decaying exponentially from 1.6e-4 to 1.6e-6 times the
scene extent; loss ``(1 - 0.2) L1 + 0.2 (1 - SSIM)``; one more SH band every 1000 steps;
densification every 100 steps from step 500 to 15000 where the mean 2D-position gradient
(NDC units) exceeds 2e-4; opacity reset every 3000 steps; pruning below opacity 0.005.

The pieces:

- :class:`GaussianTrainConfig`, :func:`make_optimizer`, :func:`lr_schedule`, :func:`sh_degree_at`,
  :func:`camera_extent`.
- :func:`edit_gaussians`: keep / append rows of every parameter *and* of Adam's moments (the same
  ``nn.Parameter`` objects, resized in place), :func:`reset_opacity`.
- :class:`DensifyConfig`, :class:`Densifier` (statistics from each render; ``state_dict`` so
  ``fit`` checkpoints it).
- :func:`make_gaussian_step` -> ``step(i)`` for ``lib.train.fit``; :func:`evaluate_gaussians`.

Example (CPU):
    >>> from lib.cameras import intrinsics_from_fov, orbit_poses, world_to_camera
    >>> from lib.models.gaussians import GaussianModel
    >>> c2w = orbit_poses([0.0, 90.0], 20.0, 3.0)
    >>> viewmats, Ks = world_to_camera(c2w), intrinsics_from_fov(40.0, 16)[None].expand(2, 3, 3)
    >>> model = GaussianModel.from_points(torch.rand(50, 3) - 0.5, max_sh_degree=1)
    >>> cfg = GaussianTrainConfig(steps=4)
    >>> opt = make_optimizer(model, cfg, camera_extent(c2w))
    >>> step = make_gaussian_step(model, opt, Densifier(DensifyConfig(densify_from=1, densify_every=2)),
    ...                           torch.rand(2, 16, 16, 3), viewmats, Ks, cfg, camera_extent(c2w),
    ...                           torch.Generator().manual_seed(0), backend="torch")
    >>> sorted(step(0))
    ['dt', 'l1', 'loss', 'n_gaussians', 'psnr', 'ssim']
    >>> evaluate_gaussians(model, torch.rand(2, 16, 16, 3), viewmats, Ks, backend="torch")["renders"][0]["rgb"].shape
    torch.Size([16, 16, 3])
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from lib.images import check_images
from lib.metrics import psnr, ssim, view_scores
from lib.models.gaussians import PARAM_NAMES
from lib.quaternion import quat_to_rotmat
from lib.train import Stopwatch



# --------------------------------------------------------------------------- optimisation
@dataclass
class GaussianTrainConfig:
    """Settings of a 3DGS training run (defaults: the paper's).

    Attributes:
        steps: length of the means' learning-rate decay (the run's length; 30000 in the paper).
        means_lr, means_lr_final: learning rate of the means at step 0 and at ``steps``, times the
            scene extent (log-linear in between; 1.6e-4 and 1.6e-6).
        sh_dc_lr: degree-0 SH coefficients (2.5e-3). sh_rest_lr: higher bands (2.5e-3 / 20).
        opacity_lr: opacity logits (0.05). scales_lr: log scales (5e-3). quats_lr: quaternions (1e-3).
        eps: Adam's epsilon (1e-15: the moments of rarely seen Gaussians are tiny).
        ssim_weight: lambda in ``(1 - lambda) L1 + lambda (1 - SSIM)`` (0.2).
        sh_degree_every: one more SH band every this many steps, up to the model's maximum (1000).
    """

    steps: int = 30_000
    means_lr: float = 1.6e-4
    means_lr_final: float = 1.6e-6
    sh_dc_lr: float = 2.5e-3
    sh_rest_lr: float = 2.5e-3 / 20
    opacity_lr: float = 0.05
    scales_lr: float = 5e-3
    quats_lr: float = 1e-3
    eps: float = 1e-15
    ssim_weight: float = 0.2
    sh_degree_every: int = 1000


def camera_extent(c2w: torch.Tensor) -> float:
    """The scene extent 3DGS scales its learning rate and size thresholds by: 1.1 times the largest
    distance of a camera centre from the cameras' mean centre (world units).

    Args:
        c2w: (V, 4, 4) camera-to-world poses (``lib.cameras`` convention), V >= 1.
    """
    if not torch.is_tensor(c2w) or c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        raise ValueError(f"`c2w` must be (V, 4, 4) camera-to-world poses, got {tuple(getattr(c2w, 'shape', ()))}")
    centres = c2w[:, :3, 3].double()
    radius = (centres - centres.mean(0)).norm(dim=-1).max().item()
    return 1.1 * radius if radius > 0 else 1.0


def make_optimizer(model, config: GaussianTrainConfig, scene_extent: float) -> torch.optim.Adam:
    """Adam with one named parameter group per ``GaussianModel`` parameter (``group["name"]``),
    learning rates from ``config`` (the means' times ``scene_extent``), eps ``config.eps``."""
    lrs = dict(means=config.means_lr * scene_extent, quats=config.quats_lr, log_scales=config.scales_lr,
               opacity_logits=config.opacity_lr, sh_dc=config.sh_dc_lr, sh_rest=config.sh_rest_lr)
    groups = [{"params": [getattr(model, name)], "lr": lrs[name], "name": name} for name in PARAM_NAMES]
    return torch.optim.Adam(groups, lr=0.0, eps=config.eps)


def lr_schedule(optimizer, step: int, config: GaussianTrainConfig, scene_extent: float) -> float:
    """Set the means' learning rate for ``step`` (0-based) and return it:
    ``exp((1 - t) log(means_lr) + t log(means_lr_final)) * scene_extent``, ``t = min(step / steps, 1)``.
    The other groups keep constant rates."""
    t = min(max(step, 0) / max(config.steps, 1), 1.0)
    lr = math.exp((1 - t) * math.log(config.means_lr) + t * math.log(config.means_lr_final)) * scene_extent
    for group in optimizer.param_groups:
        if group.get("name") == "means":
            group["lr"] = lr
    return lr


def sh_degree_at(step: int, every: int, max_degree: int) -> int:
    """SH degree used at ``step`` (0-based): ``min(max_degree, (step + 1) // every)`` (the paper
    adds a band at steps 1000, 2000, 3000, counted from 1)."""
    return min(max_degree, (step + 1) // max(every, 1))


# --------------------------------------------------------------------------- resizing
@torch.no_grad()
def edit_gaussians(model, optimizer, index: torch.Tensor, new: Optional[dict] = None) -> None:
    """Keep the rows ``index`` of every parameter, then append ``new`` rows; in place.

    Each parameter becomes ``cat(param[index], new[name])`` (``GaussianModel.resize_``: the same
    Parameter objects). Adam's per-row moments (``exp_avg``, ``exp_avg_sq``: any state tensor
    shaped like its parameter) follow their rows: ``state[index]``, zeros for new rows.

    Args:
        model: a ``GaussianModel``. optimizer: a torch optimizer over its parameters, or None.
        index: (M,) int64 rows to keep, in their new order (or an (N,) bool mask).
        new: None, or {name: (A, ...) tensor} for all six parameters (A rows added).
    """
    if index.dtype == torch.bool:
        index = index.nonzero()[:, 0]
    values = {}
    for name in PARAM_NAMES:
        p = getattr(model, name)
        add = p.new_zeros((0,) + p.shape[1:]) if new is None else new[name].to(p)
        values[name] = torch.cat([p.data[index], add])
        state = optimizer.state.get(p) if optimizer is not None else None
        for key, v in (state or {}).items():
            if torch.is_tensor(v) and v.shape == p.shape:
                state[key] = torch.cat([v[index], v.new_zeros((len(add),) + v.shape[1:])])
    model.resize_(values)


@torch.no_grad()
def reset_opacity(model, optimizer, max_opacity: float = 0.01) -> None:
    """Opacities become ``min(opacity, max_opacity)`` (in logits) and the opacity's Adam moments
    restart from zero, so Gaussians that matter regain opacity and the others get pruned."""
    p = model.opacity_logits
    p.data = p.data.clamp_max(math.log(max_opacity / (1 - max_opacity)))
    state = optimizer.state.get(p) if optimizer is not None else None
    for key, v in (state or {}).items():
        if torch.is_tensor(v) and v.shape == p.shape:
            v.zero_()


# --------------------------------------------------------------------------- densification
@dataclass
class DensifyConfig:
    """When and how Gaussians are added and removed (defaults: the paper's; steps count from 1,
    i.e. ``s = i + 1`` after the 0-based step ``i``).

    Attributes:
        grad_threshold: densify a Gaussian whose mean 2D-position gradient over the views that saw
            it since the last densification is at least this, in NDC units (the pixel gradient
            times (W / 2, H / 2)) (2e-4).
        percent_dense: clone when its largest scale <= percent_dense * extent, else split (0.01).
        densify_from, densify_until, densify_every: densify at ``s`` with
            ``densify_from < s < densify_until`` and ``s % densify_every == 0`` (500, 15000, 100).
        opacity_reset_every: reset opacities at ``s % opacity_reset_every == 0``, ``s < densify_until``
            (3000); screen- and world-size pruning start after the first reset.
        prune_opacity: prune below this opacity (0.005).
        max_screen_radius: prune when its largest 2D radius since the last densification exceeds
            this, pixels (20). (The original code zeroes these radii just before testing them, so
            there the rule never fires; here it does: raise it to switch it off.)
        max_world_scale: prune when its largest scale exceeds this times the extent (0.1).
        split_into: children per split Gaussian (2); their scales are the parent's / (0.8 split_into).
    """

    grad_threshold: float = 2e-4
    percent_dense: float = 0.01
    densify_from: int = 500
    densify_until: int = 15_000
    densify_every: int = 100
    opacity_reset_every: int = 3000
    prune_opacity: float = 0.005
    max_screen_radius: float = 20.0
    max_world_scale: float = 0.1
    split_into: int = 2


class Densifier:
    """Statistics for densification and the densify / prune / reset schedule.

    State (CPU or the model's device, rows = the model's Gaussians): ``grad_accum`` (N,) sum over
    views of ``|d loss / d mean2d|`` (NDC units), ``count`` (N,) views in which each was visible
    (radius > 0), ``max_radii`` (N,) largest 2D radius, pixels. ``state_dict`` /
    ``load_state_dict`` make it a ``lib.train.fit`` state entry (put it after the model).
    """

    def __init__(self, config: DensifyConfig = None):
        self.config = config or DensifyConfig()
        self.grad_accum = self.count = self.max_radii = torch.zeros(0)

    def state_dict(self) -> dict:
        return {"grad_accum": self.grad_accum, "count": self.count, "max_radii": self.max_radii}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != {"grad_accum", "count", "max_radii"}:
            raise ValueError(f"Densifier state must hold grad_accum, count, max_radii; got {sorted(state)}")
        self.grad_accum, self.count, self.max_radii = (state[k].clone() for k in ("grad_accum", "count", "max_radii"))

    def reset(self, n: int, device=None) -> None:
        """Zero statistics for n Gaussians."""
        self.grad_accum, self.count, self.max_radii = (torch.zeros(n, device=device) for _ in range(3))

    @torch.no_grad()
    def update(self, render) -> None:
        """Accumulate the statistics of one render after ``loss.backward()``.

        Args:
            render: a ``GaussianRender`` (rgb (..., C, H, W, 3), means2d (..., C, N, 2) whose ``.grad``
                is set, radii (..., C, N)). The gradient of each camera is scaled by the number of
                cameras (undoing a loss averaged over them) and by (W / 2, H / 2) (pixels -> NDC).
        """
        g = render.means2d.grad
        if g is None:
            raise ValueError("Densifier.update: render.means2d has no .grad; call it after loss.backward() "
                             "on a render of parameters that require grad")
        h, w = render.rgb.shape[-3:-1]
        n = g.shape[-2]
        g = g.reshape(-1, n, 2)
        radii = render.radii.reshape(-1, n).to(g.dtype)
        if self.grad_accum.numel() == 0:
            self.reset(n, g.device)
        elif self.grad_accum.numel() != n:
            raise ValueError(f"Densifier.update: statistics are for {self.grad_accum.numel()} Gaussians, "
                             f"the render has {n} (reset() after resizing the model by hand)")
        elif self.grad_accum.device != g.device:  # e.g. just loaded from a CPU checkpoint
            self.load_state_dict({k: v.to(g.device) for k, v in self.state_dict().items()})
        norms = (g * g.new_tensor([w / 2, h / 2]) * g.shape[0]).norm(dim=-1)  # (C, N)
        visible = radii > 0
        self.grad_accum += (norms * visible).sum(0)
        self.count += visible.sum(0)
        self.max_radii = torch.maximum(self.max_radii, radii.max(0).values)

    @torch.no_grad()
    def densify_and_prune(self, model, optimizer, scene_extent: float, generator: Optional[torch.Generator] = None,
                          prune_large: bool = True) -> dict:
        """Clone, split and prune once, then zero the statistics.

        With ``grad = grad_accum / count`` (0 for unseen) and ``big = max scale > percent_dense * extent``:
        clone ``grad >= grad_threshold & ~big`` (an identical copy); split ``grad >= grad_threshold & big``
        into ``split_into`` children with means drawn from the parent Gaussian
        (``mean + R (scales * randn(3))``, ``generator``), scales / (0.8 split_into), the rest copied;
        the parent is removed. Then prune ``opacity < prune_opacity`` and, when ``prune_large``,
        ``max_radii > max_screen_radius`` (new rows have 0) or ``max scale > max_world_scale * extent``.
        Rows end as [kept originals, clones, children] minus the pruned.

        Returns:
            {"cloned", "split", "pruned"}: counts.
        """
        cfg, n = self.config, model.n
        if self.grad_accum.numel() != n:
            self.reset(n, model.means.device)
        dev = model.means.device
        grad = (self.grad_accum / self.count.clamp_min(1)).to(dev)
        big = model.scales.max(dim=1).values > cfg.percent_dense * scene_extent
        hot = grad >= cfg.grad_threshold
        clone, split = hot & ~big, hot & big
        rows = {name: getattr(model, name).data for name in PARAM_NAMES}
        k = cfg.split_into
        children = {name: v[split].repeat(k, *([1] * (v.ndim - 1))) for name, v in rows.items()}
        gdev = generator.device if generator is not None else dev
        z = torch.randn((len(children["means"]), 3), generator=generator, device=gdev).to(dev)
        rot = quat_to_rotmat(children["quats"])  # (kS, 3, 3)
        children["means"] = children["means"] + (rot @ (z * children["log_scales"].exp())[..., None])[..., 0]
        children["log_scales"] = children["log_scales"] - math.log(0.8 * k)
        new = {name: torch.cat([rows[name][clone], children[name]]) for name in PARAM_NAMES}
        radii = torch.cat([self.max_radii.to(dev)[~split], self.max_radii.new_zeros(len(new["means"])).to(dev)])
        edit_gaussians(model, optimizer, ~split, new)
        prune = model.opacities < cfg.prune_opacity
        if prune_large:
            prune |= radii > cfg.max_screen_radius
            prune |= model.scales.max(dim=1).values > cfg.max_world_scale * scene_extent
        edit_gaussians(model, optimizer, ~prune)
        self.reset(model.n, dev)
        return {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int(prune.sum())}

    def step(self, model, optimizer, i: int, scene_extent: float, generator: Optional[torch.Generator] = None) -> dict:
        """The schedule after step ``i`` (0-based; ``s = i + 1``; see :class:`DensifyConfig`):
        densify and prune, and/or reset opacities. Returns the counts of
        :meth:`densify_and_prune` (zeros when it did not run) and ``opacity_reset`` (0 or 1)."""
        cfg, s = self.config, i + 1
        out = {"cloned": 0, "split": 0, "pruned": 0, "opacity_reset": 0}
        if s < cfg.densify_until:
            if s > cfg.densify_from and s % cfg.densify_every == 0:
                out.update(self.densify_and_prune(model, optimizer, scene_extent, generator,
                                                  prune_large=s > cfg.opacity_reset_every))
            if s % cfg.opacity_reset_every == 0:
                reset_opacity(model, optimizer)
                out["opacity_reset"] = 1
        return out


# --------------------------------------------------------------------------- step and evaluation
def _check_posed_views(images, viewmats, Ks) -> None:
    check_images(images, "images", batch="V")
    v = images.shape[0]
    if tuple(viewmats.shape) != (v, 4, 4) or tuple(Ks.shape) != (v, 3, 3):
        raise ValueError(f"need viewmats (V, 4, 4) and Ks (V, 3, 3) for the {v} images, got "
                         f"{tuple(viewmats.shape)}, {tuple(Ks.shape)}")


def make_gaussian_step(model, optimizer, densifier: Optional[Densifier], images: torch.Tensor,
                       viewmats: torch.Tensor, Ks: torch.Tensor, config: GaussianTrainConfig, scene_extent: float,
                       generator: torch.Generator, background: Optional[torch.Tensor] = None,
                       backend: str = "auto"):
    """A 3DGS training step for ``lib.train.fit``.

    Each call ``step(i)``: set the SH degree (:func:`sh_degree_at`) and the means' learning rate
    (:func:`lr_schedule`); draw one training view with ``generator``; render it; loss
    ``(1 - w) L1 + w (1 - SSIM)`` (``w = config.ssim_weight``, SSIM of ``lib.metrics.ssim``, 7x7
    window); backward; ``densifier.update``; ``optimizer.step()``; ``densifier.step`` (None: a run
    without densification).

    Args:
        model: a ``GaussianModel``; optimizer: :func:`make_optimizer`'s.
        images: (V, H, W, 3) float in [0, 1], the training views, on the model's device.
        viewmats: (V, 4, 4) world-to-camera; Ks: (V, 3, 3) pixels; same device.
        scene_extent: :func:`camera_extent` of the training cameras.
        generator: ``torch.Generator`` (any device) drawing the views and the split samples.
        background: (3,) RGB behind the Gaussians (None: black); backend: see ``render_gaussians``.
    Returns:
        ``step(i) -> {"loss", "l1", "ssim", "psnr" (of the clamped render), "n_gaussians" (after
        the step), "dt" (seconds, CUDA synchronised)}``.
    """
    _check_posed_views(images, viewmats, Ks)
    n_views, height, width = images.shape[:3]
    w = config.ssim_weight

    def step(i: int) -> dict:
        with Stopwatch(images.device) as watch:
            model.set_sh_degree(sh_degree_at(i, config.sh_degree_every, model.max_sh_degree))
            lr_schedule(optimizer, i, config, scene_extent)
            v = int(torch.randint(n_views, (1,), generator=generator, device=generator.device))
            out = model.render(viewmats[v:v + 1], Ks[v:v + 1], width, height, background=background, backend=backend)
            rgb, gt = out.rgb[0], images[v]
            l1 = (rgb - gt).abs().mean()
            s = ssim(rgb, gt)
            loss = (1 - w) * l1 + w * (1 - s)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if densifier is not None:
                densifier.update(out)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            logs = {"loss": loss.item(), "l1": l1.item(), "ssim": s.item(),
                    "psnr": psnr(rgb.detach().clamp(0, 1), gt).item()}
            del out, rgb, l1, s, loss  # no graph may hold the parameters' old shapes when they are resized
            if densifier is not None:
                densifier.step(model, optimizer, i, scene_extent, generator)
        return {**logs, "n_gaussians": model.n, "dt": watch.seconds}

    return step


@torch.no_grad()
def evaluate_gaussians(model, images: torch.Tensor, viewmats: torch.Tensor, Ks: torch.Tensor,
                       background: Optional[torch.Tensor] = None, backend: str = "auto", chunk: int = 8) -> dict:
    """Render views and score them (``lib.metrics.view_scores``: PSNR and SSIM per view, on the render clamped
    to [0, 1]).

    Args:
        model: a ``GaussianModel`` (rendered with its active SH degree).
        images: (V, H, W, 3) float in [0, 1]; viewmats (V, 4, 4) world-to-camera; Ks (V, 3, 3).
        background: (3,) RGB or None (black). backend: see ``render_gaussians``. chunk: views per render.
    Returns:
        dict: ``psnr``, ``ssim`` (floats: means of the per-view values), ``psnr_per_view``,
        ``ssim_per_view`` (V,), ``renders``: V dicts of CPU tensors rgb (H, W, 3) clamped,
        depth (H, W), opacity (H, W) (as ``lib.methods.nerf.evaluate_views``).
    """
    _check_posed_views(images, viewmats, Ks)
    height, width = images.shape[1:3]
    renders = []
    for start in range(0, len(images), chunk):
        out = model.render(viewmats[start:start + chunk], Ks[start:start + chunk], width, height,
                           background=background, backend=backend)
        renders += [{"rgb": out.rgb[j].clamp(0, 1).cpu(), "depth": out.depth[j, ..., 0].cpu(),
                     "opacity": out.alpha[j, ..., 0].cpu()} for j in range(out.rgb.shape[0])]
    p, s = view_scores(torch.stack([r["rgb"] for r in renders]), images.cpu())
    return {"psnr": p.mean().item(), "ssim": s.mean().item(), "psnr_per_view": p, "ssim_per_view": s,
            "renders": renders}
