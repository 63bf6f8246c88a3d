"""lib.losses against slow references, hand-worked values and (where installed) PyTorch3D.

Tests that compare with PyTorch3D skip cleanly without it; the rest run anywhere."""
import math

import pytest
import torch

from lib import losses as L
from lib import primitives as P


# ------------------------------------------------------------------- nearest neighbours, chamfer
def _chamfer_slow(x, y):
    """(B,) chamfer from the full distance matrix in float64: the reference."""
    d = torch.cdist(x.double(), y.double()).pow(2)  # (B, N, M)
    return (d.min(2).values.mean(1) + d.min(1).values.mean(1)).to(x.dtype)


@pytest.mark.parametrize("B, N, M", [(1, 1, 1), (1, 50, 7), (3, 100, 80), (2, 513, 1000)])
@pytest.mark.parametrize("chunk", [None, 7])
def test_torch_chamfer_matches_slow_reference(B, N, M, chunk):
    g = torch.Generator().manual_seed(N + M)
    x, y = torch.randn(B, N, 3, generator=g), torch.randn(B, M, 3, generator=g)
    d2, idx = L.nearest_neighbors(x, y, backend="torch", chunk=chunk)
    assert d2.shape == idx.shape == (B, N) and idx.dtype == torch.int64
    ref = torch.cdist(x.double(), y.double()).pow(2).min(2)
    torch.testing.assert_close(d2.double(), ref.values, rtol=1e-5, atol=1e-6)
    cd = L.chamfer_distance(x, y, backend="torch")
    assert cd.shape == (B,)
    torch.testing.assert_close(cd, _chamfer_slow(x, y), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("chunk", [None, 5])
def test_k_nearest_neighbors_match_the_sorted_distance_matrix(k, chunk):
    g = torch.Generator().manual_seed(k)
    x, y = torch.randn(2, 40, 3, generator=g), torch.randn(2, 30, 3, generator=g)
    d2, idx = L.nearest_neighbors(x, y, backend="torch", chunk=chunk, k=k)
    assert d2.shape == idx.shape == (2, 40, k)
    ref = torch.cdist(x.double(), y.double()).pow(2).sort(-1)
    torch.testing.assert_close(d2.double(), ref.values[..., :k], rtol=1e-5, atol=1e-6)
    assert (idx == ref.indices[..., :k]).all()
    d2u, _ = L.nearest_neighbors(x[0], x[0], k=3)  # unbatched, a cloud against itself: itself first
    assert d2u.shape == (40, 3) and (d2u[:, 0] == 0).all() and (d2u[:, 1] > 0).all()
    with pytest.raises(ValueError, match="`k` must be between 1 and the 30 points"):
        L.nearest_neighbors(x, y, k=31)


def test_chamfer_hand_worked_values_and_shapes():
    # one point against one point at distance 0.5: 0.25 each way, summed
    assert L.chamfer_distance(torch.zeros(1, 3), torch.tensor([[0.0, 0.5, 0.0]])).item() == pytest.approx(0.5)
    # a grid of spacing 0.1 shifted by 0.03: every nearest neighbour is 0.03 away, CD = 2 * 0.03^2
    ax = torch.arange(5, dtype=torch.float64) * 0.1
    grid = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    shifted = grid + torch.tensor([0.0, 0.03, 0.0], dtype=torch.float64)
    assert L.chamfer_distance(grid, shifted).item() == pytest.approx(2 * 0.03 ** 2, rel=1e-9)
    # y = the grid and a copy moved by 1 along x: x -> y is 0; a moved point at x + 1 is nearest to
    # the grid's x = 0.4 face, (x + 0.6)^2 for x in 0, .1, .., .4 averages 0.66, over half of y: 0.33
    far = torch.cat([grid, grid + torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)])
    assert L.chamfer_distance(grid[None], far[None]).item() == pytest.approx(0.33, rel=1e-9)
    pts = torch.rand(30, 3)
    assert L.chamfer_distance(pts, pts).shape == ()  # unbatched in, 0-d out
    assert L.chamfer_distance(pts, pts).item() == 0.0
    d2, idx = L.nearest_neighbors(pts, pts.flip(0))
    assert d2.shape == idx.shape == (30,) and (idx == torch.arange(29, -1, -1)).all()


