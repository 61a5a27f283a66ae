"""Exporting models with ACDA layers: ``torch.export`` keeps the ``acda::*`` custom ops (they have fake
kernels); ``standard_program`` decomposes them into standard ATen ops (the reference backend's unfold + einsum
form, paper Eq. 2 with K = A·D), so ``torch.onnx.export`` and other consumers without the ops can run it.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .ops import reference

__all__ = ["decompositions", "standard_program"]


def _atom_conv2d(x: Tensor, atoms: Tensor, stride, padding, dilation, backend: str) -> Tensor:
    return reference.forward(x, atoms, tuple(stride), tuple(padding), tuple(dilation)).to(
        torch.promote_types(x.dtype, atoms.dtype))


def _acda_conv2d(x: Tensor, atoms: Tensor, coef: Tensor, bias: Tensor | None, stride, padding, dilation,
                 backend: str) -> Tensor:
    return reference.fused_forward(x, atoms, coef, bias, tuple(stride), tuple(padding), tuple(dilation)).to(
        torch.promote_types(x.dtype, atoms.dtype))


def _acda_alpha_conv2d(x: Tensor, alpha: Tensor, bases: Tensor, coef: Tensor, bias: Tensor | None, stride, padding,
                       dilation, backend: str) -> Tensor:
    return reference.alpha_forward(x, alpha, bases, coef, bias, tuple(stride), tuple(padding), tuple(dilation)).to(
        torch.promote_types(x.dtype, alpha.dtype))


def _channels_first(t: Tensor) -> Tensor:
    return t.contiguous()


def decompositions() -> dict[torch._ops.OpOverload, Callable[..., Tensor]]:
    """The forward ``acda::*`` ops → standard-op implementations (the reference backend's)."""
    ops = torch.ops.acda
    return {ops.atom_conv2d.default: _atom_conv2d, ops.acda_conv2d.default: _acda_conv2d,
            ops.acda_alpha_conv2d.default: _acda_alpha_conv2d, ops.channels_first.default: _channels_first}


def standard_program(model: nn.Module, args: tuple, **kwargs) -> torch.export.ExportedProgram:
    """``torch.export.export(model, args, **kwargs)`` with every ``acda::*`` op decomposed into core ATen ops
    (inference: export the model in eval mode)."""
    table = torch.export.default_decompositions()
    table.update(decompositions())
    return torch.export.export(model, args, **kwargs).run_decompositions(table)
