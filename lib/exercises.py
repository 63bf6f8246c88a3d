"""Exercises: a student's function checked as they go, in one friendly line, never a traceback.

An exercise is a function the student writes in a notebook, between nbgrader's markers::

    def project_point(X, K):
        ### BEGIN SOLUTION
        x = K @ X
        return x[:2] / x[2]
        ### END SOLUTION

The student version of the notebook (``python -m tools.student``) replaces what lies between the
markers with nbgrader's stub (``raise NotImplementedError()``), so the cell still runs. The cell after
it calls :func:`check`, which runs the function on a test input, compares what came back with what
``lib`` computes, and prints one line, for example::

    ✓ 01.1 project a point: right.
    ✗ 01.1 project a point: not written yet (it still raises NotImplementedError). Hint: divide by z.
    ✗ 01.1 project a point: expected shape (4, 2), got (4, 3). Hint: divide by z.
    ✗ 01.1 project a point: wrong values: off by up to 0.31 (at index (2, 0)). Hint: divide by z.

The cells after an exercise use ``lib``'s version, so a student stuck on one exercise can run the rest.
:func:`results` returns what was checked so far (the tests read the printed lines instead).

Example:
    >>> import torch
    >>> check("0.1 double", lambda: 2 * torch.ones(3), torch.full((3,), 2.0), hint="multiply by 2")
    ✓ 0.1 double: right.
    True
    >>> def todo():
    ...     raise NotImplementedError()
    >>> check("0.2 double", todo, torch.full((3,), 2.0), hint="multiply by 2")
    ✗ 0.2 double: not written yet (it still raises NotImplementedError). Hint: multiply by 2
    False
    >>> check("0.3 double", lambda: torch.ones(3), torch.full((3,), 2.0), hint="multiply by 2")
    ✗ 0.3 double: wrong values: off by up to 1 (at index (0,)). Hint: multiply by 2
    False
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from lib.checks import shape_of

PASS, FAIL = "✓", "✗"
_RESULTS: Dict[str, bool] = {}


def check(name: str, attempt: Callable[[], Any], expected: Any = None, *, hint: str,
          test: Optional[Callable[[Any], Optional[str]]] = None, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Run ``attempt()`` (a call of the student's function on a test input) and print one line.

    Args:
        name: "<notebook>.<number> <what>", e.g. "01.1 project a point"; printed, and the key of
            :func:`results`.
        attempt: no-argument callable that calls the student's function.
        expected: what a right answer returns (a tensor, number, bool, string, or a tuple/list of
            those), compared with tolerances ``atol`` + ``rtol`` for floats; None: not compared.
        hint: said after every complaint.
        test: ``test(value) -> None`` when right, else the complaint (a property that has no single
            right answer, e.g. "the same for every order of the points").
    Returns:
        True when right. Never raises for the student's mistakes: each becomes the one line.
    """
    try:
        value = attempt()
    except NotImplementedError:
        problem = "not written yet (it still raises NotImplementedError)"
    except Exception as err:  # noqa: BLE001 - any error in the student's code becomes the one line
        problem = f"your function raised {type(err).__name__}: {_one_line(str(err))}"
    else:
        problem = None if expected is None else compare(value, expected, atol, rtol)
        if problem is None and test is not None:
            try:
                problem = test(value)
            except Exception as err:  # noqa: BLE001
                problem = f"checking it raised {type(err).__name__}: {_one_line(str(err))}"
    _RESULTS[name] = problem is None
    print(f"{PASS} {name}: right." if problem is None else f"{FAIL} {name}: {problem}. Hint: {hint}")
    return problem is None


def results() -> Dict[str, bool]:
    """{exercise name: passed} of every :func:`check` so far in this process (the latest per name)."""
    return dict(_RESULTS)


def compare(value: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-4, where: str = "") -> Optional[str]:
    """None when ``value`` matches ``expected`` (see :func:`check`), else what differs, in words."""
    at = f" (item {where})" if where else ""
    if isinstance(expected, (tuple, list)):
        if not isinstance(value, (tuple, list)) or len(value) != len(expected):
            return f"expected {len(expected)} values (a {type(expected).__name__}){at}, got {_describe(value)}"
        for i, (v, e) in enumerate(zip(value, expected)):
            problem = compare(v, e, atol, rtol, f"{where}{i}" if not where else f"{where}.{i}")
            if problem is not None:
                return problem
        return None
    if isinstance(expected, (bool, str)) or expected is None:
        return None if value == expected else f"expected {expected!r}{at}, got {_describe(value)}"
    if isinstance(expected, (int, float)) and not torch.is_tensor(value):
        if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
            return f"expected a number{at}, got {_describe(value)}"
        expected = torch.tensor(float(expected))
        value = torch.tensor(float(value))
    expected = torch.as_tensor(expected)
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not torch.is_tensor(value):
        return f"expected a tensor of shape {tuple(expected.shape)}{at}, got {_describe(value)}"
    if tuple(value.shape) != tuple(expected.shape):
        return f"expected shape {tuple(expected.shape)}{at}, got {tuple(value.shape)}"
    if expected.dtype == torch.bool or not expected.is_floating_point():
        wrong = (value.detach().cpu() != expected.cpu())
        if bool(wrong.any()):
            index = tuple(int(i) for i in wrong.nonzero()[0])
            return f"wrong values{at}: {int(wrong.sum())} of {wrong.numel()} differ (first at index {index})"
        return None
    v, e = value.detach().cpu().double(), expected.detach().cpu().double()
    if not bool(torch.isfinite(v).all()):
        return f"the result{at} holds NaN or inf"
    err = (v - e).abs() - (atol + rtol * e.abs())
    if bool((err > 0).any()):
        index = tuple(int(i) for i in np.unravel_index(int(err.argmax()), tuple(err.shape)))
        off = (v - e).abs().max().item()
        return f"wrong values{at}: off by up to {off:.3g} (at index {index})"
    return None


def _describe(value) -> str:
    if torch.is_tensor(value) or isinstance(value, np.ndarray):
        return f"a tensor of shape {tuple(value.shape)}"
    if value is None:
        return "None (does the function end with `return`?)"
    return f"{type(value).__name__} {_one_line(repr(value))}" if isinstance(value, (int, float, str, bool)) \
        else shape_of(value)


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