def test_chamfer_gradients_reach_both_clouds():
    x = torch.tensor([[0.0, 0.0, 0.0]], requires_grad=True)
    y = torch.tensor([[0.0, 0.5, 0.0], [3.0, 0.0, 0.0]], requires_grad=True)
    L.chamfer_distance(x, y, backend="torch").backward()
    # CD = |x - y0|^2 + (|y0 - x|^2 + |y1 - x|^2) / 2; d/dx = 2 (x - y0) + (x - y0) + (x - y1)
    torch.testing.assert_close(x.grad, torch.tensor([[-3.0, -1.5, 0.0]]))
    torch.testing.assert_close(y.grad, torch.tensor([[0.0, 1.5, 0.0], [3.0, 0.0, 0.0]]))


def test_chamfer_and_nearest_neighbors_errors():
    pts = torch.rand(30, 3)
    with pytest.raises(ValueError, match=r"`x` must be \(B, N, 3\)"):
        L.chamfer_distance(torch.rand(2, 10, 2), pts)
    with pytest.raises(ValueError, match="batch size"):
        L.chamfer_distance(torch.rand(2, 10, 3), torch.rand(3, 10, 3))
    with pytest.raises(ValueError, match="no points"):
        L.chamfer_distance(torch.rand(0, 3), pts)
    with pytest.raises(ValueError, match="backend"):
        L.nearest_neighbors(pts, pts, backend="faiss")


def test_auto_backend_is_torch_on_cpu():
    assert L._knn_backend("auto", torch.device("cpu")) == "torch"
    assert L._knn_backend("pytorch3d", torch.device("cpu")) == "pytorch3d"


@pytest.mark.needs_pytorch3d  # parity with PyTorch3D only
@pytest.mark.parametrize("B, N, M", [(1, 1, 1), (3, 100, 80), (2, 513, 1000)])
def test_nearest_neighbors_match_pytorch3d_knn_points(B, N, M):
    from pytorch3d.ops import knn_points

    g = torch.Generator().manual_seed(B * N + M)
    x, y = torch.randn(B, N, 3, generator=g), torch.randn(B, M, 3, generator=g)
    ref = knn_points(x, y, K=1)
    for backend in ("torch", "pytorch3d"):
        d2, idx = L.nearest_neighbors(x, y, backend=backend)
        torch.testing.assert_close(d2, ref.dists[..., 0], rtol=1e-5, atol=1e-6)
        assert (idx == ref.idx[..., 0]).float().mean() > 0.99  # ties at float precision may differ


@pytest.mark.needs_pytorch3d  # parity with PyTorch3D only
def test_chamfer_and_its_gradients_match_pytorch3d():
    from pytorch3d.loss import chamfer_distance as p3d_chamfer

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 3, generator=g, requires_grad=True)
    y = torch.randn(2, 48, 3, generator=g, requires_grad=True)
    ref = p3d_chamfer(x, y)[0]
    gx_ref, gy_ref = torch.autograd.grad(ref, (x, y))
    for backend in ("torch", "pytorch3d"):
        cd = L.chamfer_distance(x, y, backend=backend)
        torch.testing.assert_close(cd.mean(), ref, rtol=1e-5, atol=1e-6)
        gx, gy = torch.autograd.grad(cd.mean(), (x, y))
        torch.testing.assert_close(gx, gx_ref)
        torch.testing.assert_close(gy, gy_ref)


def test_colored_chamfer_hand_worked_and_consistent_with_chamfer():
    p, pc = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0]]]), torch.tensor([[[1.0, 0, 0], [0.0, 1, 0]]])
    q, qc = torch.tensor([[[0.0, 0.1, 0]]]), torch.tensor([[[1.0, 0, 0]]])
    cd, cl = L.colored_chamfer(p, pc, q, qc)
    # p -> q: 0.01 and 1.01 (mean 0.51); q -> p: 0.01. Colours: p0 exact, p1 off by (1, 1, 0): mean
    # |error| 2/6 over p's 6 numbers; q's nearest is p0, exact: 0. Average of the two directions: 1/6
    torch.testing.assert_close(cd, torch.tensor(0.52))
    torch.testing.assert_close(cl, torch.tensor(0.5 * (1 / 3 + 0.0)))
    g = torch.Generator().manual_seed(0)
    p, pc, q, qc = (torch.rand(2, n, 3, generator=g) for n in (50, 50, 40, 40))
    cd, cl = L.colored_chamfer(p, pc, q, qc)
    torch.testing.assert_close(cd, L.chamfer_distance(p, q).mean())
    cd0, cl0 = L.colored_chamfer(p, pc, p, pc)
    assert cd0.item() == 0.0 and cl0.item() == 0.0


