"""lib.train: runs are named by their settings; kill half-way and resume gives the same result;
checkpoints load without running code, and a bad one is kept aside while a fresh run starts."""
import pytest
import torch

from lib.report import mode_dir
from lib.train import (fit, load_checkpoint, resolve_device, run_checkpoint, run_id, save_checkpoint,
                       seed_everything)

CONFIG = {"lr": 1e-2, "batch": 32, "seed": 0, "smoke": True}


def make_run(seed=0, lr=1e-2, hidden=16):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.Dropout(0.1), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, 10, 0.5)
    gen = torch.Generator().manual_seed(seed)

    def step(i):
        x = torch.randn(32, 3, generator=gen)
        loss = (model(x) - x.prod(1, keepdim=True)).pow(2).mean()  # dropout draws from torch's RNG
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.item(), "lr": sched.get_last_lr()[0]}

    return model, step, {"model": model, "opt": opt, "sched": sched, "gen": gen}


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, capsys):
    model_a, step_a, state_a = make_run()
    hist_a = fit(step_a, 40, state_a, progress=False)

    ckpt = tmp_path / "run.pt"
    path = run_checkpoint(ckpt, CONFIG, 40, state_a)
    _, step_b, state_b = make_run()
    fit(step_b, 40, state_b, checkpoint=ckpt, config=CONFIG, checkpoint_every=7, stop_after=23, progress=False)
    assert "new run" in capsys.readouterr().out
    assert load_checkpoint(path)["step"] == 23 and not ckpt.exists()
    model_c, step_c, state_c = make_run(seed=99)  # a fresh process: other weights, other RNG
    hist_c = fit(step_c, 40, state_c, checkpoint=ckpt, config=dict(CONFIG), checkpoint_every=7, progress=False)
    assert f"resuming {path} at step 23/40" in capsys.readouterr().out
    assert [h["step"] for h in hist_c] == list(range(40))
    torch.testing.assert_close([h["loss"] for h in hist_c], [h["loss"] for h in hist_a])
    for p, q in zip(model_a.parameters(), model_c.parameters()):
        torch.testing.assert_close(p, q)
    assert hist_a[-1]["loss"] < hist_a[0]["loss"]

    # The same settings once more: the finished run is reused, not retrained and not rewritten.
    before = path.stat().st_mtime_ns
    model_d, step_d, state_d = make_run(seed=7)
    hist_d = fit(lambda i: pytest.fail("a finished run must not train"), 40, state_d, checkpoint=ckpt,
                 config=CONFIG, progress=False)
    assert "reusing the finished run" in capsys.readouterr().out
    assert hist_d == hist_c and path.stat().st_mtime_ns == before
    for p, q in zip(model_a.parameters(), model_d.parameters()):
        torch.testing.assert_close(p, q)


