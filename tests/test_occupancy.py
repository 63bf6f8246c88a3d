"""lib.render.occupancy: the pure-torch occupancy grid against brute-force references, rendering with
it against dense stratified rendering, and (CUDA only) against nerfacc's OccGridEstimator."""
import math

import pytest
import torch

from lib import cameras
from lib.render.occupancy import OccupancyGrid, render_with_grid
from lib.rays import get_rays
from lib.render.volume import volume_render

AABB = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]


def ball_field(p, d):
    """A dense ball of radius 0.4 at (0.2, 0, 0), coloured by position."""
    inside = ((p - torch.tensor([0.2, 0.0, 0.0], device=p.device)).norm(dim=-1) < 0.4).float()
    return 80.0 * inside, (p * 0.5 + 0.5).clamp(0, 1)


def _rays(n=12, device="cpu"):
    c2w = cameras.orbit_poses(torch.tensor([20.0]), elevation=30.0, distance=3.0)[0]
    o, d = get_rays(c2w, cameras.intrinsics_from_fov(45.0, n), n)
    return o.reshape(-1, 3).to(device), d.reshape(-1, 3).to(device)


def _grid_from(field, res=16, device="cpu"):
    grid = OccupancyGrid(AABB, res).to(device)
    gen = torch.Generator(device).manual_seed(0)
    for _ in range(4):  # several jittered passes: every cell touching the ball gets marked
        grid.update(lambda x: field(x, x)[0], step_size=0.02, decay=1.0, generator=gen)
    return grid


def test_new_grid_is_fully_occupied_and_bad_aabb_is_named():
    grid = OccupancyGrid(AABB, 8)
    assert grid.binary.all() and grid.occupied_fraction() == 1.0
    with pytest.raises(ValueError, match="aabb"):
        OccupancyGrid([0, 0, 0, 1, -1, 1], 8)


def test_query_matches_a_brute_force_cell_lookup():
    g = torch.Generator().manual_seed(0)
    grid = OccupancyGrid([-1.0, -0.5, -2.0, 1.0, 1.5, 0.0], 5)
    grid.binary.copy_(torch.rand(5, 5, 5, generator=g) > 0.5)
    pts = torch.rand(500, 3, generator=g) * 3 - torch.tensor([1.5, 1.0, 2.5])
    got = grid.query(pts)
    lo, size = [-1.0, -0.5, -2.0], [0.4, 0.4, 0.4]
    for p, q in zip(pts.tolist(), got.tolist()):
        idx = [math.floor((p[k] - lo[k]) / size[k]) for k in range(3)]
        inside = all(0 <= i < 5 for i in idx)
        assert q == (inside and bool(grid.binary[idx[0], idx[1], idx[2]]))


def test_update_marks_the_cells_of_the_ball():
    grid = _grid_from(ball_field)
    centres = grid.aabb[:3] + (grid.cell_coords().float() + 0.5) * grid.cell_size()
    dist = (centres - torch.tensor([0.2, 0.0, 0.0])).norm(dim=-1)
    half_diag = float(grid.cell_size().norm() / 2)
    occ = grid.binary.reshape(-1)
    assert occ[dist < 0.4 - half_diag].all()  # cells wholly inside the ball
    assert not occ[dist > 0.4 + half_diag].any()  # cells wholly outside
    assert 0.02 < grid.occupied_fraction() < 0.2


def test_ema_forgets_emptied_cells():
    """The ball moves: after enough decayed updates its old cells are empty, its new ones occupied."""
    grid = _grid_from(ball_field)
    old = grid.binary.clone()
    moved = lambda x: 80.0 * ((x - torch.tensor([-0.5, 0.0, 0.0])).norm(dim=-1) < 0.3).float()  # noqa: E731
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):  # old cells decay as 1.6 * 0.8^k, below the 0.01 threshold after 23 updates
        grid.update(moved, step_size=0.02, decay=0.8, generator=gen)
    centres = grid.aabb[:3] + (grid.cell_coords().float() + 0.5) * grid.cell_size()
    dist, half_diag = (centres - torch.tensor([-0.5, 0.0, 0.0])).norm(dim=-1), float(grid.cell_size().norm() / 2)
    away = (dist > 0.3 + half_diag).reshape(grid.binary.shape)
    assert old[away].any() and not grid.binary[away].any()
    assert grid.binary.reshape(-1)[dist < 0.3 - half_diag].all()


