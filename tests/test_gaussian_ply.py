"""The original 3DGS point_cloud.ply: round trip, byte layout, channel-major SH, ascii and
big-endian input, and the errors."""
import struct

import numpy as np
import pytest
import torch

from lib.data.gaussian_ply import SH_REST_COUNTS, property_names, read_gaussian_ply, write_gaussian_ply


def _gaussians(n, degree, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return {"means": torch.randn(n, 3, generator=g), "sh_dc": torch.randn(n, 3, generator=g),
            "sh_rest": torch.randn(n, k - 1, 3, generator=g), "opacity_logits": torch.randn(n, generator=g),
            "log_scales": torch.randn(n, 3, generator=g), "quats": torch.randn(n, 4, generator=g)}


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 17])
def test_round_trip(tmp_path, degree, n):
    g = _gaussians(n, degree, seed=degree)
    normals = torch.randn(n, 3)
    path = write_gaussian_ply(tmp_path / "sub" / "point_cloud.ply", **g, normals=normals)
    back = read_gaussian_ply(path)
    assert back["sh_degree"] == degree
    for key, value in g.items():
        assert back[key].dtype == torch.float32 and back[key].shape == value.shape, key
        torch.testing.assert_close(back[key], value, rtol=0, atol=0)
    torch.testing.assert_close(back["normals"], normals, rtol=0, atol=0)
    assert not list(tmp_path.joinpath("sub").glob(".*tmp*")), "the atomic write left a temporary file"


def test_byte_layout_matches_the_original_format(tmp_path):
    """Header text exactly as 3DGS (plyfile) writes it; float32 little-endian rows in that order."""
    n, degree = 2, 1
    g = _gaussians(n, degree)
    path = write_gaussian_ply(tmp_path / "g.ply", **g)
    raw = path.read_bytes()
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(9)] \
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert property_names(degree) == names and len(names) == 26
    header = ("ply\nformat binary_little_endian 1.0\nelement vertex 2\n"
              + "".join(f"property float {p}\n" for p in names) + "end_header\n").encode()
    assert raw.startswith(header)
    body = raw[len(header):]
    assert len(body) == n * len(names) * 4
    row = 1
    value = lambda name: struct.unpack_from("<f", body, (row * len(names) + names.index(name)) * 4)[0]  # noqa: E731
    assert value("y") == g["means"][row, 1].item()
    assert value("nx") == 0.0
    assert value("f_dc_2") == g["sh_dc"][row, 2].item()
    assert value("opacity") == g["opacity_logits"][row].item()
    assert value("scale_1") == g["log_scales"][row, 1].item()
    assert value("rot_0") == g["quats"][row, 0].item() and value("rot_3") == g["quats"][row, 3].item()
    # channel-major: f_rest index = channel * (K - 1) + coefficient
    for channel in range(3):
        for coef in range(3):
            assert value(f"f_rest_{channel * 3 + coef}") == g["sh_rest"][row, coef, channel].item()


def test_channel_major_known_coefficient(tmp_path):
    """Degree 3 (K - 1 = 15): the 5th higher coefficient of green is f_rest_{1 * 15 + 4} = f_rest_19."""
    n = 3
    sh_rest = torch.zeros(n, 15, 3)
    sh_rest[1, 4, 1] = 7.0
    zeros = torch.zeros(n, 3)
    path = write_gaussian_ply(tmp_path / "g.ply", zeros, zeros, sh_rest, torch.zeros(n), zeros, torch.ones(n, 4))
    raw = path.read_bytes()
    body = raw[raw.index(b"end_header\n") + len(b"end_header\n"):]
    table = np.frombuffer(body, "<f4").reshape(n, 62)
    col = property_names(3).index("f_rest_19")
    assert table[1, col] == 7.0 and np.count_nonzero(table[:, 9:54]) == 1
    assert read_gaussian_ply(path)["sh_rest"][1, 4, 1].item() == 7.0


