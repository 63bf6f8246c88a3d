"""PointNet and DGCNN (lib.models.pointnet, lib.models.dgcnn), PointNet's orthogonality penalty
(lib.losses), point-cloud training (lib.methods.points.train) and evaluation (lib.methods.points.evaluate).

Checked numerically: permutation invariance / equivariance, a brute-force k-NN reference for
DGCNN's edge features, hand-worked penalty values and reports, learning on tiny separable toys,
kill-and-resume through lib.train.fit, and the baselines on data whose answer is known.
"""
import pytest
import torch
from torch import nn

from lib.losses import orthogonality_penalty
from lib.models.dgcnn import DGCNN, DGCNNConfig, EdgeConv, edge_features
from lib.models.pointnet import PointNet, PointNetConfig, TNet, mlp_head, shared_mlp
from lib.methods.points.evaluate import (classification_report, majority_label, nearest_mean_classify, point_count_sweep,
                            position_prior_segment, predict_labels, rotation_sweep, score, segmentation_report,
                            shape_descriptor)
from lib.methods.points.augment import random_rotations
from lib.methods.points.train import check_point_labels, make_point_step, random_point_subsets, take_points
from lib.train import fit


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny networks: one torch thread is faster (and the machine is shared)."""
    yield


def gen(seed):
    return torch.Generator().manual_seed(seed)


def small_pointnet(task="cls", k=3, it=False, ft=False, seed=0):
    return PointNet(PointNetConfig(num_classes=k, task=task, input_transform=it, feature_transform=ft,
                                   global_dim=32), seed=seed)


def small_dgcnn(task="cls", k=3, seed=0, knn=4):
    return DGCNN(DGCNNConfig(num_classes=k, task=task, k=knn, widths=(8, 8), emb_dim=16), seed=seed)


# ------------------------------------------------------------------------------ toy data
def sphere_vs_box(n_clouds, n_points, seed):
    """Class 0: points in a ball of radius 0.3; class 1: a box stretched along x (1.6 x 0.2 x 0.2).
    Alternating labels, (S, P, 3) float32 and (S,) int64."""
    g = gen(seed)
    clouds, labels = [], []
    for s in range(n_clouds):
        if s % 2 == 0:
            d = torch.randn(n_points, 3, generator=g)
            r = 0.3 * torch.rand(n_points, 1, generator=g) ** (1 / 3)
            clouds.append(d / d.norm(dim=1, keepdim=True) * r)
        else:
            clouds.append((torch.rand(n_points, 3, generator=g) - 0.5) * torch.tensor([1.6, 0.2, 0.2]))
        labels.append(s % 2)
    return torch.stack(clouds), torch.tensor(labels)


def y_split(n_clouds, n_points, seed):
    """Points uniform in [-1, 1]^3, the per-point label is ``y > 0``."""
    pts = torch.rand(n_clouds, n_points, 3, generator=gen(seed)) * 2 - 1
    return pts, (pts[..., 1] > 0).long()


# ------------------------------------------------------------------------------ PointNet
@pytest.mark.parametrize("it,ft", [(False, False), (True, False), (False, True), (True, True)])
def test_pointnet_cls_permutation_invariant(it, ft):
    net = small_pointnet("cls", 3, it, ft).eval()
    pts = torch.randn(3, 50, 3, generator=gen(1))
    perm = torch.randperm(50, generator=gen(2))
    with torch.no_grad():
        out, shuffled = net(pts), net(pts[:, perm])
    assert out.shape == (3, 3)
    torch.testing.assert_close(shuffled, out, atol=1e-5, rtol=1e-5)
    # a different cloud gives different logits (the check above is not vacuous)
    with torch.no_grad():
        assert (net(pts * 2.0) - out).abs().max() > 1e-3


@pytest.mark.parametrize("it,ft", [(False, False), (True, True)])
def test_pointnet_seg_permutation_equivariant(it, ft):
    net = small_pointnet("seg", 6, it, ft).eval()
    pts = torch.randn(2, 40, 3, generator=gen(3))
    perm = torch.randperm(40, generator=gen(4))
    with torch.no_grad():
        out, shuffled = net(pts), net(pts[:, perm])
    assert out.shape == (2, 40, 6)
    torch.testing.assert_close(shuffled, out[:, perm], atol=1e-5, rtol=1e-5)
    assert (out[:, perm] - out).abs().max() > 1e-4  # the points' logits really differ


def test_untrained_tnet_is_identity_and_shapes():
    for d in (3, 64):
        t = TNet(d, global_dim=16).eval()
        x = torch.randn(2, d, 20, generator=gen(d))
        out = t(x)
        assert out.shape == (2, d, d)
        assert torch.equal(out, torch.eye(d).expand(2, d, d))
    # with the identity T-Nets, the untrained transformed network equals the plain one with the same
    # shared-MLP weights (the T-Nets change nothing yet)
    plain, both = small_pointnet("cls", 3), small_pointnet("cls", 3, True, True)
    missing, unexpected = both.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(m.startswith(("input_tnet", "feature_tnet")) for m in missing)
    pts = torch.randn(2, 30, 3, generator=gen(5))
    with torch.no_grad():
        torch.testing.assert_close(both.eval()(pts), plain.eval()(pts))


def test_forward_with_transform():
    pts = torch.randn(2, 25, 3, generator=gen(6))
    for task in ("cls", "seg"):
        logits, T = small_pointnet(task, 4, ft=True).eval().forward_with_transform(pts)
        assert T.shape == (2, 64, 64) and logits.shape[-1] == 4
        logits, T = small_pointnet(task, 4, it=True).eval().forward_with_transform(pts)
        assert T is None


def test_pointnet_bad_points():
    net = small_pointnet().eval()
    for bad in (torch.zeros(10, 3), torch.zeros(2, 10, 4), torch.zeros(2, 3, 10, 1)):
        with pytest.raises(ValueError, match=r"`points` must be \(B, N, 3\)"):
            net(bad)


@pytest.mark.parametrize("kwargs,word", [(dict(task="det"), "task"), (dict(num_classes=1), "num_classes"),
                                          (dict(global_dim=4), "global_dim"), (dict(dropout=1.0), "dropout")])
def test_pointnet_config_errors(kwargs, word):
    with pytest.raises(ValueError, match=f"`{word}`"):
        PointNetConfig(**{"num_classes": 3, **kwargs})


def test_shared_mlp_and_head_layers():
    m = shared_mlp([3, 8, 5], last_plain=True)
    convs = [layer for layer in m if isinstance(layer, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 8), (8, 5)]
    assert convs[0].bias is None and convs[1].bias is not None  # logits layer has a bias
    assert not isinstance(m[-1], (nn.ReLU, nn.BatchNorm1d))  # last layer bare
    assert isinstance(shared_mlp([3, 8])[-1], nn.ReLU)
    h = mlp_head([16, 8, 4, 2], dropout=0.25)
    assert isinstance(h[-2], nn.Dropout) and h[-2].p == 0.25 and h[-1].out_features == 2
    assert h.eval()(torch.randn(3, 16)).shape == (3, 2)


# ---------------------------------------------------------------------- orthogonality_penalty
def test_orthogonality_penalty_values_and_gradient():
    R = random_rotations(5, gen(0))
    assert orthogonality_penalty(R).item() == pytest.approx(0.0, abs=1e-5)
    two_i = 2 * torch.eye(3)
    assert orthogonality_penalty(two_i[None]).item() == pytest.approx(27.0)  # ||I - 4I||^2 = 9 * 3
    assert orthogonality_penalty(torch.stack([two_i, torch.eye(3)])).item() == pytest.approx(13.5)  # mean
    A = two_i[None].clone().requires_grad_(True)
    orthogonality_penalty(A).backward()
    # d/dA ||I - A A^T||^2 = -4 (I - A A^T) A = -4 (-3 I)(2 I) = 24 I
    torch.testing.assert_close(A.grad[0], 24 * torch.eye(3))
    A = torch.randn(2, 64, 64, generator=gen(1), requires_grad=True)
    orthogonality_penalty(A).backward()
    assert torch.isfinite(A.grad).all()
    for bad in (torch.eye(3), torch.zeros(2, 3, 4)):
        with pytest.raises(ValueError, match="`transform` must be"):
            orthogonality_penalty(bad)


# ------------------------------------------------------------------------------ DGCNN
def brute_edge_features(x, k):
    """(B, C, N) -> list over (b, i) of the (k, 2C) edge features, by explicit distances."""
    B, C, N = x.shape
    out = []
    for b in range(B):
        pts = x[b].T
        for i in range(N):
            d = ((pts - pts[i]) ** 2).sum(1)
            nbrs = d.argsort()[:k]
            out.append(torch.stack([torch.cat([pts[i], pts[j] - pts[i]]) for j in nbrs]))
    return out


def as_set(rows):
    """Rows (k, 2C) in a canonical order (sorted by the first offset coordinate: no ties with random floats)."""
    C = rows.shape[1] // 2
    return rows[rows[:, C].argsort()]


@pytest.mark.parametrize("C,k", [(3, 5), (6, 4), (3, 1)])
def test_edge_features_match_brute_force(C, k):
    x = torch.rand(2, C, 30, generator=gen(C + k), dtype=torch.float64)
    e = edge_features(x, k)
    assert e.shape == (2, 2 * C, 30, k)
    ref = brute_edge_features(x, k)
    for n, r in enumerate(ref):
        b, i = divmod(n, 30)
        got = e[b, :, i].T  # (k, 2C)
        torch.testing.assert_close(as_set(got), as_set(r))
    # the first neighbour is the point itself: offset exactly 0, centre = the point
    assert torch.equal(e[:, C:, :, 0], torch.zeros(2, C, 30, dtype=torch.float64))
    assert torch.equal(e[:, :C, :, 0], x)


def test_edge_features_k_larger_than_n_uses_all_points():
    x = torch.rand(1, 3, 5, generator=gen(7), dtype=torch.float64)
    assert edge_features(x, 20).shape == (1, 6, 5, 5)


def test_edgeconv_shape():
    conv = EdgeConv(3, 8, k=4).eval()
    assert conv(torch.rand(2, 3, 20, generator=gen(8))).shape == (2, 8, 20)


def test_dgcnn_cls_invariant_seg_equivariant():
    pts = torch.rand(2, 40, 3, generator=gen(9), dtype=torch.float64)
    perm = torch.randperm(40, generator=gen(10))
    cls = small_dgcnn("cls", 3).double().eval()
    seg = small_dgcnn("seg", 5).double().eval()
    with torch.no_grad():
        out = cls(pts)
        assert out.shape == (2, 3)
        torch.testing.assert_close(cls(pts[:, perm]), out, atol=1e-8, rtol=1e-8)
        assert (cls(pts * 3) - out).abs().max() > 1e-4
        s = seg(pts)
        assert s.shape == (2, 40, 5)
        torch.testing.assert_close(seg(pts[:, perm]), s[:, perm], atol=1e-8, rtol=1e-8)
    with pytest.raises(ValueError, match="`points` must be"):
        cls(torch.zeros(2, 40, 2))


def test_dgcnn_config():
    assert DGCNNConfig(num_classes=3).widths == (64, 64, 128, 256)
    assert DGCNNConfig(num_classes=6, task="seg").widths == (64, 64, 64)
    assert DGCNNConfig(num_classes=3, widths=[8, 16]).widths == (8, 16)
    assert DGCNNConfig(num_classes=3).k == 20
    for kwargs, word in [(dict(task="x"), "task"), (dict(k=0), "k >= 1"), (dict(num_classes=1), "num_classes"),
                         (dict(widths=(8, 0)), "widths"), (dict(emb_dim=2), "emb_dim")]:
        with pytest.raises(ValueError, match=word):
            DGCNNConfig(**{"num_classes": 3, **kwargs})


# ------------------------------------------------------------------------ point_train helpers
def test_random_point_subsets():
    idx = random_point_subsets(6, 20, 7, gen(0))
    assert idx.shape == (6, 7) and idx.dtype == torch.int64
    assert idx.min() >= 0 and idx.max() < 20
    assert all(len(set(row.tolist())) == 7 for row in idx)
    assert torch.equal(idx, random_point_subsets(6, 20, 7, gen(0)))
    assert not torch.equal(idx, random_point_subsets(6, 20, 7, gen(1)))
    assert len({tuple(row.tolist()) for row in idx}) > 1  # each cloud its own subset
    assert torch.equal(random_point_subsets(2, 5, 5, gen(0)), torch.arange(5).expand(2, 5))
    for bad in (0, 21):
        with pytest.raises(ValueError, match=f"num_points must be between 1 and the 20 points per cloud, got {bad}"):
            random_point_subsets(2, 20, bad, gen(0))


def test_take_points_keeps_labels_with_points():
    pts = torch.rand(3, 10, 3, generator=gen(1))
    labels = torch.arange(10).expand(3, 10).clone()  # label = point index
    idx = random_point_subsets(3, 10, 4, gen(2))
    sub, lab = take_points(pts, idx, labels)
    assert sub.shape == (3, 4, 3) and torch.equal(lab, idx)
    for s in range(3):
        assert torch.equal(sub[s], pts[s, idx[s]])
    cls = torch.tensor([2, 0, 1])
    _, lab = take_points(pts, idx, cls)
    assert torch.equal(lab, cls)


def test_check_point_labels():
    pts = torch.zeros(4, 8, 3)
    assert check_point_labels(pts, torch.zeros(4, dtype=torch.int64), "f") == "cls"
    assert check_point_labels(pts, torch.zeros(4, 8, dtype=torch.int64), "f") == "seg"
    for bad in (torch.zeros(4, dtype=torch.int32), torch.zeros(4, 8), torch.zeros(3, dtype=torch.int64),
                torch.zeros(4, 7, dtype=torch.int64), [0, 1, 0, 1]):
        with pytest.raises(ValueError, match="f: `labels` must be int64"):
            check_point_labels(pts, bad, "f")
    with pytest.raises(ValueError, match="f: `points` must be"):
        check_point_labels(torch.zeros(4, 8, 2), torch.zeros(4, dtype=torch.int64), "f")


def test_make_point_step_errors():
    net = small_pointnet("cls", 2)
    opt = torch.optim.Adam(net.parameters())
    pts, labels = sphere_vs_box(6, 16, 0)
    with pytest.raises(ValueError, match="`batch_size` must be between 1 and the 6 clouds, got 7"):
        make_point_step(net, opt, pts, labels, gen(0), batch_size=7)
    with pytest.raises(ValueError, match="num_points .* got 17"):
        make_point_step(net, opt, pts, labels, gen(0), batch_size=2, num_points=17)
    for bad in (labels.int(), labels[:5], labels[:, None].expand(6, 3)):
        with pytest.raises(ValueError, match="`labels`"):
            make_point_step(net, opt, pts, bad, gen(0), batch_size=2)


def test_make_point_step_augment_and_feature_transform_run():
    pts, labels = y_split(4, 32, 0)
    net = small_pointnet("seg", 2, it=True, ft=True)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    step = make_point_step(net, opt, pts, labels, gen(0), batch_size=2, num_points=16,
                           augment=dict(rotation="so3", jitter=0.01, scale=(0.8, 1.2), dropout=0.2))
    assert step.task == "seg"
    before = {k: v.clone() for k, v in net.state_dict().items()}
    logs = [step(i) for i in range(3)]
    assert all(torch.isfinite(torch.tensor(r["loss"])) and 0 <= r["acc"] <= 1 for r in logs)
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())  # it learned something
    assert torch.equal(pts, y_split(4, 32, 0)[0])  # the training data is not modified


def test_make_point_step_adds_weighted_penalty():
    """Feature T-Net fixed at 2 I (weights 0, bias I): penalty ||I - 4 I||^2 = 9 * 64 = 576 on any batch,
    so the step's loss with transform_weight=w exceeds the one with w=0 by 576 w."""
    pts, labels = sphere_vs_box(6, 16, 0)

    def first_loss(weight):
        net = PointNet(PointNetConfig(num_classes=2, feature_transform=True, global_dim=16), seed=0)
        with torch.no_grad():
            net.feature_tnet.head[-1].bias.copy_(torch.eye(64).reshape(-1))
        step = make_point_step(net, torch.optim.SGD(net.parameters(), lr=0.0), pts, labels, gen(0),
                               batch_size=4, num_points=8, transform_weight=weight)
        torch.manual_seed(0)  # the same dropout mask
        return step(0)["loss"]

    assert first_loss(0.5) - first_loss(0.0) == pytest.approx(288.0, rel=1e-5)


