"""lib.models.multi_view and the multi-view half of lib.methods.recon: order invariance, shapes, pose width,
KL annealing, the VAE-GAN step, colour targets, learning, errors. (Its losses: tests/test_losses.py.)"""

import pytest
import torch

from lib.methods import recon
from lib.losses import colored_chamfer
from lib.models import multi_view as mv

S = 32  # small views keep the tests fast


def _views(b, v, s=S, seed=0):
    return torch.rand(b, v, s, s, 3, generator=torch.Generator().manual_seed(seed))


def _poses(b, v, seed=0):
    from lib.cameras import orbit_poses

    az = torch.rand(b * v, generator=torch.Generator().manual_seed(seed)) * 360
    return orbit_poses(az, elevation=25.0, distance=1.5).view(b, v, 4, 4)


def _perms(v, n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(v, generator=g) for _ in range(n)]


# ----------------------------------------------------------------------- pooling
@pytest.mark.parametrize("mode", ["mean", "max", "maxmean"])
@pytest.mark.parametrize("shape", [(1, 1, 4), (2, 6, 5), (3, 4, 7)])
def test_view_pool_matches_loop_reference_and_is_order_invariant(mode, shape):
    feats = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    b, v, c = shape
    ref = torch.zeros(b, 2 * c if mode == "maxmean" else c)
    for i in range(b):  # slow reference: one object at a time, views in a Python loop
        mx, sm = feats[i, 0].clone(), torch.zeros(c)
        for j in range(v):
            mx, sm = torch.maximum(mx, feats[i, j]), sm + feats[i, j]
        ref[i] = {"mean": sm / v, "max": mx, "maxmean": torch.cat([mx, sm / v])}[mode]
    pool = mv.ViewPool(mode)
    out = pool(feats)
    torch.testing.assert_close(out, ref)
    for perm in _perms(v):
        assert (pool(feats[:, perm]) - out).abs().max() <= 1e-6


def test_view_pool_rejects_unknown_mode():
    with pytest.raises(ValueError, match="pooling mode"):
        mv.ViewPool("sum")


def test_small_conv_encoder_shapes_and_per_view_independence():
    enc = mv.SmallConvEncoder(image_size=S, out_dim=24)
    x = _views(1, 4)[0].permute(0, 3, 1, 2)  # (4, 3, S, S): the model's inner, channels-first layer
    with torch.no_grad():
        f = enc(x)
        assert f.shape == (4, 24)
        torch.testing.assert_close(enc(x[2:3]), f[2:3])  # no batch statistics


# ----------------------------------------------------------------------- point model
@pytest.mark.parametrize("batch,n_points", [(1, 64), (3, 128)])
def test_point_net_shapes_ranges_and_permutation_invariance(batch, n_points):
    torch.manual_seed(0)
    net = mv.ColoredPointNet(mv.ColoredPointNetConfig(n_views=6, image_size=S, n_points=n_points, feat_dim=32, hidden=64)).eval()
    x = _views(batch, 6)
    with torch.no_grad():
        pts, rgb = net(x)
        assert pts.shape == (batch, n_points, 3) and rgb.shape == (batch, n_points, 3)
        assert rgb.min() >= 0 and rgb.max() <= 1
        for perm in _perms(6):
            p2, c2 = net(x[:, perm])
            assert (p2 - pts).abs().max() <= 1e-6 and (c2 - rgb).abs().max() <= 1e-6


def test_point_net_depends_on_the_views():
    torch.manual_seed(0)
    net = mv.ColoredPointNet(mv.ColoredPointNetConfig(n_views=6, image_size=S, n_points=32, feat_dim=32, hidden=64)).eval()
    with torch.no_grad():
        a, b = net(_views(1, 6, seed=0))[0], net(_views(1, 6, seed=1))[0]
    assert (a - b).abs().max() > 1e-4  # not a constant output: invariance is not trivial


@pytest.mark.parametrize("bad,match", [((2, 5, S, S, 3), "exactly 6 views"), ((2, 6, 64, 64, 3), "32x32"),
                                       ((2, 6, S, S, 1), r"\(B, V, H, W, 3\)"), ((6, S, S, 3), r"\(B, V, H, W, 3\)"),
                                       ((2, 6, 3, S, S), r"\(B, V, H, W, 3\).*channels first")])
def test_point_net_bad_input_raises(bad, match):
    net = mv.ColoredPointNet(mv.ColoredPointNetConfig(n_views=6, image_size=S, n_points=16, feat_dim=8, hidden=16))
    with pytest.raises(ValueError, match=match):
        net(torch.zeros(bad))


