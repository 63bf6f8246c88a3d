"""Training plumbing: seeds, devices, safe checkpoints and the one training loop, ``fit``.

No hidden global state: ``seed_everything`` returns the generator to pass on, and
``resolve_device`` turns the notebook's ``DEVICE`` parameter into a ``torch.device``.

A run is named by its settings: ``fit(..., checkpoint="out/voxels.pt", config=...)`` writes
``out/voxels-<id>.pt`` (:func:`run_checkpoint`), so other settings never reuse or overwrite it.
Checkpoints load with ``weights_only=True``; an unreadable or incompatible one is renamed aside.

Example:
    >>> import tempfile
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> def step(i):
    ...     x = torch.randn(16, 2, generator=gen)
    ...     loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
    ...     opt.zero_grad()
    ...     loss.backward()
    ...     opt.step()
    ...     return {"loss": loss.item()}
    >>> ckpt = f"{tempfile.mkdtemp()}/linear.pt"
    >>> hist = fit(step, 50, {"model": model, "opt": opt, "gen": gen}, checkpoint=ckpt,
    ...            config={"lr": 0.1, "batch": 16, "seed": 0}, progress=False)  # doctest: +ELLIPSIS
    train: new run .../linear-2c34199a.pt (0 other runs of linear kept untouched)
    >>> hist[-1]["loss"] < hist[0]["loss"]
    True
    >>> run_checkpoint(ckpt, {"seed": 0, "batch": 16, "lr": 1e-1}, 50, ["opt", "gen", "model"]).name
    'linear-2c34199a.pt'
"""
from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import math
import random
import re
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from lib.fileio import atomic_write

FORMAT_VERSION = 2  # bump when the payload's layout changes; older files are then kept aside


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


# --------------------------------------------------------------------------- run names
def _plain(value, where: str):
    """``value`` as canonical JSON values (tuples as lists); ValueError for anything else."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError(f"{where} is NaN; a setting must equal itself")
        return float(value)  # json writes repr(float): 1e-3 and 0.001 are the same setting
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise ValueError(f"{where} must be a plain value (None, bool, int, float, str, or a list or a "
                     f"str-keyed dict of those), got {type(value).__name__} {value!r:.60}; "
                     "pass e.g. float(x) or str(path)")


@contextlib.contextmanager
def global_stream_from(generator: torch.Generator, device="cpu"):
    """Inside the block, layers that draw from torch's global random stream (dropout) draw from a
    stream seeded by one draw of ``generator``; the global stream is restored afterwards. A training
    step run inside it is determined by its generator alone (which ``fit`` checkpoints), not by what
    else the process drew before.

    >>> g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    >>> with global_stream_from(g1):
    ...     a = torch.rand(2)
    >>> _ = torch.rand(3)  # the global stream moves on ...
    >>> with global_stream_from(g2):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b))  # ... but the block's draws depend on the generator only
    True
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    device = torch.device(device)
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class Stopwatch:
    """Wall-clock seconds of a ``with`` block on ``device``, in ``.seconds``. On CUDA the queue is
    drained before the clock starts and before it stops: kernels run asynchronously, so an
    unsynchronised time would be the time to launch them.

    >>> with Stopwatch("cpu") as watch:
    ...     total = sum(range(1000))
    >>> watch.seconds > 0
    True
    """

    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        self.seconds = float("nan")
        self._start = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> "Stopwatch":
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        self._sync()
        self.seconds = time.perf_counter() - self._start
        return False


class RunningLog:
    """A step function's log lines: every ``every`` steps and at the last, ``log`` gets one line with the
    mean of each listed number over the steps since the previous line, and the seconds so far.

    Args:
        n_steps: the run's length. every: steps per line. log: called with each line (None: silent).
        formats: ``{key: format spec}`` of the numbers in each row to show, in order.

    >>> lines = []
    >>> running = RunningLog(4, 2, lines.append, {"loss": ".2f"})
    >>> for step in range(4):
    ...     running(step, {"loss": float(step)})
    >>> [line.rsplit("  ", 1)[0] for line in lines]
    ['step 2/4  loss 0.50', 'step 4/4  loss 2.50']
    """

    def __init__(self, n_steps: int, every: int, log: Optional[Callable[[str], None]], formats: dict):
        if every < 1:
            raise ValueError(f"RunningLog: `every` must be >= 1 step, got {every}")
        self.n_steps, self.every, self.log, self.formats = int(n_steps), int(every), log, dict(formats)
        self.rows: list = []
        self.start = time.perf_counter()

    def __call__(self, step: int, row: dict) -> None:
        """Record ``row`` (a dict with every key of ``formats``) of 0-based ``step``; log when due."""
        if self.log is None:
            return
        self.rows.append(row)
        if (step + 1) % self.every and step + 1 != self.n_steps:
            return
        means = "  ".join(f"{key} {sum(r[key] for r in self.rows) / len(self.rows):{spec}}"
                          for key, spec in self.formats.items())
        width = len(str(self.n_steps))
        self.log(f"step {step + 1:{width}d}/{self.n_steps}  {means}  {time.perf_counter() - self.start:.1f} s")
        self.rows.clear()


