"""Every notebook: static conventions (fast) and a smoke run whose metrics must meet the bounds.

Static checks read the .ipynb files only. The regression tests (marker ``notebook``) execute each
notebook once through papermill in smoke mode into ``outputs/test-run/<stem>/`` and check the
metrics it recorded against ``tests/expectations.json``.
"""
import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from lib import colab
from tools.nbrun import check_bounds, run_notebook, write_report

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTATIONS = REPO / "tests" / "expectations.json"
RUN_ROOT = REPO / "outputs" / "test-run"
NAME_RE = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
MAX_CELL_LINES = 15
PLAIN_LITERALS = (int, float, str, bool, type(None))
SHELL_RE = re.compile(r"^\s*(!|%pip\b|%conda\b|%%?(bash|sh|script|system|sx)\b|\w+\s*=\s*!)")

by_name = pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


def read(nb_path):
    return nbformat.read(nb_path, as_version=nbformat.NO_CONVERT)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def colab_url(name: str) -> str:
    return (f"https://colab.research.google.com/github/{colab.GITHUB_REPO}"
            f"/blob/{colab.DEFAULT_REF}/notebooks/{name}")


def load_expectations() -> dict:
    return json.loads(EXPECTATIONS.read_text())


# ---------------------------------------------------------------- collection-level checks

def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no .ipynb file: nothing would be checked"


def test_prefixes_unique():
    prefixes = [p.name[:2] for p in NOTEBOOKS]
    dupes = sorted({x for x in prefixes if prefixes.count(x) > 1})
    assert not dupes, f"two notebooks share the prefix(es) {dupes}"


def test_expectations_file_is_well_formed():
    exp = load_expectations()
    assert isinstance(exp, dict)
    stems = {p.stem for p in NOTEBOOKS}
    stale = sorted(set(exp) - stems)
    assert not stale, f"tests/expectations.json has entries for missing notebooks: {stale}"
    for stem, bounds in exp.items():
        assert isinstance(bounds, dict), f"{stem}: bounds must be a dict, got {bounds!r}"
        for name, spec in bounds.items():
            assert isinstance(spec, dict) and spec and set(spec) <= {"min", "max", "equals"}, (
                f"{stem}.{name}: bound must use min/max/equals, got {spec!r}")


# ---------------------------------------------------------------- static, per notebook

@by_name
def test_valid_nbformat_v4(nb_path):
    nb = read(nb_path)
    assert nb.nbformat == 4, f"nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)


@by_name
def test_outputs_stripped(nb_path):
    dirty = [i for i, c in enumerate(code_cells(read(nb_path)))
             if c.get("outputs") or c.get("execution_count") is not None]
    assert not dirty, f"code cells {dirty} have outputs or execution counts: run `make strip`"


@by_name
def test_file_name(nb_path):
    assert NAME_RE.match(nb_path.name), f"{nb_path.name!r} must match {NAME_RE.pattern}"


@by_name
def test_colab_badge(nb_path):
    first = read(nb_path).cells[0]
    assert first.cell_type == "markdown", "the first cell must be markdown with the Open-in-Colab badge"
    links = re.findall(r"https://colab\.research\.google\.com/github/[^\s\"')>]*", first.source)
    want = colab_url(nb_path.name)
    assert links, f"first cell has no Open-in-Colab link; expected {want}"
    assert all(link == want for link in links), f"Colab link(s) {links}, expected exactly {want}"
    assert "colab-badge.svg" in first.source, "first cell needs the badge image (colab-badge.svg)"


@by_name
def test_setup_cell(nb_path):
    if not hasattr(colab, "setup_cell"):
        pytest.skip("lib.colab.setup_cell() does not exist yet; the setup-cell text cannot be checked")
    cells = code_cells(read(nb_path))
    assert cells, "notebook has no code cell"
    got = cells[0].source.rstrip()
    allowed = {colab.setup_cell(True).rstrip(), colab.setup_cell(False).rstrip()}
    assert got in allowed, ("the first code cell must be exactly lib.colab.setup_cell(True) or "
                            f"setup_cell(False); got:\n{got}")


@by_name
def test_parameters_cell(nb_path):
    nb = read(nb_path)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"need exactly one cell tagged 'parameters', found {len(tagged)}"
    cells = code_cells(nb)
    assert len(cells) >= 2 and cells[1] is nb.cells[tagged[0]], "the 'parameters' cell must be the second code cell"
    tree = ast.parse(cells[1].source)
    names = {}
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets), (
            f"line {stmt.lineno}: the parameters cell holds only `NAME = literal` assignments "
            "(derive values from SMOKE in a later cell: papermill injects after this one)")
        try:
            value = ast.literal_eval(stmt.value)
        except ValueError:
            value = ...
        assert isinstance(value, PLAIN_LITERALS), (
            f"line {stmt.lineno}: {ast.unparse(stmt)!r} is not a plain literal (number, string, bool, None)")
        names.update({t.id: value for t in stmt.targets})
    missing = {"SMOKE", "OUTPUT_DIR"} - set(names)
    assert not missing, f"parameters cell must define {sorted(missing)}"
    assert isinstance(names["SMOKE"], bool), f"SMOKE must be True or False, got {names['SMOKE']!r}"
    assert isinstance(names["OUTPUT_DIR"], str), f"OUTPUT_DIR must be a string, got {names['OUTPUT_DIR']!r}"


