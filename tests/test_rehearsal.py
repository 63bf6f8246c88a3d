"""Full mode rehearsed: every notebook with real data at tiny sizes, against miniature stand-ins.

The stand-ins (tools/rehearsal: files in the real formats served from 127.0.0.1, tiny models in an
offline Hugging Face cache, torchvision's ResNet-18 file) are written once per session; each
notebook then runs, in the rehearsal's environment (which only its kernels see), with ``DATA="real", SIZES="tiny"`` through papermill, with a line tracer
(tools/rehearsal/coverage.py). For each notebook the test asserts: the run passed and every
code cell ran; it took the real-data branch (``run_data``) through the rehearsal's stand-ins; every
number in its ``metrics.json`` is finite; with the default parameters, ``metrics.json`` holds every
key the smoke run records and the media and files the smoke run writes (videos, pictures, ``.ply``,
``.obj``, the sweep table) exist; and
every statement outside the procedural-only branches ran in one of its rehearsals (some
notebooks run twice, with another value of a parameter that picks a code path).
"""
import json
import math
from pathlib import Path

import nbformat
import pytest

from test_notebooks import NOTEBOOKS, needs_pytorch3d
from tools.nbrun import run_notebook
from tools.rehearsal import PHOTO, rehearsal, write_standins
from tools.rehearsal.coverage import TRACE_TAG, traced_copy, uncovered

REPO = Path(__file__).resolve().parents[1]
RUN_ROOT = REPO / "outputs" / "test-run" / "rehearsal"
PROMISED = {".gif", ".mp4", ".png", ".html", ".ply", ".obj", ".json"}  # files a run leaves at its top

# Parameters that pick another real-data code path: each set is one more run of that notebook.
# "<photo>": the rehearsal's RGBA photo; "<r2n2>": the R2N2 stand-in as the first run extracted it.
VARIANTS = {
    "02_meshes_and_fitting": [{}, {"R2N2_ROOT": "<r2n2>"}],
    "04_nerf": [{}, {"FULL_DATA": "nerf_synthetic"}],
    "09_neuralift": [{}, {"IMAGE_PATH": "<photo>"}],
}

by_name_rehearsals = pytest.mark.parametrize(
    "nb_path", [pytest.param(p, id=p.stem, marks=[pytest.mark.needs_pytorch3d] * needs_pytorch3d(p))
                for p in NOTEBOOKS])


@pytest.fixture(scope="session")
def rehearsal_root(tmp_path_factory):
    """The stand-ins, written once per session (each test serves them while it runs)."""
    root = tmp_path_factory.mktemp("rehearsal")
    write_standins(root, seed=0)
    return root


def _run(nb_path, root, variant: int, params: dict) -> tuple[dict, Path]:
    places = {"<photo>": root / PHOTO, "<r2n2>": root / "cache" / "r2n2_shapenet_dataset"}
    params = {k: str(places[v]) if v in places else v for k, v in params.items()}
    out = RUN_ROOT / f"v{variant}"
    folder = out / nb_path.stem
    folder.mkdir(parents=True, exist_ok=True)
    trace = folder / "trace.json"
    trace.unlink(missing_ok=True)
    copy = traced_copy(nb_path, folder / nb_path.name, trace)
    return run_notebook(copy, out, smoke=False, data="real", sizes="tiny", parameters=params), trace


def _cells_not_run(executed: Path) -> list[int]:
    nb = nbformat.read(executed, as_version=4)
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is None
            and TRACE_TAG not in c.metadata.get("tags", [])]


