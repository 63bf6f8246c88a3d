"""The T4 budget (lib/t4_budget.json, written by benchmarks/t4_budget): current, within a lab
session at SIZES="t4", and announced by the notebooks before the cells it costs."""
from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

from lib import budget
from lib.report import run_mode
from tools.nbsizes import notebook_settings

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))
IDS = [p.name[:2] for p in NOTEBOOKS]
REWRITE = "re-estimate: .venv/bin/python -m benchmarks.t4_budget --nb {nb} --write"


@pytest.fixture(scope="module")
def data():
    return budget.load_budget()


def _calls(nb_path, name):
    """The literal arguments of every ``budget.<name>(...)`` call in a notebook's code cells."""
    found = []
    for cell in json.loads(nb_path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name
                    and ast.unparse(node.func.value) == "budget"):
                found.append([a.value if isinstance(a, ast.Constant) else ast.unparse(a) for a in node.args])
    return found


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_estimate_is_for_the_notebooks_current_settings(nb_path, data):
    nb = nb_path.name[:2]
    assert nb in data["notebooks"], f"no estimate for notebook {nb}; " + REWRITE.format(nb=nb)
    for sizes in budget.ESTIMATED_SIZES:
        stored = data["notebooks"][nb][sizes]["settings"]
        now = notebook_settings(nb_path, sizes, data="real")
        changed = {k: (stored.get(k), now.get(k)) for k in set(stored) | set(now) if stored.get(k) != now.get(k)}
        assert not changed, (f"{nb_path.name} at SIZES={sizes!r}: settings changed since the estimate "
                             f"(name: (estimated, now)) {changed}; " + REWRITE.format(nb=nb))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_lab_sizes_fit_a_lab_session_and_long_runs_longer(nb_path, data):
    entry = data["notebooks"][nb_path.name[:2]]
    assert entry["t4"]["minutes"] <= budget.LAB_MINUTES, (
        f"{nb_path.name}: SIZES='t4' is estimated at {entry['t4']['minutes']} min on a T4, over the "
        f"{budget.LAB_MINUTES}-minute lab session: {[(p['section'], p['minutes']) for p in entry['t4']['parts']]}")
    assert entry["long"]["minutes"] >= entry["t4"]["minutes"]
    for sizes in budget.ESTIMATED_SIZES:
        total = sum(p["count"] * p["t4_seconds"] for p in entry[sizes]["parts"]) / 60
        assert entry[sizes]["minutes"] == pytest.approx(total, abs=0.1 + 0.01 * total)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_notebook_prints_the_plan_and_announces_every_part(nb_path, data):
    nb = nb_path.name[:2]
    plans = _calls(nb_path, "print_plan")
    assert len(plans) == 1 and plans[0][:2] == [nb, "MODE"], (
        f"{nb_path.name}: call budget.print_plan({nb!r}, MODE, globals()) once, after the sizes; found {plans}")
    guards = _calls(nb_path, "require_gpu")
    assert len(guards) == 1 and guards[0][:2] == [nb, "MODE"], (
        f"{nb_path.name}: call budget.require_gpu({nb!r}, MODE, device, ALLOW_CPU) once, after print_plan; "
        f"found {guards}")
    announced = [c[1] for c in _calls(nb_path, "announce")]
    assert all(c[0] == nb for c in _calls(nb_path, "announce")), f"{nb_path.name}: announce another notebook's part"
    for sizes in budget.ESTIMATED_SIZES:
        sections = {p["section"] for p in data["notebooks"][nb][sizes]["parts"]}
        assert set(announced) <= sections, f"{nb_path.name}: announces {sorted(set(announced) - sections)}, not estimated"
        long = {p["section"] for p in data["notebooks"][nb][sizes]["parts"] if p["minutes"] >= budget.ANNOUNCE_MINUTES}
        assert long <= set(announced), (
            f"{nb_path.name}: parts of {budget.ANNOUNCE_MINUTES} min or more at SIZES={sizes!r} not announced: "
            f"{sorted(long - set(announced))} (budget.announce({nb!r}, section, MODE) before the cell that runs it)")


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_benchmark_module_lists_the_same_parts_at_every_size(nb_path, data):
    nb = nb_path.name[:2]
    module = importlib.import_module(f"benchmarks.t4_budget.nb{nb}")
    want = [p["section"] for p in data["notebooks"][nb]["t4"]["parts"]]
    for sizes in ("tiny", *budget.ESTIMATED_SIZES):
        got = [p.section for p in module.parts(notebook_settings(nb_path, sizes, data="real"), sizes)]
        assert got == want, f"benchmarks/t4_budget/nb{nb}.py at {sizes}: parts {got}, the estimate has {want}"


