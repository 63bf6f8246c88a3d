"""lib.models.embedding (both frequency bases) and lib.models.nerf: the NeRF MLP, the box density and its fit."""
import math

import pytest
import torch
import torch.nn.functional as F

from lib import cameras
from lib.geometry import box_sdf
from lib.models.embedding import HarmonicEmbedding
from lib.models.nerf import BoxDensity, NeRFConfig, NeRFField
from lib.rays import get_rays
from lib.render.volume import volume_render


@pytest.mark.parametrize("base_freq", [math.pi, 1.0])
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3), (7, 2)])
@pytest.mark.parametrize("include_input", [True, False])
def test_harmonic_embedding_matches_a_loop(shape, include_input, base_freq):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    emb = HarmonicEmbedding(4, include_input, base_freq=base_freq)
    out = emb(x)
    D = shape[-1]
    assert out.shape == shape[:-1] + (emb.out_dim(D),)
    flat = x.reshape(-1, D)
    ref = []
    for row in flat.tolist():
        sines = [math.sin(2 ** k * base_freq * v) for v in row for k in range(4)]
        cosines = [math.cos(2 ** k * base_freq * v) for v in row for k in range(4)]
        ref.append((row if include_input else []) + sines + cosines)
    torch.testing.assert_close(out.reshape(len(ref), -1), torch.tensor(ref), atol=1e-4, rtol=1e-4)


def test_harmonic_embedding_hand_worked_nerf_variant():
    """base pi (NeRF): x = 1/4 -> sin(pi/4), sin(pi/2), sin(pi); cos(pi/4), cos(pi/2), cos(pi)."""
    h = math.sqrt(0.5)
    got = HarmonicEmbedding(3)(torch.tensor([[0.25]]))[0]
    torch.testing.assert_close(got, torch.tensor([0.25, h, 1.0, 0.0, h, 0.0, -1.0]), atol=1e-6, rtol=0)


def test_harmonic_embedding_hand_worked_sdf_variant_and_layout():
    """base 1 (the SDF network): x = pi/6 -> sin(pi/6), sin(pi/3), sin(2 pi/3) = 1/2, r, r (r = sqrt(3)/2);
    cosines r, 1/2, -1/2. Two dimensions (a, 0): the input first, then each block dimension-major."""
    r, a = math.sqrt(3) / 2, math.pi / 6
    got = HarmonicEmbedding(3, base_freq=1.0)(torch.tensor([[a, 0.0]]))[0]
    want = [a, 0.0] + [0.5, r, r] + [0.0, 0.0, 0.0] + [r, 0.5, -0.5] + [1.0, 1.0, 1.0]
    torch.testing.assert_close(got, torch.tensor(want), atol=1e-6, rtol=0)
    no_input = HarmonicEmbedding(3, include_input=False, base_freq=1.0)(torch.tensor([[a, 0.0]]))[0]
    torch.testing.assert_close(no_input, torch.tensor(want[2:]), atol=1e-6, rtol=0)


def test_harmonic_embedding_rejects_bad_settings():
    with pytest.raises(ValueError, match="n_freqs"):
        HarmonicEmbedding(-1)
    with pytest.raises(ValueError, match="base_freq"):
        HarmonicEmbedding(2, base_freq=0.0)
    with pytest.raises(ValueError, match="no output"):
        HarmonicEmbedding(0, include_input=False)
    assert HarmonicEmbedding(0)(torch.ones(2, 3)).shape == (2, 3)  # n_freqs = 0: the identity


@pytest.mark.parametrize("view_dependent", [True, False])
def test_nerf_field_shapes_ranges_and_view_dependence(view_dependent):
    torch.manual_seed(0)
    field = NeRFField(NeRFConfig(hidden=32, n_layers=4, skip=2, hidden_dir=16, view_dependent=view_dependent))
    p = torch.rand(3, 5, 3)
    d1 = F.normalize(torch.randn(3, 5, 3), dim=-1)
    sigma, rgb = field(p, d1)
    assert sigma.shape == (3, 5) and rgb.shape == (3, 5, 3)
    assert (sigma >= 0).all() and ((rgb > 0) & (rgb < 1)).all()
    sigma2, rgb2 = field(p, -d1)
    torch.testing.assert_close(sigma, sigma2)  # density never depends on the direction
    assert torch.equal(rgb, rgb2) != view_dependent


