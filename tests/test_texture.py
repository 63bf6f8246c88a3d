"""lib.render.texture: vertex-colour and texture rendering through the z-buffer, against
hand-computed mixes, hand-built gradients (scatter_add of barycentric / bilinear weights) and
finite differences."""

import pytest
import torch

from lib import cameras, primitives
from lib.mesh import TriMesh
from lib.render.texture import render_texture, render_vertex_colors
from lib.render.zbuffer import rasterize, render_views

# Slightly off-centre so that no pixel centre lies exactly on the shared diagonal.
QUAD = TriMesh(verts=torch.tensor([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]]) + 0.013,
               faces=torch.tensor([[0, 1, 2], [0, 2, 3]]))
QUAD_UV = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # u = x, v = y (up), OBJ style
SPHERE = primitives.ico_sphere(level=1, radius=0.8)


def _front(size=32):
    return cameras.orbit_poses(torch.tensor([0.0]), 0.0, 3.0), cameras.intrinsics_from_fov(40.0, size)


def _oblique():
    c2w = cameras.orbit_poses(torch.tensor([0.0, 50.0]), elevation=torch.tensor([0.0, 35.0]), distance=2.5)
    return c2w, cameras.intrinsics_from_fov(50.0, (24, 40))


def _orbit3():
    return cameras.orbit_poses(torch.tensor([0.0, 120.0, 240.0]), 20.0, 3.0), cameras.intrinsics_from_fov(40.0, 32)


@pytest.mark.parametrize("shading", [None, "headlight"])
def test_constant_colours_reproduce_the_mask(shading):
    c2w, K = _orbit3()
    col = torch.tensor([0.2, 0.4, 0.6])
    out = render_vertex_colors(SPHERE.verts, SPHERE.faces, col.expand(SPHERE.verts.shape[0], 3), c2w, K, 32,
                               background=(1.0, 0.0, 1.0), shading=shading)
    mask = rasterize(SPHERE.verts, SPHERE.faces, c2w, K, 32)["mask"]
    assert torch.equal(out["mask"], mask) and 50 < int(mask[0].sum()) < 32 * 32
    assert (out["rgb"][~mask] == torch.tensor([1.0, 0.0, 1.0])).all()
    if shading is None:
        torch.testing.assert_close(out["rgb"][mask], col.expand(int(mask.sum()), 3))  # bary sums to 1 +- rounding
    else:  # the headlight factor matches the flat shading of render_views
        ref = render_views(TriMesh(SPHERE.verts, SPHERE.faces, vert_colors=col.expand(SPHERE.verts.shape[0], 3)),
                           c2w, K, 32)["rgb"]
        torch.testing.assert_close(out["rgb"][mask], ref[mask])
        assert out["rgb"][mask].std(0).min() > 0.01  # really shaded, not constant


def test_pixel_colour_is_the_barycentric_mix_of_its_face_corners():
    c2w, K = _oblique()
    colors = torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
    out = render_vertex_colors(QUAD.verts, QUAD.faces, colors, c2w, K, (24, 40), background=0.0)
    assert out["mask"].sum() > 100
    for n, y, x in out["mask"].nonzero().tolist():
        f, b = int(out["face"][n, y, x]), out["bary"][n, y, x].tolist()
        want = sum(b[k] * colors[int(QUAD.faces[f, k])] for k in range(3))
        torch.testing.assert_close(out["rgb"][n, y, x], want)


