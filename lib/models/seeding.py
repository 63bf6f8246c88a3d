"""Seeds by argument: every model of ``lib.models`` takes ``seed=`` for its initial weights.

``@seeded`` on a module's ``__init__`` adds the keyword ``seed``: an int draws the initial weights
from the CPU random stream seeded with it, inside ``torch.random.fork_rng``, so the global stream is
left exactly as it was (a model built with ``seed=0`` is the same wherever it is built, and building
it changes nothing else); ``None`` draws from the global stream, as ``nn.Module`` layers do.

    >>> from torch import nn
    >>> class Tiny(nn.Module):
    ...     @seeded
    ...     def __init__(self, width: int):
    ...         super().__init__()
    ...         self.layer = nn.Linear(2, width)
    >>> state = torch.get_rng_state()
    >>> bool(torch.equal(Tiny(3, seed=1).layer.weight, Tiny(3, seed=1).layer.weight))
    True
    >>> bool(torch.equal(torch.get_rng_state(), state))  # the global stream was not touched
    True
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable, Optional

import torch


def seeded(init: Callable) -> Callable:
    """Decorate an ``nn.Module.__init__`` with the keyword argument ``seed`` (module docstring)."""

    @functools.wraps(init)
    def wrapper(self, *args, seed: Optional[int] = None, **kwargs):
        if seed is None:
            return init(self, *args, **kwargs)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"{type(self).__name__}: `seed` must be an int or None, got {seed!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return init(self, *args, **kwargs)

    signature = inspect.signature(init)  # so that help() and editors show ``seed``
    params = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    params.append(inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Optional[int]"))
    params += [p for p in signature.parameters.values() if p.kind == inspect.Parameter.VAR_KEYWORD]
    wrapper.__signature__ = signature.replace(parameters=params)
    wrapper.seeded = True  # for tests/test_model_seeds.py
    return wrapper
