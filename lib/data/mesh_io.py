"""Wavefront OBJ files in and out, without PyTorch3D.

``load_obj`` reads the real PyTorch3D cow (``cow.obj`` + ``cow.mtl`` + ``cow_texture.png``) and
the procedural stand-ins that ``save_obj`` writes in the same layout, into a
:class:`lib.mesh.TriMesh`. Every bad input raises an error that names the file and, where there
is one, the line::

    ValueError: cow.obj line 12: expected 'v x y z' with 3 numbers, got 'v 1.0 abc'

Example (CPU)::

    >>> from lib.data.toy_animal import write_toy_animal
    >>> from lib.data.mesh_io import load_obj
    >>> mesh = load_obj(write_toy_animal("/tmp/toy"))
    >>> mesh.texture.shape
    torch.Size([256, 256, 3])

Only torch and numpy are imported here; Pillow is imported when a texture is read or written.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from lib.fileio import atomic_write
from lib.images import to_uint8
from lib.mesh import TriMesh

PathLike = Union[str, os.PathLike]

# map_Kd options and how many arguments they take (-o/-s/-t take 1 to 3 numbers)
_MAP_OPTIONS = {"-blendu": 1, "-blendv": 1, "-bm": 1, "-boost": 1, "-cc": 1, "-clamp": 1,
                "-imfchan": 1, "-mm": 2, "-texres": 1, "-o": 3, "-s": 3, "-t": 3}
_LABELS_HEADER = "# label_names:"


# ------------------------------------------------------------------------------ reading
def load_obj(path: PathLike, load_textures: bool = True) -> TriMesh:
    """Read a Wavefront .obj file (and its .mtl and texture image) into a ``TriMesh``.

    Understood statements:
        ``v x y z [w]`` and ``v x y z r g b`` (vertex colours; 0-255 values are rescaled, and
        vertices without a colour in a coloured file are white); ``vt u [v [w]]``; ``vn x y z``
        (checked, then ignored: normals are recomputed from faces); every number must be finite; ``f`` with corners ``v``, ``v/vt``,
        ``v//vn`` or ``v/vt/vn``, 1-based or negative (relative) indices, polygons
        fan-triangulated; ``g`` / ``o`` groups (become ``face_labels``, label = order of first
        use, or the order in a ``# label_names:`` header written by :func:`save_obj`);
        ``mtllib`` / ``usemtl`` with ``map_Kd`` textures. Other statements (``s``, ``l``,
        ``p``, ...) are skipped.

    Texture: one texture image per mesh. If several materials have a ``map_Kd`` the first one
    named by a ``usemtl`` line is used (else the first defined in the .mtl), and every face
    samples that image. Faces without ``vt`` in a file that has some get one extra texture
    coordinate (0, 0).

    Args:
        path: the .obj file; the .mtl and image paths in it are relative to its folder.
        load_textures: read the .mtl files and the texture image. False: geometry, texture
            coordinates and groups only; the ``mtllib`` files are then neither read nor needed.

    Returns:
        TriMesh with verts (V, 3) float32, faces (F, 3) int64, and when present vert_colors
        (V, 3), verts_uvs (T, 2) + faces_uvs (F, 3), texture (H, W, 3) float32 in [0, 1]
        (row 0 at the top), face_labels (F,) + label_names.

    Raises:
        FileNotFoundError: the .obj, a referenced .mtl or a referenced texture is missing (the
            latter two only with ``load_textures``).
        ValueError: a malformed line, a NaN or infinite number, an index out of range, no faces,
            a texture that is not an (H, W, 3|4) image. The message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"OBJ file {str(path)!r} {what} (resolved to {path.absolute()}). Check the path; "
            f"relative paths are read from the working directory {os.getcwd()}")
    name = path.name
    text = path.read_text(encoding="utf-8", errors="replace")

    verts, colors, uvs = [], [], []
    n_colored = 0
    fv, ft, f_line, f_group = [], [], [], []  # per triangle: vertex ids, uv ids (-1 = none), line, group
    groups: dict = {}
    header_names = None
    cur_group, has_groups = "default", False
    mtllibs, used_mtls = [], []

    def err(lineno, msg):
        return ValueError(f"{name} line {lineno}: {msg}")

    def numbers(tok, lineno, raw, expected):
        try:
            vals = [float(x) for x in tok]
        except ValueError:
            raise err(lineno, f"expected {expected}, got {raw.strip()!r}") from None
        bad = [x for x, v in zip(tok, vals) if not math.isfinite(v)]
        if bad:
            raise err(lineno, f"expected finite numbers, got {bad[0]!r} in {raw.strip()!r}")
        return vals

    def index(s, count, lineno, raw, what):
        try:
            i = int(s)
        except ValueError:
            raise err(lineno, f"bad {what} index {s!r} in {raw.strip()!r}; expected an integer") from None
        if i == 0:
            raise err(lineno, f"{what} index 0 in {raw.strip()!r} is invalid: OBJ indices start at 1")
        if i < 0:  # relative to the elements read so far
            if count + i < 0:
                raise err(lineno, f"{what} index {i} is out of range: only {count} {what} "
                                  f"entries precede this line")
            return count + i
        return i - 1

    lines = text.replace("\\\r\n", " ").replace("\\\n", " ").splitlines()
    for lineno, raw in enumerate(lines, 1):
        if raw.startswith(_LABELS_HEADER):
            header_names = raw[len(_LABELS_HEADER):].split()
            continue
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tok = line.split()
        key = tok[0]
        if key == "v":
            if len(tok) - 1 not in (3, 4, 6):
                raise err(lineno, f"expected 'v x y z' with 3 numbers (or 'v x y z r g b' with 6), got {raw.strip()!r}")
            vals = numbers(tok[1:], lineno, raw, "'v x y z' with 3 numbers")
            verts.append(vals[:3])
            if len(vals) == 6:
                colors.append(vals[3:6])
                n_colored += 1
            else:
                colors.append(None)
        elif key == "vt":
            if not 2 <= len(tok) <= 4:
                raise err(lineno, f"expected 'vt u v' with 2 numbers, got {raw.strip()!r}")
            vals = numbers(tok[1:], lineno, raw, "'vt u v' with 2 numbers")
            uvs.append((vals + [0.0])[:2])
        elif key == "vn":  # checked, then ignored (normals are recomputed from faces)
            if len(tok) != 4:
                raise err(lineno, f"expected 'vn x y z' with 3 numbers, got {raw.strip()!r}")
            numbers(tok[1:], lineno, raw, "'vn x y z' with 3 numbers")
        elif key == "f":
            if len(tok) < 4:
                raise err(lineno, f"a face needs at least 3 corners, got {raw.strip()!r}")
            cv, ct = [], []
            for corner in tok[1:]:
                parts = corner.split("/")
                if len(parts) > 3 or parts[0] == "":
                    raise err(lineno, f"bad face corner {corner!r} in {raw.strip()!r}; "
                                      f"expected v, v/vt, v//vn or v/vt/vn")
                cv.append(index(parts[0], len(verts), lineno, raw, "vertex"))
                has_t = len(parts) > 1 and parts[1] != ""
                ct.append(index(parts[1], len(uvs), lineno, raw, "texture coordinate") if has_t else -1)
            if len(set(t >= 0 for t in ct)) > 1:
                raise err(lineno, f"face {raw.strip()!r} mixes corners with and without texture coordinates")
            if cur_group not in groups:
                groups[cur_group] = len(groups)
            for k in range(1, len(cv) - 1):  # fan triangulation
                fv.append((cv[0], cv[k], cv[k + 1]))
                ft.append((ct[0], ct[k], ct[k + 1]))
                f_line.append(lineno)
                f_group.append(groups[cur_group])
        elif key in ("g", "o"):
            cur_group = " ".join(tok[1:]) or "default"
            has_groups = True
        elif key == "mtllib":
            if len(tok) < 2:
                raise err(lineno, f"expected 'mtllib file.mtl', got {raw.strip()!r}")
            mtllibs.append((" ".join(tok[1:]), lineno))
        elif key == "usemtl":
            mat = " ".join(tok[1:])
            if mat not in used_mtls:
                used_mtls.append(mat)
        # s, l, p, curves and other statements are skipped

    if not fv:
        raise ValueError(f"{name}: no faces ('f' lines) in {path}; a mesh needs at least one triangle "
                         f"(read {len(verts)} vertices)")
    faces = torch.tensor(fv, dtype=torch.int64)
    bad = (faces >= len(verts)).any(1).nonzero()
    if len(bad):
        k = int(bad[0])
        i = int(faces[k].max())
        raise err(f_line[k], f"vertex index {i + 1} is out of range: the file has {len(verts)} vertices")
    verts_t = torch.tensor(verts, dtype=torch.float32)

    vert_colors = None
    if n_colored:
        c = np.array([cc if cc is not None else [np.nan] * 3 for cc in colors], dtype=np.float32)
        if np.nanmax(c) > 1.0:
            c = c / 255.0
        c = np.nan_to_num(c, nan=1.0)
        vert_colors = torch.from_numpy(np.clip(c, 0.0, 1.0))

    verts_uvs = faces_uvs = None
    ftt = torch.tensor(ft, dtype=torch.int64)
    if (ftt >= 0).any():
        bad = (ftt >= len(uvs)).any(1).nonzero()
        if len(bad):
            k = int(bad[0])
            raise err(f_line[k], f"texture coordinate index {int(ftt[k].max()) + 1} is out of range: "
                                 f"the file has {len(uvs)} 'vt' lines")
        uv_list = list(uvs)
        if (ftt < 0).any():  # faces without vt point at one extra (0, 0)
            ftt[ftt < 0] = len(uv_list)
            uv_list.append([0.0, 0.0])
        verts_uvs, faces_uvs = torch.tensor(uv_list, dtype=torch.float32), ftt

    texture = _load_texture(path, mtllibs, used_mtls) if load_textures else None
    if texture is not None and verts_uvs is None:
        warnings.warn(f"{name}: the material has a texture but the faces have no texture "
                      f"coordinates ('f v/vt'); the texture is dropped")
        texture = None

    face_labels = label_names = None
    if has_groups:
        names = list(header_names or [])
        remap = []
        for g in groups:  # insertion order == label index used above
            if g not in names:
                names.append(g)
            remap.append(names.index(g))
        face_labels = torch.tensor(remap, dtype=torch.int64)[torch.tensor(f_group)]
        label_names = names

    return TriMesh(verts=verts_t, faces=faces, vert_colors=vert_colors, verts_uvs=verts_uvs,
                   faces_uvs=faces_uvs, texture=texture, face_labels=face_labels, label_names=label_names)