def test_silent_below_t4_sizes_and_clear_errors(capsys):
    for smoke, sizes in ((True, None), (True, "tiny"), (False, "cpu")):
        mode = run_mode(smoke, sizes=sizes)
        budget.print_plan("04", mode)
        for section in ("nerf", "no such part"):
            budget.announce("04", section, mode)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="'no such part'"):
        budget.announce("04", "no such part", run_mode(False))
    with pytest.raises(ValueError, match="notebook '42'"):
        budget.print_plan("42", run_mode(False))


def test_plan_says_total_parts_the_other_size_and_edited_settings(data):
    entry = data["notebooks"]["04"]["t4"]
    lines = budget.plan_lines("04", run_mode(False), dict(entry["settings"]))
    assert "SIZES='long'" in lines[-1] and "changed" not in "\n".join(lines)
    assert len(lines) == 2 + len({p["label"] for p in entry["parts"]})
    edited = {**entry["settings"], "STEPS": 7}
    assert any("STEPS" in ln and "changed" in ln for ln in budget.plan_lines("04", run_mode(False), edited))


def test_refuses_a_file_of_another_format(tmp_path):
    bad = tmp_path / "budget.json"
    bad.write_text(json.dumps({"format": "something/1", "notebooks": {}}))
    with pytest.raises(ValueError, match="budget.json"):
        budget.load_budget(bad)


def test_a_t4_sized_run_on_a_cpu_stops_with_one_line_naming_allow_cpu():
    for smoke, sizes, device, allow in ((True, None, "cpu", False), (False, "cpu", "cpu", False),
                                        (False, "t4", "cuda", False), (False, "t4", "cpu", True)):
        budget.require_gpu("04", run_mode(smoke, sizes=sizes), device, allow)  # nothing to stop
    for sizes in budget.ESTIMATED_SIZES:
        with pytest.raises(budget.NeedsGPU) as err:
            budget.require_gpu("04", run_mode(False, sizes=sizes), "cpu")
        lines = err.value._render_traceback_()
        assert len(lines) == 1 and "ALLOW_CPU = True" in lines[0] and "T4 GPU" in lines[0], lines
        assert f"SIZES={sizes!r}" in lines[0] and "\n" not in lines[0]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_before_you_run_on_colab_states_the_current_estimates(nb_path, data):
    """The second cell tells a student what a full run needs; its minutes follow lib/t4_budget.json (re-estimating
    the budget without updating the cell fails here)."""
    import re

    cell = json.loads(nb_path.read_text())["cells"][1]
    text = "".join(cell["source"])
    assert cell["cell_type"] == "markdown" and text.startswith("### Before you run this on Colab"), \
        f"{nb_path.name}: the cell after the title must be '### Before you run this on Colab'"
    for needed in ("T4 GPU", "ALLOW_CPU = True", "**Time**", "**GPU memory**", "**Downloads**"):
        assert needed in text, f"{nb_path.name}: 'Before you run this on Colab' must say {needed!r}"
    minutes = [int(m) for m in re.findall(r"about (\d+) min", text)[:2]]
    nb = nb_path.name[:2]
    want = [round(data["notebooks"][nb][s]["minutes"]) for s in ("t4", "long")]
    assert minutes == want, f"{nb_path.name}: 'Before you run this on Colab' says {minutes} min, the estimate is {want}"