def test_image_size_must_be_divisible_by_16():
    with pytest.raises(ValueError, match="divisible by 16"):
        mv.ColoredPointNet(mv.ColoredPointNetConfig(image_size=40))


def test_point_net_training_reduces_the_loss():
    torch.manual_seed(0)
    net = mv.ColoredPointNet(mv.ColoredPointNetConfig(n_views=2, image_size=16, n_points=64, feat_dim=16, hidden=64,
                                               color_dim=32))
    x = _views(2, 2, s=16)
    g = torch.Generator().manual_seed(0)
    gt_pts = torch.rand(2, 128, 3, generator=g) - 0.5
    gt_rgb = gt_pts + 0.5  # colour = a function of position, so the colour head can learn it
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    logs = []
    for _ in range(60):
        cd, cl = colored_chamfer(*net(x), gt_pts, gt_rgb)
        opt.zero_grad(); (cd + cl).backward(); opt.step()
        logs.append((cd.item(), cl.item()))
    assert logs[-1][0] < 0.3 * logs[0][0] and logs[-1][1] < 0.6 * logs[0][1]


# ----------------------------------------------------------------------- KL schedule
@pytest.mark.parametrize("step,expected", [(0, 0.0), (5, 0.0), (10, 0.0), (15, 0.25), (20, 0.5), (30, 1.0), (500, 1.0)])
def test_kl_weight_schedule_values(step, expected):
    assert recon.kl_weight(step, warmup_steps=20, beta_max=1.0, delay=10) == pytest.approx(expected)


def test_kl_weight_schedule_edges():
    assert recon.kl_weight(0, 0, 0.3) == pytest.approx(0.3)  # no warm-up: full weight at once
    assert recon.kl_weight(50, 100, 2e-3) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="warmup_steps"):
        recon.kl_weight(0, -1)


# ----------------------------------------------------------------------- VAE-GAN
def _vaegan(**kw):
    torch.manual_seed(0)
    cfg = dict(image_size=S, feat_dim=32, latent_dim=16, gen_channels=(16, 8, 4))
    cfg.update(kw)
    return mv.MultiViewVAEGAN(mv.VAEGANConfig(**cfg)).eval()


@pytest.mark.parametrize("fusion", ["mean", "max"])
@pytest.mark.parametrize("use_pose", [False, True])
def test_vaegan_encoder_is_permutation_invariant(fusion, use_pose):
    m = _vaegan(fusion=fusion, use_pose=use_pose)
    with torch.no_grad():  # break the zero-initialised last layer so that the output depends on z
        m.generator.net[-1].weight.normal_(0, 0.1)
    x, c = _views(2, 5), _poses(2, 5)
    with torch.no_grad():
        logits, mu, logvar = m(x, c)
        for perm in _perms(5):
            l2, mu2, lv2 = m(x[:, perm], c[:, perm])  # images and poses permuted together
            assert (mu2 - mu).abs().max() <= 1e-6 and (lv2 - logvar).abs().max() <= 1e-6
            assert (l2 - logits).abs().max() <= 1e-6


def test_pose_changes_the_per_view_input_width_and_the_output():
    plain, posed = _vaegan(use_pose=False), _vaegan(use_pose=True)
    assert plain.encoder.in_width == 32 and plain.encoder.view_mlp[0].in_features == 32
    assert posed.encoder.in_width == 32 + mv.POSE_DIM and posed.encoder.view_mlp[0].in_features == 32 + mv.POSE_DIM
    x = _views(1, 3)
    with torch.no_grad():
        mu_a = posed.encoder(x, _poses(1, 3, seed=0))[0]
        mu_b = posed.encoder(x, _poses(1, 3, seed=1))[0]
    assert (mu_a - mu_b).abs().max() > 1e-5  # same images, other cameras: another code


def test_encode_pose_layout():
    c2w = _poses(2, 3)
    enc = mv.MultiViewEncoder.encode_pose(c2w)
    assert enc.shape == (2, 3, mv.POSE_DIM)
    torch.testing.assert_close(enc[1, 2], c2w[1, 2, :3, :4].reshape(-1))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4, 4\)"):
        mv.MultiViewEncoder.encode_pose(torch.zeros(2, 3, 4))


@pytest.mark.parametrize("batch,n_views", [(1, 1), (2, 4)])
def test_generator_discriminator_and_model_shapes(batch, n_views):
    m = _vaegan(use_pose=True)
    with torch.no_grad():
        logits, mu, logvar = m(_views(batch, n_views), _poses(batch, n_views))
        assert logits.shape == (batch, 32, 32, 32) and mu.shape == logvar.shape == (batch, 16)
        assert m.generator(torch.randn(batch, 16)).shape == (batch, 32, 32, 32)
        assert m.discriminator(torch.rand(batch, 32, 32, 32)).shape == (batch,)


