"""The toy animal: a textured, watertight, cow-like quadruped made procedurally (the offline cow).

``toy_animal(seed)`` is a deterministic function of ``seed`` (a ``numpy.random.default_rng(seed)``
drawn in a fixed order; no global RNG state) and returns a :class:`lib.mesh.TriMesh` in world
units, y up, about 1.5-1.9 long with the head towards +x (or, with ``facing="-z"``, towards -z:
the PyTorch3D cow's pose, whose long axis is z with the front at the smallest z), its bounding
box centred at the origin, with texture coordinates and a (256, 256, 3) texture: the layout of
the PyTorch3D cow that notebooks 01, 02 and 05 load in full mode. ``write_toy_animal`` writes
it as an .obj + .mtl + .png in the cow's file layout.

Example (CPU)::

    >>> m = toy_animal(seed=0, resolution=24)
    >>> m.texture.shape, m.faces_uvs.shape == m.faces.shape
    (torch.Size([256, 256, 3]), True)

Needs torch, numpy, scikit-image (marching cubes) and scipy; not PyTorch3D.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from lib import primitives as P
from lib.mesh import TriMesh

TEXTURE_SIZE = 256
# where the head points -> (source axis, sign) of the new x and z coordinates; all turn about y
_FACINGS = {"+x": ((0, 1), (2, 1)), "-x": ((0, -1), (2, -1)),
            "-z": ((2, 1), (0, -1)), "+z": ((2, -1), (0, 1))}


# ------------------------------------------------------------------------------- shape
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


def toy_animal(seed: int = 0, resolution: int = 64, facing: str = "+x") -> TriMesh:
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
        facing: where the head points: "+x" (side-on to a camera on the +z axis), or "-z" as
            the PyTorch3D cow stands (long axis along z, front at the smallest z: a camera on
            the +z axis sees it from behind, the subject deep along the view), "+z" or "-x".
            The animal turns about the y axis by a multiple of 90 degrees (an exact swap of
            coordinates); faces, uvs and texture do not change.

    Returns:
        TriMesh with verts (V, 3), faces (F, 3), verts_uvs (T, 2), faces_uvs (F, 3) and
        texture (256, 256, 3) float32 in [0, 1]; head towards ``facing``, y up, bounding box
        centred at the origin.
    """
    if resolution < 16:
        raise ValueError(f"toy_animal resolution must be >= 16 (legs and ears vanish below), got {resolution}")
    if facing not in _FACINGS:
        raise ValueError(f"toy_animal facing must be one of {sorted(_FACINGS)}, got {facing!r}")
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
    (ix, sx), (iz, sz) = _FACINGS[facing]  # a turn about y: x' = sx * v[ix], z' = sz * v[iz]
    verts = torch.stack([sx * verts[:, ix], verts[:, 1], sz * verts[:, iz]], 1)
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


def write_toy_animal(folder, seed: int = 0, resolution: int = 64, facing: str = "+x") -> Path:
    """Write ``toy_animal(seed, resolution, facing)`` as ``folder/toy_animal.obj`` + ``toy_animal.mtl``
    + ``toy_animal_texture.png`` (the cow's layout) and return the .obj path."""
    from lib.data.mesh_io import save_obj

    return save_obj(Path(folder) / "toy_animal.obj", toy_animal(seed, resolution, facing),
                    material_name="material_1")
