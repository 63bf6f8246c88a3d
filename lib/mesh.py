"""``TriMesh``, a plain triangle-mesh container that does not need PyTorch3D, and the queries on
triangle meshes: face areas and normals, vertex normals, enclosed volume, the edge list and how
many faces share each edge, and normalisation to a unit box.

Everything in ``lib`` that makes or reads meshes (primitives, procedural shapes, OBJ files)
returns a ``TriMesh``; renderers convert it with :meth:`TriMesh.to_pytorch3d` only when they
need PyTorch3D. Coordinates are world units in the frame documented in ``lib.cameras``
(y up for objects standing on the ground plane). The queries take plain tensors ``verts``
(V, 3) float and ``faces`` (F, 3) int64 (faces counter-clockwise seen from outside), so they
also serve losses on a mesh being optimised; all are differentiable w.r.t. ``verts``.

Example (CPU)::

    >>> square = TriMesh(verts=torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]),
    ...                  faces=torch.tensor([[0, 1, 2], [0, 2, 3]]))
    >>> face_areas(square.verts, square.faces).tolist(), face_normals(square.verts, square.faces)[0].tolist()
    ([0.5, 0.5], [0.0, 0.0, 1.0])
    >>> edge_face_counts(square.faces).tolist()  # 4 boundary edges, 1 diagonal shared by both faces
    [1, 2, 1, 1, 1]
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

from lib.checks import shape_of


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
            raise ValueError(f"TriMesh.verts must be a (V, 3) tensor, got {shape_of(v)}")
        if not torch.is_tensor(f) or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"TriMesh.faces must be a (F, 3) tensor, got {shape_of(f)}")
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
            raise ValueError(f"TriMesh.vert_colors must be (V, 3) = ({V}, 3), got {shape_of(self.vert_colors)}")
        if (self.verts_uvs is None) != (self.faces_uvs is None):
            raise ValueError("TriMesh.verts_uvs and faces_uvs must be given together")
        if self.verts_uvs is not None:
            if self.verts_uvs.ndim != 2 or self.verts_uvs.shape[1] != 2:
                raise ValueError(f"TriMesh.verts_uvs must be (T, 2), got {shape_of(self.verts_uvs)}")
            if tuple(self.faces_uvs.shape) != (F, 3):
                raise ValueError(f"TriMesh.faces_uvs must be (F, 3) = ({F}, 3), got {shape_of(self.faces_uvs)}")
            if F and (int(self.faces_uvs.min()) < 0 or int(self.faces_uvs.max()) >= self.verts_uvs.shape[0]):
                raise ValueError(f"TriMesh.faces_uvs indexes past the {self.verts_uvs.shape[0]} texture coordinates")
        if self.texture is not None:
            t = self.texture
            if t.ndim != 3 or t.shape[2] != 3 or t.shape[0] < 1 or t.shape[1] < 1:
                raise ValueError(f"TriMesh.texture must be an (H, W, 3) RGB image, got {shape_of(t)}")
            if self.verts_uvs is None:
                raise ValueError("TriMesh.texture needs verts_uvs and faces_uvs to be mapped onto the mesh")
        if self.face_labels is not None and tuple(self.face_labels.shape) != (F,):
            raise ValueError(f"TriMesh.face_labels must be (F,) = ({F},), got {shape_of(self.face_labels)}")
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


# ------------------------------------------------------------------------------ queries
def mesh_edges(faces: torch.Tensor, return_face_edges: bool = False):
    """Unique undirected edges of a triangle mesh.

    Args:
        faces: (F, 3) integer vertex indices.
        return_face_edges: also return which edge each side of each face is.

    Returns:
        edges: (E, 2) int64, each row sorted (``i < j``), rows sorted lexicographically.
        face_edges (only if ``return_face_edges``): (F, 3) int64 rows of ``edges`` for the
        sides (v0, v1), (v1, v2), (v2, v0) of each face.

    >>> mesh_edges(torch.tensor([[0, 1, 2], [2, 1, 3]])).tolist()
    [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    """
    if not torch.is_tensor(faces) or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"mesh_edges: faces must be an (F, 3) tensor, got {shape_of(faces)}")
    f = faces.long()
    e = torch.stack([f, f.roll(-1, dims=1)], -1).reshape(-1, 2).sort(1).values  # (3F, 2), face-major
    n = int(e.max()) + 1 if e.numel() else 1
    # one integer per edge: much faster than unique(dim=0), and sorts rows lexicographically
    key, inverse = torch.unique(e[:, 0] * n + e[:, 1], return_inverse=True)
    edges = torch.stack([key // n, key % n], 1)
    return (edges, inverse.reshape(-1, 3)) if return_face_edges else edges


def edge_face_counts(faces: torch.Tensor) -> torch.Tensor:
    """(E,) int64 number of faces sharing each edge of ``mesh_edges(faces)`` (same row order);
    all 2 means the mesh is closed and manifold along its edges.

    >>> edge_face_counts(torch.tensor([[0, 1, 2], [2, 1, 3]])).tolist()
    [1, 1, 2, 1, 1]
    """
    edges, face_edges = mesh_edges(faces, return_face_edges=True)
    return torch.bincount(face_edges.reshape(-1), minlength=edges.shape[0])


def _cross(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(..., F, 3) ``(b - a) x (c - a)`` of each face (a, b, c): the normal scaled by twice the area."""
    a, b, c = verts[..., faces.long(), :].unbind(-2)
    return torch.linalg.cross(b - a, c - a)


def face_areas(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(..., F) area of each triangle. verts: (V, 3) float, or (..., V, 3) for a batch of meshes
    sharing ``faces`` (F, 3) int64."""
    return 0.5 * _cross(verts, faces).norm(dim=-1)


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(..., F, 3) unit normal of each triangle (verts (V, 3) or (..., V, 3), faces (F, 3)),
    pointing to the side from which its corners run counter-clockwise (outward for
    ``lib.primitives`` meshes); zero for a degenerate face."""
    return torch.nn.functional.normalize(_cross(verts, faces), dim=-1)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V, 3) unit vertex normals: the area-weighted mean of the normals of the faces around
    each vertex (zero for a vertex on no face)."""
    fn = _cross(verts, faces)  # (F, 3), length = 2 * area
    n = torch.zeros_like(verts).index_add(0, faces.reshape(-1).long(), fn.repeat_interleave(3, 0))
    return torch.nn.functional.normalize(n, dim=-1)


def signed_volume(verts: torch.Tensor, faces: torch.Tensor) -> float:
    """Volume enclosed by a closed mesh (divergence theorem, float64): positive when the faces
    wind outward, negative when inside out; meaningless for an open mesh."""
    a, b, c = verts.detach().double()[faces.long()].unbind(1)
    return float((a * torch.linalg.cross(b, c)).sum() / 6)


def normalize_mesh(mesh: TriMesh, extent: float = 0.9, measure: str = "side") -> TriMesh:
    """A copy of ``mesh`` with its bounding box centred at the origin and scaled to ``extent``.

    Args:
        mesh: any TriMesh (every other field is kept).
        extent: the size the bounding box gets, world units.
        measure: which size: ``"side"``, the box's longest side (0.9 fits the voxel grid
            ``[-0.5, 0.5]^3`` of ``lib.voxels`` with a margin), or ``"diagonal"``, its diagonal
            (``extent=1.0, measure="diagonal"`` is ShapeNetCore v1's normalisation, used by the
            R2N2 datasets; the object then fits in ``[-0.5, 0.5]^3``).
    Returns:
        TriMesh, verts (V, 3) float32.

    >>> m = normalize_mesh(TriMesh(verts=torch.tensor([[0.0, 0, 0], [4, 0, 0], [4, 3, 0]]),
    ...                            faces=torch.tensor([[0, 1, 2]])), 1.0, "diagonal")
    >>> m.verts.double().round(decimals=3).tolist()  # the 3-4-5 triangle: diagonal 5 -> 1
    [[-0.4, -0.3, 0.0], [0.4, -0.3, 0.0], [0.4, 0.3, 0.0]]
    """
    if measure not in ("side", "diagonal"):
        raise ValueError(f"normalize_mesh: measure must be 'side' or 'diagonal', got {measure!r}")
    lo, hi = mesh.verts.min(0).values, mesh.verts.max(0).values
    size = float((hi - lo).max() if measure == "side" else (hi - lo).norm())
    if size <= 0:
        raise ValueError("normalize_mesh: the mesh has zero extent (all vertices coincide)")
    return replace(mesh, verts=((mesh.verts - (lo + hi) / 2) / (size / extent)).float())
