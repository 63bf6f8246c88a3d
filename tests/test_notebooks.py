"""Every notebook: static conventions (fast) and a smoke run whose metrics must meet the bounds.

Static checks read the .ipynb files only (code cells are parsed with ``ast``: cell length is
counted in statements, not lines). The regression tests (marker ``notebook``) execute each
notebook once through papermill in smoke mode into ``outputs/test-run/<stem>/smoke/`` and
check the metrics it recorded against ``tests/expectations.json``.
"""
import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from lib import colab
from lib.colab.runner import DEFAULT_REF, GITHUB_REPO
from lib.report import DATA_CHOICES, SIZE_CHOICES
from tools.nbrun import check_bounds, run_notebook, write_report

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTATIONS = REPO / "tests" / "expectations.json"
NAME_RE = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
MAX_CELL_STATEMENTS = 15
PLAIN_LITERALS = (int, float, str, bool, type(None))
SHELL_RE = re.compile(r"^\s*(!|%pip\b|%conda\b|%%?(bash|sh|script|system|sx)\b|\w+\s*=\s*!)")

by_name = pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


def read(nb_path):
    return nbformat.read(nb_path, as_version=nbformat.NO_CONVERT)


def needs_pytorch3d(nb_path) -> bool:
    """True when the notebook's setup cell calls ``lib.colab.setup(pytorch3d=True)``."""
    cells = [c for c in read(nb_path).cells if c.cell_type == "code"]
    try:
        tree = ast.parse(cells[0].source) if cells else ast.Module(body=[], type_ignores=[])
    except SyntaxError:
        return False  # test_setup_cell reports it
    return any(isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", "")) == "setup"
               and any(k.arg == "pytorch3d" and getattr(k.value, "value", None) is True for k in n.keywords)
               for n in ast.walk(tree))


