"""Estimate each notebook's full-mode compute on a Colab T4, from unit timings on this CPU.

Prints one table per notebook and size choice: every expensive part (training steps, rendered
chunks, SDS steps), how many units the notebook runs, one unit's time on this CPU at those sizes,
the same unit at tiny sizes (the host-side floor), and the T4 estimate (see ``measure.py`` for the
scaling and its sources). ``--write`` stores the result in ``lib/t4_budget.json``, which the
notebooks print before their long cells (``lib.budget``) and ``tests/test_t4_budget.py`` checks
against the notebooks' current settings.

    .venv/bin/python -m benchmarks.t4_budget                       # all notebooks, t4 and long
    .venv/bin/python -m benchmarks.t4_budget --nb 04 --sizes t4    # one notebook, one size
    .venv/bin/python -m benchmarks.t4_budget --write               # and store lib/t4_budget.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib
import json
import os
import platform
import sys
from pathlib import Path

import torch

from benchmarks.t4_budget.measure import (T4_FP32_GFLOPS, T4_SD_UNET_S, cpu_matmul_gflops, t4_seconds,
                                          time_unit)
from lib.budget import BUDGET_FILE, BUDGET_FORMAT
from lib.fileio import atomic_write
from lib.report import format_table
from tools.nbrun import find_notebooks
from tools.nbsizes import notebook_settings

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = tuple(p.name[:2] for p in find_notebooks())  # "01" .. "09"


def notebook_path(nb: str) -> Path:
    found = find_notebooks(f"{nb}_")
    if len(found) != 1:
        raise SystemExit(f"error: expected one notebooks/{nb}_*.ipynb, found {len(found)}")
    return found[0]


def measure(nb: str, sizes: str, cache: dict, env: dict, repeats: int) -> dict:
    """Time every part of notebook ``nb`` at ``sizes``; returns the budget entry."""
    module = importlib.import_module(f"benchmarks.t4_budget.nb{nb}")
    path = notebook_path(nb)
    settings = notebook_settings(path, sizes, data="real")
    tiny = module.parts(notebook_settings(path, "tiny", data="real"), "tiny")
    rows = []
    for i, part in enumerate(module.parts(settings, sizes)):
        key = (nb, part.section, part.label, json.dumps(part.key, sort_keys=True))
        if key not in cache:
            print(f"  {nb} {sizes}: timing {part.section} ({part.unit}) ...", file=sys.stderr, flush=True)
            cache[key] = time_unit(part.build(), repeats=repeats)
            gc.collect()
        cpu_s = cache[key]
        floor_s = 0.0
        if part.kind == "fp32":
            fkey = (nb, i, "tiny")  # the parts come in the same order at every size
            if fkey not in cache:
                cache[fkey] = time_unit(tiny[i].build(), repeats=max(repeats, 5), fastest=True)
                gc.collect()
            floor_s = cache[fkey]
        t4_s = t4_seconds(part, cpu_s, floor_s, env["cpu_matmul_gflops"], env.get("cpu_sd_unet_cfg_seconds"))
        rows.append({"section": part.section, "label": part.label, "count": int(part.count), "unit": part.unit,
                     "kind": part.kind, "share": part.share, "cpu_seconds": round(cpu_s, 4), "floor_seconds": round(floor_s, 5),
                     "t4_seconds": round(t4_s, 5), "minutes": round(part.count * t4_s / 60, 2)})
    return {"settings": settings, "minutes": round(sum(r["minutes"] for r in rows), 1), "parts": rows,
            "measured": _dt.date.today().isoformat(), **_run_env(env, module)}


def _run_env(env: dict, module) -> dict:
    """What the entry's scaling used: this run's CPU rate (and SD anchor, for a notebook with SD parts)."""
    keys = ["cpu_matmul_gflops", "torch_threads"] + (["cpu_sd_unet_cfg_seconds"] if getattr(module, "USES_SD", False)
                                                     else [])
    return {k: env[k] for k in keys}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.t4_budget", description=__doc__.split("\n")[0])
    ap.add_argument("--nb", nargs="*", default=list(NOTEBOOKS), help="notebooks (01 .. 09)")
    ap.add_argument("--sizes", nargs="*", default=["t4", "long"], choices=["t4", "long"])
    ap.add_argument("--repeats", type=int, default=2, help="timed calls per unit (after one warm-up)")
    ap.add_argument("--write", action="store_true", help=f"store the result in {BUDGET_FILE.relative_to(REPO)}")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    env = {"cpu_matmul_gflops": round(cpu_matmul_gflops(), 1), "torch_threads": torch.get_num_threads(),
           "t4_fp32_gflops": T4_FP32_GFLOPS, "t4_sd_unet_cfg_seconds": round(T4_SD_UNET_S, 4)}
    wants_sd = any(getattr(importlib.import_module(f"benchmarks.t4_budget.nb{nb}"), "USES_SD", False)
                   for nb in args.nb)
    if wants_sd:
        from benchmarks.t4_budget.sd import unet_cfg_call

        print("timing the SD 1.5 UNet anchor (real architecture, random weights, float32) ...", file=sys.stderr)
        env["cpu_sd_unet_cfg_seconds"] = round(time_unit(unet_cfg_call(), repeats=1), 3)
        gc.collect()
    print(f"this CPU: {env['cpu_matmul_gflops']:.0f} GFLOP/s float32 matmul ({env['torch_threads']} threads); "
          f"T4 assumed {T4_FP32_GFLOPS:.0f} GFLOP/s float32"
          + (f"; SD UNet call {env['cpu_sd_unet_cfg_seconds']:.1f} s here vs {T4_SD_UNET_S:.2f} s on a T4"
             if wants_sd else ""))
    cache: dict = {}
    result: dict = {}
    for nb in args.nb:
        for sizes in args.sizes:
            entry = measure(nb, sizes, cache, env, args.repeats)
            result.setdefault(nb, {})[sizes] = entry
            print(f"\nnotebook {nb}, SIZES={sizes!r}: about {entry['minutes']:.1f} min on a T4")
            print(format_table(entry["parts"], ["section", "count", "unit", "cpu_seconds", "floor_seconds",
                                                "t4_seconds", "minutes"], digits=3))
    if args.write:
        old = json.loads(BUDGET_FILE.read_text()) if BUDGET_FILE.exists() else {"notebooks": {}}
        notebooks = old.get("notebooks", {})
        for nb, by_size in result.items():
            notebooks.setdefault(nb, {}).update(by_size)
        out = {"format": BUDGET_FORMAT, "command": "python -m benchmarks.t4_budget --write",
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__,
               "t4_fp32_gflops": T4_FP32_GFLOPS, "t4_sd_unet_cfg_seconds": round(T4_SD_UNET_S, 4),
               "notebooks": dict(sorted(notebooks.items()))}
        atomic_write(BUDGET_FILE, lambda tmp: tmp.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n"))
        print(f"\nwrote {BUDGET_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
