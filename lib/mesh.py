"""``TriMesh``: a plain triangle-mesh container that does not need PyTorch3D.

Everything in ``lib`` that makes or reads meshes (primitives, procedural shapes, OBJ files)
returns a ``TriMesh``; renderers convert it with :meth:`TriMesh.to_pytorch3d` only when they
need PyTorch3D. Coordinates are world units in the frame documented in ``lib.cameras``
(y up for objects standing on the ground plane).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch


@dataclass
class TriMesh:
    """A triangle mesh with optional appearance and labels.

    Attributes:
        verts: (V, 3) float32, world coordinates.
        faces: (F, 3) int64, indices into ``verts``, counter-clockwise seen from outside.
        vert_colors: (V, 3) float32 in [0, 1], or None.
        verts_uvs: (T, 2) float32 texture coordinates in [0, 1] (v up, OBJ convention), or None.
        faces_uvs: (F, 3) int64 indices into ``verts_uvs``, or None.
        texture: (H, W, 3) float32 in [0, 1], row 0 at the top (v = 1), or None.
        face_labels: (F,) int64 part label per face, or None.
        label_names: names of the labels, index = label, or None.
    """

    verts: torch.Tensor
    faces: torch.Tensor
    vert_colors: Optional[torch.Tensor] = None
    verts_uvs: Optional[torch.Tensor] = None
    faces_uvs: Optional[torch.Tensor] = None
    texture: Optional[torch.Tensor] = None
    face_labels: Optional[torch.Tensor] = None
    label_names: Optional[list] = None

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> "TriMesh":
        """Raise ``ValueError`` naming the field when a shape, dtype or index is wrong."""
        v, f = self.verts, self.faces
        if not torch.is_tensor(v) or v.ndim != 2 or v.shape[1] != 3:
            raise ValueError(f"TriMesh.verts must be a (V, 3) tensor, got {_shape(v)}")
        if not torch.is_tensor(f) or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"TriMesh.faces must be a (F, 3) tensor, got {_shape(f)}")
        if f.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"TriMesh.faces must hold integer indices, got dtype {f.dtype}")
        if not torch.isfinite(v).all():
            raise ValueError("TriMesh.verts contains NaN or inf; fix the geometry before building the mesh")
        if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
            raise ValueError(
                f"TriMesh.faces indexes vertex {int(f.max()) if int(f.max()) >= v.shape[0] else int(f.min())}"
                f" but there are only {v.shape[0]} vertices (valid: 0..{v.shape[0] - 1})")
        V, F = v.shape[0], f.shape[0]
        if self.vert_colors is not None and tuple(self.vert_colors.shape) != (V, 3):
            raise ValueError(f"TriMesh.vert_colors must be (V, 3) = ({V}, 3), got {_shape(self.vert_colors)}")
        if (self.verts_uvs is None) != (self.faces_uvs is None):
            raise ValueError("TriMesh.verts_uvs and faces_uvs must be given together")
        if self.verts_uvs is not None:
            if self.verts_uvs.ndim != 2 or self.verts_uvs.shape[1] != 2:
                raise ValueError(f"TriMesh.verts_uvs must be (T, 2), got {_shape(self.verts_uvs)}")
            if tuple(self.faces_uvs.shape) != (F, 3):
                raise ValueError(f"TriMesh.faces_uvs must be (F, 3) = ({F}, 3), got {_shape(self.faces_uvs)}")
            if F and (int(self.faces_uvs.min()) < 0 or int(self.faces_uvs.max()) >= self.verts_uvs.shape[0]):
                raise ValueError(f"TriMesh.faces_uvs indexes past the {self.verts_uvs.shape[0]} texture coordinates")
        if self.texture is not None:
            t = self.texture
            if t.ndim != 3 or t.shape[2] != 3 or t.shape[0] < 1 or t.shape[1] < 1:
                raise ValueError(f"TriMesh.texture must be an (H, W, 3) RGB image, got {_shape(t)}")
            if self.verts_uvs is None:
                raise ValueError("TriMesh.texture needs verts_uvs and faces_uvs to be mapped onto the mesh")
        if self.face_labels is not None and tuple(self.face_labels.shape) != (F,):
            raise ValueError(f"TriMesh.face_labels must be (F,) = ({F},), got {_shape(self.face_labels)}")
        return self

    # --------------------------------------------------------------- helpers
    @property
    def num_verts(self) -> int:
        return int(self.verts.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def to(self, device) -> "TriMesh":
        """A copy with every tensor moved to ``device``."""
        move = lambda t: t.to(device) if torch.is_tensor(t) else t  # noqa: E731
        return replace(self, **{k: move(getattr(self, k)) for k in _TENSOR_FIELDS})

    def with_colors(self, vert_colors: torch.Tensor) -> "TriMesh":
        """A copy coloured per vertex (drops any texture map)."""
        return replace(self, vert_colors=vert_colors, verts_uvs=None, faces_uvs=None, texture=None)

    def face_areas(self) -> torch.Tensor:
        """(F,) float, the area of each triangle."""
        a, b, c = self.verts[self.faces].unbind(1)
        return 0.5 * torch.linalg.cross(b - a, c - a).norm(dim=-1)

    def vertex_normals(self) -> torch.Tensor:
        """(V, 3) float, area-weighted unit vertex normals."""
        a, b, c = self.verts[self.faces].unbind(1)
        fn = torch.linalg.cross(b - a, c - a)  # (F, 3), length = 2 * area
        n = torch.zeros_like(self.verts).index_add_(0, self.faces.reshape(-1), fn.repeat_interleave(3, 0))
        return torch.nn.functional.normalize(n, dim=-1)

    def to_pytorch3d(self, device=None):
        """A one-mesh ``pytorch3d.structures.Meshes`` with TexturesUV, TexturesVertex or white."""
        from pytorch3d.renderer import TexturesUV, TexturesVertex
        from pytorch3d.structures import Meshes

        m = self.to(device) if device is not None else self
        verts, faces = m.verts.float(), m.faces.long()
        if m.texture is not None:
            tex = TexturesUV(maps=m.texture[None].float(), faces_uvs=[m.faces_uvs.long()],
                             verts_uvs=[m.verts_uvs.float()])
        else:
            colors = m.vert_colors if m.vert_colors is not None else torch.ones_like(verts)
            tex = TexturesVertex(verts_features=[colors.float()])
        return Meshes(verts=[verts], faces=[faces], textures=tex)


_TENSOR_FIELDS = ("verts", "faces", "vert_colors", "verts_uvs", "faces_uvs", "texture", "face_labels")


def _shape(x) -> str:
    return str(tuple(x.shape)) if hasattr(x, "shape") else type(x).__name__


def concat_meshes(meshes: list) -> TriMesh:
    """Join meshes into one (faces re-indexed). Keeps vert_colors / face_labels only when every
    part has them; texture maps are dropped (they cannot be merged)."""
    if not meshes:
        raise ValueError("concat_meshes needs at least one mesh, got an empty list")
    offsets = torch.tensor([0] + [m.num_verts for m in meshes[:-1]]).cumsum(0)
    verts = torch.cat([m.verts for m in meshes])
    faces = torch.cat([m.faces + int(o) for m, o in zip(meshes, offsets)])
    colors = torch.cat([m.vert_colors for m in meshes]) if all(m.vert_colors is not None for m in meshes) else None
    labels = (torch.cat([m.face_labels for m in meshes])
              if all(m.face_labels is not None for m in meshes) else None)
    return TriMesh(verts=verts, faces=faces, vert_colors=colors, face_labels=labels,
                   label_names=meshes[0].label_names if labels is not None else None)
