"""Splatter Image: lib.models.splatter (the U-Net and its per-pixel Gaussians) and lib.methods.splatter_image
(pixel geometry, baselines, the training step and the evaluation)."""
import functools

import pytest
import torch

from lib.cameras import intrinsics_from_fov, look_at, orbit_poses, pixel_centers, project, rotation
from lib.metrics import psnr
from lib.models.splatter import SplatterConfig, SplatterImage
from lib.quaternion import quat_to_rotmat
from lib.render.gaussians import eval_sh
from lib.render.gaussians.pixel import pixel_gaussians
from lib.render.gaussians.sh import rotate_sh1
from lib.methods.splatter_image import (SplatterTraining, evaluate_mean_image, evaluate_splatter, flat_card, input_channels,
                                make_splatter_step, render_predictions)
from lib.train import fit

SMALL = dict(channels=(8, 16), groups=4)
pytestmark = pytest.mark.usefixtures("one_thread")  # many small ops: faster on one thread, much faster on a busy machine


def _cameras(b, size=16, seed=0):
    """(B, 4, 4) cameras at distance 1.3 looking at the origin from random directions, K (B, 3, 3)."""
    g = torch.Generator().manual_seed(seed)
    az, el = torch.rand(b, generator=g) * 360, torch.rand(b, generator=g) * 60 - 10
    return orbit_poses(az, el, 1.3), intrinsics_from_fov(52.0, size).expand(b, 3, 3).clone()


def _randomise_head(net, std=0.3, seed=0):
    """Large random head weights: anisotropic, rotated, offset Gaussians (the init is almost a card)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conv = net.head[-1]
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * std)
        conv.bias.add_(torch.randn(conv.bias.shape, generator=g) * std)


@pytest.fixture(scope="module")
def srn(tmp_path_factory):
    from lib.data.srn import load_srn_split, write_procedural_srn

    root = tmp_path_factory.mktemp("srn")
    write_procedural_srn(root, "train", 6, 8, 16, seed=0, categories=("car",))
    write_procedural_srn(root, "test", 2, 8, 16, seed=0, categories=("car",))
    return load_srn_split(root, "train"), load_srn_split(root, "test")


# ---------------------------------------------------------------------------------- the network
@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("in_channels,sh_degree", [(3, 0), (4, 1)])
def test_shapes_and_ranges(b, in_channels, sh_degree):
    net = SplatterImage(SplatterConfig(in_channels=in_channels, sh_degree=sh_degree, **SMALL))
    c2w, K = _cameras(b)
    out = net(torch.rand(b, 16, 16, in_channels), c2w, K)
    k = (sh_degree + 1) ** 2
    assert {k_: tuple(v.shape) for k_, v in out.items()} == {
        "means": (b, 256, 3), "quats": (b, 256, 4), "scales": (b, 256, 3), "opacities": (b, 256),
        "sh": (b, 256, k, 3), "depth": (b, 16, 16)}
    cfg = net.config
    assert (out["depth"] >= cfg.near).all() and (out["depth"] <= cfg.far).all()
    assert (out["opacities"] > 0).all() and (out["opacities"] < 1).all() and (out["scales"] > 0).all()
    torch.testing.assert_close(out["quats"].norm(dim=-1), torch.ones(b, 256))
    out["means"].sum().backward()  # differentiable end to end


def test_bad_inputs_and_config():
    net = SplatterImage(SplatterConfig(channels=(8, 16, 32), groups=4))
    c2w, K = _cameras(2)
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        net(torch.rand(2, 3, 16, 16), c2w, K)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.rand(2, 18, 18, 3), c2w, K)
    with pytest.raises(ValueError, match="c2w"):
        net(torch.rand(2, 16, 16, 3), c2w[0], K)
    for bad in (dict(in_channels=2), dict(sh_degree=2), dict(near=2.0, far=1.0), dict(scale_init=100.0),
                dict(channels=(8, 12), groups=8)):
        with pytest.raises(ValueError):
            SplatterConfig(**bad)


def test_initial_gaussians_are_a_card_at_mid_depth(srn):
    """Untrained: every Gaussian near mid depth, about scale_init pixels wide, opacity_init, its pixel's colour."""
    train, _ = srn
    net = SplatterImage(SplatterConfig(**SMALL))
    x, c2w, K = train["images"][:2, 0], train["c2w"][:2, 0], train["K"][:2]
    with torch.no_grad():
        out = net(x, c2w, K)
    cfg = net.config
    assert (out["depth"] - (cfg.near + cfg.far) / 2).abs().max() < 0.05
    pixels = out["scales"] / (out["depth"].reshape(2, -1, 1) / K[:, None, :1, 0])
    assert (pixels / cfg.scale_init - 1).abs().max() < 0.1
    assert (out["opacities"] - cfg.opacity_init).abs().max() < 0.05
    from lib.render.gaussians import sh0_to_rgb

    assert (sh0_to_rgb(out["sh"][..., 0, :]) - x.reshape(2, -1, 3)).abs().max() < 0.05


