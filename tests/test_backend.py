"""Tests of lib.backend on CPU: backend choice and the once-per-process build notice."""
from __future__ import annotations

import pytest
import torch

from lib import backend
from lib.backend import announce_cuda_build, resolve_backend


def test_auto_on_cpu_is_torch():
    assert resolve_backend("auto", "cpu", "nerfacc") == "torch"
    assert resolve_backend("auto", torch.device("cpu"), "gsplat") == "torch"


def test_torch_is_always_torch():
    assert resolve_backend("torch", "cpu", "nerfacc") == "torch"
    assert resolve_backend("torch", "cuda", "gsplat") == "torch"  # no CUDA needed to say "torch"


def test_auto_on_cuda_uses_package_only_when_installed(monkeypatch):
    monkeypatch.setattr(backend, "_package_available", lambda name: name == "nerfacc")
    assert resolve_backend("auto", "cuda:0", "nerfacc") == "nerfacc"
    assert resolve_backend("auto", "cuda:0", "gsplat") == "torch"
    assert resolve_backend("nerfacc", "cuda", "nerfacc") == "nerfacc"


def test_explicit_package_on_cpu_raises(monkeypatch):
    monkeypatch.setattr(backend, "_package_available", lambda name: True)
    with pytest.raises(ValueError, match=r'CUDA device.*backend="torch"'):
        resolve_backend("nerfacc", "cpu", "nerfacc")


def test_explicit_package_not_installed_raises(monkeypatch):
    monkeypatch.setattr(backend, "_package_available", lambda name: False)
    with pytest.raises(ValueError, match=r'does not import.*backend="torch"'):
        resolve_backend("gsplat", "cuda", "gsplat")


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match="'nerfac'"):
        resolve_backend("nerfac", "cpu", "nerfacc")


def test_package_available_really_imports():
    assert backend._package_available("json")
    assert not backend._package_available("no_such_package_course3d")


def test_notice_printed_once_per_package(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(backend, "_ANNOUNCED", set())
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    announce_cuda_build("nerfacc")
    first = capsys.readouterr().out
    assert "nerfacc" in first and "minutes" in first and "#164" in first
    assert str(tmp_path) in first and "lock" in first and 'backend="torch"' in first
    announce_cuda_build("nerfacc")
    assert capsys.readouterr().out == ""
    announce_cuda_build("gsplat")
    assert "gsplat" in capsys.readouterr().out


def test_extensions_dir_default_without_env(monkeypatch):
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    assert "torch_extensions" in backend.extensions_dir()


# ------------------------------------------------------------ a CUDA extension that fails to build

def _failing_package(monkeypatch, name: str):
    """Put a stand-in ``name`` in sys.modules whose every function raises what a failed JIT build
    raises (torch.utils.cpp_extension: RuntimeError "Error building extension ..."), and forget
    earlier failures."""
    import sys
    import types

    import lib.render.gaussians.render  # noqa: F401 -- imported (with the real packages) before the stand-in
    import lib.render.occupancy  # noqa: F401

    def build_fails(*args, **kwargs):
        raise RuntimeError(f"Error building extension '{name}_cuda': nvcc: not found")

    def attribute(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return build_fails

    fake = types.ModuleType(name)
    fake.__getattr__ = attribute
    monkeypatch.setitem(sys.modules, name, fake)
    monkeypatch.setattr(backend, "_FAILED", {})


def test_gsplat_build_failure_falls_back_to_torch_with_one_line(monkeypatch, capsys):
    from lib.render.gaussians import render as render_module

    _failing_package(monkeypatch, "gsplat")
    monkeypatch.setattr(render_module, "resolve_backend", lambda b, dev, pkg: "torch" if b == "torch" else pkg)  # as on CUDA
    monkeypatch.setattr(render_module, "announce_cuda_build", lambda pkg: None)
    args = (torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.3),
            torch.tensor([0.8]), torch.tensor([[1.0, 0.5, 0.0]]), torch.eye(4)[None],
            torch.tensor([[[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]]]), 16, 16)
    auto = render_module.render_gaussians(*args, backend="auto")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1 and "gsplat failed (RuntimeError: Error building extension" in lines[0]
    assert "pure-torch path" in lines[0]
    torch.testing.assert_close(auto.rgb, render_module.render_gaussians(*args, backend="torch").rgb)
    assert backend.resolve_backend("auto", "cuda", "gsplat") == "torch"  # no second try in this process
    with pytest.raises(RuntimeError, match="Error building extension 'gsplat_cuda'"):
        render_module.render_gaussians(*args, backend="gsplat")  # asked for by name: the error propagates


def test_nerfacc_kernel_error_falls_back_to_torch(monkeypatch, capsys):
    from lib.render import occupancy

    _failing_package(monkeypatch, "nerfacc")
    monkeypatch.setattr(occupancy, "resolve_backend", lambda b, dev, pkg: "torch" if b == "torch" else pkg)
    monkeypatch.setattr(occupancy, "announce_cuda_build", lambda pkg: None)
    grid = occupancy.OccupancyGrid([-1, -1, -1, 1, 1, 1], 8)
    o = torch.tensor([[0.0, 0.0, -3.0], [0.2, 0.1, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    field = lambda p, v: (torch.full(p.shape[:-1], 2.0), torch.full(p.shape, 0.5))  # noqa: E731
    auto = occupancy.render_with_grid(field, o, d, grid, 2.0, 4.0, 0.1, background=1.0, backend="auto")
    assert "nerfacc failed (RuntimeError" in capsys.readouterr().out
    plain = occupancy.render_with_grid(field, o, d, grid, 2.0, 4.0, 0.1, background=1.0, backend="torch")
    torch.testing.assert_close(auto["rgb"], plain["rgb"])


def test_out_of_memory_is_not_hidden_by_the_fallback(monkeypatch):
    monkeypatch.setattr(backend, "_FAILED", {})

    def oom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        backend.with_fallback("auto", "gsplat", oom, lambda: "torch")
    assert "gsplat" not in backend._FAILED
