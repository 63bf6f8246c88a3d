"""Choosing between a compiled CUDA package (nerfacc, gsplat) and the pure-torch path.

Some steps have two implementations: a pure-torch one that runs anywhere, and one in a package
with its own CUDA kernels. Callers take a ``backend`` argument:

    ``"torch"``    the pure-torch path, always available (CPU or GPU)
    ``"nerfacc"``  (or ``"gsplat"``, ...) the package's kernels; needs CUDA and the package
    ``"auto"``     the package when the device is CUDA and the package imports, else ``"torch"``

Both nerfacc and gsplat compile their CUDA extension the first time it is used, unless a wheel
with compiled kernels was installed. ``announce_cuda_build`` prints, once per package per
process, what that costs and how to avoid it. With ``"auto"``, a build that fails or a kernel
that errors on its first call does not stop the notebook: :func:`with_fallback` prints one line
and runs the pure-torch path instead, and ``"auto"`` picks torch for that package from then on
(in this process). Asked for by name, the package's error propagates.

Example:
    >>> resolve_backend("auto", "cpu", "nerfacc")
    'torch'
    >>> resolve_backend("torch", "cuda", "nerfacc")
    'torch'
"""
from __future__ import annotations

import importlib
import os
from typing import Callable, TypeVar

import torch

T = TypeVar("T")

_ANNOUNCED: set[str] = set()  # packages whose build notice this process has printed
_FAILED: dict[str, str] = {}  # package -> why its kernels failed in this process ("auto" then picks torch)


def _package_available(package: str) -> bool:
    """True when ``import package`` works (nerfacc and gsplat compile nothing on import)."""
    try:
        importlib.import_module(package)
    except Exception:  # not installed, or built for another torch (ImportError, OSError, ...)
        return False
    return True


def resolve_backend(backend: str, device, package: str) -> str:
    """The backend a call will really use: ``"torch"`` or ``package``.

    Args:
        backend: ``"auto"``, ``"torch"`` or ``package`` itself (e.g. ``"nerfacc"``).
        device: where the tensors live: a ``torch.device`` or a string such as ``"cuda:0"``.
        package: the compiled alternative, an importable name such as ``"nerfacc"`` or ``"gsplat"``.

    Returns:
        ``package`` when asked for explicitly, or for ``"auto"`` when ``device`` is CUDA and
        ``package`` is installed; ``"torch"`` otherwise.

    Raises:
        ValueError: ``backend`` is not one of the three choices, or ``package`` was asked for on a
            non-CUDA device or where it does not import (the message says to pass
            ``backend="torch"``).

    Example:
        >>> resolve_backend("auto", torch.device("cpu"), "gsplat")
        'torch'
    """
    choices = ("auto", "torch", package)
    if backend not in choices:
        raise ValueError(f"backend must be one of {choices}, got {backend!r}")
    if backend == "torch":
        return "torch"
    on_cuda = torch.device(device).type == "cuda"
    if backend == "auto":
        return package if on_cuda and package not in _FAILED and _package_available(package) else "torch"
    if not on_cuda:
        raise ValueError(f"backend={package!r} needs a CUDA device, got device={str(device)!r}; "
                         f'pass backend="torch" (runs anywhere) or backend="auto"')
    if not _package_available(package):
        raise ValueError(f"backend={package!r} needs the package {package!r}, which does not "
                         f'import here; pass backend="torch" (pure torch) or pip install {package}')
    return package


def with_fallback(backend: str, package: str, fast: Callable[[], T], slow: Callable[[], T]) -> T:
    """``fast()`` (the package's kernels); when ``backend`` is ``"auto"`` and it raises, print one
    line, remember the failure, and return ``slow()`` (the pure-torch path) instead.

    A failed JIT build (nvcc or ninja missing, a compiler error, a stale build) or a kernel that
    errors on its first call then costs a notebook one line, not its run. Out-of-memory errors
    propagate (the torch path would not fit either), as does anything when ``backend`` names the
    package (the caller asked for it).

    Example:
        >>> def broken():
        ...     raise RuntimeError("Error building extension 'examplepkg_cuda'")
        >>> with_fallback("auto", "examplepkg", broken, lambda: "torch result")  # doctest: +ELLIPSIS
        examplepkg failed (RuntimeError: Error building extension 'examplepkg_cuda'); using the pure-torch path...
        'torch result'
        >>> resolve_backend("auto", "cuda", "examplepkg")  # from now on, in this process
        'torch'
        >>> _FAILED.clear()
    """
    try:
        return fast()
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as err:  # noqa: BLE001 -- a build or kernel failure of any type
        if backend != "auto":
            raise
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:160] if str(err).strip() else ''}"
        _FAILED[package] = reason
        print(f"{package} failed ({reason}); using the pure-torch path for the rest of this session "
              f'(backend="auto"; pass backend="{package}" to see the full error)')
        return slow()


def extensions_dir() -> str:
    """The folder where torch keeps JIT-compiled extensions and their lock files.

    ``$TORCH_EXTENSIONS_DIR`` when set, else ``torch.utils.cpp_extension``'s default build root
    (usually ``~/.cache/torch_extensions``; on Colab ``/root/.cache/torch_extensions``).
    """
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return os.environ["TORCH_EXTENSIONS_DIR"]
    from torch.utils.cpp_extension import get_default_build_root
    return get_default_build_root()


def announce_cuda_build(package: str) -> None:
    """Print, once per process per package, that ``package`` may now compile its CUDA extension.

    Call it just before the first call that may compile (nerfacc's and gsplat's first CUDA call
    JIT-compile their kernels when the installed wheel has none): the notice says what happens,
    how long it may take, how to clear a stale lock that would make it hang, and that
    ``backend="torch"`` avoids the build.

    Example:
        >>> announce_cuda_build("examplepkg")  # doctest: +ELLIPSIS
        examplepkg: the first CUDA call may compile examplepkg's CUDA extension...
        >>> announce_cuda_build("examplepkg")  # printed once per process: nothing now
    """
    if package in _ANNOUNCED:
        return
    _ANNOUNCED.add(package)
    folder = extensions_dir()
    print(f"{package}: the first CUDA call may compile {package}'s CUDA extension (torch's JIT "
          f"build, unless the installed wheel ships compiled kernels). That takes several minutes "
          f"on Colab (more on a 2-CPU runtime) and prints nothing meanwhile; later calls reuse the "
          f"build until the runtime is reset.\n"
          f"  If it sits for over ~15 minutes with no CPU use, an earlier build that was "
          f"interrupted (stopped cell, runtime reset) left a stale lock file and the build waits "
          f"on it forever (nerfacc issue #164). The lock is {folder}/py<XY>_cu<XYZ>/"
          f"{package}_cuda/lock (torch's extension build folder; TORCH_EXTENSIONS_DIR moves it): "
          f"stop the cell, run `!rm -f {folder}/*/{package}*/lock`, then run the cell again.\n"
          f'  To skip the build entirely, pass backend="torch" (pure torch: no compilation, slower steps).')
