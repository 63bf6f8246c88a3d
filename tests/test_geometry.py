"""lib.geometry and the TriMesh container: surfaces, sampling statistics against PyTorch3D, colour
gradients, input checks (the mesh queries are tests/test_mesh.py)."""
import pytest
import torch

from lib import geometry
from lib.mesh import TriMesh, concat_meshes, face_areas
from lib.primitives import box


def test_parametric_points_lie_on_their_implicit_surfaces():
    assert geometry.torus_sdf(geometry.torus_points(40, 1.0, 0.3), 1.0, 0.3).abs().max() < 1e-5
    pts = geometry.superquadric_points(40, (0.8, 0.5, 1.2), e1=0.4, e2=0.7)
    assert geometry.superquadric_implicit(pts, (0.8, 0.5, 1.2), e1=0.4, e2=0.7).abs().max() < 1e-3
    assert geometry.superquadric_implicit(torch.zeros(1, 3)) < 0  # the centre is inside


def _stretched_mesh():
    """Two boxes of very different areas, so that uniform-by-area sampling matters."""
    return concat_meshes([box((0, 0, 0), (2.0, 0.2, 0.2)), box((2, 0, 0), (0.3, 0.3, 0.3))])


def test_sample_surface_matches_pytorch3d_statistics():
    sample_points_from_meshes = pytest.importorskip("pytorch3d.ops").sample_points_from_meshes

    mesh, n = _stretched_mesh(), 40_000
    torch.manual_seed(0)
    ours, face = geometry.sample_surface(mesh, n, generator=torch.Generator().manual_seed(0))
    theirs = sample_points_from_meshes(mesh.to_pytorch3d(), n)[0]
    assert (ours.mean(0) - theirs.mean(0)).abs().max() < 0.02
    torch.testing.assert_close(torch.cov(ours.T), torch.cov(theirs.T), atol=0.02, rtol=0.05)
    # Area fraction of the small box vs the share of samples that land there.
    small = mesh.verts[mesh.faces].mean(1)[:, 0] > 1.5
    areas = face_areas(mesh.verts, mesh.faces)
    area_share = (areas[small].sum() / areas.sum()).item()
    assert small[face].float().mean().item() == pytest.approx(area_share, abs=0.01)
    assert (theirs[:, 0] > 1.5).float().mean().item() == pytest.approx(area_share, abs=0.01)


def test_sample_surface_is_uniform_inside_a_triangle():
    tri = TriMesh(verts=torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), faces=torch.tensor([[0, 1, 2]]))
    pts, _ = geometry.sample_surface(tri, 20_000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pts.mean(0), torch.tensor([1 / 3, 1 / 3, 0.0]), atol=0.01, rtol=0)
    # The corner triangle x + y < 0.5 holds a quarter of the area.
    assert ((pts[:, 0] + pts[:, 1]) < 0.5).float().mean().item() == pytest.approx(0.25, abs=0.015)
    assert (pts[:, 0] >= 0).all() and (pts[:, 1] >= 0).all() and (pts[:, :2].sum(1) <= 1 + 1e-6).all()


def test_sample_surface_is_reproducible_with_a_generator():
    mesh = box()
    a, _ = geometry.sample_surface(mesh, 100, generator=torch.Generator().manual_seed(5))
    b, _ = geometry.sample_surface(mesh, 100, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_color_gradient_endpoints_and_errors():
    verts = torch.tensor([[0.0, 0, -1], [0, 0, 1], [0, 0, 0]])
    c = geometry.color_gradient(verts, (0, 0, 1), (1, 0, 0), axis=2)
    torch.testing.assert_close(c, torch.tensor([[0.0, 0, 1], [1, 0, 0], [0.5, 0, 0.5]]))
    with pytest.raises(ValueError, match="axis"):
        geometry.color_gradient(verts, (0, 0, 1), (1, 0, 0), axis=3)


def test_trimesh_rejects_bad_input_with_named_fields():
    v, f = torch.rand(4, 3), torch.tensor([[0, 1, 2], [0, 2, 3]])
    with pytest.raises(ValueError, match="texture must be an \\(H, W, 3\\)"):
        TriMesh(v, f, verts_uvs=torch.rand(4, 2), faces_uvs=f, texture=torch.rand(8, 8))
    with pytest.raises(ValueError, match="indexes vertex 7 but there are only 4"):
        TriMesh(v, torch.tensor([[0, 1, 7]]))
    bad = v.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        TriMesh(bad, f)
    with pytest.raises(ValueError, match="vert_colors"):
        TriMesh(v, f, vert_colors=torch.rand(3, 3))


def test_batched_sampling_is_the_single_mesh_sampling_per_row():
    """sample_surface is sample_surface_batched with B = 1; rows of a batch follow their own
    mesh, and the points carry gradients to the vertices."""
    mesh = _stretched_mesh()
    one, face = geometry.sample_surface(mesh, 300, generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)
    batch, faces_b = geometry.sample_surface_batched(mesh.verts[None], mesh.faces, 300, gen)
    assert torch.equal(batch[0], one) and torch.equal(faces_b[0], face)
    verts = torch.stack([mesh.verts, 2 * mesh.verts]).requires_grad_(True)
    pts, idx = geometry.sample_surface_batched(verts, mesh.faces, 500, torch.Generator().manual_seed(3))
    assert pts.shape == (2, 500, 3) and idx.shape == (2, 500)
    # each point is its face's barycentric mix: inside the face's bounding box
    tri = verts.detach()[:, mesh.faces][torch.arange(2)[:, None], idx]  # (2, 500, 3, 3) corners of each point's face
    assert ((pts.detach() >= tri.amin(2) - 1e-6) & (pts.detach() <= tri.amax(2) + 1e-6)).all()
    pts.sum().backward()
    assert verts.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(B, V, 3\)"):
        geometry.sample_surface_batched(mesh.verts, mesh.faces, 10)
