"""A trainable 3D Gaussian scene (Kerbl et al., 2023): the parameters, their activations, and
ways to make one (from points, from a mesh, from a 3DGS ``.ply``).

Every Gaussian ``i`` has a mean (world), a rotation (a raw wxyz quaternion, normalised when used),
a scale per axis (stored as a log), an opacity (stored as a logit) and a colour as spherical
harmonics coefficients up to ``max_sh_degree`` (stored as the degree-0 term ``sh_dc`` and the
rest ``sh_rest``, learned at different rates). Rendering uses the first ``active_sh_degree``
bands (the training schedule raises it: :mod:`lib.methods.gaussian_splatting`).

Densification changes the number of Gaussians N. The parameters are then resized **in place**
(:meth:`GaussianModel.resize_`: the same ``nn.Parameter`` objects get new ``.data``), so an
optimizer keeps pointing at them, and ``load_state_dict`` accepts a state dict with another N
(so ``lib.train.fit`` can resume after densification: put the model before the optimizer in
``fit``'s ``state`` dict). The rules that add and remove Gaussians live in
:mod:`lib.methods.gaussian_splatting`.

Example (CPU):
    >>> from lib.cameras import intrinsics_from_fov, look_at, world_to_camera
    >>> model = GaussianModel.from_points(torch.rand(100, 3) - 0.5, max_sh_degree=1)
    >>> model.n, model.sh.shape, model.scales.shape, model.opacities.shape
    (100, torch.Size([100, 4, 3]), torch.Size([100, 3]), torch.Size([100]))
    >>> viewmat = world_to_camera(look_at(torch.tensor([0.0, 0.0, -3.0]), torch.zeros(3)))[None]
    >>> out = model.render(viewmat, intrinsics_from_fov(40.0, 32)[None], 32, 32, backend="torch")
    >>> out.rgb.shape, out.alpha.shape
    (torch.Size([1, 32, 32, 3]), torch.Size([1, 32, 32, 1]))
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from lib.checks import shape_of
from lib.geometry import sample_surface
from lib.losses import nearest_neighbors
from lib.mesh import TriMesh, face_areas, face_normals
from lib.quaternion import rotmat_to_quat
from lib.render.gaussians import GaussianRender, render_gaussians, rgb_to_sh0

PARAM_NAMES = ("means", "quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest")


class GaussianModel(nn.Module):
    """N 3D Gaussians with learnable parameters.

    Parameters (``nn.Parameter``, float32, rows = Gaussians):
        means: (N, 3) world. quats: (N, 4) raw wxyz (any nonzero norm). log_scales: (N, 3) log of
        the standard deviations along the Gaussian's own axes, world units. opacity_logits: (N,).
        sh_dc: (N, 1, 3) degree-0 SH coefficient per RGB channel. sh_rest: (N, K - 1, 3) the
        higher bands, ``K = (max_sh_degree + 1) ** 2`` (``(N, 0, 3)`` for degree 0).
    Buffer:
        active_sh_degree: () int64, the SH degree used to render (0 .. max_sh_degree).
    """

    def __init__(self, means: torch.Tensor, quats: torch.Tensor, log_scales: torch.Tensor,
                 opacity_logits: torch.Tensor, sh_dc: torch.Tensor, sh_rest: torch.Tensor,
                 active_sh_degree: int = 0):
        super().__init__()
        n = means.shape[0] if torch.is_tensor(means) else -1
        tensors = dict(means=means, quats=quats, log_scales=log_scales, opacity_logits=opacity_logits,
                       sh_dc=sh_dc, sh_rest=sh_rest)
        for name, t in tensors.items():
            self._check(name, t, n)
        k = sh_rest.shape[1] + 1
        self.max_sh_degree = math.isqrt(k) - 1
        if (self.max_sh_degree + 1) ** 2 != k:
            raise ValueError(f"`sh_rest` must be (N, (d + 1)^2 - 1, 3) for an SH degree d, got {tuple(sh_rest.shape)}")
        for name, t in tensors.items():
            setattr(self, name, nn.Parameter(t.detach().float().clone()))
        self.register_buffer("active_sh_degree", torch.tensor(0, dtype=torch.int64))
        self.set_sh_degree(active_sh_degree)

    _TAIL = {"means": (3,), "quats": (4,), "log_scales": (3,), "opacity_logits": (), "sh_dc": (1, 3)}

    def _check(self, name: str, t, n: int) -> None:
        tail = self._TAIL.get(name)
        ok = torch.is_tensor(t) and t.ndim >= 1 and t.shape[0] == n and (
            tuple(t.shape[1:]) == tail if tail is not None else (t.ndim == 3 and t.shape[2] == 3))
        if not ok:
            want = "(N, K - 1, 3)" if tail is None else str((n,) + tail).replace(f"({n},", "(N,")
            got = shape_of(t)
            raise ValueError(f"GaussianModel: `{name}` must be {want} with N = {n} (the rows of `means`), got {got}")
        if not torch.isfinite(t).all():
            raise ValueError(f"GaussianModel: `{name}` contains NaN or inf")

    # ------------------------------------------------------------------ activations
    @property
    def n(self) -> int:
        """Number of Gaussians N."""
        return int(self.means.shape[0])

    @property
    def scales(self) -> torch.Tensor:
        """(N, 3) standard deviations along the Gaussian's axes, world units (``exp(log_scales)``)."""
        return self.log_scales.exp()

    @property
    def opacities(self) -> torch.Tensor:
        """(N,) opacities in (0, 1) (``sigmoid(opacity_logits)``)."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def sh(self) -> torch.Tensor:
        """(N, K, 3) all SH coefficients, degree-0 first (``cat(sh_dc, sh_rest)``)."""
        return torch.cat([self.sh_dc, self.sh_rest], dim=1)

    def set_sh_degree(self, degree: int) -> None:
        """Render with the SH bands ``0 .. degree`` (0 <= degree <= max_sh_degree)."""
        if not 0 <= int(degree) <= self.max_sh_degree:
            raise ValueError(f"SH degree must be in [0, {self.max_sh_degree}] (max_sh_degree), got {degree}")
        self.active_sh_degree.fill_(int(degree))

    # ------------------------------------------------------------------ rendering
    def render(self, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
               background: Optional[torch.Tensor] = None, backend: str = "auto", **kwargs) -> GaussianRender:
        """Render the Gaussians from C cameras with the active SH degree
        (:func:`lib.render.gaussians.render_gaussians`; extra keyword arguments go to it).

        Args:
            viewmats: (C, 4, 4) world-to-camera, OpenCV axes (``lib.cameras.world_to_camera(c2w)``).
            Ks: (C, 3, 3) intrinsics, pixels. width, height: image size, pixels.
            background: (3,) or (C, 3) RGB behind the Gaussians, or None (black).
            backend: "auto", "torch" or "gsplat".
        Returns:
            ``GaussianRender``: rgb (C, H, W, 3), depth (C, H, W, 1), alpha (C, H, W, 1),
            means2d (C, N, 2) pixels (its ``.grad`` feeds densification), radii (C, N).
        """
        return render_gaussians(self.means, self.quats, self.scales, self.opacities, self.sh, viewmats, Ks,
                                width, height, sh_degree=int(self.active_sh_degree), background=background,
                                backend=backend, **kwargs)

    # ------------------------------------------------------------------ resizing
    @torch.no_grad()
    def resize_(self, values: dict) -> None:
        """Replace every parameter's rows in place: ``param.data = values[name]`` (same Parameter
        objects, so optimizers keep them; their ``.grad`` is cleared). ``values`` must hold all six
        parameters with one new N and the same trailing shapes (optimizer state is not touched:
        see :func:`lib.methods.gaussian_splatting.edit_gaussians`). Call it when no autograd graph through the
        parameters is alive (release the loss first): autograd caches a leaf's shape in the graph."""
        if set(values) != set(PARAM_NAMES):
            raise ValueError(f"resize_: `values` must hold exactly {PARAM_NAMES}, got {sorted(values)}")
        n = values["means"].shape[0]
        for name in PARAM_NAMES:
            p, v = getattr(self, name), values[name]
            if v.ndim != p.ndim or v.shape[1:] != p.shape[1:] or v.shape[0] != n:
                want = ", ".join(map(str, (n,) + tuple(p.shape[1:])))
                raise ValueError(f"resize_: `{name}` must be ({want}), got {tuple(v.shape)}")
        for name in PARAM_NAMES:
            p = getattr(self, name)
            p.data = values[name].to(device=p.device, dtype=p.dtype)
            p.grad = None

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # A checkpoint written after densification has another N: adopt it (rows only), then load.
        for name in PARAM_NAMES:
            p, v = getattr(self, name), state_dict.get(prefix + name)
            if torch.is_tensor(v) and v.ndim == p.ndim and v.shape[1:] == p.shape[1:] and v.shape[0] != p.shape[0]:
                p.data = torch.empty(v.shape, dtype=p.dtype, device=p.device)
                p.grad = None
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_points(cls, points: torch.Tensor, colors: Optional[torch.Tensor] = None, max_sh_degree: int = 3,
                    init_opacity: float = 0.1, scale_from_knn: int = 3) -> "GaussianModel":
        """Isotropic Gaussians at points (the 3DGS initialisation from a point cloud).

        Scale of each: ``sqrt(mean squared distance to its scale_from_knn nearest other points)``
        (at least 1e-7); rotation: identity; opacity: ``init_opacity``; colour: ``colors`` as the
        SH DC term (``rgb_to_sh0``; grey 0.5 when None), higher bands zero.

        Args:
            points: (N, 3) float world, N >= 2. colors: (N, 3) RGB in [0, 1] or None.
            max_sh_degree: highest SH band learned (0 = constant colour, 3 as in 3DGS).
            init_opacity: opacity in (0, 1). scale_from_knn: neighbours averaged for the scale.
        """
        if not torch.is_tensor(points) or points.ndim != 2 or points.shape[1] != 3 or len(points) < 2:
            got = shape_of(points)
            raise ValueError(f"`points` must be (N, 3) with N >= 2, got {got}")
        points = points.detach().float()
        n = len(points)
        if colors is None:
            colors = torch.full_like(points, 0.5)
        elif not torch.is_tensor(colors) or tuple(colors.shape) != (n, 3):
            got = shape_of(colors)
            raise ValueError(f"`colors` must be (N, 3) = ({n}, 3) RGB in [0, 1], got {got}")
        if not 0.0 < init_opacity < 1.0:
            raise ValueError(f"`init_opacity` must be in (0, 1), got {init_opacity}")
        k = min(int(scale_from_knn) + 1, n)  # the point itself comes first: drop it
        d2 = nearest_neighbors(points, points, backend="torch", k=k)[0].reshape(n, k)[:, 1:].mean(1).clamp_min(1e-14)
        scales = d2.sqrt()[:, None].expand(n, 3)
        quats = torch.zeros(n, 4, device=points.device)
        quats[:, 0] = 1.0
        return cls._make(points, quats, scales, torch.full((n,), float(init_opacity), device=points.device),
                         colors.float().to(points.device), max_sh_degree)

    @classmethod
    def from_mesh(cls, mesh: TriMesh, n_points: int, generator: Optional[torch.Generator] = None,
                  max_sh_degree: int = 3, opacity: float = 0.9, size: float = 1.0,
                  flatness: float = 0.1) -> "GaussianModel":
        """Flat Gaussians covering a mesh's surface (a Gaussian scene from a procedural mesh).

        Centres: ``n_points`` points uniform by area (:func:`lib.geometry.sample_surface`). Each is a
        disc in its face's plane: the third axis is the face normal, scales
        ``(s, s, flatness * s)`` with ``s = size * sqrt(total area / n_points)`` (the sample
        spacing). Colour: the vertex colours interpolated at the point (barycentric), or 0.7 grey.

        Args:
            mesh: a ``TriMesh`` (world units) with optional ``vert_colors`` (V, 3) in [0, 1].
            n_points: number of Gaussians. generator: CPU ``torch.Generator`` for the samples.
            max_sh_degree: SH degree of the model (only the DC term is set). opacity: in (0, 1).
            size: multiplies the disc radius (1 = the mean spacing). flatness: thickness ratio.
        """
        if not 0.0 < opacity < 1.0 or size <= 0 or flatness <= 0:
            raise ValueError(f"need 0 < opacity < 1, size > 0 and flatness > 0, got {opacity}, {size}, {flatness}")
        verts, faces = mesh.verts.float(), mesh.faces.long()
        points, face_idx = sample_surface(mesh, n_points, generator)
        normals = face_normals(verts, faces)[face_idx]  # (n, 3)
        # a tangent frame (t1, t2, normal) with det +1: columns of the rotation
        x_axis, y_axis = torch.eye(3, device=normals.device)[:2]
        helper = torch.where(normals[:, :1].abs() < 0.9, x_axis, y_axis)
        t1 = torch.nn.functional.normalize(torch.linalg.cross(normals, helper), dim=-1)
        t2 = torch.linalg.cross(normals, t1)
        quats = rotmat_to_quat(torch.stack([t1, t2, normals], dim=-1))
        s = size * math.sqrt(float(face_areas(verts, faces).sum()) / n_points)
        scales = torch.tensor([s, s, flatness * s], device=points.device).expand(n_points, 3)
        if mesh.vert_colors is None:
            colors = torch.full((n_points, 3), 0.7, device=points.device)
        else:  # barycentric coordinates of each point in its face (least squares in the plane)
            a, b, c = verts[faces[face_idx]].unbind(1)  # (n, 3) each
            e1, e2, d = b - a, c - a, points - a
            g11, g12, g22 = (e1 * e1).sum(-1), (e1 * e2).sum(-1), (e2 * e2).sum(-1)
            r1, r2 = (d * e1).sum(-1), (d * e2).sum(-1)
            det = (g11 * g22 - g12 * g12).clamp_min(1e-20)
            v, w = (g22 * r1 - g12 * r2) / det, (g11 * r2 - g12 * r1) / det
            bary = torch.stack([1 - v - w, v, w], -1).clamp(0, 1)
            colors = (bary[..., None] * mesh.vert_colors.float()[faces[face_idx]]).sum(1)
        opacities = torch.full((n_points,), float(opacity), device=points.device)
        return cls._make(points, quats, scales, opacities, colors, max_sh_degree)

    @classmethod
    def _make(cls, means, quats, scales, opacities, colors, max_sh_degree: int) -> "GaussianModel":
        if not isinstance(max_sh_degree, int) or not 0 <= max_sh_degree <= 3:
            raise ValueError(f"`max_sh_degree` must be an int in 0..3, got {max_sh_degree!r}")
        n, k = means.shape[0], (max_sh_degree + 1) ** 2
        return cls(means, quats, scales.log(), torch.logit(opacities), rgb_to_sh0(colors)[:, None, :],
                   torch.zeros(n, k - 1, 3, device=means.device))

    # ------------------------------------------------------------------ files
    @classmethod
    def from_ply(cls, path) -> "GaussianModel":
        """Load a 3DGS ``.ply`` (:func:`lib.data.gaussian_ply.read_gaussian_ply`); the active SH
        degree is the file's degree (a trained scene renders as trained)."""
        from lib.data.gaussian_ply import read_gaussian_ply

        d = read_gaussian_ply(path)
        return cls(d["means"], d["quats"], d["log_scales"], d["opacity_logits"], d["sh_dc"][:, None, :],
                   d["sh_rest"], active_sh_degree=int(d["sh_degree"]))

    def save_ply(self, path):
        """Write the Gaussians as a 3DGS ``.ply`` (:func:`lib.data.gaussian_ply.write_gaussian_ply`);
        returns what it returns (the path)."""
        from lib.data.gaussian_ply import write_gaussian_ply

        with torch.no_grad():
            return write_gaussian_ply(path, self.means.cpu(), self.sh_dc[:, 0].cpu(), self.sh_rest.cpu(),
                                      self.opacity_logits.cpu(), self.log_scales.cpu(), self.quats.cpu())

    def extra_repr(self) -> str:
        return f"n={self.n}, max_sh_degree={self.max_sh_degree}, active_sh_degree={int(self.active_sh_degree)}"
