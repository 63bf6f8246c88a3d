"""Training plumbing: seeds and devices (the training loop and checkpoints grow here).

No hidden global state: ``seed_everything`` returns the generator to pass on, and
``resolve_device`` turns the notebook's ``DEVICE`` parameter into a ``torch.device``.
"""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (for library code that draws from global RNGs) and return a
    fresh ``torch.Generator`` seeded with ``seed`` for the notebook's own random draws."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` -> checked as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"DEVICE={device!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return dev
