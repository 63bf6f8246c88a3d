"""lib.quaternion and lib.render.gaussians' projection and spherical harmonics, against gsplat's
own pure-PyTorch reference (gsplat.cuda._torch_impl, runs on CPU) and brute force."""
import math

import pytest
import torch

from lib.cameras import look_at, world_to_camera
from lib.quaternion import quat_multiply, quat_to_rotmat, rotmat_to_quat
from lib.render.gaussians import (camera_centers, eval_sh, gaussians_world_to_camera, num_sh_bases,
                                  perspective_projection, project_gaussians, quat_scale_to_covariance,
                                  rgb_to_sh0, sh0_to_rgb, sh_to_rgb)

# the oracle: gsplat's pure-PyTorch reference (requirements.txt and requirements-colab.txt install gsplat)
ref = pytest.importorskip("gsplat.cuda._torch_impl", reason="gsplat's pure-PyTorch reference is the oracle here")

F64 = torch.float64
BATCHES = [(), (2,), (1, 2)]


def random_scene(batch, n=64, c=3, seed=0, dtype=F64):
    """Random Gaussians (some behind the cameras, some near the near plane) and random cameras."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(batch + (n, 3), generator=g, dtype=dtype) * 1.5
    quats = torch.randn(batch + (n, 4), generator=g, dtype=dtype)
    scales = torch.rand(batch + (n, 3), generator=g, dtype=dtype) * 0.3 + 0.01
    eyes = torch.randn(batch + (c, 3), generator=g) * 0.5 + torch.tensor([0.0, 0.0, -3.0])
    viewmats = world_to_camera(look_at(eyes)).to(dtype)
    f = 40 + 40 * torch.rand(batch + (c,), generator=g, dtype=dtype)
    Ks = torch.zeros(batch + (c, 3, 3), dtype=dtype)
    Ks[..., 0, 0], Ks[..., 1, 1] = f, f * 1.1
    Ks[..., 0, 2], Ks[..., 1, 2], Ks[..., 2, 2] = 25.0, 18.0, 1.0
    return means, quats, scales, viewmats, Ks


def test_quaternion_matches_gsplat_and_round_trips():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(500, 4, generator=g, dtype=F64) * 3
    R = quat_to_rotmat(q)
    torch.testing.assert_close(R, ref._quat_to_rotmat(q))
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=F64).expand(500, 3, 3))
    qn = q / q.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(rotmat_to_quat(R), torch.where(qn[:, :1] < 0, -qn, qn))
    # 180-degree turns (w = 0) still give the right rotation
    half_turns = torch.tensor([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 1, 0]], dtype=F64)
    torch.testing.assert_close(quat_to_rotmat(rotmat_to_quat(quat_to_rotmat(half_turns))), quat_to_rotmat(half_turns))
    a, b = q[:250], q[250:]
    torch.testing.assert_close(quat_to_rotmat(quat_multiply(a, b)), quat_to_rotmat(a) @ quat_to_rotmat(b))
    # about z by 90 degrees: x -> y
    qz = torch.tensor([math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], dtype=F64)
    torch.testing.assert_close(quat_to_rotmat(qz) @ torch.tensor([1.0, 0, 0], dtype=F64),
                               torch.tensor([0.0, 1, 0], dtype=F64))
    with pytest.raises(ValueError, match="quaternions"):
        quat_to_rotmat(torch.zeros(3, 3))


@pytest.mark.parametrize("batch", BATCHES)
def test_covariance_and_camera_frame_match_gsplat(batch):
    means, quats, scales, viewmats, Ks = random_scene(batch)
    covars = quat_scale_to_covariance(quats, scales)
    torch.testing.assert_close(covars, ref._quat_scale_to_covar_preci(quats, scales, compute_preci=False)[0])
    means_c, covars_c = gaussians_world_to_camera(means, covars, viewmats)
    means_r, covars_r = ref._world_to_cam(means, covars, viewmats)
    torch.testing.assert_close(means_c, means_r)
    torch.testing.assert_close(covars_c, covars_r)


@pytest.mark.parametrize("batch", BATCHES)
def test_projection_matches_gsplat(batch):
    W, H = 50, 36
    means, quats, scales, viewmats, Ks = random_scene(batch)
    covars = quat_scale_to_covariance(quats, scales)
    means_c, covars_c = gaussians_world_to_camera(means, covars, viewmats)
    front = means_c[..., 2] > 0.01
    m2, cov2 = perspective_projection(means_c, covars_c, Ks, W, H)
    m2_r, cov2_r = ref._persp_proj(means_c, covars_c, Ks, W, H)
    torch.testing.assert_close(m2[front], m2_r[front], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cov2[front], cov2_r[front], rtol=1e-5, atol=1e-5)

    p = project_gaussians(means, quats, scales, viewmats, Ks, W, H)
    radii_r, m2_r, depths_r, conics_r, _ = ref._fully_fused_projection(means, covars, viewmats, Ks, W, H)
    assert p.means2d.shape == batch + (3, 64, 2) and p.radii.shape == batch + (3, 64)
    assert p.radii.dtype == torch.int32
    torch.testing.assert_close(p.depths, depths_r)
    torch.testing.assert_close(p.means2d[front], m2_r[front], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(p.conics[front], conics_r[front], rtol=1e-5, atol=1e-5)
    # gsplat's radii are per axis (3.33 sigma); ours are 3 sqrt(largest eigenvalue): brute force
    cov2d = cov2 + 0.3 * torch.eye(2, dtype=F64)
    r = torch.ceil(3 * torch.linalg.eigvalsh(cov2d)[..., -1].sqrt())
    x, y = p.means2d.unbind(-1)
    inside = (x + r > 0) & (x - r < W) & (y + r > 0) & (y - r < H)
    expected = torch.where(front & inside, r, torch.zeros_like(r))
    assert torch.equal(p.radii.to(F64), expected)
    assert (~front).any() and (front & ~inside).any() and (p.radii > 0).any()  # the scene has all cases
    assert torch.isfinite(p.means2d).all()  # also behind the camera (depth replaced there)


def test_projection_gradients_are_finite_behind_the_camera():
    means = torch.tensor([[0.0, 0.0, 2.0], [0.1, 0.0, 0.0], [0.0, 0.2, -1.0]], requires_grad=True)
    quats = torch.tensor([[1.0, 0, 0, 0]]).repeat(3, 1)
    scales = torch.full((3, 3), 0.1)
    K = torch.tensor([[[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]]])
    p = project_gaussians(means, quats, scales, torch.eye(4)[None], K, 16, 16)
    assert p.radii.tolist() == [[4, 0, 0]]
    (p.means2d.sum() + p.conics.sum()).backward()
    assert torch.isfinite(means.grad).all()


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_matches_gsplat(degree):
    g = torch.Generator().manual_seed(degree)
    sh = torch.randn(2, 50, 16, 3, generator=g, dtype=F64)
    dirs = torch.randn(2, 50, 3, generator=g, dtype=F64) * 5  # not unit: normalised inside
    torch.testing.assert_close(eval_sh(sh, dirs, degree), ref._spherical_harmonics(degree, dirs, sh))
    assert num_sh_bases(degree) == (degree + 1) ** 2
    with pytest.raises(ValueError, match="K >="):
        eval_sh(sh[..., : num_sh_bases(degree) - 1, :], dirs, degree)


def test_sh_to_rgb_view_direction_and_dc_maps():
    g = torch.Generator().manual_seed(1)
    means, quats, scales, viewmats, Ks = random_scene((2,), n=20, c=3)
    sh = torch.randn(2, 20, 16, 3, generator=g, dtype=F64)
    campos = camera_centers(viewmats)  # (2, 3, 3)
    torch.testing.assert_close(campos, torch.linalg.inv(viewmats)[..., :3, 3])
    rgb = sh_to_rgb(sh, means, campos, 3)
    assert rgb.shape == (2, 3, 20, 3) and (rgb >= 0).all()
    for b in range(2):
        for c in range(3):
            raw = ref._spherical_harmonics(3, means[b] - campos[b, c], sh[b])
            torch.testing.assert_close(rgb[b, c], (raw + 0.5).clamp_min(0))
    x = torch.rand(7, 3, dtype=F64)
    torch.testing.assert_close(sh0_to_rgb(rgb_to_sh0(x)), x)
    torch.testing.assert_close(eval_sh(rgb_to_sh0(x)[:, None, :], torch.randn(7, 3, dtype=F64), 0) + 0.5, x)
