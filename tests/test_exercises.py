"""lib.exercises: one friendly line for every way a student's function can be wrong, never a traceback."""
import math
import re

import numpy as np
import pytest
import torch

from lib.exercises import check, compare, results


def _line(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


@pytest.mark.parametrize("attempt, message", [
    (lambda: (_ for _ in ()).throw(NotImplementedError()), "not written yet"),
    (lambda: torch.ones(2, 3) @ torch.ones(2, 3), "your function raised RuntimeError: mat1 and mat2"),
    (lambda: None, r"got None \(does the function end with `return`\?\)"),
    (lambda: torch.ones(4), r"expected shape \(3,\), got \(4,\)"),
    (lambda: torch.tensor([1.0, 2.0, 4.0]), r"wrong values: off by up to 1 \(at index \(2,\)\)"),
    (lambda: torch.tensor([1.0, float("nan"), 3.0]), "NaN or inf"),
    (lambda: [1.0, 2.0, 3.0], r"expected a tensor of shape \(3,\), got list"),
])
def test_each_mistake_is_one_friendly_line(attempt, message, capsys):
    assert check("00.1 count", attempt, torch.tensor([1.0, 2.0, 3.0]), hint="one, two, three") is False
    line = _line(capsys)
    assert line.startswith("✗ 00.1 count: ") and line.endswith("Hint: one, two, three")
    assert re.search(message, line), line
    assert results()["00.1 count"] is False


def test_right_answers_pass_in_every_form(capsys):
    assert check("00.2 tuple", lambda: (torch.ones(2), 3.0, True), (torch.ones(2) + 1e-7, 3.0, True), hint="h")
    assert _line(capsys) == "✓ 00.2 tuple: right."
    assert check("00.3 numpy", lambda: np.arange(3.0), torch.arange(3.0), hint="h")
    assert check("00.4 ints", lambda: torch.tensor([1, 2]), torch.tensor([1, 2]), hint="h")
    assert results()["00.2 tuple"] is True


def test_tuples_say_which_item_is_wrong_and_integers_count_mismatches():
    assert compare((torch.ones(2), torch.zeros(2)), (torch.ones(2), torch.ones(2))).startswith("wrong values (item 1)")
    assert "expected 2 values" in compare(torch.ones(2), (torch.ones(2), torch.ones(2)))
    assert compare(torch.tensor([1, 5, 3]), torch.tensor([1, 2, 3])) == "wrong values: 1 of 3 differ (first at index (1,))"
    assert "expected a number" in compare("3", 3.0)
    assert compare(math.pi, 3.14159, atol=1e-4) is None
    assert compare(True, False) == "expected False, got bool True"


def test_property_checks_and_their_own_errors(capsys):
    def invariant(value):
        return None if value.sum() == 6 else f"the sum is {value.sum():g}, not 6"

    assert check("00.5 sum", lambda: torch.tensor([3.0, 3.0]), hint="h", test=invariant)
    assert not check("00.6 sum", lambda: torch.tensor([1.0]), hint="h", test=invariant)
    assert "the sum is 1, not 6" in capsys.readouterr().out
    assert not check("00.7 sum", lambda: "text", hint="h", test=invariant)
    assert "checking it raised AttributeError" in capsys.readouterr().out
