"""lib.render.gaussians.render_gaussians: a hand-checked Gaussian, batch dims, the SH path, bad
inputs, the means2d gradient, and (on CUDA only) parity with gsplat.rasterization."""
import math

import pytest
import torch

from lib.cameras import intrinsics_from_fov, look_at, world_to_camera
from lib.render.gaussians import camera_centers, render_gaussians, rgb_to_sh0, sh_to_rgb


def objects(batch, n=80, views=2, seed=0, device="cpu", opac_range=(0.1, 0.9)):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(batch + (n, 3), generator=g) * 0.5
    quats = torch.randn(batch + (n, 4), generator=g)
    scales = torch.rand(batch + (n, 3), generator=g) * 0.08 + 0.01
    lo, hi = opac_range
    opac = lo + (hi - lo) * torch.rand(batch + (n,), generator=g)
    colors = torch.rand(batch + (n, 3), generator=g)
    eyes = torch.randn(batch + (views, 3), generator=g) * 0.3 + torch.tensor([0.0, 0.0, -3.0])
    viewmats = world_to_camera(look_at(eyes))
    Ks = intrinsics_from_fov(45.0, (24, 32)).expand(batch + (views, 3, 3))
    return [x.to(device) for x in (means, quats, scales, opac, colors, viewmats, Ks)]


def test_single_gaussian_by_hand():
    z, s, f, o = 2.0, 0.05, 40.0, 0.6
    colour, bg = torch.tensor([0.9, 0.3, 0.1]), torch.tensor([0.0, 0.5, 1.0])
    K = torch.tensor([[[f, 0, 8.5], [0, f, 6.5], [0, 0, 1]]])  # the mean lands on pixel (row 6, col 8)'s centre
    out = render_gaussians(torch.tensor([[0.0, 0.0, z]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), s),
                           torch.tensor([o]), colour[None], torch.eye(4)[None], K, 17, 13, background=bg)
    torch.testing.assert_close(out.rgb[0, 6, 8], o * colour + (1 - o) * bg)
    torch.testing.assert_close(out.alpha[0, 6, 8, 0], torch.tensor(o))
    torch.testing.assert_close(out.depth[0, 6, 8, 0], torch.tensor(z))
    var = (f * s / z) ** 2 + 0.3  # EWA: isotropic, plus the 0.3 px^2 low-pass
    for di, dj in [(0, 1), (2, -1), (-3, 2)]:
        a = o * math.exp(-0.5 * (di * di + dj * dj) / var)
        expected = a * colour + (1 - a) * bg if a >= 1 / 255 else bg
        torch.testing.assert_close(out.rgb[0, 6 + di, 8 + dj], expected)
    r = math.ceil(3 * math.sqrt(var))
    assert out.radii.tolist() == [[r]] and out.means2d[0, 0].tolist() == [8.5, 6.5]
    torch.testing.assert_close(out.rgb[0, 0, 0], bg)  # outside the 3-sigma box


def test_batched_call_equals_per_object_calls():
    means, quats, scales, opac, colors, viewmats, Ks = objects((2, 3))
    out = render_gaussians(means, quats, scales, opac, colors, viewmats, Ks, 32, 24, background=torch.ones(3))
    assert out.rgb.shape == (2, 3, 2, 24, 32, 3) and out.radii.shape == (2, 3, 2, 80)
    for b in range(2):
        for v in range(3):
            one = render_gaussians(means[b, v], quats[b, v], scales[b, v], opac[b, v], colors[b, v],
                                   viewmats[b, v], Ks[b, v], 32, 24, background=torch.ones(3))
            for x, y in zip(out, one):
                torch.testing.assert_close(x[b, v], y)


def test_sh_path_equals_explicit_colours():
    means, quats, scales, opac, _, viewmats, Ks = objects((2,), views=3, seed=1)
    sh = torch.randn(2, 80, 16, 3) * 0.3
    sh[..., 0, :] = rgb_to_sh0(torch.rand(2, 80, 3))
    out = render_gaussians(means, quats, scales, opac, sh, viewmats, Ks, 32, 24, sh_degree=3)
    rgb = sh_to_rgb(sh, means, camera_centers(viewmats), 3)  # (2, 3, 80, 3)
    for b in range(2):
        for v in range(3):
            one = render_gaussians(means[b], quats[b], scales[b], opac[b], rgb[b, v], viewmats[b, v:v + 1],
                                   Ks[b, v:v + 1], 32, 24)
            torch.testing.assert_close(out.rgb[b, v], one.rgb[0])
    deg0 = render_gaussians(means, quats, scales, opac, sh, viewmats, Ks, 32, 24, sh_degree=0)
    assert (deg0.rgb - out.rgb).abs().max() > 1e-3  # higher degrees change the picture


