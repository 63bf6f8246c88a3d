"""Geometry helpers: parametric and implicit surfaces, surface sampling, colour gradients.

Parametric surfaces return point clouds; implicit surfaces are functions ``f(points) -> (N,)``
whose zero level set is the surface (negative inside), meshed with
``lib.primitives.mesh_from_sdf``. All functions are pure; randomness takes a ``generator``.

Example:
    >>> pts = torus_points(100, R=1.0, r=0.3)
    >>> pts.shape
    torch.Size([10000, 3])
    >>> torus_sdf(torch.tensor([[1.0, 0.0, 0.0]]), R=1.0, r=0.3)  # on the core circle: -r
    tensor([-0.3000])
"""
from __future__ import annotations

import math

import torch

from lib.checks import point_batch
from lib.mesh import TriMesh, face_areas


# ------------------------------------------------------------------- parametric
def _angle_grid(n: int, m: int = None):
    """(n*m,) pairs of angles covering [0, 2pi) x [0, 2pi) on a regular grid."""
    m = m or n
    theta, phi = torch.meshgrid(torch.linspace(0, 2 * math.pi, n + 1)[:-1],
                                torch.linspace(0, 2 * math.pi, m + 1)[:-1], indexing="ij")
    return theta.reshape(-1), phi.reshape(-1)


def torus_points(n: int, R: float = 1.0, r: float = 0.3) -> torch.Tensor:
    """(n*n, 3) points of a torus around the y axis, from an n x n grid of its two angles.

    ``x = (R + r cos t) cos p``, ``y = r sin t``, ``z = (R + r cos t) sin p``.
    """
    t, p = _angle_grid(n)
    return torch.stack([(R + r * torch.cos(t)) * torch.cos(p), r * torch.sin(t),
                        (R + r * torch.cos(t)) * torch.sin(p)], -1)


def _signed_pow(x: torch.Tensor, e: float) -> torch.Tensor:
    return torch.sign(x) * x.abs().pow(e)


def superquadric_points(n: int, scale=(1.0, 1.0, 1.0), e1: float = 0.5, e2: float = 0.5) -> torch.Tensor:
    """(n*n, 3) points of a superquadric (Barr's superellipsoid), y up.

    With latitude ``eta`` in [-pi/2, pi/2] and longitude ``omega`` in [-pi, pi):
    ``x = a c(eta)^e1 c(omega)^e2``, ``y = b s(eta)^e1``, ``z = c c(eta)^e1 s(omega)^e2``
    (signed powers). ``e1 = e2 = 1`` is an ellipsoid; small exponents make a box, 2 an octahedron.
    """
    eta, omega = torch.meshgrid(torch.linspace(-math.pi / 2, math.pi / 2, n),
                                torch.linspace(-math.pi, math.pi, n + 1)[:-1], indexing="ij")
    a, b, c = scale
    ce, se = _signed_pow(torch.cos(eta), e1), _signed_pow(torch.sin(eta), e1)
    x = a * ce * _signed_pow(torch.cos(omega), e2)
    z = c * ce * _signed_pow(torch.sin(omega), e2)
    return torch.stack([x, b * se, z], -1).reshape(-1, 3)


# --------------------------------------------------------------------- implicit
def torus_sdf(points: torch.Tensor, R: float = 1.0, r: float = 0.3) -> torch.Tensor:
    """(N,) exact signed distance of ``points`` (N, 3) to the torus of :func:`torus_points`."""
    q = torch.stack([points[:, [0, 2]].norm(dim=-1) - R, points[:, 1]], -1)
    return q.norm(dim=-1) - r


def box_sdf(points: torch.Tensor, center, sides) -> torch.Tensor:
    """Signed distance (..., ) from (..., 3) points to an axis-aligned box (centre (3,), side lengths (3,))."""
    q = (points - center).abs() - sides / 2
    return q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0)


def superquadric_implicit(points: torch.Tensor, scale=(1.0, 1.0, 1.0), e1: float = 0.5,
                          e2: float = 0.5) -> torch.Tensor:
    """(N,) inside-outside function of the superquadric of :func:`superquadric_points`.

    ``F = ((|x/a|^(2/e2) + |z/c|^(2/e2))^(e2/e1) + |y/b|^(2/e1)) - 1``: negative inside,
    zero on the surface, positive outside (not a true distance).
    """
    a, b, c = scale
    x, y, z = (points[:, 0] / a).abs(), (points[:, 1] / b).abs(), (points[:, 2] / c).abs()
    return (x.pow(2 / e2) + z.pow(2 / e2)).pow(e2 / e1) + y.pow(2 / e1) - 1


# ------------------------------------------------------------------------ sampling
def sample_surface(mesh: TriMesh, n: int, generator: torch.Generator = None):
    """Sample ``n`` points uniformly by area on a mesh's surface (one mesh: see
    :func:`sample_surface_batched` for the rule).

    Args:
        mesh: a ``TriMesh`` with at least one face of non-zero area.
        n: number of points. generator: a CPU ``torch.Generator`` for reproducibility.
    Returns:
        points: (n, 3) float world, and face_idx: (n,) int64 face of each point.
    """
    if float(face_areas(mesh.verts, mesh.faces).sum()) <= 0:
        raise ValueError("sample_surface: the mesh has zero total area (degenerate faces only)")
    points, face_idx = sample_surface_batched(mesh.verts[None], mesh.faces, n, generator)
    return points[0], face_idx[0]


