"""Which notebook statements a run executed: a line tracer added to a copy of the notebook.

:func:`traced_copy` writes a copy of a notebook with two extra cells: one first, which installs a
``sys.settrace`` hook that records the lines run in the kernel's cell code (cells, and functions
defined in cells, are compiled into files of one folder; lib's own frames are not traced), and
one last, which writes ``{cell source: [line numbers]}`` to a JSON file. :func:`uncovered`
compares the union of several runs' traces with the notebook's statements.

A statement counts as covered when its first line ran. Not expected to run: the setup cell
(its branches are for Colab), ``raise`` statements (errors for bad parameters), docstrings, the
branches taken only with procedural data (the body of ``if not MODE.real:``, the ``else`` of
``if MODE.real:``), which the smoke runs execute, and a statement whose first line says
``(data-dependent)`` in a comment (a guard for what some data or a training run may produce,
e.g. an empty prediction): keep those few and say what they guard.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat

TRACE_TAG = "rehearsal-trace"

_START = '''# rehearsal: record which lines of the notebook's cells run (tools/rehearsal/coverage.py)
import sys as _rh_sys
_rh_folder = _rh_sys._getframe().f_code.co_filename.rsplit("/", 1)[0] + "/"
_rh_lines = {}


def _rh_local(frame, event, arg):
    if event == "line":
        _rh_lines.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
    return _rh_local


def _rh_global(frame, event, arg):
    if frame.f_code.co_filename.startswith(_rh_folder):
        _rh_local(frame, "line", arg)
        return _rh_local
    return None


_rh_sys.settrace(_rh_global)
'''

_END = '''# rehearsal: write the lines that ran
_rh_sys.settrace(None)
import json as _rh_json
import linecache as _rh_linecache
with open({path!r}, "w") as _rh_f:
    _rh_json.dump({{"".join(_rh_linecache.getlines(f)): sorted(v) for f, v in _rh_lines.items()}}, _rh_f)
'''


def traced_copy(nb_path, out_path, trace_path) -> Path:
    """Write ``nb_path`` with the tracer cells to ``out_path``; the run writes ``trace_path``."""
    nb = nbformat.read(nb_path, as_version=4)
    start, end = nbformat.v4.new_code_cell(_START), nbformat.v4.new_code_cell(_END.format(path=str(trace_path)))
    for cell in (start, end):
        cell.metadata["tags"] = [TRACE_TAG]
    nb.cells = [start] + nb.cells + [end]
    nbformat.write(nb, out_path)
    return Path(out_path)


def _procedural_only(node) -> list:
    """The statements of ``node`` (an ``if``) that run only with procedural data."""
    test = ast.unparse(node.test)
    if test == "not MODE.real":
        return node.body
    if test == "MODE.real":
        return node.orelse
    return []


DATA_DEPENDENT = "(data-dependent)"


def _expected(tree, lines: list[str]) -> list:
    """The statements of a cell that a real-data run should execute (``lines``: the cell's text)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            for stmt in _procedural_only(node):
                skipped.update(id(n) for n in ast.walk(stmt))
        if isinstance(node, ast.stmt) and DATA_DEPENDENT in lines[node.lineno - 1].partition("#")[2]:
            skipped.update(id(n) for n in ast.walk(node))
    return [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and id(n) not in skipped
            and not isinstance(n, (ast.Raise, ast.Try))
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]


def uncovered(nb_path, trace_paths) -> list[str]:
    """``"cell i, line n: text"`` for each statement of the notebook's code cells (past the setup
    cell) that no trace in ``trace_paths`` saw run."""
    ran: dict[str, set] = {}
    for path in trace_paths:
        for source, lines in json.loads(Path(path).read_text()).items():
            ran.setdefault(source.rstrip(), set()).update(lines)
    missing = []
    code = [(i, c) for i, c in enumerate(nbformat.read(nb_path, as_version=4).cells) if c.cell_type == "code"]
    for i, cell in code[1:]:
        lines = ran.get(cell.source.rstrip(), set())
        text = cell.source.splitlines()
        for stmt in _expected(ast.parse(cell.source), text):
            if stmt.lineno not in lines:
                missing.append(f"cell {i}, line {stmt.lineno}: {text[stmt.lineno - 1].strip()[:90]}")
    return sorted(set(missing), key=lambda m: (int(m.split()[1].rstrip(",")), int(m.split()[3].rstrip(":"))))
