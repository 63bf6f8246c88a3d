"""Point-cloud operations: lib.geometry.farthest_point_sample, lib.methods.points.augment (rotations,
augmentations), k-NN in feature space through
lib.losses.nearest_neighbors, and the classification/segmentation metrics of lib.metrics."""
import itertools

import pytest
import torch

from lib.losses import nearest_neighbors
from lib.metrics import confusion_matrix, part_miou, per_class_accuracy
from lib.cameras import rotation
from lib.geometry import farthest_point_sample
from lib.methods.points.augment import augment_points, random_rotations, rotate_points


def brute_force_fps(pts, n, start=0):
    chosen = [start]
    for _ in range(n - 1):
        d = torch.stack([((pts - pts[c]) ** 2).sum(-1) for c in chosen]).min(0).values
        chosen.append(int(d.argmax()))
    return chosen


@pytest.mark.parametrize("dim", [3, 6])
def test_fps_matches_brute_force_and_spreads(dim):
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(3, 200, dim, generator=g, dtype=torch.float64)
    idx = farthest_point_sample(pts, 16, start=5)
    assert idx.shape == (3, 16) and idx.dtype == torch.int64
    for b in range(3):
        assert idx[b].tolist() == brute_force_fps(pts[b], 16, 5)
        assert len(set(idx[b].tolist())) == 16
    # farther apart than a random subset: the smallest pairwise distance is larger
    chosen = pts[0, idx[0]]
    random = pts[0, :16]
    assert torch.pdist(chosen).min() > torch.pdist(random).min()
    assert farthest_point_sample(pts[0], 4).tolist() == brute_force_fps(pts[0], 4)  # unbatched


def test_fps_errors():
    with pytest.raises(ValueError, match="`n` must be between 1 and the 10 points"):
        farthest_point_sample(torch.rand(10, 3), 11)
    with pytest.raises(ValueError, match="NaN"):
        farthest_point_sample(torch.tensor([[0.0, float("nan"), 0.0]]), 1)
    with pytest.raises(ValueError, match=r"\(B, N, D\)"):
        farthest_point_sample(torch.zeros(10, dtype=torch.int64), 1)


def test_knn_in_feature_space_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 50, 7, generator=g, dtype=torch.float64)
    d2, idx = nearest_neighbors(feats, feats, backend="torch", k=5, chunk=13)
    full = torch.cdist(feats, feats) ** 2
    want = full.topk(5, dim=-1, largest=False)
    assert torch.equal(idx, want.indices)
    torch.testing.assert_close(d2, want.values)
    assert torch.equal(idx[..., 0], torch.arange(50).expand(2, 50))  # the point itself comes first
    with pytest.raises(ValueError, match="same dimension D"):
        nearest_neighbors(feats, feats[..., :3])


