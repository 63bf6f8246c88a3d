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