def test_box_sdf_matches_a_brute_force_distance():
    g = torch.Generator().manual_seed(0)
    c, s = torch.tensor([0.1, -0.2, 0.3]), torch.tensor([0.8, 0.5, 1.2])
    pts = torch.rand(200, 3, generator=g) * 3 - 1.5
    # brute force: distance to a dense sampling of the box surface, sign from inside/outside
    u = torch.linspace(-0.5, 0.5, 41)
    a, b = torch.meshgrid(u, u, indexing="ij")
    faces = []
    for axis in range(3):
        for sign in (-0.5, 0.5):
            f = torch.zeros(41 * 41, 3)
            others = [k for k in range(3) if k != axis]
            f[:, axis], f[:, others[0]], f[:, others[1]] = sign, a.reshape(-1), b.reshape(-1)
            faces.append(f)
    surface = torch.cat(faces) * s + c
    dist = torch.cdist(pts, surface).amin(-1)
    inside = (((pts - c).abs() - s / 2) < 0).all(-1)
    ref = torch.where(inside, -dist, dist)
    torch.testing.assert_close(box_sdf(pts, c, s), ref, atol=0.02, rtol=0)


def test_box_density_rejects_bad_sides():
    with pytest.raises(ValueError, match="sides"):
        BoxDensity(sides=(1.0, -1.0, 1.0))


def test_fitting_a_box_recovers_centre_and_sides(one_thread):
    truth = BoxDensity(center=(0.2, -0.1, 0.1), sides=(1.0, 0.6, 0.8))
    poses = cameras.orbit_poses(torch.arange(6) * 60.0, elevation=torch.tensor([15.0, 45.0] * 3), distance=4.0)
    K = cameras.intrinsics_from_fov(40.0, 16)
    o, d = [x.reshape(-1, 3) for x in get_rays(poses, K, 16)]
    with torch.no_grad():
        target = volume_render(truth, o, d, 2.0, 6.0, 48, perturb=False, background=1.0)["rgb"]
    model = BoxDensity()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    g = torch.Generator().manual_seed(0)
    for _ in range(80):
        idx = torch.randint(len(o), (256,), generator=g)
        out = volume_render(model, o[idx], d[idx], 2.0, 6.0, 32, g, background=1.0)
        loss = F.mse_loss(out["rgb"], target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (model.center - truth.center).abs().max() < 0.05
    assert (model.sides - truth.sides).abs().max() < 0.05


def test_a_small_nerf_learns_one_view(one_thread):
    """250 steps on one 12x12 view of the box beat the constant-colour baseline by 3x."""
    torch.manual_seed(0)
    truth = BoxDensity(center=(0.0, 0.0, 0.0), sides=(1.0, 0.8, 0.6))
    c2w = cameras.orbit_poses(torch.tensor([30.0]), elevation=20.0, distance=4.0)[0]
    K = cameras.intrinsics_from_fov(40.0, 12)
    o, d = [x.reshape(-1, 3) for x in get_rays(c2w, K, 12)]
    with torch.no_grad():
        target = volume_render(truth, o, d, 2.0, 6.0, 48, perturb=False, background=1.0)["rgb"]
    field = NeRFField(NeRFConfig(n_freqs_xyz=4, n_freqs_dir=2, hidden=32, n_layers=2, skip=None, hidden_dir=16))
    opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(250):
        loss = F.mse_loss(volume_render(field, o, d, 2.0, 6.0, 24, g, background=1.0)["rgb"], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    baseline = F.mse_loss(target.mean(0).expand_as(target), target)
    assert loss < baseline / 3
