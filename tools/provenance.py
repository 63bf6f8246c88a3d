"""Saving a trained asset folder with how it was made (tools/train_prior.py, tools/train_judge.py).

:func:`save_with_provenance` writes the model through ``save(folder)``, adds ``train_args.json`` (the
resolved arguments, the command line, extra results) and ``train_log.txt`` (the log lines), all into
a temporary folder that replaces ``out`` only when complete (``lib.fileio.atomic_folder``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Optional


class RunLog:
    """``log(line)`` prints a line at once and keeps it in ``log.lines`` (for train_log.txt)."""

    def __init__(self):
        self.lines: list = []

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)


def save_with_provenance(out, save: Callable[[Path], object], tool: str, args, lines, argv=None,
                         extra: Optional[dict] = None) -> Path:
    """Write ``out`` atomically: ``save(folder)`` + train_args.json + train_log.txt.

    Args:
        tool: the module run, e.g. "tools.train_prior" (for the recorded command).
        args: the argparse Namespace. lines: the log lines. argv: the arguments given (None: sys.argv).
        extra: more JSON values for train_args.json (e.g. held-out scores).
    """
    from lib.fileio import atomic_folder
    command = f"python -m {tool} " + " ".join(sys.argv[1:] if argv is None else argv)

    def write(folder: Path) -> None:
        save(folder)
        (folder / "train_args.json").write_text(json.dumps({**vars(args), "command": command, **(extra or {})},
                                                           indent=1) + "\n")
        (folder / "train_log.txt").write_text("\n".join(lines) + "\n")

    return atomic_folder(Path(out).resolve(), write)