def test_a_changed_setting_trains_a_new_run_and_keeps_the_old_one(tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    _, step, state = make_run()
    hist_old = fit(step, 20, state, checkpoint=ckpt, config=CONFIG, progress=False)
    old = run_checkpoint(ckpt, CONFIG, 20, state)
    old_bytes = old.read_bytes()
    capsys.readouterr()

    changed = {**CONFIG, "lr": 5e-3}  # e.g. the notebook's "try another learning rate"
    _, step, state = make_run(lr=5e-3)
    hist_new = fit(step, 20, state, checkpoint=ckpt, config=changed, progress=False)
    new = run_checkpoint(ckpt, changed, 20, state)
    assert f"new run {new} (1 other run of run kept untouched)" in capsys.readouterr().out
    assert new != old and new.exists() and old.read_bytes() == old_bytes
    assert [h["step"] for h in hist_new] == list(range(20))  # trained from step 0, not reused
    assert hist_new[-1]["loss"] != hist_old[-1]["loss"]
    assert load_checkpoint(new)["config"] == changed and load_checkpoint(old)["config"] == CONFIG
    # More steps is another run as well; state names are part of the name too.
    assert run_checkpoint(ckpt, CONFIG, 21, state) not in (old, new)
    assert run_checkpoint(ckpt, CONFIG, 20, ["model"]) != old


def test_run_names_are_canonical_and_configs_must_be_plain(tmp_path):
    a = run_id({"lr": 1e-3, "size": (64, 64), "w": {"lap": 0.1}}, 10, ["opt", "model"])
    assert a == run_id({"w": {"lap": 0.1}, "size": [64, 64], "lr": 0.001}, 10, ["model", "opt"])
    assert len(a) == 8 and int(a, 16) >= 0
    assert a != run_id({"lr": 1e-3, "size": (64, 64), "w": {"lap": 0.2}}, 10, ["opt", "model"])
    assert run_checkpoint(tmp_path / "voxels.pt", {}, 5, []).name.startswith("voxels-")
    assert run_checkpoint("out/voxels.pt", {}, 5, []).parent.as_posix() == "out"
    with pytest.raises(ValueError, match=r"config\['lr'\] must be a plain value.*Tensor"):
        run_id({"lr": torch.tensor(0.1)}, 10, [])
    with pytest.raises(ValueError, match=r"config\['paths'\]\[0\] must be a plain value.*str\(path\)"):
        run_id({"paths": [tmp_path]}, 10, [])
    with pytest.raises(ValueError, match="NaN"):
        run_id({"lr": float("nan")}, 10, [])


def test_checkpoint_without_config_is_refused(tmp_path):
    _, step, state = make_run()
    with pytest.raises(ValueError, match=r"fit\(checkpoint='.*run.pt'\) needs config="):
        fit(step, 3, state, checkpoint=tmp_path / "run.pt", progress=False)
    assert not list(tmp_path.iterdir())


def test_smoke_and_full_runs_never_share_a_folder(tmp_path):
    smoke, full = mode_dir(tmp_path, True), mode_dir(tmp_path, False)
    assert (smoke.name, full.name) == ("smoke", "full") and smoke.is_dir() and full.is_dir()
    assert mode_dir(tmp_path, True) == smoke  # same folder again
    with pytest.raises(ValueError, match="mode must be a RunMode or SMOKE"):
        mode_dir(tmp_path, "False")
    for run_dir, is_smoke in ((smoke, True), (full, False)):
        _, step, state = make_run()
        fit(step, 3, state, checkpoint=run_dir / "run.pt", config={**CONFIG, "smoke": is_smoke}, progress=False)
    assert [p.parent.name for p in sorted(tmp_path.glob("*/run-*.pt"))] == ["full", "smoke"]


class _Exploit:
    """Unpickling this runs ``exec``: it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def test_a_checkpoint_holding_a_pickled_object_is_refused_and_kept_aside(tmp_path, capsys):
    ckpt, marker = tmp_path / "run.pt", tmp_path / "code_ran.txt"
    model, step, state = make_run()
    path = run_checkpoint(ckpt, CONFIG, 5, state)
    torch.save({"format": 2, "step": 0, "history": [], "config": CONFIG, "state": {}, "x": _Exploit(marker)}, path)
    evil = path.read_bytes()
    with pytest.raises(ValueError, match="refused: it holds a pickled object"):
        load_checkpoint(path)
    hist = fit(step, 5, state, checkpoint=ckpt, config=CONFIG, progress=False)
    assert not marker.exists()
    (aside,) = tmp_path.glob("run-*.pt.unreadable-*")
    assert aside.read_bytes() == evil
    out = capsys.readouterr().out
    assert f"checkpoint {path} was refused" in out and f"kept it as {aside.name}" in out and "new run" in out
    assert len(hist) == 5 and load_checkpoint(path)["step"] == 5
    torch.load(aside, weights_only=False)  # proof that the file was live: unsafe loading runs it
    assert marker.read_text() == "code ran"


def test_a_truncated_checkpoint_is_kept_aside_and_a_fresh_run_starts(tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    _, step, state = make_run()
    fit(step, 10, state, checkpoint=ckpt, config=CONFIG, stop_after=4, progress=False)
    path = run_checkpoint(ckpt, CONFIG, 10, state)
    half = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(half)
    with pytest.raises(ValueError, match="run-.*.pt could not be read"):
        load_checkpoint(path)
    _, step, state = make_run()
    hist = fit(step, 10, state, checkpoint=ckpt, config=CONFIG, progress=False)
    (aside,) = tmp_path.glob("run-*.pt.unreadable-*")
    assert aside.read_bytes() == half and [h["step"] for h in hist] == list(range(10))
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and "could not be read" in out.splitlines()[-1]  # one line per call
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_an_incompatible_checkpoint_is_kept_aside_and_the_objects_restored(tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    # A run whose file holds a wider hidden layer under the same settings (e.g. code changed):
    # the generator and the last layer's bias (same shape) load before the shape mismatch stops it.
    wide, _, wide_state = make_run(seed=3, hidden=32)
    order = {"gen": wide_state["gen"], "model": wide, "opt": wide_state["opt"], "sched": wide_state["sched"]}
    path = run_checkpoint(ckpt, CONFIG, 5, order)
    fit(lambda i: {"loss": 1.0}, 5, order, checkpoint=ckpt, config=CONFIG, stop_after=2, progress=False)
    stored = path.read_bytes()

    model, step, state = make_run()
    state = {"gen": state["gen"], "model": model, "opt": state["opt"], "sched": state["sched"]}
    before, gen_before, rng_before = params(model), state["gen"].get_state(), torch.get_rng_state()
    hist = fit(step, 5, state, checkpoint=ckpt, config=CONFIG, stop_after=0, progress=False)
    assert hist == []
    for p, q in zip(before, model.parameters()):
        torch.testing.assert_close(p, q)
    assert torch.equal(state["gen"].get_state(), gen_before) and torch.equal(torch.get_rng_state(), rng_before)
    (aside,) = tmp_path.glob("run-*.pt.incompatible-*")
    assert aside.read_bytes() == stored and load_checkpoint(path)["step"] == 0
    assert "loading 'model' failed" in capsys.readouterr().out

    # Another format version is incompatible too, and a second file gets its own name.
    save_checkpoint(path, {**load_checkpoint(aside), "format": 1})
    fit(step, 5, state, checkpoint=ckpt, config=CONFIG, stop_after=0, progress=False)
    assert "format version 1" in capsys.readouterr().out
    assert len(list(tmp_path.glob("run-*.pt.incompatible-*"))) == 2


def test_nan_loss_stops_with_a_clear_error_and_keeps_a_checkpoint(tmp_path):
    model, _, state = make_run()

    def step(i):
        return {"loss": float("nan") if i == 5 else 1.0}

    with pytest.raises(FloatingPointError, match="step 5: non-finite.*the last good state is in"):
        fit(step, 10, state, checkpoint=tmp_path / "c.pt", config={}, progress=False)
    assert load_checkpoint(run_checkpoint(tmp_path / "c.pt", {}, 10, state))["step"] == 5


def test_seed_and_device_helpers():
    g1, g2 = seed_everything(3), seed_everything(3)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