def _load_texture(obj_path: Path, mtllibs, used_mtls) -> Optional[torch.Tensor]:
    """The (H, W, 3) texture of the first textured material, or None."""
    maps = {}  # material -> (image path, mtl file name, line)
    order = []
    for fname, lineno in mtllibs:
        mtl_path = obj_path.parent / fname.replace("\\", "/")
        if not mtl_path.is_file():
            raise FileNotFoundError(f"{obj_path.name} line {lineno}: material library {fname!r} "
                                    f"not found (looked for {mtl_path})")
        cur = None
        for ln, raw in enumerate(mtl_path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            tok = raw.split("#", 1)[0].split()
            if not tok:
                continue
            if tok[0] == "newmtl":
                cur = " ".join(tok[1:])
                order.append(cur)
            elif tok[0] == "map_Kd":
                args = tok[1:]
                while args and args[0] in _MAP_OPTIONS:
                    n = _MAP_OPTIONS[args[0]]
                    args = args[1:]
                    for _ in range(n):  # numeric arguments (-o/-s/-t may have fewer than 3)
                        if args and (n != 3 or _is_number(args[0])):
                            args = args[1:]
                if not args:
                    raise ValueError(f"{mtl_path.name} line {ln}: expected 'map_Kd image.png', got {raw.strip()!r}")
                if cur is not None and cur not in maps:
                    maps[cur] = (mtl_path.parent / " ".join(args).replace("\\", "/"), mtl_path.name, ln)
    textured = [m for m in used_mtls if m in maps] or [m for m in order if m in maps]
    if not textured:
        return None
    img_path, mtl_name, ln = maps[textured[0]]
    if not img_path.is_file():
        raise FileNotFoundError(f"{mtl_name} line {ln}: texture image {img_path.name!r} not found "
                                f"(looked for {img_path})")
    return read_texture(img_path, where=f"{mtl_name} line {ln}")


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_texture(path: PathLike, where: str = "") -> torch.Tensor:
    """Read an RGB or RGBA image (alpha dropped) as (H, W, 3) float32 in [0, 1], row 0 at the top.

    Raises ValueError naming the file when the image is not (H, W, 3) or (H, W, 4).
    """
    from PIL import Image  # lazy

    path = Path(path)
    prefix = f"{where}: " if where else ""
    try:
        with Image.open(path) as im:
            if im.mode == "P":  # palette images are RGB(A) in disguise
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            img = np.asarray(im)
    except Exception as e:  # noqa: BLE001 - any decoder failure means "not an image we can use"
        raise ValueError(f"{prefix}cannot read texture image {path.name!r} ({path}): {e}") from e
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"{prefix}texture image {path.name!r} must be RGB or RGBA, shape (H, W, 3) or "
                         f"(H, W, 4), got {tuple(img.shape)}")
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.0
    else:
        img = img.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(np.clip(img[..., :3], 0.0, 1.0)))


