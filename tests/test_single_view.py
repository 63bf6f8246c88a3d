"""Single-view reconstruction (lib.models.single_view, the single-view half of lib.methods.recon): decoder
shapes, input checks, the batched mesh sampler, the mean-shape baseline, the F-score evaluation,
and kill-and-resume of a short training run. (That each decoder beats the baseline on held-out
chairs is asserted on notebook 03's recorded metrics, tests/expectations.json.)"""
import pytest
import torch

from lib.models.single_view import ResNet18Encoder, SingleViewModel
from lib.geometry import sample_surface_batched
from lib.methods.recon import MeanShapeBaseline, evaluate_single_view, make_single_view_step
from lib.primitives import box, ico_sphere
from lib.train import fit


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("kind,kwargs,shape", [
    ("voxels", {}, (32, 32, 32)),
    ("points", {"n_points": 256}, (256, 3)),
    ("mesh", {"level": 4}, (2562, 3)),
])
def test_decoder_output_shapes(kind, kwargs, shape, batch):
    model = SingleViewModel(kind, image_size=32, **kwargs).eval()
    out = model(torch.rand(batch, 32, 32, 3))
    assert out.shape == (batch, *shape) and torch.isfinite(out).all()
    if kind == "points":
        assert float(out.detach().abs().max()) <= 0.5
    if kind == "mesh":
        assert model.decoder.faces.shape == (5120, 3)
        torch.testing.assert_close(out, model.decoder.template.expand_as(out))  # starts as the sphere


def test_voxel_decoder_starts_at_the_mean_shape_and_learns_from_it():
    mean = torch.rand(32, 32, 32)
    model = SingleViewModel("voxels", image_size=32, mean_shape=mean).eval()
    out = model(torch.rand(3, 32, 32, 3))
    torch.testing.assert_close(out, torch.logit(mean.clamp(0.02, 0.98)).expand_as(out))  # any image
    model.train()
    model(torch.rand(2, 32, 32, 3)).sum().backward()
    assert model.decoder.head.weight.grad.abs().sum() > 0  # the zeroed last layer still learns
    with pytest.raises(ValueError, match=r"`mean_shape` must be the \(32, 32, 32\) mean.*got \(16, 16, 16\)"):
        SingleViewModel("voxels", image_size=32, mean_shape=torch.rand(16, 16, 16))


@pytest.mark.parametrize("images,message", [
    (torch.rand(2, 32, 32, 3), r"expects 64x64 images.*\(B, 64, 64, 3\), got \(2, 32, 32, 3\)"),
    (torch.rand(2, 64, 80, 3), r"expects 64x64 images.*got \(2, 64, 80, 3\)"),
    (torch.rand(2, 3, 64, 64), r"must be \(B, H, W, 3\) RGB in \[0, 1\], got \(2, 3, 64, 64\) \(channels first\?"),
    (torch.zeros(2, 64, 64, 3, dtype=torch.uint8), r"must be float in \[0, 1\], got dtype torch.uint8"),
    (torch.rand(2, 64, 64, 3) * 255, r"must be in \[0, 1\]"),
])
def test_wrong_images_are_refused(images, message):
    enc = ResNet18Encoder(image_size=64)
    with pytest.raises(ValueError, match=message):
        enc(images)


def test_mesh_loss_samples_are_on_the_surface_uniform_and_differentiable():
    """The mesh decoder's chamfer term samples its meshes with lib.geometry.sample_surface_batched."""
    gen = torch.Generator().manual_seed(0)
    sphere = ico_sphere(3, radius=0.3)
    verts = torch.stack([sphere.verts, 2 * sphere.verts]).requires_grad_(True)
    pts = sample_surface_batched(verts, sphere.faces, 4000, gen)[0]
    r = pts.detach().norm(dim=-1)
    assert pts.shape == (2, 4000, 3) and float(r[0].max()) <= 0.3 + 1e-5 and float(r[0].min()) > 0.29
    pts.sum().backward()
    assert verts.grad is not None and torch.isfinite(verts.grad).all()
    b = box((0, 0, 0), (1.0, 0.2, 0.2))  # two big sides: about 2 * 0.2 / (4 * 0.2 + 2 * 0.04) of the samples
    p = sample_surface_batched(b.verts[None], b.faces, 20000, gen)[0][0]
    on_big_x_side = (p[:, 0].abs() > 0.499).float().mean()
    assert abs(float(on_big_x_side) - 0.08 / 0.88) < 0.01