def test_gaussian_lies_on_its_pixel_ray():
    """Zero offset: each pixel's Gaussian projects back onto that pixel's centre, at the predicted depth."""
    net = SplatterImage(SplatterConfig(**SMALL))
    _randomise_head(net)
    with torch.no_grad():  # no offset
        net.head[-1].weight[1:4] = 0
        net.head[-1].bias[1:4] = 0
    c2w, K = _cameras(2, seed=3)
    K[1, 0, 2] += 1.5  # an off-centre principal point
    with torch.no_grad():
        out = net(torch.rand(2, 16, 16, 3), c2w, K)
    assert out["depth"].std() > 0.05  # depths really vary
    for b in range(2):
        uv, z = project(out["means"][b], c2w[b], K[b])
        torch.testing.assert_close(uv, pixel_centers(16).reshape(-1, 2), atol=1e-4, rtol=0)
        torch.testing.assert_close(z, out["depth"][b].reshape(-1), atol=1e-5, rtol=0)
    _randomise_head(net)  # with offsets: within max_offset of the ray point (camera frame)
    with torch.no_grad():
        out = net(torch.rand(2, 16, 16, 3), c2w, K)
        on_ray = pixel_gaussians(out["depth"], c2w, K)["means"]
    gap = (out["means"] - on_ray).norm(dim=-1)
    assert gap.max() <= net.config.max_offset * 3 ** 0.5 + 1e-5 and gap.mean() > 0.01


def test_rotate_sh1_matches_eval_sh():
    g = torch.Generator().manual_seed(0)
    sh = torch.randn(5, 4, 3, generator=g)
    R = quat_to_rotmat(torch.randn(5, 4, generator=g))
    d = torch.randn(5, 3, generator=g)
    torch.testing.assert_close(eval_sh(rotate_sh1(sh, R), (R @ d[..., None])[..., 0], 1), eval_sh(sh, d, 1))
    assert rotate_sh1(sh[:, :1], R) is not None and torch.equal(rotate_sh1(sh[:, :1], R), sh[:, :1])


def test_world_frame_rotation_is_consistent():
    """Move the input camera and the target cameras by one rigid transform: the network sees the same
    image, so it must predict the moved Gaussians and render the same target images (rotations, SH too)."""
    net = SplatterImage(SplatterConfig(sh_degree=1, **SMALL))
    _randomise_head(net, std=0.5, seed=1)
    x = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(2))
    c2w, K = _cameras(4, seed=5)
    move = torch.eye(4)
    move[:3, :3] = rotation("y", 70.0) @ rotation("x", -25.0)
    move[:3, 3] = torch.tensor([0.3, -0.2, 0.5])
    renders = []
    with torch.no_grad():
        for cams in (c2w, move @ c2w):
            g = net(x, cams[:1], K[:1])
            renders.append(render_predictions(g, cams[None, 1:], K[None, 1:], (16, 16), backend="torch").rgb)
    assert renders[0].std() > 0.05
    torch.testing.assert_close(renders[1], renders[0], atol=2e-4, rtol=0)
    # the camera-frame covariance does not depend on where the camera is
    covs = []
    with torch.no_grad():
        for cam in (c2w[:1], (move @ c2w)[:1]):
            g = net(x, cam, K[:1])
            R = quat_to_rotmat(g["quats"][0])
            S = torch.diag_embed(g["scales"][0] ** 2)
            Rc = cam[0, :3, :3]
            covs.append(Rc.T @ R @ S @ R.transpose(-1, -2) @ Rc)
    torch.testing.assert_close(covs[1], covs[0], atol=1e-6, rtol=1e-4)