# The smoke runs carry the marker `needs_pytorch3d` where the notebook needs it, so a runtime
# without PyTorch3D (the "colab-like" CI job) selects the others with -m "notebook and not needs_pytorch3d".
by_name_runs = pytest.mark.parametrize(
    "nb_path", [pytest.param(p, id=p.stem, marks=[pytest.mark.needs_pytorch3d] * needs_pytorch3d(p))
                for p in NOTEBOOKS])


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def parsed_cells(nb_path):
    """``(where, source, tree)`` for each code cell; ``where`` names the notebook, the cell's index
    among all cells (papermill's numbering) and among code cells. IPython magics are turned into
    plain calls first (same line numbers); a cell that does not parse fails the test here."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        to_python = TransformerManager().transform_cell
    except ImportError:  # no IPython: parse the source as it is
        def to_python(src):
            return src
    out, j = [], 0
    for i, cell in enumerate(read(nb_path).cells):
        if cell.cell_type != "code":
            continue
        where = f"{nb_path.name} cell {i} (code cell {j})"
        try:
            tree = ast.parse(to_python(cell.source))
        except SyntaxError as e:
            pytest.fail(f"{where}, line {e.lineno}: does not parse ({e.msg}): {e.text!r}")
        out.append((where, cell.source, tree))
        j += 1
    return out


def line_of(source: str, lineno: int) -> str:
    lines = source.splitlines()
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def colab_url(name: str) -> str:
    return (f"https://colab.research.google.com/github/{GITHUB_REPO}"
            f"/blob/{DEFAULT_REF}/notebooks/{name}")


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
    comments = [f"line {i}: {ln.strip()[:80]!r}" for i, ln in enumerate(cells[1].source.splitlines(), 1)
                if "#" in ln and "=" in ln.split("#", 1)[1]]
    assert not comments, ("'=' inside a comment of the parameters cell: papermill's parser then misreads the "
                          "line and drops the parameter from its list:\n  " + "\n  ".join(comments))
    missing = {"SMOKE", "DATA", "SIZES", "OUTPUT_DIR"} - set(names)
    assert not missing, f"parameters cell must define {sorted(missing)}"
    assert isinstance(names["SMOKE"], bool), f"SMOKE must be True or False, got {names['SMOKE']!r}"
    assert names["DATA"] in (None,) + DATA_CHOICES, f"DATA must be None or one of {DATA_CHOICES}, got {names['DATA']!r}"
    assert names["SIZES"] in (None,) + SIZE_CHOICES, f"SIZES must be None or one of {SIZE_CHOICES}, got {names['SIZES']!r}"
    assert isinstance(names["OUTPUT_DIR"], str), f"OUTPUT_DIR must be a string, got {names['OUTPUT_DIR']!r}"


@by_name
def test_data_and_sizes_come_from_the_mode(nb_path):
    """``MODE = run_mode(SMOKE, DATA, SIZES)`` is made once; no later cell reads ``SMOKE``, ``DATA``
    or ``SIZES``: which data a cell uses is ``MODE.real``, how big it is ``MODE.pick(...)``. That keeps
    the two choices apart, so real data at tiny sizes (the rehearsal) runs every full-mode branch."""
    made, reads = 0, []
    for where, source, tree in parsed_cells(nb_path)[2:]:
        for n in ast.walk(tree):
            if isinstance(n, ast.Assign) and [ast.unparse(t) for t in n.targets] == ["MODE"]:
                assert ast.unparse(n.value) == "run_mode(SMOKE, DATA, SIZES)", (
                    f"{where}, line {n.lineno}: MODE must be run_mode(SMOKE, DATA, SIZES), got {ast.unparse(n.value)!r}")
                made += 1
        names = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and ast.unparse(n.value) == "run_mode(SMOKE, DATA, SIZES)" for a in ast.walk(n.value)}
        reads += [f"{where}, line {n.lineno}: {line_of(source, n.lineno)[:80]!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Name) and n.id in ("SMOKE", "DATA", "SIZES") and id(n) not in names]
    assert made == 1, f"{nb_path.name}: MODE = run_mode(SMOKE, DATA, SIZES) must appear exactly once, found {made}"
    assert not reads, ("SMOKE / DATA / SIZES read after MODE is made (use MODE.real for the data, "
                       "MODE.pick(tiny=..., cpu=..., t4=...) for sizes, MODE.name in run settings):\n  "
                       + "\n  ".join(reads))


@by_name
def test_code_cells_short(nb_path):
    """At most MAX_CELL_STATEMENTS statements per code cell, every ``ast.stmt`` at any depth
    counted once (a ``for`` with two statements in its body is three)."""
    long = []
    for where, source, tree in parsed_cells(nb_path):
        stmts = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
        if len(stmts) > MAX_CELL_STATEMENTS:
            extra = sorted(stmts, key=lambda n: (n.lineno, n.col_offset))[MAX_CELL_STATEMENTS]
            long.append(f"{where}: {len(stmts)} statements; the {MAX_CELL_STATEMENTS + 1}th is at line "
                        f"{extra.lineno}: {line_of(source, extra.lineno)[:70]!r}")
    assert not long, (f"code cells with more than {MAX_CELL_STATEMENTS} statements (split the cell, or "
                      "move plumbing into lib):\n  " + "\n  ".join(long))


@by_name
def test_one_statement_per_line(nb_path):
    """No physical line starts two statements: no ``a; b`` joins, no ``if x: y`` one-liners."""
    joined = []
    for where, source, tree in parsed_cells(nb_path):
        starts = {}
        for n in ast.walk(tree):
            if isinstance(n, ast.stmt):
                starts[n.lineno] = starts.get(n.lineno, 0) + 1
        joined += [f"{where}, line {ln}: {starts[ln]} statements in {line_of(source, ln)[:80]!r}"
                   for ln in sorted(starts) if starts[ln] > 1]
    assert not joined, ("lines that start more than one statement (put each statement, and the body "
                        "of an if/for/def, on its own line):\n  " + "\n  ".join(joined))


def _is_fit_call(node) -> bool:
    f = node.func if isinstance(node, ast.Call) else None
    return (isinstance(f, ast.Name) and f.id == "fit") or (isinstance(f, ast.Attribute) and f.attr == "fit")


@by_name
def test_fit_with_checkpoint_passes_config(nb_path):
    """``fit(..., checkpoint=...)`` must say which settings shape the run (``config=...``), so a
    re-run with other settings trains anew (lib.train.run_checkpoint)."""
    def passed(call, name, position):
        kw = {k.arg: k.value for k in call.keywords}
        value = kw.get(name, call.args[position] if len(call.args) > position else None)
        return value is not None and not (isinstance(value, ast.Constant) and value.value is None)

    bad = []
    for where, source, tree in parsed_cells(nb_path):
        for call in filter(_is_fit_call, ast.walk(tree)):
            splat = any(k.arg is None for k in call.keywords)  # fit(**kw): cannot tell
            if passed(call, "checkpoint", 3) and not passed(call, "config", 8) and not splat:
                bad.append(f"{where}, line {call.lineno}: {line_of(source, call.lineno)[:80]!r}")
    assert not bad, ("fit(...) with checkpoint= but no config= (pass the settings that shape the run, "
                     "e.g. config=dict(steps=..., lr=..., seed=SEED, mode=MODE.name)):\n  " + "\n  ".join(bad))


@by_name
def test_outputs_go_to_the_mode_folder(nb_path):
    """Runs of different modes never share files: past the parameters cell, ``OUTPUT_DIR`` is used only
    as ``RUN_DIR = mode_dir(OUTPUT_DIR, MODE)`` (lib.report), and everything goes under RUN_DIR."""
    uses, calls = [], 0
    for where, source, tree in parsed_cells(nb_path)[2:]:  # past the setup and parameters cells
        ok = set()
        for call in ast.walk(tree):
            f = getattr(call, "func", None)
            if isinstance(call, ast.Call) and getattr(f, "id", getattr(f, "attr", None)) == "mode_dir":
                args = [ast.unparse(a) for a in call.args]
                args += [f"{k.arg}={ast.unparse(k.value)}" for k in call.keywords]
                if args in (["OUTPUT_DIR", "MODE"], ["OUTPUT_DIR", "mode=MODE"]):
                    ok.add(id(call.args[0]))
                    calls += 1
        uses += [f"{where}, line {n.lineno}: {line_of(source, n.lineno)[:80]!r}" for n in ast.walk(tree)
                 if isinstance(n, ast.Name) and n.id == "OUTPUT_DIR" and id(n) not in ok]
    assert not uses, ("OUTPUT_DIR used directly (write under RUN_DIR = mode_dir(OUTPUT_DIR, MODE) "
                      "instead, so runs of different modes never share checkpoints, data or media):\n  "
                      + "\n  ".join(uses))
    assert calls, f"{nb_path.name} never calls mode_dir(OUTPUT_DIR, MODE) (lib.report) to get its RUN_DIR"


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

@pytest.mark.notebook
@by_name_runs
def test_notebook_runs(nb_path, notebook_runs):
    result = notebook_runs(nb_path)
    assert result["status"] == "passed", f"{nb_path.name} failed in smoke mode:\n{result['error']}"


@pytest.mark.notebook
@by_name_runs
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


# ---------------------------------------------------------------- the runner's folders

def _fake_notebook(path, body: str):
    """A two-cell notebook (parameters, then ``body``) that papermill would run."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('SMOKE = False\nOUTPUT_DIR = "outputs/x"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def in_process_papermill(monkeypatch):
    """papermill.execute_notebook replaced by an in-process exec of the code cells (no kernel)."""
    import papermill

    def execute(src, dst, parameters, **_):
        nb = nbformat.read(src, as_version=4)
        env = {}
        for cell in code_cells(nb):
            exec(cell.source, env)
            env.update(parameters if "parameters" in cell.metadata.get("tags", []) else {})
        nbformat.write(nb, dst)

    monkeypatch.setattr(papermill, "execute_notebook", execute)