# ------------------------------------------------------------------------------ writing
def save_obj(path: PathLike, mesh: TriMesh, material_name: str = "material_0") -> Path:
    """Write ``mesh`` as a Wavefront .obj, plus ``<stem>.mtl`` and ``<stem>_texture.png`` when it
    has a texture (the layout of the PyTorch3D cow).

    Vertex colours go into ``v x y z r g b`` lines, texture coordinates into ``vt`` lines, and
    face labels into ``g <name>`` groups (names with spaces get underscores) with a
    ``# label_names:`` header that keeps the label order and unused labels on re-reading.
    Each file is written to a temporary file in the target folder and moved into place with
    ``os.replace``, so readers never see half a file; the .obj is written last.

    Args:
        path: the .obj path; missing parent folders are created.
        mesh: the TriMesh to write.
        material_name: material name used in the .mtl.

    Returns:
        The .obj path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    V = mesh.num_verts
    out = [f"# written by lib.data.mesh_io.save_obj: {V} vertices, {mesh.num_faces} faces"]

    if mesh.texture is not None:
        tex_name, mtl_name = f"{path.stem}_texture.png", f"{path.stem}.mtl"
        img = to_uint8(mesh.texture.float())
        _atomic_write(path.parent / tex_name, lambda f: _write_png(f, img), binary=True)
        mtl = (f"# written by lib.data.mesh_io.save_obj\nnewmtl {material_name}\n"
               "Ka 1.000 1.000 1.000\nKd 1.000 1.000 1.000\nKs 0.000 0.000 0.000\nNs 10.0\nillum 2\n"
               f"map_Kd {tex_name}\n")
        _atomic_write(path.parent / mtl_name, lambda f: f.write(mtl))
        out.append(f"mtllib {mtl_name}")

    names = None
    if mesh.face_labels is not None:
        n_lab = max(int(mesh.face_labels.max()) + 1, len(mesh.label_names or []))
        given = list(mesh.label_names or [])
        names = ["_".join(str(given[i]).split()) if i < len(given) and str(given[i]).strip() else f"label_{i}"
                 for i in range(n_lab)]
        out.append(f"{_LABELS_HEADER} {' '.join(names)}")

    v = mesh.verts.detach().cpu().double().numpy()
    if mesh.vert_colors is not None:
        c = mesh.vert_colors.detach().cpu().double().numpy()
        out += [f"v {a:.9g} {b:.9g} {d:.9g} {r:.6g} {g:.6g} {bb:.6g}" for (a, b, d), (r, g, bb) in zip(v, c)]
    else:
        out += [f"v {a:.9g} {b:.9g} {d:.9g}" for a, b, d in v]
    if mesh.verts_uvs is not None:
        out += [f"vt {u:.9g} {w:.9g}" for u, w in mesh.verts_uvs.detach().cpu().double().numpy()]
    if mesh.texture is not None:
        out.append(f"usemtl {material_name}")

    f = mesh.faces.detach().cpu().numpy() + 1
    if mesh.faces_uvs is not None:
        t = mesh.faces_uvs.detach().cpu().numpy() + 1
        rows = [f"f {a}/{x} {b}/{y} {c}/{z}" for (a, b, c), (x, y, z) in zip(f, t)]
    else:
        rows = [f"f {a} {b} {c}" for a, b, c in f]
    if names is not None:
        labels = mesh.face_labels.detach().cpu().tolist()
        prev = None
        for lab, row in zip(labels, rows):
            if lab != prev:
                out.append(f"g {names[lab]}")
                prev = lab
            out.append(row)
    else:
        out += rows
    text = "\n".join(out) + "\n"
    _atomic_write(path, lambda fh: fh.write(text))
    return path


def _write_png(fh, img: np.ndarray) -> None:
    from PIL import Image  # lazy

    Image.fromarray(img).save(fh, format="PNG")


def _atomic_write(path: Path, write, binary: bool = False) -> None:
    """Call ``write(file)`` on an open temporary file beside ``path``, then move it onto ``path``."""
    def to(tmp: Path) -> None:
        with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
            write(fh)

    atomic_write(path, to)
