"""Running the commands of the Colab set-up: where the course lives, subprocesses, pip, timing.

Every subprocess of ``lib.colab`` and ``lib.colab.pytorch3d`` goes through a ``runner(cmd, env=None)``
(default :func:`run_command`), which tests replace with a fake.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Callable, Mapping, Sequence

GITHUB_REPO = "learning3d-course/learning-3d-vision"  # owner/name on GitHub; badges and set-up use it
DEFAULT_REF = "main"  # the git ref Colab installs; a release pins a tag here and in the badges

Runner = Callable[..., subprocess.CompletedProcess]  # runner(cmd, env=None) -> CompletedProcess


def run_command(cmd: Sequence[str], env: Mapping[str, str] | None = None,
                echo: bool = False) -> subprocess.CompletedProcess:
    """The default ``runner``: run ``cmd`` with ``env`` added to ``os.environ``, stderr into stdout.

    With ``echo`` the output is printed line by line (a notebook does not show a child's raw stdout).
    """
    proc = subprocess.Popen(list(cmd), env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            print(line, end="")
    return subprocess.CompletedProcess(list(cmd), proc.wait(), "".join(lines), "")


def check_returncode(proc: subprocess.CompletedProcess, what: str) -> None:
    """Raise a RuntimeError naming ``what`` with the output's tail when ``proc`` failed."""
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").strip().splitlines()[-20:])
        cmd = " ".join(map(str, proc.args))
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {cmd}\n{tail}")


def timed(label: str, fn: Callable[[], object]) -> object:
    """Print ``label``, run ``fn``, print how long it took; return its result."""
    print(f"  {label} ...", flush=True)
    t0 = time.perf_counter()
    out = fn()
    print(f"  {label}: done in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def run_pip(runner: Runner, label: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    """Run ``python -m pip *args`` through ``runner``, timed; raise RuntimeError if it fails."""
    cmd = [sys.executable, "-m", "pip", *args]
    check_returncode(timed(label, lambda: runner(cmd, env=env)), label)