@pytest.mark.notebook
@pytest.mark.rehearsal
@by_name_rehearsals
def test_rehearsal(nb_path, rehearsal_root, notebook_runs):
    smoke = notebook_runs(nb_path)  # before the rehearsal's environment is set
    assert smoke["status"] == "passed", f"{nb_path.name}: the smoke run failed, nothing to compare with"
    smoke_dir = REPO / "outputs" / "test-run" / smoke["run_dir"]
    promised = sorted(p.name for p in smoke_dir.iterdir() if p.is_file() and p.suffix in PROMISED
                      and p.name != "trace.json")
    traces = []
    for variant, params in enumerate(VARIANTS.get(nb_path.stem, [{}])):
        with rehearsal(rehearsal_root, seed=0):
            result, trace = _run(nb_path, rehearsal_root, variant, params)
        where = f"{nb_path.name} (real data, tiny sizes{', ' + str(params) if params else ''})"
        assert result["status"] == "passed", f"{where} failed:\n{result['error']}"
        run_dir = RUN_ROOT / f"v{variant}" / result["run_dir"]
        assert not _cells_not_run(Path(result["notebook"])), f"{where}: cells skipped: {_cells_not_run(Path(result['notebook']))}"
        metrics = result["metrics"]
        assert (metrics.get("run_data"), metrics.get("run_sizes")) == ("real", "tiny"), (
            f"{where}: the run did not take the real-data branch at tiny sizes: {metrics.get('run_data')!r}")
        bad = {k: v for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)}
        assert not bad, f"{where}: non-finite metrics {bad}"
        if not params:  # the default input, like the smoke run's (a user's photo has no true shape to score)
            missing = sorted(set(smoke["metrics"]) - set(metrics))
            assert not missing, f"{where}: records less than the smoke run; missing {missing}"
            absent = [name for name in promised if not (run_dir / name).is_file()]
            assert not absent, f"{where}: the smoke run writes {absent}, this run did not"
        traces.append(trace)
    not_run = uncovered(nb_path, traces)
    assert not not_run, (f"{nb_path.name}: statements that no rehearsal ran (outside the procedural-only "
                         "branches, which the smoke run covers):\n  " + "\n  ".join(not_run))


def test_rehearsal_file_refuses_urls_off_this_machine(tmp_path, monkeypatch):
    from lib.data import sources
    from lib.data.download import REHEARSAL_ENV

    path = tmp_path / "rehearsal.json"
    monkeypatch.setenv(REHEARSAL_ENV, str(path))
    monkeypatch.setattr(sources, "_REHEARSAL_CACHE", {})
    cases = [({"format": sources.REHEARSAL_FORMAT,
               "resources": {"cow_obj": {"url": "https://example.org/cow.obj", "sha256": "0" * 64, "size": 1}}},
              "http://127.0.0.1 only"),
             ({"resources": {}}, "not a rehearsal file"),
             ({"format": sources.REHEARSAL_FORMAT, "resources": {}}, "non-empty")]
    for content, message in cases:
        path.write_text(json.dumps(content))
        with pytest.raises(ValueError, match=message):
            sources.get("cow_obj")
    path.unlink()
    with pytest.raises(ValueError, match="cannot read the rehearsal file"):
        sources.get("cow_obj")


def test_rehearsal_redirects_every_fetch_and_says_so(tmp_path, monkeypatch, capsys):
    from lib.data import sources
    from lib.data.download import REHEARSAL_ENV

    path = tmp_path / "rehearsal.json"
    entry = {"url": "http://127.0.0.1:9/cow.obj", "sha256": "a" * 64, "size": 3}
    path.write_text(json.dumps({"format": sources.REHEARSAL_FORMAT,
                                "resources": {"cow_obj": entry, "truck/points/points_10000.npy": entry}}))
    monkeypatch.setenv(REHEARSAL_ENV, str(path))
    monkeypatch.setattr(sources, "_REHEARSAL_CACHE", {})
    res = sources.get("cow_obj")
    assert (res.urls, res.sha256, res.size, res.filename) == ([entry["url"]], entry["sha256"], 3, "cow.obj")
    assert "REHEARSAL" in capsys.readouterr().err and "REHEARSAL" in res.description
    assert [p for p, _ in sources.truck_resources()] == ["points/points_10000.npy"]
    with pytest.raises(ValueError, match="no stand-in for 'cow_mtl'"):
        sources.get("cow_mtl")
    monkeypatch.delenv(REHEARSAL_ENV)
    assert sources.get("cow_obj").urls[0].startswith("https://raw.githubusercontent.com/")


def test_coverage_names_statements_no_rehearsal_ran(tmp_path):
    cells = ["import lib.colab  # the setup cell: not traced",
             "SMOKE = False",
             "if not MODE.real:\n    a = 1  # procedural only: the smoke run's\nelse:\n    b = 2\nc = 3",
             "if MODE.real:\n    d = 4\nelse:\n    e = 5  # procedural only\nif d > 9:\n    f = 6  # (data-dependent) a guard\n"
             "if d < 0:\n    raise ValueError('bad')\ng = 7"]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, tmp_path / "x.ipynb")
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({cells[1]: [1], cells[2]: [1, 4], cells[3]: [1, 2, 5, 7, 9]}))
    assert uncovered(tmp_path / "x.ipynb", [trace]) == ["cell 2, line 5: c = 3"]
    more = tmp_path / "more.json"
    more.write_text(json.dumps({cells[2] + "\n": [5]}))  # a second run, as papermill may end a cell with a newline
    assert uncovered(tmp_path / "x.ipynb", [trace, more]) == []
