"""Building blocks of the part-labelled procedural shapes (``lib.data.furniture``,
``lib.data.vehicles``): label a part, move it, give each part its colour.

A shape is assembled from closed parts (``lib.primitives`` boxes, cylinders, lathes), each
labelled with its part index (:func:`label_part`), joined with ``lib.mesh.concat_meshes`` and
finished by :func:`finish_shape`, which places it on the floor and colours each part.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from lib.mesh import TriMesh


def label_part(mesh: TriMesh, label: int) -> TriMesh:
    """``mesh`` (geometry only) with every face labelled ``label``: ``face_labels`` (F,) int64."""
    return TriMesh(verts=mesh.verts, faces=mesh.faces, face_labels=torch.full((mesh.num_faces,), label))


def move_mesh(mesh: TriMesh, R: torch.Tensor = None, t=(0, 0, 0), pivot=(0, 0, 0)) -> TriMesh:
    """A copy of ``mesh`` turned by the (3, 3) rotation ``R`` about the point ``pivot`` (3,),
    then moved by ``t`` (3,), world units: ``v' = R (v - pivot) + pivot + t``."""
    pivot = torch.as_tensor(pivot, dtype=torch.float32)
    v = mesh.verts - pivot
    if R is not None:
        v = v @ R.T
    return replace(mesh, verts=v + pivot + torch.as_tensor(t, dtype=torch.float32))


def finish_shape(mesh: TriMesh, names, colors) -> TriMesh:
    """Unshare vertices between parts, colour each part, put the lowest point on y = 0 and
    centre the bounding box on the y axis.

    Args:
        mesh: TriMesh with ``face_labels`` (F,) indexing ``names``.
        names: the part names. colors: (n_parts, 3) RGB in [0, 1], one per part.
    Returns:
        TriMesh with vert_colors (V, 3), face_labels (F,) and label_names = ``list(names)``.
    """
    f, lab = mesh.faces, mesh.face_labels
    key = mesh.faces * len(names) + lab[:, None]  # (vertex, label) pairs
    uniq, inv = torch.unique(key.reshape(-1), return_inverse=True)
    verts = mesh.verts[uniq // len(names)]
    lo, hi = verts.min(0).values, verts.max(0).values
    verts = verts - torch.stack([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2])
    cols = torch.as_tensor(np.clip(np.asarray(colors), 0, 1), dtype=torch.float32)[uniq % len(names)]
    return TriMesh(verts=verts.float(), faces=inv.reshape(f.shape).long(), vert_colors=cols,
                   face_labels=lab.long(), label_names=list(names))


def jitter_color(rng: np.random.Generator, rgb, amount: float = 0.06) -> np.ndarray:
    """(3,) ``rgb`` plus uniform noise in [-amount, amount] per channel, clipped to [0, 1]."""
    return np.clip(np.asarray(rgb) + rng.uniform(-amount, amount, 3), 0, 1)


def ease(t):
    """Smooth step from 0 (t <= 0) to 1 (t >= 1): ``(1 - cos(pi t)) / 2``; numpy arrays."""
    return (1 - np.cos(np.pi * np.clip(t, 0, 1))) / 2
