"""Notebook 04 (volume rendering and NeRF): the parts of its full-mode run that cost minutes.

The notebook's real data is the lego (``FULL_DATA``): square views at ``IMAGE_SIZE`` px, cameras
about 4 units from the origin with a 39.6 degree field of view, rays between near 2 and far 6 in
the box [-1.5, 1.5]^3 (``lib.data.blender``). Here the views are random images on cameras of
that shape: what a unit costs depends on the rays, samples and model, not on the pixel values.

A T4-sized unit (a step of 4096 rays x 128 samples, a chunk of 16384 rays) takes minutes on this
CPU, so a timed unit is a share of one: a step on ``BATCH / k`` rays (its cost is linear in the
rays; the optimizer step on the MLP's 0.6 M weights is noise), or a render of a few hundred rays.
The count is then the notebook's steps times ``k``, or its rays over the rays of one unit.

Skipped as seconds on a T4: the box fit (section 5: 150 steps of a six-parameter field),
section 10's scene renders (an analytic chrome ball) and its 2 x 8 held-out views (32 samples,
100 px), section 11's first grid (4 passes over the cells) and its 2048-ray comparison, the
video encoding.
"""
from __future__ import annotations

import math

import torch

from benchmarks.t4_budget.measure import Part
from lib import cameras
from lib.models.nerf import NeRFConfig, NeRFField
from lib.methods.nerf import make_nerf_step, training_rays, volume_renderer
from lib.render.occupancy import OccupancyGrid, render_with_grid

USES_SD = False

TRAIN_POINTS = 65536  # ray samples per timed training unit (forward and backward): ~15 s here at most
RENDER_POINTS = 131072  # ray samples (or grid cells) per timed rendering unit, forward only
NEAR, FAR = 2.0, 6.0  # lego's ray bounds
BOX = torch.tensor([[-1.5] * 3, [1.5] * 3])  # lego's scene box (Blender's default), lib world
LEGO_FOV, LEGO_DISTANCE = 39.6, 4.03  # degrees (camera_angle_x 0.6911 rad), camera distance
LEGO_EXTENT = torch.tensor([[-0.64, -0.35, -1.21], [0.64, 1.04, 1.15]])  # the lego's bounding box, y up (approximate)


def share(n: int, per_item: int, budget: int) -> int:
    """The smallest power of two ``k`` with ``n / k`` items of ``per_item`` samples within ``budget``
    (``n`` itself when even one item is over it): a unit of ``n // k`` items."""
    k = 1
    while n // k * per_item > budget and k < n:
        k *= 2
    return k


def lego_views(n: int, size: int, seed: int = 0) -> dict:
    """``n`` random views of the lego's shape: (n, size, size, 3) images, cameras on the upper
    half of a sphere of radius ``LEGO_DISTANCE`` looking at the origin (``lib.methods.nerf``'s dict)."""
    g = torch.Generator().manual_seed(seed)
    poses = cameras.orbit_poses(torch.rand(n, generator=g) * 360, 10 + torch.rand(n, generator=g) * 70,
                                LEGO_DISTANCE)
    return {"images": torch.rand(n, size, size, 3, generator=g), "c2w": poses,
            "K": cameras.intrinsics_from_fov(LEGO_FOV, size)}


def lego_grid(resolution: int) -> OccupancyGrid:
    """An occupancy grid over ``BOX`` with the cells of ``LEGO_EXTENT`` occupied: what the grid of a
    trained lego keeps, or a little more (an upper bound on the samples a ray keeps)."""
    grid = OccupancyGrid(BOX.reshape(-1), resolution)
    centres = BOX[0] + (grid.cell_coords() + 0.5) * grid.cell_size()
    inside = ((centres >= LEGO_EXTENT[0]) & (centres <= LEGO_EXTENT[1])).all(-1)
    grid.binary.copy_(inside.reshape(grid.binary.shape))
    return grid


def grid_renderer(grid: OccupancyGrid, step_size: float):
    """Notebook 04's ``render_grid`` (section 11) on the pure-torch path. On the T4 the notebook uses
    nerfacc's kernels (BACKEND "auto"), which are faster: this estimate is an upper bound."""
    def render(field, o, d, generator=None, perturb=True):
        return render_with_grid(field, o, d, grid, NEAR, FAR, step_size, torch.ones(3), generator, perturb,
                                backend="torch")
    return render


def refresh_cells(steps: int, resolution: int, occupied: float) -> float:
    """Cells section 11's run evaluates over ``steps`` steps (``update_every_n_steps`` with n 16 and
    warm-up 256): every cell at each refresh of the warm-up, then a random quarter of the cells
    (``1 - e^(-1/4)`` of them distinct) plus up to a quarter of occupied ones not among those."""
    total = resolution ** 3
    refreshes = range(0, steps, 16)
    warm = sum(i < 256 for i in refreshes)
    later = total * (1 - math.exp(-0.25) + min(occupied, 0.25) * math.exp(-0.25))
    return warm * total + (len(refreshes) - warm) * later


def step_unit(k: int, rays: int) -> str:
    return "step" if k == 1 else f"1/{k} step ({rays} rays)"


def new_field(S: dict, **changes) -> NeRFField:
    torch.manual_seed(0)
    return NeRFField(NeRFConfig(**{**S["MODEL"], **changes}))


def train_unit(S: dict, views: dict, n_rays: int, make_render, steps: int, **changes):
    """build() of one training unit: ``lib.methods.nerf.make_nerf_step`` on ``n_rays`` rays, with the
    notebook's optimizer and schedule; ``make_render()`` gives the render function."""
    def build():
        field = new_field(S, **changes)
        opt = torch.optim.Adam(field.parameters(), lr=S["LR"])
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.1 ** (1 / steps))
        step = make_nerf_step(field, opt, make_render(), training_rays(views), torch.Generator().manual_seed(0),
                              n_rays, scheduler=sched)
        return lambda: step(0)
    return build


