"""lib.voxels and lib.data.binvox: voxelize against analytic occupancy, binvox round trips and errors,
voxels -> mesh."""
import os

import pytest
import torch

from lib import primitives as P
from lib import voxels as V
from lib.data import binvox as B
from lib.data.furniture import CHAIR_PARTS, chair as make_chair
from lib.geometry import sample_surface
from lib.mesh import TriMesh, concat_meshes, edge_face_counts, normalize_mesh, signed_volume


def _iou(a, b):
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


# ------------------------------------------------------------------------------ grids
def test_voxel_centers_layout():
    c = V.voxel_centers(4, (-1.0, 1.0))
    assert c.shape == (4, 4, 4, 3)
    torch.testing.assert_close(c[0, 0, 0], torch.tensor([-0.75, -0.75, -0.75]))
    torch.testing.assert_close(c[3, 1, 2], torch.tensor([0.75, -0.25, 0.25]))  # [ix, iy, iz] -> x, y, z
    c = V.voxel_centers(2, ((0, 0, 0), (2, 4, 6)))  # per-axis bounds
    torch.testing.assert_close(c[1, 1, 1], torch.tensor([1.5, 3.0, 4.5]))


@pytest.mark.parametrize("bad", [(0.5, -0.5), (1.0,), "ab", ((0, 0), (1, 1))])
def test_bad_bounds_rejected(bad):
    with pytest.raises(ValueError, match="bounds"):
        V.voxel_centers(4, bad)


def test_bad_resolution_and_mesh_rejected():
    with pytest.raises(ValueError, match="resolution"):
        V.voxelize(P.box(), 0)
    with pytest.raises(ValueError, match="TriMesh"):
        V.voxelize(torch.rand(10, 3))


# -------------------------------------------------------------------------- voxelize
def _box_occupancy(centers, h, center, size, conservative):
    lo = torch.tensor(center) - torch.tensor(size) / 2
    hi = torch.tensor(center) + torch.tensor(size) / 2
    m = h / 2 if conservative else 0.0  # conservative: the voxel cell overlaps the box
    return ((centers > lo - m) & (centers < hi + m)).all(-1)


@pytest.mark.parametrize("R", [16, 32])
@pytest.mark.parametrize("surface", [False, True])
def test_voxelize_box_matches_analytic(R, surface):
    center, size = (0.05, -0.1, 0.02), (0.5, 0.3, 0.61)
    occ = V.voxelize(P.box(center, size), R, surface=surface)
    ref = _box_occupancy(V.voxel_centers(R), 1.0 / R, center, size, conservative=surface)
    assert occ.shape == (R, R, R) and occ.dtype == torch.bool
    assert _iou(occ, ref) > 0.95


@pytest.mark.parametrize("surface", [False, True])
def test_voxelize_sphere_matches_analytic(surface):
    R, r = 32, 0.37
    c = V.voxel_centers(R)
    occ = V.voxelize(P.ico_sphere(4, radius=r), R, surface=surface)
    if surface:  # the cell [c - h/2, c + h/2] reaches into the ball
        nearest = torch.sign(c) * (c.abs() - 0.5 / R).clamp(min=0)  # cell point closest to 0
        ref = nearest.norm(dim=-1) <= r
    else:
        ref = c.norm(dim=-1) < r
    assert _iou(occ, ref) > 0.95


def test_overlapping_parts_stay_solid():
    """Two closed boxes that overlap: parity of crossings would empty the overlap; winding does not."""
    a, b = P.box((-0.1, 0, 0), (0.5, 0.3, 0.3)), P.box((0.1, 0, 0), (0.5, 0.3, 0.3))
    occ = V.voxelize(concat_meshes([a, b]), 32, surface=False)
    ref = (_box_occupancy(V.voxel_centers(32), 1 / 32, (-0.1, 0, 0), (0.5, 0.3, 0.3), False)
           | _box_occupancy(V.voxel_centers(32), 1 / 32, (0.1, 0, 0), (0.5, 0.3, 0.3), False))
    assert torch.equal(occ, ref)