def sample_surface_batched(verts: torch.Tensor, faces: torch.Tensor, n: int, generator: torch.Generator = None):
    """Sample ``n`` points uniformly by area on each of B meshes that share ``faces``.

    A face is drawn with probability proportional to its area (plus 1e-12, so that a collapsed
    mesh still samples), then a point inside it with the barycentric coordinates
    ``(1 - sqrt(u), sqrt(u) (1 - v), sqrt(u) v)`` for u, v ~ U(0, 1), which is uniform over the
    triangle. The random numbers are drawn on the CPU (faces first, then u and v), so a seeded
    CPU ``generator`` gives the same points on any device. The points are differentiable
    w.r.t. ``verts`` (the face choice is not).

    Args:
        verts: (B, V, 3) float world, e.g. a batch of deformed template meshes. faces: (F, 3) int64.
        n: points per mesh. generator: a CPU ``torch.Generator``.
    Returns:
        points: (B, n, 3) on ``verts``' device, and face_idx: (B, n) int64 face of each point.
    """
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise ValueError(f"sample_surface_batched: `verts` must be (B, V, 3), got {tuple(verts.shape)}")
    tri = verts[:, faces.long()]  # (B, F, 3, 3)
    area = face_areas(verts.detach(), faces).cpu()  # (B, F)
    face_idx = torch.multinomial(area + 1e-12, n, replacement=True, generator=generator)  # (B, n)
    u, v = torch.rand(2, *face_idx.shape, 1, generator=generator).to(verts.device)
    face_idx = face_idx.to(verts.device)
    su = u.sqrt()
    a, b, c = torch.gather(tri, 1, face_idx[..., None, None].expand(-1, -1, 3, 3)).unbind(2)  # each (B, n, 3)
    return (1 - su) * a + su * (1 - v) * b + su * v * c, face_idx


# ------------------------------------------------------------------------- colour
def color_gradient(verts: torch.Tensor, color_a, color_b, axis: int = 2) -> torch.Tensor:
    """(V, 3) colours that blend linearly from ``color_a`` at the smallest coordinate along
    ``axis`` to ``color_b`` at the largest (``alpha = (x - x_min) / (x_max - x_min)``)."""
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"`verts` must be (V, 3), got {tuple(verts.shape)}")
    if axis not in (0, 1, 2):
        raise ValueError(f"`axis` must be 0 (x), 1 (y) or 2 (z), got {axis}")
    x = verts[:, axis]
    alpha = ((x - x.min()) / (x.max() - x.min()).clamp(min=1e-12))[:, None]
    a, b = (torch.as_tensor(c, dtype=torch.float32) for c in (color_a, color_b))
    return (1 - alpha) * a + alpha * b


def checker_floor(size: float = 8.0, height: float = 0.0, checks: int = 8, texture_size: int = 256,
                  colors=((0.85, 0.85, 0.85), (0.35, 0.45, 0.6))) -> TriMesh:
    """A square floor at y = ``height`` (normal +y), ``size`` wide, textured with a checkerboard of
    ``checks`` x ``checks`` squares: a backdrop that makes perspective visible in renders."""
    h = size / 2
    verts = torch.tensor([[-h, height, -h], [-h, height, h], [h, height, h], [h, height, -h]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])  # counter-clockwise seen from above
    uvs = torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    idx = torch.arange(texture_size) * checks // texture_size
    parity = (idx[:, None] + idx[None, :]) % 2  # (T, T)
    a, b = (torch.tensor(c, dtype=torch.float32) for c in colors)
    texture = torch.where(parity[..., None].bool(), b, a)
    return TriMesh(verts=verts, faces=faces, verts_uvs=uvs, faces_uvs=faces.clone(), texture=texture)


def farthest_point_sample(points: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Indices of ``n`` points chosen greedily, each the farthest (Euclidean) from those chosen so
    far, starting from index ``start`` (PointNet++'s sampling; notebook 08).

    Args:
        points: (B, N, D) or (N, D) float. n: 1 <= n <= N. start: the first index.
    Returns:
        (B, n) int64 (or (n,) for unbatched input), the order in which the points were picked.
    """
    pts = point_batch(points)
    B, N = pts.shape[:2]
    if not 1 <= int(n) <= N:
        raise ValueError(f"farthest_point_sample: `n` must be between 1 and the {N} points, got {n}")
    if not 0 <= int(start) < N:
        raise ValueError(f"farthest_point_sample: `start` must index one of the {N} points, got {start}")
    idx = torch.empty(B, int(n), dtype=torch.int64, device=pts.device)
    idx[:, 0] = int(start)
    dist = torch.full((B, N), float("inf"), dtype=pts.dtype, device=pts.device)
    rows = torch.arange(B, device=pts.device)
    with torch.no_grad():
        for i in range(1, int(n)):
            last = pts[rows, idx[:, i - 1]]  # (B, D)
            dist = torch.minimum(dist, (pts - last[:, None]).pow(2).sum(-1))
            idx[:, i] = dist.argmax(-1)
    return idx if points.ndim == 3 else idx[0]
