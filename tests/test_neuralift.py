"""NeuralLift pieces (notebook 09): depth ranking and CLIP-style losses, the t_min schedule, input
checks, the procedural input, reference rays and the training step."""
import time

import numpy as np

import pytest
import torch

from lib.methods.dreamfusion import render_turntable
from lib.guidance.guide import Guide
from lib.images import from_nchw, to_nchw
from lib.guidance.sds import TimestepSchedule
from lib.prompts import view_prompt, view_prompts
from lib.methods.neuralift.scoring import (field_mesh, field_view_points, ground_truth_views, measure_lift_runs, novel_view_psnr,
                           shape_chamfer)
from lib.losses import depth_ranking_loss, feature_cosine_loss
from lib.metrics import masked_psnr
from lib.methods.neuralift.lift import (LiftConfig, dreamfusion_field, lift_inputs, make_lift_step, procedural_lift_input,
                           reference_rays)
from lib.primitives import ico_sphere
from lib.train import fit


def concordance(a, b, n=4000, seed=0):
    """Fraction of random pixel pairs ordered alike by a and b (ties skipped)."""
    g = torch.Generator().manual_seed(seed)
    i, j = torch.randint(0, len(a), (2, n), generator=g)
    da, db = a[i] - a[j], b[i] - b[j]
    keep = (da.abs() > 1e-6) & (db.abs() > 1e-6)
    return ((da[keep] > 0) == (db[keep] > 0)).float().mean().item()


def test_depth_ranking_loss_by_hand_and_its_gradient():
    inv = torch.tensor([1.0, 0.5, 0.0])  # pixel 0 nearest
    good = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)  # rendered depths in the same order
    assert depth_ranking_loss(good, inv, 200, torch.Generator().manual_seed(0), margin=0.0).item() == 0.0
    bad = torch.tensor([3.0, 2.0, 1.0], requires_grad=True)  # reversed
    loss = depth_ranking_loss(bad, inv, 2000, torch.Generator().manual_seed(0), margin=0.0)
    # kept pairs are the ordered ones (i != j), each violated by |z_i - z_j| = 1 or 2: mean 4/3
    assert loss.item() == pytest.approx(4 / 3, abs=0.08)
    loss.backward()
    assert bad.grad[0] > 0 > bad.grad[2]  # descent brings the near pixel forward, pushes the far one back
    same = depth_ranking_loss(bad, torch.tensor([0.5, 0.5, 0.5]), 50, torch.Generator().manual_seed(0))
    assert same.item() == 0.0 and same.requires_grad  # no ordered pair: zero, still in the graph
    with pytest.raises(ValueError, match="both be"):
        depth_ranking_loss(good, inv[:2], 10, torch.Generator())


def test_feature_cosine_loss():
    f = torch.tensor([[1.0, 0.0], [-2.0, 0.0], [0.0, 3.0]])
    assert feature_cosine_loss(f, torch.tensor([1.0, 0.0])).item() == pytest.approx((0 + 2 + 1) / 3)
    with pytest.raises(ValueError, match="reference"):
        feature_cosine_loss(f, torch.zeros(3))


def test_t_min_falls_over_the_first_third_and_old_schedules_are_unchanged():
    lin = TimestepSchedule(1000, 0.05, 0.95, "linear", 0.95, 1 / 3, 0.95)
    assert lin.bounds(0.0) == pytest.approx((0.95, 0.95))
    assert lin.bounds(1 / 6) == pytest.approx((0.5, 0.95))
    assert lin.bounds(1 / 3) == pytest.approx((0.05, 0.95)) == lin.bounds(0.9)
    exp = TimestepSchedule(1000, 0.05, 0.95, "exponential", 0.95, 1 / 3, 0.95)
    assert exp.bounds(1 / 6)[0] == pytest.approx((0.95 * 0.05) ** 0.5)
    t = lin.sample(500, 0.0, torch.Generator().manual_seed(0))
    assert int(t.min()) >= 940  # heavy noise only at the start
    assert TimestepSchedule(anneal="linear", t_max_final=0.5).bounds(0.5) == pytest.approx((0.02, 0.74))
    with pytest.raises(ValueError, match="t_min_start"):
        TimestepSchedule(1000, 0.05, 0.95, "linear", 0.95, 1.0, 0.99)


def test_view_prompts():
    az, el = torch.tensor([0.0, 180.0]), torch.tensor([10.0, 10.0])
    assert view_prompts("a chair", az, el) == [view_prompt("a chair", 0.0, 10.0), view_prompt("a chair", 180.0, 10.0)]
    assert view_prompts("a chair", az, el, view_dependent=False) == ["a chair", "a chair"]