def test_inward_wound_and_slightly_open_meshes():
    sphere = P.ico_sphere(3, radius=0.4)
    ref = V.voxelize(sphere, 32, surface=False)
    flipped = TriMesh(verts=sphere.verts, faces=sphere.faces.flip(1))
    assert torch.equal(V.voxelize(flipped, 32, surface=False), ref)
    holed = TriMesh(verts=sphere.verts, faces=sphere.faces[3:])  # three triangles missing
    assert _iou(V.voxelize(holed, 32, surface=False), ref) > 0.97


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_chair_keeps_its_legs(seed):
    chair = normalize_mesh(make_chair(seed))
    R = 32
    occ = V.voxelize(chair, R)
    legs = TriMesh(verts=chair.verts, faces=chair.faces[chair.face_labels == CHAIR_PARTS.index("legs")])
    pts, _ = sample_surface(legs, 2000, torch.Generator().manual_seed(seed))
    idx = ((pts + 0.5) * R).floor().long().clamp(0, R - 1)
    assert occ[idx[:, 0], idx[:, 1], idx[:, 2]].all(), "a voxel a leg passes through is empty"
    iy_floor = int(((chair.verts[:, 1].min() + 0.5) * R).floor())
    iy_seat = int(((chair.verts[legs.faces.reshape(-1), 1].max() + 0.5) * R).floor())
    for iy in range(iy_floor, iy_seat + 1):  # every layer between floor and seat holds legs
        assert occ[:, iy, :].any(), f"layer {iy} below the seat is empty"


# ----------------------------------------------------------------------------- binvox
@pytest.mark.parametrize("D", [1, 2, 5, 32, 64])
@pytest.mark.parametrize("fill", [0.0, 0.3, 1.0])
def test_binvox_round_trip(tmp_path, D, fill):
    g = torch.rand(D, D, D, generator=torch.Generator().manual_seed(D)) < fill
    path = B.write_binvox(tmp_path / "sub" / "g.binvox", g, translate=(0.25, -1.5, 3.0), scale=2.5)
    back, translate, scale = B.read_binvox(path)
    assert back.dtype == torch.bool and torch.equal(back, g)
    torch.testing.assert_close(translate, torch.tensor([0.25, -1.5, 3.0]))
    assert scale == 2.5
    assert [p.name for p in path.parent.iterdir()] == ["g.binvox"]  # no temp file left behind


def test_binvox_hand_made_bytes_pin_the_axis_order(tmp_path):
    """binvox stream index = ix * D * D + iz * D + iy (y fastest, then z, then x)."""
    header = b"#binvox 1\ndim 2 2 2\ntranslate -0.5 -0.5 -0.5\nscale 1\ndata\n"
    cases = {1: (0, 1, 0), 2: (0, 0, 1), 4: (1, 0, 0), 6: (1, 0, 1)}
    for pos, ijk in cases.items():
        runs = bytes([0, pos, 1, 1, 0, 7 - pos]) if pos else bytes([1, 1, 0, 7])
        (tmp_path / "a.binvox").write_bytes(header + runs)
        g, _, _ = B.read_binvox(tmp_path / "a.binvox")
        assert g.nonzero().tolist() == [list(ijk)], f"stream position {pos}"
        B.write_binvox(tmp_path / "b.binvox", g)  # the writer produces the same bytes
        assert (tmp_path / "b.binvox").read_bytes().split(b"data\n", 1)[1] == runs


def test_binvox_long_runs_split_at_255(tmp_path):
    g = torch.zeros(8, 8, 8, dtype=torch.bool)  # 512 empty voxels: runs of 255, 255, 2
    B.write_binvox(tmp_path / "e.binvox", g)
    assert (tmp_path / "e.binvox").read_bytes().split(b"data\n", 1)[1] == bytes([0, 255, 0, 255, 0, 2])


def test_binvox_without_translate_and_scale_and_version_2(tmp_path):
    (tmp_path / "v.binvox").write_bytes(b"#binvox 2\ndim 1 1 1\ndata\n" + bytes([7, 1]))
    g, t, s = B.read_binvox(tmp_path / "v.binvox")
    assert g.tolist() == [[[True]]] and t.tolist() == [0.0, 0.0, 0.0] and s == 1.0


@pytest.mark.parametrize("header, line, expected", [
    (b"#binvox 3\ndim 2 2 2\ndata\n", 1, "#binvox 1"),
    (b"binvox\n", 1, "#binvox 1"),
    (b"#binvox 1\ndim 2 2\ndata\n", 2, "dim D D D"),
    (b"#binvox 1\ndim 2 2 x\ndata\n", 2, "dim D D D"),
    (b"#binvox 1\ndim 2 3 2\ndata\n", 2, "cubic"),
    (b"#binvox 1\ndim 2 2 2\ntranslate 0 0\ndata\n", 3, "translate tx ty tz"),
    (b"#binvox 1\ndim 2 2 2\nscale -1\ndata\n", 3, "scale s"),
    (b"#binvox 1\ndim 2 2 2\nvoxels\n", 3, "'data'"),
    (b"#binvox 1\ndata\n", 2, "dim D D D"),
    (b"#binvox 1\ndim 2 2 2\n", 3, "newline"),
    (b"\xff\xfe\x00\x01\n", 1, "ASCII"),
])
def test_binvox_malformed_header_names_file_and_line(tmp_path, header, line, expected):
    path = tmp_path / "broken.binvox"
    path.write_bytes(header + bytes([0, 8]))
    with pytest.raises(ValueError) as e:
        B.read_binvox(path)
    msg = str(e.value)
    assert "broken.binvox" in msg and f"line {line}" in msg and expected in msg, msg


