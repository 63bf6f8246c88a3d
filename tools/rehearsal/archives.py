"""Byte-reproducible files for the rehearsal stand-ins: zip archives, ids and the file records.

Everything here is a pure function of its inputs (no clock, no host names, no RNG state), so the
same seed gives the same bytes on every machine and every run:

- :func:`write_zip`: a folder tree as a ``.zip`` whose members are sorted, dated 1980-01-01 and
  carry fixed permissions, directories included as ``zip -r`` writes them (``name/`` entries).
- :func:`hex_id`: a 32-hex id (ShapeNet and SRN name their objects this way) from a seed and tags.
- :func:`file_record`: ``{"path", "sha256", "size"}`` of a written file, what ``write_files`` returns.
- :func:`single_thread`: run the writers on one torch thread (tiny tensors: fastest, and much
  faster than two threads on a busy 2-core machine), restoring the thread count afterwards.

Example:
    >>> hex_id(0, "srn", "cars_train", 3) == hex_id(0, "srn", "cars_train", 3), len(hex_id(0, "a"))
    (True, 32)
"""
from __future__ import annotations

import contextlib
import hashlib
import zipfile
from pathlib import Path

import torch

from lib.data.download import sha256sum

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip member can carry


def hex_id(seed: int, *tags) -> str:
    """A 32-hex-digit id (like ShapeNet's model ids) determined by ``seed`` and ``tags``."""
    return hashlib.md5("/".join(str(t) for t in (seed,) + tags).encode()).hexdigest()


def file_record(out: Path, path: Path) -> dict:
    """``{"path": <path relative to out, posix>, "sha256": ..., "size": <bytes>}`` of ``path``."""
    path = Path(path)
    return {"path": path.relative_to(out).as_posix(), "sha256": sha256sum(path), "size": path.stat().st_size}


@contextlib.contextmanager
def single_thread():
    """Context: ``torch.set_num_threads(1)`` inside, the previous count restored on exit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def write_zip(folder: Path, top: str, zip_path: Path) -> Path:
    """Write ``folder/top`` (a folder) as ``zip_path`` with members ``top/...``, reproducibly.

    Members are sorted by name, folders come as their own ``name/`` entries (as ``zip -r`` writes
    them), every member is dated 1980-01-01 00:00 with mode 0644 (files) or 0755 (folders), and
    files are deflated at level 6.

    Returns:
        ``zip_path``.
    """
    folder, zip_path = Path(folder), Path(zip_path)
    root = folder / top
    if not root.is_dir():
        raise ValueError(f"write_zip: {root} is not a folder")
    paths = [root] + sorted(root.rglob("*"))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(paths, key=lambda q: q.relative_to(folder).as_posix()):
            name = p.relative_to(folder).as_posix() + ("/" if p.is_dir() else "")
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = 3  # unix: the permission bits below are read on extraction
            if p.is_dir():
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
            else:
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, p.read_bytes(), compresslevel=6)
    return zip_path