def test_mean_shape_baseline_and_evaluate_single_view():
    grids = torch.zeros(4, 32, 32, 32, dtype=torch.bool)
    for i in range(4):
        grids[i, 8:24, 4:20 + i, 8:24] = True  # boxes of growing height
    base = MeanShapeBaseline(grids)
    assert base.voxels.shape == (32, 32, 32) and 0.05 <= base.threshold <= 0.95
    assert torch.equal(torch.sigmoid(base.predict(torch.rand(5, 8, 8, 3))) > 0.5, base.voxels.expand(5, -1, -1, -1))
    pts = torch.rand(3, 500, 3) - 0.5
    data = {"images": torch.zeros(3, 2, 8, 8, 3, dtype=torch.uint8), "voxels": grids[:3], "points": pts}
    perfect = evaluate_single_view(lambda im: pts[:len(im)].clone(), data, views=[0], kind="points")
    assert perfect["f1"].shape == (3, 5) and torch.allclose(perfect["f1"], torch.ones(3, 5))
    far = evaluate_single_view(lambda im: pts.repeat_interleave(2, 0)[:len(im)] + 1.0, data, views=[0, 1], kind="points")
    assert far["f1"].shape == (6, 5) and float(far["f1"].max()) == 0.0
    vox = evaluate_single_view(base.predict, data, views=[0], kind="voxels", n_points=300)
    assert len(vox["points"]) == 3 and vox["points"][0].shape == (300, 3)
    empty = evaluate_single_view(lambda im: torch.full((len(im), 32, 32, 32), -5.0), data, views=[0], kind="voxels")
    assert empty["points"][0] is None and float(empty["f1"].max()) == 0.0


def _toy_data(n=6, views=2, size=32):
    g = torch.Generator().manual_seed(0)
    return {"images": torch.randint(0, 256, (n, views, size, size, 3), generator=g, dtype=torch.uint8),
            "voxels": torch.rand(n, 32, 32, 32, generator=g) > 0.9,
            "points": torch.rand(n, 300, 3, generator=g) - 0.5}


def test_kill_and_resume_gives_the_same_run(tmp_path):
    """Training 6 steps in one go, or 3 steps, a 'crash', then a fresh process-like restart
    from the checkpoint: the same weights and losses (within float noise). The mesh decoder's
    step also draws its surface samples from the generator, whose state must be restored too."""
    data, kind = _toy_data(), "mesh"

    def run(ckpt, stop_after=None, init_seed=0):
        torch.manual_seed(init_seed)  # a restarted process builds its model from other random weights
        model = SingleViewModel(kind, image_size=32, **({"n_points": 128} if kind == "points" else {"level": 2}))
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(5)
        step = make_single_view_step(model, data, opt, gen, batch_size=4, smooth_weight=0.5)
        config = {"kind": kind, "lr": 1e-3, "batch_size": 4, "smooth_weight": 0.5, "image_size": 32}
        hist = fit(step, 6, {"model": model, "opt": opt, "gen": gen}, checkpoint=ckpt, config=config,
                   checkpoint_every=3, progress=False, stop_after=stop_after)
        return model, hist

    ref_model, ref_hist = run(None)  # uninterrupted, no checkpoint
    _, first = run(tmp_path / "b.pt", stop_after=3)
    assert len(first) == 3
    model, hist = run(tmp_path / "b.pt", init_seed=123)
    assert [h["step"] for h in hist] == list(range(6))
    torch.testing.assert_close(torch.tensor([h["loss"] for h in hist]), torch.tensor([h["loss"] for h in ref_hist]),
                               rtol=1e-4, atol=1e-6)
    for (name, a), b in zip(ref_model.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
