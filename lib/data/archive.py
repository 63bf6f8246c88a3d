"""Safe archive extraction for the download layer: .zip, .tar, .tar.gz / .tgz.

Refuses (``ValueError`` naming the member) absolute paths, members whose normalised path leaves
the destination (``..``), links pointing outside it, writes through links, and device/fifo
members; extracts into a temporary sibling folder renamed into place, so a failure leaves no
half-extracted folder.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import re
import uuid
import zipfile
from pathlib import Path

_ARCHIVES = {".zip": "zip", ".tar": "tar", ".tar.gz": "tar.gz", ".tgz": "tar.gz"}


def archive_kind(filename: str, extract: bool | str = True) -> str:
    """Return ``"zip"``, ``"tar"`` or ``"tar.gz"``: ``extract`` if it names one, else the type
    read from the suffix of ``filename``.

    Raises:
        ValueError: ``extract`` names an unknown type, or the suffix is not an archive's.
    """
    kinds = sorted(set(_ARCHIVES.values()))
    if isinstance(extract, str):
        if extract not in kinds:
            raise ValueError(f"extract must be True or one of {kinds}, got {extract!r} "
                             f"for {filename!r}")
        return extract
    for suffix in sorted(_ARCHIVES, key=len, reverse=True):
        if filename.lower().endswith(suffix):
            return _ARCHIVES[suffix]
    raise ValueError(f"cannot tell the archive type of {filename!r}; pass extract= one of {kinds}")


def strip_archive_suffix(name: str) -> str:
    for suffix in sorted(_ARCHIVES, key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name + "_extracted"


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike,
                    kind: str | None = None) -> Path:
    """Safely extract a .zip, .tar or .tar.gz/.tgz archive into ``dest``, a new or empty folder.

    Every member is checked before anything is written. Refused: absolute paths, paths that
    leave ``dest`` through ``..``, symlinks and hardlinks whose target lies outside ``dest``,
    members written through a symlink, devices and fifos. Extraction goes to a temporary
    sibling folder renamed to ``dest`` only when complete, so a failure leaves no half-extracted
    folder behind.

    Args:
        archive: the archive file.
        dest: folder to create; if it exists it must be an empty folder (it is replaced).
        kind: ``"zip"``, ``"tar"`` or ``"tar.gz"``; None reads it from the file name.

    Returns:
        ``dest`` as a Path.

    Raises:
        ValueError: ``dest`` is a file or a non-empty folder (the message lists what is in it),
            or a member is unsafe (the message names the member).
    """
    archive, dest = Path(archive), Path(dest)
    kind = kind or archive_kind(archive.name)
    _check_dest_empty(dest)
    if dest.is_dir():
        dest.rmdir()  # empty: the complete extraction takes its place
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.extracting-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        (_extract_zip if kind == "zip" else _extract_tar)(archive, tmp)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _check_dest_empty(dest: Path, shown: int = 5) -> None:
    """Raise a ValueError saying what is in ``dest`` when it is a file or a non-empty folder."""
    if dest.is_dir() and not dest.is_symlink():
        names = sorted(p.name + "/" * p.is_dir() for p in dest.iterdir())
        if not names:
            return
        listed = ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")
        raise ValueError(
            f"extract_archive: dest {str(dest)!r} is not empty: it holds {len(names)} "
            f"entr{'y' if len(names) == 1 else 'ies'} ({listed}). Extract into a new or empty "
            f"folder, or, if it is an earlier extraction you no longer need, delete it first "
            f"(shutil.rmtree({str(dest)!r})) and extract again.")
    if dest.exists() or dest.is_symlink():
        raise ValueError(f"extract_archive: dest {str(dest)!r} exists and is not a folder (a file "
                         "or a link); pass the path of a new or empty folder, or delete it first")


def _inside(path: str, archive: Path, member: str, what: str = "member") -> str:
    """Normalize the relative ``path`` of an archive member, refusing one that leaves dest."""
    path = path.replace("\\", "/")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise ValueError(f"{archive.name}: {what} {member!r} has an absolute path; refusing "
                         "to extract")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        raise ValueError(f"{archive.name}: {what} {member!r} leads outside the destination "
                         "folder (through '..'); refusing to extract")
    return norm


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _inside(info.filename, archive, info.filename)
        zf.extractall(dest)  # zipfile writes a symlink member as a small text file, never a link


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members, links = tf.getmembers(), set()
        for m in members:
            norm = _inside(m.name, archive, m.name)
            if m.issym():
                target = posixpath.join(posixpath.dirname(norm), m.linkname)
                if m.linkname.startswith("/"):
                    target = m.linkname
                _inside(target, archive, f"{m.name} -> {m.linkname}", "symlink")
                links.add(norm)
            elif m.islnk():
                _inside(m.linkname, archive, f"{m.name} -> {m.linkname}", "hardlink")
            elif not (m.isfile() or m.isdir()):
                raise ValueError(f"{archive.name}: member {m.name!r} is a device or fifo; "
                                 "refusing to extract")
        for m in members:  # a member under a symlinked folder would be written wherever it points
            parents = m.name.replace("\\", "/").split("/")[:-1]
            for i in range(1, len(parents) + 1):
                if posixpath.normpath("/".join(parents[:i])) in links:
                    raise ValueError(f"{archive.name}: member {m.name!r} is written through the "
                                     f"symlink {'/'.join(parents[:i])!r}; refusing to extract")
        extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(dest, members=members, **extra)