def test_runner_reads_the_mode_folder_and_keeps_the_other_mode(tmp_path, in_process_papermill):
    nb = _fake_notebook(tmp_path / "99_fake.ipynb", (
        "from lib.report import Recorder, mode_dir\n"
        "RUN_DIR = mode_dir(OUTPUT_DIR, SMOKE)\n"
        "Recorder(RUN_DIR).record('smoke', SMOKE)\n"
        "(RUN_DIR / 'picture.png').write_bytes(b'png')\n"))
    out = tmp_path / "out"
    full = run_notebook(nb, out, smoke=False)
    assert (full["status"], full["metrics"], full["media"], full["run_dir"]) == (
        "passed", {"smoke": False}, ["picture.png"], "99_fake/full")
    (out / "99_fake" / "full" / "run.pt").write_bytes(b"a full-mode checkpoint")
    smoke = run_notebook(nb, out, smoke=True)
    assert (smoke["status"], smoke["metrics"], smoke["run_dir"]) == ("passed", {"smoke": True}, "99_fake/smoke")
    assert (out / "99_fake" / "full" / "run.pt").read_bytes() == b"a full-mode checkpoint"
    assert (out / "99_fake" / "smoke" / "99_fake.ipynb").exists()
    report = write_report([smoke], out, smoke=True).read_text()
    assert "(99_fake/smoke/picture.png)" in report and "(99_fake/smoke/99_fake.ipynb)" in report


