"""PSNR against wall time for NeRF training with stratified sampling vs an occupancy grid.

Both samplers train the same NeRF MLP (same seed, same ray batches) on the same data, one after
the other in one run; every ``--eval-every`` steps the held-out PSNR is measured (evaluation time
is not counted as training time). Default settings are small, for a CPU (a few minutes on 2 cores):

    .venv/bin/python benchmarks/nerf_sampling.py
    .venv/bin/python benchmarks/nerf_sampling.py --device cuda --image-size 200 --steps 5000 \\
        --batch 4096 --samples 128 --hidden 256 --layers 8 --grid-res 128 --march-steps 512
    .venv/bin/python benchmarks/nerf_sampling.py --data /path/to/nerf_synthetic/lego --device cuda ...

Data: the procedural Blender-format scene of ``lib.data.blender`` (default), or any Blender-format
folder (``--data``). On CUDA the grid path uses nerfacc's ``OccGridEstimator`` (``--no-nerfacc``
to use lib's pure-torch grid there too).
"""
from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time

import torch
import torch.nn.functional as F

from lib.data.blender import load_blender, write_blender_scene
from lib.models.nerf import NeRFConfig, NeRFField
from lib.occupancy import OccupancyGrid, render_with_grid
from lib.rays import get_rays, near_far_from_aabb
from lib.render.volume import render_image, volume_render


def psnr_on(data, render, field, size, device, chunk) -> float:
    vals = []
    for c2w, img in zip(data["c2w"], data["images"]):
        out = render_image(lambda o, d: render(field, o, d, None, False), c2w.to(device), data["K"].to(device),
                           size, chunk)
        vals.append(-10 * math.log10(F.mse_loss(out["rgb"].cpu().clamp(0, 1), img).item()))
    return sum(vals) / len(vals)


def run(method: str, args, train, test, device) -> list:
    """Train one model with ``method`` in {"stratified", "grid"}; returns rows (step, seconds, psnr, evals/ray)."""
    torch.manual_seed(args.seed)
    gen = torch.Generator(device).manual_seed(args.seed)
    cfg = NeRFConfig(n_freqs_xyz=args.freqs, n_freqs_dir=4, hidden=args.hidden, n_layers=args.layers,
                     skip=4 if args.layers > 4 else None, hidden_dir=max(args.hidden // 2, 16))
    field = NeRFField(cfg).to(device)
    opt = torch.optim.Adam(field.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.1 ** (1 / args.steps))
    o, d = (x.reshape(-1, 3).to(device) for x in get_rays(train["c2w"], train["K"], args.image_size))
    px, bg = train["images"].reshape(-1, 3).to(device), train["background"].to(device)
    bounds = train["scene_bounds"].to(device)
    near, far = train["near"], train["far"]
    grid = OccupancyGrid(bounds.reshape(-1), args.grid_res).to(device)
    step_size = (bounds[1] - bounds[0]).norm().item() / args.march_steps
    use_nerfacc = device.type == "cuda" and not args.no_nerfacc

    def render(f, ro, rd, g=None, perturb=True):
        if method == "grid":
            return render_with_grid(f, ro, rd, grid, near, far, step_size, bg, g, perturb, use_nerfacc)
        lo, hi = near_far_from_aabb(ro, rd, bounds, near, far)
        return volume_render(f, ro, rd, lo, hi, args.samples, g, background=bg, perturb=perturb)

    rows, elapsed, evals = [], 0.0, 0
    for step in range(1, args.steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if method == "grid":
            grid.update_every_n_steps(step - 1, lambda x: field.density(x)[0], step_size, n=16,
                                      warmup_steps=256, generator=gen)
        idx = torch.randint(len(o), (args.batch,), generator=gen, device=device)
        out = render(field, o[idx], d[idx], gen)
        loss = F.mse_loss(out["rgb"], px[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - t0
        evals += out["n_evals"]
        if step % args.eval_every == 0 or step == args.steps:
            with torch.no_grad():
                rows.append((step, elapsed, psnr_on(test, render, field, args.image_size, device, args.chunk),
                             evals / (step * args.batch), grid.occupied_fraction() if method == "grid" else None))
            print(f"  {method:<10} step {step:>6}  {elapsed:8.1f} s  PSNR {rows[-1][2]:6.2f}", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=None, help="a Blender-format folder (default: the procedural scene)")
    ap.add_argument("--image-size", type=int, default=40)
    ap.add_argument("--n-train", type=int, default=40, help="procedural scene: training views")
    ap.add_argument("--n-test", type=int, default=4, help="held-out views scored (the first N of the test split)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--eval-every", type=int, default=150)
    ap.add_argument("--batch", type=int, default=1024, help="rays per step")
    ap.add_argument("--samples", type=int, default=32, help="stratified samples per ray")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--freqs", type=int, default=8, help="octaves of the position encoding")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--grid-res", type=int, default=32)
    ap.add_argument("--march-steps", type=int, default=96, help="grid marching steps across the box diagonal")
    ap.add_argument("--chunk", type=int, default=8192)
    ap.add_argument("--no-nerfacc", action="store_true", help="use lib's pure-torch grid on CUDA as well")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.data is None:
        root = write_blender_scene(tempfile.mkdtemp(prefix="nerf_bench_"), seed=args.seed, n_train=args.n_train,
                                   n_val=1, n_test=args.n_test, image_size=args.image_size)
    else:
        root = args.data
    train = load_blender(root, "train", args.image_size)
    test = load_blender(root, "test", args.image_size)
    test = {**test, "images": test["images"][:args.n_test], "c2w": test["c2w"][:args.n_test]}
    print(f"# nerf_sampling on {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {device}; {len(train['images'])} train views at "
          f"{args.image_size} px, {args.steps} steps x {args.batch} rays")
    results = {m: run(m, args, train, test, device) for m in ("stratified", "grid")}
    print("\n| sampling | step | train time (s) | test PSNR (dB) | field evals / ray | occupied cells |")
    print("|---|---|---|---|---|---|")
    for method, rows in results.items():
        for step, secs, psnr, epr, occ in rows:
            occupied = "-" if occ is None else f"{occ:.0%}"
            print(f"| {method} | {step} | {secs:.1f} | {psnr:.2f} | {epr:.1f} | {occupied} |")


if __name__ == "__main__":
    main()
