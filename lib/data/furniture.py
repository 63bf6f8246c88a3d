"""Part-labelled furniture, made procedurally: chairs, vases, lamps (ShapeNet-like categories).

Each maker is a deterministic function of ``seed`` (a ``numpy.random.default_rng(seed)`` drawn
in a fixed order; no global RNG state) and returns a :class:`lib.mesh.TriMesh` in world units,
y up, about 1 unit tall, standing on y = 0 with its bounding box centred on the y axis; chairs
face +z (the back is at -z). Every face has a part label (``face_labels`` indexing
``label_names``), and each part has its own vertex colour (vertices are not shared between
parts, so colours do not bleed). The registry of every category is ``lib.data.shapes``.

Example (CPU)::

    >>> m = chair(seed=3)
    >>> m.label_names, m.face_labels.shape == (m.num_faces,)
    (['seat', 'back', 'legs', 'arms'], True)
"""
from __future__ import annotations

import math

import numpy as np

from lib import primitives as P
from lib.cameras import rotation
from lib.data.shape_parts import ease, finish_shape, jitter_color, label_part, move_mesh
from lib.mesh import TriMesh, concat_meshes

CHAIR_PARTS = ("seat", "back", "legs", "arms")
VASE_PARTS = ("base", "body", "neck", "lip")
LAMP_PARTS = ("base", "pole", "shade", "arm")


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
    parts = [label_part(P.box((0, h + t / 2, 0), (w, t, d)), SEAT)]
    style = ("square", "round", "pedestal")[rng.integers(3)]
    if style == "pedestal":
        parts.append(label_part(P.cylinder(rng.uniform(0.025, 0.045), h - 0.04, 16, (0, (h + 0.04) / 2, 0)), LEGS))
        n, reach = int(rng.integers(4, 6)), rng.uniform(0.22, 0.3)
        for k in range(n):
            phi = 2 * math.pi * k / n + math.pi / n
            parts.append(label_part(P.cylinder_between((0, 0.05, 0), (reach * math.cos(phi), 0.02, reach * math.sin(phi)),
                                                  0.02, 10), LEGS))
    else:
        lt, inset, splay = rng.uniform(0.035, 0.06), rng.uniform(0.0, 0.03), rng.uniform(0.0, 0.06)
        corners = [(sx * (w / 2 - lt / 2 - inset), sz * (d / 2 - lt / 2 - inset)) for sx in (1, -1) for sz in (1, -1)]
        for x, z in corners:
            if style == "square":
                parts.append(label_part(P.box((x, h / 2, z), (lt, h, lt)), LEGS))
            else:
                foot = (x + np.sign(x) * splay, 0.0, z + np.sign(z) * splay)
                parts.append(label_part(P.cylinder_between(foot, (x, h, z), lt / 2, 12), LEGS))
        if rng.random() < 0.5:  # stretchers between front and back legs
            y_s = rng.uniform(0.1, 0.2)
            for x in (corners[0][0], corners[2][0]):
                parts.append(label_part(P.box((x, y_s, 0), (lt * 0.6, lt * 0.6, d - 2 * inset)), LEGS))
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
    parts += [label_part(move_mesh(b, rotation("x", math.degrees(-tilt)), pivot=(0, top, zb)), BACK) for b in back]
    if rng.random() < 0.4:
        ya, aw = top + rng.uniform(0.17, 0.26), rng.uniform(0.04, 0.07)
        for sx in (1, -1):
            x = sx * (w / 2 + aw / 2 - 0.01)
            parts.append(label_part(P.box((x, ya, 0.02), (aw, 0.035, d * 0.85)), ARMS))
            parts.append(label_part(P.box((x, (top + ya) / 2, d / 2 - 0.06), (0.035, ya - top, 0.035)), ARMS))
    fabric = jitter_color(rng, [(0.55, 0.18, 0.15), (0.2, 0.35, 0.55), (0.3, 0.45, 0.3), (0.75, 0.65, 0.5)][rng.integers(4)])
    wood = jitter_color(rng, (0.45, 0.3, 0.18))
    colors = [fabric, np.clip(fabric * 0.85, 0, 1), wood, np.clip(wood * 1.25, 0, 1)]
    return finish_shape(concat_meshes(parts), CHAIR_PARTS, colors)

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
                          rf * 0.92 + (rb - rf * 0.92) * ease((y - hf) / (yb - hf)),
                          rn + (rb - rn) * (1 - ease((y - yb) / (hn - yb))),
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
    glaze = jitter_color(rng, [(0.15, 0.35, 0.6), (0.65, 0.25, 0.15), (0.2, 0.5, 0.45), (0.85, 0.8, 0.7),
                          (0.45, 0.3, 0.55)][rng.integers(5)], 0.08)
    colors = [jitter_color(rng, (0.55, 0.4, 0.3)), glaze, np.clip(glaze * 0.75 + 0.2, 0, 1), jitter_color(rng, (0.85, 0.7, 0.3))]
    return finish_shape(mesh, VASE_PARTS, colors)


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
    parts = [label_part(base, BASE), label_part(P.cylinder(rp, hp - hb + 0.01, 12, (0, (hp + hb - 0.01) / 2, 0)), POLE)]
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
        parts.append(label_part(P.cylinder_between((0, hp - 0.02, 0), end, rp * 0.8, 10), ARM))
        parts.append(label_part(move_mesh(shade, t=(end[0], end[1] - hs * 0.9, 0)), SHADE))
    else:
        parts.append(label_part(move_mesh(shade, t=(0, hp - hs * 0.6, 0)), SHADE))
    metal = jitter_color(rng, [(0.7, 0.6, 0.35), (0.6, 0.6, 0.62), (0.15, 0.15, 0.16)][rng.integers(3)])
    colors = [jitter_color(rng, (0.3, 0.22, 0.16)), metal, jitter_color(rng, (0.9, 0.82, 0.65), 0.1), np.clip(metal * 0.9, 0, 1)]
    return finish_shape(concat_meshes(parts), LAMP_PARTS, colors)
