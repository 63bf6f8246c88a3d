"""Tests of lib.data.mesh_io: OBJ round trips, parsing of every face form, PyTorch3D parity, errors."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lib import primitives as P
from lib.data.furniture import chair
from lib.data.toy_animal import toy_animal, write_toy_animal
from lib.data.mesh_io import load_obj, save_obj
from lib.mesh import TriMesh, edge_face_counts


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CUBE_V = "".join(f"v {x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1))


# ------------------------------------------------------------------------------ round trips
def test_round_trip_plain(tmp_path):
    m = P.box((0.1, -0.2, 0.3), (1.0, 0.5, 2.0))
    out = load_obj(save_obj(tmp_path / "box.obj", m))
    assert torch.equal(out.verts, m.verts) and torch.equal(out.faces, m.faces)
    assert out.vert_colors is None and out.verts_uvs is None and out.texture is None and out.face_labels is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.obj"]  # no .mtl, no temp files left


def test_round_trip_colours_and_labels(tmp_path):
    m = next(c for c in map(chair, range(20)) if 3 not in c.face_labels.tolist())
    # a chair without arms: 'arms' is a label with no faces, and must survive the trip
    out = load_obj(save_obj(tmp_path / "chair.obj", m))
    assert torch.equal(out.verts, m.verts) and torch.equal(out.faces, m.faces)
    assert torch.allclose(out.vert_colors, m.vert_colors, atol=1e-6)
    assert out.label_names == m.label_names == ["seat", "back", "legs", "arms"]
    assert torch.equal(out.face_labels, m.face_labels)


def test_round_trip_labels_not_contiguous(tmp_path):
    m = P.ico_sphere(1)
    labels = torch.arange(m.num_faces) % 3
    m = TriMesh(verts=m.verts, faces=m.faces, face_labels=labels, label_names=["a b", "c", "d"])
    out = load_obj(save_obj(tmp_path / "s.obj", m))
    assert torch.equal(out.face_labels, labels) and out.label_names == ["a_b", "c", "d"]


def test_round_trip_textured(tmp_path):
    m = toy_animal(0, resolution=32)
    path = save_obj(tmp_path / "toy.obj", m)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.mtl", "toy.obj", "toy_texture.png"]
    out = load_obj(path)
    assert torch.equal(out.verts, m.verts) and torch.equal(out.faces, m.faces)
    assert torch.equal(out.verts_uvs, m.verts_uvs) and torch.equal(out.faces_uvs, m.faces_uvs)
    assert out.texture.shape == m.texture.shape
    assert (out.texture - m.texture).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit PNG


def test_round_trip_uvs_without_texture_and_overwrite(tmp_path):
    m = P.uv_sphere(1.0, 6, 12)
    save_obj(tmp_path / "s.obj", P.box())
    out = load_obj(save_obj(tmp_path / "s.obj", m))  # replaces the old file in place
    assert torch.equal(out.faces, m.faces) and torch.equal(out.verts_uvs, m.verts_uvs)
    assert out.texture is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.obj"]


def test_write_toy_animal_reads_back(tmp_path):
    out = load_obj(write_toy_animal(tmp_path / "toy", seed=1))
    assert out.texture.shape == (256, 256, 3) and out.faces_uvs.shape == out.faces.shape
    assert (edge_face_counts(out.faces) == 2).all()


# ------------------------------------------------------------------------------ parsing
def test_face_forms_negative_indices_and_polygons(tmp_path):
    text = ("# a comment\r\n" + CUBE_V +
            "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
            "vn 0 0 1\n"
            "\n"
            "f 1 2 3\n"                      # v
            "f 1/1 2/2 4/3\n"                # v/vt
            "f 5//1 6//1 7//1\n"             # v//vn
            "f 5/1/1 6/2/1 8/3/1   # trailing comment\n"  # v/vt/vn
            "f -1 -2 -3\n"                   # negative: vertices 8, 7, 6
            "f 1/1 2/2 4/3 3/4\n"            # quad -> 2 triangles
            "f\t1 2 4 8 7\n")                # pentagon -> 3 triangles (tab separated)
    m = load_obj(write(tmp_path / "forms.obj", text))
    expected = [[0, 1, 2], [0, 1, 3], [4, 5, 6], [4, 5, 7], [7, 6, 5],
                [0, 1, 3], [0, 3, 2], [0, 1, 3], [0, 3, 7], [0, 7, 6]]
    assert m.faces.tolist() == expected
    assert m.verts.shape == (8, 3) and m.verts_uvs.shape == (5, 2)  # 4 + one (0, 0) for faces without vt
    assert m.faces_uvs[1].tolist() == [0, 1, 2] and m.faces_uvs[0].tolist() == [4, 4, 4]
    assert m.faces_uvs[6].tolist() == [0, 2, 3]


def test_vertex_colours_0_255_and_groups(tmp_path):
    text = ("v 0 0 0 255 0 0\nv 1 0 0 0 255 0\nv 0 1 0 0 0 255\nv 0 0 1 255 255 255\n"
            "f 1 2 3\ng top\nf 1 2 4\no other\nf 1 3 4\ng top\nf 2 3 4\n")
    m = load_obj(write(tmp_path / "c.obj", text))
    assert torch.allclose(m.vert_colors, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]))
    assert m.label_names == ["default", "top", "other"]
    assert m.face_labels.tolist() == [0, 1, 2, 1]


def test_mtl_with_options_and_several_materials(tmp_path):
    Image.fromarray(np.full((4, 6, 4), 200, np.uint8)).save(tmp_path / "a.png")  # RGBA: alpha dropped
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "b.png")
    write(tmp_path / "m.mtl", "newmtl first\nKd 1 1 1  # white\nmap_Kd -s 1 1 1 -clamp on b.png\n"
                              "newmtl second\nmap_Kd a.png\n")
    text = "mtllib m.mtl\n" + CUBE_V + "vt 0 0\nvt 1 0\nvt 1 1\nusemtl second\nf 1/1 2/2 3/3\nusemtl first\nf 1/1 2/2 4/3\n"
    m = load_obj(write(tmp_path / "t.obj", text))
    assert m.texture.shape == (4, 6, 3)
    assert torch.allclose(m.texture, torch.tensor(200 / 255))  # the first *used* material wins


def test_parity_with_pytorch3d(tmp_path):
    p3d_io = pytest.importorskip("pytorch3d.io")
    m = toy_animal(3, resolution=32)
    path = save_obj(tmp_path / "toy.obj", m)
    ours = load_obj(path)
    verts, faces, aux = p3d_io.load_obj(path, load_textures=True)
    assert torch.allclose(ours.verts, verts)
    assert torch.equal(ours.faces, faces.verts_idx)
    assert torch.allclose(ours.verts_uvs, aux.verts_uvs)
    assert torch.equal(ours.faces_uvs, faces.textures_idx)
    (tex,) = aux.texture_images.values()
    assert torch.allclose(ours.texture, tex, atol=1e-6)
    # and a plain file with polygons and negative indices
    text = CUBE_V + "f 1 2 4 3\nf -1 -2 -3\nf 5 6 8 7\n"
    write(tmp_path / "poly.obj", text)
    verts, faces, _ = p3d_io.load_obj(tmp_path / "poly.obj", load_textures=False)
    ours = load_obj(tmp_path / "poly.obj")
    assert torch.allclose(ours.verts, verts) and torch.equal(ours.faces, faces.verts_idx)


# ------------------------------------------------------------------------------ errors
def test_missing_file_names_path_and_hint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cow\.obj.*does not exist.*Check the path"):
        load_obj(tmp_path / "cow.obj")


@pytest.mark.parametrize("body, line, pattern", [
    ("v 1.0 abc\n", 1, r"expected 'v x y z' with 3 numbers.*got 'v 1\.0 abc'"),
    ("v 1 2 3\nv 1 2\n", 2, r"expected 'v x y z' with 3 numbers.*got 'v 1 2'"),
    (CUBE_V + "vt 0 zero\n", 9, r"expected 'vt u v'"),
    (CUBE_V + "f 1 2\n", 9, r".*at least 3 corners"),
    (CUBE_V + "f 1 2 x\n", 9, r"bad vertex index 'x'"),
    (CUBE_V + "f 0 1 2\n", 9, r"vertex index 0 .* OBJ indices start at 1"),
    (CUBE_V + "f 1 2 3\nf 1 2 9\n", 10, r"vertex index 9 is out of range: the file has 8 vertices"),
    (CUBE_V + "f -9 1 2\n", 9, r"vertex index -9 is out of range: only 8"),
    (CUBE_V + "vt 0 0\nf 1/1 2/2 3/5\n", 10, r"texture coordinate index 5 is out of range: the file has 1 'vt'"),
    (CUBE_V + "vt 0 0\nf 1/1 2 3\n", 10, r"face .* mixes corners with and without texture"),
    ("v 0 0 0\nv 1 nan 0\n", 2, r"expected finite numbers, got 'nan' in 'v 1 nan 0'"),
    ("v 0 0 0\nv 1 0 -inf\n", 2, r"expected finite numbers, got '-inf'"),
    ("v 0 0 1e999\n", 1, r"expected finite numbers, got '1e999'"),  # overflows to inf
    ("v 0 0 0 1 NaN 1\n", 1, r"expected finite numbers, got 'NaN'"),  # a vertex colour
    (CUBE_V + "vt 0.5 inf\n", 9, r"expected finite numbers, got 'inf' in 'vt 0\.5 inf'"),
    (CUBE_V + "vn 0 0 1\nvn nan 0 1\n", 10, r"expected finite numbers, got 'nan' in 'vn nan 0 1'"),
    (CUBE_V + "vn 0 1\n", 9, r"expected 'vn x y z' with 3 numbers, got 'vn 0 1'"),
])
def test_malformed_lines_name_file_and_line(tmp_path, body, line, pattern):
    path = write(tmp_path / "cow.obj", body)
    with pytest.raises(ValueError, match=rf"^cow\.obj line {line}: {pattern}"):
        load_obj(path)


def test_no_faces(tmp_path):
    with pytest.raises(ValueError, match=r"cow\.obj: no faces"):
        load_obj(write(tmp_path / "cow.obj", CUBE_V + "# nothing else\n"))
    with pytest.raises(ValueError, match=r"empty\.obj: no faces"):
        load_obj(write(tmp_path / "empty.obj", ""))


def test_missing_mtl(tmp_path):
    path = write(tmp_path / "cow.obj", "mtllib cow.mtl\n" + CUBE_V + "f 1 2 3\n")
    with pytest.raises(FileNotFoundError, match=r"cow\.obj line 1: material library 'cow\.mtl' not found"):
        load_obj(path)
    m = load_obj(path, load_textures=False)  # geometry only: the .mtl is not needed
    assert m.faces.tolist() == [[0, 1, 2]] and m.verts.shape == (8, 3) and m.texture is None


def test_missing_texture(tmp_path):
    write(tmp_path / "cow.mtl", "newmtl material_1\nmap_Kd cow_texture.png\n")
    path = write(tmp_path / "cow.obj", "mtllib cow.mtl\n" + CUBE_V + "vt 0 0\nusemtl material_1\nf 1/1 2/1 3/1\n")
    with pytest.raises(FileNotFoundError, match=r"cow\.mtl line 2: texture image 'cow_texture\.png' not found"):
        load_obj(path)
    m = load_obj(path, load_textures=False)
    assert m.texture is None and m.verts_uvs.tolist() == [[0.0, 0.0]] and m.faces_uvs.tolist() == [[0, 0, 0]]


@pytest.mark.parametrize("image", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 2), np.uint8)])
def test_texture_not_rgb(tmp_path, image):
    Image.fromarray(image).save(tmp_path / "cow_texture.png")
    write(tmp_path / "cow.mtl", "newmtl material_1\nmap_Kd cow_texture.png\n")
    path = write(tmp_path / "cow.obj", "mtllib cow.mtl\n" + CUBE_V + "vt 0 0\nusemtl material_1\nf 1/1 2/1 3/1\n")
    with pytest.raises(ValueError, match=r"cow\.mtl line 2: texture image 'cow_texture\.png' must be RGB or RGBA.*"
                                         r"got \(8, 8(, 2)?\)"):
        load_obj(path)


def test_texture_not_an_image(tmp_path):
    (tmp_path / "cow_texture.png").write_bytes(b"not a png")
    write(tmp_path / "cow.mtl", "newmtl material_1\nmap_Kd cow_texture.png\n")
    path = write(tmp_path / "cow.obj", "mtllib cow.mtl\n" + CUBE_V + "vt 0 0\nusemtl material_1\nf 1/1 2/1 3/1\n")
    with pytest.raises(ValueError, match=r"cow\.mtl line 2: cannot read texture image 'cow_texture\.png'"):
        load_obj(path)