# ------------------------------------------------------------------------------ learning toys
def train(model, pts, labels, steps, seed=0, lr=0.01, batch_size=16, num_points=32):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step = make_point_step(model, opt, pts, labels, gen(seed), batch_size=batch_size, num_points=num_points)
    return fit(step, steps, {"model": model, "opt": opt}, progress=False)


@pytest.fixture(scope="module")
def trained_cls():
    torch.set_num_threads(1)
    pts, labels = sphere_vs_box(40, 64, 0)
    net = small_pointnet("cls", 2)
    hist = train(net, pts, labels, 40)
    return net, hist


def test_pointnet_learns_classification(trained_cls):
    net, hist = trained_cls
    assert sum(h["acc"] for h in hist[-5:]) / 5 > 0.9
    test_pts, test_labels = sphere_vs_box(20, 64, 1)
    r = score(net, test_pts, test_labels, 2)
    assert r["accuracy"] > 0.9 and r["pred"].shape == (20,)
    assert r["confusion"].sum() == 20 and len(r["per_class"]) == 2


def test_pointnet_learns_segmentation():
    pts, labels = y_split(40, 64, 0)
    net = small_pointnet("seg", 2)
    hist = train(net, pts, labels, 40)
    assert sum(h["acc"] for h in hist[-5:]) / 5 > 0.9
    test_pts, test_labels = y_split(10, 64, 1)
    r = score(net, test_pts, test_labels, 2)
    assert r["accuracy"] > 0.9 and r["pred"].shape == (10, 64) and r["shape_miou"].shape == (10,)


