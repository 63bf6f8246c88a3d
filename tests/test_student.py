"""Exercises in the notebooks and the student versions generated from them (tools/student.py).

Static: every student notebook is the generator's output of its solution notebook (so a stale one fails),
and every exercise has its parts (task, a solution cell nbgrader recognises, a check cell). Notebook runs
(marker ``notebook``): each student notebook runs at the smallest sizes with every check printing its
friendly "not written yet" line and nothing else failing; the solution notebooks' smoke runs print a pass
for every check.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools.student import BEGIN, END, STUB, STUDENT_DIR, build, clear_solutions, has_solution, student_version

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK_CALL = re.compile(r'check\("(\d\d\.\d+) ([^"]+)"')
SHAPE = re.compile(r"\((?:[A-Z]\w*|\d+)(?:, ?(?:[A-Z]\w*|\d+))+\)|\((?:[A-Z]\w*|\d+),\)")  # (N, 3), (V,)
RESULT_LINE = re.compile(r"^([✓✗]) (\d\d\.\d+) ([^:]+): (.*)$")
by_name = pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem[:2])


def _read(path) -> dict:
    return json.loads(Path(path).read_text())


def _src(cell) -> str:
    return "".join(cell["source"])


def exercises(nb: dict) -> dict:
    """{"NN.k": name} of the check calls in a notebook."""
    found = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for number, name in CHECK_CALL.findall(_src(cell)):
                assert number not in found, f"exercise {number} is checked twice"
                found[number] = name
    return found


def printed_results(executed: dict) -> dict:
    """{"NN.k": (mark, message)} of the exercise lines an executed notebook printed."""
    out = {}
    for cell in executed["cells"]:
        for o in cell.get("outputs", []):
            for line in "".join(o.get("text", "")).splitlines():
                m = RESULT_LINE.match(line)
                if m:
                    out[m.group(2)] = (m.group(1), m.group(4))
    return out


def test_student_notebooks_are_generated_and_fresh():
    wanted = build()
    assert sorted(p.name for p in wanted) == sorted(p.name for p in NOTEBOOKS)
    for path, text in wanted.items():
        assert path.is_file(), f"{path.relative_to(REPO)} is missing: run python -m tools.student"
        assert path.read_text() == text, f"{path.relative_to(REPO)} is stale: run python -m tools.student"
    extra = sorted(p.name for p in STUDENT_DIR.glob("*.ipynb")) if STUDENT_DIR.is_dir() else []
    assert extra == sorted(p.name for p in wanted), f"student notebooks without a solution notebook: {extra}"


def test_clear_solutions_writes_nbgraders_stub_at_the_markers_indentation():
    src = f"def f(x):\n    y = 1\n    {BEGIN}\n    return x + y\n    {END}\nprint(f)"
    assert clear_solutions(src) == f"def f(x):\n    y = 1\n    {STUB[0]}\n    {STUB[1]}\nprint(f)"
    for bad, message in [(f"{BEGIN}\nx = 1", "without"), (f"x = 1\n{END}", "without"),
                         (f"{BEGIN}\n{BEGIN}\n{END}", "inside another")]:
        with pytest.raises(ValueError, match=message):
            clear_solutions(bad, "nb, cell 3")


def test_a_solution_cell_without_nbgrader_metadata_is_refused():
    first = {"cell_type": "markdown", "id": "a", "metadata": {},
             "source": ["# 00 · x\n", "[badge](https://colab.research.google.com/github/learning3d-course/"
                                      "learning-3d-vision/blob/main/notebooks/00_x.ipynb)"]}
    cell = {"cell_type": "code", "id": "b", "metadata": {}, "outputs": [], "execution_count": None,
            "source": [f"{BEGIN}\n", "x = 1\n", END]}
    with pytest.raises(ValueError, match="nbgrader metadata"):
        student_version({"cells": [first, cell]}, "00_x.ipynb")
    cell["metadata"] = {"nbgrader": {"solution": True, "grade_id": "ex00-1"}}
    out = student_version({"cells": [first, cell]}, "00_x.ipynb")
    assert "student/00_x.ipynb" in _src(out["cells"][0]) and "raise NotImplementedError()" in _src(out["cells"][1])
    assert _src(cell) == f"{BEGIN}\nx = 1\n{END}"  # the solution notebook is left as it was


@by_name
def test_every_exercise_has_a_task_a_solution_cell_and_a_check(nb_path):
    nb = _read(nb_path)
    prefix = nb_path.stem[:2]
    cells = nb["cells"]
    found = exercises(nb)
    assert 2 <= len(found) <= 4, f"{nb_path.name}: {len(found)} exercises ({sorted(found)}); the course wants 2-4"
    assert all(n.startswith(prefix + ".") for n in found), f"{nb_path.name}: exercise numbers {sorted(found)}"
    solutions = [i for i, c in enumerate(cells) if has_solution(c)]
    assert len(solutions) == len(found), f"{nb_path.name}: {len(solutions)} solution cells, {len(found)} checks"
    ids = []
    for k, i in enumerate(solutions, 1):
        meta = cells[i]["metadata"].get("nbgrader", {})
        assert meta.get("solution") is True and meta.get("grade_id"), f"{nb_path.name} cell {i}: nbgrader metadata"
        ids.append(meta["grade_id"])
        number = f"{prefix}.{k}"
        task, check = _src(cells[i - 1]), _src(cells[i + 1])
        assert cells[i - 1]["cell_type"] == "markdown" and task.startswith(f"### Exercise {number} "), \
            f"{nb_path.name}: the cell before solution {number} must be its task ('### Exercise {number} · ...')"
        assert "Hint" in task and SHAPE.search(task), \
            f"{nb_path.name}: exercise {number}'s task needs the shapes and a hint"
        assert f'check("{number} ' in check, f"{nb_path.name}: the cell after solution {number} must check it"
        body = _src(cells[i]).split(BEGIN)[1].split(END)[0]
        assert body.strip(), f"{nb_path.name}: exercise {number}'s solution is empty"
    assert len(set(ids)) == len(ids), f"{nb_path.name}: grade_ids repeat: {ids}"


@pytest.mark.notebook
@by_name
def test_student_notebook_runs_and_every_check_says_not_yet(nb_path, tmp_path_factory):
    from tools.nbrun import run_notebook

    student = STUDENT_DIR / nb_path.name
    result = run_notebook(student, tmp_path_factory.mktemp("student"), smoke=True, sizes="tiny")
    assert result["status"] == "passed", f"{student.name} failed at tiny sizes:\n{result['error']}"
    printed = printed_results(_read(result["notebook"]))
    assert set(printed) == set(exercises(_read(nb_path))), f"{student.name}: printed {sorted(printed)}"
    for number, (mark, message) in printed.items():
        assert mark == "✗" and message.startswith("not written yet"), f"{student.name} {number}: {mark} {message}"


@pytest.mark.notebook
@by_name
def test_the_solutions_pass_their_checks(nb_path, notebook_runs):
    result = notebook_runs(nb_path)
    assert result["status"] == "passed", result["error"]
    printed = printed_results(_read(result["notebook"]))
    assert set(printed) == set(exercises(_read(nb_path))), f"{nb_path.name}: printed {sorted(printed)}"
    wrong = {n: m for n, (mark, m) in printed.items() if mark != "✓"}
    assert not wrong, f"{nb_path.name}: the solutions fail their own checks: {wrong}"
