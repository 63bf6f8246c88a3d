"""lib.pretrained.depth: the relative-inverse-depth normaliser, the simulated depth channel, and the
transformers path on a tiny, randomly initialised Depth Anything saved locally (no network)."""
import pytest
import torch

from lib.pretrained.depth import depth_channel, estimate_inverse_depth, load_depth_estimator, relative_inverse_depth


def _depth_maps(shape, seed=0):
    """Random true depth maps (..., H, W) in [0.8, 1.8] with a background (0) border."""
    g = torch.Generator().manual_seed(seed)
    d = 0.8 + torch.rand(shape, generator=g)
    d[..., :2, :] = 0.0
    d[..., :, -1] = 0.0
    return d


def _slow_normalise(depth):
    """Per image, with Python loops: 1/depth over the foreground, min-max to [0, 1], 0 elsewhere."""
    flat = depth.reshape(-1, *depth.shape[-2:])
    out = torch.zeros_like(flat)
    for i, d in enumerate(flat):
        fg = d > 0
        inv = 1.0 / d[fg]
        out[i][fg] = (inv - inv.min()) / (inv.max() - inv.min())
    return out.reshape(depth.shape)


@pytest.mark.parametrize("shape", [(5, 6), (3, 5, 6), (2, 3, 5, 6)])
def test_relative_inverse_depth_matches_a_slow_reference(shape):
    d = _depth_maps(shape)
    out = relative_inverse_depth(d)
    torch.testing.assert_close(out, _slow_normalise(d))
    fg = d > 0
    assert (out[~fg] == 0).all()
    flat, fgf, df = (x.reshape(-1, *shape[-2:]) for x in (out, fg, d))
    for o, m, z in zip(flat, fgf, df):  # the nearest foreground pixel is 1, the farthest 0
        assert o[m].max() == 1.0 and o[m].min() == 0.0
        assert o[m].argmax() == z[m].argmin() and o[m].argmin() == z[m].argmax()


def test_relative_inverse_depth_is_relative():
    """Scaling a true depth map, or an affine change of an inverse-depth map, changes nothing."""
    d = _depth_maps((2, 8, 8), seed=1)
    torch.testing.assert_close(relative_inverse_depth(3.7 * d), relative_inverse_depth(d))
    inv = torch.rand(2, 8, 8)
    torch.testing.assert_close(relative_inverse_depth(2.5 * inv + 4.0, inverse=True),
                               relative_inverse_depth(inv, inverse=True))
    # nearer -> larger
    a = relative_inverse_depth(torch.tensor([[[1.0, 1.5, 2.0]]]))
    assert a[0, 0, 0] > a[0, 0, 1] > a[0, 0, 2]


def test_relative_inverse_depth_mask_constant_and_errors():
    d = torch.full((1, 4, 4), 1.3)
    assert (relative_inverse_depth(d) == 1).all()  # a flat wall: all "nearest"
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 1:3, 1:3] = True
    out = relative_inverse_depth(_depth_maps((1, 4, 4)) + 1.0, mask)
    assert (out[~mask] == 0).all() and out[mask].max() == 1
    with pytest.raises(ValueError, match="mask"):
        relative_inverse_depth(d, mask[0])
    with pytest.raises(ValueError, match="depth"):
        relative_inverse_depth(torch.ones(4))


def test_depth_channel_errors_keep_order_and_background():
    d = _depth_maps((3, 8, 8), seed=2)
    exact = depth_channel(d)
    torch.testing.assert_close(exact, relative_inverse_depth(d))
    a = depth_channel(d, distortion=0.5, generator=torch.Generator().manual_seed(0))
    b = depth_channel(d, distortion=0.5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)  # reproducible from the generator
    assert not torch.allclose(a, exact)
    fg = d > 0
    for img, ref, m in zip(a, exact, fg):  # a monotone distortion keeps the depth order
        order = ref[m].argsort()
        assert (img[m][order].diff() >= -1e-6).all()
    noisy = depth_channel(d, noise=0.1, generator=torch.Generator().manual_seed(1))
    assert (noisy[~fg] == 0).all() and noisy.min() >= 0 and noisy.max() <= 1
    assert 0.02 < (noisy - exact)[fg].std() < 0.15
    with pytest.raises(ValueError, match="noise"):
        depth_channel(d, noise=-1.0)


