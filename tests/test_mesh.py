"""lib.mesh queries: edges and how many faces share them, areas and normals, enclosed volume,
normalisation, each against a brute-force or hand-worked reference."""
import math

import pytest
import torch

from lib import primitives as P
from lib.mesh import (TriMesh, edge_face_counts, face_areas, face_normals, mesh_edges, normalize_mesh,
                      signed_volume, vertex_normals)

TETRA = TriMesh(verts=torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]),
                faces=torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))  # wound outward


def _edges_by_hand(faces):
    """Sorted list of unique undirected edges, and how many faces share each, in plain Python."""
    count = {}
    for f in faces.tolist():
        for i, j in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            key = (min(i, j), max(i, j))
            count[key] = count.get(key, 0) + 1
    keys = sorted(count)
    return keys, [count[k] for k in keys]


OPEN = TriMesh(verts=torch.rand(9, 3), faces=torch.tensor([[0, 1, 2], [2, 1, 3], [5, 8, 7]]))  # unused vertices too


@pytest.mark.parametrize("mesh", [TETRA, P.box(sharp=False), P.ico_sphere(2), P.lathe([0.2, 0.5, 0.3], [0, 0.4, 1], 7),
                                  OPEN])
def test_edges_and_counts_match_a_brute_force_count(mesh):
    keys, counts = _edges_by_hand(mesh.faces)
    edges = mesh_edges(mesh.faces)
    assert edges.dtype == torch.int64 and edges.tolist() == [list(k) for k in keys]
    assert edge_face_counts(mesh.faces).tolist() == counts


def test_face_edges_name_each_side_of_each_face():
    faces = P.ico_sphere(1).faces
    edges, face_edges = mesh_edges(faces, return_face_edges=True)
    assert face_edges.shape == faces.shape
    for k, (i, j) in enumerate(((0, 1), (1, 2), (2, 0))):
        assert torch.equal(edges[face_edges[:, k]], faces[:, [i, j]].sort(1).values)


def test_edges_of_no_faces_and_bad_shape():
    assert mesh_edges(torch.zeros(0, 3, dtype=torch.long)).shape == (0, 2)
    with pytest.raises(ValueError, match=r"\(F, 3\)"):
        mesh_edges(torch.zeros(4, 2, dtype=torch.long))


def test_areas_and_normals_by_hand():
    areas = face_areas(TETRA.verts, TETRA.faces)
    torch.testing.assert_close(areas, torch.tensor([0.5, 0.5, 0.5, math.sqrt(3) / 2]))
    n = face_normals(TETRA.verts, TETRA.faces)
    torch.testing.assert_close(n[:3], torch.tensor([[0.0, 0, -1], [0, -1, 0], [-1, 0, 0]]))
    torch.testing.assert_close(n[3], torch.full((3,), 1 / math.sqrt(3)))
    # a batch of meshes sharing faces: one row per mesh
    batch = torch.stack([TETRA.verts, 2 * TETRA.verts])
    torch.testing.assert_close(face_areas(batch, TETRA.faces), torch.stack([areas, 4 * areas]))
    torch.testing.assert_close(face_normals(batch, TETRA.faces)[1], n)


def test_vertex_normals_point_outwards_and_weigh_by_area():
    box = P.box(sharp=False)  # 8 shared corners
    n = vertex_normals(box.verts, box.faces)
    assert ((n * box.verts).sum(-1) > 0).all() and torch.allclose(n.norm(dim=-1), torch.ones(8))
    n = vertex_normals(TETRA.verts, TETRA.faces)
    torch.testing.assert_close(n[0], -torch.full((3,), 1 / math.sqrt(3)))  # three equal faces: their mean
    # vertex 1: area-weighted -z (0.5), -y (0.5) and (1, 1, 1)/sqrt(3) (sqrt(3)/2) sum to +x
    torch.testing.assert_close(n[1], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6, rtol=0)


def test_signed_volume_sign_and_value():
    assert signed_volume(TETRA.verts, TETRA.faces) == pytest.approx(1 / 6)
    assert signed_volume(TETRA.verts, TETRA.faces.flip(1)) == pytest.approx(-1 / 6)  # inside out
    box = P.box((3.0, -1.0, 2.0), (1.0, 2.0, 0.5))  # off-centre: the origin must not matter
    assert signed_volume(box.verts, box.faces) == pytest.approx(1.0)


@pytest.mark.parametrize("measure,expect", [("side", 0.9), ("diagonal", 0.9)])
def test_normalize_mesh_centres_and_scales(measure, expect):
    m = P.box((2.0, 1.0, -3.0), (1.0, 4.0, 2.0)).with_colors(torch.rand(24, 3))
    out = normalize_mesh(m, 0.9, measure)
    lo, hi = out.verts.min(0).values, out.verts.max(0).values
    torch.testing.assert_close(lo + hi, torch.zeros(3), atol=1e-6, rtol=0)
    size = (hi - lo).max() if measure == "side" else (hi - lo).norm()
    assert float(size) == pytest.approx(expect, abs=1e-6)
    assert torch.equal(out.faces, m.faces) and torch.equal(out.vert_colors, m.vert_colors)  # other fields kept
    # ShapeNet's normalisation: diagonal 1, so the object fits in [-0.5, 0.5]^3
    shapenet = normalize_mesh(m, 1.0, "diagonal")
    assert float(shapenet.verts.abs().max()) <= 0.5


def test_normalize_mesh_errors():
    with pytest.raises(ValueError, match="zero extent"):
        normalize_mesh(TriMesh(verts=torch.ones(3, 3), faces=torch.tensor([[0, 1, 2]])))
    with pytest.raises(ValueError, match="'side' or 'diagonal'"):
        normalize_mesh(TETRA, 1.0, "volume")
