"""The ``.binvox`` voxel file format (Patrick Min's; spec: https://www.patrickmin.com/binvox/binvox.html).

Grids are ``(D, D, D)`` bool tensors indexed ``[ix, iy, iz]`` along world x, y, z, the
convention of :mod:`lib.voxels`. A file is an ASCII header ::

    #binvox 1
    dim D D D
    translate tx ty tz
    scale s
    data

then run-length-encoded bytes, pairs ``(value, count)`` with count 1-255. The voxel with index
coordinates ``(i, j, k)`` (i along x, j along y, k along z) is at position
``i * D * D + k * D + j`` of the decoded stream: y runs fastest, then z, then x. So the stream
reshaped to ``(D, D, D)`` is indexed ``[ix, iz, iy]``, and ``.transpose(1, 2)`` gives our
``[ix, iy, iz]``. Its centre in world units is ``translate + scale * (index + 0.5) / D``, i.e.
``bounds = (translate, translate + scale)`` per axis (the ``bounds`` of ``lib.voxels``). Only
cubic grids (the spec says the three dims "should all be equal") are read and written; others
raise ``ValueError``.

Example (CPU)::

    >>> occ = torch.zeros(8, 8, 8, dtype=torch.bool)
    >>> occ[2:5, 1:3, 4] = True
    >>> path = write_binvox("/tmp/demo.binvox", occ, translate=(-0.5, -0.5, -0.5), scale=1.0)
    >>> grid, translate, scale = read_binvox(path)
    >>> bool((grid == occ).all()), translate.tolist(), scale
    (True, [-0.5, -0.5, -0.5], 1.0)
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import torch

from lib.fileio import atomic_write


def write_binvox(path, voxels, translate=(-0.5, -0.5, -0.5), scale: float = 1.0) -> Path:
    """Write an (R, R, R) occupancy grid ``[ix, iy, iz]`` as a ``.binvox`` file (atomically).

    Args:
        path: destination file (its folder is created).
        voxels: (R, R, R) bool (or 0/1) tensor or array, indexed ``[ix, iy, iz]``.
        translate: (3,) world position of the grid's min corner (``bounds`` lo).
        scale: world length of the grid's side (``hi - lo``).

    Returns:
        the path written.
    """
    path = Path(path)
    grid = voxels.detach().cpu().numpy() if torch.is_tensor(voxels) else np.asarray(voxels)
    if grid.ndim != 3:
        raise ValueError(f"write_binvox {path}: `voxels` must be an (R, R, R) grid, got shape {grid.shape}")
    if len(set(grid.shape)) != 1:
        raise ValueError(f"write_binvox {path}: binvox grids are cubic (D, D, D), got {grid.shape}")
    translate = np.asarray(translate, dtype=np.float64).reshape(-1)
    if translate.size != 3 or not np.isfinite(translate).all() or not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"write_binvox {path}: translate must be 3 finite numbers and scale > 0, "
                         f"got {translate.tolist()} and {scale}")
    D = grid.shape[0]
    stream = (grid != 0).transpose(0, 2, 1).reshape(-1).astype(np.uint8)  # [ix, iz, iy]: y fastest
    header = (f"#binvox 1\ndim {D} {D} {D}\ntranslate {' '.join(repr(float(t)) for t in translate)}\n"
              f"scale {float(scale)!r}\ndata\n").encode("ascii")
    payload = header + _rle_encode(stream)
    return atomic_write(path, lambda tmp: tmp.write_bytes(payload))


def _rle_encode(stream: np.ndarray) -> bytes:
    """0/1 uint8 stream -> bytes of (value, count) pairs, runs split at 255."""
    if stream.size == 0:
        return b""
    starts = np.flatnonzero(np.diff(stream)) + 1
    starts = np.concatenate([[0], starts])
    lengths = np.diff(np.concatenate([starts, [stream.size]]))
    values = stream[starts]
    n_pairs = (lengths + 254) // 255  # runs longer than 255 become several pairs
    vals = np.repeat(values, n_pairs)
    cnts = np.full(vals.size, 255, dtype=np.int64)
    last = np.cumsum(n_pairs) - 1
    cnts[last] = lengths - 255 * (n_pairs - 1)
    return np.stack([vals, cnts], 1).astype(np.uint8).tobytes()


def read_binvox(path) -> Tuple[torch.Tensor, torch.Tensor, float]:
    """Read a ``.binvox`` file (version 1, or 2 where any value > 0 counts as occupied).

    Args:
        path: the file.

    Returns:
        voxels: (D, D, D) bool, indexed ``[ix, iy, iz]`` along world x, y, z.
        translate: (3,) float32, world position of the grid's min corner.
        scale: float, world length of the grid's side. Voxel centres are
            ``translate + scale * (index + 0.5) / D``, i.e. ``bounds=(translate, translate + scale)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed header (names the line and what was expected), a non-cubic
            grid, or data that decodes to fewer or more voxels than ``dim`` says.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"binvox file {str(path)!r} does not exist (resolved to {path.absolute()})")
    raw = path.read_bytes()
    dims, translate, scale, offset = _parse_binvox_header(raw, path)
    D = dims[0]
    body = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    expected = D ** 3
    if body.size % 2:
        decoded = int(body[1:-1:2].astype(np.int64).sum())
        raise ValueError(f"binvox file {path}: truncated data: {body.size} bytes after the header is "
                         f"not a whole number of (value, count) pairs; decoded {decoded} of the "
                         f"{expected} voxels (dim {D} {D} {D}) before the cut")
    values, counts = body[0::2], body[1::2].astype(np.int64)
    decoded = int(counts.sum())
    if decoded < expected:
        raise ValueError(f"binvox file {path}: truncated data: decoded {decoded} voxels, expected "
                         f"{expected} (dim {D} {D} {D}); the file is cut short or damaged")
    if decoded > expected:
        raise ValueError(f"binvox file {path}: the data decodes to {decoded} voxels, more than the "
                         f"{expected} that dim {D} {D} {D} declares; the header or the data is wrong")
    stream = np.repeat(values > 0, counts)
    grid = stream.reshape(D, D, D).transpose(0, 2, 1)  # [ix, iz, iy] -> [ix, iy, iz]
    return (torch.from_numpy(np.ascontiguousarray(grid)), torch.tensor(translate, dtype=torch.float32),
            float(scale))