def run_id(config: dict, n_steps: int, state_names) -> str:
    """8 hex digits naming a run: sha256 of the canonical JSON (sorted keys) of
    ``{"config": config, "n_steps": n_steps, "state": sorted(state_names)}``."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict of the run's settings, got {type(config).__name__}")
    key = {"config": _plain(config, "config"), "n_steps": int(n_steps), "state": sorted(state_names)}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def run_checkpoint(checkpoint, config: dict, n_steps: int, state_names) -> Path:
    """The file ``fit`` uses for this run: ``<stem>-<run_id><suffix>`` beside ``checkpoint``
    (``out/voxels.pt`` -> ``out/voxels-1a2b3c4d.pt``). Pure: creates and reads nothing."""
    p = Path(checkpoint)
    return p.with_name(f"{p.stem}-{run_id(config, n_steps, state_names)}{p.suffix}")


def _move_aside(path: Path, why: str) -> Path:
    """Rename ``path`` to ``<path>.<why>-<UTC time>`` (a free name); the file is never deleted."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside, n = path.with_name(f"{path.name}.{why}-{stamp}"), 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.{why}-{stamp}-{n}"), n + 1
    return path.rename(aside)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, payload: dict) -> Path:
    """``torch.save`` atomically (``lib.fileio.atomic_write``): never a truncated file."""
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)``: tensors, numbers, strings and
    lists/dicts of those only, so a shared file cannot run code. ValueError names the file and
    the reason (truncated, not a torch file, or holding a pickled object that is refused)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        if "weights only load failed" in str(e).lower():
            raise ValueError(f"checkpoint {path} was refused: it holds a pickled object that "
                             "torch.load(weights_only=True) does not allow (loading it could run code)") from e
        raise ValueError(f"checkpoint {path} could not be read ({_brief(e)})") from e


def _brief(e: Exception) -> str:  # "RuntimeError: the message on one line, at most 240 characters"
    text = " ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
    return f"{type(e).__name__}: {text[:240]}{'...' * (len(text) > 240)}"


def _get_state(obj):
    return obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()


def _set_state(obj, state) -> None:
    (obj.set_state if isinstance(obj, torch.Generator) else obj.load_state_dict)(state)


