"""The ``point_cloud.ply`` of the original 3D Gaussian splatting code (Kerbl et al., 2023), read
and written without plyfile, so a scene trained by the usual tools loads here and ours loads there.

One PLY element ``vertex`` with N rows, one float32 property per number, in this order::

    x y z                       means (N, 3), world
    nx ny nz                    normals (unused by 3DGS; zeros)
    f_dc_0 f_dc_1 f_dc_2        SH degree-0 coefficient of R, G, B: sh_dc (N, 3)
    f_rest_0 ... f_rest_{3(K-1)-1}
                                the other K - 1 = (d+1)^2 - 1 coefficients, CHANNEL-MAJOR:
                                f_rest_{c (K-1) + j} = sh_rest[:, j, c] (all of R, then G, then B)
    opacity                     opacity logit (sigmoid -> opacity): opacity_logits (N,)
    scale_0 scale_1 scale_2     log scales (exp -> standard deviations): log_scales (N, 3)
    rot_0 rot_1 rot_2 rot_3     quaternion w, x, y, z, not normalised: quats (N, 4)

The writer produces exactly that (``format binary_little_endian 1.0``). The reader parses the
header itself (a numpy structured dtype per element) and reads properties by name, in any order,
from ascii or binary (little or big endian) files, any scalar type (float, double, int, ...);
extra properties (and extra elements made of scalar properties) are ignored. The SH degree
follows from the number of ``f_rest_*`` properties: 0, 9, 24, 45 -> degree 0, 1, 2, 3.

Example:
    >>> n = 5
    >>> path = write_gaussian_ply("/tmp/gaussians_demo.ply", torch.zeros(n, 3), torch.zeros(n, 3),
    ...                           torch.zeros(n, 3, 3), torch.zeros(n), torch.zeros(n, 3), torch.ones(n, 4))
    >>> g = read_gaussian_ply(path)
    >>> g["sh_degree"], tuple(g["sh_rest"].shape), tuple(g["quats"].shape)
    (1, (5, 3, 3), (5, 4))
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from lib.fileio import atomic_write

SH_REST_COUNTS = {0: 0, 9: 1, 24: 2, 45: 3}  # number of f_rest_* properties -> SH degree
_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
          "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
          "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_MAX_HEADER = 1 << 20


def property_names(sh_degree: int) -> list[str]:
    """The property names of the original 3DGS file for ``sh_degree`` (0-3), in file order."""
    if sh_degree not in SH_REST_COUNTS.values():
        raise ValueError(f"sh_degree must be 0, 1, 2 or 3, got {sh_degree!r}")
    n_rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(n_rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


# ----------------------------------------------------------------------------- writing
def _array(x, name: str, shape: tuple) -> np.ndarray:
    """``x`` as a float32 numpy array of ``shape`` (None = any size, shared N checked by caller)."""
    a = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"write_gaussian_ply: `{name}` must be {want}, got {tuple(a.shape)}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"write_gaussian_ply: `{name}` contains NaN or inf; expected finite numbers")
    return a


def write_gaussian_ply(path, means, sh_dc, sh_rest, opacity_logits, log_scales, quats, normals=None) -> Path:
    """Write Gaussians as the original 3DGS ``point_cloud.ply`` (module docstring), atomically.

    Args:
        path: the ``.ply`` file (parent folders are created).
        means: (N, 3) float, world. sh_dc: (N, 3) degree-0 SH coefficient per channel.
        sh_rest: (N, K-1, 3) the higher SH coefficients, K = (d+1)^2 for d in 0..3 (so K-1 in
            {0, 3, 8, 15}; (N, 0, 3) for degree 0), stored channel-major.
        opacity_logits: (N,) pre-sigmoid opacities. log_scales: (N, 3) pre-exp scales.
        quats: (N, 4) raw wxyz quaternions. normals: (N, 3) or None (zeros, as 3DGS writes).
        Tensors or arrays; written as float32.
    Returns:
        ``Path(path)``.
    Raises:
        ValueError: a wrong shape, N differing between arguments, NaN/inf (naming the argument).
    """
    means = _array(means, "means", (None, 3))
    n = len(means)
    arrays = {"means": means, "sh_dc": _array(sh_dc, "sh_dc", (n, 3)),
              "sh_rest": _array(sh_rest, "sh_rest", (n, None, 3)),
              "opacity_logits": _array(opacity_logits, "opacity_logits", (n,)),
              "log_scales": _array(log_scales, "log_scales", (n, 3)), "quats": _array(quats, "quats", (n, 4)),
              "normals": np.zeros((n, 3), np.float32) if normals is None else _array(normals, "normals", (n, 3))}
    rest = arrays["sh_rest"].shape[1]
    if 3 * rest not in SH_REST_COUNTS:
        raise ValueError(f"write_gaussian_ply: `sh_rest` must be (N, K-1, 3) with K-1 in (0, 3, 8, 15) "
                         f"(SH degree 0-3), got {tuple(arrays['sh_rest'].shape)}")
    degree = SH_REST_COUNTS[3 * rest]
    columns = [arrays["means"], arrays["normals"], arrays["sh_dc"],
               arrays["sh_rest"].transpose(0, 2, 1).reshape(n, 3 * rest),  # channel-major
               arrays["opacity_logits"][:, None], arrays["log_scales"], arrays["quats"]]
    data = np.ascontiguousarray(np.concatenate(columns, 1), dtype="<f4")
    names = property_names(degree)
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n"
    header += "".join(f"property float {name}\n" for name in names) + "end_header\n"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(header.encode("ascii"))
            f.write(data.tobytes())

    return atomic_write(path, write)


# ----------------------------------------------------------------------------- reading
def _parse_ply_header(path: Path, raw: bytes):
    """(format, elements [(name, count, [(prop, numpy type)])], offset of the body)."""
    end = re.search(rb"end_header[ \t]*\r?\n", raw[:_MAX_HEADER])
    if not raw.startswith(b"ply") or end is None:
        raise ValueError(f"{path}: not a PLY file (expected a 'ply' ... 'end_header' header)")
    lines = raw[:end.start()].decode("ascii", errors="replace").splitlines()[1:]
    fmt, elements = None, []
    for number, line in enumerate(lines, start=2):
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and words[1] in _FORMATS:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements and len(words) == 3 and words[1] in _TYPES:
            elements[-1][2].append((words[2], _TYPES[words[1]]))
        elif words[0] == "property" and elements and len(words) == 5 and words[1] == "list":
            elements[-1][2].append((words[4], None))  # a list property: variable row size
        else:
            raise ValueError(f"{path}: header line {number} {line!r} is not a PLY header line "
                             "(expected format/element/property/comment)")
    if fmt is None:
        raise ValueError(f"{path}: the header has no 'format ascii|binary_little_endian|binary_big_endian 1.0'")
    return fmt, elements, end.end()


def _read_vertex(path: Path):
    """The ``vertex`` element as a numpy structured array (fields = property names)."""
    raw = path.read_bytes()
    fmt, elements, offset = _parse_ply_header(path, raw)
    names = [e[0] for e in elements]
    if "vertex" not in names:
        raise ValueError(f"{path}: no 'element vertex' in the header (elements: {names})")
    index = names.index("vertex")
    props = elements[index][2]
    if any(t is None for _, t in props):
        raise ValueError(f"{path}: element vertex has a list property; expected scalar properties only")
    count = elements[index][1]
    if fmt == "ascii":
        body = [line for line in raw[offset:].decode("ascii", errors="replace").splitlines() if line.strip()]
        skip = sum(e[1] for e in elements[:index])
        rows = [line.split()[:len(props)] for line in body[skip:skip + count]]
        short = [i for i, r in enumerate(rows) if len(r) < len(props)]
        if len(rows) < count or short:
            raise ValueError(f"{path}: expected {count} vertex lines of {len(props)} numbers, got "
                             f"{len(rows)} lines" + (f" (vertex {short[0]} is short)" if short else ""))
        try:
            values = np.array(rows, dtype=np.float64).reshape(count, len(props))
        except ValueError as err:
            raise ValueError(f"{path}: a vertex line holds something other than numbers ({err})") from None
        out = np.zeros(count, np.dtype([(name, "f8") for name, _ in props]))
        for i, (name, _) in enumerate(props):
            out[name] = values[:, i]
        return out
    for name, n, p in elements[:index]:
        if any(t is None for _, t in p):
            raise ValueError(f"{path}: element {name!r} before vertex has a list property; not supported")
        offset += n * np.dtype([(q, _FORMATS[fmt] + t) for q, t in p]).itemsize
    dtype = np.dtype([(name, _FORMATS[fmt] + t) for name, t in props])
    if len(raw) < offset + count * dtype.itemsize:
        raise ValueError(f"{path}: file too short: {count} vertices of {dtype.itemsize} bytes need "
                         f"{offset + count * dtype.itemsize} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset)


def read_gaussian_ply(path) -> dict:
    """Read a 3DGS ``point_cloud.ply`` (module docstring).

    Args:
        path: the ``.ply`` file.
    Returns:
        dict of float32 tensors: means (N, 3), sh_dc (N, 3), sh_rest (N, K-1, 3), opacity_logits
        (N,), log_scales (N, 3), quats (N, 4) raw wxyz, normals (N, 3) (zeros if the file has
        none); and sh_degree (int, 0-3, from the number of f_rest_* properties).
    Raises:
        ValueError: not a PLY file, missing properties (all named), an f_rest count other than
            0/9/24/45, NaN or inf values (naming the property), a truncated body.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected a 3DGS point_cloud.ply")
    vertex = _read_vertex(path)
    have = set(vertex.dtype.names or ())
    rest_names = sorted((n for n in have if re.fullmatch(r"f_rest_\d+", n)), key=lambda n: int(n[7:]))
    if len(rest_names) not in SH_REST_COUNTS:
        raise ValueError(f"{path}: {len(rest_names)} f_rest_* properties; expected 0, 9, 24 or 45 "
                         "(SH degree 0, 1, 2 or 3)")
    degree = SH_REST_COUNTS[len(rest_names)]
    need = [n for n in property_names(degree) if n not in ("nx", "ny", "nz")]
    missing = [n for n in need if n not in have]
    if missing:
        raise ValueError(f"{path}: missing properties {missing}; a 3DGS .ply needs {need[:9]} ... "
                         f"{need[-8:]} (f_rest_0..{len(rest_names) - 1} for degree {degree})")

    def columns(names):
        out = np.zeros((len(vertex), len(names)), np.float32)
        for i, name in enumerate(names):
            if name not in have:
                continue  # normals only
            col = np.asarray(vertex[name], dtype=np.float64)
            if not np.isfinite(col).all():
                row = int(np.flatnonzero(~np.isfinite(col))[0])
                raise ValueError(f"{path}: property {name!r} has a non-finite value ({col[row]}) at vertex "
                                 f"{row}; expected finite numbers")
            out[:, i] = col
        return torch.from_numpy(out)

    n = len(vertex)
    rest = columns(rest_names).reshape(n, 3, len(rest_names) // 3).transpose(1, 2).contiguous()
    return {"means": columns(["x", "y", "z"]), "sh_dc": columns(["f_dc_0", "f_dc_1", "f_dc_2"]),
            "sh_rest": rest, "opacity_logits": columns(["opacity"])[:, 0],
            "log_scales": columns(["scale_0", "scale_1", "scale_2"]),
            "quats": columns(["rot_0", "rot_1", "rot_2", "rot_3"]),
            "normals": columns(["nx", "ny", "nz"]), "sh_degree": degree}

