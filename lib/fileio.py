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

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"  # the committed models (assets/MANIFEST)


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


def save_module_folder(module, config: dict, folder) -> Path:
    """Write ``config.json`` (``config``, plain JSON values) and ``model.safetensors`` (the module's
    state dict: tensors only, no pickle) into ``folder``; the counterpart of :func:`read_module_folder`."""
    import json

    from safetensors.torch import save_file
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()},
              str(folder / "model.safetensors"))
    return folder


def read_module_folder(folder, who: str, hint: str = ""):
    """``(config dict, state dict)`` of a folder written by :func:`save_module_folder`;
    FileNotFoundError naming the missing file, ``who`` (the caller) and ``hint`` (how to make one)."""
    import json

    from safetensors.torch import load_file
    folder = Path(folder)
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{who}: no {folder / name}{' ' + hint if hint else ''}")
    return json.loads((folder / "config.json").read_text()), load_file(str(folder / "model.safetensors"))
