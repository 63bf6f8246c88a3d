"""lib.losses and lib.metrics against PyTorch3D and hand-worked values."""
import pytest
import torch

from lib import losses as L
from lib import metrics as M
from lib import primitives as P

pytorch3d = pytest.importorskip("pytorch3d")
from pytorch3d.loss import chamfer_distance as p3d_chamfer  # noqa: E402
from pytorch3d.loss import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency  # noqa: E402
from pytorch3d.structures import Meshes  # noqa: E402


# ------------------------------------------------------------------------------ chamfer
def _chamfer_slow(x, y):
    """(B,) chamfer from the full distance matrix: the reference."""
    d = torch.cdist(x.double(), y.double()).pow(2)  # (B, N, M)
    return (d.min(2).values.mean(1) + d.min(1).values.mean(1)).to(x.dtype)


@pytest.mark.parametrize("B, N, M", [(1, 1, 1), (1, 50, 7), (3, 100, 80), (2, 513, 1000)])
def test_chamfer_matches_pytorch3d_and_slow_reference(B, N, M):
    g = torch.Generator().manual_seed(N + M)
    x, y = torch.randn(B, N, 3, generator=g), torch.randn(B, M, 3, generator=g)
    cd = L.chamfer_distance(x, y)
    assert cd.shape == (B,)
    torch.testing.assert_close(cd, _chamfer_slow(x, y), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cd.mean(), p3d_chamfer(x, y)[0], rtol=1e-5, atol=1e-6)


def test_chamfer_gradients_match_pytorch3d():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 3, generator=g, requires_grad=True)
    y = torch.randn(2, 48, 3, generator=g)
    (gx,) = torch.autograd.grad(L.chamfer_distance(x, y).mean(), x)
    (gx_ref,) = torch.autograd.grad(p3d_chamfer(x, y)[0], x)
    torch.testing.assert_close(gx, gx_ref)


def test_chamfer_unbatched_zero_and_errors():
    pts = torch.rand(30, 3)
    assert L.chamfer_distance(pts, pts).shape == (1,)
    assert float(L.chamfer_distance(pts, pts)) == 0.0
    # one point against one point at distance 0.5: 0.25 each way
    torch.testing.assert_close(L.chamfer_distance(torch.zeros(1, 3), torch.tensor([[0.0, 0.5, 0.0]])),
                               torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"`x` must be \(B, N, 3\)"):
        L.chamfer_distance(torch.rand(2, 10, 2), pts)
    with pytest.raises(ValueError, match="batch size"):
        L.chamfer_distance(torch.rand(2, 10, 3), torch.rand(3, 10, 3))
    with pytest.raises(ValueError, match="no points"):
        L.chamfer_distance(torch.rand(0, 3), pts)


# ----------------------------------------------------------------------------- voxel BCE
def test_voxel_bce_matches_formula():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 8, 8, 8, generator=g), torch.rand(2, 8, 8, 8, generator=g) > 0.7
    p, t = torch.sigmoid(logits.double()), target.double()
    ref = -(t * p.log() + (1 - t) * (1 - p).log()).mean()
    torch.testing.assert_close(L.voxel_bce(logits, target).double(), ref, rtol=1e-5, atol=1e-6)
    ref_w = -(3.0 * t * p.log() + (1 - t) * (1 - p).log()).mean()
    torch.testing.assert_close(L.voxel_bce(logits, target, pos_weight=3.0).double(), ref_w, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        L.voxel_bce(logits, target[0])


# ------------------------------------------------------------------------ mesh regularizers
def _meshes():
    g = torch.Generator().manual_seed(1)
    sphere = P.ico_sphere(2)
    noisy = sphere.verts + 0.05 * torch.randn(sphere.verts.shape, generator=g)
    box = P.box(sharp=False)
    lonely = torch.cat([box.verts, torch.tensor([[2.0, 1.0, 0.0]])])  # a vertex on no face
    return [(noisy, sphere.faces), (box.verts * 0.3, box.faces), (lonely, box.faces)]


@pytest.mark.parametrize("k", range(3))
def test_laplacian_matches_pytorch3d_uniform(k):
    verts, faces = _meshes()[k]
    verts = verts.clone().requires_grad_(True)
    ours = L.mesh_laplacian_smoothing(verts, faces)
    ref = mesh_laplacian_smoothing(Meshes([verts], [faces]), method="uniform")
    torch.testing.assert_close(ours, ref.reshape(()))
    (g1,) = torch.autograd.grad(ours, verts)
    (g2,) = torch.autograd.grad(mesh_laplacian_smoothing(Meshes([verts], [faces]), method="uniform"), verts)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("k", range(2))
def test_edge_and_normal_losses_match_pytorch3d(k):
    verts, faces = _meshes()[k]
    m = Meshes([verts], [faces])
    torch.testing.assert_close(L.mesh_edge_length(verts, faces), mesh_edge_loss(m).reshape(()))
    torch.testing.assert_close(L.mesh_edge_length(verts, faces, 0.2), mesh_edge_loss(m, 0.2).reshape(()))
    torch.testing.assert_close(L.mesh_normal_consistency(verts, faces), mesh_normal_consistency(m).reshape(()))


def test_laplacian_of_a_flat_grid_interior_is_zero_and_errors():
    # a regular planar fan: the centre vertex sits at its neighbours' mean; only the rim counts
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    # rim vertex 1: neighbours 0, 2, 4 -> mean (0, 0, 0); offset |(-1, 0, 0)| = 1; same for all 4
    torch.testing.assert_close(L.mesh_laplacian_smoothing(verts, faces), torch.tensor(4 / 5))
    with pytest.raises(ValueError, match=r"`verts` must be \(V, 3\)"):
        L.mesh_laplacian_smoothing(verts[:, :2], faces)
    with pytest.raises(ValueError, match="outside"):
        L.mesh_laplacian_smoothing(verts, faces + 3)


# --------------------------------------------------------------------------------- metrics
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


def test_chamfer_l2_is_the_loss_without_grad():
    x = torch.rand(40, 3, requires_grad=True)
    y = torch.rand(30, 3)
    cd = M.chamfer_l2(x, y)
    assert cd.shape == () and not cd.requires_grad
    torch.testing.assert_close(cd, L.chamfer_distance(x, y)[0].detach())


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