def test_dgcnn_learns_classification_and_segmentation():
    pts, labels = sphere_vs_box(40, 64, 0)
    net = small_dgcnn("cls", 2)
    hist = train(net, pts, labels, 40)
    assert sum(h["acc"] for h in hist[-5:]) / 5 > 0.9
    assert score(net, *sphere_vs_box(20, 64, 1), 2)["accuracy"] > 0.9
    pts, labels = y_split(40, 64, 0)
    net = small_dgcnn("seg", 2)
    hist = train(net, pts, labels, 40)
    assert sum(h["acc"] for h in hist[-5:]) / 5 > 0.9
    assert score(net, *y_split(10, 64, 1), 2)["accuracy"] > 0.9


def resumable_run(tmp_path, stop_after=None):
    """A PointNet run through fit with a checkpoint; a fresh process would build the same objects."""
    pts, labels = sphere_vs_box(12, 32, 0)
    net = PointNet(PointNetConfig(num_classes=2, feature_transform=True, global_dim=16), seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    g = gen(0)
    step = make_point_step(net, opt, pts, labels, g, batch_size=4, num_points=16, augment=dict(rotation="up"))
    fit(step, 6, {"model": net, "opt": opt, "gen": g}, checkpoint=tmp_path / "pn.pt",
        config=dict(steps=6, lr=0.01, seed=0), stop_after=stop_after, progress=False)
    return net


def test_resume_gives_same_weights(tmp_path):
    whole = resumable_run(tmp_path / "a")
    resumable_run(tmp_path / "b", stop_after=3)
    resumed = resumable_run(tmp_path / "b")
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    # and a run stopped early really differs from the finished one (the check can fail)
    early = resumable_run(tmp_path / "c", stop_after=3)
    assert any(not torch.equal(a, b) for a, b in zip(whole.state_dict().values(), early.state_dict().values()))


# ------------------------------------------------------------------------------ point_eval
def test_classification_report_hand_example():
    pred, labels = torch.tensor([0, 1, 1, 2, 0]), torch.tensor([0, 1, 2, 2, 2])
    r = classification_report(pred, labels, 3)
    assert r["accuracy"] == pytest.approx(0.6)
    assert r["per_class"] == pytest.approx([1.0, 1.0, 1 / 3])
    assert r["confusion"].tolist() == [[1, 0, 0], [0, 1, 0], [1, 1, 1]]


def test_segmentation_report_hand_example():
    pred = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 2]])
    labels = torch.tensor([[0, 1, 1, 1], [2, 2, 2, 2]])
    r = segmentation_report(pred, labels, 3)
    # shape 0: IoU part 0 = 1/2, part 1 = 2/3, part 2 absent in both = 1; shape 1: parts 0, 1 absent = 1
    assert r["accuracy"] == pytest.approx((0.75 + 1.0) / 2)
    assert r["shape_accuracy"].tolist() == pytest.approx([0.75, 1.0])
    assert r["shape_miou"].tolist() == pytest.approx([(0.5 + 2 / 3 + 1) / 3, 1.0])
    r = segmentation_report(pred, labels, 3, parts=[0, 1])
    assert r["shape_miou"].tolist() == pytest.approx([(0.5 + 2 / 3) / 2, 1.0])
    assert r["miou"] == pytest.approx(((0.5 + 2 / 3) / 2 + 1.0) / 2)


