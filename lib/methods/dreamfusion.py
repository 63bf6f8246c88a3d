"""DreamFusion: a NeRF optimised from text alone, by score distillation from random views (notebook 07).

Each step renders a few random views of a :class:`lib.models.nerf.NeRFField` (no view-dependent
colour: albedo), shades them, and pushes every view toward "an image of the prompt" with
:func:`lib.guidance.sds.sds_loss`. The pieces of the paper (Poole et al., 2022) kept here:

- **Cameras** on a sphere around the object, azimuth uniform in [0, 360), elevation uniform in
  ``elevation_range``, at ``radius`` with the prior's intrinsics (by default the offline prior's
  training cameras: SRN's field of view at 32 px, distance 1.3, elevation -10..50 degrees).
- **View-dependent prompts** (``lib.prompts.view_prompt``): "a chair, back view" for a camera
  behind the chair, or the bare prompt for every view when ``view_dependent=False``.
- **Shading**: colour = albedo * (ambient + (1 - ambient) max(0, n . l)) with the normal
  ``n = -grad sigma / |grad sigma|`` (autograd, differentiable) and a random light near the camera;
  "textureless" renders replace the albedo by white, so the geometry alone must look right.
  During the first ``shading_warmup`` fraction of the steps only albedo is rendered (the geometry is
  a blob then and its normals mean nothing).
- **Density blob**: ``sigma += blob_density exp(-|x|^2 / (2 blob_radius^2))`` is added to the
  field's density so that the object starts, and stays, in the middle.
- **Regularisers**: orientation (Ref-NeRF): ``sum_i w_i max(0, n_i . d)^2`` per ray, normals must
  not face away from the camera; opacity entropy ``-a log a - (1 - a) log(1 - a)`` of each ray's
  opacity ``a`` (a ray is either empty or solid), and the mean opacity (sparsity: no fog
  filling the frame).

Renders are on a white background, (B, H, W, 3) in [0, 1]; the ``lib.guidance.guide.Guide`` takes them
to its model's space (the offline prior: ``2 x - 1``; Stable Diffusion: its VAE).

Example (CPU, a stand-in noise predictor):
    >>> cfg = DreamFusionConfig(steps=2, views_per_step=1, image_size=8, n_samples=8, hidden=16)
    >>> field = dreamfusion_field(cfg)
    >>> from lib.guidance.guide import Guide
    >>> from lib.images import from_nchw, to_nchw
    >>> guide = Guide("stand-in", lambda x, t, e: torch.zeros_like(x), lambda prompts: torch.zeros(len(prompts), 4, 8),
    ...               torch.linspace(0.99, 0.01, 1000), lambda x: 2 * to_nchw(x) - 1,
    ...               lambda x: from_nchw(x + 1) / 2, (3, 8, 8), 8)
    >>> step = make_dreamfusion_step(field, guide, cfg)
    >>> sorted(step(0))
    ['entropy', 'loss', 'opacity', 'orientation', 'sds', 't']
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F

from lib.cameras import orbit_poses, random_orbit_angles
from lib.data.srn import SRN_RADIUS, srn_intrinsics
from lib.guidance.sds import TimestepSchedule
from lib.prompts import validate_prompt, view_prompts
from lib.models.nerf import NeRFConfig, NeRFField
from lib.rays import get_rays, near_far_from_aabb
from lib.render.volume import volume_render

SHADINGS = ("albedo", "lambertian", "textureless")


@dataclass
class DreamFusionConfig:
    """Settings of a DreamFusion run (all plain values, so the dict is a run's identity).

    Attributes:
        prompt: the text, e.g. "a chair". view_dependent: append the view word per camera.
        steps, views_per_step: optimisation steps; random views rendered per step.
        image_size: rendered pixels per side (the prior's size; Stable Diffusion's VAE wants
            them resized by ``guide.to_model``).
        radius, elevation_range: camera distance and elevation range (degrees).
        bound: the scene box is ``[-bound, bound]^3``; n_samples: stratified samples per ray.
        hidden, n_layers, n_freqs: the field's MLP width, depth and position octaves.
        lr: Adam learning rate. guidance_scale: classifier-free guidance.
        t_min, t_max, anneal, t_max_final: the timestep schedule (``lib.guidance.sds.TimestepSchedule``).
        blob_density, blob_radius: the density added around the origin.
        shading_warmup: fraction of the steps rendered as albedo only. ambient: shading floor.
        p_textureless: after the warm-up, probability of a white-albedo (geometry only) step.
        orientation_weight, entropy_weight, opacity_weight: the regularisers' weights. The
            regularisers are means over rays while the SDS loss sums over pixels, so weights of
            ~10 are what makes them count against it (measured: with weights ~0.01 the field
            stayed a white fog after 200 steps of the offline prior).
        seed: initial weights, cameras, noise and timesteps.
    """

    prompt: str = "a chair"
    view_dependent: bool = True
    steps: int = 300
    views_per_step: int = 4
    image_size: int = 32
    radius: float = SRN_RADIUS
    elevation_range: Tuple[float, float] = (-10.0, 50.0)
    bound: float = 0.5
    n_samples: int = 32
    hidden: int = 64
    n_layers: int = 3
    n_freqs: int = 6
    lr: float = 1e-2
    guidance_scale: float = 7.5
    t_min: float = 0.02
    t_max: float = 0.98
    anneal: str = "linear"
    t_max_final: float = 0.5
    blob_density: float = 2.0
    blob_radius: float = 0.2
    shading_warmup: float = 0.1
    ambient: float = 0.3
    p_textureless: float = 0.5
    orientation_weight: float = 10.0
    entropy_weight: float = 5.0
    opacity_weight: float = 20.0
    seed: int = 0

    def __post_init__(self):
        self.prompt = validate_prompt(self.prompt)
        self.elevation_range = tuple(float(e) for e in self.elevation_range)
        for name in ("steps", "views_per_step", "image_size", "n_samples", "hidden", "n_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DreamFusionConfig: `{name}` must be >= 1, got {getattr(self, name)}")
        if not self.guidance_scale > 0:
            raise ValueError(f"DreamFusionConfig: `guidance_scale` must be > 0, got {self.guidance_scale}")
        if self.radius <= self.bound:
            raise ValueError(f"DreamFusionConfig: `radius` {self.radius} must exceed `bound` {self.bound} "
                             "(cameras outside the scene box)")
        self.schedule(1000)  # validates the timestep settings

    def schedule(self, num_train_timesteps: int) -> TimestepSchedule:
        """The SDS timestep schedule of this run, for a prior with ``num_train_timesteps`` steps."""
        return TimestepSchedule(num_train_timesteps, self.t_min, self.t_max, self.anneal, self.t_max_final)

    def as_dict(self) -> dict:
        return asdict(self)


def dreamfusion_field(config: DreamFusionConfig) -> NeRFField:
    """A fresh albedo field (no view dependence), weights from ``config.seed``."""
    return NeRFField(NeRFConfig(n_freqs_xyz=config.n_freqs, hidden=config.hidden, n_layers=config.n_layers,
                                skip=None, view_dependent=False, scene_scale=config.bound, density_bias=-1.0),
                     seed=config.seed)


def blob(points: torch.Tensor, density: float, radius: float) -> torch.Tensor:
    """``density * exp(-|x|^2 / (2 radius^2))`` for points (..., 3) -> (...,)."""
    return density * torch.exp(-(points ** 2).sum(-1) / (2 * radius ** 2))


def field_density(field: NeRFField, config: DreamFusionConfig, points: torch.Tensor):
    """The density a DreamFusion field renders with: the field's own plus ``config``'s blob.
    points (..., 3) -> sigma (...,), features (..., hidden) (for ``field.color``)."""
    sigma, h = field.density(points)
    return sigma + blob(points, config.blob_density, config.blob_radius), h


def shaded_field_fn(field: NeRFField, config: DreamFusionConfig, shading: str = "albedo",
                    light: Optional[torch.Tensor] = None, record: Optional[dict] = None):
    """``field_fn(points (R, S, 3), dirs) -> (sigma (R, S), rgb (R, S, 3))`` for
    :func:`lib.render.volume.volume_render`: the field's density plus the blob, and its albedo
    shaded per ``shading`` (one of ``SHADINGS``) with a light direction ``light`` (R, 3) unit
    (from the surface toward the light). If ``record`` is a dict, the normals (R, S, 3) go into
    ``record["normals"]`` (only computed for "lambertian"/"textureless", or when ``record`` asks)."""
    if shading not in SHADINGS:
        raise ValueError(f"shading must be one of {SHADINGS}, got {shading!r}")

    def fn(points: torch.Tensor, dirs: torch.Tensor):
        want_normals = shading != "albedo" or record is not None
        train = torch.is_grad_enabled()  # the normals join the graph only when training
        with torch.enable_grad():
            p = points.detach().requires_grad_(want_normals)
            sigma, h = field_density(field, config, p)
            normals = None
            if want_normals:
                g = torch.autograd.grad(sigma.sum(), p, create_graph=train)[0]
                normals = -g / g.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        albedo = field.color(h)
        if record is not None:
            record["normals"] = normals
        if shading == "albedo":
            return sigma, albedo
        lam = (normals * light[:, None, :]).sum(-1, keepdim=True).clamp_min(0.0)
        shade = config.ambient + (1 - config.ambient) * lam
        base = torch.ones_like(albedo) if shading == "textureless" else albedo
        return sigma, base * shade

    return fn


def orbit_rays(c2w: torch.Tensor, config: DreamFusionConfig, image_size: Optional[int] = None):
    """The rays of (V, 4, 4) cameras with SRN's intrinsics at ``image_size`` (default
    ``config.image_size``), flattened: origins, unit directions (R, 3) and their near, far (R,)
    bounds through the scene box ``[-bound, bound]^3``, R = V H W (row-major per view)."""
    H = config.image_size if image_size is None else int(image_size)
    origins, dirs = get_rays(c2w, srn_intrinsics(H).to(c2w), H)  # (V, H, W, 3)
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    box = torch.tensor([-config.bound] * 3 + [config.bound] * 3, dtype=o.dtype, device=o.device)
    near, far = near_far_from_aabb(o, d, box, 0.0, config.radius + 2 * config.bound)
    return o, d, near, far


def render_field_views(field: NeRFField, c2w: torch.Tensor, config: DreamFusionConfig, shading: str = "albedo",
                 light: Optional[torch.Tensor] = None, generator=None, perturb: bool = True,
                 record: Optional[dict] = None) -> dict:
    """Render (V, 4, 4) cameras at ``config.image_size`` on white.

    Returns: dict with images (V, H, W, 3) in [0, 1], distance (V, H, W), opacity_map (V, H, W), the
    unit ray directions (R, 3) and the per-ray outputs of :func:`volume_render` (weights (R, S),
    opacity (R,), ...), R = V H W; ``light`` is one
    unit (V, 3) direction per view (None: from the camera).
    """
    V, H = c2w.shape[0], config.image_size
    o, d, near, far = orbit_rays(c2w, config)
    if light is None:
        light = F.normalize(c2w[:, :3, 3], dim=-1)
    light_rays = light[:, None, None, :].expand(V, H, H, 3).reshape(-1, 3)
    fn = shaded_field_fn(field, config, shading, light_rays, record)
    out = volume_render(fn, o, d, near, far, config.n_samples, generator, background=1.0, perturb=perturb)
    out["directions"] = d
    out["images"] = out["rgb"].reshape(V, H, H, 3)
    out["distance"] = out["distance"].reshape(V, H, H)
    out["opacity_map"] = out["opacity"].reshape(V, H, H)
    return out


def regularisers(out: dict, directions: torch.Tensor, normals: torch.Tensor) -> dict:
    """Orientation, opacity entropy and mean opacity (module docstring) of one render.

    Args: out: :func:`render_field_views` output (weights (R, S), opacity (R,)); directions (R, 3) unit
        ray directions; normals (R, S, 3) or None (orientation 0).
    Returns: dict of 0-d tensors: orientation, entropy, opacity.
    """
    a = out["opacity"].clamp(1e-5, 1 - 1e-5)
    entropy = (-a * a.log() - (1 - a) * (1 - a).log()).mean()
    if normals is None:
        orientation = a.new_zeros(())
    else:
        facing = (normals * directions[:, None, :]).sum(-1).clamp_min(0.0)
        orientation = (out["weights"] * facing ** 2).sum(-1).mean()
    return {"orientation": orientation, "entropy": entropy, "opacity": out["opacity"].mean()}


def render_random_views(field: NeRFField, config: DreamFusionConfig, progress: float, generator: torch.Generator,
                        ray_generator: Optional[torch.Generator] = None):
    """One training render of ``config.views_per_step`` random orbit cameras (DreamFusion's, also
    NeuralLift's novel views): albedo during the first ``shading_warmup`` of training, then
    textureless with probability ``p_textureless`` or Lambertian, lit from near the camera.

    Cameras, shading choice and light come from ``generator`` (CPU); the ray jitter from
    ``ray_generator`` (default ``generator``; on a GPU pass one on the rays' device).
    Returns: (render dict of :func:`render_field_views`, azimuths (V,), elevations (V,), normals
    (R, S, 3) or None)."""
    device = next(field.parameters()).device
    az, el = random_orbit_angles(config.views_per_step, config.elevation_range, generator)
    c2w = orbit_poses(az, el, config.radius).to(device)
    if progress < config.shading_warmup:
        shading = "albedo"
    else:
        shading = "textureless" if torch.rand((), generator=generator) < config.p_textureless else "lambertian"
    # light: the camera direction jittered by up to ~45 degrees
    light = F.normalize(F.normalize(c2w[:, :3, 3], dim=-1) + 0.5 * torch.randn(len(c2w), 3, generator=generator
                                                                               ).to(device), dim=-1)
    record = {}
    out = render_field_views(field, c2w, config, shading, light, ray_generator or generator, True, record)
    return out, az, el, record.get("normals")


def step_generators(field: torch.nn.Module, seed: int, generator: Optional[torch.Generator] = None):
    """The two random streams of a field's training step: ``(generator, ray_generator)``.

    Cameras, lights, noise and timesteps come from ``generator`` (CPU; default seeded by ``seed``).
    The stratified jitter is drawn where the rays are, so on a GPU it gets its own generator on
    the field's device, seeded alike; on a CPU both are the same stream.
    """
    generator = generator or torch.Generator().manual_seed(seed)
    device = next(field.parameters()).device
    ray_generator = generator if device.type == "cpu" else torch.Generator(device).manual_seed(seed)
    return generator, ray_generator


def make_dreamfusion_step(field: NeRFField, guide, config: DreamFusionConfig, optimizer=None,
                          generator: Optional[torch.Generator] = None):
    """``step(i) -> {"loss", "sds", "orientation", "entropy", "opacity", "t"}`` for ``lib.train.fit``.

    Args:
        field: from :func:`dreamfusion_field`.
        guide: a ``lib.guidance.guide.Guide`` (the offline prior, or Stable Diffusion: renders at
            ``config.image_size`` go through ``guide.to_model``).
        optimizer: default Adam(field, config.lr). generator: default seeded by ``config.seed``.
    """
    optimizer = optimizer or torch.optim.Adam(field.parameters(), lr=config.lr)
    generator, ray_generator = step_generators(field, config.seed, generator)
    schedule = config.schedule(int(guide.alphas_cumprod.shape[0]))

    def step(i: int) -> dict:
        progress = i / max(config.steps - 1, 1)
        out, az, el, normals = render_random_views(field, config, progress, generator, ray_generator)
        prompts = view_prompts(config.prompt, az, el, config.view_dependent)
        t = schedule.sample(len(az), progress, generator)
        sds, info = guide.sds(out["images"], prompts, t, config.guidance_scale, generator)
        reg = regularisers(out, out["directions"], normals)
        loss = (sds + config.orientation_weight * reg["orientation"] + config.entropy_weight * reg["entropy"]
                + config.opacity_weight * reg["opacity"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "sds": sds.item(), "t": info["t"].float().mean().item(),
                **{k: v.item() for k, v in reg.items()}}

    return step


@torch.no_grad()
def render_turntable(field: NeRFField, config: DreamFusionConfig, azimuths, elevation: float = 20.0,
                     shading: str = "albedo") -> dict:
    """Render views at the given azimuths (degrees), bin centres, no gradients.

    Returns: dict with images (V, H, W, 3) in [0, 1], distance (V, H, W) (expected ray length, 0 where empty),
    opacity (V, H, W), azimuths (V,).
    """
    az = torch.as_tensor(azimuths, dtype=torch.float32).reshape(-1)
    c2w = orbit_poses(az, float(elevation), config.radius).to(next(field.parameters()).device)
    out = render_field_views(field, c2w, config, shading, None, None, False, None)
    return {"images": out["images"].clamp(0, 1), "distance": out["distance"] * (out["opacity_map"] > 0.5),
            "opacity": out["opacity_map"], "azimuths": az}
