"""Surface rendering of signed distance fields: sphere tracing, normals, and an analytic oracle.

A signed distance function (SDF) ``f`` maps points (N, 3) float32 world to (N,) distances to a
surface, negative inside. Along a ray ``x(t) = o + t d`` (``|d| = 1``) no surface is closer than
``|f(x(t))|``, so *sphere tracing* may step ``t <- t + f(x(t))`` without passing through it, and
stops where ``f < eps`` (a hit) or ``t > far`` (a miss). The surface normal is the normalised
gradient ``grad f / |grad f|`` (autograd). Everything here is pure torch (no PyTorch3D) and runs
on any device the SDF runs on.

:func:`ray_torus_intersection` solves the ray-torus quartic in float64: the test oracle for
sphere tracing of :func:`lib.geometry.torus_sdf`.

Example (CPU)::

    >>> from lib.geometry import torus_sdf
    >>> o = torch.tensor([[0.0, 0.0, 3.0], [0.0, 2.0, 3.0]])  # (R, 3) world
    >>> d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])  # (R, 3) unit
    >>> out = sphere_trace(lambda p: torus_sdf(p, R=1.0, r=0.3), o, d, near=0.0, far=6.0)
    >>> out["hit"].tolist(), round(out["t"][0].item(), 3)  # hits the outer rim at z = 1.3
    ([True, False], 1.7)
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch

from lib.checks import shape_of
from lib.rays import Bound, ray_bound, check_rays, get_rays, intersect_aabb

SDFFn = Callable[[torch.Tensor], torch.Tensor]


def _eval_sdf(sdf_fn: SDFFn, points: torch.Tensor, fn: str, where: str = "") -> torch.Tensor:
    """Call ``sdf_fn`` on (N, 3) points and check that it returns N finite values."""
    out = sdf_fn(points)
    n = points.shape[0]
    if not torch.is_tensor(out) or tuple(out.shape) not in ((n,), (n, 1)):
        got = shape_of(out)
        raise ValueError(f"{fn}: `sdf_fn output` must be a tensor of shape ({n},) (one signed "
                         f"distance per point of the ({n}, 3) input), got {got}{where}")
    out = out.reshape(n)
    bad = ~torch.isfinite(out)
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        p = [round(v, 4) for v in points[i].tolist()]
        raise ValueError(f"{fn}: `sdf_fn output` must be finite signed distances, got "
                         f"{int(bad.sum())} NaN/inf value(s) of {n}{where} (first: {out[i].item()} "
                         f"at point {p}); check the SDF network (exploding weights, a division "
                         "by zero, a log of a negative number)")
    return out


# --------------------------------------------------------------------------- gradients
def sdf_gradient(sdf_fn: SDFFn, points: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Spatial gradient ``grad f`` (N, 3) of an SDF at ``points`` (N, 3) world, by autograd.

    Args:
        sdf_fn: maps (N, 3) points to (N,) signed distances (differentiable).
        points: (N, 3) float world. They are detached first: the gradient is w.r.t. position only.
        create_graph: keep the graph so a loss on the gradient (the eikonal term) can be
            back-propagated into ``sdf_fn``'s parameters.
    Returns:
        grad: (N, 3); for an exact SDF ``|grad| = 1`` almost everywhere.
    """
    if not torch.is_tensor(points) or points.ndim != 2 or points.shape[1] != 3:
        got = shape_of(points)
        raise ValueError(f"sdf_gradient: `points` must be (N, 3), got {got}")
    with torch.enable_grad():
        x = points.detach().requires_grad_(True)
        f = _eval_sdf(sdf_fn, x, "sdf_gradient")
        (grad,) = torch.autograd.grad(f.sum(), x, create_graph=create_graph)
    return grad


def sdf_normals(sdf_fn: SDFFn, points: torch.Tensor) -> torch.Tensor:
    """Unit surface normals (N, 3) world at ``points`` (N, 3): ``grad f / |grad f|``, pointing
    outward (towards increasing distance). Not differentiable (use :func:`sdf_gradient`)."""
    return torch.nn.functional.normalize(sdf_gradient(sdf_fn, points), dim=-1, eps=1e-12)


