"""The registry of part-labelled procedural shapes: one entry per category, every maker included.

========  =============================  =========================================  ======================
category  maker                          parts (``label_names``, index = label)      always present
========  =============================  =========================================  ======================
chair     ``lib.data.furniture.chair``   seat, back, legs, arms                     seat, back, legs
vase      ``lib.data.furniture.vase``    base, body, neck, lip                      all
lamp      ``lib.data.furniture.lamp``    base, pole, shade, arm                     base, pole, shade
car       ``lib.data.vehicles.car``      body, cabin, wheels, spoiler               body, cabin, wheels
airplane  ``lib.data.vehicles.airplane`` fuselage, wings, tail, engines             fuselage, wings, tail
========  =============================  =========================================  ======================

Every shape is a deterministic function of its seed, about 1 unit in size, y up, standing on
y = 0 with its bounding box centred on the y axis, fronts towards +z, vertex-coloured per part.
Datasets iterate over :data:`SHAPES` (part segmentation: chairs, vases, lamps; classification
and single-view reconstruction: any categories x views; the R2N2 layout of
``lib.data.r2n2_procedural``).

Example (CPU)::

    >>> CATEGORIES
    ('chair', 'vase', 'lamp', 'car', 'airplane')
    >>> m = make_shape("car", seed=2)
    >>> m.label_names == list(SHAPES["car"].parts), SHAPES["car"].mandatory_parts
    (True, ('body', 'cabin', 'wheels'))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from lib.data import furniture, vehicles
from lib.mesh import TriMesh


@dataclass(frozen=True)
class ShapeCategory:
    """One category of the registry.

    Attributes:
        name: the category ("chair").
        make: seed (int) -> TriMesh with vert_colors (V, 3) and face_labels (F,) into ``parts``.
        parts: the part names, index = face label.
        mandatory_parts: the parts every seed has (the others appear for some seeds only).
    """

    name: str
    make: Callable[[int], TriMesh]
    parts: Tuple[str, ...]
    mandatory_parts: Tuple[str, ...]


SHAPES: Dict[str, ShapeCategory] = {c.name: c for c in (
    ShapeCategory("chair", furniture.chair, furniture.CHAIR_PARTS, ("seat", "back", "legs")),
    ShapeCategory("vase", furniture.vase, furniture.VASE_PARTS, furniture.VASE_PARTS),
    ShapeCategory("lamp", furniture.lamp, furniture.LAMP_PARTS, ("base", "pole", "shade")),
    ShapeCategory("car", vehicles.car, vehicles.CAR_PARTS, ("body", "cabin", "wheels")),
    ShapeCategory("airplane", vehicles.airplane, vehicles.AIRPLANE_PARTS, ("fuselage", "wings", "tail")),
)}
CATEGORIES = tuple(SHAPES)


def make_shape(category: str, seed: int = 0) -> TriMesh:
    """The part-labelled shape of ``category`` (one of :data:`CATEGORIES`) for ``seed``."""
    if category not in SHAPES:
        raise ValueError(f"unknown shape category {category!r}; valid categories: {', '.join(CATEGORIES)}")
    return SHAPES[category].make(seed)