def test_lift_inputs_alpha_mask_depth_and_bad_inputs():
    img = np.zeros((6, 6, 4), np.uint8)
    img[2:4, 2:4] = (255, 0, 0, 255)  # a red square, opaque; the rest transparent
    out = lift_inputs(img, inv_depth=np.arange(36, dtype=np.float32).reshape(6, 6))
    assert out["mask"].sum() == 4 and out["mask"][2, 2]
    torch.testing.assert_close(out["image"][0, 0], torch.ones(3))  # composited on white
    torch.testing.assert_close(out["image"][2, 2], torch.tensor([1.0, 0.0, 0.0]))
    d = out["inv_depth"]
    assert d[out["mask"]].min() == 0 and d[out["mask"]].max() == 1 and d[~out["mask"]].abs().sum() == 0
    rgb = torch.rand(6, 6, 3)
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[1:3, 1:3] = True
    cases = [((torch.rand(6, 6),), "RGB"), ((rgb,), "no `mask`"), ((rgb, torch.zeros(6, 6)), "empty"),
             ((rgb, torch.ones(6, 6)), "whole image"), ((rgb, mask, torch.rand(5, 6)), "inv_depth"),
             ((rgb, mask[:5]), "mask"), ((torch.zeros(6, 6, 3, dtype=torch.int32), mask), "float")]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            lift_inputs(*args)


def test_procedural_input_and_reference_rays():
    inp = procedural_lift_input("chair", seed=1, image_size=24)
    m = inp["mask"]
    assert 0.05 < m.float().mean() < 0.9
    # the estimate is imperfect but keeps most of the true order (nearer = larger)
    assert 0.8 < concordance(inp["inv_depth"][m], -inp["true_depth"][m]) < 1.0
    cfg = LiftConfig(image_size=24)
    ref = reference_rays(inp, cfg)
    assert ref["origins"].shape == (24 * 24, 3) and ref["mask"].sum() == m.sum()
    o, d = ref["origins"][ref["mask"]], ref["dirs"][ref["mask"]]
    closest = (o - (o * d).sum(-1, keepdim=True) * d).norm(dim=-1)  # distance of each ray to the origin
    assert closest.max() < 0.5  # object rays pass through the object's unit-diameter sphere
    with pytest.raises(ValueError, match="square"):
        reference_rays({**inp, "image": inp["image"][:, :20]}, cfg)


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_a_missing_prompt_is_named(prompt):
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        LiftConfig(prompt=prompt)


def tiny(**kw):
    return LiftConfig(image_size=10, n_samples=10, hidden=32, n_layers=2, lr=2e-2, **kw)


def test_reference_only_fits_the_view_and_ranking_orders_depth():
    inp = procedural_lift_input("vase", seed=0, image_size=10)
    logs = {}
    fields = {}
    for name, rank in (("ref", 0.0), ("rank", 1.0)):
        cfg = tiny(sds_weight=0.0, clip_weight=0.0, rank_weight=rank, steps=60)
        fields[name] = dreamfusion_field(cfg)
        step = make_lift_step(fields[name], cfg, reference_rays(inp, cfg))
        logs[name] = [step(i) for i in range(cfg.steps)]
    first, last = logs["ref"][0], logs["ref"][-1]
    assert last["rgb"] + last["mask"] < 0.6 * (first["rgb"] + first["mask"])
    ranks = [log["rank"] for log in logs["rank"]]
    assert np.mean(ranks[-10:]) < 0.5 * np.mean(ranks[:10])