def test_batched_rotation_and_random_rotations_are_rotations():
    torch.testing.assert_close(rotate_points(torch.tensor([[1.0, 0.0, 0.0]]), 90.0),
                               torch.tensor([[0.0, 0.0, -1.0]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(rotate_points(torch.tensor([[0.0, 1.0, 0.0]]), 90.0, axis="x"),
                               torch.tensor([[0.0, 0.0, 1.0]]), atol=1e-6, rtol=0)  # up tips forwards
    for axis in "xyz":  # a tensor of angles gives the stack of lib.cameras.rotation's matrices
        R = rotation(axis, torch.tensor([30.0, -75.0]))
        torch.testing.assert_close(R, torch.stack([rotation(axis, 30.0), rotation(axis, -75.0)]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="axis"):
        rotate_points(torch.zeros(2, 3), 10.0, axis="w")
    pts = torch.rand(3, 5, 3)
    per_cloud = rotate_points(pts, torch.tensor([0.0, 90.0, 180.0]), axis="z")
    torch.testing.assert_close(per_cloud[1], rotate_points(pts[1], 90.0, axis="z"))
    R = random_rotations(64, torch.Generator().manual_seed(0))
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3).expand(64, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(64), atol=1e-5, rtol=0)
    assert R[:, 1, 1].min() < 0.5  # not only about the up axis
    U = random_rotations(8, torch.Generator().manual_seed(0), up_only=True)
    torch.testing.assert_close(U[:, 1], torch.tensor([0.0, 1.0, 0.0]).expand(8, 3))  # y is kept
    torch.testing.assert_close(rotation("y", torch.tensor([0.0, 360.0])), torch.eye(3).expand(2, 3, 3), atol=1e-6,
                               rtol=0)


def test_augment_points():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(4, 100, 3) - 0.5
    same = augment_points(pts, g)
    torch.testing.assert_close(same, pts)
    rotated = augment_points(pts, torch.Generator().manual_seed(1), rotation="up")
    torch.testing.assert_close(rotated.norm(dim=-1), pts.norm(dim=-1), atol=1e-5, rtol=0)  # lengths kept
    torch.testing.assert_close(rotated[..., 1], pts[..., 1])  # heights kept
    scaled = augment_points(pts, torch.Generator().manual_seed(2), scale=(2.0, 2.0))
    torch.testing.assert_close(scaled, 2 * pts)
    dropped = augment_points(pts, torch.Generator().manual_seed(3), dropout=0.9)
    moved = (dropped != pts).any(-1)
    assert moved.any() and bool((dropped[moved] == pts[:, :1].expand_as(pts)[moved]).all())
    with pytest.raises(ValueError, match="rotation"):
        augment_points(pts, g, rotation="z")
    with pytest.raises(ValueError, match="dropout"):
        augment_points(pts, g, dropout=1.0)


def test_confusion_and_per_class_accuracy_by_hand():
    target = torch.tensor([0, 0, 1, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    cm = confusion_matrix(pred, target, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(pred, target, 4)
    torch.testing.assert_close(acc[:3], torch.tensor([0.5, 2 / 3, 1.0]))
    assert torch.isnan(acc[3])
    with pytest.raises(ValueError, match=r"labels in \[0, 3\]"):
        confusion_matrix(pred, torch.tensor([0, 0, 1, 1, 1, 4]), 4)
    with pytest.raises(ValueError, match="one shape"):
        confusion_matrix(pred[:3], target, 4)


def test_part_miou_by_hand_and_brute_force():
    target = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    # part 0: 1/2, part 1: 2/3, part 2: absent in both -> 1
    torch.testing.assert_close(part_miou(pred, target, 3), torch.tensor([(0.5 + 2 / 3 + 1) / 3]))
    # only the parts a dataset uses: the absent part 2 no longer counts as a free 1
    torch.testing.assert_close(part_miou(pred, target, 3, parts=[0, 1]), torch.tensor([(0.5 + 2 / 3) / 2]))
    # a prediction of an unused label still costs the true part its IoU
    torch.testing.assert_close(part_miou(torch.tensor([[0, 2, 1, 1]]), target, 3, parts=[0, 1]),
                               torch.tensor([(0.5 + 1.0) / 2]))
    with pytest.raises(ValueError, match="parts"):
        part_miou(pred, target, 3, parts=[0, 3])
    g = torch.Generator().manual_seed(0)
    t, p = torch.randint(0, 4, (5, 40), generator=g), torch.randint(0, 4, (5, 40), generator=g)
    want = []
    for b in range(5):
        ious = []
        for part in range(6):
            inter = sum(1 for a, c in zip(p[b].tolist(), t[b].tolist()) if a == part and c == part)
            union = sum(1 for a, c in zip(p[b].tolist(), t[b].tolist()) if a == part or c == part)
            ious.append(inter / union if union else 1.0)
        want.append(sum(ious) / 6)
    torch.testing.assert_close(part_miou(p, t, 6), torch.tensor(want))
    assert part_miou(t, t, 6).tolist() == [1.0] * 5


def test_part_iou_per_shape_and_pooled():
    from lib.metrics import part_iou
    target = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 1]])
    per_shape = part_iou(pred, target, 2)
    torch.testing.assert_close(per_shape, torch.tensor([[1 / 2, 2 / 3], [0.0, 3 / 4]]))
    # pooled: every point of both shapes counts once; part 0: 1 of 3 points in the union, part 1: 5 of 7
    torch.testing.assert_close(part_iou(pred, target, 2, pooled=True), torch.tensor([1 / 3, 5 / 7]))
    torch.testing.assert_close(part_miou(pred, target, 2), per_shape.mean(-1))
    with pytest.raises(ValueError, match="part_iou"):
        part_iou(pred[0], target[0], 2)