def test_runner_fails_a_notebook_that_records_outside_its_mode_folder(tmp_path, in_process_papermill):
    nb = _fake_notebook(tmp_path / "98_stray.ipynb", (
        "from lib.report import Recorder\n"
        "Recorder(OUTPUT_DIR).record('psnr', 20.0)\n"))
    result = run_notebook(nb, tmp_path / "out", smoke=True)
    assert result["status"] == "failed" and result["metrics"] == {}
    assert "mode_dir(OUTPUT_DIR, MODE)" in result["error"] and "98_stray/metrics.json" in result["error"]


# ---------------------------------------------------------------- the static checks themselves

def _notebook_of(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title")] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


GOOD_CELLS = (
    "from lib.colab import setup\n",
    'SMOKE = True\nDATA = None\nSIZES = None\nOUTPUT_DIR = "outputs/x"\n',
    "from lib.report import Recorder, mode_dir, run_mode\nMODE = run_mode(SMOKE, DATA, SIZES)\n"
    "RUN_DIR = mode_dir(OUTPUT_DIR, MODE)\nreport = Recorder(RUN_DIR, MODE)\n",
    "for i in range(3):\n    x = i  # one statement per line; a trailing semicolon is fine;\nplt.show();\n",
    'hist = fit(step, 10, state, checkpoint=f"{RUN_DIR}/a.pt", config=dict(lr=0.1, mode=MODE.name))\n',
)


@pytest.mark.parametrize("check", [test_code_cells_short, test_one_statement_per_line,
                                   test_fit_with_checkpoint_passes_config, test_outputs_go_to_the_mode_folder,
                                   test_data_and_sizes_come_from_the_mode],
                         ids=lambda f: f.__name__)
def test_static_checks_pass_a_good_notebook(tmp_path, check):
    check(_notebook_of(tmp_path / "97_good.ipynb", *GOOD_CELLS))


LONG_CELL = "".join(f"x{i} = {i}\n" for i in range(12)) + "for i in range(2):\n    if i:\n        y = i\n        z = i\n"
AT = r"96_bad.ipynb cell 6 \(code cell 5\)"  # the bad cell comes after the markdown cell and GOOD_CELLS


@pytest.mark.parametrize("check, bad_cell, message", [
    (test_code_cells_short, LONG_CELL, AT + r": 16 statements; the 16th is at line 16: 'z = i'"),
    (test_one_statement_per_line, "a = 1\nb = 2; c = 3\n", AT + r", line 2: 2 statements in 'b = 2; c = 3'"),
    (test_one_statement_per_line, "if a:  b = 2\n", AT + r", line 1: 2 statements in 'if a:  b = 2'"),
    (test_fit_with_checkpoint_passes_config, "h = fit(s, 5, st,\n        checkpoint=f'{RUN_DIR}/b.pt')\n",
     AT + r", line 1: 'h = fit\(s, 5, st,'"),
    (test_fit_with_checkpoint_passes_config, "h = train.fit(s, 5, st, 'b.pt', config=None)\n",
     AT + r", line 1: \"h = train.fit"),
    (test_outputs_go_to_the_mode_folder, "torch.save(x, f'{OUTPUT_DIR}/c.pt')\n",
     AT + r", line 1: \"torch.save\(x, f'{OUTPUT_DIR}/c.pt'\)\""),
    (test_data_and_sizes_come_from_the_mode, "N = 10 if SMOKE else 100\n", AT + r", line 1: 'N = 10 if SMOKE else 100'"),
], ids=["long-cell", "semicolon", "one-line-if", "fit-no-config", "fit-config-none", "output-dir", "smoke-read"])
def test_static_checks_name_notebook_cell_and_line(tmp_path, check, bad_cell, message):
    nb = _notebook_of(tmp_path / "96_bad.ipynb", *GOOD_CELLS, bad_cell)
    with pytest.raises(AssertionError, match=message):
        check(nb)