def test_batch_equals_single_calls():
    net = SplatterImage(SplatterConfig(in_channels=4, **SMALL)).eval()
    _randomise_head(net)
    c2w, K = _cameras(3, seed=7)
    x = torch.rand(3, 16, 16, 4)
    with torch.no_grad():
        batched = net(x, c2w, K)
        singles = [net(x[i:i + 1], c2w[i:i + 1], K[i:i + 1]) for i in range(3)]
        targets, _ = _cameras(6, seed=8)
        rb = render_predictions(batched, targets.reshape(3, 2, 4, 4), K, (16, 16), backend="torch").rgb
        rs = [render_predictions(s, targets.reshape(3, 2, 4, 4)[i:i + 1], K[i:i + 1], (16, 16), backend="torch").rgb
              for i, s in enumerate(singles)]
    for k in batched:
        torch.testing.assert_close(batched[k], torch.cat([s[k] for s in singles]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rb, torch.cat(rs), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------- baselines
def test_flat_card_reproduces_the_input_view(srn):
    train, _ = srn
    x, c2w, K = train["images"][:4, 0], train["c2w"][:4, 0], train["K"][:4]
    with torch.no_grad():
        card = flat_card(x, c2w, K, depth=1.3)
        rgb = render_predictions(card, c2w[:, None], K, (16, 16), backend="torch").rgb[:, 0]
    assert psnr(rgb, x) > 22.0
    # a card too far away (beyond the 1.3 of the cameras' distance) still reproduces its own view
    with torch.no_grad():
        far = render_predictions(flat_card(x, c2w, K, depth=1.7), c2w[:, None], K, (16, 16), backend="torch").rgb[:, 0]
    assert psnr(far, x) > 22.0


def test_baselines_are_scored(srn):
    train, test = srn
    card = evaluate_splatter(functools.partial(flat_card, depth=1.3), test, input_view=2, backend="torch", n_renders=1)
    mean = evaluate_mean_image(train["images"], test, input_view=2)
    for res in (card, mean):
        assert res["psnr_per_object"].shape == (2,) and torch.isfinite(res["psnr_per_object"]).all()
        assert 5.0 < res["psnr"] < 40.0 and 0.0 < res["ssim"] <= 1.0
    assert card["psnr_input"] > 22.0 > card["psnr"]  # its own view is easy, the others are not
    r = card["renders"]
    assert r["rgb"].shape == r["truth"].shape == (1, 8, 16, 16, 3) and r["inputs"].shape == (1, 16, 16, 3)
    torch.testing.assert_close(r["truth"][0], test["images"][0])
    # the mean-image score, by hand for object 1
    m = train["images"].reshape(-1, 16, 16, 3).mean(0)
    views = [v for v in range(8) if v != 2]
    by_hand = torch.stack([psnr(m, test["images"][1, v]) for v in views]).mean()
    torch.testing.assert_close(mean["psnr_per_object"][1], by_hand)


def test_input_channels(srn):
    train, _ = srn
    assert input_channels(train) is train["images"]
    four = input_channels(train, "relative")
    assert four.shape == (6, 8, 16, 16, 4)
    fg = train["depth"] > 0
    assert (four[..., 3][~fg] == 0).all() and torch.allclose(four[..., 3].amax((-1, -2)), torch.ones(6, 8))
    with pytest.raises(ValueError, match="depth"):
        input_channels({**train, "depth": None}, "relative")
    with pytest.raises(ValueError, match="depth_input"):
        input_channels(train, "metric")


# ---------------------------------------------------------------------------------- training
def test_training_beats_the_start(srn):
    """~40 steps on 6 cars at 16x16: the novel-view loss on the training objects falls clearly."""
    train, _ = srn
    torch.manual_seed(0)
    net = SplatterImage(SplatterConfig(channels=(16, 32), groups=8))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    before = evaluate_splatter(net, train, backend="torch")["psnr"]
    step = make_splatter_step(net, opt, train, torch.Generator().manual_seed(0),
                              SplatterTraining(n_targets=2, batch=4, backend="torch"))
    hist = fit(step, 40, {"net": net, "opt": opt}, progress=False)
    after = evaluate_splatter(net, train, backend="torch")["psnr"]
    assert set(hist[0]) == {"step", "loss", "psnr", "dt"}
    first, last = (sum(h["loss"] for h in part) / 8 for part in (hist[:8], hist[-8:]))
    assert last < 0.75 * first, (first, last)
    assert after > before + 1.5, (before, after)
    with pytest.raises(ValueError, match="n_targets"):
        make_splatter_step(net, opt, train, torch.Generator(), SplatterTraining(n_targets=8))
    with pytest.raises(ValueError, match="batch"):
        SplatterTraining(batch=0)
