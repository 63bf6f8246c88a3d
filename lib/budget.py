"""How long a notebook's T4-sized run takes on a Colab T4: the estimate, printed before it starts.

``lib/t4_budget.json`` is written by ``python -m benchmarks.t4_budget --write``: for every notebook
and for ``SIZES="t4"`` (a lab session: at most ~30 minutes of compute) and ``SIZES="long"`` (longer,
better runs), each expensive part (training steps, rendered chunks, SDS steps), how many units the
notebook runs and the estimated T4 seconds per unit, scaled from timings on a CPU (the benchmark's
docstring says how). ``tests/test_t4_budget.py`` fails when a notebook's settings no longer match
the ones the estimate was made with.

A notebook prints its plan once (:func:`print_plan`) and one line before each long cell
(:func:`announce`: every part of ``ANNOUNCE_MINUTES`` or more). At CPU and tiny sizes both say
nothing: the progress bars time those runs. :func:`require_gpu` stops a T4-sized run on a CPU
runtime before it starts (the ``ALLOW_CPU`` parameter runs it anyway).

Example:
    >>> from lib.report import run_mode
    >>> announce("04", "nerf", run_mode(True))  # smoke sizes: silent
    >>> budget_line("04", "nerf", run_mode(False)).startswith("next: ")
    True
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

BUDGET_FILE = Path(__file__).with_name("t4_budget.json")
BUDGET_FORMAT = "course3d-t4-budget/1"
LAB_MINUTES = 30  # what a lab session allows: SIZES="t4" stays under it
ESTIMATED_SIZES = ("t4", "long")
ANNOUNCE_MINUTES = 2.0  # a notebook announces every part estimated at this or more (at either size)


@lru_cache(maxsize=None)
def load_budget(path=BUDGET_FILE) -> dict:
    """The budget file, checked for its format.

    Raises:
        ValueError: naming the file when it is not a ``course3d-t4-budget/1`` file.
    """
    data = json.loads(Path(path).read_text())
    if data.get("format") != BUDGET_FORMAT or not isinstance(data.get("notebooks"), dict):
        raise ValueError(f"{path}: not a {BUDGET_FORMAT} file (rewrite it: python -m benchmarks.t4_budget --write)")
    return data


def _entry(notebook: str, sizes: str) -> dict:
    notebooks = load_budget()["notebooks"]
    if notebook not in notebooks or sizes not in notebooks[notebook]:
        raise ValueError(f"{BUDGET_FILE.name} has no estimate for notebook {notebook!r} at SIZES={sizes!r} "
                         f"(it has {sorted(notebooks)}); run python -m benchmarks.t4_budget --nb {notebook} --write")
    return notebooks[notebook][sizes]


def plain_setting(value):
    """A setting as the budget file stores it: plain JSON (tuples become lists; what JSON cannot
    hold, its ``str``), so a notebook's value compares equal to the stored one."""
    return json.loads(json.dumps(value, default=str))


def _minutes(m: float) -> str:
    return f"{m:.0f} min" if m >= 1.5 else f"{max(m * 60, 1):.0f} s"


def plan_lines(notebook: str, mode, names: dict | None = None) -> list:
    """The lines :func:`print_plan` prints (empty below T4 sizes).

    Args:
        notebook: ``"04"``. mode: the notebook's ``RunMode``.
        names: the notebook's ``globals()``: a setting whose value differs from the one the
            estimate was made with is named (the estimate is then for the notebook's own settings).
    """
    if mode.sizes not in ESTIMATED_SIZES:
        return []
    entry = _entry(notebook, mode.sizes)
    lines = [f"On a Colab T4 this notebook's {mode.sizes!r}-sized run takes about {_minutes(entry['minutes'])} "
             "of compute (an estimate from CPU timings: python -m benchmarks.t4_budget), plus downloads:"]
    by_label: dict = {}
    for part in entry["parts"]:
        by_label[part["label"]] = by_label.get(part["label"], 0.0) + part["minutes"]
    lines += [f"  {label:<52} {_minutes(m):>7}" for label, m in by_label.items()]
    changed = sorted(k for k, v in entry["settings"].items()
                     if names is not None and k in names and plain_setting(names[k]) != v)
    if changed:
        lines.append(f"  you changed {', '.join(changed)}: the estimate is for the notebook's own settings")
    other = [s for s in ESTIMATED_SIZES if s != mode.sizes]
    lines += [f"  (SIZES={s!r}: about {_minutes(_entry(notebook, s)['minutes'])})" for s in other]
    return lines


def print_plan(notebook: str, mode, names: dict | None = None) -> None:
    """Print the notebook's T4 estimate, part by part, at ``SIZES`` "t4" or "long"
    (``budget.print_plan("04", MODE, globals())`` after the sizes)."""
    for line in plan_lines(notebook, mode, names):
        print(line)


def budget_line(notebook: str, section: str, mode) -> str:
    """``"next: <label>: <count> <unit>s, about N min on a T4 (estimate)"``, or "" below T4 sizes."""
    if mode.sizes not in ESTIMATED_SIZES:
        return ""
    parts = [p for p in _entry(notebook, mode.sizes)["parts"] if p["section"] == section]
    if not parts:
        raise ValueError(f"{BUDGET_FILE.name}: notebook {notebook!r} has no part {section!r} at SIZES={mode.sizes!r}")
    minutes = sum(p["minutes"] for p in parts)
    what = ", ".join(f"{p['count']} x {p['unit']}" for p in parts)
    labels = " + ".join(dict.fromkeys(p["label"] for p in parts))
    return f"next: {labels}: {what}, about {_minutes(minutes)} on a T4 (estimate)"


class NeedsGPU(RuntimeError):
    """:func:`require_gpu`'s stop. A notebook shows only its message (IPython calls
    ``_render_traceback_`` instead of printing a traceback)."""

    def _render_traceback_(self):
        return [str(self)]


def require_gpu(notebook: str, mode, device, allow_cpu: bool = False) -> None:
    """Stop a T4-sized run on a CPU before hours of work, with one line that says what to do.

    At ``SIZES`` "t4" or "long" on a CPU ``device`` raises :class:`NeedsGPU` (naming the runtime to
    pick, the ``ALLOW_CPU`` parameter that runs it anyway, and ``SIZES = "cpu"``), unless ``allow_cpu``.
    At other sizes, or on a GPU, does nothing. A notebook never waits for input.
    """
    import torch

    if mode.sizes not in ESTIMATED_SIZES or torch.device(device).type != "cpu" or allow_cpu:
        return
    minutes = _entry(notebook, mode.sizes)["minutes"]
    raise NeedsGPU(f"Stopped before the work: SIZES={mode.sizes!r} is sized for a T4 GPU (about {_minutes(minutes)} "
                   "there, many hours on a CPU) and this runtime has no GPU. On Colab: Runtime > Change runtime type > "
                   "T4 GPU, then run all again. To run it on this CPU anyway, set ALLOW_CPU = True in the parameters "
                   "cell; for a CPU-sized run, SIZES = \"cpu\".")


def announce(notebook: str, section: str, mode) -> None:
    """Print :func:`budget_line` before a long cell starts (nothing at CPU and tiny sizes)."""
    line = budget_line(notebook, section, mode)
    if line:
        print(line)
