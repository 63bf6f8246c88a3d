"""The tile rasteriser (lib.render.gaussians.rasterize_tiles) against its dense oracle
(rasterize_dense: every Gaussian at every pixel), hand-made compositing cases, and gradcheck."""
import pytest
import torch

import lib.render.gaussians.raster as raster
from lib.cameras import look_at, world_to_camera
from lib.render.gaussians import bin_gaussians, project_gaussians, rasterize_dense, rasterize_tiles


def scene(n, size, cams=2, seed=0, dtype=torch.float32):
    """Random 3D Gaussians seen by ``cams`` cameras: some behind the cameras, some just past the
    near plane, a few huge ones covering the image, the rest a few pixels to tens of pixels."""
    H, W = size
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype)
    means[: n // 10, 2] = -3.5 + 0.02 * torch.rand(n // 10, generator=g, dtype=dtype)  # at the near plane
    means[n // 10: n // 5, 2] = -5.0  # behind cam 0
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.15 + 0.005
    scales[-3:] = 1.5  # huge
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    opac = torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    eyes = torch.tensor([[0.0, 0.0, -3.51], [1.5, 0.5, -2.5], [-1.0, -1.0, -3.0]])[:cams]
    viewmats = world_to_camera(look_at(eyes)).to(dtype)
    Ks = torch.tensor([[0.9 * W, 0, W / 2], [0, 0.9 * W, H / 2], [0, 0, 1]], dtype=dtype).expand(cams, 3, 3)
    return [x.requires_grad_() for x in (means, quats, scales, opac, colors)], viewmats, Ks


def render_both(params, viewmats, Ks, W, H, background=None, **kw):
    means, quats, scales, opac, colors = params
    p = project_gaussians(means, quats, scales, viewmats, Ks, W, H)
    outs = []
    for fn in (rasterize_tiles, rasterize_dense):
        outs.append(fn(p.means2d, p.conics, colors, opac, p.depths, p.radii, W, H, background=background, **kw))
    return outs, p


def grads(out, params, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb, depth, alpha = out
    loss = ((rgb * torch.randn(rgb.shape, generator=g)).sum() + 0.1 * (depth * torch.randn(depth.shape, generator=g)).sum()
            + (alpha * torch.randn(alpha.shape, generator=g)).sum())
    return torch.autograd.grad(loss, params, retain_graph=True)  # the projection is shared


@pytest.mark.parametrize("size,cams", [((37, 50), 2), ((16, 16), 1), ((20, 33), 3)])
def test_tile_equals_dense_images_and_gradients(size, cams):
    H, W = size
    params, viewmats, Ks = scene(120, size, cams)
    background = torch.tensor([0.2, 0.5, 0.9])
    (tile, dense), p = render_both(params, viewmats, Ks, W, H, background)
    assert (p.radii == 0).any() and (p.radii > W).any()  # culled ones and huge ones
    assert tile[0].shape == (cams, H, W, 3) and tile[1].shape == tile[2].shape == (cams, H, W, 1)
    for a, b in zip(tile, dense):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
    assert (tile[2] > 0.5).float().mean() > 0.3  # a scene, not an empty image
    for gt, gd, name in zip(grads(tile, params), grads(dense, params), "means quats scales opacities colors".split()):
        scale = gd.abs().max()
        assert scale > 0, name
        torch.testing.assert_close(gt / scale, gd / scale, atol=1e-5, rtol=0, msg=name)


def test_chunking_and_saved_or_recomputed_backward_agree(monkeypatch):
    params, viewmats, Ks = scene(150, (40, 40), 2, seed=3)
    means, quats, scales, opac, colors = params
    p = project_gaussians(means, quats, scales, viewmats, Ks, 40, 40)
    args = (p.means2d, p.conics, colors, opac, p.depths, p.radii, 40, 40)
    ref = rasterize_tiles(*args)
    g_ref = grads(ref, params)
    monkeypatch.setattr(raster, "SAVE_ELEMENTS", 0)  # backward recomputes every chunk
    small = rasterize_tiles(*args, max_chunk_elements=1000)  # one tile per chunk
    for a, b in zip(ref, small):
        torch.testing.assert_close(a, b)
    for a, b in zip(g_ref, grads(small, params)):
        torch.testing.assert_close(a, b, atol=1e-5 * b.abs().max(), rtol=0)


def flat_splats(xy, sigma, opac, depths, colors, radius=None):
    """Isotropic screen-space Gaussians for hand-made cases, one camera: (1, N, ·) tensors."""
    xy = torch.as_tensor(xy, dtype=torch.float32).reshape(1, -1, 2)
    n = xy.shape[1]
    conics = torch.tensor([1 / sigma ** 2, 0.0, 1 / sigma ** 2]).expand(1, n, 3)
    r = torch.full((1, n), radius or int(3 * sigma + 1), dtype=torch.int32)
    return (xy, conics, torch.as_tensor(colors, dtype=torch.float32).reshape(1, n, -1),
            torch.as_tensor(opac, dtype=torch.float32).reshape(1, n),
            torch.as_tensor(depths, dtype=torch.float32).reshape(1, n), r)


def test_stop_rule_on_stacked_opaque_gaussians():
    # 10 Gaussians on one pixel centre, alpha 0.95 each, channel k = Gaussian k's weight.
    n = 10
    splats = flat_splats([[8.5, 8.5]] * n, 2.0, [0.95] * n, torch.arange(n, 0, -1.0), torch.eye(n))
    for fn in (rasterize_tiles, rasterize_dense):
        rgb, depth, alpha = fn(*splats, 17, 17)
        # front to back = reversed index; T = 0.05, 0.0025, 1.25e-4, then 6.25e-6 < 1e-4: stop
        expected = torch.zeros(n)
        expected[[9, 8, 7]] = torch.tensor([0.95, 0.05 * 0.95, 0.0025 * 0.95])
        torch.testing.assert_close(rgb[0, 8, 8], expected)
        torch.testing.assert_close(alpha[0, 8, 8, 0], torch.tensor(1 - 1.25e-4))
        z = (expected * torch.arange(n, 0, -1.0)).sum() / expected.sum()
        torch.testing.assert_close(depth[0, 8, 8, 0], z)


def test_alpha_cap_and_skip_below_one_over_255():
    bg = torch.tensor([0.25])
    for opac, expected in [(0.003, 0.25), (0.005, 0.005 + 0.995 * 0.25), (1.0, 0.99 + 0.01 * 0.25)]:
        splats = flat_splats([[4.5, 3.5]], 1.0, [opac], [1.0], [[1.0]])
        for fn in (rasterize_tiles, rasterize_dense):
            rgb, _, alpha = fn(*splats, 9, 7, background=bg)
            assert abs(rgb[0, 3, 4, 0].item() - expected) < 1e-6, (fn.__name__, opac)
            # one pixel away: exp(-1/2) * 0.003 < 1/255 skipped; 0.005 * 0.61 too
            if opac < 0.01:
                assert alpha[0, 3, 5, 0].item() == 0.0


def test_tile_border_support_rule():
    # Box [16 - 3, 16 + 3] overlaps tiles 0 and 1; a box ending exactly on x = 16 stays in tile 0.
    xy = [[16.0, 8.0], [13.0, 24.0]]
    splats = flat_splats(xy, 1.0, [0.9, 0.9], [1.0, 2.0], [[1.0], [1.0]], radius=3)
    ids, counts, starts = bin_gaussians(splats[0], splats[4], splats[5], 40, 40, 16)
    per_tile = counts.reshape(3, 3)  # (tiles_y, tiles_x)
    assert per_tile.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]
    tile, dense = rasterize_tiles(*splats, 40, 40), rasterize_dense(*splats, 40, 40)
    for a, b in zip(tile, dense):
        torch.testing.assert_close(a, b)
    # the second Gaussian's light at x = 16.5 (tile 1) is cut by the support rule
    assert tile[0][0, 24, 15, 0] > 0.0 and tile[0][0, 24, 16, 0] == 0.0


def test_batch_dims_equal_per_image_calls():
    params, viewmats, Ks = scene(60, (20, 24), 3, seed=5)
    means, quats, scales, opac, colors = params
    p = project_gaussians(means, quats, scales, viewmats, Ks, 24, 20)
    m2, con, z, r = (x.reshape((1, 3) + x.shape[1:]) for x in (p.means2d, p.conics, p.depths, p.radii))
    bg = torch.rand(1, 3, 3)
    batched = rasterize_tiles(m2, con, colors[None], opac[None], z, r, 24, 20, background=bg)
    assert batched[0].shape == (1, 3, 20, 24, 3)
    for c in range(3):
        one = slice(c, c + 1)  # C = 1
        single = rasterize_tiles(p.means2d[one], p.conics[one], colors, opac, p.depths[one], p.radii[one],
                                 24, 20, background=bg[0, c])
        for a, b in zip(batched, single):
            torch.testing.assert_close(a[0, c], b[0])


@pytest.mark.parametrize("save", [True, False])
def test_gradcheck_float64(monkeypatch, save):
    monkeypatch.setattr(raster, "SAVE_ELEMENTS", raster.SAVE_ELEMENTS if save else 0)
    g = torch.Generator().manual_seed(0)
    dt = torch.float64
    n = 4
    means2d = (torch.rand(1, n, 2, generator=g, dtype=dt) * 8).requires_grad_()
    L = torch.randn(n, 2, 2, generator=g, dtype=dt) * 0.5 + 2 * torch.eye(2, dtype=dt)
    cov = L @ L.transpose(-1, -2)
    inv = torch.linalg.inv(cov)
    conics = torch.stack([inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 1]], -1)[None].requires_grad_()
    colors = torch.rand(1, n, 3, generator=g, dtype=dt).requires_grad_()
    opac = (torch.rand(1, n, generator=g, dtype=dt) * 0.8 + 0.1).requires_grad_()
    depths = (torch.rand(1, n, generator=g, dtype=dt) + 1).requires_grad_()
    radii = torch.full((1, n), 9, dtype=torch.int32)
    bg = torch.tensor([0.1, 0.2, 0.3], dtype=dt)

    def f(m, c, col, o, z):
        return rasterize_tiles(m, c, col, o, z, radii, 8, 8, tile_size=4, background=bg)

    assert torch.autograd.gradcheck(f, (means2d, conics, colors, opac, depths))


def test_bad_shapes_name_the_argument():
    splats = list(flat_splats([[4.0, 4.0]], 1.0, [0.5], [1.0], [[1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="conics"):
        rasterize_tiles(splats[0], splats[1][..., :2], *splats[2:], 8, 8)
    with pytest.raises(ValueError, match="background"):
        rasterize_tiles(*splats, 8, 8, background=torch.zeros(2))
