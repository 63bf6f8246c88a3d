"""lib.metrics: PSNR and SSIM (hand values, and skimage where installed), voxel IoU, F-score."""
import importlib.util
import math

import pytest
import torch

from lib import losses as L
from lib import metrics as M

HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None


# ------------------------------------------------------------------------------------ PSNR
@pytest.mark.parametrize("mse, want", [(1e-2, 20.0), (1e-3, 30.0), (0.25, 10 * math.log10(4)), (1.0, 0.0)])
def test_psnr_of_a_known_mse(mse, want):
    target = torch.zeros(4, 6, 3)
    pred = torch.full_like(target, math.sqrt(mse))  # every element off by sqrt(mse)
    assert M.psnr(pred, target).item() == pytest.approx(want, abs=1e-4)
    assert M.mse_to_psnr(mse) == pytest.approx(want, abs=1e-9)
    assert M.mse_to_psnr(torch.tensor(mse)).item() == pytest.approx(want, abs=1e-4)


def test_psnr_data_range_identity_and_errors():
    a = torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(0))
    b = (a + 0.05).clamp(0, 1)
    # values in [0, 255] with data_range 255: the same PSNR as in [0, 1]
    assert M.psnr(255 * b, 255 * a, data_range=255.0).item() == pytest.approx(M.psnr(b, a).item(), abs=1e-4)
    assert M.psnr(a, a).item() == math.inf and M.mse_to_psnr(0.0) == math.inf
    # the PSNR of a stack is that of its pooled MSE, not the mean of per-image PSNRs
    x, y = torch.stack([a, a]), torch.stack([a + 0.1, a + 0.01])
    assert M.psnr(x, y).item() == pytest.approx(M.mse_to_psnr((0.01 + 0.0001) / 2), abs=1e-3)
    with pytest.raises(ValueError, match="same shape"):
        M.psnr(a, a[:4])


# ------------------------------------------------------------------------------------ SSIM
def _noisy(img, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    return (img + sigma * torch.randn(img.shape, generator=g)).clamp(0, 1)


def _smooth_image(h=32, w=40):
    v, u = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([u, v, 0.5 + 0.4 * torch.sin(6 * u) * torch.cos(4 * v)], -1)  # (H, W, 3)


def test_ssim_of_an_image_with_itself_is_one_and_falls_with_noise():
    img = _smooth_image()
    assert M.ssim(img, img).item() == pytest.approx(1.0, abs=1e-6)
    scores = [M.ssim(_noisy(img, s, 0), img).item() for s in (0.01, 0.03, 0.1, 0.3)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert scores[0] > 0.9 and scores[-1] < 0.5, scores


def test_ssim_hand_worked_constant_images():
    """Constant images x = a, y = b: every variance and covariance is 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)."""
    a, b, c1 = 0.2, 0.6, 0.01 ** 2
    got = M.ssim(torch.full((9, 9, 1), a), torch.full((9, 9, 1), b)).item()
    assert got == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)
    # a change of data range rescales C1: the same images read as values in [0, 10]
    got10 = M.ssim(torch.full((9, 9, 1), a), torch.full((9, 9, 1), b), data_range=10.0).item()
    c1 = (0.01 * 10) ** 2
    assert got10 == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)


def test_ssim_batch_shapes_and_errors():
    img = _smooth_image(16, 16)
    batch = torch.stack([img, _noisy(img, 0.1, 1), _noisy(img, 0.2, 2)])  # (3, H, W, 3)
    ref = batch[:1].expand_as(batch)
    got = M.ssim(batch, ref)
    assert got.shape == (3,)
    torch.testing.assert_close(got, torch.stack([M.ssim(b, img) for b in batch]))
    assert M.ssim(batch[None], ref[None]).shape == (1, 3)
    assert M.ssim(img, img).shape == ()
    with pytest.raises(ValueError, match="smaller than"):
        M.ssim(torch.rand(5, 20, 3), torch.rand(5, 20, 3))
    with pytest.raises(ValueError, match="same shape"):
        M.ssim(img, img[:8])
    with pytest.raises(ValueError, match="win_size"):
        M.ssim(img, img, win_size=4)


