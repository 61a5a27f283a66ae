"""The backend registry of ``torch.ops.acda.*``: ``Backend``, ``BACKENDS``, ``register_backend``, name lookup and
``"auto"`` resolution, and the four built-in backends (contract: ``acda.ops``, docs/backends.md)."""
from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..utils import FLOAT_DTYPES, ArgumentTypeError, ArgumentValueError
from . import native, reference, shift

__all__ = ["Backend", "BACKENDS", "register_backend", "get_backend", "check_backend", "resolve_backend",
           "backend_names"]


@dataclass(frozen=True, kw_only=True)
class Backend:
    """One implementation of the atom convolution (the contract: module docstring, docs/backends.md)."""

    name: str
    forward: Callable[..., torch.Tensor]
    backward: Callable[..., tuple[torch.Tensor | None, torch.Tensor | None]]
    memory_format: torch.memory_format
    available: Callable[[torch.device], bool]
    fused_forward: Callable[..., torch.Tensor] | None = None
    fused_backward: Callable[..., tuple[torch.Tensor | None, ...]] | None = None
    alpha_forward: Callable[..., torch.Tensor] | None = None
    alpha_backward: Callable[..., tuple[torch.Tensor | None, ...]] | None = None
    dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES


BACKENDS: dict[str, Backend] = {}


def register_backend(
    name: str,
    *,
    forward: Callable[..., torch.Tensor],
    backward: Callable[..., tuple[torch.Tensor | None, torch.Tensor | None]],
    memory_format: torch.memory_format,
    available: Callable[[torch.device], bool],
    fused_forward: Callable[..., torch.Tensor] | None = None,
    fused_backward: Callable[..., tuple[torch.Tensor | None, ...]] | None = None,
    alpha_forward: Callable[..., torch.Tensor] | None = None,
    alpha_backward: Callable[..., tuple[torch.Tensor | None, ...]] | None = None,
    dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES,
) -> Backend:
    """Add a backend to ``BACKENDS`` under ``name`` and return it (``ValueError`` if the name is taken).

    ``fused_forward`` and ``fused_backward`` come together or not at all, as do ``alpha_forward`` and
    ``alpha_backward``. ``dtypes``: the dtypes it
    computes in (a subset of ``acda.utils.FLOAT_DTYPES``; others are refused before dispatch).
    """
    if not isinstance(name, str) or not name or name == "auto":
        raise ValueError(f"a backend name must be a non-empty str other than 'auto', got {name!r}")
    if name in BACKENDS:
        raise ValueError(f"a backend named {name!r} is already registered")
    if (fused_forward is None) != (fused_backward is None):
        raise ValueError(f"backend {name!r}: give both fused_forward and fused_backward, or neither")
    if (alpha_forward is None) != (alpha_backward is None):
        raise ValueError(f"backend {name!r}: give both alpha_forward and alpha_backward, or neither")
    if not dtypes or any(t not in FLOAT_DTYPES for t in dtypes):
        raise ValueError(f"backend {name!r}: dtypes must be a non-empty subset of {FLOAT_DTYPES}, got {dtypes!r}")
    backend = Backend(name=name, forward=forward, backward=backward, memory_format=memory_format,
                      available=available, fused_forward=fused_forward, fused_backward=fused_backward,
                      alpha_forward=alpha_forward, alpha_backward=alpha_backward, dtypes=tuple(dtypes))
    BACKENDS[name] = backend
    return backend


def backend_names() -> list[str]:
    return sorted(BACKENDS)


def check_backend(backend: str) -> str:
    """``backend`` itself if it is ``"auto"`` or a registered name; ``TypeError``/``ValueError`` otherwise."""
    if not isinstance(backend, str):
        raise ArgumentTypeError(f"backend must be a str, got {type(backend).__name__}")
    if backend != "auto" and backend not in BACKENDS:
        raise ArgumentValueError(f"backend must be 'auto' or one of {backend_names()}, got {backend!r}")
    return backend


def get_backend(name: str) -> Backend:
    """The registered backend ``name`` (``ValueError`` listing the registered names if there is none)."""
    if name not in BACKENDS:
        raise ArgumentValueError(f"unknown backend {name!r}; registered: {backend_names()}")
    return BACKENDS[name]


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """``"auto"`` → ``"triton"`` on CUDA when available, ``"native"`` on CPU, else ``"shift"``."""
    if check_backend(backend) != "auto":
        return backend
    device = torch.device(device)
    if device.type == "cuda" and BACKENDS["triton"].available(device):
        return "triton"
    if device.type in ("cpu", "meta"):
        return "native"
    return "shift"


def _triton_module():
    return importlib.import_module("acda.ops.triton_atom_conv")


def _triton_forward(*args):
    return _triton_module().forward(*args)


def _triton_backward(*args):
    return _triton_module().backward(*args)


def _triton_acda(name: str):
    def call(*args):
        return getattr(importlib.import_module("acda.ops.triton_acda"), name)(*args)
    return call


def _triton_available(device: torch.device) -> bool:
    if importlib.util.find_spec("triton") is None or importlib.util.find_spec("acda.ops.triton_atom_conv") is None:
        return False
    if device.type == "cuda":
        return bool(_triton_module().is_available())
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"


def _anywhere(device: torch.device) -> bool:
    return True


register_backend("reference", forward=reference.forward, backward=reference.backward,
                 memory_format=torch.contiguous_format, available=_anywhere)
register_backend("shift", forward=shift.forward, backward=shift.backward, memory_format=torch.contiguous_format,
                 available=_anywhere, fused_forward=shift.fused_forward, fused_backward=shift.fused_backward)
register_backend("native", forward=native.forward, backward=native.backward, memory_format=torch.channels_last,
                 available=lambda device: device.type in ("cpu", "meta"),
                 fused_forward=native.fused_forward, fused_backward=native.fused_backward,
                 alpha_forward=native.alpha_forward, alpha_backward=native.alpha_backward)
register_backend("triton", forward=_triton_forward, backward=_triton_backward,
                 memory_format=torch.contiguous_format, available=_triton_available,
                 alpha_forward=_triton_acda("alpha_forward"), alpha_backward=_triton_acda("alpha_backward"),
                 dtypes=(torch.float16, torch.bfloat16, torch.float32))  # fp32 accumulators: no fp64