def test_sds_and_clip_terms_with_stand_ins_and_resume(tmp_path):
    inp = procedural_lift_input("lamp", seed=0, image_size=8)
    guide = Guide("stand-in", lambda x, t, e: torch.zeros_like(x), lambda prompts: torch.zeros(len(prompts), 4, 8),
                  torch.linspace(0.99, 0.01, 1000), lambda x: 2 * to_nchw(x) - 1, lambda x: from_nchw(x + 1) / 2,
                  (3, 8, 8), 8)
    encoder = lambda images: images.mean(dim=(1, 2))  # noqa: E731  (B, 3): mean colour as the "embedding"
    ref_features = inp["image"][inp["mask"]].mean(0)
    cfg = LiftConfig(image_size=8, n_samples=8, hidden=16, n_layers=2, steps=6, views_per_step=4, ref_rays=32)

    def run(stop_after=None):
        field = dreamfusion_field(cfg)
        opt = torch.optim.Adam(field.parameters(), lr=cfg.lr)
        g = torch.Generator().manual_seed(0)
        step = make_lift_step(field, cfg, reference_rays(inp, cfg), guide, encoder, ref_features, opt, g)
        hist = fit(step, cfg.steps, {"field": field, "opt": opt, "gen": g}, checkpoint=tmp_path / "lift.pt",
                   config=cfg.as_dict(), progress=False, stop_after=stop_after)
        return field, hist

    run(stop_after=3)
    field, hist = run()
    assert len(hist) == 6 and all(np.isfinite(list(h.values())).all() for h in hist)
    assert any(h["clip"] > 0 for h in hist) and all(h["sds"] > 0 for h in hist)  # SDS pushed every step
    straight = dreamfusion_field(cfg)
    opt = torch.optim.Adam(straight.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    fit(make_lift_step(straight, cfg, reference_rays(inp, cfg), guide, encoder, ref_features, opt, g), cfg.steps,
        {"field": straight, "opt": opt, "gen": g}, progress=False)
    for a, b in zip(field.parameters(), straight.parameters()):
        torch.testing.assert_close(a, b)  # stopped at 3 and resumed == straight through
    with pytest.raises(ValueError, match="guide"):
        make_lift_step(dreamfusion_field(cfg), cfg, reference_rays(inp, cfg))
    with pytest.raises(ValueError, match="encoder"):
        make_lift_step(dreamfusion_field(cfg), cfg, reference_rays(inp, cfg), guide)
    no_depth = reference_rays({**inp, "inv_depth": None}, cfg)
    with pytest.raises(ValueError, match="depth estimate"):
        make_lift_step(dreamfusion_field(cfg), cfg, no_depth, guide, encoder, ref_features)
    with pytest.raises(ValueError, match="rank_weight"):
        LiftConfig(rank_weight=-1.0)


def test_masked_psnr_by_hand():
    pred, target = torch.zeros(2, 2, 3), torch.zeros(2, 2, 3)
    pred[0, 0] = 0.1  # error only in pixel (0, 0)
    mask = torch.tensor([[True, True], [False, False]])
    assert masked_psnr(pred, target, mask).item() == pytest.approx(10 * np.log10(1 / (0.01 / 2)), rel=1e-5)
    with pytest.raises(ValueError, match="empty"):
        masked_psnr(pred, target, torch.zeros(2, 2, dtype=torch.bool))


def test_ground_truth_views_match_the_input_render():
    inp = procedural_lift_input("chair", seed=2, image_size=16, azimuth=40.0, elevation=10.0)
    gt = ground_truth_views(inp["mesh"], [40.0], 10.0, LiftConfig(image_size=16))
    assert torch.equal(gt["masks"][0], inp["mask"])
    m = inp["mask"]  # inside the mask the same pixels (outside, the input is whitened: no anti-aliased rim)
    torch.testing.assert_close(gt["images"][0][m], inp["image"][m])


class BlobOnly(torch.nn.Module):
    """A stand-in field with zero density of its own: the surface is the DreamFusion blob's."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def density(self, points):
        return torch.zeros(points.shape[:-1]), torch.zeros(*points.shape[:-1], 1)

    def color(self, h):
        return torch.full((*h.shape[:-1], 3), 0.5)


def test_field_mesh_and_view_chamfer_on_a_known_sphere():
    cfg = LiftConfig(blob_density=500.0, blob_radius=0.15, image_size=24, n_samples=96)
    r = float(np.sqrt(2 * 0.15 ** 2 * np.log(500.0 / 10.0)))  # 500 exp(-r^2 / (2 0.15^2)) = 10
    mesh = field_mesh(BlobOnly(), cfg, level=10.0, resolution=40)
    assert mesh.verts.norm(dim=-1).sub(r).abs().max() < 0.02
    with pytest.raises(ValueError, match="empty"):
        field_mesh(BlobOnly(), LiftConfig(blob_density=0.0))
    az = [0.0, 120.0, 240.0]
    pts = field_view_points(BlobOnly(), cfg, az, 10.0)
    assert len(pts) > 100 and pts.norm(dim=-1).sub(r).abs().median() < 0.03  # a dense blob: its surface
    near = shape_chamfer(BlobOnly(), cfg, ground_truth_views(ico_sphere(3, r), az, 10.0, cfg), az, 10.0)
    far = shape_chamfer(BlobOnly(), cfg, ground_truth_views(ico_sphere(3, r / 2), az, 10.0, cfg), az, 10.0)
    assert near < 0.1 * far
    assert shape_chamfer(BlobOnly(), LiftConfig(blob_density=0.0, image_size=8), ground_truth_views(
        ico_sphere(1, 0.3), [0.0], 10.0, LiftConfig(image_size=8)), [0.0], 10.0) == float("inf")
    psnr = novel_view_psnr(dreamfusion_field(tiny()), tiny(), ground_truth_views(ico_sphere(2, 0.3), [0.0, 90.0], 10.0,
                                                                                 tiny()), [0.0, 90.0], 10.0)
    assert psnr.shape == (2,) and torch.isfinite(psnr).all()
    gt_far = ground_truth_views(ico_sphere(3, r / 2), az, 10.0, cfg)
    shared = render_turntable(BlobOnly(), cfg, az, 10.0)  # one render serves both scores
    assert shape_chamfer(BlobOnly(), cfg, gt_far, az, 10.0, render=shared) == pytest.approx(far, rel=1e-6)
    torch.testing.assert_close(novel_view_psnr(BlobOnly(), cfg, gt_far, az, 10.0, render=shared),
                               novel_view_psnr(BlobOnly(), cfg, gt_far, az, 10.0))


def test_clip_encoder_is_differentiable_and_reports_missing_models(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    from lib.pretrained.clip import load_clip_encoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = transformers.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                        image_size=16, patch_size=8, projection_dim=8)
    torch.manual_seed(0)
    transformers.CLIPVisionModelWithProjection(cfg).save_pretrained(tmp_path)
    transformers.CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16},
                                    image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.3, 0.4]).save_pretrained(tmp_path)
    encode = load_clip_encoder(str(tmp_path))
    images = torch.rand(2, 24, 24, 3, requires_grad=True)
    emb = encode(images)
    assert emb.shape == (2, 8)
    feature_cosine_loss(emb, emb[0].detach()).backward()
    assert images.grad is not None and images.grad[1].abs().sum() > 0  # gradients reach the renders
    # the same numbers as the model on hand-normalised, resized pixels
    net = transformers.CLIPVisionModelWithProjection.from_pretrained(tmp_path).eval()
    x = torch.nn.functional.interpolate(images.detach().permute(0, 3, 1, 2), size=(16, 16), mode="bilinear", antialias=True,
                                        align_corners=False)
    x = (x - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1)
    torch.testing.assert_close(emb.detach(), net(pixel_values=x).image_embeds)
    with pytest.raises(RuntimeError, match="no-such-model"):
        load_clip_encoder(str(tmp_path / "no-such-model"))


def test_measure_lift_runs_covers_the_grid():
    seen = []

    def run(settings):
        seen.append(settings)
        time.sleep(0.01 * settings["a"])  # the timer must see the run's own time
        return {"loss": settings["a"] * settings["b"]}

    rows = measure_lift_runs(run, {"a": [1, 2], "b": [10, 20, 30]})
    assert seen == [{"a": a, "b": b} for a in (1, 2) for b in (10, 20, 30)]
    assert [r["loss"] for r in rows] == [10, 20, 30, 20, 40, 60]
    assert all(0.01 * r["a"] <= r["seconds"] < 0.01 * r["a"] + 1.0 and r["peak_mb"] is None for r in rows)


def test_load_lift_image_from_files(tmp_path):
    import imageio.v3 as iio

    from lib.methods.neuralift.lift import load_lift_image

    rgba = np.zeros((40, 60, 4), np.uint8)  # wider than tall: centre-cropped to 40 x 40
    rgba[10:30, 20:40] = (0, 255, 0, 255)
    iio.imwrite(tmp_path / "obj.png", rgba)
    out = load_lift_image(tmp_path / "obj.png", 20)
    assert out["image"].shape == (20, 20, 3) and 0.2 < out["mask"].float().mean() < 0.3
    rgb, mask = rgba[..., :3].copy(), (rgba[..., 3] > 0).astype(np.uint8) * 255
    iio.imwrite(tmp_path / "photo.png", rgb)
    iio.imwrite(tmp_path / "mask.png", mask)
    torch.testing.assert_close(load_lift_image(tmp_path / "photo.png", 20, tmp_path / "mask.png")["mask"], out["mask"])
    with pytest.raises(ValueError, match="no `mask`"):
        load_lift_image(tmp_path / "photo.png", 20)
    iio.imwrite(tmp_path / "small_mask.png", mask[:20])
    with pytest.raises(ValueError, match="must match"):
        load_lift_image(tmp_path / "photo.png", 20, tmp_path / "small_mask.png")
    with pytest.raises(FileNotFoundError, match="no image file"):
        load_lift_image(tmp_path / "missing.png", 20)


def test_surface_level():
    from lib.methods.neuralift.scoring import surface_level

    cfg = LiftConfig(n_samples=24, bound=0.5)
    sigma = surface_level(cfg, 0.2)
    assert 1 - np.exp(-sigma * 2 * cfg.bound / cfg.n_samples) == pytest.approx(0.2)
