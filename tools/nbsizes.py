"""A notebook's size settings at a given ``SIZES``, read from the notebook itself.

Every notebook sets its sizes with ``NAME = MODE.pick(tiny=..., cpu=..., t4=..., long=...)``
(``lib.report.RunMode``). :func:`notebook_settings` evaluates those assignments (and the plain
assignments beside them, which the picks may use) for a chosen mode without running the
notebook, so that ``benchmarks/t4_budget`` measures exactly the sizes the notebook will use and
``tests/test_t4_budget.py`` can tell when an estimate no longer matches the notebook.

    >>> from tools.nbsizes import notebook_settings
    >>> notebook_settings("notebooks/04_nerf.ipynb", "cpu")["STEPS"]
    600
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

from lib.budget import plain_setting
from lib.report import RunMode


def notebook_settings(path, sizes: str, data: str = "procedural") -> dict:
    """The values a notebook's ``MODE.pick`` settings take at ``sizes`` (and ``data``).

    Evaluates, in notebook order, the top-level assignments of the parameters cell and of every
    code cell that calls ``MODE.pick(``, each on its own; one that needs a value computed by the
    notebook (``STEP_SIZE = (bounds[1] - ...)``) is skipped. Returns ``{name: value}`` for every
    assignment whose right-hand side calls ``MODE.pick``, as the budget file stores them
    (``lib.budget.plain_setting``).

    Raises:
        ValueError: naming the notebook when it has no ``MODE.pick`` setting at all.
    """
    path = Path(path)
    nb = json.loads(path.read_text())
    ns: dict = {"MODE": RunMode(data, sizes)}
    picked: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "parameters" not in cell.get("metadata", {}).get("tags", []) and "MODE.pick(" not in source:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue  # cells with IPython magics hold no settings
        for node in tree.body:
            if not isinstance(node, (ast.Assign, ast.AnnAssign)):
                continue
            code = ast.unparse(node)
            try:
                exec(compile(code, str(path), "exec"), ns)  # noqa: S102 - our own notebook's settings
            except Exception:  # needs a value the notebook computes at run time
                continue
            if "MODE.pick(" in code:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        picked[t.id] = plain_setting(ns[t.id])
    if not picked:
        raise ValueError(f"{path}: no MODE.pick(...) setting found")
    return picked