def test_means2d_keeps_its_gradient():
    means, quats, scales, opac, colors, viewmats, Ks = objects((), views=2)
    means.requires_grad_()
    out = render_gaussians(means, quats, scales, opac, colors, viewmats, Ks, 32, 24)
    out.rgb.sum().backward()
    assert out.means2d.grad is not None and out.means2d.grad.shape == (2, 80, 2)
    visible = out.radii > 0
    assert out.means2d.grad[visible].abs().sum() > 0 and (out.means2d.grad[~visible] == 0).all()
    assert means.grad is not None and torch.isfinite(means.grad).all()


def test_bad_inputs_are_named():
    args = objects((), views=2)
    means, quats, scales, opac, colors, viewmats, Ks = args

    def call(**changes):
        names = ["means", "quats", "scales", "opacities", "colors", "viewmats", "Ks"]
        kw = dict(zip(names, args), **changes)
        return render_gaussians(kw.pop("means"), kw.pop("quats"), kw.pop("scales"), kw.pop("opacities"),
                                kw.pop("colors"), kw.pop("viewmats"), kw.pop("Ks"), 32, 24, **kw)

    bad = means.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="means contains NaN"):
        call(means=bad)
    bad = colors.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="colors contains NaN or inf"):
        call(colors=bad)
    with pytest.raises(ValueError, match="positive after activation"):
        call(scales=scales.log())  # log-scales passed by mistake
    tilted = viewmats.clone()
    tilted[1, 0, 0] += 0.01
    with pytest.raises(ValueError, match=r"viewmats\[1\].*not orthonormal"):
        call(viewmats=tilted)
    with pytest.raises(ValueError, match=r"quats must be \(80, 4\).*got \(80, 3\)"):
        call(quats=quats[:, :3])
    with pytest.raises(ValueError, match=r"opacities must be \(80,\).*got \(80, 1\)"):
        call(opacities=opac[:, None])
    with pytest.raises(ValueError, match=r"Ks must be \(2, 3, 3\).*got \(3, 3\)"):
        call(Ks=Ks[0])
    with pytest.raises(ValueError, match=r"colors must be .*K >= 4 for sh_degree=1"):
        call(sh_degree=1)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        call(backend="gsplat")
    assert call(backend="auto").rgb.shape == (2, 24, 32, 3)  # auto on CPU: the torch path


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="gsplat's kernels need CUDA")
@pytest.mark.parametrize("sh_degree", [None, 3])
def test_gsplat_parity(sh_degree):
    # opacities below 0.35: gsplat's opacity-aware radius (< 3 sigma) and alpha cap (0.999) then
    # change nothing, so both backends composite the same Gaussians at every pixel.
    means, quats, scales, opac, colors, viewmats, Ks = objects((2,), n=300, views=2, device="cuda",
                                                               opac_range=(0.05, 0.34))
    if sh_degree is not None:
        colors = torch.randn(2, 300, 16, 3, device="cuda") * 0.3
    bg = torch.tensor([0.1, 0.2, 0.3], device="cuda")
    a = render_gaussians(means, quats, scales, opac, colors, viewmats, Ks, 32, 24, sh_degree=sh_degree,
                         background=bg, backend="torch")
    b = render_gaussians(means, quats, scales, opac, colors, viewmats, Ks, 32, 24, sh_degree=sh_degree,
                         background=bg, backend="gsplat")
    for name, x, y in zip(("rgb", "depth", "alpha"), a, b):
        torch.testing.assert_close(x, y, atol=1e-3, rtol=1e-3, msg=name)
    assert b.radii.shape == a.radii.shape
    both = (a.radii > 0) & (b.radii > 0)
    torch.testing.assert_close(a.means2d[both], b.means2d[both], atol=1e-3, rtol=1e-4)
