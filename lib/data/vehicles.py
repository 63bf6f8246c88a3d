"""Part-labelled vehicles, made procedurally: cars and airplanes (two more R2N2 classes).

Like ``lib.data.furniture``: deterministic in ``seed``, world units, y up, resting on y = 0
with the bounding box centred on the y axis, the front (bonnet, nose) towards +z; every face
carries a part label and each part its own vertex colour. The registry of every category is
``lib.data.shapes``.

Example (CPU)::

    >>> m = airplane(seed=1)
    >>> m.label_names
    ['fuselage', 'wings', 'tail', 'engines']
"""
from __future__ import annotations

import numpy as np
import torch

from lib import primitives as P
from lib.cameras import rotation
from lib.data.shape_parts import ease, finish_shape, jitter_color, label_part, move_mesh
from lib.mesh import TriMesh, concat_meshes

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
        TriMesh of a few hundred faces (F, 3) with vert_colors (V, 3) (one paint per part) and
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
    parts = [label_part(P.box((0, y0 + hb / 2, 0), (W, hb, L)), BODY)]
    hood = P.box((0, top - 0.01, L * 0.3), (W * 0.96, 0.02, L * 0.35))  # a raised hood line
    parts.append(label_part(hood, BODY))
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
    parts.append(label_part(_hexahedron(corners), CABIN))
    track = W / 2 + rng.uniform(0.0, 0.02)  # outer face of the tyres
    wheel_w = rng.uniform(0.06, 0.09)
    axle = L / 2 - r_wheel - rng.uniform(0.04, 0.1)
    for sx in (1, -1):
        for z in (axle, -axle):
            parts.append(label_part(P.cylinder_between((sx * (track - wheel_w), r_wheel, z), (sx * track, r_wheel, z),
                                                  r_wheel, 16), WHEELS))
    if rng.random() < 0.3:
        ys = top + rng.uniform(0.04, 0.07)
        parts.append(label_part(P.box((0, ys, -L / 2 + 0.05), (W * 0.9, 0.015, 0.08)), SPOILER))
        for sx in (1, -1):
            parts.append(label_part(P.box((sx * W * 0.3, (top + ys) / 2, -L / 2 + 0.05), (0.02, ys - top, 0.03)), SPOILER))
    paint = jitter_color(rng, [(0.75, 0.1, 0.1), (0.15, 0.3, 0.7), (0.85, 0.85, 0.82), (0.2, 0.2, 0.22),
                          (0.9, 0.7, 0.1), (0.2, 0.55, 0.3)][rng.integers(6)], 0.05)
    colors = [paint, (0.25, 0.35, 0.45), (0.08, 0.08, 0.08), np.clip(paint * 0.6, 0, 1)]
    return finish_shape(concat_meshes(parts), CAR_PARTS, colors)


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
    radius = np.select([t < 0.25, t < 0.82], [rf * (0.3 + 0.7 * ease(t / 0.25)), rf],
                       rf * np.sqrt(np.clip(1 - ((t - 0.82) / 0.18) ** 2, 0, 1)))
    radius[-1] = 0.0
    body = P.lathe(np.concatenate([[0.0], radius]), np.concatenate([[0.0], t * Lf]), 16, capped=False)
    body = move_mesh(label_part(body, FUSELAGE), rotation("x", 90.0), t=(0, 0, -Lf / 2))  # axis y -> z, nose at +z
    parts = [body]
    span, chord = rng.uniform(0.35, 0.55), rng.uniform(0.14, 0.24)
    tip_chord, sweep = chord * rng.uniform(0.3, 0.6), rng.uniform(0.03, 0.25)
    y_wing = rf * (rng.uniform(0.4, 0.7) if rng.random() < 0.3 else rng.uniform(-0.7, -0.3))
    z_wing, dihedral = rng.uniform(-0.05, 0.1), rng.uniform(0.0, 0.06)
    wing = _tapered_slab((0.0, z_wing), chord, span, tip_chord, sweep, y_wing, 0.025, dihedral)
    parts += [label_part(_hexahedron(wing), WINGS), label_part(_hexahedron(_mirror_x(wing)), WINGS)]
    z_tail = -Lf / 2 + rng.uniform(0.06, 0.1)
    fin_h, fin_c = rng.uniform(0.1, 0.18), rng.uniform(0.1, 0.16)
    fin = []  # vertical fin: thin along x, rising from the fuselage top, tip swept back
    for ix in (0, 1):
        for iy in (0, 1):
            for iz in (0, 1):
                chord, shift = (fin_c, 0.0) if iy == 0 else (0.65 * fin_c, -0.15 * fin_c)  # tip: shorter, swept back
                fin.append(((ix - 0.5) * 0.015, rf * 0.5 + iy * fin_h, z_tail + shift + iz * chord))
    parts.append(label_part(_hexahedron(fin), TAIL))
    t_tail = rng.random() < 0.3
    y_stab = rf * 0.5 + fin_h * 0.95 if t_tail else 0.0
    stab = _tapered_slab((0.0, z_tail + 0.04), fin_c * 0.8, rng.uniform(0.12, 0.2), fin_c * 0.4, 0.04, y_stab, 0.012)
    parts += [label_part(_hexahedron(stab), TAIL), label_part(_hexahedron(_mirror_x(stab)), TAIL)]
    n_eng = int(rng.choice([0, 1, 1, 2]))
    r_eng = rng.uniform(0.025, 0.04)
    for k in range(n_eng):
        x = span * (0.35 if n_eng == 1 else (0.3 + 0.3 * k))
        z = z_wing + chord / 2 - sweep * x / span + 0.04
        for sx in (1, -1):
            parts.append(label_part(P.cylinder_between((sx * x, y_wing - r_eng - 0.01, z - 0.14),
                                                  (sx * x, y_wing - r_eng - 0.01, z), r_eng, 12), ENGINES))
    livery = jitter_color(rng, [(0.92, 0.92, 0.94), (0.8, 0.82, 0.85), (0.3, 0.35, 0.4)][rng.integers(3)], 0.04)
    accent = jitter_color(rng, [(0.7, 0.1, 0.1), (0.1, 0.25, 0.6), (0.9, 0.6, 0.1)][rng.integers(3)])
    colors = [livery, np.clip(livery * 0.85, 0, 1), accent, (0.35, 0.35, 0.38)]
    return finish_shape(concat_meshes(parts), AIRPLANE_PARTS, colors)
