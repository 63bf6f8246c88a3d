"""The committed assets (assets/MANIFEST, the offline prior of notebook 07) are what they claim."""
import pytest
import torch

from lib.guidance.prior import PRIOR_DIR
from lib.methods.offline_prior import prior_dataset, prior_loss
from tools import manifest


def test_manifest_matches_every_asset_file():
    assert (manifest.ASSETS / "MANIFEST").is_file(), "assets/MANIFEST is missing (python -m tools.manifest)"
    problems = manifest.check()
    assert not problems, "assets/MANIFEST is stale:\n  " + "\n  ".join(problems)
    listed = manifest.read_manifest(manifest.ASSETS / "MANIFEST")
    assert "prior/unet/diffusion_pytorch_model.safetensors" in listed
    assert sum(size for _, size in listed.values()) < 8 * 2**20, "assets/ should stay a few MB"


def test_manifest_check_detects_a_changed_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"123")
    (tmp_path / "MANIFEST").write_text("\n".join(manifest.manifest_lines(tmp_path)) + "\n")
    assert manifest.check(tmp_path) == []
    (tmp_path / "a" / "w.bin").write_bytes(b"124")
    (tmp_path / "b.txt").write_text("new")
    problems = manifest.check(tmp_path)
    assert any("a/w.bin" in p and "differ" in p for p in problems)
    assert any("b.txt" in p and "not listed" in p for p in problems)
    (tmp_path / "MANIFEST").write_text("not a line\n")
    with pytest.raises(ValueError, match="MANIFEST:1"):
        manifest.check(tmp_path)


def test_committed_prior_loads_and_denoises_unseen_renders():
    from lib.models.text_prior import load_prior
    unet, scheduler, tokenizer, text_encoder = load_prior(PRIOR_DIR)
    images, prompts = prior_dataset(8, 32, seed=4242)  # objects the prior never saw
    g = torch.Generator().manual_seed(0)
    t = torch.full((len(images),), 300, dtype=torch.int64)
    with torch.no_grad():
        loss = prior_loss(unet, scheduler, text_encoder, tokenizer(prompts), images, g, t).item()
        # the same noise, the empty prompt instead of the right one: text must help
        g = torch.Generator().manual_seed(0)
        uncond = prior_loss(unet, scheduler, text_encoder, tokenizer.unconditional(len(images)), images, g, t).item()
    assert loss < 0.1, f"epsilon MSE {loss:.3f} at t=300 (predicting zero scores 1.0)"
    assert loss < uncond, f"the prompt should help: {loss:.4f} with it, {uncond:.4f} without"


def test_atomic_folder_replaces_whole_or_not_at_all(tmp_path):
    from lib.fileio import atomic_folder
    out = tmp_path / "asset"
    atomic_folder(out, lambda f: (f / "a.txt").write_text("1"))
    atomic_folder(out, lambda f: (f / "b.txt").write_text("2"))
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]  # replaced, not merged

    def broken(f):
        (f / "c.txt").write_text("3")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        atomic_folder(out, broken)
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]  # the old folder is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["asset"]  # no temporary folder left
    assert (out / "b.txt").stat().st_mode & 0o777 == 0o644
