"""``torch.ops.acda.atom_conv2d``: the atom convolution (paper §3.2, Eq. 5) as a PyTorch custom op.

Registered with ``torch.library.custom_op``: a fake (meta) implementation for ``torch.compile``
and the meta device, an autograd formula whose backward is a second custom op
(``torch.ops.acda.atom_conv2d_backward``), and FLOP formulas for
``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add; forward
N·C·m·k_h·k_w·H'·W' multiply-adds, each requested gradient as many again).

Double backward (``create_graph=True``) computes the first backward with the differentiable
reference formulas (``acda.ops.reference.backward``), so higher derivatives stay exact.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from . import BACKENDS, reference

__all__ = ["atom_conv2d", "atom_conv2d_backward", "macs"]


def macs(x_shape, atoms_shape) -> int:
    """Multiply-adds of the atom convolution: N·C·m·k_h·k_w·H'·W' (one per atom element and channel)."""
    return int(x_shape[1]) * math.prod(int(s) for s in atoms_shape)


def _out_dtype(x: Tensor, atoms: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, atoms.dtype)


@torch.library.custom_op("acda::atom_conv2d", mutates_args=())
def atom_conv2d(x: Tensor, atoms: Tensor, stride: list[int], padding: list[int], dilation: list[int],
                backend: str) -> Tensor:
    """Atom convolution with backend ``backend`` (a key of ``acda.ops.BACKENDS``): (N, C·m, H', W')."""
    impl = BACKENDS[backend]
    out = impl.forward(x, atoms, tuple(stride), tuple(padding), tuple(dilation))
    return out.to(_out_dtype(x, atoms)).contiguous(memory_format=impl.memory_format)


@atom_conv2d.register_fake
def _atom_conv2d_fake(x, atoms, stride, padding, dilation, backend):
    n, c = x.shape[:2]
    m, oh, ow = atoms.shape[1], atoms.shape[4], atoms.shape[5]
    return torch.empty((n, c * m, oh, ow), dtype=_out_dtype(x, atoms), device=x.device,
                       memory_format=BACKENDS[backend].memory_format)


@torch.library.custom_op("acda::atom_conv2d_backward", mutates_args=())
def atom_conv2d_backward(grad_out: Tensor, x: Tensor, atoms: Tensor, stride: list[int], padding: list[int],
                         dilation: list[int], needs_x: bool, needs_atoms: bool, backend: str,
                         ) -> tuple[Tensor, Tensor]:
    """(grad_x, grad_atoms) of ``atom_conv2d``; an empty tensor stands for a gradient not requested."""
    impl = BACKENDS[backend]
    gx, ga = impl.backward(grad_out, x, atoms, tuple(stride), tuple(padding), tuple(dilation),
                           needs_x, needs_atoms)
    gx = gx.to(x.dtype).contiguous(memory_format=impl.memory_format) if needs_x else x.new_empty(0)
    ga = ga.to(atoms.dtype).contiguous() if needs_atoms else atoms.new_empty(0)
    return gx, ga


@atom_conv2d_backward.register_fake
def _atom_conv2d_backward_fake(grad_out, x, atoms, stride, padding, dilation, needs_x, needs_atoms, backend):
    gx = (torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=BACKENDS[backend].memory_format)
          if needs_x else x.new_empty(0))
    ga = torch.empty(atoms.shape, dtype=atoms.dtype, device=atoms.device) if needs_atoms else atoms.new_empty(0)
    return gx, ga


def _setup_context(ctx, inputs, output):
    x, atoms, stride, padding, dilation, backend = inputs
    ctx.save_for_backward(x, atoms)
    ctx.args = (stride, padding, dilation, backend)


def _backward(ctx, grad_out):
    x, atoms = ctx.saved_tensors
    stride, padding, dilation, backend = ctx.args
    needs_x, needs_atoms = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (grad_out, x, atoms)):
        gx, ga = reference.backward(grad_out, x, atoms, tuple(stride), tuple(padding), tuple(dilation),
                                    needs_x, needs_atoms)
    else:
        gx, ga = torch.ops.acda.atom_conv2d_backward(grad_out, x, atoms, stride, padding, dilation,
                                                      needs_x, needs_atoms, backend)
    return (gx if needs_x else None), (ga if needs_atoms else None), None, None, None, None


atom_conv2d.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula(torch.ops.acda.atom_conv2d)
def _atom_conv2d_flops(x_shape, atoms_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * macs(x_shape, atoms_shape)


@register_flop_formula(torch.ops.acda.atom_conv2d_backward)
def _atom_conv2d_backward_flops(grad_shape, x_shape, atoms_shape, stride, padding, dilation, needs_x,
                                needs_atoms, *args, out_shape=None, **kwargs) -> int:
    return 2 * macs(x_shape, atoms_shape) * (int(needs_x) + int(needs_atoms))
