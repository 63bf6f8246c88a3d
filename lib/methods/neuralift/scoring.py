"""Scoring a lifted NeRF against the ground truth a procedural input comes with (notebook 09).

- :func:`ground_truth_views`: renders of the true mesh from held-out cameras (same intrinsics and
  orbit as the NeRF's renders).
- :func:`novel_view_psnr`: masked PSNR of the NeRF's renders on those views, over the pixels that
  either the truth or the render covers (so fog around the object costs as much as a missing part).
- :func:`shape_chamfer`: the chamfer distance between the surfaces the NeRF and the true mesh show
  from the same cameras (expected ray length where the render is opaque; the mesh's depth maps).
- :func:`field_mesh`: the NeRF's density level set by marching cubes (the exported ``.obj``).
- :func:`measure_lift_runs`: wall time and peak memory of training runs over a grid of settings.

Images are (V, H, W, 3) float in [0, 1] on white; masks (V, H, W) bool.

Example (CPU):
    >>> from lib.methods.neuralift.lift import LiftConfig, procedural_lift_input
    >>> inp = procedural_lift_input("vase", image_size=8)
    >>> gt = ground_truth_views(inp["mesh"], [0.0, 180.0], 15.0, LiftConfig(image_size=8))
    >>> tuple(gt["images"].shape), tuple(gt["masks"].shape)
    ((2, 8, 8, 3), (2, 8, 8))
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

from lib.cameras import orbit_poses, unproject_depth
from lib.data.srn import SRN_SUPERSAMPLE, srn_intrinsics
from lib.methods.dreamfusion import DreamFusionConfig, field_density, orbit_rays, render_turntable
from lib.losses import chamfer_distance
from lib.mesh import TriMesh
from lib.metrics import masked_psnr
from lib.primitives import mesh_from_sdf
from lib.train import Stopwatch
from lib.viz import on_surface
from lib.render.zbuffer import render_views

SURFACE_ALPHA = 0.2  # the extracted surface: where one ray step of the renderer absorbs 20 % of the light


def ground_truth_views(mesh: TriMesh, azimuths: Sequence[float], elevation: float, config: DreamFusionConfig) -> dict:
    """Renders of ``mesh`` at the given azimuths (degrees) and one elevation, on the NeRF's orbit
    (``config.radius``) and at its size: {"images": (V, H, W, 3), "masks": (V, H, W) bool, "depth":
    (V, H, W) camera z, 0 on the background}."""
    az = torch.as_tensor(azimuths, dtype=torch.float32).reshape(-1)
    out = render_views(mesh, orbit_poses(az, float(elevation), config.radius), srn_intrinsics(config.image_size),
                       config.image_size, supersample=SRN_SUPERSAMPLE)
    rgb, depth = out["rgb"], out["depth"]
    return {"images": rgb.clamp(0, 1), "masks": depth > 0, "depth": depth}


def novel_view_psnr(field, config: DreamFusionConfig, gt: dict, azimuths: Sequence[float], elevation: float,
                    opacity_threshold: float = 0.5, render: Optional[dict] = None) -> torch.Tensor:
    """(V,) masked PSNR (dB) of the field's albedo renders against ``gt`` (:func:`ground_truth_views`
    at the same cameras), over the union of the true mask and the render's opacity > threshold.
    ``render``: ``lib.methods.dreamfusion.render_turntable(field, config, azimuths, elevation)`` already
    computed (one render serves this, :func:`shape_chamfer` and a picture); None renders."""
    out = render_turntable(field, config, azimuths, elevation) if render is None else render
    pred = out["images"].cpu()
    union = gt["masks"] | (out["opacity"].cpu() > opacity_threshold)
    return torch.stack([masked_psnr(p, t, m) for p, t, m in zip(pred, gt["images"], union)])


def surface_level(config: DreamFusionConfig, alpha: float = SURFACE_ALPHA) -> float:
    """The density (per world unit) at which one of the renderer's ray steps (``2 bound / n_samples``
    world units) has opacity ``alpha``: ``-log(1 - alpha) n_samples / (2 bound)``."""
    return -math.log(1 - alpha) * config.n_samples / (2 * config.bound)


@torch.no_grad()
def field_mesh(field, config: DreamFusionConfig, level: Optional[float] = None, resolution: int = 48) -> TriMesh:
    """The surface ``sigma = level`` of the field's density (plus the blob, as rendered) inside the
    scene box, by marching cubes (``lib.primitives.mesh_from_sdf`` on ``level - sigma``); ``level``
    None: :func:`surface_level` (5.4 for 24 samples per unit-wide box).

    Raises: ValueError when no point of the box reaches ``level`` (the field is empty)."""
    device = next(field.parameters()).device
    level = surface_level(config) if level is None else float(level)

    def sdf(points):
        p = points.to(device)
        return (level - field_density(field, config, p)[0]).cpu()

    grid = torch.linspace(-config.bound, config.bound, 24)
    probe = torch.stack(torch.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    if not bool((sdf(probe) < 0).any()):  # a coarse look first: marching cubes needs a surface
        raise ValueError(f"field_mesh: no density reaches level {level} inside the box; the field is empty "
                         "(train longer, or lower `level`)")
    return mesh_from_sdf(sdf, config.bound, resolution)


def field_view_points(field, config: DreamFusionConfig, azimuths: Sequence[float], elevation: float,
                      opacity_threshold: float = 0.5, render: Optional[dict] = None) -> torch.Tensor:
    """(M, 3) world points of the surface the field shows from the given cameras: on every ray
    whose opacity exceeds the threshold, the point at the expected ray length (distance / opacity).
    ``render``: the turntable render at those cameras, as in :func:`novel_view_psnr`."""
    az = torch.as_tensor(azimuths, dtype=torch.float32).reshape(-1)
    out = render_turntable(field, config, az, elevation) if render is None else render
    origins, dirs, _, _ = orbit_rays(orbit_poses(az, float(elevation), config.radius), config)
    t = on_surface(out["distance"], out["opacity"], opacity_threshold).reshape(-1)  # NaN: ray not covered
    keep = torch.isfinite(t)
    return origins[keep] + t[keep, None] * dirs[keep]


def truth_view_points(gt: dict, azimuths: Sequence[float], elevation: float, config: DreamFusionConfig) -> torch.Tensor:
    """(M, 3) world points of the true surface seen from the same cameras (``gt`` from
    :func:`ground_truth_views`, its camera-z depth unprojected)."""
    az = torch.as_tensor(azimuths, dtype=torch.float32).reshape(-1)
    c2w = orbit_poses(az, float(elevation), config.radius)
    K = srn_intrinsics(config.image_size)
    return torch.cat([unproject_depth(d, c, K) for d, c in zip(gt["depth"], c2w)])


def shape_chamfer(field, config: DreamFusionConfig, gt: dict, azimuths: Sequence[float], elevation: float,
                  opacity_threshold: float = 0.5, render: Optional[dict] = None) -> float:
    """Chamfer distance (squared, both directions summed; ``lib.losses.chamfer_distance``) between
    the surfaces the field and the true mesh show from the same cameras (:func:`field_view_points`,
    :func:`truth_view_points`), world units^2; inf when the field shows nothing. ``render``: as in
    :func:`novel_view_psnr`."""
    ours = field_view_points(field, config, azimuths, elevation, opacity_threshold, render)
    if len(ours) == 0:
        return float("inf")
    return float(chamfer_distance(ours, truth_view_points(gt, azimuths, elevation, config), backend="torch"))


def measure_lift_runs(run: Callable[[dict], dict], grid: dict, device="cpu") -> list:
    """The T4-recipe sweep harness: call ``run(settings)`` for every combination of ``grid``
    ({setting name: [values]}) and time it.

    ``run`` trains one configuration and returns {"loss": final loss, ...}. Each row gets the
    settings, "seconds" (wall clock) and "peak_mb": on CUDA the peak memory the run allocated
    (``torch.cuda.max_memory_allocated``, reset before each run); on the CPU None: the process's peak
    resident memory never goes down, so it cannot tell one run from another. Returns the rows, in
    grid order.
    """
    import itertools

    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[n] for n in names)):
        settings = dict(zip(names, values))
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        with Stopwatch(device) as watch:
            result = run(settings)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
        rows.append({**settings, "seconds": watch.seconds, "peak_mb": peak, **result})
    return rows