@pytest.mark.parametrize("shading", [None, "headlight"])
def test_colour_gradient_is_the_summed_barycentric_weights(shading):
    c2w, K = _orbit3()
    V = SPHERE.verts.shape[0]
    colors = torch.rand(V, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = render_vertex_colors(SPHERE.verts, SPHERE.faces, colors, c2w, K, 32, shading=shading)
    out["rgb"].sum().backward()
    m = out["mask"]
    ones = render_vertex_colors(SPHERE.verts, SPHERE.faces, torch.ones(V, 3), c2w, K, 32, shading=shading)
    light = ones["rgb"][m][:, :1]  # the shading factor per pixel (1 without shading)
    weights = out["bary"][m] * light  # (P, 3)
    ref = torch.zeros(V).scatter_add_(0, SPHERE.faces[out["face"][m]].reshape(-1), weights.detach().reshape(-1))
    torch.testing.assert_close(colors.grad, ref[:, None].expand(V, 3))
    assert (ref == 0).any() and (ref > 0).sum() > V // 2  # some vertices unseen, most seen


def test_gradients_match_finite_differences_in_float64():
    c2w, K = _oblique()
    verts = QUAD.verts  # float32 fragments (lib.cameras.project works in float32); colours in float64
    colors = torch.rand(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda c: render_vertex_colors(verts, QUAD.faces, c, c2w, K, (12, 20), shading="headlight")["rgb"], (colors,))
    tex = torch.rand(2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: render_texture(verts, QUAD.faces, QUAD_UV.double(), t, c2w, K, (12, 20))["rgb"], (tex,))


def test_constant_texture_gives_a_constant_image():
    c2w, K = _oblique()
    col = torch.tensor([0.9, 0.3, 0.1])
    out = render_texture(QUAD.verts, QUAD.faces, QUAD_UV, col.expand(8, 8, 3).clone(), c2w, K, (24, 40),
                         background=0.5)
    assert torch.equal(out["mask"], rasterize(QUAD.verts, QUAD.faces, c2w, K, (24, 40))["mask"])
    torch.testing.assert_close(out["rgb"][out["mask"]], col.expand(int(out["mask"].sum()), 3))
    assert (out["rgb"][~out["mask"]] == 0.5).all()


def test_uv_convention_v_up_row_zero_at_the_top():
    """Seen from the front, the quad's top-left corner (u = 0, v = 1) shows texel row 0, column 0."""
    tex = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]],     # row 0 (top): red, yellow
                        [[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]])    # row 1 (bottom): blue, cyan
    c2w, K = _front()
    out = render_texture(QUAD.verts, QUAD.faces, QUAD_UV, tex, c2w, K, 32)
    ys, xs = out["mask"][0].nonzero().unbind(1)
    top, bottom, left, right = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    rgb = out["rgb"][0]
    torch.testing.assert_close(rgb[top, left], tex[0, 0])
    torch.testing.assert_close(rgb[top, right], tex[0, 1])
    torch.testing.assert_close(rgb[bottom, left], tex[1, 0])
    torch.testing.assert_close(rgb[bottom, right], tex[1, 1])


def _bilinear_weights(uv, Ht, Wt):
    """Hand reference of grid_sample(align_corners=False) for uv well inside the texture:
    the summed weight each texel gets, (Ht, Wt)."""
    x, y = uv[:, 0] * Wt - 0.5, (1 - uv[:, 1]) * Ht - 0.5
    x0, y0 = x.floor().long(), y.floor().long()
    wx, wy = x - x0, y - y0
    acc = torch.zeros(Ht * Wt, dtype=uv.dtype)
    for dy, dx, w in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        acc.scatter_add_(0, (y0 + dy) * Wt + x0 + dx, w)
    return acc.reshape(Ht, Wt)


def test_texture_gradient_reaches_only_texels_next_to_sampled_uvs():
    c2w, K = _oblique()
    uvs = 0.2 + 0.3 * QUAD_UV  # the quad uses the texture's [0.2, 0.5]^2 only
    tex = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(4), requires_grad=True)
    out = render_texture(QUAD.verts, QUAD.faces, uvs, tex, c2w, K, (24, 40))
    out["rgb"].sum().backward()
    ref = _bilinear_weights(out["uv"][out["mask"]].detach(), 16, 16)
    torch.testing.assert_close(tex.grad, ref[..., None].expand(16, 16, 3))
    g = tex.grad.abs().sum(-1)
    assert (g > 0).sum() > 10
    # texel rows / columns whose centres are more than one texel from [0.2, 0.5] get nothing
    near = torch.zeros(16, dtype=torch.bool)
    near[2:9] = True
    assert (g[:, ~near] == 0).all() and (g[~near.flip(0), :] == 0).all()


