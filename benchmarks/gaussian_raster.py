"""Tile rasteriser vs dense oracle: time and peak memory, and render_gaussians in the notebook's cases.

Prints one table: forward and forward+backward time (median of ``--repeats`` runs after one
warm-up; the dense oracle runs once without warm-up where it takes more than a few seconds) and
peak memory of ``rasterize_tiles`` and ``rasterize_dense`` for 1k / 10k / 100k Gaussians at
64^2 / 128^2 / 256^2, and the tile/dense speed ratio. Then the forward+backward time of
``render_gaussians`` for the two cases notebook 06 is sized from.

Scene: one camera (focal = image size, ~53 degree field of view) looking into a frustum filled
with Gaussians at depths 2..8, 3-sigma radii log-uniform in 2..30 pixels at the rendered size,
anisotropic (axis ratios 0.5..1.5), random rotations, opacities U(0.1, 0.9), random colours.

Memory: each configuration runs in its own subprocess; "peak MB" is the growth of that process's
maximum resident set size (``resource.getrusage``) from just before the first render to the end
(torch's CPU allocations are invisible to tracemalloc). The dense oracle is skipped where one
(N x H x W) float32 tensor would exceed 1 GB (it keeps about a dozen of them for backward).

    .venv/bin/python benchmarks/gaussian_raster.py             # all threads
    .venv/bin/python benchmarks/gaussian_raster.py --threads 1
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import torch

SKIP_DENSE_BYTES = 1 << 30  # one (N x H x W) float32 tensor larger than this: no dense run


def make_scene(n: int, size: int, seed: int = 0):
    """(means, quats, scales, opacities, colors, viewmats (1, 4, 4), Ks (1, 3, 3)) of a frustum scene."""
    g = torch.Generator().manual_seed(seed)
    f = float(size)
    z = 2 + 6 * torch.rand(n, generator=g)
    xy = (torch.rand(n, 2, generator=g) - 0.5) * 1.1 * z[:, None]  # slightly wider than the view
    means = torch.cat([xy, z[:, None]], dim=1)
    radius_px = torch.exp(math.log(2) + math.log(15) * torch.rand(n, generator=g))  # 2..30 px
    scales = (radius_px / 3 * z / f)[:, None] * (0.5 + torch.rand(n, 3, generator=g))
    quats = torch.randn(n, 4, generator=g)
    opacities = 0.1 + 0.8 * torch.rand(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    Ks = torch.tensor([[[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]]])
    return means, quats, scales, opacities, colors, torch.eye(4)[None], Ks


def _time(fn, repeats: int):
    """Median (forward s, forward+backward s) of ``repeats`` calls of fn() -> (t_fwd, t_total)."""
    runs = [fn() for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def run_one(kind: str, n: int, size: int, repeats: int) -> dict:
    """One configuration, in this process: timings and the max-RSS growth."""
    from lib.render.gaussians import bin_gaussians, project_gaussians, rasterize_dense, rasterize_tiles

    fn = rasterize_tiles if kind == "tile" else rasterize_dense
    means, quats, scales, opac, colors, viewmats, Ks = make_scene(n, size)
    p = project_gaussians(means, quats, scales, viewmats, Ks, size, size)
    m2 = p.means2d.detach().requires_grad_()
    conics = p.conics.detach().requires_grad_()
    col = colors[None].clone().requires_grad_()
    op = opac[None].clone().requires_grad_()
    z = p.depths.detach().requires_grad_()
    isects = int(bin_gaussians(m2.detach(), z.detach(), p.radii, size, size)[1].sum())

    def once():
        t0 = time.perf_counter()
        rgb, depth, alpha = fn(m2, conics, col, op, z, p.radii, size, size)
        t1 = time.perf_counter()
        (rgb.sum() + depth.sum() + alpha.sum()).backward()
        return t1 - t0, time.perf_counter() - t0

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    first = once()
    if kind == "dense" and first[1] > 5.0:
        fwd, total = first  # slow: one run, no warm-up
    else:
        fwd, total = _time(once, repeats)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    return {"fwd": fwd, "total": total, "peak_mb": rss / 1024, "visible": int((p.radii > 0).sum()),
            "isects": isects}


def render_cases(repeats: int) -> list:
    """render_gaussians forward+backward in notebook 06's two cases."""
    from lib.render.gaussians import render_gaussians

    rows = []
    means, quats, scales, opac, colors, viewmats, Ks = make_scene(3000, 64)
    params = [x.clone().requires_grad_() for x in (means, quats, scales, opac, colors)]

    def train_step():
        t0 = time.perf_counter()
        out = render_gaussians(*params, viewmats, Ks, 64, 64)
        t1 = time.perf_counter()
        out.rgb.mean().backward()
        return t1 - t0, time.perf_counter() - t0

    train_step()
    rows.append(("3DGS step: 3k Gaussians, 1 camera, 64x64", _time(train_step, repeats)))
    scenes = [make_scene(1024, 32, seed=s) for s in range(8)]
    batch = [torch.stack([sc[i] for sc in scenes]).requires_grad_(i < 5) for i in range(7)]

    def splatter_step():
        t0 = time.perf_counter()
        out = render_gaussians(*batch, 32, 32)  # (8, 1, 32, 32, 3)
        t1 = time.perf_counter()
        out.rgb.mean().backward()
        return t1 - t0, time.perf_counter() - t0

    splatter_step()
    rows.append(("Splatter Image: 8 images 32x32, 1024 Gaussians each", _time(splatter_step, repeats)))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    ap.add_argument("--one", nargs=3, metavar=("KIND", "N", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        kind, n, size = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(run_one(kind, n, size, args.repeats)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU")
    print("| Gaussians | image | visible | tile isects | tile fwd ms | tile fwd+bwd ms | tile peak MB "
          "| dense fwd ms | dense fwd+bwd ms | dense peak MB | dense/tile (fwd+bwd) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.counts:
        for size in args.sizes:
            res = {}
            for kind in ("tile", "dense"):
                if kind == "dense" and n * size * size * 4 > SKIP_DENSE_BYTES:
                    continue
                cmd = [sys.executable, __file__, "--one", kind, str(n), str(size), "--repeats", str(args.repeats)]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    res[kind] = None
                    print(f"<!-- {kind} {n} {size} failed: {out.stderr.strip().splitlines()[-1:]} -->")
                else:
                    res[kind] = json.loads(out.stdout.strip().splitlines()[-1])
            t = res["tile"]
            row = f"| {n:,} | {size}² | {t['visible']:,} | {t['isects']:,} | {1000 * t['fwd']:.0f} | " \
                  f"{1000 * t['total']:.0f} | {t['peak_mb']:.0f} | "
            d = res.get("dense")
            if d:
                row += f"{1000 * d['fwd']:.0f} | {1000 * d['total']:.0f} | {d['peak_mb']:.0f} | " \
                       f"{d['total'] / t['total']:.1f}x |"
            elif "dense" in res:
                row += "failed | | | |"
            else:
                row += f"skipped: one N×H×W float32 tensor = {n * size * size * 4 / 2**30:.1f} GB | | | |"
            print(row, flush=True)
    print("\nrender_gaussians (projection + SH-free colours + tile rasteriser), forward+backward:")
    for name, (fwd, total) in render_cases(args.repeats):
        print(f"- {name}: forward {1000 * fwd:.0f} ms, forward+backward {1000 * total:.0f} ms")


if __name__ == "__main__":
    main()