def _parse_binvox_header(raw: bytes, path: Path):
    """-> dims (3 ints), translate (3 floats), scale, byte offset of the data."""
    pos, line_no = 0, 0
    dims, translate, scale = None, [0.0, 0.0, 0.0], 1.0

    def fail(msg):
        raise ValueError(f"binvox file {path}: malformed header, line {line_no}: {msg}")

    while True:
        end = raw.find(b"\n", pos)
        line_no += 1
        if end < 0 or end - pos > 256:
            where = "the file ends" if end < 0 else "a line is longer than 256 bytes"
            fail(f"expected a header line ending in a newline ('data' closes the header), but {where}")
        try:
            text = raw[pos:end].decode("ascii").strip()
        except UnicodeDecodeError:
            fail(f"expected an ASCII header line, got bytes {raw[pos:min(end, pos + 20)]!r}")
        pos = end + 1
        words = text.split()
        if line_no == 1:
            if len(words) != 2 or words[0] != "#binvox" or words[1] not in ("1", "2"):
                fail(f"expected '#binvox 1' (or '#binvox 2'), got {text[:40]!r}")
            continue
        key = words[0] if words else ""
        if key == "data":
            break
        if key == "dim":
            try:
                dims = [int(w) for w in words[1:]]
            except ValueError:
                dims = None
            if dims is None or len(dims) != 3 or min(dims) < 1:
                fail(f"expected 'dim D D D' with three positive integers, got {text[:60]!r}")
            if len(set(dims)) != 1:
                fail(f"expected a cubic grid 'dim D D D' (binvox grids are cubic), got {text[:60]!r}")
        elif key == "translate":
            try:
                translate = [float(w) for w in words[1:]]
            except ValueError:
                translate = []
            if len(translate) != 3 or not np.isfinite(translate).all():
                fail(f"expected 'translate tx ty tz' with three numbers, got {text[:60]!r}")
        elif key == "scale":
            try:
                scale = float(words[1]) if len(words) == 2 else float("nan")
            except ValueError:
                scale = float("nan")
            if not np.isfinite(scale) or scale <= 0:
                fail(f"expected 'scale s' with one positive number, got {text[:60]!r}")
        else:
            fail(f"expected 'dim', 'translate', 'scale' or 'data', got {text[:60]!r}")
    if dims is None:
        fail("reached 'data' before a 'dim D D D' line")
    return dims, translate, scale, pos