def test_predict_labels_restores_mode():
    net = small_pointnet("cls", 3)
    pts = torch.randn(5, 20, 3, generator=gen(11))
    net.train()
    pred = predict_labels(net, pts, batch_size=2)
    assert net.training and pred.shape == (5,) and pred.dtype == torch.int64
    with torch.no_grad():
        assert torch.equal(pred, net.eval()(pts).argmax(-1))  # eval-mode predictions (no dropout)
    assert not net.training
    predict_labels(net, pts)
    assert not net.training


class MeanRadius(nn.Module):
    """Rotation-invariant by construction: class 1 when the mean distance to the centroid > 0.5."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, points):
        r = (points - points.mean(1, keepdim=True)).norm(dim=-1).mean(1)
        return torch.stack([0.5 - r, r - 0.5], -1) * self.scale


def balls(radii, n_points, seed):
    """One cloud per radius: points on a sphere of that radius, off-centre (so rotation moves them)."""
    d = torch.randn(len(radii), n_points, 3, generator=gen(seed))
    return d / d.norm(dim=-1, keepdim=True) * torch.tensor(radii)[:, None, None] + torch.tensor([0.3, 0.2, 0.0])


def test_rotation_sweep_rows_and_invariant_model():
    pts = balls([0.2, 0.3, 1.0, 0.9, 0.25, 0.8, 0.2, 1.0], 30, 0)
    labels = torch.tensor([0, 0, 1, 1, 0, 1, 1, 0])  # the last two are "wrong": accuracy 6/8
    rows = rotation_sweep(MeanRadius(), pts, labels, 2)
    assert [r["rotation"] for r in rows] == ["0°", "10°", "20°", "30°", "60°", "90°", "random SO(3)"]
    assert all(r["accuracy"] == 0.75 for r in rows) and all("miou" not in r for r in rows)
    assert [r["rotation"] for r in rotation_sweep(MeanRadius(), pts, labels, 2, angles=(45,), so3=False)] == ["45°"]


def test_rotation_sweep_zero_equals_score_and_rotation_hurts(trained_cls):
    net, _ = trained_cls
    pts, labels = sphere_vs_box(20, 64, 1)
    rows = rotation_sweep(net, pts, labels, 2, angles=(0, 90), axis="z")
    assert rows[0]["accuracy"] == score(net, pts, labels, 2)["accuracy"]
    # the box lies along x; a quarter turn about z stands it along y: this PointNet never saw that
    assert rows[1]["accuracy"] < rows[0]["accuracy"]


def test_rotation_sweep_seg_has_miou():
    pts, labels = y_split(3, 16, 2)
    rows = rotation_sweep(small_pointnet("seg", 2), pts, labels, 2, angles=(0,), so3=True, parts=[0, 1])
    assert len(rows) == 2 and all(set(r) == {"rotation", "accuracy", "miou"} for r in rows)


def test_point_count_sweep(trained_cls):
    net, _ = trained_cls
    pts, labels = sphere_vs_box(20, 64, 1)
    rows = point_count_sweep(net, pts, labels, 2, counts=(64, 16))
    assert [r["points"] for r in rows] == [64, 16]
    assert rows[0]["accuracy"] == score(net, pts, labels, 2)["accuracy"]  # all points: the plain score
    with pytest.raises(ValueError, match="between 1 and the 64 points per cloud, got 100"):
        point_count_sweep(net, pts, labels, 2, counts=(32, 100))
    seg_pts, seg_labels = y_split(3, 20, 0)
    rows = point_count_sweep(small_pointnet("seg", 2), seg_pts, seg_labels, 2, counts=(5,))
    assert set(rows[0]) == {"points", "accuracy", "miou"}


def test_majority_label():
    assert majority_label(torch.tensor([[0, 2, 2], [1, 2, 0]])) == 2
    assert majority_label(torch.tensor([3, 1, 1])) == 1


def test_shape_descriptor_hand_value_and_invariance():
    cloud = torch.tensor([[[-1.0, 0, 0], [1, 0, 0], [0, 0.5, 0], [0, -0.5, 0]]])
    # centroid 0; distances 1, 1, 0.5, 0.5 -> normalised 1, 1, 0.5, 0.5 -> bins (of 4) 3, 3, 2, 2
    torch.testing.assert_close(shape_descriptor(cloud, bins=4), torch.tensor([[2.0, 1, 0, 0, 0, 0.5, 0.5]]))
    pts = torch.randn(3, 50, 3, generator=gen(12), dtype=torch.float64)
    f = shape_descriptor(pts)
    assert f.shape == (3, 19)
    torch.testing.assert_close(f[:, 3:].sum(1), torch.ones(3, dtype=f.dtype))
    torch.testing.assert_close(shape_descriptor(pts[:, torch.randperm(50, generator=gen(13))]), f)
    # the histogram is scale-free, the extents scale
    g = shape_descriptor(pts * 2)
    torch.testing.assert_close(g[:, 3:], f[:, 3:])
    torch.testing.assert_close(g[:, :3], 2 * f[:, :3])


def test_nearest_mean_classify_small_shells_vs_big_cubes():
    def clouds(seed):
        # small sphere shells (every point at the largest distance: the last histogram bin) vs big
        # filled cubes (distances spread out): extents and histograms both tell the classes apart
        d = torch.randn(6, 200, 3, generator=gen(seed))
        small = 0.3 * d / d.norm(dim=-1, keepdim=True)
        big = torch.rand(6, 200, 3, generator=gen(seed + 100)) * 1.5
        return torch.cat([small, big]), torch.tensor([0] * 6 + [1] * 6)

    train_pts, train_labels = clouds(0)
    test_pts, test_labels = clouds(1)
    pred = nearest_mean_classify(train_pts, train_labels, test_pts, 2)
    assert pred.dtype == torch.int64 and torch.equal(pred, test_labels)
    # swapping the training labels swaps the answer (it really uses the labels)
    assert torch.equal(nearest_mean_classify(train_pts, 1 - train_labels, test_pts, 2), 1 - test_labels)


def octant(p):
    return 4 * (p[..., 0] > 0).long() + 2 * (p[..., 1] > 0).long() + (p[..., 2] > 0).long()


def test_position_prior_segment_octants():
    train_pts = torch.rand(5, 200, 3, generator=gen(14)) * 1.8 - 0.9
    test_pts = torch.rand(2, 100, 3, generator=gen(15)) * 1.8 - 0.9
    pred = position_prior_segment(train_pts, octant(train_pts), test_pts, 8, grid=2, extent=1.0)
    assert pred.shape == (2, 100) and torch.equal(pred, octant(test_pts))
    # points outside [-extent, extent]^3 go to the border cells
    far = torch.tensor([[[5.0, 5, 5], [-5, -5, 5], [5, -5, -5]]])
    assert position_prior_segment(train_pts, octant(train_pts), far, 8, grid=2, extent=1.0).tolist() == [[7, 1, 4]]


def test_position_prior_segment_empty_cells_get_majority():
    train_pts = -torch.rand(1, 10, 3, generator=gen(16)) * 0.9  # all in the all-negative octant
    train_labels = torch.tensor([[3] * 7 + [1] * 3])
    test = torch.tensor([[[0.5, 0.5, 0.5], [-0.5, -0.5, -0.5]]])
    assert position_prior_segment(train_pts, train_labels, test, 4, grid=2, extent=1.0).tolist() == [[3, 3]]
    train_labels = torch.tensor([[1] * 7 + [3] * 3])
    assert position_prior_segment(train_pts, train_labels, test, 4, grid=2, extent=1.0).tolist() == [[1, 1]]


def test_edgeconv_equals_a_linear_layer_on_the_explicit_edge_features():
    """EdgeConv's factorised linear part (two per-point convolutions and a gather) is W [x_i, x_j - x_i]."""
    torch.manual_seed(0)
    conv = EdgeConv(5, 7, k=4).double().eval()
    x = torch.randn(2, 5, 30, dtype=torch.float64)
    with torch.no_grad():
        conv.post[0].running_mean.uniform_(-0.5, 0.5)
        conv.post[0].running_var.uniform_(0.5, 2.0)
        explicit = torch.einsum("oc,bcnk->bonk", conv.weight(), edge_features(x, 4))
        want = conv.post(explicit).amax(dim=-1)
        torch.testing.assert_close(conv(x), want)