@pytest.fixture
def offline(monkeypatch):
    """The hub offline: the environment variable, and huggingface_hub's constant (read once at import)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def tiny_depth_anything(tmp_path_factory):
    """A randomly initialised Depth Anything (tiny DINOv2 backbone) + its image processor, saved to a folder."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2, image_size=56,
                            patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"],
                            reshape_hidden_states=False, initializer_range=0.2)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
                                 fusion_hidden_size=16, head_hidden_size=8, patch_size=14,
                                 initializer_range=0.2)  # larger than the default: a non-constant output
    folder = tmp_path_factory.mktemp("tiny_depth_anything")
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


def test_estimate_inverse_depth_offline_on_a_tiny_model(tiny_depth_anything, offline):
    images = torch.rand(3, 20, 24, 3, generator=torch.Generator().manual_seed(0))
    out = estimate_inverse_depth(images, model=str(tiny_depth_anything))
    assert out.shape == (3, 20, 24) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out.flatten(1).amax(1), torch.ones(3)) and (out.flatten(1).amin(1) == 0).all()
    pair = load_depth_estimator(str(tiny_depth_anything))  # load once, reuse; chunking changes nothing
    torch.testing.assert_close(estimate_inverse_depth(images, model=pair, batch_size=2), out, atol=1e-5, rtol=0)
    # the normaliser is applied to the network's raw output, resized to the image
    processor, net = pair
    raw = net(**processor(images=list(images.permute(0, 3, 1, 2)), do_rescale=False, return_tensors="pt")).predicted_depth
    raw = torch.nn.functional.interpolate(raw[:, None], size=(20, 24), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(out, relative_inverse_depth(raw.detach(), inverse=True), atol=1e-5, rtol=0)
    mask = torch.zeros(3, 20, 24, dtype=torch.bool)
    mask[:, 5:15, 6:18] = True
    masked = estimate_inverse_depth(images, model=pair, mask=mask)
    assert (masked[~mask] == 0).all() and torch.allclose(masked.flatten(1).amax(1), torch.ones(3))


def test_load_failure_lists_what_was_tried(tmp_path, offline):
    missing = str(tmp_path / "no_model_here")
    with pytest.raises(RuntimeError) as err:
        load_depth_estimator([missing, "nobody-xyz/no-such-depth-model"])
    msg = str(err.value)
    assert missing in msg and "nobody-xyz/no-such-depth-model" in msg and "HF_HUB_OFFLINE" in msg
    with pytest.raises(ValueError, match="images"):
        estimate_inverse_depth(torch.rand(2, 8, 8), model=missing)


def test_transformers_loader_tries_every_source_and_says_why(tmp_path, offline, monkeypatch):
    from lib.pretrained.hub import load_transformers_model
    gone = [str(tmp_path / "no-such-folder"), "nobody/no-such-model"]
    with pytest.raises(RuntimeError) as err:
        load_transformers_model(gone, "AutoImageProcessor", "AutoModelForDepthEstimation", "a depth estimator",
                                "pass a folder")
    text = str(err.value)
    assert all(source in text for source in gone) and "HF_HUB_OFFLINE" in text and text.endswith("pass a folder")
    with pytest.raises(ValueError, match="at least one"):
        load_transformers_model([], "AutoImageProcessor", "AutoModelForDepthEstimation", "a depth estimator", "")
    monkeypatch.setitem(__import__("sys").modules, "transformers", None)
    with pytest.raises(RuntimeError, match="needs the `transformers` package"):
        load_transformers_model(gone, "AutoImageProcessor", "AutoModelForDepthEstimation", "a depth estimator", "")