def test_sample_matches_a_brute_force_march():
    """Samples: fixed steps from max(near, box entry), kept iff inside the box, before the exit,
    and in an occupied cell, checked ray by ray with plain Python arithmetic."""
    grid = _grid_from(ball_field, res=8)
    o, d = _rays(6)
    step = 0.05
    t, mask = grid.sample(o, d, 2.0, 6.0, step)
    lo, size = -1.0, 2.0 / 8
    for r in range(len(o)):
        ox, dx = o[r].tolist(), d[r].tolist()
        ts = [(lo - ox[k]) / dx[k] if abs(dx[k]) > 1e-12 else -math.inf for k in range(3)]
        te = [(-lo - ox[k]) / dx[k] if abs(dx[k]) > 1e-12 else math.inf for k in range(3)]
        t_in = max(max(min(a, b) for a, b in zip(ts, te)), 2.0)
        t_out = min(min(max(a, b) for a, b in zip(ts, te)), 6.0)
        for s in range(t.shape[1]):
            tk = t_in + (s + 0.5) * step
            assert abs(t[r, s].item() - tk) < 1e-4
            p = [ox[k] + tk * dx[k] for k in range(3)]
            idx = [math.floor((p[k] - lo) / size) for k in range(3)]
            ok = tk < t_out and all(0 <= i < 8 for i in idx) and bool(grid.binary[idx[0], idx[1], idx[2]])
            if abs(tk - t_out) > 1e-4 and all(abs((p[k] - lo) / size - round((p[k] - lo) / size)) > 1e-4 for k in range(3)):
                assert mask[r, s].item() == ok, (r, s)


def test_rendering_with_the_grid_matches_dense_rendering_with_fewer_evaluations():
    grid = _grid_from(ball_field)
    o, d = _rays(16)
    step = 4.0 / 512
    dense = volume_render(ball_field, o, d, 2.0, 6.0, 512, perturb=False, background=1.0)
    fast = render_with_grid(ball_field, o, d, grid, 2.0, 6.0, step, background=1.0)  # "auto": torch on CPU
    torch.testing.assert_close(fast["rgb"], dense["rgb"], atol=0.03, rtol=0)
    torch.testing.assert_close(fast["opacity"], dense["opacity"], atol=0.03, rtol=0)
    assert fast["n_evals"] < dense["n_evals"] / 10


def test_backend_choice_on_the_cpu():
    """"auto" on CPU rays is the pure-torch grid; asking for nerfacc there is refused with a hint."""
    grid = _grid_from(ball_field, res=8)
    o, d = _rays(6)
    auto = render_with_grid(ball_field, o, d, grid, 2.0, 6.0, 0.05, background=1.0)
    torch_path = render_with_grid(ball_field, o, d, grid, 2.0, 6.0, 0.05, background=1.0, backend="torch")
    assert torch.equal(auto["rgb"], torch_path["rgb"]) and "weights" in auto  # the pure-torch path's output
    with pytest.raises(ValueError, match='backend="torch"'):
        render_with_grid(ball_field, o, d, grid, 2.0, 6.0, 0.05, backend="nerfacc")
    with pytest.raises(ValueError, match="backend must be one of"):
        render_with_grid(ball_field, o, d, grid, 2.0, 6.0, 0.05, backend=True)  # the old use_nerfacc flag


@pytest.mark.skipif(not torch.cuda.is_available(), reason="nerfacc's OccGridEstimator needs CUDA")
def test_agrees_with_nerfacc_occgridestimator_on_the_same_grid_and_rays():
    grid = _grid_from(ball_field, device="cuda")
    est = grid.to_nerfacc()
    assert torch.equal(est.binaries[0], grid.binary)
    o, d = _rays(32, "cuda")
    step = 0.01
    ours = render_with_grid(ball_field, o, d, grid, 2.0, 6.0, step, background=1.0, backend="torch")
    theirs = render_with_grid(ball_field, o, d, grid, 2.0, 6.0, step, background=1.0, backend="nerfacc", estimator=est)
    torch.testing.assert_close(ours["opacity"], theirs["opacity"], atol=0.05, rtol=0)
    torch.testing.assert_close(ours["rgb"], theirs["rgb"], atol=0.05, rtol=0)
    assert abs(ours["n_evals"] - theirs["n_evals"]) <= 0.1 * theirs["n_evals"] + 32
    # and sample by sample: every nerfacc sample midpoint lies in a cell our grid calls occupied
    ray_idx, t0, t1 = est.sampling(o, d, near_plane=2.0, far_plane=6.0, render_step_size=step)
    mid = o[ray_idx] + ((t0 + t1) / 2)[:, None] * d[ray_idx]
    assert grid.query(mid).float().mean() > 0.99