@by_name
def test_code_cells_short(nb_path):
    long = []
    for i, cell in enumerate(code_cells(read(nb_path))):
        n = sum(1 for ln in cell.source.splitlines() if ln.strip())
        if n > MAX_CELL_LINES:
            first = next(ln for ln in cell.source.splitlines() if ln.strip())
            long.append(f"code cell {i} ({n} lines, starts {first.strip()[:60]!r})")
    assert not long, f"code cells longer than {MAX_CELL_LINES} non-blank lines: " + "; ".join(long)


@by_name
def test_no_shell_magics(nb_path):
    bad = [f"code cell {i}: {ln.strip()!r}"
           for i, cell in enumerate(code_cells(read(nb_path)))
           for ln in cell.source.splitlines() if SHELL_RE.match(ln)]
    assert not bad, "shell escapes/magics (call lib in-process instead): " + "; ".join(bad)


@by_name
def test_listed_in_readme(nb_path):
    rows = [ln for ln in (REPO / "README.md").read_text().splitlines()
            if ln.lstrip().startswith("|") and nb_path.name in ln]
    assert rows, f"README.md's notebook table has no row naming {nb_path.name}"


@by_name
def test_has_expectations(nb_path):
    exp = load_expectations()
    assert nb_path.stem in exp, f"tests/expectations.json has no entry {nb_path.stem!r}"
    assert exp[nb_path.stem], (f"tests/expectations.json[{nb_path.stem!r}] is empty: a notebook whose "
                               "metrics are not asserted could run and learn nothing")


# ---------------------------------------------------------------- regression: smoke runs

@pytest.fixture(scope="session")
def notebook_runs():
    """Runs each notebook at most once per session (smoke mode); writes REPORT.md at the end."""
    cache = {}

    def get(nb_path):
        if nb_path not in cache:
            cache[nb_path] = run_notebook(nb_path, RUN_ROOT, smoke=True)
        return cache[nb_path]

    yield get
    if cache:
        write_report(list(cache.values()), RUN_ROOT, smoke=True, title="Test run report (smoke)")


@pytest.mark.notebook
@by_name
def test_notebook_runs(nb_path, notebook_runs):
    result = notebook_runs(nb_path)
    assert result["status"] == "passed", f"{nb_path.name} failed in smoke mode:\n{result['error']}"


@pytest.mark.notebook
@by_name
def test_notebook_metrics(nb_path, notebook_runs):
    result = notebook_runs(nb_path)
    if result["status"] != "passed":
        pytest.fail(f"{nb_path.name} did not run (see test_notebook_runs); metrics not checked")
    bounds = load_expectations().get(nb_path.stem, {})
    problems = check_bounds(result["metrics"], bounds)
    assert not problems, f"{nb_path.stem} metrics out of bounds:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------- the bounds evaluator itself

@pytest.mark.parametrize("metrics, bounds, n_problems", [
    ({"loss": 0.01}, {"loss": {"min": 0.0, "max": 0.05}}, 0),
    ({"loss": 0.06}, {"loss": {"max": 0.05}}, 1),
    ({"loss": -0.1}, {"loss": {"min": 0.0}}, 1),
    ({"loss": 0.0}, {"loss": {"min": 0.0, "max": 0.0}}, 0),  # bounds are inclusive
    ({"n": 12}, {"n": {"equals": 12}}, 0),
    ({"n": 11}, {"n": {"equals": 12}}, 1),
    ({"ok": True, "dev": "cpu"}, {"ok": {"equals": True}, "dev": {"equals": "cpu"}}, 0),
    ({"dev": "cpu"}, {"dev": {"min": 1}}, 1),       # min/max of a non-number
    ({}, {"psnr": {"min": 20}}, 1),                  # missing metric
    ({"a": 1.0}, {}, 0),                             # no bounds yet: nothing to check
    ({"a": 1.0}, {"a": {"mn": 0}}, 1),               # typo in a bound key
])
def test_check_bounds(metrics, bounds, n_problems):
    assert len(check_bounds(metrics, bounds)) == n_problems


def test_check_bounds_names_missing_metric():
    (problem,) = check_bounds({"loss": 1.0}, {"psnr": {"min": 20}})
    assert "psnr" in problem and "missing" in problem and "loss" in problem
