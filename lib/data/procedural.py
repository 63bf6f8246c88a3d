"""Procedural datasets: a textured toy animal (the offline cow) and part-labelled chairs, vases, lamps.

Every generator is a deterministic function of ``seed`` (a ``numpy.random.default_rng(seed)``
drawn in a fixed order; no global RNG state) and returns a :class:`lib.mesh.TriMesh` in world
units, y up:

- ``toy_animal(seed)``: one watertight, textured quadruped, about 1.5-1.9 long along x with the
  head towards +x, its bounding box centred at the origin (like the PyTorch3D cow).
- ``chair(seed)``, ``vase(seed)``, ``lamp(seed)``: about 1 unit tall, standing on y = 0 with
  the bounding box centred on the y axis; chairs face +z (the back is at -z). Every face has a part label
  (``face_labels`` indexing ``label_names`` = ``PART_NAMES[category]``), and each part has its
  own vertex colour (vertices are not shared between parts, so colours do not bleed).

Example (CPU)::

    >>> from lib.data import procedural
    >>> m = procedural.make_shape("chair", seed=3)
    >>> m.label_names, m.face_labels.shape
    (['seat', 'back', 'legs', 'arms'], torch.Size([...]))

Needs torch, numpy, scikit-image (marching cubes, toy animal only) and scipy; not PyTorch3D.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from lib import primitives as P
from lib.mesh import TriMesh, concat_meshes

CHAIR_PARTS = ("seat", "back", "legs", "arms")
VASE_PARTS = ("base", "body", "neck", "lip")
LAMP_PARTS = ("base", "pole", "shade", "arm")
PART_NAMES = {"chair": CHAIR_PARTS, "vase": VASE_PARTS, "lamp": LAMP_PARTS}
CATEGORIES = tuple(PART_NAMES)
# parts every shape of a category has (the others appear for some seeds)
MANDATORY_PARTS = {"chair": ("seat", "back", "legs"), "vase": VASE_PARTS, "lamp": ("base", "pole", "shade")}
TEXTURE_SIZE = 256


# ============================================================================ toy animal
def _ellipsoid(p, c, r):
    q = (p - p.new_tensor(c)) / p.new_tensor(r)
    k0 = q.norm(dim=-1)
    k1 = (q / p.new_tensor(r)).norm(dim=-1).clamp_min(1e-9)
    return k0 * (k0 - 1) / k1  # a good bound of the true distance (Quilez)


def _capsule(p, a, b, ra, rb):
    """Distance to a segment a-b whose radius goes from ra to rb (a tapered capsule)."""
    a, b = p.new_tensor(a), p.new_tensor(b)
    ba = b - a
    h = (((p - a) @ ba) / (ba @ ba)).clamp(0, 1)
    return (p - a - h[:, None] * ba).norm(dim=-1) - (ra + (rb - ra) * h)


def _animal_params(rng) -> dict:
    L, H, W = rng.uniform(0.50, 0.60), rng.uniform(0.22, 0.28), rng.uniform(0.20, 0.25)
    hs = rng.uniform(0.9, 1.1)  # head scale
    head = (L + 0.13 * hs, 0.45 * H + rng.uniform(0.0, 0.14), 0.0)
    return dict(L=L, H=H, W=W, hs=hs, head=head, leg_len=rng.uniform(0.28, 0.40),
                leg_r=rng.uniform(0.06, 0.075), leg_dx=rng.uniform(-0.04, 0.04, 4),
                horns=bool(rng.random() < 0.6), tail_z=rng.uniform(-0.12, 0.12),
                length=rng.uniform(1.55, 1.9))


def _animal_sdf(p, a, k=0.04):
    L, H, W, hs, leg_r = a["L"], a["H"], a["W"], a["hs"], a["leg_r"]
    hx, hy, _ = a["head"]
    d = [_ellipsoid(p, (0, 0, 0), (L, H, W)),
         _ellipsoid(p, (0.45 * L, 0.3 * H, 0), (0.3 * L, 0.75 * H, 0.9 * W)),   # withers
         _ellipsoid(p, (-0.5 * L, 0.25 * H, 0), (0.35 * L, 0.75 * H, 0.95 * W)),  # hips
         _capsule(p, (0.72 * L, 0.2 * H, 0), (hx - 0.04, hy - 0.02, 0), 0.13 * hs, 0.1 * hs),  # neck
         _ellipsoid(p, (hx, hy, 0), (0.16 * hs, 0.13 * hs, 0.115 * hs)),                  # head
         _ellipsoid(p, (hx + 0.13 * hs, hy - 0.05 * hs, 0), (0.09 * hs, 0.085 * hs, 0.095 * hs)),  # snout
         _capsule(p, (-0.9 * L, 0.35 * H, 0), (-L - 0.1, -0.55 * H, a["tail_z"]), 0.032, 0.032),
         _ellipsoid(p, (-L - 0.1, -0.62 * H, a["tail_z"]), (0.05, 0.075, 0.05))]          # tail tuft
    for sz in (1, -1):
        d.append(_ellipsoid(p, (hx - 0.07 * hs, hy + 0.05 * hs, sz * 0.16 * hs), (0.045, 0.034, 0.095)))  # ears
        if a["horns"]:
            d.append(_capsule(p, (hx - 0.03 * hs, hy + 0.09 * hs, sz * 0.05 * hs),
                              (hx - 0.02 * hs, hy + 0.19 * hs, sz * 0.11 * hs), 0.036, 0.026))
    for top, bottom in _leg_axes(a):
        d.append(_capsule(p, top, bottom, leg_r * 1.15, leg_r * 0.9))
    return -k * torch.logsumexp(-torch.stack(d) / k, dim=0)  # smooth union (soft-min)


def _leg_axes(a):
    L, H, W = a["L"], a["H"], a["W"]
    out = []
    for i, (sx, sz) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        x = sx * 0.62 * L
        out.append(((x, -0.3 * H, sz * 0.55 * W), (x + a["leg_dx"][i], -H - a["leg_len"], sz * 0.6 * W)))
    return out


_ANIMAL_BOX = 1.4  # `resolution` grid samples span this many animal lengths


def toy_animal(seed: int = 0, resolution: int = 64) -> TriMesh:
    """A textured cow-like quadruped: the offline stand-in for the PyTorch3D cow.

    A smooth union (soft-min) of ellipsoid and capsule SDFs (body, neck, head, snout, ears,
    optional horns, four legs, tail) is meshed with marching cubes into one watertight mesh
    (the largest connected piece is kept). Texture coordinates come from three cylindrical
    charts (body around the x axis, head around its own axis, each leg around its own axis)
    placed in separate bands of one ``(256, 256, 3)`` texture: a seeded spot coat, a head in
    its own colour with a blaze and eyes, a pink snout, dark hooves.

    Args:
        seed: picks proportions (body, legs, head pose, horns, tail), the coat palette and the spots.
        resolution: marching-cubes grid resolution: samples across a cube 1.4 animal lengths
            on a side (voxel = 1.4 * length / (resolution - 1), about 0.035-0.042 at 64, so
            the face count does not grow with the drawn size; the grid itself is cropped to
            the animal's box). 64 gives about 5-7.5k faces.

    Returns:
        TriMesh with verts (V, 3), faces (F, 3), verts_uvs (T, 2), faces_uvs (F, 3) and
        texture (256, 256, 3) float32 in [0, 1]; head towards +x, y up, bounding box centred
        at the origin.
    """
    if resolution < 16:
        raise ValueError(f"toy_animal resolution must be >= 16 (legs and ears vanish below), got {resolution}")
    rng = np.random.default_rng(seed)
    a = _animal_params(rng)
    L, H, W, hs = a["L"], a["H"], a["W"], a["hs"]
    # mesh in final units: scale the model frame so the animal is a["length"] long
    scale = a["length"] / (a["head"][0] + 0.22 * hs + L + 0.15)
    lo = scale * np.array([-L - 0.22, -H - a["leg_len"] - 0.12, -W - 0.12 * hs - 0.1])
    hi = scale * np.array([a["head"][0] + 0.3 * hs, a["head"][1] + 0.3 * hs, W + 0.12 * hs + 0.1])
    voxel = _ANIMAL_BOX * a["length"] / (resolution - 1)
    counts = np.ceil((hi - lo) / voxel).astype(int) + 1
    m = P.mesh_from_sdf(lambda p: scale * _animal_sdf(p / scale, a), (lo, lo + (counts - 1) * voxel),
                        tuple(counts.tolist()))
    m = _largest_component(m)
    uv, faces_uvs, regions = _animal_uvs(m.verts / scale, m.faces, a)
    texture = _animal_texture(a, regions, rng)
    vmin, vmax = m.verts.min(0).values, m.verts.max(0).values
    verts = m.verts - (vmin + vmax) / 2  # centre the bounding box (uvs do not change)
    return TriMesh(verts=verts.float(), faces=m.faces, verts_uvs=uv, faces_uvs=faces_uvs, texture=texture)


def _largest_component(m: TriMesh) -> TriMesh:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = m.faces.numpy()
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    n, lab = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(m.num_verts,) * 2),
                                  directed=False)
    if n == 1:
        return m
    keep_v = lab == np.bincount(lab[f[:, 0]]).argmax()
    keep_f = keep_v[f[:, 0]]
    remap = np.cumsum(keep_v) - 1
    return TriMesh(verts=m.verts[torch.from_numpy(keep_v)], faces=torch.from_numpy(remap[f[keep_f]]))


# texture bands (v ranges): legs at the bottom, body in the middle, head at the top
_V_LEGS, _V_BODY, _V_HEAD = (0.0, 0.235), (0.265, 0.735), (0.765, 1.0)


def _angle_u(dy, dz):
    """u in [0, 1] from the angle around an axis along x (or y): 0.5 on top (+y), seam underneath."""
    return (torch.atan2(dz, dy) + math.pi) / (2 * math.pi)


def _animal_uvs(verts, faces, a):
    """Per-corner uvs from three chart kinds chosen per face; (T, 2), (F, 3) and the chart frames."""
    L, H, leg_r, hy = a["L"], a["H"], a["leg_r"], a["head"][1]
    x_min, x_max = float(verts[:, 0].min()), float(verts[:, 0].max())
    x_split, y_split = 0.9 * L, -0.95 * H
    y_min = float(verts[:, 1].min())
    legs = _leg_axes(a)
    cen = verts[faces].mean(1)  # (F, 3)
    tops = torch.tensor([t for t, _ in legs], dtype=torch.float32)
    bots = torch.tensor([b for _, b in legs], dtype=torch.float32)

    def leg_axis_xz(y, i):  # (N,) heights -> (N, 2) axis position of leg i
        t = ((y - tops[i, 1]) / (bots[i, 1] - tops[i, 1])).clamp(0, 1)[:, None]
        return (tops[i] + t * (bots[i] - tops[i]))[:, [0, 2]]

    leg_d = torch.stack([(cen[:, [0, 2]] - leg_axis_xz(cen[:, 1], i)).norm(dim=-1) for i in range(4)], 1)
    nearest = leg_d.argmin(1)
    chart = torch.zeros(len(faces), dtype=torch.int64)  # 0 body, 1 head, 2..5 legs
    chart[cen[:, 0] > x_split] = 1
    on_leg = (cen[:, 1] < y_split) & (leg_d.min(1).values < 2.5 * leg_r)
    chart[on_leg] = 2 + nearest[on_leg]

    p = verts[faces].reshape(-1, 3)  # (3F, 3) corners
    c = chart.repeat_interleave(3)
    u = torch.zeros(len(p))
    v = torch.zeros(len(p))
    b = c == 0
    u[b] = _angle_u(p[b, 1], p[b, 2])
    v[b] = _lerp(_V_BODY, (p[b, 0] - x_min) / (x_split - x_min))
    h = c == 1
    u[h] = _angle_u(p[h, 1] - hy, p[h, 2])
    v[h] = _lerp(_V_HEAD, (p[h, 0] - x_split) / (x_max - x_split))
    for i in range(4):
        g = c == 2 + i
        axis = leg_axis_xz(p[g, 1], i)
        ang = _angle_u(p[g, 0] - axis[:, 0], p[g, 2] - axis[:, 1])  # 0.5 at the front, seam behind
        u[g] = (i + 0.04 + 0.92 * ang) / 4
        v[g] = _lerp(_V_LEGS, (p[g, 1] - y_min) / (y_split - y_min))
    # faces that straddle a cylindrical seam: move their corners to one side of it
    uf, cf = u.reshape(-1, 3), c.reshape(-1, 3)
    width = torch.where(cf[:, :1] >= 2, 0.23, 1.0)
    seam = (uf.max(1).values - uf.min(1).values) > 0.5 * width[:, 0]
    if seam.any():
        lo_edge = torch.where(cf[seam, 0] >= 2, (cf[seam, 0] - 2) / 4 + 0.01, 0.0)[:, None]
        hi_edge = lo_edge + width[seam]
        s = uf[seam]
        mid = (lo_edge + hi_edge) / 2
        upper = (s > mid).float().mean(1, keepdim=True) >= 0.5
        s = torch.where(upper, torch.where(s > mid, s, hi_edge), torch.where(s <= mid, s, lo_edge))
        uf[seam] = s
    uv = torch.stack([uf.reshape(-1), v.clamp(0, 1)], 1)
    uniq, inv = torch.unique(uv, dim=0, return_inverse=True)
    regions = dict(x_min=x_min, x_max=x_max, x_split=x_split, y_min=y_min, y_split=y_split)
    return uniq.float(), inv.reshape(-1, 3).long(), regions


def _lerp(rng2, t):
    return rng2[0] + (rng2[1] - rng2[0]) * t.clamp(0, 1)


_COATS = [  # coat, spots, head, snout
    ((0.95, 0.94, 0.90), (0.08, 0.07, 0.07), (0.12, 0.10, 0.10), (0.93, 0.66, 0.66)),
    ((0.94, 0.89, 0.80), (0.45, 0.24, 0.10), (0.52, 0.30, 0.14), (0.95, 0.72, 0.68)),
    ((0.96, 0.95, 0.93), (0.20, 0.20, 0.22), (0.62, 0.44, 0.30), (0.90, 0.62, 0.60)),
    ((0.85, 0.70, 0.50), (0.30, 0.17, 0.08), (0.95, 0.93, 0.88), (0.88, 0.58, 0.55)),
]


def _animal_texture(a, r, rng) -> torch.Tensor:
    """(256, 256, 3) float32 texture painted band by band in uv space."""
    S = TEXTURE_SIZE
    coat, spot, head, snout = (np.array(c) for c in _COATS[rng.integers(len(_COATS))])
    vv = 1 - (np.arange(S) + 0.5) / S  # v of each row (row 0 = v 1)
    uu = (np.arange(S) + 0.5) / S
    U, V = np.meshgrid(uu, vv)  # (S, S)
    img = np.empty((S, S, 3))
    H, W, hs, hx = a["H"], a["W"], a["hs"], a["head"][0]
    body = V < (_V_BODY[1] + _V_HEAD[0]) / 2
    legs = V < (_V_LEGS[1] + _V_BODY[0]) / 2
    # body band: blobs of spot colour, periodic around the body (s = arc length, x = along the body)
    circ = 2 * math.pi * math.sqrt((H * H + W * W) / 2)
    x = r["x_min"] + (np.clip((V - _V_BODY[0]) / (_V_BODY[1] - _V_BODY[0]), 0, 1)) * (r["x_split"] - r["x_min"])
    s = U * circ
    spots = np.zeros_like(U, dtype=bool)
    n_spots = int(rng.integers(9, 15))
    for k in range(n_spots):  # spread evenly around the body, at random places along it
        cs = (k + rng.uniform(0.1, 0.9)) * circ / n_spots
        cx, rad = rng.uniform(r["x_min"], r["x_split"]), rng.uniform(0.07, 0.14)
        for _ in range(rng.integers(2, 5)):  # a blob = a few overlapping discs
            os_, ox, rr = rng.normal(0, rad * 0.6), rng.normal(0, rad * 0.6), rad * rng.uniform(0.5, 1.0)
            ds = (s - cs - os_ + circ / 2) % circ - circ / 2
            spots |= ds ** 2 + (x - cx - ox) ** 2 < rr ** 2
    img[:] = np.where(spots[..., None], spot, coat)
    # head band: head colour, a pale blaze on top, snout colour in front, two eyes
    xh = r["x_split"] + np.clip((V - _V_HEAD[0]) / (_V_HEAD[1] - _V_HEAD[0]), 0, 1) * (r["x_max"] - r["x_split"])
    hd = np.where((xh > hx + 0.085 * hs)[..., None], snout, head)
    blaze = (np.abs(U - 0.5) < 0.035 + 0.03 * np.clip((xh - hx + 0.1) / 0.15, 0, 1)) & (xh < hx + 0.085 * hs) & (xh > hx - 0.12)
    hd = np.where(blaze[..., None], 0.5 * (coat + 1.0), hd)
    for side in (1, -1):  # eyes on the sides of the head, ~60 degrees from the top
        eu = 0.5 + side * 0.17
        d2 = ((U - eu) * 2 * math.pi * 0.12 * hs) ** 2 + (xh - (hx + 0.03 * hs)) ** 2
        hd = np.where((d2 < 0.028 ** 2)[..., None], np.array([0.97, 0.97, 0.95]), hd)
        hd = np.where((d2 < 0.017 ** 2)[..., None], np.array([0.03, 0.03, 0.03]), hd)
    img[~body] = hd[~body]
    # leg band: each leg in coat or spot colour, dark hooves at the bottom
    yl = r["y_min"] + np.clip(V / _V_LEGS[1], 0, 1) * (r["y_split"] - r["y_min"])
    leg_col = [spot if rng.random() < 0.35 else coat for _ in range(4)]
    lc = np.stack([leg_col[min(int(q), 3)] for q in (uu * 4)])[None].repeat(S, 0)
    lc = np.where((yl < r["y_min"] + 0.07)[..., None], np.array([0.16, 0.13, 0.12]), lc)
    img[legs] = lc[legs]
    img *= 1 + rng.normal(0, 0.025, size=(S, S, 1))  # a little grain
    return torch.from_numpy(np.clip(img, 0, 1).astype(np.float32))


def write_toy_animal(folder, seed: int = 0, resolution: int = 64) -> Path:
    """Write ``toy_animal(seed)`` as ``folder/toy_animal.obj`` + ``toy_animal.mtl`` +
    ``toy_animal_texture.png`` (the cow's layout) and return the .obj path."""
    from lib.data.mesh_io import save_obj

    return save_obj(Path(folder) / "toy_animal.obj", toy_animal(seed, resolution), material_name="material_1")


# ============================================================================ labelled shapes
def _part(mesh: TriMesh, label: int) -> TriMesh:
    return TriMesh(verts=mesh.verts, faces=mesh.faces, face_labels=torch.full((mesh.num_faces,), label))


def _rot_x(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float32)


def _rot_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float32)


def _moved(mesh: TriMesh, R=None, t=(0, 0, 0), pivot=(0, 0, 0)) -> TriMesh:
    v = mesh.verts - torch.tensor(pivot, dtype=torch.float32)
    if R is not None:
        v = v @ R.T
    v = v + torch.tensor(pivot, dtype=torch.float32) + torch.tensor(t, dtype=torch.float32)
    return TriMesh(verts=v, faces=mesh.faces, face_labels=mesh.face_labels)


def _finish(mesh: TriMesh, names, colors) -> TriMesh:
    """Unshare vertices between parts, colour each part (colors: (n_parts, 3)), put the lowest
    point on y = 0 and centre the bounding box on the y axis."""
    f, lab = mesh.faces, mesh.face_labels
    key = mesh.faces * len(names) + lab[:, None]  # (vertex, label) pairs
    uniq, inv = torch.unique(key.reshape(-1), return_inverse=True)
    verts = mesh.verts[uniq // len(names)]
    lo, hi = verts.min(0).values, verts.max(0).values
    verts = verts - torch.stack([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2])
    cols = torch.as_tensor(np.clip(np.asarray(colors), 0, 1), dtype=torch.float32)[uniq % len(names)]
    return TriMesh(verts=verts.float(), faces=inv.reshape(f.shape).long(), vert_colors=cols,
                   face_labels=lab.long(), label_names=list(names))


def _jitter(rng, rgb, amount=0.06):
    return np.clip(np.asarray(rgb) + rng.uniform(-amount, amount, 3), 0, 1)


def chair(seed: int = 0) -> TriMesh:
    """A part-labelled chair standing on y = 0, facing +z, about 0.8-1.1 tall.

    Varies with the seed: seat size, height and thickness; legs (four square, four round and
    splayed, or a pedestal with 4-5 feet; optional stretchers); back height, tilt and style
    (solid panel, vertical slats or horizontal rails); arms on about 40% of seeds.

    Returns:
        TriMesh with verts (V, 3), faces (F, 3) (a few hundred), vert_colors (V, 3),
        face_labels (F,) into ``CHAIR_PARTS`` = ('seat', 'back', 'legs', 'arms').
    """
    rng = np.random.default_rng(seed)
    SEAT, BACK, LEGS, ARMS = range(4)
    w, d = rng.uniform(0.42, 0.58), rng.uniform(0.40, 0.52)
    h, t = rng.uniform(0.40, 0.50), rng.uniform(0.04, 0.08)
    top = h + t
    parts = [_part(P.box((0, h + t / 2, 0), (w, t, d)), SEAT)]
    style = ("square", "round", "pedestal")[rng.integers(3)]
    if style == "pedestal":
        parts.append(_part(P.cylinder(rng.uniform(0.025, 0.045), h - 0.04, 16, (0, (h + 0.04) / 2, 0)), LEGS))
        n, reach = int(rng.integers(4, 6)), rng.uniform(0.22, 0.3)
        for k in range(n):
            phi = 2 * math.pi * k / n + math.pi / n
            parts.append(_part(P.cylinder_between((0, 0.05, 0), (reach * math.cos(phi), 0.02, reach * math.sin(phi)),
                                                  0.02, 10), LEGS))
    else:
        lt, inset, splay = rng.uniform(0.035, 0.06), rng.uniform(0.0, 0.03), rng.uniform(0.0, 0.06)
        corners = [(sx * (w / 2 - lt / 2 - inset), sz * (d / 2 - lt / 2 - inset)) for sx in (1, -1) for sz in (1, -1)]
        for x, z in corners:
            if style == "square":
                parts.append(_part(P.box((x, h / 2, z), (lt, h, lt)), LEGS))
            else:
                foot = (x + np.sign(x) * splay, 0.0, z + np.sign(z) * splay)
                parts.append(_part(P.cylinder_between(foot, (x, h, z), lt / 2, 12), LEGS))
        if rng.random() < 0.5:  # stretchers between front and back legs
            y_s = rng.uniform(0.1, 0.2)
            for x in (corners[0][0], corners[2][0]):
                parts.append(_part(P.box((x, y_s, 0), (lt * 0.6, lt * 0.6, d - 2 * inset)), LEGS))
    # back: built upright on the rear edge of the seat, then tilted backwards about that edge
    bh, bt = rng.uniform(0.35, 0.6), rng.uniform(0.03, 0.05)
    zb = -d / 2 + bt / 2
    back_style = ("solid", "slats", "rails")[rng.integers(3)]
    back = []
    if back_style == "solid":
        back.append(P.box((0, top + bh / 2, zb), (w, bh, bt)))
    else:
        pw = rng.uniform(0.035, 0.05)
        for sx in (1, -1):  # posts
            back.append(P.box((sx * (w / 2 - pw / 2), top + bh / 2, zb), (pw, bh, bt)))
        rail_h = rng.uniform(0.06, 0.12)
        back.append(P.box((0, top + bh - rail_h / 2, zb), (w, rail_h, bt)))  # top rail
        if back_style == "slats":
            n = int(rng.integers(2, 6))
            for k in range(n):
                x = (k + 1) / (n + 1) * (w - 2 * pw) - (w / 2 - pw)
                back.append(P.box((x, top + (bh - rail_h) / 2, zb), (rng.uniform(0.025, 0.05), bh - rail_h, bt * 0.7)))
        else:
            for k in range(int(rng.integers(1, 3))):
                y = top + (k + 1) * (bh - rail_h) / 3
                back.append(P.box((0, y, zb), (w - 2 * pw, rail_h * 0.6, bt * 0.7)))
    tilt = rng.uniform(0.0, 0.22)
    parts += [_part(_moved(b, _rot_x(-tilt), pivot=(0, top, zb)), BACK) for b in back]
    if rng.random() < 0.4:
        ya, aw = top + rng.uniform(0.17, 0.26), rng.uniform(0.04, 0.07)
        for sx in (1, -1):
            x = sx * (w / 2 + aw / 2 - 0.01)
            parts.append(_part(P.box((x, ya, 0.02), (aw, 0.035, d * 0.85)), ARMS))
            parts.append(_part(P.box((x, (top + ya) / 2, d / 2 - 0.06), (0.035, ya - top, 0.035)), ARMS))
    fabric = _jitter(rng, [(0.55, 0.18, 0.15), (0.2, 0.35, 0.55), (0.3, 0.45, 0.3), (0.75, 0.65, 0.5)][rng.integers(4)])
    wood = _jitter(rng, (0.45, 0.3, 0.18))
    colors = [fabric, np.clip(fabric * 0.85, 0, 1), wood, np.clip(wood * 1.25, 0, 1)]
    return _finish(concat_meshes(parts), CHAIR_PARTS, colors)


def _ease(t):
    return (1 - np.cos(np.pi * np.clip(t, 0, 1))) / 2


def vase(seed: int = 0, segments: int = 32) -> TriMesh:
    """A part-labelled vase (a lathe with wall thickness), standing on y = 0, 0.75-1.0 tall.

    The outer profile runs foot -> belly (eased curves) -> neck -> flared lip, then down the
    inside to a floor; labels go by height: base (the foot), body, neck, lip (including the rim).
    The seed draws the height, foot, belly radius and height, neck radius and length, flare.

    Returns:
        TriMesh with verts (V, 3), faces (F, 3) (about 4-5k at 32 segments), vert_colors
        (V, 3), face_labels (F,) into ``VASE_PARTS`` = ('base', 'body', 'neck', 'lip').
    """
    rng = np.random.default_rng(seed)
    BASE, BODY, NECK, LIP = range(4)
    H = rng.uniform(0.75, 1.0)
    hf = H * rng.uniform(0.04, 0.08)  # foot top
    hn = H * rng.uniform(0.6, 0.78)  # neck start
    hl = hn + (H - hn) * rng.uniform(0.55, 0.8)  # lip start
    rb = rng.uniform(0.2, 0.32)  # belly radius
    rf = rb * rng.uniform(0.45, 0.75)  # foot radius
    rn = rb * rng.uniform(0.3, 0.55)  # neck radius
    rn2 = rn * rng.uniform(0.85, 1.1)
    flare = rng.uniform(0.015, 0.07)
    yb = hf + (hn - hf) * rng.uniform(0.3, 0.6)  # belly height
    wall = rng.uniform(0.015, 0.025)

    def radius(y):
        y = np.asarray(y, dtype=np.float64)
        return np.select([y <= hf, y <= yb, y <= hn, y <= hl],
                         [rf * (1 - 0.08 * y / hf),
                          rf * 0.92 + (rb - rf * 0.92) * _ease((y - hf) / (yb - hf)),
                          rn + (rb - rn) * (1 - _ease((y - yb) / (hn - yb))),
                          rn + (rn2 - rn) * (y - hn) / (hl - hn)],
                         rn2 + flare * np.sin(np.pi / 2 * np.clip((y - hl) / (H - hl), 0, 1)))

    ys = np.concatenate([np.linspace(0, hf, 3), np.linspace(hf, hn, 22)[1:], np.linspace(hn, hl, 6)[1:],
                         np.linspace(hl, H, 7)[1:]])
    floor = hf * 0.8
    ys_in = ys[(ys > floor + 1e-6)][::-1]
    r_out, r_in = radius(ys), np.maximum(radius(ys_in) - wall, 0.01)
    prof_r = np.concatenate([[0.0], r_out, r_in, [r_in[-1], 0.0]])
    prof_y = np.concatenate([[0.0], ys, ys_in, [floor, floor]])
    mid = (prof_y[:-1] + prof_y[1:]) / 2
    labels = np.select([mid <= hf + 1e-9, mid <= hn, mid <= hl], [BASE, BODY, NECK], LIP)
    mesh = P.lathe(prof_r, prof_y, segments, capped=False, labels=labels)
    glaze = _jitter(rng, [(0.15, 0.35, 0.6), (0.65, 0.25, 0.15), (0.2, 0.5, 0.45), (0.85, 0.8, 0.7),
                          (0.45, 0.3, 0.55)][rng.integers(5)], 0.08)
    colors = [_jitter(rng, (0.55, 0.4, 0.3)), glaze, np.clip(glaze * 0.75 + 0.2, 0, 1), _jitter(rng, (0.85, 0.7, 0.3))]
    return _finish(mesh, VASE_PARTS, colors)


def lamp(seed: int = 0, segments: int = 32) -> TriMesh:
    """A part-labelled lamp standing on y = 0, about 0.6-1.1 tall.

    A round or square base, a vertical pole and a shade (conical, drum or bell; a lathe ring
    with wall thickness, open at top and bottom). On about 35% of seeds an arm leads sideways
    (+x) from the pole top and the shade hangs from its end.

    Returns:
        TriMesh with verts (V, 3), faces (F, 3) (about 1-2k), vert_colors (V, 3),
        face_labels (F,) into ``LAMP_PARTS`` = ('base', 'pole', 'shade', 'arm').
    """
    rng = np.random.default_rng(seed)
    BASE, POLE, SHADE, ARM = range(4)
    rb, hb = rng.uniform(0.1, 0.18), rng.uniform(0.03, 0.08)
    if rng.random() < 0.7:  # round base: a low dome
        base = P.lathe([0, rb, rb, rb * 0.75, rb * 0.3, 0], [0, 0, hb * 0.4, hb * 0.85, hb, hb], segments, capped=False)
    else:
        base = P.box((0, hb / 2, 0), (2 * rb * 0.9, hb, 2 * rb * 0.9))
    hp, rp = rng.uniform(0.5, 0.8), rng.uniform(0.012, 0.022)
    parts = [_part(base, BASE), _part(P.cylinder(rp, hp - hb + 0.01, 12, (0, (hp + hb - 0.01) / 2, 0)), POLE)]
    r_bot, hs = rng.uniform(0.14, 0.25), rng.uniform(0.15, 0.3)
    r_top = r_bot * rng.uniform(0.4, 0.9)
    kind = rng.integers(3)  # 0 cone, 1 drum, 2 bell
    if kind == 1:
        r_top = r_bot * rng.uniform(0.9, 1.0)
    t = np.linspace(0, 1, 8)
    shape = t if kind != 2 else np.sin(np.pi / 2 * t) ** 0.6
    r_out = r_bot + (r_top - r_bot) * shape
    y_out = hs * t
    wall = 0.008
    prof_r = np.concatenate([r_out, r_out[::-1] - wall])
    prof_y = np.concatenate([y_out, y_out[::-1]])
    shade = P.lathe(prof_r, prof_y, segments, closed=True)
    if rng.random() < 0.35:  # arm: sideways from the pole top, shade hangs at its end
        end = (rng.uniform(0.2, 0.35), hp + rng.uniform(-0.05, 0.15), 0.0)
        parts.append(_part(P.cylinder_between((0, hp - 0.02, 0), end, rp * 0.8, 10), ARM))
        parts.append(_part(_moved(shade, t=(end[0], end[1] - hs * 0.9, 0)), SHADE))
    else:
        parts.append(_part(_moved(shade, t=(0, hp - hs * 0.6, 0)), SHADE))
    metal = _jitter(rng, [(0.7, 0.6, 0.35), (0.6, 0.6, 0.62), (0.15, 0.15, 0.16)][rng.integers(3)])
    colors = [_jitter(rng, (0.3, 0.22, 0.16)), metal, _jitter(rng, (0.9, 0.82, 0.65), 0.1), np.clip(metal * 0.9, 0, 1)]
    return _finish(concat_meshes(parts), LAMP_PARTS, colors)


_MAKERS = {"chair": chair, "vase": vase, "lamp": lamp}


def make_shape(category: str, seed: int = 0) -> TriMesh:
    """The part-labelled shape of ``category`` (one of ``CATEGORIES``) for ``seed``."""
    if category not in _MAKERS:
        raise ValueError(f"unknown shape category {category!r}; valid categories: {', '.join(CATEGORIES)}")
    return _MAKERS[category](seed)


# ============================================================================ cars and airplanes
# (added for the R2N2-layout datasets of notebook 03: the three classes of the course's
# extended single-view set, chair / car / airplane)
CAR_PARTS = ("body", "cabin", "wheels", "spoiler")
AIRPLANE_PARTS = ("fuselage", "wings", "tail", "engines")


def _hexahedron(corners) -> TriMesh:
    """A closed six-sided solid from 8 corners ordered like ``P.box``'s shared corners
    (index = 4 ix + 2 iy + iz, each 0 for the low side and 1 for the high side), so the box's
    outward winding stays valid as long as the solid is not turned inside out."""
    template = P.box((0.5, 0.5, 0.5), (1, 1, 1), sharp=False)
    return TriMesh(verts=torch.as_tensor(np.asarray(corners), dtype=torch.float32), faces=template.faces)


def _mirror_x(corners) -> np.ndarray:
    """Corners of the mirror image (x -> -x) of a ``_hexahedron``, reordered so the winding
    still faces out (the low-x and high-x corners swap roles)."""
    c = np.asarray(corners, dtype=np.float64).copy()
    c[:, 0] *= -1
    return c[[4, 5, 6, 7, 0, 1, 2, 3]]


def _tapered_slab(root_xz, root_chord, tip_x, tip_chord, sweep, y, thickness, tip_dy=0.0):
    """Corners of a flat tapered panel (a wing) from x = root_xz[0] to x = tip_x, its chord
    along z; the tip's leading edge sits ``sweep`` behind (-z) the root's, and ``tip_dy`` higher."""
    x0, z0 = root_xz
    out = []
    for ix, (x, chord, dz, dy) in enumerate([(x0, root_chord, 0.0, 0.0), (tip_x, tip_chord, -sweep, tip_dy)]):
        lead = z0 + root_chord / 2 + dz
        for iy in (0, 1):
            for iz in (0, 1):
                out.append((x, y + dy + (iy - 0.5) * thickness * (1.0 if ix == 0 else 0.6),
                            lead - chord + iz * chord))
    return np.array(out)


def car(seed: int = 0) -> TriMesh:
    """A part-labelled car standing on y = 0, its front towards +z, about 0.9-1.1 long.

    Varies with the seed: length, width, ride height and body depth; the cabin's style (sedan,
    hatchback, van or pickup: its length, height, position and how much its windscreen and rear
    window slope); wheel size and track; a rear spoiler on about 30% of seeds.

    Returns:
        TriMesh with verts (V, 3), faces (F, 3) (a few hundred), vert_colors (V, 3),
        face_labels (F,) into ``CAR_PARTS`` = ('body', 'cabin', 'wheels', 'spoiler').
    """
    rng = np.random.default_rng(seed)
    BODY, CABIN, WHEELS, SPOILER = range(4)
    L, W = rng.uniform(0.9, 1.1), rng.uniform(0.38, 0.48)
    r_wheel = rng.uniform(0.07, 0.1)
    y0 = r_wheel * rng.uniform(0.5, 0.8)  # underside of the body
    hb = rng.uniform(0.13, 0.2)
    style = ("sedan", "hatchback", "van", "pickup")[rng.integers(4)]
    top = y0 + hb
    parts = [_part(P.box((0, y0 + hb / 2, 0), (W, hb, L)), BODY)]
    hood = P.box((0, top - 0.01, L * 0.3), (W * 0.96, 0.02, L * 0.35))  # a raised hood line
    parts.append(_part(hood, BODY))
    frac = {"sedan": (0.42, 0.52), "hatchback": (0.45, 0.55), "van": (0.7, 0.85), "pickup": (0.28, 0.35)}[style]
    lc = L * rng.uniform(*frac)
    hc = rng.uniform(0.11, 0.17) * (1.35 if style == "van" else 1.0)
    zc = {"sedan": rng.uniform(-0.08, 0.02), "hatchback": -L / 2 + lc / 2 + 0.02,
          "van": -L / 2 + lc / 2 + 0.02, "pickup": rng.uniform(0.0, 0.1)}[style]
    front_slope, rear_slope = lc * rng.uniform(0.15, 0.3), lc * (rng.uniform(0.1, 0.3) if style != "van" else 0.05)
    wc, wt = W * 0.92, W * rng.uniform(0.8, 0.9)
    corners = []
    for ix in (0, 1):
        for iy in (0, 1):
            for iz in (0, 1):
                w = wc if iy == 0 else wt
                z = (zc - lc / 2 + (rear_slope if iy else 0.0)) if iz == 0 else (zc + lc / 2 - (front_slope if iy else 0.0))
                corners.append(((ix - 0.5) * w, top - 0.005 + iy * hc, z))
    parts.append(_part(_hexahedron(corners), CABIN))
    track = W / 2 + rng.uniform(0.0, 0.02)  # outer face of the tyres
    wheel_w = rng.uniform(0.06, 0.09)
    axle = L / 2 - r_wheel - rng.uniform(0.04, 0.1)
    for sx in (1, -1):
        for z in (axle, -axle):
            parts.append(_part(P.cylinder_between((sx * (track - wheel_w), r_wheel, z), (sx * track, r_wheel, z),
                                                  r_wheel, 16), WHEELS))
    if rng.random() < 0.3:
        ys = top + rng.uniform(0.04, 0.07)
        parts.append(_part(P.box((0, ys, -L / 2 + 0.05), (W * 0.9, 0.015, 0.08)), SPOILER))
        for sx in (1, -1):
            parts.append(_part(P.box((sx * W * 0.3, (top + ys) / 2, -L / 2 + 0.05), (0.02, ys - top, 0.03)), SPOILER))
    paint = _jitter(rng, [(0.75, 0.1, 0.1), (0.15, 0.3, 0.7), (0.85, 0.85, 0.82), (0.2, 0.2, 0.22),
                          (0.9, 0.7, 0.1), (0.2, 0.55, 0.3)][rng.integers(6)], 0.05)
    colors = [paint, (0.25, 0.35, 0.45), (0.08, 0.08, 0.08), np.clip(paint * 0.6, 0, 1)]
    return _finish(concat_meshes(parts), CAR_PARTS, colors)


def airplane(seed: int = 0) -> TriMesh:
    """A part-labelled airplane, its nose towards +z, wings along x, resting on y = 0.

    Varies with the seed: fuselage length and radius (a lathe: tail cone, cylinder, rounded
    nose); wing span, chord, taper, sweep, dihedral and height (low or high wing); the tail
    (a swept fin and two stabilisers, or a T-tail); 0, 1 or 2 engines under each wing.

    Returns:
        TriMesh with verts (V, 3), faces (F, 3) (about 1k), vert_colors (V, 3),
        face_labels (F,) into ``AIRPLANE_PARTS`` = ('fuselage', 'wings', 'tail', 'engines').
    """
    rng = np.random.default_rng(seed)
    FUSELAGE, WINGS, TAIL, ENGINES = range(4)
    Lf, rf = rng.uniform(0.85, 1.05), rng.uniform(0.045, 0.075)
    t = np.linspace(0, 1, 14)
    radius = np.select([t < 0.25, t < 0.82], [rf * (0.3 + 0.7 * _ease(t / 0.25)), rf],
                       rf * np.sqrt(np.clip(1 - ((t - 0.82) / 0.18) ** 2, 0, 1)))
    radius[-1] = 0.0
    body = P.lathe(np.concatenate([[0.0], radius]), np.concatenate([[0.0], t * Lf]), 16, capped=False)
    body = _moved(_part(body, FUSELAGE), _rot_x(math.pi / 2), t=(0, 0, -Lf / 2))  # axis y -> z, nose at +z
    parts = [body]
    span, chord = rng.uniform(0.35, 0.55), rng.uniform(0.14, 0.24)
    tip_chord, sweep = chord * rng.uniform(0.3, 0.6), rng.uniform(0.03, 0.25)
    y_wing = rf * (rng.uniform(0.4, 0.7) if rng.random() < 0.3 else rng.uniform(-0.7, -0.3))
    z_wing, dihedral = rng.uniform(-0.05, 0.1), rng.uniform(0.0, 0.06)
    wing = _tapered_slab((0.0, z_wing), chord, span, tip_chord, sweep, y_wing, 0.025, dihedral)
    parts += [_part(_hexahedron(wing), WINGS), _part(_hexahedron(_mirror_x(wing)), WINGS)]
    z_tail = -Lf / 2 + rng.uniform(0.06, 0.1)
    fin_h, fin_c = rng.uniform(0.1, 0.18), rng.uniform(0.1, 0.16)
    fin = []  # vertical fin: thin along x, rising from the fuselage top, tip swept back
    for ix in (0, 1):
        for iy in (0, 1):
            for iz in (0, 1):
                chord, shift = (fin_c, 0.0) if iy == 0 else (0.65 * fin_c, -0.15 * fin_c)  # tip: shorter, swept back
                fin.append(((ix - 0.5) * 0.015, rf * 0.5 + iy * fin_h, z_tail + shift + iz * chord))
    parts.append(_part(_hexahedron(fin), TAIL))
    t_tail = rng.random() < 0.3
    y_stab = rf * 0.5 + fin_h * 0.95 if t_tail else 0.0
    stab = _tapered_slab((0.0, z_tail + 0.04), fin_c * 0.8, rng.uniform(0.12, 0.2), fin_c * 0.4, 0.04, y_stab, 0.012)
    parts += [_part(_hexahedron(stab), TAIL), _part(_hexahedron(_mirror_x(stab)), TAIL)]
    n_eng = int(rng.choice([0, 1, 1, 2]))
    r_eng = rng.uniform(0.025, 0.04)
    for k in range(n_eng):
        x = span * (0.35 if n_eng == 1 else (0.3 + 0.3 * k))
        z = z_wing + chord / 2 - sweep * x / span + 0.04
        for sx in (1, -1):
            parts.append(_part(P.cylinder_between((sx * x, y_wing - r_eng - 0.01, z - 0.14),
                                                  (sx * x, y_wing - r_eng - 0.01, z), r_eng, 12), ENGINES))
    livery = _jitter(rng, [(0.92, 0.92, 0.94), (0.8, 0.82, 0.85), (0.3, 0.35, 0.4)][rng.integers(3)], 0.04)
    accent = _jitter(rng, [(0.7, 0.1, 0.1), (0.1, 0.25, 0.6), (0.9, 0.6, 0.1)][rng.integers(3)])
    colors = [livery, np.clip(livery * 0.85, 0, 1), accent, (0.35, 0.35, 0.38)]
    return _finish(concat_meshes(parts), AIRPLANE_PARTS, colors)