def _problem(ckpt, config: dict, n_steps: int, names) -> Optional[str]:
    """Why ``ckpt`` cannot continue this run (None when it can)."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        return f"format version {found!r}, this code writes {FORMAT_VERSION}"
    if not isinstance(ckpt.get("state"), dict) or set(ckpt["state"]) != set(names):
        return f"state names {sorted(ckpt.get('state') or [])}, this run has {sorted(names)}"
    if ckpt.get("config") != config:
        return f"config {ckpt.get('config')!r}, this run has {config!r}"
    step, rows = ckpt.get("step"), len(h) if isinstance(h := ckpt.get("history"), list) else -1
    if not isinstance(step, int) or not 0 <= step <= n_steps or rows != step:
        return f"step {step!r} with {rows} history rows, n_steps={n_steps}"
    return None


def _resume(path: Path, state: dict, config: dict, n_steps: int):
    """Load ``path`` into ``state``: ``(ckpt, None)``, or ``(None, (kind, message))`` with every
    object in ``state`` and the torch RNG as they were before."""
    try:
        ckpt = load_checkpoint(path)
    except ValueError as e:
        return None, ("unreadable", str(e))
    reason = _problem(ckpt, config, n_steps, state)
    if reason is not None:
        return None, ("incompatible", f"checkpoint {path} is incompatible ({reason})")
    snapshot = {name: copy.deepcopy(_get_state(obj)) for name, obj in state.items()}
    rng = torch.get_rng_state()
    loading = None
    try:
        for loading, obj in state.items():
            _set_state(obj, ckpt["state"][loading])
        loading = "torch_rng"
        torch.set_rng_state(ckpt["torch_rng"])
    except Exception as e:
        for name, obj in state.items():
            _set_state(obj, snapshot[name])
        torch.set_rng_state(rng)
        return None, ("incompatible", f"checkpoint {path} is incompatible: loading '{loading}' "
                                      f"failed ({_brief(e)})")
    return ckpt, None


# --------------------------------------------------------------------------- the loop
def fit(step_fn: Callable[[int], dict], n_steps: int, state: dict, checkpoint=None,
        checkpoint_every: int = 100, desc: str = "train", progress: bool = True,
        stop_after: Optional[int] = None, config: Optional[dict] = None) -> list:
    """The one training loop: call ``step_fn(step)`` for ``step`` in ``[start, n_steps)``.

    ``step_fn`` does one step (sample a batch from its generator, forward, backward, optimizer
    step) and returns floats to log (``{"loss": 0.3}``); ``fit`` keeps the progress bar, the
    history and checkpoints that make training resumable.

    Args:
        step_fn: ``step -> {name: float}``.
        n_steps: total number of steps (including those done before a resume).
        state: everything whose state must survive a restart, by name: modules, optimizers,
            schedulers (``state_dict``) and ``torch.Generator``s (``get_state``).
        checkpoint: a path such as ``f"{RUN_DIR}/voxels.pt"``, or None for none. The run's file
            is ``run_checkpoint(checkpoint, config, n_steps, state)``; when it exists, training
            resumes from it (or reuses it when finished). One printed line says which.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        desc: label of the progress bar and of the printed line.
        stop_after: stop after this many steps *of this call* (after checkpointing), as if the
            process had been killed; used by tests and to split long runs.
        config: required with ``checkpoint``: the settings that shape the run (sizes, steps,
            learning rates, loss weights, seed, mode, data identity) as plain JSON values.
    Returns:
        history: a list with one ``{"step": s, **metrics}`` dict per step, resumed ones included.
    """
    from tqdm.auto import tqdm

    if checkpoint is not None and config is None:
        raise ValueError(f"fit(checkpoint={str(checkpoint)!r}) needs config=: a dict of the settings "
                         "that shape this run (e.g. config=dict(steps=..., lr=..., seed=SEED, "
                         "smoke=SMOKE)), so that other settings train a new run instead of reusing it")
    config = _plain(config, "config") if config is not None else {}
    path = None if checkpoint is None else run_checkpoint(checkpoint, config, n_steps, state)
    history, start, resumed = [], 0, False
    if path is not None:
        note, ckpt = "", None
        if path.exists():
            ckpt, failed = _resume(path, state, config, n_steps)
            if failed:
                note = f"{failed[1]}; kept it as {_move_aside(path, failed[0]).name}; "
        if ckpt is not None:
            history, start, resumed = ckpt["history"], ckpt["step"], True
            print(f"{desc}: reusing the finished run {path} ({start}/{n_steps} steps; change a setting "
                  "in config to train anew)" if start == n_steps
                  else f"{desc}: resuming {path} at step {start}/{n_steps}")
        else:
            stem = Path(checkpoint).stem
            same = re.compile(rf"{re.escape(stem)}-[0-9a-f]{{8}}{re.escape(path.suffix)}")
            n = sum(bool(same.fullmatch(p.name)) for p in path.parent.glob("*") if p != path)
            print(f"{desc}: {note}new run {path} ({n} other run{'s' * (n != 1)} of {stem} kept untouched)")
    end = n_steps if stop_after is None else min(n_steps, start + stop_after)

    def save(step):
        if path is not None:
            save_checkpoint(path, {"format": FORMAT_VERSION, "step": step, "history": history,
                                   "config": config, "torch_rng": torch.get_rng_state(),
                                   "state": {k: _get_state(v) for k, v in state.items()}})

    bar = tqdm(range(start, end), desc=desc, initial=start, total=n_steps, disable=not progress,
               mininterval=1.0)
    for step in bar:
        logs = {k: float(v) for k, v in step_fn(step).items()}
        if any(not math.isfinite(v) for v in logs.values()):
            save(step)  # keep what was learned so far
            kept = f"; the last good state is in {path}" if path else ""
            raise FloatingPointError(f"step {step}: non-finite metrics {logs}{kept} "
                                     "(lower the learning rate or check the inputs)")
        history.append({"step": step, **logs})
        bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
        if (step + 1) % checkpoint_every == 0 and step + 1 < end:
            save(step + 1)
    bar.close()
    if end > start or not resumed:
        save(end)
    return history
