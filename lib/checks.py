"""Argument checks shared across lib: how an error message describes what it was given.

A check raises a ``ValueError`` that names the argument, what was expected and what came (its
shape, or its type when it has none), never a bare stack trace deep inside torch.

    >>> import torch
    >>> shape_of(torch.zeros(2, 3)), shape_of([1, 2]), shape_of(None)
    ('(2, 3)', 'list', 'NoneType')
    >>> tuple(point_batch(torch.zeros(5, 3)).shape)
    (1, 5, 3)
"""
from __future__ import annotations


def shape_of(x) -> str:
    """``x``'s shape as text for an error message (a tensor's or an array's), else its type's name."""
    return str(tuple(x.shape)) if hasattr(x, "shape") else type(x).__name__


def point_batch(points, name: str = "points"):
    """``points`` as a (B, N, D) batch (an (N, D) cloud gets B = 1), after checking that it is a finite float
    tensor of either shape (ValueError naming ``name`` otherwise)."""
    import torch
    if not torch.is_tensor(points) or points.ndim not in (2, 3) or not points.is_floating_point():
        got = f"{shape_of(points)} {points.dtype}" if torch.is_tensor(points) else shape_of(points)
        raise ValueError(f"`{name}` must be a (B, N, D) or (N, D) float tensor, got {got}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError(f"`{name}` holds NaN or inf values")
    return points if points.ndim == 3 else points[None]
