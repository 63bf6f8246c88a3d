"""lib.guidance.guide.Guide: the offline prior and Stable Diffusion behind one interface, and the steps
that use it (lib.methods.sds, lib.methods.dreamfusion) on both: the committed prior, and a tiny random
Stable Diffusion pipeline saved to a local folder (the full-mode code path, no download)."""
import json

import pytest
import torch

from lib.methods.dreamfusion import DreamFusionConfig, dreamfusion_field, make_dreamfusion_step, render_turntable
from lib.guidance.load import GUIDES, load_guide
from lib.images import from_nchw
from lib.guidance.sds import TimestepSchedule
from lib.methods.sds import TensorState, TextureSDSConfig, make_image_sds_step, make_texture_sds_step

G0 = torch.Generator().manual_seed(0)  # the SDS steps take their random stream explicitly


@pytest.fixture(scope="module")
def prior_guide():
    return load_guide("offline prior")


@pytest.fixture(scope="module")
def tiny_sd_dir(tmp_path_factory):
    """A StableDiffusionPipeline of SD's structure with random few-kB weights and a hand-made
    CLIP tokenizer vocabulary, saved with save_pretrained (what SD_LOCAL_DIR points at)."""
    d = pytest.importorskip("diffusers")
    tr = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny_sd")
    words = ["a", "chair", "side", "back", "front", "view", ","]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for w in words:
        vocab[w + "</w>"] = len(vocab)
    for ch in "abcdefghijklmnopqrstuvwxyz,":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = tr.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        text = tr.CLIPTextModel(tr.CLIPTextConfig(vocab_size=len(vocab), hidden_size=8, intermediate_size=16,
                                                  num_hidden_layers=1, num_attention_heads=2,
                                                  max_position_embeddings=16, eos_token_id=1, bos_token_id=0,
                                                  pad_token_id=1))
        unet = d.UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                      block_out_channels=(8, 16), norm_num_groups=4, cross_attention_dim=8,
                                      attention_head_dim=2, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                      up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
        vae = d.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                              up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(4, 8),
                              latent_channels=4, norm_num_groups=4, sample_size=16)
    scheduler = d.DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear")
    pipe = d.StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                     safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder / "pipe")
    return folder / "pipe"


def test_load_guide_names(prior_guide):
    assert GUIDES == ("offline prior", "stable diffusion")
    assert prior_guide.model_shape == (3, 32, 32) and prior_guide.image_size == 32
    assert prior_guide.alphas_cumprod.shape == (1000,)
    with pytest.raises(ValueError, match="`name` must be one of"):
        load_guide("imagen")