# ------------------------------------------------------------------------- sphere tracing
@torch.no_grad()
def sphere_trace(sdf_fn: SDFFn, origins: torch.Tensor, directions: torch.Tensor,
                 near: Bound, far: Bound, max_steps: int = 64, eps: float = 1e-4) -> dict:
    """March rays through an SDF by sphere tracing.

    Every ray starts at ``t = near`` and repeats ``t <- t + f(o + t d)`` until ``f < eps`` (a hit;
    a ray that starts inside the surface hits at once), ``t > far`` (a miss), or ``max_steps``
    evaluations have been spent (a miss too: grazing rays near a silhouette converge slowly).
    Only rays still marching are evaluated, so the cost falls as rays finish. Not
    differentiable: it runs under ``torch.no_grad``.

    Args:
        sdf_fn: maps points (N, 3) world to (N,) (or (N, 1)) signed distances, negative inside.
            It must under-estimate the true distance (an exact SDF, or one scaled down) or
            tracing may step through thin parts.
        origins: (R, 3) float ray origins, world.
        directions: (R, 3) float ray directions, world, **unit length** (t is then a distance).
        near, far: the ray segment [near, far] to search, world units: floats (near < far), or
            (R,) tensors, one segment per ray (a ray with near >= far is not traced: a miss
            with 0 steps; e.g. a ray that misses the scene's bounding box).
        max_steps: the most SDF evaluations per ray.
        eps: hit threshold on ``f``, world units.
    Returns:
        dict with ``t`` (R,) float distance along each ray (the hit distance where ``hit``),
        ``hit`` (R,) bool, ``steps`` (R,) int64 SDF evaluations each ray used, and ``points``
        (R, 3) ``o + t d`` (the surface points where ``hit``).
    Raises:
        ValueError: bad ray shapes, ``near >= far``, or an ``sdf_fn output`` that is not (N,) or
            holds NaN/inf (the message names the step and the first bad point).
    """
    check_rays(origins, directions, "sphere_trace")
    if not torch.is_tensor(near) and not torch.is_tensor(far) and not float(near) < float(far):
        raise ValueError(f"sphere_trace: need near < far, got near={near}, far={far}")
    if max_steps < 1:
        raise ValueError(f"sphere_trace: max_steps must be >= 1, got {max_steps}")
    n_rays = origins.shape[0]
    near, far = (ray_bound(b, n_rays, name, origins, "sphere_trace")[:, 0] for b, name in ((near, "near"), (far, "far")))
    t = near.clone()
    hit = torch.zeros(n_rays, dtype=torch.bool, device=origins.device)
    steps = torch.zeros(n_rays, dtype=torch.int64, device=origins.device)
    active = torch.nonzero(near < far)[:, 0]  # indices of rays still marching
    for step in range(max_steps):
        if active.numel() == 0:
            break
        p = origins[active] + t[active, None] * directions[active]
        d = _eval_sdf(sdf_fn, p, "sphere_trace", where=f" at step {step}").to(t.dtype)
        steps[active] += 1
        done = d < eps
        hit[active[done]] = True
        t[active] = torch.where(done, t[active], t[active] + d)
        active = active[~done & (t[active] <= far[active])]
    return {"t": t, "hit": hit, "steps": steps, "points": origins + t[:, None] * directions}


