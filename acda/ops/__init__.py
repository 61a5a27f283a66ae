"""Backends of the atom convolution (paper §3.2, Eq. 5) behind ``torch.ops.acda.atom_conv2d``.

Contract every backend implements (plain functions; ``stride``, ``padding``, ``dilation`` are
tuples of two ints, already validated by ``acda.functional.atom_conv2d``):

- ``forward(x, atoms, stride, padding, dilation) -> out``: ``x`` (N, C, H, W), ``atoms``
  (N, m, k_h, k_w, H', W') → ``out`` (N, C·m, H', W') with
  ``out[n, c·m + b, i, j] = Σ_uv atoms[n, b, u, v, i, j]·x[n, c, i·s_h − p_h + u·d_h, j·s_w − p_w + v·d_w]``
  (zero outside the image), in the promoted dtype of ``x`` and ``atoms``;
- ``backward(grad_out, x, atoms, stride, padding, dilation, needs_x: bool, needs_atoms: bool)
  -> (grad_x | None, grad_atoms | None)``: gradients of ``⟨grad_out, out⟩``, each ``None`` unless
  requested, in the dtypes of ``x`` and ``atoms``.

Any memory layout is accepted on input; ``Backend.memory_format`` names the layout of ``out`` and
``grad_x`` (the custom op normalises to it, so its fake implementation knows the strides).
Backends validate nothing: ``acda.functional`` checks every argument once, the same way for all of
them, before dispatching (shapes, sizes, devices, ``Backend.available`` for the device, and the
dtype: ``Backend.dtypes``, the floating dtypes the backend computes in; x, atoms, coef and bias
share one dtype). They may assume N ≥ 0 and C, m, O, k_h, k_w, H, W, H', W' ≥ 1; N = 0 must work
forward and backward. NaN/inf follow the definition: a tap on the zero padding contributes
0·atom (NaN for an infinite or NaN atom), as the unfold reference computes it.

A backend may also implement the two-layer ACDA fused (Eq. 5 then the 1×1 coefficient
convolution, Eq. 6; ``torch.ops.acda.acda_conv2d``):

- ``fused_forward(x, atoms, coef, bias | None, stride, padding, dilation) -> out`` (N, O, H', W');
- ``fused_backward(grad_out, x, atoms, coef, stride, padding, dilation, needs_x, needs_atoms,
  needs_coef) -> (grad_x | None, grad_atoms | None, grad_coef | None)`` (the bias gradient is
  ``grad_out`` summed, left to the caller).

Backends without them (``fused_forward is None``) run ``acda_conv2d`` as ``atom_conv2d`` followed by
a 1×1 convolution.

A backend may also implement the α path of the fused op (``torch.ops.acda.acda_alpha_conv2d``, what
``ACDAConv2d`` runs): the atoms are given as basis coefficients ``alpha`` (N, m, B, H', W') and bases
``bases`` (B, k_h, k_w), ``atoms = einsum("nmbhw,buv->nmuvhw", alpha, bases)`` (paper Eq. 4), formed as the
kernel goes instead of being stored:

- ``alpha_forward(x, alpha, bases, coef, bias | None, stride, padding, dilation) -> out`` (N, O, H', W');
- ``alpha_backward(grad_out, x, alpha, bases, coef, stride, padding, dilation, needs_x, needs_alpha,
  needs_coef) -> (grad_x | None, grad_alpha | None, grad_coef | None)`` (no gradient of ``bases``).

Backends without it (``alpha_forward is None``) reconstruct the atoms and run ``acda_conv2d``.

Registry: ``BACKENDS`` (name → ``Backend``, the one registry; ``acda.functional`` and the custom ops
dispatch through it). A backend is added with one keyword call, ``register_backend(name, forward=...,
backward=..., memory_format=..., available=...[, fused_forward=..., fused_backward=...])``, below for
the built-in ones (or from any module, for a backend kept elsewhere). Built in: ``"reference"``
(``acda.ops.reference``: unfold + einsum, the oracle, any device), ``"shift"`` (``acda.ops.shift``:
shift-and-accumulate in plain PyTorch, fused, any device), ``"native"`` (``acda.ops.native``: C++ CPU
kernels compiled on first use, falling back to ``"shift"``), ``"triton"`` (``acda.ops.triton_atom_conv``,
imported on first use: CUDA, or CPU under ``TRITON_INTERPRET=1``).
``get_backend`` looks a name up (``ValueError`` listing the registered names for an unknown one);
``resolve_backend`` also maps ``"auto"`` to the best available one for a device.
"""
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
    """One implementation of the atom convolution (see the module docstring for the contract)."""

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
