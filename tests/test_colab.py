"""Tests of lib.colab and lib.colab.pytorch3d without Colab: route choice, cache keys, set-up
idempotency, the first cell."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lib import colab
from lib.colab import pytorch3d as p3d
from lib.colab import runner as colab_runner
from lib.colab.pytorch3d import PrebuiltWheel, Route, RuntimeInfo, cache_key, choose_pytorch3d_route

ROOT = Path(__file__).resolve().parent.parent
PY312_CU130 = RuntimeInfo(python="3.12", torch="2.12.1+cu130", cuda="13.0")
COLAB_LIKE = RuntimeInfo(python="3.12", torch="2.9.0+cu126", cuda="12.6")  # no prebuilt wheel
COLAB_WHEEL = "pytorch3d==0.7.9+pt2.9.0cu126"  # what the community index would have to hold
NO_MATCH = (f"ERROR: Could not find a version that satisfies the requirement {COLAB_WHEEL}\n"
            f"ERROR: No matching distribution found for {COLAB_WHEEL}\n")


class FakeRunner:
    """Records commands; answers the version probe with ``probes`` in turn; 'builds' wheels.
    A command with the argument ``fail_on`` exits 1 printing ``fail_output``."""

    def __init__(self, probes=(), fail_on=None, fail_output="error: boom\n"):
        self.calls, self.probes, self.fail_on, self.fail_output = [], list(probes), fail_on, fail_output

    def __call__(self, cmd, env=None):
        cmd = [str(c) for c in cmd]
        self.calls.append((cmd, dict(env or {})))
        if cmd[1] == "-c":  # the probe
            return subprocess.CompletedProcess(cmd, 0, json.dumps(self.probes.pop(0).__dict__) + "\n", "")
        if self.fail_on and self.fail_on in cmd:
            return subprocess.CompletedProcess(cmd, 1, self.fail_output, "")
        if "wheel" in cmd:  # pip wheel -w OUT: leave a wheel behind, as pip would
            out = Path(cmd[cmd.index("-w") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "pytorch3d-0.7.9-cp312-cp312-linux_x86_64.whl").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    def pip_calls(self):
        return [cmd[3:] for cmd, _ in self.calls if cmd[1:3] == ["-m", "pip"]]


def ok(info: RuntimeInfo) -> RuntimeInfo:
    return RuntimeInfo(info.python, info.torch, info.cuda, pytorch3d="0.7.9")


# ---- cache key and route choice (pure) -------------------------------------------------------

def test_cache_key():
    assert cache_key(COLAB_LIKE) == "py312-torch2.9.0-cu126"
    assert cache_key(RuntimeInfo(python="3.11", torch="2.12.1+cpu", cuda=None)) == "py311-torch2.12.1-cpu"
    assert cache_key(PY312_CU130) == "py312-torch2.12.1-cu130"


def test_route_installed_wins():
    route = choose_pytorch3d_route(ok(COLAB_LIKE), [])
    assert (route.kind, route.target) == ("installed", "0.7.9")


def test_route_prebuilt_matches_torch_2_12_cu130():
    route = choose_pytorch3d_route(PY312_CU130, [])
    assert route.kind == "prebuilt" and route.target == "easypytorch3d==0.7.9.post1"


@pytest.mark.parametrize("info", [
    COLAB_LIKE,                                                        # other torch
    RuntimeInfo(python="3.12", torch="2.12.1+cu126", cuda="12.6"),    # right torch, CUDA 12
    RuntimeInfo(python="3.12", torch="2.12.1+cpu", cuda=None),        # CPU-only torch
    RuntimeInfo(python="3.9", torch="2.12.1+cu130", cuda="13.0"),     # no cp39 wheel
    RuntimeInfo(python="3.12", torch="2.13.0+cu130", cuda="13.0"),    # next torch series
])
def test_route_prebuilt_needs_exact_runtime(info):
    assert choose_pytorch3d_route(info, [], community=False).kind == "build"
    expected = "community" if info.cuda else "build"  # CUDA runtimes try the community index first
    assert choose_pytorch3d_route(info, []).kind == expected


@pytest.mark.parametrize("torch_version, cuda, wheel", [
    ("2.9.0+cu126", "12.6", "pytorch3d==0.7.9+pt2.9.0cu126"),
    ("2.8.0+cu128", "12.8", "pytorch3d==0.7.9+pt2.8.0cu128"),
    ("2.10.0", "12.8", "pytorch3d==0.7.9+pt2.10.0cu128"),
    ("2.9.1+cu130", "13.0", "pytorch3d==0.7.9+pt2.9.1cu130"),
])
def test_route_community_names_the_exact_wheel(torch_version, cuda, wheel):
    route = choose_pytorch3d_route(RuntimeInfo("3.12", torch_version, cuda), [])
    assert (route.kind, route.target) == ("community", wheel)
    assert p3d.COMMUNITY_INDEX in route.reason


def test_route_community_comes_after_installed_and_prebuilt_before_cached(tmp_path):
    cached = str(tmp_path / cache_key(COLAB_LIKE) / "pytorch3d-0.7.9-cp312-cp312-linux_x86_64.whl")
    assert choose_pytorch3d_route(ok(COLAB_LIKE), [cached]).kind == "installed"
    assert choose_pytorch3d_route(PY312_CU130, []).kind == "prebuilt"
    assert choose_pytorch3d_route(COLAB_LIKE, [cached]).kind == "community"
    assert choose_pytorch3d_route(COLAB_LIKE, [cached], community=False).kind == "cached"


def test_route_prebuilt_series_is_not_a_string_prefix():
    table = (PrebuiltWheel("x==1", ("3.12",), torch="2.1", cuda=("13.0",)),)
    assert choose_pytorch3d_route(PY312_CU130, [], prebuilt=table).kind != "prebuilt"  # 2.12 is not 2.1
    table = (PrebuiltWheel("x==1", ("3.12",), torch="2.12.1", cuda=("13.0",)),)
    assert choose_pytorch3d_route(PY312_CU130, [], prebuilt=table).target == "x==1"


def test_route_cached_only_for_its_own_key(tmp_path):
    mine = tmp_path / "py312-torch2.9.0-cu126" / "pytorch3d-0.7.9-cp312-cp312-linux_x86_64.whl"
    other = tmp_path / "py312-torch2.8.0-cu126" / "pytorch3d-0.7.9-cp312-cp312-linux_x86_64.whl"
    route = choose_pytorch3d_route(COLAB_LIKE, [str(other), str(mine)], community=False)
    assert route == Route("cached", "py312-torch2.9.0-cu126", str(mine), route.reason)
    assert choose_pytorch3d_route(COLAB_LIKE, [str(other)], community=False).kind == "build"
    build = choose_pytorch3d_route(COLAB_LIKE, [], community=False)
    assert (build.kind, build.target) == ("build", p3d.PYTORCH3D_SOURCE)


# ---- setup ------------------------------------------------------------------------------------

def test_setup_is_a_noop_outside_colab(capsys, tmp_path):
    runner = FakeRunner()
    assert colab.setup(pytorch3d=True, runner=runner, marker_dir=tmp_path) == {"colab": False}
    assert runner.calls == [] and list(tmp_path.iterdir()) == []
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_setup_on_simulated_colab_installs_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(colab, "in_colab", lambda: True)
    runner = FakeRunner()
    first = colab.setup(runner=runner, marker_dir=tmp_path)
    assert first["colab"] and first["requirements"] == "installed" and first["pytorch3d"] is None
    req = str(ROOT / "requirements-colab.txt")
    assert runner.pip_calls() == [["install", "-q", "-r", req]]
    assert colab.setup(runner=runner, marker_dir=tmp_path)["requirements"] == "skipped"
    assert len(runner.pip_calls()) == 1  # second run: marker found, nothing installed
    assert "already installed" in capsys.readouterr().out


def test_setup_with_pytorch3d_reports_the_route(monkeypatch, tmp_path):
    monkeypatch.setattr(colab, "in_colab", lambda: True)
    runner = FakeRunner(probes=[COLAB_LIKE, ok(COLAB_LIKE)])
    assert colab.setup(pytorch3d=True, runner=runner, marker_dir=tmp_path)["pytorch3d"] == "community"


def test_setup_failed_install_leaves_no_marker(monkeypatch, tmp_path):
    monkeypatch.setattr(colab, "in_colab", lambda: True)
    with pytest.raises(RuntimeError, match="requirements-colab.txt failed"):
        colab.setup(runner=FakeRunner(fail_on="-r"), marker_dir=tmp_path)
    assert list(tmp_path.glob("*.ok")) == []


def test_requirements_colab_never_installs_torch():
    names = [ln.split("=")[0].split("<")[0].split(">")[0].strip().lower()
             for ln in (ROOT / "requirements-colab.txt").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert names and not {"torch", "torchvision", "torchaudio"} & set(names)


# ---- ensure_pytorch3d with a fake runner ------------------------------------------------------

def test_ensure_prebuilt_installs_the_wheel_and_verifies(tmp_path):
    runner = FakeRunner(probes=[PY312_CU130, ok(PY312_CU130)])
    route = p3d.ensure_pytorch3d(cache_dir=tmp_path / "cache", runner=runner)
    assert route.kind == "prebuilt"
    assert runner.pip_calls() == [["install", "-q", "easypytorch3d==0.7.9.post1"]]
    assert not (tmp_path / "cache").exists()  # no cache (so no Drive) needed


def no_community_wheel(probes) -> FakeRunner:
    """A runner whose community-index install finds no wheel (pip's own words)."""
    return FakeRunner(probes=probes, fail_on=COLAB_WHEEL, fail_output=NO_MATCH)


def test_ensure_takes_the_community_wheel_and_says_it_is_third_party(tmp_path, capsys):
    runner = FakeRunner(probes=[COLAB_LIKE, ok(COLAB_LIKE)])
    route = p3d.ensure_pytorch3d(cache_dir=tmp_path / "cache", runner=runner)
    assert (route.kind, route.target) == ("community", COLAB_WHEEL)
    assert runner.pip_calls() == [["install", "-q", "--extra-index-url", p3d.COMMUNITY_INDEX,
                                   COLAB_WHEEL, "torch==2.9.0+cu126"]]  # Colab's torch stays
    out = capsys.readouterr().out
    assert "third-party" in out and COLAB_WHEEL in out and p3d.COMMUNITY_INDEX in out
    assert not (tmp_path / "cache").exists()  # no cache (so no Drive) needed


def test_ensure_no_matching_community_wheel_falls_through_to_build(tmp_path, capsys):
    runner = no_community_wheel([COLAB_LIKE, ok(COLAB_LIKE)])
    route = p3d.ensure_pytorch3d(cache_dir=tmp_path / "cache", runner=runner)
    assert route.kind == "build"
    pips = runner.pip_calls()
    assert COLAB_WHEEL in pips[0] and any("wheel" in c for c in pips[1:])
    out = capsys.readouterr().out
    assert f"no third-party wheel matches {COLAB_WHEEL}" in out and "20-40 minutes" in out


def test_ensure_community_wheel_that_does_not_import_is_removed(tmp_path, capsys):
    broken = RuntimeInfo("3.12", "2.9.0+cu126", "12.6", error="ImportError: undefined symbol")
    runner = FakeRunner(probes=[COLAB_LIKE, broken, ok(COLAB_LIKE)])
    assert p3d.ensure_pytorch3d(cache_dir=tmp_path / "cache", runner=runner).kind == "build"
    assert ["uninstall", "-y", "pytorch3d"] in runner.pip_calls()
    assert "does not import (ImportError: undefined symbol)" in capsys.readouterr().out


def test_ensure_cpu_runtime_skips_the_community_index(tmp_path):
    cpu = RuntimeInfo("3.12", "2.9.0+cpu", None)
    runner = FakeRunner(probes=[cpu, ok(cpu)])
    assert p3d.ensure_pytorch3d(cache_dir=tmp_path / "cache", runner=runner).kind == "build"
    assert not any(p3d.COMMUNITY_INDEX in c for c in runner.pip_calls())


def test_ensure_builds_once_then_uses_the_cache(tmp_path, capsys):
    cache = tmp_path / "cache"
    runner = no_community_wheel([COLAB_LIKE, ok(COLAB_LIKE)])
    assert p3d.ensure_pytorch3d(cache_dir=cache, runner=runner).kind == "build"
    (build_cmd, env), = [(c, e) for c, e in runner.calls if "wheel" in c]
    assert "--no-build-isolation" in build_cmd and build_cmd[-1] == p3d.PYTORCH3D_SOURCE
    assert env["FORCE_CUDA"] == "1" and build_cmd[build_cmd.index("-w") + 1] == str(cache / cache_key(COLAB_LIKE))
    assert "20-40 minutes" in capsys.readouterr().out
    runner = no_community_wheel([COLAB_LIKE, ok(COLAB_LIKE)])  # a fresh runtime, same versions
    route = p3d.ensure_pytorch3d(cache_dir=cache, runner=runner)
    assert route.kind == "cached" and runner.pip_calls()[1:] == [["install", "-q", route.target]]


def test_ensure_falls_back_to_local_cache_without_drive(tmp_path, capsys):
    mounts = []

    def refuse(path):
        mounts.append(path)
        raise OSError("no Drive here")

    runner = no_community_wheel([COLAB_LIKE, ok(COLAB_LIKE)])
    p3d.ensure_pytorch3d(cache_dir=p3d.DRIVE_CACHE_DIR, runner=runner, mount=refuse,
                         local_cache_dir=tmp_path / "local")
    assert mounts == [p3d.DRIVE_MOUNT]
    assert list((tmp_path / "local" / cache_key(COLAB_LIKE)).glob("pytorch3d-*.whl"))
    assert "Drive unavailable" in capsys.readouterr().out


def test_ensure_raises_a_clear_error_when_import_still_fails(tmp_path):
    broken = RuntimeInfo("3.12", "2.12.1+cu130", "13.0", error="ImportError: undefined symbol")
    runner = FakeRunner(probes=[PY312_CU130, broken])
    with pytest.raises(RuntimeError, match=r"(?s)still does not import.*undefined symbol.*2\.12\.1\+cu130"):
        p3d.ensure_pytorch3d(cache_dir=tmp_path, runner=runner)


def test_ensure_on_this_machine_finds_pytorch3d_installed():
    """The real probe, in a real subprocess: the local stack has a working PyTorch3D."""
    pytest.importorskip("pytorch3d")
    route = p3d.ensure_pytorch3d(cache_dir="/nonexistent", use_drive=False)
    assert route.kind == "installed"


# ---- the first notebook cell ------------------------------------------------------------------

def test_setup_cell_shape():
    for flag in (True, False):
        cell = colab.setup_cell(flag)
        lines = cell.splitlines()
        assert cell == colab.setup_cell(flag) and len(lines) <= 12 and lines[0].startswith("# ")
        assert not any(ln.lstrip().startswith(("!", "%")) for ln in lines)
        compile(cell, "<setup cell>", "exec")
        assert lines[-1] == f"lib.colab.setup(pytorch3d={flag})"
    assert colab.setup_cell(True) != colab.setup_cell(False)


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # as if the repo were pip install -e'd
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_setup_cell_outside_colab_prints_one_line(tmp_path):
    no_torch = '\nassert "torch" not in sys.modules, "the set-up cell must stay cheap"'
    proc = _run_python(colab.setup_cell(True) + no_torch, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1 and "Not on Colab" in proc.stdout
    assert proc.stderr == ""


def test_setup_cell_on_simulated_colab_clones_once(tmp_path):
    harness = textwrap.dedent("""
        import json, os, subprocess, sys, types
        sys.modules["google.colab"] = types.ModuleType("google.colab")
        import lib.colab
        calls, made = [], set()
        subprocess.run = lambda cmd, check: (calls.append(cmd), made.add(cmd[-1]))
        os.path.isdir = lambda p, _isdir=os.path.isdir: p in made or _isdir(p)
        lib.colab.setup = lambda **kw: calls.append(kw)
        for _ in range(2):
            exec(CELL)
        print(json.dumps({"calls": calls, "hits": sys.path.count(REPO_DIR)}))
    """)
    proc = _run_python(f"CELL = {colab.setup_cell(False)!r}\n" + harness, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    clone, setup1, setup2 = out["calls"]
    assert clone[:2] == ["git", "clone"] and f"--branch={colab_runner.DEFAULT_REF}" in clone
    assert clone[-2:] == [f"https://github.com/{colab_runner.GITHUB_REPO}", "/content/learning-3d-vision"]
    assert setup1 == setup2 == {"pytorch3d": False} and out["hits"] == 1
