"""lib.train: kill half-way and resume gives the same result; checkpoints are atomic and checked."""
import pytest
import torch

from lib.train import fit, load_checkpoint, resolve_device, save_checkpoint, seed_everything


def make_run(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 10, 0.5)
    gen = torch.Generator().manual_seed(seed)

    def step(i):
        x = torch.randn(32, 3, generator=gen)
        loss = (model(x) - x.prod(1, keepdim=True)).pow(2).mean()  # dropout draws from torch's RNG
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        return {"loss": loss.item(), "lr": sched.get_last_lr()[0]}

    return model, step, {"model": model, "opt": opt, "sched": sched, "gen": gen}


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    model_a, step_a, state_a = make_run()
    hist_a = fit(step_a, 40, state_a, progress=False)

    ckpt = tmp_path / "run.pt"
    _, step_b, state_b = make_run()
    fit(step_b, 40, state_b, checkpoint=ckpt, checkpoint_every=7, stop_after=23, progress=False)
    assert load_checkpoint(ckpt)["step"] == 23
    model_c, step_c, state_c = make_run(seed=99)  # a fresh process: other weights, other RNG
    hist_c = fit(step_c, 40, state_c, checkpoint=ckpt, checkpoint_every=7, progress=False)
    assert [h["step"] for h in hist_c] == list(range(40))
    torch.testing.assert_close([h["loss"] for h in hist_c], [h["loss"] for h in hist_a])
    for p, q in zip(model_a.parameters(), model_c.parameters()):
        torch.testing.assert_close(p, q)
    assert hist_a[-1]["loss"] < hist_a[0]["loss"]


def test_nan_loss_stops_with_a_clear_error_and_keeps_a_checkpoint(tmp_path):
    model, _, state = make_run()

    def step(i):
        return {"loss": float("nan") if i == 5 else 1.0}

    with pytest.raises(FloatingPointError, match="step 5: non-finite"):
        fit(step, 10, state, checkpoint=tmp_path / "c.pt", progress=False)
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 5


def test_checkpoint_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pt could not be read"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    save_checkpoint(tmp_path / "ok.pt", {"step": 1, "history": [], "state": {"other": {}}, "torch_rng": torch.get_rng_state()})
    _, step, state = make_run()
    with pytest.raises(ValueError, match="delete the checkpoint or pass matching names"):
        fit(step, 3, state, checkpoint=tmp_path / "ok.pt", progress=False)
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_seed_and_device_helpers():
    g1, g2 = seed_everything(3), seed_everything(3)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
