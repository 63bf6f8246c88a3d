"""Small mesh builders: boxes, cylinders, surfaces of revolution, spheres and SDF isosurfaces.

Every builder returns a :class:`lib.mesh.TriMesh` in world units with y up, ``verts`` (V, 3)
float32 and ``faces`` (F, 3) int64 wound counter-clockwise seen from outside (so the face normal
``cross(b - a, c - a)`` points out and a closed mesh has positive signed volume).

Example (CPU)::

    >>> from lib import primitives
    >>> m = primitives.ico_sphere(level=2)
    >>> m.verts.shape, m.faces.shape
    (torch.Size([162, 3]), torch.Size([320, 3]))

Only torch and numpy are imported here; scikit-image is imported inside :func:`mesh_from_sdf`.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from lib.mesh import TriMesh, concat_meshes, mesh_edges

Vec3 = Union[Sequence[float], torch.Tensor]


def _triple(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
    if t.numel() == 1:
        t = t.expand(3)
    if t.numel() != 3:
        raise ValueError(f"{name} must be 3 numbers (x, y, z), got {tuple(t.shape)}")
    return t.clone()


# ------------------------------------------------------------------------------------ box
def box(center: Vec3 = (0.0, 0.0, 0.0), size: Vec3 = (1.0, 1.0, 1.0), sharp: bool = True) -> TriMesh:
    """An axis-aligned box.

    Args:
        center: (3,) centre of the box, world units.
        size: (3,) full edge lengths along x, y, z (a single number gives a cube).
        sharp: True gives 24 vertices (4 per side) so each side shades flat; False gives the
            8 shared corners (a watertight mesh, smooth-ish vertex normals).

    Returns:
        TriMesh with verts (24, 3) or (8, 3) and faces (12, 3).
    """
    c, s = _triple(center, "box center"), _triple(size, "box size")
    if (s <= 0).any():
        raise ValueError(f"box size must be positive, got {s.tolist()}")
    corners = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    corners = corners * s + c  # index = 4 * ix + 2 * iy + iz
    # each side as a quad of corner indices, counter-clockwise seen from outside
    quads = torch.tensor([
        [4, 6, 7, 5],  # +x
        [0, 1, 3, 2],  # -x
        [2, 3, 7, 6],  # +y
        [0, 4, 5, 1],  # -y
        [1, 5, 7, 3],  # +z
        [0, 2, 6, 4],  # -z
    ])
    if sharp:
        verts = corners[quads.reshape(-1)]  # (24, 3)
        quads = torch.arange(24).reshape(6, 4)
    else:
        verts = corners
    faces = torch.cat([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).long()
    return TriMesh(verts=verts.float(), faces=faces)


# ------------------------------------------------------------------------------- lathe
def lathe(profile_r: Sequence[float], profile_y: Sequence[float], segments: int = 32,
          capped: bool = True, closed: bool = False,
          labels: Optional[Sequence[int]] = None) -> TriMesh:
    """A surface of revolution about the y axis (vases, lamp shades, bases).

    The profile is a polyline in the (r, y) half-plane. Walk it so that the solid lies on the
    left: up the outside, over the top, down the inside. Then the surface faces out. A point
    with r == 0 becomes a single pole vertex (no degenerate triangles).

    Args:
        profile_r: (K,) radii >= 0.
        profile_y: (K,) heights.
        segments: number of steps around the axis (>= 3).
        capped: close an open profile with a flat disc at each end whose radius is > 0
            (the first point's disc faces -y, the last point's disc faces +y).
        closed: join the last profile point back to the first (a ring such as a lamp shade
            with wall thickness, or a torus); ``capped`` is then ignored.
        labels: optional (K - 1,) int labels, one per profile segment (K with ``closed``; the
            last one labels the closing segment). They become ``face_labels``; a cap takes
            the label of the segment next to it.

    Returns:
        TriMesh, verts (V, 3), faces (F, 3) with F = 2 * segments per segment between two
        points with r > 0 (segments for a segment ending at a pole), plus caps.
    """
    r = torch.as_tensor(profile_r, dtype=torch.float64).reshape(-1)
    y = torch.as_tensor(profile_y, dtype=torch.float64).reshape(-1)
    K = r.numel()
    if y.numel() != K or K < 2:
        raise ValueError(f"lathe needs profile_r and profile_y of the same length >= 2, got {K} and {y.numel()}")
    if (r < 0).any():
        raise ValueError("lathe profile_r must be >= 0")
    if segments < 3:
        raise ValueError(f"lathe needs segments >= 3, got {segments}")
    n_seg = K if closed else K - 1
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        if labels.numel() != n_seg:
            raise ValueError(f"lathe labels must have one entry per profile segment ({n_seg}), got {labels.numel()}")
    pole = r <= 1e-9
    # angle runs so that (a, b, c) below is counter-clockwise seen from outside: x = r cos, z = -r sin
    theta = torch.arange(segments, dtype=torch.float64) * (2 * math.pi / segments)
    verts, ring = [], []  # ring[i]: (segments,) vertex indices of profile point i
    n = 0
    for i in range(K):
        if pole[i]:
            verts.append(torch.tensor([[0.0, float(y[i]), 0.0]], dtype=torch.float64))
            ring.append(torch.full((segments,), n, dtype=torch.int64))
            n += 1
        else:
            verts.append(torch.stack([r[i] * theta.cos(), y[i].expand(segments), -r[i] * theta.sin()], 1))
            ring.append(torch.arange(n, n + segments))
            n += segments
    j0 = torch.arange(segments)
    j1 = (j0 + 1) % segments
    faces, face_lab = [], []
    for s in range(n_seg):
        i, k = s, (s + 1) % K
        a, b, c, d = ring[i][j0], ring[i][j1], ring[k][j1], ring[k][j0]
        tris = []
        if not pole[i]:
            tris.append(torch.stack([a, b, c], 1))
        if not pole[k]:
            tris.append(torch.stack([a, c, d], 1))
        if not tris:
            continue  # two poles in a row: a segment along the axis has no area
        t = torch.cat(tris)
        faces.append(t)
        face_lab.append(torch.full((t.shape[0],), int(labels[s]) if labels is not None else 0))
    if capped and not closed:
        for i, s, up in ((0, 0, False), (K - 1, n_seg - 1, True)):
            if pole[i]:
                continue
            verts.append(torch.tensor([[0.0, float(y[i]), 0.0]], dtype=torch.float64))
            centre = torch.full((segments,), n)
            n += 1
            a, b = ring[i][j0], ring[i][j1]
            t = torch.stack([centre, a, b], 1) if up else torch.stack([centre, b, a], 1)
            faces.append(t)
            face_lab.append(torch.full((segments,), int(labels[s]) if labels is not None else 0))
    if not faces:
        raise ValueError("lathe profile sweeps no area (every point is on the axis)")
    return TriMesh(verts=torch.cat(verts).float(), faces=torch.cat(faces).long(),
                   face_labels=torch.cat(face_lab).long() if labels is not None else None)


# ---------------------------------------------------------------------------- cylinder
def cylinder(radius: float = 0.5, height: float = 1.0, segments: int = 24,
             center: Vec3 = (0.0, 0.0, 0.0), capped: bool = True) -> TriMesh:
    """A cylinder along y.

    Args:
        radius, height: world units; the cylinder spans ``center.y +- height / 2``.
        segments: steps around the axis (>= 3).
        center: (3,) centre of the cylinder.
        capped: add the top and bottom discs (their rims are separate vertices, so the edge
            shades sharp); False leaves an open tube.

    Returns:
        TriMesh, verts (2 * segments (+ 2 * segments + 2 when capped), 3),
        faces (2 * segments (+ 2 * segments when capped), 3).
    """
    if radius <= 0 or height <= 0:
        raise ValueError(f"cylinder needs radius > 0 and height > 0, got {radius} and {height}")
    c = _triple(center, "cylinder center")
    h = height / 2
    side = lathe([radius, radius], [-h, h], segments, capped=False)
    parts = [side]
    if capped:
        parts.append(lathe([0.0, radius], [-h, -h], segments, capped=False))   # bottom, faces -y
        parts.append(lathe([radius, 0.0], [h, h], segments, capped=False))     # top, faces +y
    m = concat_meshes(parts)
    return TriMesh(verts=m.verts + c, faces=m.faces)


def cylinder_between(start: Vec3, end: Vec3, radius: float, segments: int = 16,
                     capped: bool = True) -> TriMesh:
    """A cylinder whose axis runs from ``start`` (3,) to ``end`` (3,) (chair legs, lamp arms).

    Returns the same layout as :func:`cylinder`.
    """
    p0, p1 = _triple(start, "start").double(), _triple(end, "end").double()
    axis = p1 - p0
    length = float(axis.norm())
    if length <= 0:
        raise ValueError("cylinder_between needs start != end")
    m = cylinder(radius, length, segments, capped=capped)
    R = _rotation_y_to(axis / length)
    verts = m.verts.double() @ R.T + (p0 + p1) / 2
    return TriMesh(verts=verts.float(), faces=m.faces)


def _rotation_y_to(d: torch.Tensor) -> torch.Tensor:
    """(3, 3) rotation taking +y to the unit vector d (Rodrigues)."""
    y = torch.tensor([0.0, 1.0, 0.0], dtype=d.dtype)
    v = torch.linalg.cross(y, d)
    c = float(y @ d)
    if v.norm() < 1e-12:
        return torch.eye(3, dtype=d.dtype) if c > 0 else torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=d.dtype))
    vx = torch.tensor([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]], dtype=d.dtype)
    return torch.eye(3, dtype=d.dtype) + vx + vx @ vx / (1 + c)


# ------------------------------------------------------------------------------ spheres
def uv_sphere(radius: float = 1.0, n_lat: int = 16, n_lon: int = 32) -> TriMesh:
    """A latitude/longitude sphere centred at the origin, with texture coordinates.

    Positions are shared across the seam and at the poles (the mesh is watertight); only the
    texture coordinates are split there. u = longitude / 2pi, v = 1 at the north (+y) pole.

    Args:
        radius: world units.
        n_lat: bands from pole to pole (>= 2).
        n_lon: steps around the y axis (>= 3).

    Returns:
        TriMesh with verts (2 + (n_lat - 1) * n_lon, 3), faces (2 * n_lon * (n_lat - 1), 3),
        verts_uvs ((n_lat + 1) * (n_lon + 1), 2) and faces_uvs (F, 3).
    """
    if n_lat < 2 or n_lon < 3:
        raise ValueError(f"uv_sphere needs n_lat >= 2 and n_lon >= 3, got {n_lat} and {n_lon}")
    phi = torch.linspace(0, math.pi, n_lat + 1, dtype=torch.float64)  # from +y down
    profile_r = radius * phi.sin()
    profile_r[0] = profile_r[-1] = 0.0
    # lathe walks the profile bottom-to-top on the outside
    m = lathe(profile_r.flip(0), (radius * phi.cos()).flip(0), n_lon, capped=False)
    # texture grid: row i = latitude band edge i counted from the south pole, column j = longitude
    i, j = torch.meshgrid(torch.arange(n_lat + 1), torch.arange(n_lon + 1), indexing="ij")
    verts_uvs = torch.stack([j / n_lon, i / n_lat], -1).reshape(-1, 2).float()
    uv = lambda ii, jj: ii * (n_lon + 1) + jj  # noqa: E731
    j0 = torch.arange(n_lon)
    fuv = []
    for s in range(n_lat):  # same face order as lathe: per segment (a, b, c) then (a, c, d)
        a, b, c, d = uv(s, j0), uv(s, j0 + 1), uv(s + 1, j0 + 1), uv(s + 1, j0)
        if s != 0:
            fuv.append(torch.stack([a, b, c], 1))
        if s != n_lat - 1:
            fuv.append(torch.stack([a, c, d], 1))
    return TriMesh(verts=m.verts, faces=m.faces, verts_uvs=verts_uvs, faces_uvs=torch.cat(fuv).long())


def ico_sphere(level: int = 0, radius: float = 1.0) -> TriMesh:
    """A subdivided icosahedron on the sphere of ``radius`` centred at the origin.

    Each level splits every triangle in four and pushes the new vertices onto the sphere, so
    level L has 10 * 4**L + 2 vertices and 20 * 4**L faces (the same counts as
    ``pytorch3d.utils.ico_sphere``). Watertight; a good start shape for mesh fitting.

    Returns:
        TriMesh, verts (10 * 4**L + 2, 3), faces (20 * 4**L, 3).
    """
    if level < 0:
        raise ValueError(f"ico_sphere level must be >= 0, got {level}")
    t = (1 + 5 ** 0.5) / 2
    verts = torch.tensor([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
                          [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                          [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], dtype=torch.float64)
    faces = torch.tensor([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
                          [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
                          [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                          [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    verts = torch.nn.functional.normalize(verts, dim=1)
    for _ in range(level):
        V = verts.shape[0]
        edges, face_edges = mesh_edges(faces, return_face_edges=True)  # (E, 2), (F, 3)
        mid = torch.nn.functional.normalize(verts[edges].mean(1), dim=1)  # a new vertex per edge
        verts = torch.cat([verts, mid])
        m01, m12, m20 = (face_edges[:, k] + V for k in range(3))
        a, b, c = faces.unbind(1)
        faces = torch.cat([torch.stack(x, 1) for x in
                           ((a, m01, m20), (b, m12, m01), (c, m20, m12), (m01, m12, m20))])
    return TriMesh(verts=(verts * radius).float(), faces=faces.long())


# -------------------------------------------------------------------------------- SDFs
def mesh_from_sdf(sdf_fn: Callable[[torch.Tensor], torch.Tensor],
                  bounds, resolution: Union[int, Sequence[int]] = 64, level: float = 0.0,
                  chunk: int = 262144) -> TriMesh:
    """Mesh the ``level`` set of a signed distance function with marching cubes.

    Args:
        sdf_fn: maps points (N, 3) float32 world to values (N,); negative inside.
        bounds: ((xmin, ymin, zmin), (xmax, ymax, zmax)) world box to sample, or a number b
            for the cube [-b, b]^3.
        resolution: samples along the longest side of the box (the grid is isotropic), or
            (nx, ny, nz) samples per axis.
        level: the iso value to extract.
        chunk: points per ``sdf_fn`` call (bounds the memory).

    Returns:
        TriMesh in world coordinates, faces counter-clockwise seen from outside (the side where
        sdf > level). The grid is padded with an outside layer, so the surface is always closed
        (a shape that pokes out of ``bounds`` is capped one voxel outside it).
    """
    from skimage import measure  # lazy: scikit-image is only needed here

    if isinstance(bounds, (int, float)):
        lo, hi = np.full(3, -float(bounds)), np.full(3, float(bounds))
    else:
        lo, hi = (np.asarray(b, dtype=np.float64).reshape(3) for b in bounds)
    if (hi <= lo).any():
        raise ValueError(f"mesh_from_sdf bounds must have min < max on every axis, got {lo.tolist()} and {hi.tolist()}")
    if isinstance(resolution, int):
        step = (hi - lo).max() / (resolution - 1)
        counts = np.maximum(np.round((hi - lo) / step).astype(int) + 1, 2)
    else:
        counts = np.asarray(resolution, dtype=int).reshape(3)
    if (counts < 2).any():
        raise ValueError(f"mesh_from_sdf needs at least 2 samples per axis, got {counts.tolist()}")
    axes = [torch.linspace(float(lo[k]), float(hi[k]), int(counts[k])) for k in range(3)]
    spacing = tuple(float((hi[k] - lo[k]) / (counts[k] - 1)) for k in range(3))
    pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    with torch.no_grad():
        vals = torch.cat([torch.as_tensor(sdf_fn(p)).reshape(-1).float() for p in pts.split(chunk)])
    if vals.numel() != pts.shape[0]:
        raise ValueError(f"sdf_fn must return one value per point: (N,) for (N, 3), got {vals.numel()} for {pts.shape[0]}")
    vol = vals.reshape(*counts.tolist()).numpy()
    if not (vol.min() < level < vol.max()):
        raise ValueError(f"mesh_from_sdf: the SDF never crosses level {level} inside the bounds "
                         f"(values from {vol.min():.3g} to {vol.max():.3g}); check bounds and sign")
    vol = np.pad(vol, 1, constant_values=max(float(vol.max()), level + 1.0))
    # 'descent' (the default) winds faces counter-clockwise seen from the high-value side,
    # i.e. outward for an SDF that is negative inside.
    v, f, _, _ = measure.marching_cubes(vol, level=level, spacing=spacing, gradient_direction="descent")
    verts = torch.from_numpy(v.astype(np.float32)) + torch.tensor(lo - np.asarray(spacing), dtype=torch.float32)
    return TriMesh(verts=verts, faces=torch.from_numpy(f.astype(np.int64)))