def test_hand_written_ascii_file_any_order_extra_properties(tmp_path):
    """ascii, double and float mixed, properties shuffled, an extra property and an extra element."""
    names = property_names(0)
    order = names[::-1] + ["confidence"]
    text = ["ply", "format ascii 1.0", "comment written by hand", "element camera 1", "property float fx",
            "element vertex 2"]
    text += [f"property {'double' if i % 2 else 'float'} {name}" for i, name in enumerate(order)]
    text += ["end_header", "500.0"]
    rows = [{name: float(i * 100 + j) for j, name in enumerate(names)} for i in range(2)]
    text += [" ".join(str(r[name]) if name in r else "0.5" for name in order) for r in rows]
    path = tmp_path / "hand.ply"
    path.write_text("\n".join(text) + "\n")
    g = read_gaussian_ply(path)
    assert g["sh_degree"] == 0 and g["sh_rest"].shape == (2, 0, 3)
    assert g["means"].tolist() == [[0.0, 1.0, 2.0], [100.0, 101.0, 102.0]]
    assert g["normals"][1].tolist() == [103.0, 104.0, 105.0]
    assert g["sh_dc"][0].tolist() == [6.0, 7.0, 8.0]
    assert g["opacity_logits"].tolist() == [9.0, 109.0]
    assert g["log_scales"][1].tolist() == [110.0, 111.0, 112.0]
    assert g["quats"][0].tolist() == [13.0, 14.0, 15.0, 16.0]


def test_big_endian_double_file_without_normals(tmp_path):
    g = _gaussians(4, 2, seed=3)
    names = [p for p in property_names(2) if p not in ("nx", "ny", "nz")]
    rest = g["sh_rest"].transpose(1, 2).reshape(4, -1)
    table = torch.cat([g["means"], g["sh_dc"], rest, g["opacity_logits"][:, None], g["log_scales"], g["quats"]], 1)
    header = "ply\nformat binary_big_endian 1.0\nelement vertex 4\n" + "".join(
        f"property double {p}\n" for p in names) + "end_header\n"
    path = tmp_path / "be.ply"
    path.write_bytes(header.encode() + table.double().numpy().astype(">f8").tobytes())
    back = read_gaussian_ply(path)
    assert back["sh_degree"] == 2 and back["normals"].abs().sum() == 0
    for key, value in g.items():
        torch.testing.assert_close(back[key], value, rtol=1e-6, atol=1e-6)


def _minimal_file(tmp_path, names, values=None, name="bad.ply"):
    values = np.zeros((1, len(names)), "<f4") if values is None else values
    header = "ply\nformat binary_little_endian 1.0\nelement vertex 1\n" + "".join(
        f"property float {p}\n" for p in names) + "end_header\n"
    path = tmp_path / name
    path.write_bytes(header.encode() + values.astype("<f4").tobytes())
    return path


def test_missing_properties_are_named(tmp_path):
    names = [p for p in property_names(1) if p not in ("opacity", "rot_2")]
    path = _minimal_file(tmp_path, names)
    with pytest.raises(ValueError, match=r"bad\.ply.*missing properties \['opacity', 'rot_2'\]"):
        read_gaussian_ply(path)


@pytest.mark.parametrize("n_rest", [3, 10, 44, 48])
def test_wrong_f_rest_count(tmp_path, n_rest):
    assert n_rest not in SH_REST_COUNTS
    names = property_names(0) + [f"f_rest_{i}" for i in range(n_rest)]
    with pytest.raises(ValueError, match=rf"bad\.ply: {n_rest} f_rest_\* properties; expected 0, 9, 24 or 45"):
        read_gaussian_ply(_minimal_file(tmp_path, names))


def test_nan_is_named(tmp_path):
    names = property_names(0)
    values = np.zeros((1, len(names)), "<f4")
    values[0, names.index("scale_1")] = np.nan
    with pytest.raises(ValueError, match=r"bad\.ply: property 'scale_1' has a non-finite value"):
        read_gaussian_ply(_minimal_file(tmp_path, names, values))


def test_truncated_and_not_ply(tmp_path):
    path = write_gaussian_ply(tmp_path / "t.ply", **_gaussians(3, 0))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"t\.ply: file too short"):
        read_gaussian_ply(path)
    other = tmp_path / "x.ply"
    other.write_text("hello\n")
    with pytest.raises(ValueError, match=r"x\.ply: not a PLY file"):
        read_gaussian_ply(other)
    with pytest.raises(FileNotFoundError, match="nothing.ply"):
        read_gaussian_ply(tmp_path / "nothing.ply")


def test_writer_errors(tmp_path):
    g = _gaussians(3, 1)
    with pytest.raises(ValueError, match=r"`quats` must be \(3, 4\), got \(2, 4\)"):
        write_gaussian_ply(tmp_path / "a.ply", **{**g, "quats": g["quats"][:2]})
    with pytest.raises(ValueError, match=r"`sh_rest` must be \(N, K-1, 3\) with K-1 in"):
        write_gaussian_ply(tmp_path / "a.ply", **{**g, "sh_rest": torch.zeros(3, 5, 3)})
    bad = g["log_scales"].clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="`log_scales` contains NaN"):
        write_gaussian_ply(tmp_path / "a.ply", **{**g, "log_scales": bad})
    assert not (tmp_path / "a.ply").exists()
