"""An occupancy grid that lets rays skip empty space (as in Instant-NGP and nerfacc).

Most of a NeRF scene is air. A coarse grid of booleans over the scene box says which cells may
hold density; ray marching then evaluates the (expensive) field only at samples inside occupied
cells. The grid is refreshed from the field during training: every ``n`` steps each cell's
evaluated cell's occupancy becomes ``max(decay * old, sigma(x) * step_size)`` at a random point
x in the cell (an exponential moving average that forgets cells the field has emptied), and a cell counts as
occupied while that value exceeds ``min(threshold, mean)``.

Two implementations of the same idea, with one layout (``binary[ix, iy, iz]``, ix along world x):

- :class:`OccupancyGrid`, pure torch (CPU or GPU): fixed-step samples between the ray's entry to
  and exit from the box, masked by the grid; :func:`render_with_grid` feeds the kept samples to
  :func:`lib.render.volume.volume_render`.
- on CUDA, ``grid.to_nerfacc()`` copies it into a ``nerfacc.OccGridEstimator`` (CUDA kernels,
  packed samples); ``render_with_grid(..., backend="nerfacc")`` takes that path, and
  ``backend="auto"`` (the default) takes it whenever the rays are on CUDA and nerfacc is installed
  (see :mod:`lib.backend`; its first CUDA call may compile nerfacc's extension, which is announced).

Example:
    >>> grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], resolution=16)
    >>> ball = lambda x: (x.norm(dim=-1) < 0.5).float() * 100  # density of a ball, radius 0.5
    >>> grid.update(ball, step_size=0.01, generator=torch.Generator().manual_seed(0))
    >>> round(grid.occupied_fraction(), 3)  # the ball fills 6.5% of the box
    0.066
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from lib.backend import announce_cuda_build, resolve_backend, with_fallback
from lib.rays import ray_bound, check_rays, intersect_aabb
from lib.render.volume import volume_render


class OccupancyGrid(nn.Module):
    """A ``resolution^3`` boolean grid over the box ``aabb`` (xmin, ymin, zmin, xmax, ymax, zmax).

    Buffers: ``aabb`` (6,), ``occs`` (res^3,) EMA occupancy values (flattened ``[ix, iy, iz]``),
    ``binary`` (res, res, res) bool. A new grid has ``occs = 0`` but counts as fully occupied
    (nothing is skipped) until its first :meth:`update`.
    """

    def __init__(self, aabb, resolution: int = 32):
        super().__init__()
        aabb = torch.as_tensor(aabb, dtype=torch.float32).reshape(-1)
        if aabb.shape != (6,) or not (aabb[3:] > aabb[:3]).all():
            raise ValueError(f"`aabb` must be (xmin, ymin, zmin, xmax, ymax, zmax) with max > min, got {aabb.tolist()}")
        self.resolution = int(resolution)
        self.register_buffer("aabb", aabb)
        self.register_buffer("occs", torch.zeros(self.resolution ** 3))
        self.register_buffer("binary", torch.ones((self.resolution,) * 3, dtype=torch.bool))

    # ------------------------------------------------------------------ cells
    def cell_coords(self) -> torch.Tensor:
        """(res^3, 3) integer cell indices (ix, iy, iz), in the flattened order of ``occs``."""
        r = torch.arange(self.resolution, device=self.aabb.device)
        return torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)

    def cell_size(self) -> torch.Tensor:
        return (self.aabb[3:] - self.aabb[:3]) / self.resolution

    def occupied_fraction(self) -> float:
        return float(self.binary.float().mean())

    def query(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 3) world points -> (...,) bool: inside the box and in an occupied cell."""
        rel = (points - self.aabb[:3]) / self.cell_size()
        idx = torch.floor(rel).long()
        inside = ((idx >= 0) & (idx < self.resolution)).all(-1)
        idx = idx.clamp(0, self.resolution - 1)
        return inside & self.binary[idx[..., 0], idx[..., 1], idx[..., 2]]

    @torch.no_grad()
    def update(self, occ_fn: Callable[[torch.Tensor], torch.Tensor], step_size: float, threshold: float = 0.01,
               decay: float = 0.95, cells: torch.Tensor = None, generator: torch.Generator = None) -> None:
        """Refresh occupancy from the field at one random point per cell.

        Args:
            occ_fn: (N, 3) world points -> (N,) density sigma.
            step_size: the marching step; ``sigma * step_size`` approximates a sample's opacity.
            threshold: opacity below which a cell is empty (capped by the mean occupancy).
            decay: EMA factor applied to each evaluated cell's old value before the max.
            cells: (M,) flat indices of the cells to evaluate (default: all).
            generator: for the position inside each cell.
        """
        if cells is None:
            cells = torch.arange(self.resolution ** 3, device=self.aabb.device)
        coords = self.cell_coords()[cells].float()
        jitter = torch.rand(coords.shape, generator=generator, device=coords.device)
        x = self.aabb[:3] + (coords + jitter) * self.cell_size()
        occ = occ_fn(x).reshape(-1).float() * step_size
        self.occs[cells] = torch.maximum(self.occs[cells] * decay, occ)
        thre = min(threshold, float(self.occs.mean()))
        self.binary.copy_((self.occs > thre).reshape(self.binary.shape))

    def update_every_n_steps(self, step: int, occ_fn, step_size: float, n: int = 16, warmup_steps: int = 256,
                             threshold: float = 0.01, decay: float = 0.95, generator: torch.Generator = None):
        """nerfacc's schedule: every ``n`` steps; all cells during warm-up, then a random quarter of
        the cells plus (up to as many) occupied ones, so emptied cells are re-checked and occupied
        ones kept fresh."""
        if step % n:
            return
        cells = None
        if step >= warmup_steps:
            total = self.resolution ** 3
            rand = torch.randint(total, (total // 4,), generator=generator, device=self.aabb.device)
            occupied = torch.nonzero(self.binary.reshape(-1)).squeeze(-1)
            if len(occupied) > total // 4:
                occupied = occupied[torch.randint(len(occupied), (total // 4,), generator=generator,
                                                  device=self.aabb.device)]
            cells = torch.unique(torch.cat([rand, occupied]))
        self.update(occ_fn, step_size, threshold, decay, cells, generator)

    # ----------------------------------------------------------------- sampling
    def sample(self, origins: torch.Tensor, directions: torch.Tensor, near, far, step_size: float,
               generator: torch.Generator = None, perturb: bool = False):
        """Fixed-step samples along rays, restricted to the box and masked by occupancy.

        Samples sit at ``t_k = t_min + (k + u) * step_size`` with ``t_min = max(near, box entry)``,
        ``u = 0.5`` (or uniform per ray with ``perturb``), up to ``min(far, box exit)``.

        Args:
            origins, directions: (R, 3) world (unit directions). near, far: floats or (R,).
            step_size: distance between samples.
        Returns:
            t: (R, S) distances; mask: (R, S) bool, True where a sample falls in an occupied cell.
        """
        check_rays(origins, directions)
        n = origins.shape[0]
        near, far = ray_bound(near, n, "near", origins)[:, 0], ray_bound(far, n, "far", origins)[:, 0]
        t_enter, t_exit, hit = intersect_aabb(origins, directions, self.aabb)
        t_min, t_max = torch.maximum(near, t_enter), torch.minimum(far, t_exit)
        span = float((t_max - t_min)[hit].amax()) if hit.any() else step_size
        n_steps = max(1, math.ceil(span / step_size))
        u = (torch.rand(n, 1, generator=generator, device=origins.device) if perturb
             else torch.full((n, 1), 0.5, device=origins.device))
        t = t_min[:, None] + (torch.arange(n_steps, device=origins.device) + u) * step_size
        points = origins[:, None] + t[..., None] * directions[:, None]
        mask = self.query(points) & (t < t_max[:, None]) & hit[:, None]
        return t, mask

    def to_nerfacc(self, estimator=None):
        """Copy this grid into a ``nerfacc.OccGridEstimator`` (1 level; its sampling needs CUDA).

        Args:
            estimator: an estimator made by an earlier call, refreshed in place; None makes one.
        """
        if estimator is None:
            announce_cuda_build("nerfacc")  # its sampling on CUDA may compile nerfacc's kernels
            from nerfacc import OccGridEstimator

            estimator = OccGridEstimator(self.aabb.tolist(), self.resolution, levels=1).to(self.aabb.device)
        estimator.occs.copy_(self.occs)
        estimator.binaries.copy_(self.binary[None])
        return estimator


def render_with_grid(field_fn, origins: torch.Tensor, directions: torch.Tensor, grid: OccupancyGrid, near, far,
                     step_size: float, background=None, generator: torch.Generator = None, perturb: bool = False,
                     backend: str = "auto", estimator=None) -> dict:
    """Volume-render rays, evaluating the field only where the grid is occupied.

    Args:
        field_fn: as for :func:`lib.render.volume.volume_render`.
        origins, directions: (R, 3). grid: the occupancy grid. near, far: ray bounds.
        step_size: marching step (world units). background: see ``composite``.
        backend: ``"torch"`` (the pure-torch grid, any device), ``"nerfacc"`` (nerfacc's CUDA
            estimator, refreshed from ``grid`` on every call; needs CUDA) or ``"auto"`` (nerfacc
            when the rays are on CUDA and it is installed, else torch); see :mod:`lib.backend`.
        estimator: for the nerfacc path, one made by ``grid.to_nerfacc()``; None keeps one on the grid.
    Returns:
        dict with rgb (R, 3), distance (R,) (expected distance along the ray, as in ``composite``),
        opacity (R,), n_evals (int); the pure-torch path also
        returns weights and t (R, K), the kept samples moved to the front of each row (weight 0 after).
    """
    args = (field_fn, origins, directions, grid, near, far, step_size, background, generator, perturb)
    if resolve_backend(backend, origins.device, "nerfacc") == "nerfacc":
        return with_fallback(backend, "nerfacc", lambda: _grid_render_nerfacc(*args, estimator),
                             lambda: _grid_render_torch(*args))
    return _grid_render_torch(*args)


def _grid_render_torch(field_fn, origins, directions, grid, near, far, step_size, background, generator, perturb) -> dict:
    """The pure-torch path of :func:`render_with_grid`."""
    t, mask = grid.sample(origins, directions, near, far, step_size, generator, perturb)
    # Compact: move each ray's kept samples to the front and drop the columns nobody uses.
    # Skipped samples have zero density, so leaving them out changes no transmittance.
    k = max(int(mask.sum(1).max()), 1)
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :k]
    t, mask = t.gather(1, order), mask.gather(1, order)
    return volume_render(field_fn, origins, directions, near, far, 0, background=background,
                         t=t, mask=mask, deltas=torch.full_like(t, step_size))


def _grid_render_nerfacc(field_fn, origins, directions, grid, near, far, step_size, background, generator, perturb,
                    estimator) -> dict:
    """The nerfacc path of :func:`render_with_grid` (CUDA): its estimator's sampling and accumulation."""
    announce_cuda_build("nerfacc")  # before the first nerfacc call, which may compile its kernels
    import nerfacc

    if estimator is None:
        estimator = grid.to_nerfacc(grid.__dict__.get("_nerfacc"))
        grid.__dict__["_nerfacc"] = estimator  # a cache, not a submodule: stays out of state_dict
    else:
        grid.to_nerfacc(estimator)
    est = estimator
    near_f, far_f = float(near), float(far)
    ray_idx, t0, t1 = est.sampling(origins, directions, near_plane=near_f, far_plane=far_f,
                                   render_step_size=step_size, stratified=perturb)
    n = origins.shape[0]
    tm = (t0 + t1)[:, None] / 2
    pts = origins[ray_idx] + tm * directions[ray_idx]
    sigma, rgb = field_fn(pts[None], directions[ray_idx][None])
    weights, _, _ = nerfacc.render_weight_from_density(t0, t1, sigma.reshape(-1), ray_indices=ray_idx, n_rays=n)
    color = nerfacc.accumulate_along_rays(weights, rgb.reshape(-1, 3), ray_idx, n)
    opacity = nerfacc.accumulate_along_rays(weights, None, ray_idx, n)[:, 0]
    distance = nerfacc.accumulate_along_rays(weights, tm, ray_idx, n)[:, 0]
    if background is not None:
        bg = torch.as_tensor(background, dtype=color.dtype, device=color.device).expand(n, 3)
        color = color + (1 - opacity[:, None]) * bg
    return {"rgb": color, "distance": distance, "opacity": opacity, "n_evals": int(ray_idx.numel())}