@pytest.mark.parametrize("cut", [1, 2, 5])
def test_binvox_truncated_data_names_file_and_counts(tmp_path, cut):
    g = torch.rand(6, 6, 6, generator=torch.Generator().manual_seed(0)) < 0.5
    B.write_binvox(tmp_path / "full.binvox", g)
    raw = (tmp_path / "full.binvox").read_bytes()
    path = tmp_path / "cut.binvox"
    path.write_bytes(raw[:-cut])
    with pytest.raises(ValueError, match=r"cut\.binvox.*truncated.*decoded \d+ .*216"):
        B.read_binvox(path)


def test_binvox_too_much_data_and_missing_file(tmp_path):
    path = tmp_path / "long.binvox"
    path.write_bytes(b"#binvox 1\ndim 2 2 2\ndata\n" + bytes([0, 9]))
    with pytest.raises(ValueError, match=r"long\.binvox.*9 voxels.*8"):
        B.read_binvox(path)
    with pytest.raises(FileNotFoundError, match="nope.binvox"):
        B.read_binvox(tmp_path / "nope.binvox")


def test_write_binvox_rejects_non_cubic_and_bad_scale(tmp_path):
    with pytest.raises(ValueError, match="cubic"):
        B.write_binvox(tmp_path / "x.binvox", torch.zeros(2, 3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="scale"):
        B.write_binvox(tmp_path / "x.binvox", torch.zeros(2, 2, 2, dtype=torch.bool), scale=0.0)
    with pytest.raises(ValueError, match="R, R, R"):
        B.write_binvox(tmp_path / "x.binvox", torch.zeros(4, 4, dtype=torch.bool))
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------- voxels -> mesh
@pytest.mark.parametrize("R", [3, 8])
def test_blocky_mesh_is_closed_and_voxelizes_back(R):
    g = torch.rand(R, R, R, generator=torch.Generator().manual_seed(R)) < 0.4
    m = V.voxels_to_mesh(g, bounds=(-1.0, 1.0))
    h = 2.0 / R
    assert abs(signed_volume(m.verts, m.faces) - float(g.sum()) * h ** 3) < 1e-4  # outward faces, exact volume
    assert (edge_face_counts(m.faces) % 2 == 0).all()  # closed (edges shared by 2 or 4 faces)
    assert torch.equal(V.voxelize(m, R, bounds=(-1.0, 1.0), surface=False), g)


def test_smooth_mesh_and_empty_grid():
    g = V.voxelize(P.ico_sphere(3, radius=0.35), 24, surface=False)
    m = V.voxels_to_mesh(g, smooth=True)
    vol = float(g.sum()) / 24 ** 3
    assert m.num_faces > 0 and abs(signed_volume(m.verts, m.faces) - vol) < 0.15 * vol  # outward, about right
    assert m.verts.abs().max() < 0.5
    probs = torch.sigmoid(torch.randn(8, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(V.voxels_to_mesh(probs, threshold=0.7).faces, V.voxels_to_mesh(probs > 0.7).faces)
    empty = V.voxels_to_mesh(torch.zeros(4, 4, 4, dtype=torch.bool), smooth=True)
    assert empty.num_verts == 0 and empty.num_faces == 0


@pytest.mark.parametrize("seed", range(4))
def test_surface_voxels_are_exactly_those_a_triangle_meets(seed):
    """Every cell holding a point of the triangle is marked; every marked cell comes within
    half a cell diagonal (plus sampling slack) of the triangle."""
    g = torch.Generator().manual_seed(seed)
    R = 16
    tri = TriMesh(verts=torch.rand(3, 3, generator=g) - 0.5, faces=torch.tensor([[0, 1, 2]]))
    occ = V.voxelize(tri, R, solid=False)  # an open sheet: the shell only
    pts, _ = sample_surface(tri, 40000, g)
    idx = ((pts + 0.5) * R).floor().long().clamp(0, R - 1)
    hit = torch.zeros_like(occ)
    hit[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    assert (occ | ~hit).all()  # hit implies marked
    centers = V.voxel_centers(R)[occ]  # (K, 3)
    d = torch.cdist(centers, pts).min(1).values
    assert float(d.max()) <= 0.5 * 3 ** 0.5 / R + 0.01


def test_chunked_pair_enumeration_gives_the_same_grid(monkeypatch):
    chair = normalize_mesh(make_chair(1))
    whole = V.voxelize(chair, 24)
    monkeypatch.setattr(V._pairs, "__defaults__", (97,))  # tiny chunks: many loop iterations
    assert torch.equal(V.voxelize(chair, 24), whole)
