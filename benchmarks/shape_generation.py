"""How long the procedural data takes to make: every registry shape, the toy animal, and the
solid voxelisation of a chair (what a smoke run pays before it trains).

    .venv/bin/python benchmarks/shape_generation.py [--repeats 3] [--seed 0]

Each row is the median of ``--repeats`` runs (after one warm-up), in milliseconds, with the size
of what was made.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from lib.data.shapes import CATEGORIES, make_shape
from lib.data.toy_animal import toy_animal
from lib.mesh import normalize_mesh
from lib.voxels import voxelize


def median_ms(fn, repeats: int):
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"# shape_generation on {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}\n\n| what | ms | size |\n|---|---|---|")
    for category in CATEGORIES:
        ms, m = median_ms(lambda c=category: make_shape(c, args.seed), args.repeats)
        print(f"| {category} | {ms:.1f} | {m.num_faces} faces |")
    ms, m = median_ms(lambda: toy_animal(args.seed), args.repeats)
    print(f"| toy_animal | {ms:.1f} | {m.num_faces} faces |")
    chair = normalize_mesh(make_shape("chair", args.seed))
    for res in (32, 64):
        ms, occ = median_ms(lambda r=res: voxelize(chair, r), args.repeats)
        print(f"| voxelize chair {res}^3 | {ms:.1f} | {int(occ.sum())} voxels |")


if __name__ == "__main__":
    main()
