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
