"""Training plumbing: seeds, devices, atomic checkpoints and the one training loop, ``fit``.

No hidden global state: ``seed_everything`` returns the generator to pass on, and
``resolve_device`` turns the notebook's ``DEVICE`` parameter into a ``torch.device``.

Example:
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> def step(i):
    ...     x = torch.randn(16, 2, generator=gen)
    ...     loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
    ...     opt.zero_grad(); loss.backward(); opt.step()
    ...     return {"loss": loss.item()}
    >>> hist = fit(step, 50, {"model": model, "opt": opt, "gen": gen}, progress=False)
    >>> hist[-1]["loss"] < hist[0]["loss"]
    True
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from lib.fileio import atomic_write


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


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, payload: dict) -> Path:
    """``torch.save`` atomically (``lib.fileio.atomic_write``): a crash mid-write never leaves a
    truncated checkpoint where the previous good one was."""
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`; errors name the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated or not a torch file
        raise ValueError(f"checkpoint {path} could not be read ({type(e).__name__}: {e}); "
                         "delete it to start training from scratch") from e


def _get_state(obj):
    return obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()


def _set_state(obj, state) -> None:
    if isinstance(obj, torch.Generator):
        obj.set_state(state)
    else:
        obj.load_state_dict(state)


# --------------------------------------------------------------------------- the loop
def fit(step_fn: Callable[[int], dict], n_steps: int, state: dict, checkpoint=None,
        checkpoint_every: int = 100, desc: str = "train", progress: bool = True,
        stop_after: Optional[int] = None, config: Optional[dict] = None) -> list:
    """The one training loop: call ``step_fn(step)`` for ``step`` in ``[start, n_steps)``.

    ``step_fn`` does the work of one step (sample a batch from its generator, forward, backward,
    optimizer step) and returns a dict of floats to log (e.g. ``{"loss": 0.3}``). ``fit`` adds
    the bookkeeping: a progress bar, the history, and checkpoints that make training resumable.

    Args:
        step_fn: ``step -> {name: float}``.
        n_steps: total number of steps (including those done before a resume).
        state: everything whose state must survive a restart, by name: modules, optimizers,
            schedulers (``state_dict``) and ``torch.Generator``s (``get_state``).
        checkpoint: path of the checkpoint file, or None for none. When it exists, training
            resumes from it (its ``state`` entries must match ``state``'s names).
        checkpoint_every: steps between checkpoints (one is always written at the end).
        stop_after: stop after this many steps *of this call* (after checkpointing), as if the
            process had been killed; used by tests and to split long runs.
        config: a dict saved in the checkpoint (e.g. the notebook's settings), for the record.
    Returns:
        history: a list with one ``{"step": s, **metrics}`` dict per step, resumed ones included.
    """
    from tqdm.auto import tqdm

    history, start = [], 0
    if checkpoint is not None and Path(checkpoint).exists():
        ckpt = load_checkpoint(checkpoint)
        missing = set(state) ^ set(ckpt["state"])
        if missing:
            raise ValueError(f"checkpoint {checkpoint} holds {sorted(ckpt['state'])} but `state` has "
                             f"{sorted(state)}; delete the checkpoint or pass matching names")
        for name, obj in state.items():
            _set_state(obj, ckpt["state"][name])
        torch.set_rng_state(ckpt["torch_rng"])
        history, start = ckpt["history"], ckpt["step"]
    end = n_steps if stop_after is None else min(n_steps, start + stop_after)

    def save(step):
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"step": step, "history": history, "config": config or {},
                                         "state": {k: _get_state(v) for k, v in state.items()},
                                         "torch_rng": torch.get_rng_state()})

    bar = tqdm(range(start, end), desc=desc, initial=start, total=n_steps, disable=not progress,
               mininterval=1.0)
    for step in bar:
        logs = {k: float(v) for k, v in step_fn(step).items()}
        if any(not np.isfinite(v) for v in logs.values()):
            save(step)  # keep what was learned so far
            raise FloatingPointError(f"step {step}: non-finite metrics {logs}; the last good state is in "
                                     f"{checkpoint} (lower the learning rate or check the inputs)")
        history.append({"step": step, **logs})
        bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
        if (step + 1) % checkpoint_every == 0 and step + 1 < end:
            save(step + 1)
    bar.close()
    save(end)
    return history
