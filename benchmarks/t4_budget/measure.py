"""How one notebook's full-mode run is costed: parts, their timing on this CPU, the T4 estimate.

A notebook's module (``nb04.py``) lists its expensive **parts** at given sizes: each part is a unit
of work the notebook repeats (one training step, one chunk of rendered rays, one SDS step) and how
many times the notebook runs it. This module times one unit on this CPU and turns it into a T4
estimate:

- ``kind="fp32"`` (our own models, float32): ``t4 = max(cpu * cpu_gflops / T4_FP32_GFLOPS, floor)``.
  ``cpu_gflops`` is this CPU's float32 matmul rate measured in the same run; ``T4_FP32_GFLOPS`` is
  half the T4's 8.1 TFLOPS float32 peak (NVIDIA's data sheet), a sustained rate for large matmuls.
  ``floor`` is the same unit's time at the notebook's *tiny* sizes (the fastest of a few calls): the
  host-side Python and operator-dispatch work, which a GPU does not speed up (Colab's T4 host has 2
  vCPUs, like this one). A unit that is ``1/share`` of a notebook step (a step on a share of its rays,
  so that one timed call stays short here) carries ``floor / share``: the host work is per step.
- ``kind="sd"`` (Stable Diffusion 1.5, fp16 on the T4): ``t4 = cpu * T4_SD_UNET_S / cpu_unet``,
  where ``cpu_unet`` is one classifier-free-guidance UNet call (batch 2, 64x64 latents) of the real
  SD 1.5 architecture timed here in float32, and ``T4_SD_UNET_S`` the published time of that call on
  a Colab T4 in fp16 (1.88 it/s with diffusers, huggingface/diffusers issue #1050).

Both are estimates, not measurements on a T4; ``README.md`` says how a GPU run replaces them.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

T4_FP32_GFLOPS = 4050.0  # half of the T4's 8.1 TFLOPS float32 peak
T4_SD_UNET_S = 1 / 1.88  # s per CFG UNet call of SD 1.x at 512 px, fp16, Colab T4 (diffusers #1050)


@dataclass
class Part:
    """One repeated unit of a notebook's work at given sizes.

    Attributes:
        section: short key the notebook announces it by (``lib.budget.announce(..., "nerf", MODE)``).
        label: what it is, for people ("NeRF training (section 5)").
        count: how many units the notebook runs at these sizes (steps, chunks, views).
        unit: what one unit is ("step", "chunk of 16384 rays").
        build: makes what one unit needs (models, optimizers, tensors of the run's shapes) and
            returns a function that runs one unit.
        key: the settings one unit's cost depends on; timings are reused for an equal key.
        kind: ``"fp32"`` or ``"sd"`` (see the module docstring).
        share: how many units make one step of the notebook (1: the unit is a whole step).
    """

    section: str
    label: str
    count: int
    unit: str
    build: Callable[[], Callable[[], object]]
    key: dict = field(default_factory=dict)
    kind: str = "fp32"
    share: int = 1


def time_unit(run: Callable[[], object], repeats: int = 2, warmup: int = 1, budget_s: float = 60.0,
              fastest: bool = False) -> float:
    """Median (or, with ``fastest``, the least) seconds of ``run()`` over ``repeats`` calls after
    ``warmup`` calls; fewer repeats when the calls already took more than ``budget_s``."""
    for _ in range(warmup):
        t0 = time.perf_counter()
        run()
        first = time.perf_counter() - t0
        if first > budget_s / 2:
            return first  # a slow unit: its first call is a fair estimate
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        if sum(times) > budget_s:
            break
    return min(times) if fastest else statistics.median(times)


def cpu_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """This CPU's float32 matmul rate (GFLOP/s) at the current torch thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time_unit(lambda: a @ b, repeats=repeats)
    return 2 * n ** 3 / t / 1e9


def t4_seconds(part: Part, cpu_s: float, floor_s: float, cpu_gflops: float, cpu_unet_s: float | None) -> float:
    """The T4 estimate of one unit (see the module docstring)."""
    if part.kind == "sd":
        if cpu_unet_s is None:
            raise ValueError(f"part {part.section!r} is Stable Diffusion work but no UNet anchor was timed")
        return cpu_s * T4_SD_UNET_S / cpu_unet_s
    if part.kind != "fp32":
        raise ValueError(f"part {part.section!r}: kind must be 'fp32' or 'sd', got {part.kind!r}")
    return max(cpu_s * cpu_gflops / T4_FP32_GFLOPS, floor_s / part.share)