@pytest.mark.skipif(not HAS_SKIMAGE, reason="scikit-image is not installed (reference comparison only)")
@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.4])
def test_ssim_matches_skimage(sigma):
    from skimage.metrics import structural_similarity

    img = _smooth_image(23, 31)
    noisy = _noisy(img, sigma, 3)
    want = structural_similarity(img.numpy(), noisy.numpy(), channel_axis=-1, data_range=1.0)
    assert M.ssim(noisy, img).item() == pytest.approx(want, abs=1e-6)
    grey = structural_similarity(img[..., 0].numpy(), noisy[..., 0].numpy(), data_range=1.0)
    assert M.ssim(noisy[..., :1], img[..., :1]).item() == pytest.approx(grey, abs=1e-6)


# ----------------------------------------------------------------------------- voxels, points
def test_voxel_iou_hand_worked():
    a = torch.zeros(4, 4, 4, dtype=torch.bool)
    b = torch.zeros(4, 4, 4, dtype=torch.bool)
    a[:2], b[1:3] = True, True  # 32 and 32 voxels, 16 shared, union 48
    assert float(M.voxel_iou(a, b)) == pytest.approx(1 / 3)
    assert float(M.voxel_iou(a, a)) == 1.0
    assert float(M.voxel_iou(a, ~a)) == 0.0
    assert float(M.voxel_iou(b & ~b, a & ~a)) == 1.0  # both empty
    batched = M.voxel_iou(torch.stack([a, a]), torch.stack([b, a]))
    torch.testing.assert_close(batched, torch.tensor([1 / 3, 1.0]))
    with pytest.raises(ValueError, match="bool"):
        M.voxel_iou(a.float(), b)
    with pytest.raises(ValueError, match="same shape"):
        M.voxel_iou(a, b[:2])


def test_f_score_hand_worked():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(500, 3, generator=g)
    same = M.f_score(pts, pts)
    assert all(v == (1.0, 1.0, 1.0) for v in same.values())
    assert sorted(same) == list(M.DEFAULT_THRESHOLDS)
    # a grid with spacing 0.1 shifted by 0.02: every nearest neighbour is exactly 0.02 away
    ax = torch.arange(5) * 0.1
    grid = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    shifted = grid + torch.tensor([0.02, 0.0, 0.0])
    fs = M.f_score(shifted, grid, thresholds=(0.01, 0.03))
    assert fs[0.01] == (0.0, 0.0, 0.0)
    assert fs[0.03] == (1.0, 1.0, 1.0)
    # half the prediction far away: precision 0.5, recall 1, F1 = 2/3
    pred = torch.cat([grid, grid + 10.0])
    p, r, f = M.f_score(pred, grid, thresholds=(0.01,))[0.01]
    assert (p, r) == (0.5, 1.0) and f == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="non-empty"):
        M.f_score(torch.zeros(0, 3), grid)


def test_f_score_uses_the_chamfer_nearest_neighbours():
    g = torch.Generator().manual_seed(1)
    pred, gt = torch.rand(300, 3, generator=g), torch.rand(200, 3, generator=g)
    d_pred = L.nearest_neighbors(pred, gt)[0].sqrt()
    d_gt = L.nearest_neighbors(gt, pred)[0].sqrt()
    t = float(d_pred.median())
    p, r, _ = M.f_score(pred, gt, thresholds=(t,))[t]
    assert p == pytest.approx(float((d_pred <= t).float().mean()))
    assert r == pytest.approx(float((d_gt <= t).float().mean()))


def test_view_scores_and_the_mean_colour_baseline():
    from lib.metrics import mean_colour_scores, view_scores
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(3, 16, 16, 3, generator=g)
    p, s = view_scores(truth + 0.1 * torch.randn(truth.shape, generator=g), truth)
    assert p.shape == s.shape == (3,) and bool((p > 15).all()) and bool((s < 1).all())
    p_same, s_same = view_scores(truth, truth)
    assert bool(torch.isinf(p_same).all() | (p_same > 100).all()) and torch.allclose(s_same, torch.ones(3))
    train = torch.full((4, 8, 8, 3), 0.25)
    base = mean_colour_scores(train, truth)
    torch.testing.assert_close(base["colour"], torch.full((3,), 0.25))
    by_hand = torch.stack([M.psnr(torch.full_like(t, 0.25), t) for t in truth])
    torch.testing.assert_close(base["psnr_per_view"], by_hand)
    assert base["psnr"] == pytest.approx(by_hand.mean().item())
    with pytest.raises(ValueError, match="view_scores"):
        view_scores(truth, truth[0])