def test_colored_chamfer_bad_shapes_raise():
    with pytest.raises(ValueError, match="pred_points"):
        L.colored_chamfer(torch.zeros(2, 5, 2), torch.zeros(2, 5, 3), torch.zeros(2, 4, 3), torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="must match"):
        L.colored_chamfer(torch.zeros(2, 5, 3), torch.zeros(2, 6, 3), torch.zeros(2, 4, 3), torch.zeros(2, 4, 3))


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


@pytest.mark.needs_pytorch3d  # parity with PyTorch3D only
@pytest.mark.parametrize("k", range(3))
def test_laplacian_matches_pytorch3d_uniform(k):
    from pytorch3d.loss import mesh_laplacian_smoothing
    from pytorch3d.structures import Meshes

    verts, faces = _meshes()[k]
    verts = verts.clone().requires_grad_(True)
    ours = L.mesh_laplacian_smoothing(verts, faces)
    ref = mesh_laplacian_smoothing(Meshes([verts], [faces]), method="uniform")
    torch.testing.assert_close(ours, ref.reshape(()))
    (g1,) = torch.autograd.grad(ours, verts)
    (g2,) = torch.autograd.grad(mesh_laplacian_smoothing(Meshes([verts], [faces]), method="uniform"), verts)
    torch.testing.assert_close(g1, g2)


@pytest.mark.needs_pytorch3d  # parity with PyTorch3D only
@pytest.mark.parametrize("k", range(2))
def test_edge_and_normal_losses_match_pytorch3d(k):
    from pytorch3d.loss import mesh_edge_loss, mesh_normal_consistency
    from pytorch3d.structures import Meshes

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


def test_batched_laplacian_is_the_per_mesh_loss():
    sphere = P.ico_sphere(2)
    verts = sphere.verts + 0.05 * torch.randn(3, *sphere.verts.shape, generator=torch.Generator().manual_seed(0))
    want = torch.stack([L.mesh_laplacian_smoothing(v, sphere.faces) for v in verts])
    got = L.mesh_laplacian_smoothing(verts, sphere.faces)
    assert got.shape == (3,)
    torch.testing.assert_close(got, want)


def test_edge_length_and_normal_consistency_hand_worked():
    # two triangles folded 90 degrees along the edge (0, 1): normals (0, 0, 1) and (0, 1, 0)
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    faces = torch.tensor([[0, 1, 2], [1, 0, 3]])
    torch.testing.assert_close(L.mesh_normal_consistency(verts, faces), torch.tensor(1.0))  # 1 - cos 90
    flat = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0]])
    assert L.mesh_normal_consistency(flat, faces).abs().item() < 1e-6
    # edges: (0,1) 1, (0,2) 1, (1,2) sqrt 2, (0,3) 1, (1,3) sqrt 2 -> mean squared length 7 / 5
    torch.testing.assert_close(L.mesh_edge_length(verts, faces), torch.tensor(7 / 5))


# ---------------------------------------------------------------------------------- eikonal: test_sdf.py
# ------------------------------------------------------------------------------- VAE-GAN losses
def test_kl_divergence_matches_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(L.kl_divergence(mu, logvar), ref)
    assert L.kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4)).item() == 0.0


def test_gan_losses_hand_values():
    z = torch.zeros(4)  # D = 1/2 everywhere: log 2 per term
    assert L.generator_adv_loss(z).item() == pytest.approx(math.log(2))
    assert L.discriminator_loss(z, z).item() == pytest.approx(2 * math.log(2))
    assert L.discriminator_loss(torch.full((4,), 20.0), torch.full((4,), -20.0)).item() < 1e-6