def render_unit(S: dict, size: int, n_rays: int, make_render):
    """build() of one rendering unit: ``n_rays`` random pixels of a ``size`` px lego view, rendered
    without jitter and gradients, as ``lib.render.volume.render_image`` renders each chunk."""
    def build():
        field, render = new_field(S).eval(), make_render()
        origins, dirs, _ = training_rays(lego_views(1, size))
        keep = torch.randperm(len(origins), generator=torch.Generator().manual_seed(0))[:n_rays]
        o, d = origins[keep], dirs[keep]

        def run():
            with torch.no_grad():
                return render(field, o, d, None, perturb=False)
        return run
    return build


def refresh_unit(S: dict, n_cells: int, step_size: float):
    """build() of one grid-refresh unit: ``OccupancyGrid.update`` of ``n_cells`` cells from the
    NeRF's density, as section 11's refresh does."""
    def build():
        field, grid = new_field(S), OccupancyGrid(BOX.reshape(-1), S["GRID_RES"])
        g = torch.Generator().manual_seed(0)
        cells = torch.randperm(S["GRID_RES"] ** 3, generator=g)[:n_cells]
        return lambda: grid.update(lambda x: field.density(x)[0], step_size, cells=cells, generator=g)
    return build


def parts(S: dict, sizes: str) -> list[Part]:
    size, samples, steps = S["IMAGE_SIZE"], S["N_SAMPLES"], S["STEPS"]
    train_views = lego_views(2, size)  # a step draws its rays from all views: their number costs nothing
    stratified = lambda: volume_renderer(NEAR, FAR, samples, background=torch.ones(3), aabb=BOX)
    k = share(S["BATCH"], samples, TRAIN_POINTS)
    rays = S["BATCH"] // k
    train_key = dict(rays=rays, samples=samples, model=S["MODEL"])
    train = train_unit(S, train_views, rays, stratified, steps)
    kr = share(S["CHUNK"], samples, RENDER_POINTS)
    render_rays = S["CHUNK"] // kr
    render_key = dict(rays=render_rays, samples=samples, model=S["MODEL"])
    per_view = lambda px: math.ceil(px * px / render_rays)  # units per view of px x px
    unit_train = step_unit(k, rays)
    unit_render = "chunk" if kr == 1 else f"1/{kr} chunk ({render_rays} rays)"

    # section 10: BATCH // 2 rays x 32 samples on the chrome ball's views (VD_SIZE px, fov 24, distance 4)
    kv = share(S["BATCH"] // 2, 32, TRAIN_POINTS)
    vd_rays = S["BATCH"] // 2 // kv
    vd_views = {"images": torch.rand(2, S["VD_SIZE"], S["VD_SIZE"], 3),
                "c2w": cameras.orbit_poses(torch.tensor([0.0, 90.0]), 30.0, 4.0),
                "K": cameras.intrinsics_from_fov(24.0, S["VD_SIZE"])}
    vd_render = lambda: volume_renderer(2.0, 6.0, 32, background=1.0, aabb=torch.tensor([[-1.0] * 3, [1.0] * 3]))

    # section 11: the grid marches BOX's diagonal in MARCH_STEPS steps; samples kept per ray vary,
    # so its units are the stratified ones' shares (same rays per unit)
    step_size = float((BOX[1] - BOX[0]).norm()) / S["MARCH_STEPS"]
    grid_render = lambda: grid_renderer(lego_grid(S["GRID_RES"]), step_size)
    grid_key = dict(res=S["GRID_RES"], march=S["MARCH_STEPS"], model=S["MODEL"])
    occupied = float(lego_grid(S["GRID_RES"]).binary.float().mean())
    cells = min(RENDER_POINTS, S["GRID_RES"] ** 3)

    return [
        Part("nerf", "NeRF training, first half (section 7)", (steps // 2) * k, unit_train, train, train_key,
             share=k),
        Part("nerf_resumed", "NeRF training, resumed half (section 7)", (steps - steps // 2) * k, unit_train,
             train, train_key, share=k),
        Part("nerf_eval", "NeRF evaluation renders (section 8)", S["N_EVAL"] * per_view(size), unit_render,
             render_unit(S, size, render_rays, stratified), render_key, share=kr),
        Part("nerf_video", "NeRF 360-degree videos (section 9)", S["N_FRAMES"] * per_view(S["VIDEO_SIZE"]),
             unit_render, render_unit(S, S["VIDEO_SIZE"], render_rays, stratified), render_key, share=kr),
        Part("view_dependence", "View-dependence variants, 2 trainings (section 10)",
             2 * S["VD_STEPS"] * kv, step_unit(kv, vd_rays),
             train_unit(S, vd_views, vd_rays, vd_render, S["VD_STEPS"]), dict(rays=vd_rays, model=S["MODEL"]),
             share=kv),
        Part("nerf_grid", "NeRF training with an occupancy grid (section 11)", steps * k, unit_train,
             train_unit(S, train_views, rays, grid_render, steps), {**grid_key, "rays": rays}, share=k),
        Part("nerf_grid", "Occupancy-grid refreshes during that training (section 11)",
             math.ceil(refresh_cells(steps, S["GRID_RES"], occupied) / cells), f"{cells} cells",
             refresh_unit(S, cells, step_size), dict(cells=cells, model=S["MODEL"])),
        Part("nerf_grid_eval", "Occupancy-grid NeRF evaluation renders (section 11)",
             S["N_EVAL"] * per_view(size), unit_render, render_unit(S, size, render_rays, grid_render),
             {**grid_key, "rays": render_rays}, share=kr),
    ]
