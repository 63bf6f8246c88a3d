"""Student versions of the notebooks, generated from the solutions (nbgrader's markers and stub).

    python -m tools.student            # notebooks/NN_*.ipynb -> notebooks/student/NN_*.ipynb
    python -m tools.student --check    # exit 1, listing the student notebooks that are stale

The notebooks in ``notebooks/`` are the instructor's (solution) versions. An exercise is a cell that
nbgrader would call a solution cell: its metadata holds ``"nbgrader": {"solution": true, "grade_id":
...}`` and its code marks the solution with ``### BEGIN SOLUTION`` / ``### END SOLUTION``. The student
version replaces each marked region, markers included, with nbgrader's stub for Python at the
indentation of ``### BEGIN SOLUTION``::

    # YOUR CODE HERE
    raise NotImplementedError()

which is what nbgrader's ``ClearSolutions`` preprocessor writes. Its first cell gets the student
notebook's own Open-in-Colab badge and a line saying what to do; everything else is unchanged.

Why not nbgrader itself: nbgrader 0.9 installs JupyterLab 4, Notebook 7, Jupyter Server, SQLAlchemy
and Alembic (its gradebook) into every CI run for what is, for us, this text substitution, and its
``generate_assignment`` wants a course folder and a gradebook database. The markers, the stub and the
cell metadata are nbgrader's, so an instructor can run nbgrader on ``notebooks/`` as it is.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from lib.colab.runner import DEFAULT_REF, GITHUB_REPO

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "notebooks"
STUDENT_DIR = SOURCE_DIR / "student"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
COLAB_PREFIX = f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{DEFAULT_REF}/notebooks/"
STUDENT_NOTE = ("**Student version.** The exercises' solutions are removed: write each one where it says "
                "`# YOUR CODE HERE`, then run the check cell below it, which says in one line whether your "
                "code is right. The cells after an exercise use `lib`'s version, so you can run the whole "
                "notebook whatever you have written. The full notebook, with the solutions, is [{name}](../{name}).")


def clear_solutions(source: str, where: str = "cell") -> str:
    """``source`` with every marked solution region replaced by nbgrader's stub (ValueError, naming
    ``where``, for an unpaired or nested marker)."""
    out, inside = [], False
    for n, line in enumerate(source.split("\n"), 1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}, line {n}: '{BEGIN}' inside another solution region")
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + s for s in STUB]
            inside = True
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}, line {n}: '{END}' without '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{BEGIN}' without '{END}'")
    return "\n".join(out)


def has_solution(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and any(line.strip() == BEGIN for line in _text(cell).split("\n"))


def student_version(nb: dict, name: str) -> dict:
    """The student notebook (a new dict) of the solution notebook ``nb`` named ``name``."""
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out["cells"]):
        if has_solution(cell):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("solution") or not meta.get("grade_id"):
                raise ValueError(f"{name}, cell {i} ({cell.get('id')}): a cell with '{BEGIN}' needs nbgrader metadata "
                                 "{'solution': true, 'grade_id': ...}")
            cell["source"] = _lines(clear_solutions(_text(cell), f"{name}, cell {i} ({cell.get('id')})"))
    first = out["cells"][0]
    text = _text(first)
    if COLAB_PREFIX + name not in text:
        raise ValueError(f"{name}: the first cell has no Open-in-Colab link to {COLAB_PREFIX + name}")
    text = text.replace(COLAB_PREFIX + name, COLAB_PREFIX + "student/" + name)
    title, _, rest = text.partition("\n")
    first["source"] = _lines(f"{title} (student version)\n{rest}\n\n{STUDENT_NOTE.format(name=name)}")
    return out


def dumps(nb: dict) -> str:
    """The file text of a notebook, formatted as the repository's notebooks are."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def build(source_dir: Path = SOURCE_DIR) -> dict:
    """{student path: file text} for every notebook in ``source_dir``."""
    return {STUDENT_DIR / p.name: dumps(student_version(json.loads(p.read_text()), p.name))
            for p in sorted(source_dir.glob("[0-9][0-9]_*.ipynb"))}


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _lines(text: str) -> list:
    return text.splitlines(keepends=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list stale student notebooks, exit 1 if any")
    args = parser.parse_args(argv)
    wanted = build()
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
    extra = [p for p in STUDENT_DIR.glob("*.ipynb") if p not in wanted] if STUDENT_DIR.is_dir() else []
    if args.check:
        for p in stale + extra:
            print(f"stale: {p.relative_to(REPO_ROOT)} (run python -m tools.student)")
        return 1 if stale or extra else 0
    STUDENT_DIR.mkdir(exist_ok=True)
    for p in stale:
        tmp = p.with_suffix(".tmp")
        tmp.write_text(wanted[p])
        tmp.replace(p)
        print(f"wrote {p.relative_to(REPO_ROOT)}")
    for p in extra:
        p.unlink()
        print(f"removed {p.relative_to(REPO_ROOT)} (no solution notebook of that name)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
