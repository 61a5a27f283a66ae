"""Choosing the atom-convolution backend of a whole model: ``set_backend`` and the ``use_backend`` context.

Every ``ACDAConv2d`` in the model gets the backend (``"auto"`` or a registered name, ``acda.ops``), checked
once, before any layer changes.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from .layers import ACDAConv2d
from .ops import check_backend

__all__ = ["set_backend", "use_backend"]


def set_backend(model: nn.Module, name: str) -> nn.Module:
    """Set the backend of every ``ACDAConv2d`` in ``model`` (itself included) to ``name``; returns ``model``.

    Args:
        model: any module.
        name: ``"auto"`` or a registered backend (``TypeError``/``ValueError`` naming the choices otherwise).
    """
    check_backend(name)
    for m in model.modules():
        if isinstance(m, ACDAConv2d):
            m.backend = name
    return model


@contextlib.contextmanager
def use_backend(model: nn.Module, name: str) -> Iterator[nn.Module]:
    """``set_backend(model, name)`` inside the block; each layer's own backend is restored after it."""
    check_backend(name)
    before = {m: m.backend for m in model.modules() if isinstance(m, ACDAConv2d)}
    try:
        yield set_backend(model, name)
    finally:
        for m, backend in before.items():
            m.backend = backend
