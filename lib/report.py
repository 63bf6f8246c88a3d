"""The metrics recorder: a notebook's headline numbers, written where the tests read them.

Smoke and full mode never share a file: each notebook writes everything it makes (checkpoints,
data, media, metrics) under ``RUN_DIR = mode_dir(OUTPUT_DIR, SMOKE)``, i.e. ``OUTPUT_DIR/smoke``
or ``OUTPUT_DIR/full``. It makes one ``Recorder(RUN_DIR)`` and calls ``record(name, value)`` for
every number it wants checked. The values go to ``RUN_DIR/metrics.json`` (rewritten atomically
after every call, so a crash half-way still leaves the numbers recorded so far), and
``tests/expectations.json`` holds the bounds the regression tests assert on them.

Example:
    >>> import tempfile
    >>> run_dir = mode_dir(tempfile.mkdtemp(), smoke=True)
    >>> run_dir.name, run_dir.is_dir()
    ('smoke', True)
    >>> rec = Recorder(run_dir)
    >>> rec.record("psnr", 27.31)
    27.31
    >>> rec.path("turntable.gif") == run_dir / "turntable.gif"
    True
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

from lib.fileio import atomic_write

METRICS_FILE = "metrics.json"


def mode_dir(output_dir, smoke: bool) -> Path:
    """The folder of one mode's run: ``<output_dir>/smoke`` or ``<output_dir>/full`` (created).

    Args:
        output_dir: the notebook's ``OUTPUT_DIR``. smoke: the notebook's ``SMOKE`` (a bool).
    Returns:
        the folder as a ``Path``; checkpoints, data, media and ``metrics.json`` go inside it.
    """
    if not isinstance(smoke, bool):
        raise ValueError(f"smoke must be True or False, got {smoke!r} ({type(smoke).__name__})")
    path = Path(output_dir) / ("smoke" if smoke else "full")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see ``lib.fileio.atomic_write``)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=True)))


class Recorder:
    """Collects named scalars into ``<out_dir>/metrics.json``.

    Args:
        out_dir: folder for the metrics file and the media the notebook writes (created).
    """

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.metrics: dict = {}

    def record(self, name: str, value):
        """Store ``value`` (a real number, bool or short string) under ``name``; returns it."""
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
        return value

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
