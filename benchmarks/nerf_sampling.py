"""PSNR against wall time for NeRF training with stratified sampling vs an occupancy grid.

Both samplers train the same NeRF MLP (same seed, same ray batches) on the same data, one after
the other in one run; every ``--eval-every`` steps the held-out PSNR and SSIM are measured
(evaluation time is not counted as training time). The step, the renderer and the evaluation are
``lib.methods.nerf``'s, as in notebooks 04 and 05. Default settings are small, for a CPU (a few
minutes on 2 cores):

    .venv/bin/python benchmarks/nerf_sampling.py
    .venv/bin/python benchmarks/nerf_sampling.py --device cuda --image-size 200 --steps 5000 \\
        --batch 4096 --samples 128 --hidden 256 --layers 8 --grid-res 128 --march-steps 512
    .venv/bin/python benchmarks/nerf_sampling.py --data /path/to/nerf_synthetic/lego --device cuda ...

Data: the procedural Blender-format scene of ``lib.data.still_life`` (default), or any
Blender-format folder (``--data``). The grid path uses nerfacc's ``OccGridEstimator`` on CUDA
when nerfacc is installed (``--backend auto``), lib's pure-torch grid otherwise or with
``--backend torch``; see ``lib.backend``.
"""
from __future__ import annotations

import argparse
import platform
import tempfile

import torch

from lib.data.blender import load_blender
from lib.data.still_life import write_blender_scene
from lib.models.nerf import NeRFConfig, NeRFField
from lib.methods.nerf import evaluate_views, make_nerf_step, training_rays, volume_renderer
from lib.render.occupancy import OccupancyGrid, render_with_grid


def run(method: str, args, train, test, device) -> list:
    """Train one model with ``method`` in {"stratified", "grid"}; returns rows
    (step, train seconds, test PSNR, test SSIM, field evals per ray, occupied fraction or None)."""
    torch.manual_seed(args.seed)
    gen = torch.Generator(device).manual_seed(args.seed)
    cfg = NeRFConfig(n_freqs_xyz=args.freqs, n_freqs_dir=4, hidden=args.hidden, n_layers=args.layers,
                     skip=4 if args.layers > 4 else None, hidden_dir=max(args.hidden // 2, 16))
    field = NeRFField(cfg).to(device)
    opt = torch.optim.Adam(field.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.1 ** (1 / args.steps))
    bounds, bg = train["scene_bounds"].to(device), train["background"].to(device)
    near, far = train["near"], train["far"]
    grid = OccupancyGrid(bounds.reshape(-1), args.grid_res).to(device)
    step_size = (bounds[1] - bounds[0]).norm().item() / args.march_steps
    hook = None
    if method == "grid":
        def render(f, ro, rd, g=None, perturb=True):
            return render_with_grid(f, ro, rd, grid, near, far, step_size, bg, g, perturb, backend=args.backend)

        def hook(i):
            grid.update_every_n_steps(i, lambda x: field.density(x)[0], step_size, n=16, warmup_steps=256,
                                      generator=gen)
    else:
        render = volume_renderer(near, far, args.samples, background=bg, aabb=bounds)
    step = make_nerf_step(field, opt, render, training_rays(train, device), gen, args.batch, sched, hook)

    rows, elapsed, evals = [], 0.0, 0.0
    for i in range(args.steps):
        logs = step(i)
        elapsed += logs["dt"]
        evals += logs["evals_per_ray"]
        done = i + 1
        if done % args.eval_every == 0 or done == args.steps:
            scores = evaluate_views(field, render, test, device, chunk=args.chunk)
            rows.append((done, elapsed, scores["psnr"], scores["ssim"], evals / done,
                         grid.occupied_fraction() if method == "grid" else None))
            print(f"  {method:<10} step {done:>6}  {elapsed:8.1f} s  PSNR {scores['psnr']:6.2f}", flush=True)
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
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "nerfacc"),
                    help="occupancy-grid sampler: nerfacc's (CUDA only), lib's pure-torch one, or auto")
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
    print("\n| sampling | step | train time (s) | test PSNR (dB) | test SSIM | field evals / ray | occupied cells |")
    print("|---|---|---|---|---|---|---|")
    for method, rows in results.items():
        for step, secs, psnr, ssim, epr, occ in rows:
            occupied = "-" if occ is None else f"{occ:.0%}"
            print(f"| {method} | {step} | {secs:.1f} | {psnr:.2f} | {ssim:.3f} | {epr:.1f} | {occupied} |")


if __name__ == "__main__":
    main()
