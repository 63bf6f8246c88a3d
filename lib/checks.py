"""Argument checks shared across lib: how an error message describes what it was given.

A check raises a ``ValueError`` that names the argument, what was expected and what came (its
shape, or its type when it has none), never a bare stack trace deep inside torch.

    >>> import torch
    >>> shape_of(torch.zeros(2, 3)), shape_of([1, 2]), shape_of(None)
    ('(2, 3)', 'list', 'NoneType')
"""
from __future__ import annotations


def shape_of(x) -> str:
    """``x``'s shape as text for an error message (a tensor's or an array's), else its type's name."""
    return str(tuple(x.shape)) if hasattr(x, "shape") else type(x).__name__