def test_per_corner_and_indexed_uvs_match_per_vertex_uvs():
    c2w, K = _oblique()
    tex = torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(5))
    ref = render_texture(QUAD.verts, QUAD.faces, QUAD_UV, tex, c2w, K, (24, 40))["rgb"]
    corner = render_texture(QUAD.verts, QUAD.faces, QUAD_UV[QUAD.faces], tex, c2w, K, (24, 40))["rgb"]
    perm = torch.tensor([2, 0, 3, 1])  # a shuffled (T, 2) table with its own index
    table = torch.empty_like(QUAD_UV)
    table[perm] = QUAD_UV
    indexed = render_texture(QUAD.verts, QUAD.faces, table, tex, c2w, K, (24, 40), faces_uvs=perm[QUAD.faces])["rgb"]
    torch.testing.assert_close(corner, ref)
    torch.testing.assert_close(indexed, ref)


def test_a_hidden_face_gets_no_gradient():
    near = TriMesh(verts=QUAD.verts * 2 + torch.tensor([0.0, 0.0, 0.5]), faces=QUAD.faces)  # covers QUAD
    verts, faces = torch.cat([QUAD.verts, near.verts]), torch.cat([QUAD.faces, QUAD.faces + 4])
    c2w, K = _front()
    colors = torch.rand(8, 3, requires_grad=True)
    render_vertex_colors(verts, faces, colors, c2w, K, 32)["rgb"].sum().backward()
    assert (colors.grad[:4] == 0).all() and (colors.grad[4:] > 0).all()
    alone = torch.rand(4, 3, requires_grad=True)  # without the occluder the same quad does get gradient
    render_vertex_colors(QUAD.verts, QUAD.faces, alone, c2w, K, 32)["rgb"].sum().backward()
    assert (alone.grad > 0).all()


def test_fitting_vertex_colours_to_three_views():
    torch.manual_seed(0)
    mesh = primitives.ico_sphere(level=2, radius=0.8)
    c2w, K = _orbit3()
    target_colors = torch.rand(mesh.verts.shape[0], 3, generator=torch.Generator().manual_seed(6))
    target = render_vertex_colors(mesh.verts, mesh.faces, target_colors, c2w, K, 32, shading="headlight")["rgb"]
    colors = torch.full_like(target_colors, 0.5).requires_grad_(True)
    opt = torch.optim.Adam([colors], lr=0.05)
    losses = []
    for _ in range(50):
        loss = ((render_vertex_colors(mesh.verts, mesh.faces, colors, c2w, K, 32, shading="headlight")["rgb"]
                 - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.01 * losses[0] and losses[-1] < 2e-4, (losses[0], losses[-1])


def test_bad_inputs_raise_clear_errors():
    c2w, K = _front()
    with pytest.raises(ValueError, match="colors"):
        render_vertex_colors(QUAD.verts, QUAD.faces, torch.rand(3, 3), c2w, K, 32)
    with pytest.raises(ValueError, match="shading"):
        render_vertex_colors(QUAD.verts, QUAD.faces, torch.rand(4, 3), c2w, K, 32, shading="phong")
    with pytest.raises(ValueError, match="uvs"):
        render_texture(QUAD.verts, QUAD.faces, torch.rand(5, 2), torch.rand(4, 4, 3), c2w, K, 32)
    with pytest.raises(ValueError, match="texture"):
        render_texture(QUAD.verts, QUAD.faces, QUAD_UV, torch.rand(4, 4), c2w, K, 32)
    with pytest.raises(ValueError, match="background"):
        render_vertex_colors(QUAD.verts, QUAD.faces, torch.rand(4, 3), c2w, K, 32, background=(1.0, 1.0))