def test_untrained_generator_outputs_the_prior():
    m = _vaegan()
    mean = torch.rand(32, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    m.generator.set_prior(mean)
    with torch.no_grad():
        probs = torch.sigmoid(m.generator(torch.randn(3, 16)))
    torch.testing.assert_close(probs, mean.expand(3, -1, -1, -1), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(32, 32, 32\)"):
        m.generator.set_prior(torch.zeros(16, 16, 16))


@pytest.mark.parametrize("kw,args,match", [
    ({}, ((2, 3, 64, 64, 3),), "32x32"),
    ({"max_views": 4}, ((2, 5, S, S, 3),), r"1\.\.4 views"),
    ({}, ((2, 0, S, S, 3),), r"1\.\.24 views"),
    ({"use_pose": True}, ((2, 3, S, S, 3),), "needs `c2w`"),
    ({"use_pose": True}, ((2, 3, S, S, 3), (2, 2, 4, 4)), r"\(2, 3, 4, 4\)"),
])
def test_vaegan_bad_input_raises(kw, args, match):
    m = _vaegan(**kw)
    x = torch.zeros(args[0])
    c = torch.eye(4).expand(*args[1]) if len(args) > 1 else None
    with pytest.raises(ValueError, match=match):
        m(x, c)


def test_bad_config_and_voxels_raise():
    with pytest.raises(ValueError, match="fusion"):
        _vaegan(fusion="sum")
    with pytest.raises(ValueError, match=r"\(B, 32, 32, 32\)"):
        _vaegan().discriminator(torch.zeros(2, 16, 16, 16))


def test_vaegan_steps_reduce_the_reconstruction_loss():
    m = _vaegan(use_pose=True)
    vox = torch.zeros(2, 32, 32, 32)
    vox[0, 8:20, 4:12, 8:20] = 1  # a slab
    vox[1, 14:18, 4:28, 14:18] = 1  # a pole
    x, c = _views(2, 2), _poses(2, 2)
    opt_ae = torch.optim.Adam(m.ae_parameters(), lr=3e-3)
    opt_d = torch.optim.Adam(m.discriminator.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    logs = [recon.vaegan_step(m, opt_ae, opt_d, x, vox, c, beta=recon.kl_weight(s, 10, 1e-3), pos_weight=2.0,
                              generator=g)
            for s in range(30)]
    assert set(logs[0]) == {"loss", "recon", "kl", "adv", "d_loss"}
    assert logs[-1]["recon"] < 0.5 * logs[0]["recon"]


# ----------------------------------------------------------------------- colour targets
@pytest.mark.needs_pytorch3d  # the oracle renders with PyTorch3D
def test_colors_from_views_recovers_vertex_colours():
    """Oracle: unlit renders of a vertex-coloured chair; seen points get their part's colour."""
    from lib import cameras
    from lib.data.furniture import chair
    from lib.geometry import sample_surface
    from lib.render import RenderSettings, render_mesh
    from lib.mesh import normalize_mesh

    mesh = normalize_mesh(chair(0))
    c2w = cameras.orbit_poses(torch.arange(6) * 60.0 + 10, elevation=25.0, distance=2.0)
    K = cameras.intrinsics_from_fov(40.0, 64).expand(6, 3, 3)
    images = render_mesh(mesh, c2w, K, RenderSettings(image_size=64, shading="unlit"))["rgb"]
    pts, face = sample_surface(mesh, 1024, torch.Generator().manual_seed(0))
    truth = mesh.vert_colors[mesh.faces[face, 0]]  # each part has one colour
    colors, seen = recon.colors_from_views(pts, images, c2w, K)
    assert colors.shape == (1024, 3) and seen.shape == (1024,) and seen.max() <= 6
    assert (seen > 0).float().mean() > 0.7
    err = (colors - truth).abs().mean(1)
    assert err.mean() < 0.02 and (err < 0.05).float().mean() > 0.9


def test_colors_from_views_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"`points` must be \(N, 3\)"):
        recon.colors_from_views(torch.zeros(5, 2), torch.zeros(1, 8, 8, 3), torch.eye(4)[None], torch.eye(3)[None])
    with pytest.raises(ValueError, match="c2w"):
        recon.colors_from_views(torch.zeros(5, 3), torch.zeros(2, 8, 8, 3), torch.eye(4)[None], torch.eye(3)[None])
