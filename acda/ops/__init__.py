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

A backend may also implement the two-layer ACDA fused (Eq. 5 then the 1×1 coefficient
convolution, Eq. 6; ``torch.ops.acda.acda_conv2d``):

- ``fused_forward(x, atoms, coef, bias | None, stride, padding, dilation) -> out`` (N, O, H', W');
- ``fused_backward(grad_out, x, atoms, coef, stride, padding, dilation, needs_x, needs_atoms,
  needs_coef) -> (grad_x | None, grad_atoms | None, grad_coef | None)`` (the bias gradient is
  ``grad_out`` summed, left to the caller).

Backends without them (``fused_forward is None``) run ``acda_conv2d`` as ``atom_conv2d`` followed by
a 1×1 convolution.

Registered backends (``BACKENDS``, the one registry; ``acda.functional`` dispatches through it):
``"reference"`` (``acda.ops.reference``: unfold + einsum, the oracle, any device), ``"shift"``
(``acda.ops.shift``: shift-and-accumulate in plain PyTorch, fused, any device), ``"native"``
(``acda.ops.native``: C++ CPU kernels compiled on first use, falling back to ``"shift"``),
``"triton"`` (``acda.ops.triton_atom_conv``: CUDA, or CPU under ``TRITON_INTERPRET=1``).
``resolve_backend`` maps ``"auto"`` to the best available one for a device.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import native, reference, shift

__all__ = ["Backend", "BACKENDS", "resolve_backend", "backend_names"]


@dataclass(frozen=True)
class Backend:
    """One implementation of the atom convolution (see the module docstring for the contract)."""

    name: str
    forward: Callable[..., torch.Tensor]
    backward: Callable[..., tuple[torch.Tensor | None, torch.Tensor | None]]
    memory_format: torch.memory_format
    available: Callable[[torch.device], bool]
    fused_forward: Callable[..., torch.Tensor] | None = None
    fused_backward: Callable[..., tuple[torch.Tensor | None, ...]] | None = None


def _triton_module():
    return importlib.import_module("acda.ops.triton_atom_conv")


def _triton_forward(*args):
    return _triton_module().forward(*args)


def _triton_backward(*args):
    return _triton_module().backward(*args)


def _triton_available(device: torch.device) -> bool:
    if importlib.util.find_spec("triton") is None or importlib.util.find_spec("acda.ops.triton_atom_conv") is None:
        return False
    if device.type == "cuda":
        return bool(_triton_module().is_available())
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"


BACKENDS: dict[str, Backend] = {
    "reference": Backend("reference", reference.forward, reference.backward, torch.contiguous_format,
                         lambda device: True),
    "shift": Backend("shift", shift.forward, shift.backward, torch.contiguous_format, lambda device: True,
                     shift.fused_forward, shift.fused_backward),
    "native": Backend("native", native.forward, native.backward, torch.channels_last,
                      lambda device: device.type in ("cpu", "meta"), native.fused_forward, native.fused_backward),
    "triton": Backend("triton", _triton_forward, _triton_backward, torch.contiguous_format, _triton_available),
}


def backend_names() -> list[str]:
    return sorted(BACKENDS)


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """``"auto"`` → ``"triton"`` on CUDA when available, ``"native"`` on CPU, else ``"shift"``."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise ValueError(f"backend must be 'auto' or one of {backend_names()}, got {backend!r}")
        return backend
    device = torch.device(device)
    if device.type == "cuda" and BACKENDS["triton"].available(device):
        return "triton"
    if device.type in ("cpu", "meta"):
        return "native"
    return "shift"
