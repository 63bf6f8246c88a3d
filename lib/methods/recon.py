"""Training and evaluating 3D reconstruction from images (notebook 03): batches, losses, steps,
F-score evaluation and the mean-shape baseline. The networks are in :mod:`lib.models.single_view`
and :mod:`lib.models.multi_view`; this module holds what is not a network.

Single view (R2N2-style data from ``lib.data.r2n2.to_tensors``): :func:`view_batch`,
:func:`reconstruction_loss`, :func:`make_single_view_step` (a step for ``lib.train.fit``),
:func:`prediction_points` (any output -> points), :func:`evaluate_single_view` (F-scores) and
:class:`MeanShapeBaseline`. Multi view: :func:`colors_from_views` (colour targets for surface
points), :func:`kl_weight` (KL annealing) and :func:`vaegan_step`.

Frames: shapes live in the object's canonical frame of ``lib.data.r2n2`` (bounding box centred at
the origin, diagonal 1, inside [-0.5, 0.5]^3); voxel grids are indexed ``[ix, iy, iz]``.

Example (CPU):
    >>> [round(kl_weight(s, warmup_steps=10, beta_max=1e-3), 5) for s in (0, 5, 10, 20)]
    [0.0, 0.0005, 0.001, 0.001]
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from torch import nn

from lib.cameras import project
from lib.data.r2n2 import GRID_BOUNDS
from lib.geometry import sample_surface, sample_surface_batched
from lib.images import from_uint8
from lib.losses import (chamfer_distance, discriminator_loss, generator_adv_loss, kl_divergence,
                        mesh_laplacian_smoothing, voxel_bce)
from lib.metrics import DEFAULT_THRESHOLDS, f_score, voxel_iou
from lib.models.single_view import MeshDecoder, PointDecoder, VoxelDecoder
from lib.voxels import voxels_to_mesh


# ------------------------------------------------------------------------------- single view
def view_batch(data: dict, index: torch.Tensor, view: torch.Tensor) -> dict:
    """Images (B, H, W, 3) float [0, 1] of views ``view`` (B,) of models ``index`` (B,), with their
    targets (``voxels`` (B, 32, 32, 32) float, ``points`` (B, P, 3)), from ``lib.data.r2n2.to_tensors``."""
    return {"images": from_uint8(data["images"][index, view]), "voxels": data["voxels"][index].float(),
            "points": data["points"][index]}


def reconstruction_loss(kind: str, output: torch.Tensor, batch: dict, smooth_weight: float = 0.1,
                        faces: Optional[torch.Tensor] = None, n_samples: int = 1024, n_gt: int = 1024,
                        generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """The training loss of each representation, ``{"loss": scalar, ...its parts}``.

    voxels: binary cross-entropy of the logits (B, 32, 32, 32) against the grid; points: chamfer
    distance of (B, N, 3) points to ``n_gt`` of the ground-truth surface samples (a random subset
    each call: the nearest-neighbour search costs N x M); mesh: chamfer of ``n_samples`` points
    sampled on the predicted mesh (verts (B, V, 3), ``faces`` (F, 3)) to those, +
    ``smooth_weight`` x :func:`lib.losses.mesh_laplacian_smoothing`.
    """
    if kind == "voxels":
        return {"loss": voxel_bce(output, batch["voxels"])}
    gt = batch["points"]
    if n_gt < gt.shape[1]:
        gt = gt[:, torch.randperm(gt.shape[1], generator=generator)[:n_gt].to(gt.device)]
    if kind == "points":
        return {"loss": chamfer_distance(output, gt).mean()}
    pts = sample_surface_batched(output, faces, n_samples, generator)[0]
    cd = chamfer_distance(pts, gt).mean()
    smooth = mesh_laplacian_smoothing(output, faces).mean()
    return {"loss": cd + smooth_weight * smooth, "chamfer": cd, "smooth": smooth}


def make_single_view_step(model: nn.Module, data: dict, optimizer, generator: torch.Generator,
                          batch_size: int = 16, smooth_weight: float = 0.1, device="cpu",
                          features: Optional[torch.Tensor] = None):
    """A ``step(i) -> {"loss": ...}`` for ``lib.train.fit``: a random view of ``batch_size``
    random training models (drawn from ``generator``), forward, loss, backward, update.

    Args:
        model: a ``lib.models.single_view.SingleViewModel``, or (with ``features``) just its decoder.
        data: ``lib.data.r2n2.to_tensors`` of the training split.
        features: optional (N, V, 512) encoder features of every view of ``data``; then
            ``model`` is a decoder trained on them (the encoder stays frozen: cheap sweeps).
    """
    n, v = data["images"].shape[:2]
    kind = model.kind if features is None else {VoxelDecoder: "voxels", PointDecoder: "points",
                                                 MeshDecoder: "mesh"}[type(model)]
    faces = model.decoder.faces if features is None and kind == "mesh" else getattr(model, "faces", None)

    def step(i: int) -> dict:
        model.train()
        idx = torch.randint(n, (batch_size,), generator=generator)
        view = torch.randint(v, (batch_size,), generator=generator)
        batch = {k: t.to(device) for k, t in view_batch(data, idx, view).items()}
        inputs = batch["images"] if features is None else features[idx, view].to(device)
        parts = reconstruction_loss(kind, model(inputs), batch, smooth_weight, faces, generator=generator)
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        return {k: float(t.detach()) for k, t in parts.items()}

    return step


@torch.no_grad()
def prediction_points(kind: str, output: torch.Tensor, n: int, faces: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> list:
    """Points on each predicted shape, for the F-score: a list of B tensors (n, 3) (or None for an
    empty voxel prediction). Voxels (B, 32, 32, 32) logits: marching cubes of the probabilities at
    0.5, then surface samples; points (B, N, 3): the points; mesh verts (B, V, 3): surface samples."""
    if kind == "points":
        return list(output)
    if kind == "mesh":
        return list(sample_surface_batched(output, faces, n, generator)[0])
    out = []
    for logits in output:
        mesh = voxels_to_mesh(torch.sigmoid(logits).cpu(), bounds=GRID_BOUNDS, smooth=True, threshold=0.5)
        out.append(sample_surface(mesh, n, generator)[0] if mesh.num_faces else None)
    return out


@torch.no_grad()
def evaluate_single_view(predict, data: dict, views: Sequence[int], kind: str, thresholds=DEFAULT_THRESHOLDS,
                         n_points: int = 1024, faces=None, batch_size: int = 32, seed: int = 0,
                         features: Optional[torch.Tensor] = None) -> dict:
    """F-scores (:func:`lib.metrics.f_score`) of predictions on every (model, view) pair of ``data``.

    Args:
        predict: ``images (B, H, W, 3) -> output`` of the representation ``kind`` (a model in eval
            mode, or a baseline's ``lambda images: ...``); with ``features`` (N, V, F), it gets
            the (B, F) features of those views instead (a decoder on a frozen encoder).
        data: ``lib.data.r2n2.to_tensors`` of held-out models. views: which views to use.
    Returns:
        dict with ``f1`` (M, T) float (M = models x views, T thresholds), ``precision`` and
        ``recall`` likewise, ``thresholds`` (T,), ``model`` (M,) and ``view`` (M,) indices, and
        ``points``: the M predicted point clouds (None for an empty prediction).
    """
    gen = torch.Generator().manual_seed(seed)
    pairs = [(i, v) for i in range(data["images"].shape[0]) for v in views]
    rows, clouds = [], []
    for s in range(0, len(pairs), batch_size):
        idx = torch.tensor([p[0] for p in pairs[s:s + batch_size]])
        view = torch.tensor([p[1] for p in pairs[s:s + batch_size]])
        batch = view_batch(data, idx, view)
        output = predict(batch["images"] if features is None else features[idx, view])
        if len(output) != len(idx):
            raise ValueError(f"`predict` returned {len(output)} predictions for a batch of {len(idx)} images")
        for i, pts in zip(idx, prediction_points(kind, output, n_points, faces, gen)):
            empty = {t: (0.0, 0.0, 0.0) for t in thresholds}  # nothing predicted: nothing right
            fs = f_score(pts, data["points"][i], thresholds) if pts is not None else empty
            rows.append([fs[t] for t in thresholds])
            clouds.append(pts)
    prf = torch.tensor(rows)  # (M, T, 3)
    return {"precision": prf[..., 0], "recall": prf[..., 1], "f1": prf[..., 2], "thresholds": torch.tensor(thresholds),
            "model": torch.tensor([p[0] for p in pairs]), "view": torch.tensor([p[1] for p in pairs]), "points": clouds}


class MeanShapeBaseline:
    """Predict the mean training shape whatever the image.

    The mean occupancy of the training grids is thresholded at the level that maximises the
    mean IoU with them; this one grid is the prediction, in every representation (its marching-
    cubes surface for points and meshes).

    Args:
        train_voxels: (N, 32, 32, 32) bool training grids ``[ix, iy, iz]``.
    """

    def __init__(self, train_voxels: torch.Tensor):
        if train_voxels.ndim != 4:
            raise ValueError(f"`train_voxels` must be (N, R, R, R), got {tuple(train_voxels.shape)}")
        self.mean = train_voxels.float().mean(0)
        levels = torch.linspace(0.05, 0.95, 19)
        ious = [float(voxel_iou((self.mean > t).expand_as(train_voxels), train_voxels.bool()).mean()) for t in levels]
        self.threshold = float(levels[int(torch.tensor(ious).argmax())])
        self.voxels = self.mean > self.threshold

    def logits(self, batch_size: int) -> torch.Tensor:
        """(B, 32, 32, 32) logits whose sigmoid is above 0.5 exactly on the mean shape."""
        return (self.voxels.float() * 2 - 1).mul(10).expand(batch_size, *self.voxels.shape)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The voxel 'prediction' for a batch of images (B, H, W, 3) (they are ignored)."""
        return self.logits(images.shape[0])


# -------------------------------------------------------------------------------- multi view
def colors_from_views(points: torch.Tensor, images: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor,
                      grid: int = 16, tol: float = 0.05, background=(1.0, 1.0, 1.0)):
    """Colour targets for surface points: the mean image colour over the views that see each point.

    Visibility uses a coarse point z-buffer: each view's image is cut into ``grid`` x ``grid``
    cells; a point is visible when it projects inside the image, its depth is within ``tol``
    of the nearest point in its cell, and its pixel is not the background colour (within 0.03;
    thin parts whose projection slips off the silhouette). Points no view sees take the colour
    of the nearest seen point.

    Args:
        points: (N, 3) world. images: (V, H, W, 3) in [0, 1]. c2w: (V, 4, 4). K: (V, 3, 3).
        background: RGB of the renders' background, or None to keep every pixel.
    Returns:
        colors: (N, 3) float32 in [0, 1]; seen: (N,) int64, the number of views that see each point.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"`points` must be (N, 3), got {tuple(points.shape)}")
    if images.ndim != 4 or images.shape[-1] != 3 or c2w.shape != (images.shape[0], 4, 4) \
            or K.shape != (images.shape[0], 3, 3):
        raise ValueError(f"expected images (V, H, W, 3), c2w (V, 4, 4), K (V, 3, 3), got "
                         f"{tuple(images.shape)}, {tuple(c2w.shape)}, {tuple(K.shape)}")
    h, w = images.shape[1:3]
    total, seen = torch.zeros(points.shape[0], 3), torch.zeros(points.shape[0], dtype=torch.long)
    for i in range(images.shape[0]):
        uv, depth = project(points, c2w[i], K[i])
        col, row = uv[:, 0].floor().long(), uv[:, 1].floor().long()
        inside = (depth > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        cell = (row.clamp(0, h - 1) * grid // h) * grid + col.clamp(0, w - 1) * grid // w
        zmin = torch.full((grid * grid,), float("inf")).scatter_reduce(
            0, cell[inside], depth[inside], "amin")
        vis = inside & (depth <= zmin[cell] + tol)
        rgb = images[i, row.clamp(0, h - 1), col.clamp(0, w - 1)]  # (N, 3)
        if background is not None:
            vis &= (rgb - rgb.new_tensor(background)).abs().amax(1) > 0.03
        total[vis] += rgb[vis]
        seen += vis.long()
    colors = total / seen.clamp(min=1)[:, None]
    if (seen == 0).any() and (seen > 0).any():
        nn_idx = torch.cdist(points[seen == 0], points[seen > 0]).argmin(1)
        colors[seen == 0] = colors[seen > 0][nn_idx]
    return colors, seen


def kl_weight(step: int, warmup_steps: int, beta_max: float = 1.0, delay: int = 0) -> float:
    """KL annealing: 0 for ``step < delay``, then linear up to ``beta_max`` over ``warmup_steps``, then flat."""
    if warmup_steps < 0 or delay < 0:
        raise ValueError(f"warmup_steps and delay must be >= 0, got {warmup_steps}, {delay}")
    if step < delay:
        return 0.0
    if warmup_steps == 0:
        return float(beta_max)
    return float(beta_max) * min(1.0, (step - delay) / warmup_steps)


def vaegan_step(model: nn.Module, opt_ae, opt_d, images, voxels, c2w=None, beta: float = 1e-3,
                adv_weight: float = 1e-3, pos_weight: Optional[float] = None, *, generator: torch.Generator) -> dict:
    """One 3D-VAE-GAN training step of a ``lib.models.multi_view.MultiViewVAEGAN``: a discriminator
    update, then an encoder + generator update on ``recon + beta * KL + adv_weight * adversarial``
    (:func:`lib.losses.voxel_bce`, :func:`lib.losses.kl_divergence`, the non-saturating
    :func:`lib.losses.generator_adv_loss` / :func:`lib.losses.discriminator_loss`).
    ``adv_weight=0`` skips the discriminator.

    Args:
        images: (B, V, S, S, 3). voxels: (B, 32, 32, 32) {0, 1}. c2w: (B, V, 4, 4) or None.
        beta: KL weight of this step (from :func:`kl_weight`). generator: draws the latent sample.
    Returns:
        dict of floats: loss, recon, kl, adv, d_loss.
    """
    model.train()
    logits, mu, logvar = model(images, c2w, sample=True, generator=generator)
    probs, disc, b = torch.sigmoid(logits), model.discriminator, logits.shape[0]
    d_loss = adv = torch.zeros(())
    if adv_weight > 0:
        d_logits = disc(torch.cat([voxels.float(), probs.detach()]))  # real and fake in one pass
        d_loss = discriminator_loss(d_logits[:b], d_logits[b:])
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        disc.requires_grad_(False)  # the generator's pass needs gradients for the input only
        adv = generator_adv_loss(disc(probs))
        disc.requires_grad_(True)
    recon, kl = voxel_bce(logits, voxels, pos_weight), kl_divergence(mu, logvar)
    loss = recon + beta * kl + adv_weight * adv
    opt_ae.zero_grad(set_to_none=True)
    loss.backward()
    opt_ae.step()
    return {"loss": loss.item(), "recon": recon.item(), "kl": kl.item(), "adv": adv.item(), "d_loss": d_loss.item()}
