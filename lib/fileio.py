"""Atomic file writes: everything ``lib`` saves (metrics, media, meshes, checkpoints) goes through
:func:`atomic_write`, so an interrupted run never leaves a truncated file where a good one was.

Example:
    >>> p = atomic_write("/tmp/fileio_demo.txt", lambda tmp: tmp.write_text("hello"))
    >>> p.read_text()
    'hello'
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path, write: Callable[[Path], object], mode: int = 0o644) -> Path:
    """Call ``write(tmp)`` with a temporary path beside ``path``, then ``os.replace`` it onto ``path``.

    The temporary file keeps ``path``'s suffix (writers such as ffmpeg pick the format from it)
    and is removed if ``write`` raises. Parent folders are created.

    Args:
        path: the final file. write: writes the content to the path it is given.
        mode: permission bits of the result (``mkstemp`` would make it private).
    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_folder(path, write: Callable[[Path], object], mode: int = 0o644) -> Path:
    """Call ``write(tmp)`` with a fresh temporary folder beside ``path``, then put it in place of
    ``path`` (an existing ``path`` is renamed aside first and removed last), so an interrupted
    writer never leaves a half-written folder at ``path``. Every file written gets ``mode``.

    Returns:
        ``path`` as a ``Path``.
    """
    import shutil
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        write(tmp)
        for f in tmp.rglob("*"):
            os.chmod(f, 0o755 if f.is_dir() else mode)
        os.chmod(tmp, 0o755)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path