def shade_normals(normals: torch.Tensor, hit: torch.Tensor, light_dir: Sequence[float] = (0.4, 0.8, 0.6),
                  albedo=(0.85, 0.7, 0.5), ambient: float = 0.3,
                  background: Sequence[float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Lambert shading of traced rays: ``albedo * (ambient + (1 - ambient) max(0, n . l))``.

    Args:
        normals: (R, 3) unit normals, world. hit: (R,) bool; missed rays get ``background``.
        light_dir: (3,) direction *towards* the light, world (normalised here).
        albedo: (3,) or (R, 3) surface colour in [0, 1], or the string ``"normals"`` for the
            normal map ``0.5 n + 0.5``.
        ambient: the light every surface gets, in [0, 1].
        background: (3,) RGB of missed rays.
    Returns:
        rgb: (R, 3) float in [0, 1].
    """
    if normals.ndim != 2 or normals.shape[1] != 3 or hit.shape != normals.shape[:1]:
        raise ValueError(f"shade_normals: `normals` must be (R, 3) and `hit` (R,), got "
                         f"{tuple(normals.shape)} and {tuple(hit.shape)}")
    light = torch.nn.functional.normalize(torch.as_tensor(light_dir, dtype=normals.dtype,
                                                          device=normals.device), dim=0)
    if isinstance(albedo, str) and albedo == "normals":
        albedo = 0.5 * normals + 0.5
    albedo = torch.as_tensor(albedo, dtype=normals.dtype, device=normals.device)
    lit = albedo * (ambient + (1 - ambient) * (normals @ light).clamp(min=0)[:, None])
    bg = torch.as_tensor(background, dtype=normals.dtype, device=normals.device)
    return torch.where(hit[:, None], lit, bg).clamp(0, 1)


def render_sdf(sdf_fn: SDFFn, c2w: torch.Tensor, K: torch.Tensor, image_size, near: float, far: float,
               max_steps: int = 64, eps: float = 1e-4, aabb: Optional[torch.Tensor] = None,
               albedo_fn: Optional[SDFFn] = None, chunk: int = 16384, **shading) -> dict:
    """Sphere-trace one image of an SDF and shade it with its normals (:func:`shade_normals`).

    Args:
        sdf_fn: (N, 3) world -> (N,) signed distances. c2w: (4, 4) camera-to-world, OpenCV axes.
        K: (3, 3) pixels. image_size: H or (H, W). near, far, max_steps, eps: see :func:`sphere_trace`.
        aabb: optional (2, 3) box (min, max corner), world: trace only inside it. A learned SDF is
            only trained inside its scene box; outside, its values mean nothing (a large one
            would make rays jump over the scene).
        albedo_fn: optional map from surface points (M, 3) to colours (M, 3) in [0, 1] (e.g. a
            network's colour head); default: the constant ``albedo`` of :func:`shade_normals`.
        chunk: rays per sphere-tracing call.
        shading: keyword arguments of :func:`shade_normals` (``light_dir``, ``albedo`` (3,) or
            "normals", ``ambient``, ``background``).
    Returns:
        dict of (H, W, ...) tensors: ``rgb`` (H, W, 3) shaded, ``normals`` (H, W, 3) world (zero
        where missed), ``t`` (H, W) ray length, ``hit`` (H, W) bool, ``steps`` (H, W) int64.
    """
    origins, dirs = get_rays(c2w, K, image_size)
    h, w = origins.shape[:2]
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    t0 = torch.full((len(origins),), float(near), dtype=origins.dtype, device=origins.device)
    t1 = torch.full_like(t0, float(far))
    if aabb is not None:
        t_in, t_out, inside = intersect_aabb(origins, dirs, aabb)
        t0, t1 = torch.maximum(t0, t_in), torch.where(inside, torch.minimum(t1, t_out), t0)
    parts = [sphere_trace(sdf_fn, o, d, a, b, max_steps, eps) for o, d, a, b in
             zip(origins.split(chunk), dirs.split(chunk), t0.split(chunk), t1.split(chunk))]
    out = {k: torch.cat([p[k] for p in parts]) for k in ("t", "hit", "steps", "points")}
    normals = torch.zeros_like(out["points"])
    if out["hit"].any():
        normals[out["hit"]] = sdf_normals(sdf_fn, out["points"][out["hit"]]).to(normals.dtype)
    if albedo_fn is not None:
        albedo = torch.zeros_like(out["points"])
        with torch.no_grad():
            albedo[out["hit"]] = albedo_fn(out["points"][out["hit"]]).to(albedo.dtype)
        shading["albedo"] = albedo
    rgb = shade_normals(normals, out["hit"], **shading)
    res = {"rgb": rgb, "normals": normals, "t": out["t"], "hit": out["hit"], "steps": out["steps"]}
    return {k: v.reshape(h, w, *v.shape[1:]) for k, v in res.items()}


# ---------------------------------------------------------------------- analytic oracle
def ray_torus_intersection(origins, directions, R: float = 1.0, r: float = 0.3,
                           near: float = 0.0, far: float = float("inf")) -> torch.Tensor:
    """Exact first intersection of rays with the y-axis torus of :func:`lib.geometry.torus_sdf`.

    Substituting ``x = o + t d`` (``|d| = 1``) into ``(|x|^2 + R^2 - r^2)^2 = 4 R^2 (x^2 + z^2)``
    gives the quartic ``t^4 + 4b t^3 + (4b^2 + 2c - 4R^2 e) t^2 + (4bc - 8R^2 g) t + c^2 - 4R^2 h
    = 0`` with ``b = o.d``, ``c = |o|^2 + R^2 - r^2``, ``e = dx^2 + dz^2``, ``g = ox dx + oz dz``,
    ``h = ox^2 + oz^2``. Its roots are the eigenvalues of the companion matrix (batched, float64),
    polished by Newton steps; the smallest real root in [near, far] is the hit. (The code divides
    by ``|d|^4``, so float32 rounding of a unit ``d`` costs no accuracy.)

    Args:
        origins: (R, 3) ray origins, world (torch or numpy).
        directions: (R, 3) ray directions, world (unit length, so that t is a distance; the
            quartic is solved for the directions as given, in float64).
        R, r: major and minor radius of the torus.
        near, far: accept roots in [near, far].
    Returns:
        t: (R,) float64 distance to the first hit, ``inf`` where the ray misses. Rays that only
        graze the torus (a double root) are ill-conditioned: treat them with a tolerance.
    """
    o = torch.as_tensor(origins).detach().cpu().double().numpy()
    d = torch.as_tensor(directions).detach().cpu().double().numpy()
    if o.ndim != 2 or o.shape[1] != 3 or o.shape != d.shape:
        raise ValueError(f"ray_torus_intersection: `origins` and `directions` must both be (R, 3), "
                         f"got {o.shape} and {d.shape}")
    a = (d * d).sum(1)  # 1 for unit directions; kept so float32 rounding of |d| costs nothing
    b = (o * d).sum(1)
    c = (o * o).sum(1) + R * R - r * r
    e = d[:, 0] ** 2 + d[:, 2] ** 2
    g = o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2]
    h = o[:, 0] ** 2 + o[:, 2] ** 2
    coef = np.stack([4 * a * b, 4 * b * b + 2 * a * c - 4 * R * R * e, 4 * b * c - 8 * R * R * g,
                     c * c - 4 * R * R * h], 1) / (a * a)[:, None]  # monic: t^4 + a3 t^3 + ... + a0
    comp = np.zeros((len(o), 4, 4))
    comp[:, 0, :] = -coef
    comp[:, 1, 0] = comp[:, 2, 1] = comp[:, 3, 2] = 1.0
    roots = np.linalg.eigvals(comp)  # (R, 4) complex
    real = roots.real.copy()
    for _ in range(3):  # Newton polish of the real parts
        p = ((real + coef[:, :1]) * real + coef[:, 1:2]) * real
        p = (p + coef[:, 2:3]) * real + coef[:, 3:4]
        dp = ((4 * real + 3 * coef[:, :1]) * real + 2 * coef[:, 1:2]) * real + coef[:, 2:3]
        real = np.where(np.abs(dp) > 1e-12, real - p / np.where(dp == 0, 1, dp), real)
    scale = 1.0 + np.abs(roots)
    is_real = np.abs(roots.imag) <= 1e-6 * scale
    ok = is_real & (real >= near) & (real <= far)
    t = np.where(ok, real, np.inf).min(1)
    return torch.from_numpy(t)
