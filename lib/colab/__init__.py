"""Colab environment set-up: the first code cell of every notebook, and the installs behind it.

Outside Colab (this repo ``pip install -e``'d in a venv, or CI) ``setup`` prints one line. On
Colab the first cell (``setup_cell``) clones the repository into ``/content`` and calls ``setup``:
it installs ``requirements-colab.txt`` once (never touching Colab's torch) and, where a notebook
needs it, PyTorch3D (``lib.colab.pytorch3d.ensure_pytorch3d``, which picks the route that fits the
runtime's torch and CUDA).

Every subprocess goes through a ``runner(cmd, env=None)`` (default ``lib.colab.runner.run_command``) that
tests fake.

Example:
    >>> setup_cell(False).splitlines()[-1]
    'lib.colab.setup(pytorch3d=False)'
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

from lib.colab.pytorch3d import ensure_pytorch3d
from lib.colab.runner import DEFAULT_REF, GITHUB_REPO, Runner, run_command, run_pip


def in_colab() -> bool:
    """Whether this interpreter is a Google Colab kernel."""
    return "google.colab" in sys.modules


def repo_root() -> Path:
    """The repository checkout this ``lib`` was imported from (holds requirements-colab.txt)."""
    return Path(__file__).resolve().parents[2]


def setup_cell(pytorch3d: bool) -> str:
    """The source of every notebook's first code cell (deterministic; tests compare notebooks to it).

    On Colab it clones ``GITHUB_REPO`` at ``DEFAULT_REF`` into ``/content/<name>`` (once), puts it on
    ``sys.path`` and calls ``setup``; elsewhere ``setup`` prints one line and returns.

    Args:
        pytorch3d: whether the notebook needs PyTorch3D.
    """
    repo_dir = f"/content/{GITHUB_REPO.split('/')[-1]}"
    return "\n".join([
        "# Colab set-up: fetch the course code and install what this notebook needs (elsewhere: nothing).",
        "import os, subprocess, sys",
        f'REPO_DIR = "{repo_dir}"',
        'if "google.colab" in sys.modules and not os.path.isdir(REPO_DIR):',
        f'    url = "https://github.com/{GITHUB_REPO}"',
        f'    subprocess.run(["git", "clone", "-q", "--depth=1", "--branch={DEFAULT_REF}", url, REPO_DIR], check=True)',
        'if "google.colab" in sys.modules and REPO_DIR not in sys.path:',
        "    sys.path.insert(0, REPO_DIR)",
        "import lib.colab",
        f"lib.colab.setup(pytorch3d={bool(pytorch3d)})",
    ])


def setup(pytorch3d: bool = False, ref: str = DEFAULT_REF, runner: Runner | None = None,
          quiet: bool = True, marker_dir: str | Path | None = None) -> dict:
    """Install what a notebook needs on Colab; print one line and do nothing elsewhere.

    ``requirements-colab.txt`` is pip-installed once per runtime: a marker file named after its
    sha256 records success, so re-running the cell (or another notebook) skips it.

    Args:
        pytorch3d: also run ``lib.colab.pytorch3d.ensure_pytorch3d``.
        ref: the git ref the set-up cell cloned (reported; named in errors).
        runner: ``runner(cmd, env=None) -> CompletedProcess``; default ``run_command``.
        quiet: hide pip's output unless something fails.
        marker_dir: where markers go; default ``~/.cache/course3d`` (lives as long as the runtime).

    Returns:
        ``{"colab": False}`` outside Colab; on Colab ``colab``, ``ref``, ``root``,
        ``requirements`` (``"installed"`` or ``"skipped"``), ``pytorch3d`` (route kind or None).
    """
    if not in_colab():
        print(f"Not on Colab: nothing to install (course code from {repo_root()}).")
        return {"colab": False}
    runner = runner or (lambda cmd, env=None: run_command(cmd, env, echo=not quiet))
    root = repo_root()
    req = root / "requirements-colab.txt"
    if not req.is_file():
        raise FileNotFoundError(f"{req} not found: lib must be imported from a clone of "
                                f"https://github.com/{GITHUB_REPO} at {ref!r} (re-run the first cell).")
    print(f"Colab set-up: course code {root} ({GITHUB_REPO}@{ref})")
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    marker = Path(marker_dir or Path.home() / ".cache" / "course3d") / f"requirements-colab-{digest[:16]}.ok"
    result = {"colab": True, "ref": ref, "root": str(root), "requirements": "skipped", "pytorch3d": None}
    if marker.is_file():
        print(f"  requirements-colab.txt: already installed ({marker.name})")
    else:
        run_pip(runner, "pip install -r requirements-colab.txt",
                ["install", *(["-q"] if quiet else []), "-r", str(req)])
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{req}\nsha256 {digest}\n")
        importlib.invalidate_caches()
        result["requirements"] = "installed"
    if pytorch3d:
        result["pytorch3d"] = ensure_pytorch3d(runner=runner, quiet=quiet).kind
    return result
