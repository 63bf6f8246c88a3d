"""Notebook 05 (neural surfaces): the parts of its full-mode run that cost minutes.

Its real data: PyTorch3D's cow mesh, scaled to a 1.6-unit box, for the point-cloud SDF (sections
3-4), and the NeRF-synthetic lego at ``MV_SIZE`` px for VolSDF (sections 6-8; the camera shape of
``nb04.lego_views``, rays between 2 and 6 in [-1.5, 1.5]^3, a white background). Here the points
and images are random: a unit's cost depends on their number, the samples and the network only.

A VolSDF step of ``MV_RAYS`` x ``MV_SAMPLES`` samples takes about a minute on this CPU, so its
timed unit is a step on ``MV_RAYS / k`` rays (and ``MV_RAYS / 2k`` eikonal points, as the
notebook's ``eikonal_term`` draws half as many points as rays), counted ``k`` times per step.

Skipped as seconds on a T4: the torus (sections 1-2: an analytic SDF and a float64 quartic on
256^2 rays), marching cubes at ``MC_RES`` (cells 30 and 51: 160^3 SDF values, then
scikit-image), the chamfer distances, sphere tracing the learned SDFs (cell 32: 3 views at
``TRACE_SIZE``; cell 50: one view at 3 x ``MV_SIZE``; each about 0.1 TFLOP), VolSDF's held-out
renders (cell 48: 8 views of 128^2 px; cell 53: one view per sweep run), the sliders.
"""
from __future__ import annotations

import torch

from benchmarks.t4_budget.measure import Part
from benchmarks.t4_budget.nb04 import lego_views, share
from lib.losses import eikonal_loss
from lib.models.sdf import SDFNetwork
from lib.methods.nerf import make_nerf_step, training_rays, volume_renderer
from lib.render.sdf_density import volsdf_field
from lib.render.surface import sdf_gradient

USES_SD = False

TRAIN_POINTS = 131072  # ray samples per timed VolSDF unit: ~15 s here at most (a third of NeRF's MLP per sample)

# notebook 05's plain settings (not MODE.pick, so not in S): cells 22, 43 and 46
BOX, EIK_W, PC_LR, PC_BATCH = 1.0, 0.1, 1e-3, 1024  # point-cloud SDF: eikonal box and weight, lr, batch
MV_EIK_W, ALPHA, BETA = 0.02, 20.0, 0.05  # VolSDF's eikonal weight and density
SCENE_BOX = torch.tensor([[-1.5] * 3, [1.5] * 3])  # lego's scene box; rays between near 2 and far 6


def pc_unit(S: dict):
    """build() of one step of the point-cloud SDF (cell 24's ``pc_step``): |f| on PC_BATCH surface
    points plus the eikonal term at those and PC_BATCH random points of the box."""
    def build():
        torch.manual_seed(0)
        net = SDFNetwork(n_freqs=4, hidden=S["HIDDEN"], n_layers=3, init_radius=0.5)
        opt = torch.optim.Adam(net.parameters(), lr=PC_LR)
        g = torch.Generator().manual_seed(0)
        cloud = torch.nn.functional.normalize(torch.randn(S["PC_POINTS"], 3, generator=g), dim=1) * 0.6

        def step():
            surf = cloud[torch.randint(len(cloud), (PC_BATCH,), generator=g)]
            space = (torch.rand(PC_BATCH, 3, generator=g) * 2 - 1) * BOX
            grad = sdf_gradient(net.sdf, torch.cat([surf, space]), create_graph=True)
            loss = net.sdf(surf).abs().mean() + EIK_W * eikonal_loss(grad)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()
        return step
    return build


def volsdf_unit(S: dict, n_rays: int, n_samples: int):
    """build() of one VolSDF unit (cell 45's ``train_volsdf``): ``lib.methods.nerf.make_nerf_step`` on
    ``n_rays`` rays with the eikonal term at ``n_rays // 2`` random points of the scene box."""
    def build():
        torch.manual_seed(0)
        net = SDFNetwork(n_freqs=6, hidden=S["HIDDEN"], n_layers=4, init_radius=0.6)
        opt = torch.optim.Adam(net.parameters(), lr=S["MV_LR"])
        g = torch.Generator().manual_seed(0)
        render = volume_renderer(2.0, 6.0, n_samples, background=torch.ones(3), aabb=SCENE_BOX)

        def eikonal(i):
            x = SCENE_BOX[0] + (SCENE_BOX[1] - SCENE_BOX[0]) * torch.rand(n_rays // 2, 3, generator=g)
            return MV_EIK_W * eikonal_loss(sdf_gradient(net.sdf, x, create_graph=True))

        rays = training_rays(lego_views(2, S["MV_SIZE"]))  # the pool's size costs a step nothing
        step = make_nerf_step(volsdf_field(net, ALPHA, BETA), opt, render, rays, g, n_rays, extra_loss=eikonal)
        return lambda: step(0)
    return build


def parts(S: dict, sizes: str) -> list[Part]:
    net = dict(hidden=S["HIDDEN"])
    k = share(S["MV_RAYS"], S["MV_SAMPLES"], TRAIN_POINTS)
    ks = share(S["SWEEP_RAYS"], S["SWEEP_SAMPLES"], TRAIN_POINTS)
    mv_rays, sweep_rays = S["MV_RAYS"] // k, S["SWEEP_RAYS"] // ks
    unit = lambda k, rays: "step" if k == 1 else f"1/{k} step ({rays} rays)"
    return [
        Part("pc_sdf", "Point-cloud SDF training (section 3)", S["PC_STEPS"], "step", pc_unit(S), net),
        Part("volsdf", "VolSDF training from the lego's views (section 7)", S["MV_STEPS"] * k, unit(k, mv_rays),
             volsdf_unit(S, mv_rays, S["MV_SAMPLES"]), dict(net, rays=mv_rays, samples=S["MV_SAMPLES"]), share=k),
        Part("volsdf_sweep", "VolSDF sweeps of beta and alpha, 6 trainings (section 8)", 6 * S["SWEEP_STEPS"] * ks,
             unit(ks, sweep_rays), volsdf_unit(S, sweep_rays, S["SWEEP_SAMPLES"]),
             dict(net, rays=sweep_rays, samples=S["SWEEP_SAMPLES"]), share=ks),
    ]