def test_prior_guide_maps_renders_and_refuses_bad_images(prior_guide):
    renders = torch.rand(2, 64, 64, 3)  # channels last, like every image in lib
    x = prior_guide.to_model(renders)  # resized to 32 px, channels first, then 2 x - 1
    assert x.shape == (2, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(prior_guide.from_model(prior_guide.to_model(renders[:, ::2, ::2].contiguous())),
                               renders[:, ::2, ::2])
    with pytest.raises(ValueError, match=r"in \[0, 1\] \(not 2 x - 1"):
        prior_guide.to_model(2 * renders - 1)
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        prior_guide.to_model(renders[..., :1])
    with pytest.raises(ValueError, match="channels first"):
        prior_guide.to_model(renders.permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):  # the model itself names its size
        prior_guide.noise_pred_fn(torch.zeros(1, 3, 16, 16), torch.tensor([10]), prior_guide.embed(["a chair"]))
    with pytest.raises(ValueError, match="prompt must"):
        make_image_sds_step(TensorState(torch.zeros(1, 3, 32, 32)), prior_guide, [" "], 7.5, TimestepSchedule(), 2, generator=G0)


def test_image_sds_step_moves_toward_the_prompt(prior_guide):
    image = TensorState(torch.zeros(2, 3, 32, 32))
    step = make_image_sds_step(image, prior_guide, ["a chair", "a vase"], [7.5, 1.0], TimestepSchedule(), 3,
                               generator=torch.Generator().manual_seed(0))
    out = step(0)
    assert out["grad_norm"] > 0 and image.value.abs().max() > 0 and image.value.abs().max() <= 1
    with pytest.raises(ValueError, match="guidance scales must be > 0"):
        make_image_sds_step(image, prior_guide, ["a chair", "a vase"], [7.5, 0.0], TimestepSchedule(), 3, generator=G0)
    with pytest.raises(ValueError, match="one prompt per image"):
        make_image_sds_step(image, prior_guide, ["a chair"], 7.5, TimestepSchedule(), 3, generator=G0)
    with pytest.raises(ValueError, match=r"image must be \(B, 3, 32, 32\)"):
        make_image_sds_step(TensorState(torch.zeros(1, 4, 64, 64)), prior_guide, ["a chair"], 7.5, TimestepSchedule(), 3, generator=G0)


def test_texture_step_changes_only_seen_colours(prior_guide):
    from lib import primitives
    from lib.data.srn import srn_intrinsics
    mesh = primitives.box(size=(0.5, 0.5, 0.5))
    colors = TensorState(torch.full((len(mesh.verts), 3), 0.5))
    cfg = TextureSDSConfig("a chair", 2, 32, views_per_step=2)
    step = make_texture_sds_step(mesh.verts, mesh.faces, colors, prior_guide, srn_intrinsics(32), TimestepSchedule(), cfg,
                                 generator=torch.Generator().manual_seed(0))
    step(0)
    assert (colors.value - 0.5).abs().max() > 0
    assert colors.value.min() >= 0 and colors.value.max() <= 1


def test_stable_diffusion_path_on_a_tiny_local_pipeline(tiny_sd_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    guide = load_guide("stable diffusion", "cpu", sd_local_dir=str(tiny_sd_dir))
    assert guide.name == "Stable Diffusion" and guide.model_shape == (4, 8, 8) and guide.image_size == 16
    renders = torch.rand(2, 8, 8, 3)
    z = guide.to_model(renders)  # upsampled to the VAE's 16 px, encoded
    assert z.shape == (2, 4, 8, 8)
    assert guide.from_model(z).shape == (2, 16, 16, 3)
    latents = TensorState(torch.zeros(2, 4, 8, 8))
    step = make_image_sds_step(latents, guide, ["a chair", "a chair, back view"], 100.0, TimestepSchedule(), 2,
                               generator=G0, clamp=None)
    assert step(0)["grad_norm"] > 0
    cfg = DreamFusionConfig(steps=2, views_per_step=1, image_size=8, n_samples=8, hidden=16, n_layers=2,
                            guidance_scale=100.0)
    field = dreamfusion_field(cfg)
    before = [p.detach().clone() for p in field.parameters()]
    make_dreamfusion_step(field, guide, cfg)(0)  # through the VAE encoder, into the NeRF
    assert any((a - b).abs().max() > 0 for a, b in zip(before, field.parameters()))


def test_dreamfusion_step_and_turntable_on_the_prior(prior_guide):
    cfg = DreamFusionConfig(steps=4, views_per_step=1, n_samples=8, hidden=16, n_layers=2, shading_warmup=0.5)
    field = dreamfusion_field(cfg)
    step = make_dreamfusion_step(field, prior_guide, cfg)
    logs = [step(i) for i in range(4)]  # steps 2, 3 are past the warm-up: shaded, with normals
    assert all(torch.isfinite(torch.tensor(list(log.values()))).all() for log in logs)
    assert logs[-1]["orientation"] >= 0 and 0 <= logs[-1]["opacity"] <= 1
    views = render_turntable(field, cfg, [0.0, 90.0, 180.0])
    assert views["images"].shape == (3, 32, 32, 3) and views["distance"].shape == (3, 32, 32)
    assert views["images"].min() >= 0 and views["images"].max() <= 1
    with pytest.raises(ValueError, match="guidance_scale"):
        DreamFusionConfig(guidance_scale=0.0)
    with pytest.raises(ValueError, match="prompt must"):
        DreamFusionConfig(prompt="")


def test_denoising_error_prefers_real_renders(prior_guide):
    from lib.methods.judge import judge_dataset
    from lib.methods.sds import denoising_error
    images, _, _ = judge_dataset(2, 32, seed=5, classes=("chair",))
    renders = from_nchw(images + 1) / 2
    prompts = ["a chair"] * len(renders)
    real = denoising_error(prior_guide, renders, prompts)
    noise = denoising_error(prior_guide, torch.rand_like(renders), prompts)
    assert real.shape == (len(renders),) and bool((real < noise).all()), (real, noise)
    torch.testing.assert_close(real, denoising_error(prior_guide, renders, prompts))  # same noise each call
    with pytest.raises(ValueError, match="one prompt per image"):
        denoising_error(prior_guide, renders, prompts[:1])


def test_prior_refuses_words_it_does_not_know(prior_guide):
    with pytest.raises(ValueError, match=r"does not know the words \['table'\]"):
        prior_guide.embed(["a table"])
    assert prior_guide.embed(["a chair, side view"]).shape[0] == 1


def test_free_encoder_releases_the_text_encoder(tiny_sd_dir, monkeypatch):
    import gc
    import weakref
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    guide = load_guide("stable diffusion", "cpu", sd_local_dir=str(tiny_sd_dir))
    cached = guide.embed(["", "a chair"])
    text = next(c.cell_contents for c in guide.embed.encode_fn.__closure__
                if type(c.cell_contents).__name__ == "CLIPTextModel")
    encoder = weakref.ref(text)
    del text
    guide.embed.free_encoder()
    gc.collect()
    assert encoder() is None, "something still holds the text encoder after free_encoder()"
    torch.testing.assert_close(guide.embed(["a chair"]), cached[1:])  # cached prompts still work
    with pytest.raises(RuntimeError, match="freed"):
        guide.embed(["a chair, back view"])


def test_guide_sds_is_sds_loss_through_to_model(prior_guide):
    from lib.guidance.sds import sds_loss
    renders = torch.rand(2, 20, 20, 3, requires_grad=True)
    t = torch.tensor([300, 700])
    loss, info = prior_guide.sds(renders, ["a chair, side view", "a vase"], t, 7.5, torch.Generator().manual_seed(4))
    (grad,) = torch.autograd.grad(loss, renders)
    x = prior_guide.to_model(renders)
    ref, ref_info = sds_loss(prior_guide.noise_pred_fn, x, (prior_guide.embed(["a chair, side view", "a vase"]),
                                                            prior_guide.embed([""])),
                             prior_guide.alphas_cumprod, t, guidance_scale=7.5, generator=torch.Generator().manual_seed(4))
    (ref_grad,) = torch.autograd.grad(ref, renders)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(grad, ref_grad)
    assert grad.abs().sum() > 0 and torch.equal(info["t"], ref_info["t"])
    latents = torch.zeros(1, *prior_guide.model_shape, requires_grad=True)
    loss, _ = prior_guide.sds(latents, ["a chair"], t[:1], 1.0, torch.Generator().manual_seed(0), model_space=True)
    assert torch.autograd.grad(loss, latents)[0].shape == latents.shape


def test_image_checks_name_the_argument_and_the_convention():
    from lib.images import check_images, to_nchw
    check_images(torch.rand(2, 4, 5, 3))
    for bad, match in [(torch.rand(2, 3, 4, 5), r"\(N, H, W, 3\) float images .*channels last.*\(2, 3, 4, 5\)"),
                       (torch.rand(2, 4, 5, 3) * 255, r"must be in \[0, 1\].*0\.\.255"),
                       (torch.zeros(2, 4, 5, 3, dtype=torch.uint8), "uint8"), ([1, 2], "list")]:
        with pytest.raises(ValueError, match=match):
            check_images(bad, "frames")
    with pytest.raises(ValueError, match="channels first"):
        check_images(torch.rand(2, 3, 4, 5), "frames")
    x = torch.rand(2, 8, 6, 3)
    torch.testing.assert_close(from_nchw(to_nchw(x)), x)
    assert to_nchw(x, 4).shape == (2, 3, 4, 4) and to_nchw(x, (4, 3)).shape == (2, 3, 4, 3)
    assert to_nchw(x, (8, 6)).data_ptr() == x.data_ptr()  # its own size: not resized
    with pytest.raises(ValueError, match="from_nchw"):
        from_nchw(torch.rand(3, 4, 5))
