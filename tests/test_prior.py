"""The offline prior: tokenizer, text encoder round trip, view rule, data, and a tiny train-save-load."""
import json

import pytest
import torch

from lib.models.text_prior import TinyTextEncoder, WordTokenizer, load_prior
from lib.guidance.sds import sds_loss
from lib.prompts import VIEW_WORDS, view_word
from lib.guidance.prior import prior_noise_pred_fn, prior_text_encode_fn
from lib.methods.offline_prior import (PriorTraining, make_prior, prior_dataset, prior_loss, prior_vocabulary,
                                       train_prior)
from tools import train_prior as train_prior_tool

TINY = dict(image_size=16, channels=(8, 16), cross_attention_dim=16, classes=("chair", "car"))


def test_tokenizer_table():
    tok = WordTokenizer(prior_vocabulary(("chair", "car")), max_length=5)
    # ids: pad 0, unk 1, then a an the of view photo render (2..8), chair car (9, 10),
    # front side back overhead (11..14)
    assert len(tok) == 15
    assert tok("A car, BACK view.").tolist() == [[2, 10, 13, 6, 0]]
    assert tok(["a sofa", "chair"]).tolist() == [[2, 1, 0, 0, 0], [9, 0, 0, 0, 0]]
    assert tok("the chair-side-view !").tolist() == [[4, 9, 12, 6, 0]]
    assert tok.unconditional(2).tolist() == [[0] * 5] * 2
    with pytest.raises(ValueError, match="at least one word"):
        tok(" ,. ")
    with pytest.raises(ValueError, match="max_length=5"):
        tok("a chair of a chair view")
    with pytest.raises(ValueError, match="repeated"):
        WordTokenizer(["a", "a"])


def test_tokenizer_and_text_encoder_round_trip(tmp_path):
    tok = WordTokenizer(prior_vocabulary(), max_length=6)
    enc = TinyTextEncoder(len(tok), 6, dim=16, n_layers=1, n_heads=4, seed=3).eval()
    ids = torch.cat([tok(["a vase, side view", "a lamp"]), tok.unconditional(1)])
    tok.save_pretrained(tmp_path / "tokenizer")
    enc.save_pretrained(tmp_path / "text_encoder")
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))  # no pickle
    tok2 = WordTokenizer.from_pretrained(tmp_path / "tokenizer")
    enc2 = TinyTextEncoder.from_pretrained(tmp_path / "text_encoder")
    assert tok2.vocabulary == tok.vocabulary and tok2.max_length == 6
    with torch.no_grad():
        out, out2 = enc(ids), enc2(tok2(["a vase, side view", "a lamp"]))
    assert out.shape == (3, 6, 16)
    assert torch.equal(out[:2], out2)
    assert not torch.allclose(out[0], out[1])  # different prompts, different states
    with pytest.raises(ValueError, match=r"\(B, 6\)"):
        enc(ids[:, :4])


def test_prior_dataset_balanced_and_deterministic():
    images, prompts = prior_dataset(4, 16, seed=1, classes=("vase", "airplane"))
    assert images.shape == (8, 3, 16, 16) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert torch.equal(images[:, :, 0, 0], torch.ones(8, 3))  # white background corner
    assert prompts == [f"a {c}, {v} view" for c in ("vase", "airplane") for v in VIEW_WORDS]
    assert view_word(90.0, 10.0) == "side" and view_word(180.0, 10.0) == "back"  # the rule used
    again, _ = prior_dataset(4, 16, seed=1, classes=("vase", "airplane"))
    assert torch.equal(images, again)
    with pytest.raises(ValueError, match="classes"):
        prior_dataset(4, 16, classes=("sofa",))


def test_train_prior_deterministic(one_thread):
    images, prompts = prior_dataset(4, 16, seed=0, classes=("chair", "car"))
    runs = []
    for _ in range(2):
        unet, sched, tok, enc = make_prior(**TINY, seed=5)
        runs.append(train_prior(unet, sched, tok, enc, images, prompts, PriorTraining(3, batch=4, seed=7, log_every=1),
                                log=None))
    assert [r["step"] for r in runs[0]] == [0, 1, 2]
    assert [r["loss"] for r in runs[0]] == [r["loss"] for r in runs[1]]
    assert runs[0][0]["lr"] == 1e-3 and runs[0][2]["lr"] < runs[0][1]["lr"]  # cosine decay


def test_script_trains_saves_and_loaded_prior_denoises(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "prior"
    out.mkdir()
    (out / "stale.txt").write_text("replaced atomically")
    argv = ["--out", str(out), "--steps", "40", "--image-size", "16", "--n-per-class", "8", "--classes",
            "chair", "car", "--channels", "8", "16", "--cross-attention-dim", "16", "--batch", "16",
            "--lr", "3e-3", "--log-every", "10", "--seed", "0"]
    assert train_prior_tool.main(argv) == out
    log = capsys.readouterr().out
    assert log.count("loss") >= 4 and "saved" in log
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["prior"]  # no temporary folder left
    assert json.loads((out / "train_args.json").read_text())["steps"] == 40
    assert [ln.split()[1] for ln in (out / "train_log.txt").read_text().splitlines() if ln.startswith("step ")] \
        == ["10/40", "20/40", "30/40", "40/40"]

    unet, scheduler, tokenizer, text_encoder = load_prior(out)
    assert scheduler.config.num_train_timesteps == 1000
    # held-out noise (a seed the training never used), t spread over [100, 900]
    images, prompts = prior_dataset(8, 16, seed=0, classes=("chair", "car"))
    gen = torch.Generator().manual_seed(12345)
    t = torch.linspace(100, 900, len(images)).long()
    with torch.no_grad():
        loss = prior_loss(unet, scheduler, text_encoder, tokenizer(prompts), images, gen, t).item()
    # predicting eps = 0 scores 1.0; an untrained net scores ~1.1; the trained tiny one ~0.3-0.4
    print(f"held-out denoising loss of the loaded tiny prior: {loss:.3f}")
    assert loss < 0.6, loss

    # the guidance adapters: "" is the all-pad prompt; sds_loss runs on the prior (CFG batched)
    encode = prior_text_encode_fn(tokenizer, text_encoder)
    states = encode(["", "a car, side view"])
    with torch.no_grad():
        assert torch.equal(states[:1], text_encoder(tokenizer.unconditional(1)))
    x = images[:2].clone().requires_grad_(True)
    sds, info = sds_loss(prior_noise_pred_fn(unet), x, (states[1:], states[:1]), scheduler.alphas_cumprod,
                         t=500, guidance_scale=7.5, generator=torch.Generator().manual_seed(0))
    sds.backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_load_prior_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_prior(tmp_path / "nothing")
    (tmp_path / "unet").mkdir()
    with pytest.raises(FileNotFoundError, match="scheduler"):
        load_prior(tmp_path)
