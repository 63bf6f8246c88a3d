"""lib.methods.nerf: the rays of a set of views, the standard renderer, the training step (and that it
learns and resumes under lib.train.fit), and the evaluation of held-out views."""
import math
import time

import pytest
import torch

from lib import cameras
from lib.metrics import psnr, ssim
from lib.models.nerf import BoxDensity
from lib.methods.nerf import evaluate_views, make_nerf_step, training_rays, volume_renderer
from lib.render.volume import volume_render
from lib.train import fit

SIZE = 12


def _views(truth, n=4, size=SIZE):
    """n views of a field, rendered by the standard renderer: a dataset the field explains exactly."""
    c2w = cameras.orbit_poses(torch.arange(n) * (360.0 / n), elevation=torch.tensor([15.0, 40.0] * (n // 2)),
                              distance=4.0)
    K = cameras.intrinsics_from_fov(40.0, size)
    render = volume_renderer(2.0, 6.0, 32, background=1.0)
    data = {"images": torch.zeros(n, size, size, 3), "c2w": c2w, "K": K}
    with torch.no_grad():
        o, d, _ = training_rays(data)
        data["images"] = render(truth, o, d, perturb=False)["rgb"].reshape(n, size, size, 3)
    return data, render


def test_training_rays_layout():
    data, _ = _views(BoxDensity(), n=2, size=6)
    o, d, rgb = training_rays(data)
    assert o.shape == d.shape == rgb.shape == (2 * 6 * 6, 3)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(72))
    i, y, x = 1, 4, 2  # row (i * H + y) * W + x is pixel (x, y) of view i
    row = (i * 6 + y) * 6 + x
    torch.testing.assert_close(rgb[row], data["images"][i, y, x])
    torch.testing.assert_close(o[row], data["c2w"][i, :3, 3])
    with pytest.raises(ValueError, match="missing"):
        training_rays({"images": data["images"]})


def test_volume_renderer_is_volume_render_and_clips_to_the_box():
    field = BoxDensity(sides=(0.8, 0.8, 0.8))
    o = torch.tensor([[0.0, 0.0, -4.0], [0.0, 3.0, -4.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # the second ray passes above the box
    plain = volume_renderer(2.0, 6.0, 64, background=1.0)(field, o, d, perturb=False)
    ref = volume_render(field, o, d, 2.0, 6.0, 64, background=1.0, perturb=False)
    torch.testing.assert_close(plain["rgb"], ref["rgb"])
    box = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    clipped = volume_renderer(2.0, 6.0, 64, background=1.0, aabb=box)(field, o, d, perturb=False)
    assert clipped["opacity"][0] > 0.99 and clipped["opacity"][1] < 1e-6  # the miss shows the background
    torch.testing.assert_close(clipped["rgb"][1], torch.ones(3))
    t = clipped["t"][0]  # all 64 samples of the hit ray lie inside the box: z in [-1, 1] -> t in [3, 5]
    assert t.min() >= 3.0 - 1e-5 and t.max() <= 5.0 + 1e-5


def test_make_nerf_step_logs_updates_calls_hook_and_scheduler():
    data, render = _views(BoxDensity(center=(0.1, 0.0, 0.0)), n=2)
    field = BoxDensity()
    opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.5)
    calls = []
    step = make_nerf_step(field, opt, render, training_rays(data), torch.Generator().manual_seed(0), 64,
                          scheduler=sched, hook=calls.append)
    before = field.center.detach().clone()
    start = time.perf_counter()
    logs = step(7)
    elapsed = time.perf_counter() - start
    assert set(logs) == {"loss", "mse", "psnr", "dt", "evals_per_ray"} and calls == [7]
    assert logs["loss"] == logs["mse"]
    assert logs["psnr"] == pytest.approx(-10 * math.log10(logs["loss"]))
    assert logs["evals_per_ray"] == 32 and 0 < logs["dt"] <= elapsed  # the step's own time, within the call's
    assert not torch.equal(field.center, before)  # the optimizer stepped
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-3)  # the scheduler stepped once
    with pytest.raises(ValueError, match=r"three \(R, 3\)"):
        make_nerf_step(field, opt, render, (torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(5, 3)),
                       torch.Generator(), 2)


def test_make_nerf_step_adds_the_extra_loss_and_its_gradient():
    data, render = _views(BoxDensity(center=(0.1, 0.0, 0.0)), n=2)
    field = BoxDensity()
    opt = torch.optim.SGD(field.parameters(), lr=0.0)  # lr 0: the step leaves the field as it is
    rays = training_rays(data)
    plain = make_nerf_step(field, opt, render, rays, torch.Generator().manual_seed(0), 64)(0)
    seen = []

    def pull(i):  # a term that depends on the field: its gradient must reach the parameters
        seen.append(i)
        return 3.0 * field.center.pow(2).sum() + 0.25
    step = make_nerf_step(field, opt, render, rays, torch.Generator().manual_seed(0), 64, extra_loss=pull)
    logs = step(5)
    assert seen == [5] and logs["mse"] == pytest.approx(plain["mse"])  # same ray draws
    extra = 3.0 * field.center.detach().pow(2).sum().item() + 0.25
    assert logs["loss"] == pytest.approx(logs["mse"] + extra)
    assert logs["psnr"] == pytest.approx(-10 * math.log10(logs["mse"]))
    mse_grad = field.center.grad.clone()  # the step left the summed gradient in .grad
    opt.zero_grad()
    (3.0 * field.center.pow(2).sum()).backward()
    assert not torch.allclose(mse_grad, field.center.grad)  # the MSE part is there too


def _fit_box(data, render, ckpt=None, stop_after=None, init_seed=0):
    torch.manual_seed(init_seed)
    field = BoxDensity(center=torch.rand(3).mul(0.1).tolist())  # a restarted run starts elsewhere
    opt = torch.optim.Adam(field.parameters(), lr=0.03)
    gen = torch.Generator().manual_seed(1)
    step = make_nerf_step(field, opt, render, training_rays(data), gen, 256)
    config = {"steps": 40, "lr": 0.03, "batch": 256}
    hist = fit(step, 40, {"field": field, "opt": opt, "gen": gen}, checkpoint=ckpt, config=config,
               checkpoint_every=20, progress=False, stop_after=stop_after)
    return field, hist


def test_the_step_learns_and_resumes_under_fit(tmp_path, one_thread):
    truth = BoxDensity(center=(0.2, -0.1, 0.1), sides=(1.0, 0.6, 0.8))
    data, render = _views(truth, n=4)
    field, hist = _fit_box(data, render)
    assert hist[-1]["loss"] < 0.2 * hist[0]["loss"], (hist[0]["loss"], hist[-1]["loss"])
    assert (field.center - truth.center).abs().max() < 0.1
    _fit_box(data, render, tmp_path / "box.pt", stop_after=20)
    resumed, hist2 = _fit_box(data, render, tmp_path / "box.pt", init_seed=7)
    torch.testing.assert_close(torch.tensor([h["loss"] for h in hist2]), torch.tensor([h["loss"] for h in hist]),
                               rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(resumed.center, field.center, rtol=1e-4, atol=1e-6)


def test_evaluate_views_scores_each_view_with_lib_metrics():
    truth = BoxDensity(center=(0.1, 0.0, -0.1), sides=(0.9, 0.7, 0.8))
    data, render = _views(truth, n=4)
    exact = evaluate_views(truth, render, data)
    assert exact["psnr"] == math.inf and exact["ssim"] == pytest.approx(1.0)
    other = BoxDensity()
    res = evaluate_views(other, render, data, n=3, chunk=50)
    assert res["index"].tolist() == [0, 2, 3]  # linspace(0, 3, 3) rounded: 0, 1.5 -> 2, 3
    assert res["psnr_per_view"].shape == res["ssim_per_view"].shape == (3,) and len(res["renders"]) == 3
    for k, i in enumerate(res["index"].tolist()):
        with torch.no_grad():
            o, d, _ = training_rays({**data, "images": data["images"][i:i + 1], "c2w": data["c2w"][i:i + 1]})
            img = render(other, o, d, perturb=False)["rgb"].reshape(SIZE, SIZE, 3).clamp(0, 1)
        torch.testing.assert_close(res["renders"][k]["rgb"], img, rtol=1e-5, atol=1e-6)
        assert res["psnr_per_view"][k].item() == pytest.approx(psnr(img, data["images"][i]).item(), abs=1e-4)
        assert res["ssim_per_view"][k].item() == pytest.approx(ssim(img, data["images"][i]).item(), abs=1e-5)
    assert res["psnr"] == pytest.approx(res["psnr_per_view"].mean().item())
    assert 5 < res["psnr"] < 40 and res["ssim"] < 1
    assert res["renders"][0]["distance"].shape == (SIZE, SIZE)
