"""Ray tracing of a scene of several SDF objects: one sun with hard shadows, Blinn-Phong highlights.

The scene is data (:class:`SDFScene`): a function giving each object's signed distance, a
function giving the surface colour, a bounding box, a light and which objects are glossy. The
tracing is :func:`lib.render.surface.sphere_trace`, the same sphere tracer notebook 05 builds,
and the normals are :func:`lib.render.surface.sdf_normals` (the gradient of the nearest
object's SDF). Per ray:

- trace the union of the objects (the minimum of their SDFs) inside ``bounds``; a miss is
  transparent (alpha 0);
- at a hit, the nearest object gives the albedo; a shadow ray towards the sun decides whether
  the point is lit;
- ``rgb = albedo * (ambient + (1 - ambient) max(0, n . l) lit) + specular * glossy * max(0, n . h)^shininess * lit``
  with ``h`` the half vector between the light and the viewer.

Pure torch, no PyTorch3D; runs wherever the scene's functions run. ``lib.data.still_life``
defines the procedural still life that notebooks 04 and 05 learn from with it.

Example (CPU)::

    >>> from lib import cameras
    >>> ball = SDFScene(sdfs=lambda p: (p.norm(dim=-1) - 0.5)[:, None],
    ...                 albedo=lambda p, obj: torch.tensor([0.8, 0.3, 0.2]).expand(len(p), 3),
    ...                 bounds=((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)))
    >>> rgba = render_sdf_scene(ball, cameras.orbit_poses(2, 20.0, 3.0), cameras.intrinsics_from_fov(40.0, 16), 16)
    >>> rgba.shape, rgba[0, 8, 8, 3].item(), rgba[0, 0, 0, 3].item()  # alpha: covered centre, empty corner
    (torch.Size([2, 16, 16, 4]), 1.0, 0.0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Tuple

import torch
import torch.nn.functional as F

from lib.cameras import image_hw
from lib.images import box_downsample
from lib.rays import get_rays, intersect_aabb
from lib.render.surface import sdf_normals, sphere_trace


@dataclass
class SDFScene:
    """A scene of K objects for :func:`render_sdf_scene`; world units, y up.

    Attributes:
        sdfs: (M, 3) float world points -> (M, K) signed distances, one column per object
            (negative inside; each must not over-estimate its true distance).
        albedo: ((M, 3) surface points, (M,) int64 object index) -> (M, 3) colours in [0, 1].
        bounds: (min xyz, max xyz) world box holding the whole scene; rays are traced only inside it.
        light_dir: (3,) direction *towards* the sun, world (normalised here).
        glossy: indices of the objects that get a specular highlight.
        ambient: the light every surface gets, in [0, 1]; shadows remove the rest.
        shininess: Blinn-Phong exponent of the highlight (larger: smaller, sharper).
        max_steps: sphere-tracing steps for camera rays; ``shadow_steps`` for shadow rays, which
            search up to ``shadow_distance`` world units.
        eps: hit threshold on the distance, world units.
        step_scale: each step moves ``step_scale`` x the distance (< 1 is a safety margin for
            SDFs that are only bounds, such as smooth unions).
    """

    sdfs: Callable[[torch.Tensor], torch.Tensor]
    albedo: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    bounds: Sequence[Sequence[float]]
    light_dir: Tuple[float, float, float] = (0.45, 0.8, 0.4)
    glossy: Tuple[int, ...] = ()
    ambient: float = 0.35
    shininess: float = 40.0
    max_steps: int = 96
    shadow_steps: int = 48
    shadow_distance: float = 3.0
    eps: float = 1e-3
    step_scale: float = 0.95

    def distance(self, points: torch.Tensor) -> torch.Tensor:
        """(M,) signed distance of (M, 3) points to the union of the objects."""
        return self.sdfs(points).amin(-1)


def shade_sdf_scene(scene: SDFScene, origins: torch.Tensor, directions: torch.Tensor,
                    specular: float = 0.6) -> torch.Tensor:
    """(R, 4) RGBA in [0, 1] of rays (R, 3) world (unit directions) through ``scene``.

    Alpha is 1 where the ray hits an object and 0 where it misses (rgb 0 there).
    ``specular`` scales the highlights (0: a view-independent, purely diffuse scene).
    """
    # the tracer steps by the distance it is given: scaling the SDF scales each step, and the
    # hit threshold with it, so a hit still means "closer than eps"
    step = lambda p: scene.step_scale * scene.distance(p)  # noqa: E731
    box = torch.as_tensor(scene.bounds, dtype=origins.dtype, device=origins.device)
    t_in, t_out, inside = intersect_aabb(origins, directions, box)
    near = t_in.clamp_min(0)
    far = torch.where(inside, t_out, near - 1)  # near >= far: not traced, a miss
    traced = sphere_trace(step, origins, directions, near, far, scene.max_steps, scene.step_scale * scene.eps)
    out = torch.zeros(len(origins), 4, dtype=origins.dtype, device=origins.device)
    hit = traced["hit"]
    if not hit.any():
        return out
    p, d = traced["points"][hit], directions[hit]
    obj = scene.sdfs(p).argmin(-1)
    n = sdf_normals(scene.distance, p)
    light = F.normalize(torch.as_tensor(scene.light_dir, dtype=p.dtype, device=p.device), dim=0)
    shadow_o = p + 4 * scene.eps * n  # start the shadow ray just off the surface
    blocked = sphere_trace(step, shadow_o, light.expand_as(shadow_o), 0.0, scene.shadow_distance,
                           scene.shadow_steps, scene.step_scale * scene.eps)["hit"]
    lit = (~blocked).to(p.dtype)
    diffuse = (n @ light).clamp_min(0) * lit
    half = F.normalize(light - d, dim=-1)
    glossy = torch.isin(obj, torch.as_tensor(scene.glossy, dtype=obj.dtype, device=obj.device)).to(p.dtype)
    spec = specular * glossy * (n * half).sum(-1).clamp_min(0) ** scene.shininess * lit
    rgb = scene.albedo(p, obj) * (scene.ambient + (1 - scene.ambient) * diffuse)[:, None] + spec[:, None]
    out[hit, :3], out[hit, 3] = rgb.clamp(0, 1).to(out.dtype), 1.0
    return out


def render_sdf_scene(scene: SDFScene, c2w: torch.Tensor, K: torch.Tensor, image_size, specular: float = 0.6,
                     supersample: int = 2) -> torch.Tensor:
    """Ray-trace images of ``scene``, anti-aliased by supersampling.

    Args:
        scene: the :class:`SDFScene`. c2w: (N, 4, 4) (or (4, 4)) camera-to-world, OpenCV axes.
        K: (3, 3) pixel intrinsics. image_size: H or (H, W).
        specular: highlight strength (see :func:`shade_sdf_scene`).
        supersample: rays per pixel side (s x s rays per pixel, averaged).
    Returns:
        (N, H, W, 4) float32 RGBA in [0, 1]; alpha is the covered fraction of each pixel.
    """
    h, w = image_hw(image_size)
    ss = int(supersample)
    if ss < 1:
        raise ValueError(f"render_sdf_scene: supersample must be >= 1, got {supersample}")
    Ks = K.clone().float()
    Ks[:2] *= ss
    o, d = get_rays(c2w.reshape(-1, 4, 4), Ks, (h * ss, w * ss))  # all views in one batch of rays
    rgba = shade_sdf_scene(scene, o.reshape(-1, 3), d.reshape(-1, 3), specular).reshape(-1, h * ss, w * ss, 4)
    return box_downsample(rgba, ss)
