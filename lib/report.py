"""Run modes and the metrics recorder: which data and sizes a run uses, and its headline numbers.

A notebook's parameters cell says what to run with three settings: ``SMOKE`` (the shorthand),
``DATA`` and ``SIZES`` (each None, or a choice that overrides the shorthand).
:func:`run_mode` resolves them into a :class:`RunMode`:

- which data: ``"procedural"`` (made by ``lib.data`` from a seed, offline) or ``"real"`` (the
  downloads of ``lib.data.sources`` and the pretrained models);
- which sizes: ``"tiny"`` (a rehearsal: every cell runs in seconds, nothing is meant to learn),
  ``"cpu"`` (minutes on a laptop: the sizes CI asserts), ``"t4"`` (a lab session on a Colab T4:
  at most ~30 minutes of compute, estimated in ``lib/t4_budget.json``), ``"long"`` (longer, better
  runs on a T4; each notebook's budget cell prints how long).

``SMOKE=True`` means procedural data at CPU sizes; ``SMOKE=False`` real data at T4 sizes. Real data
at CPU sizes ("the real lego on my laptop") is ``DATA="real", SIZES="cpu"``.

Runs of different modes never share a file: each notebook writes everything it makes
(checkpoints, data, media, metrics) under ``RUN_DIR = mode_dir(OUTPUT_DIR, MODE)``:
``OUTPUT_DIR/smoke`` (procedural, cpu), ``OUTPUT_DIR/full`` (real, t4), else
``OUTPUT_DIR/<data>-<sizes>`` (``real-tiny``, ``real-cpu``, ...). It makes one
``Recorder(RUN_DIR, MODE)`` (which records the mode as ``run_data`` and ``run_sizes``) and calls
``record(name, value)`` for every number it wants checked. The values go to ``RUN_DIR/metrics.json``
(rewritten atomically after every call, so a crash half-way still leaves the numbers recorded so
far), and ``tests/expectations.json`` holds the bounds the regression tests assert on them.

Example:
    >>> import tempfile
    >>> mode = run_mode(True)
    >>> mode.data, mode.sizes, mode.pick(tiny=2, cpu=150, t4=3000, long=6000)
    ('procedural', 'cpu', 150)
    >>> run_mode(False, sizes="long").pick(tiny=2, cpu=150, t4=3000, long=6000)
    6000
    >>> run_mode(True, sizes="tiny").name, run_mode(False, data="real", sizes="cpu").name
    ('procedural-tiny', 'real-cpu')
    >>> run_dir = mode_dir(tempfile.mkdtemp(), mode)
    >>> run_dir.name, run_dir.is_dir()
    ('smoke', True)
    >>> rec = Recorder(run_dir, mode)
    >>> rec.record("psnr", 27.31)
    >>> sorted(rec.metrics)
    ['psnr', 'run_data', 'run_sizes']
    >>> rec.path("turntable.gif") == run_dir / "turntable.gif"
    True
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from lib.fileio import atomic_write

METRICS_FILE = "metrics.json"


DATA_CHOICES = ("procedural", "real")
SIZE_CHOICES = ("tiny", "cpu", "t4", "long")


@dataclass(frozen=True)
class RunMode:
    """Which data a run uses and how big it is (see the module docstring).

    Attributes:
        data: ``"procedural"`` or ``"real"``. sizes: ``"tiny"``, ``"cpu"``, ``"t4"`` or ``"long"``.
    """

    data: str
    sizes: str

    def __post_init__(self):
        if self.data not in DATA_CHOICES:
            raise ValueError(f"DATA must be one of {DATA_CHOICES} (or None: from SMOKE), got {self.data!r}")
        if self.sizes not in SIZE_CHOICES:
            raise ValueError(f"SIZES must be one of {SIZE_CHOICES} (or None: from SMOKE), got {self.sizes!r}")

    @property
    def real(self) -> bool:
        """True when the run downloads real data and loads pretrained models."""
        return self.data == "real"

    @property
    def name(self) -> str:
        """``"smoke"`` (procedural, cpu), ``"full"`` (real, t4), else ``"<data>-<sizes>"``: the run
        folder's name, and the word the runs' settings (checkpoint names) carry."""
        return {("procedural", "cpu"): "smoke", ("real", "t4"): "full"}.get((self.data, self.sizes),
                                                                         f"{self.data}-{self.sizes}")

    def pick(self, *, tiny, cpu, t4, long=None):
        """The value for this run's sizes: ``MODE.pick(tiny=4, cpu=600, t4=3000, long=6000)``;
        ``long`` defaults to ``t4`` (a setting the longer runs keep)."""
        return {"tiny": tiny, "cpu": cpu, "t4": t4, "long": t4 if long is None else long}[self.sizes]


def run_mode(smoke: bool, data: str | None = None, sizes: str | None = None) -> RunMode:
    """Resolve a notebook's ``SMOKE``, ``DATA`` and ``SIZES`` parameters into a :class:`RunMode`.

    Args:
        smoke: True: procedural data at CPU sizes; False: real data at T4 sizes.
        data: None (from ``smoke``), ``"procedural"`` or ``"real"``.
        sizes: None (from ``smoke``), ``"tiny"``, ``"cpu"``, ``"t4"`` or ``"long"``.
    Raises:
        ValueError: naming the parameter and the choices, for anything else.
    """
    if not isinstance(smoke, bool):
        raise ValueError(f"SMOKE must be True or False, got {smoke!r} ({type(smoke).__name__})")
    return RunMode(data or ("procedural" if smoke else "real"), sizes or ("cpu" if smoke else "t4"))


def mode_dir(output_dir, mode) -> Path:
    """The folder of one mode's run (created): ``<output_dir>/<mode.name>``.

    Args:
        output_dir: the notebook's ``OUTPUT_DIR``.
        mode: a :class:`RunMode`, or the notebook's ``SMOKE`` (a bool: ``smoke`` or ``full``).
    Returns:
        the folder as a ``Path``; checkpoints, data, media and ``metrics.json`` go inside it.
    """
    if not isinstance(mode, RunMode):
        if not isinstance(mode, bool):
            raise ValueError(f"mode must be a RunMode or SMOKE (True or False), got {mode!r} "
                             f"({type(mode).__name__})")
        mode = run_mode(mode)
    path = Path(output_dir) / mode.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see ``lib.fileio.atomic_write``)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=True)))


class Recorder:
    """Collects named scalars into ``<out_dir>/metrics.json``.

    Args:
        out_dir: folder for the metrics file and the media the notebook writes (created).
        mode: the run's :class:`RunMode`, recorded as ``run_data`` and ``run_sizes`` (so a run's
            metrics say which data and sizes made them); None records nothing.
    """

    def __init__(self, out_dir, mode: RunMode | None = None):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.metrics: dict = {}
        if mode is not None:
            self.record("run_data", mode.data)
            self.record("run_sizes", mode.sizes)

    def record(self, name: str, value) -> None:
        """Store ``value`` (a real number, bool or short string) under ``name``. Returns None, so that a
        notebook cell ending in a ``record`` shows no bare number under it."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric name must be a non-empty string, got {name!r}")
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()  # 0-d tensors and numpy scalars
        if isinstance(value, bool) or isinstance(value, str):
            pass
        elif isinstance(value, numbers.Real):
            value = float(value) if not isinstance(value, numbers.Integral) else int(value)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"metric {name!r} is {value}; a recorded number must be finite")
        else:
            raise ValueError(f"metric {name!r} must be a number, bool or string, got {type(value).__name__}")
        self.metrics[name] = value
        write_json_atomic(self.out_dir / METRICS_FILE, self.metrics)

    def path(self, filename: str) -> Path:
        """Where to write a media file (GIF, MP4, PNG) so that the report links it."""
        return self.out_dir / filename


def load_metrics(out_dir) -> dict:
    """The metrics a run recorded in ``out_dir`` ({} when it recorded none)."""
    p = Path(out_dir) / METRICS_FILE
    return json.loads(p.read_text()) if p.exists() else {}


def format_table(rows, columns=None, digits: int = 3) -> str:
    """A plain-text table of ``rows`` (a list of dicts), one column per key (``columns`` picks and
    orders them; default: the first row's keys), floats with ``digits`` decimals, right-aligned."""
    rows = list(rows)
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0])
    cells = [[f"{r.get(c, ''):.{digits}f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns]
             for r in rows]
    widths = [max(len(str(c)), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
