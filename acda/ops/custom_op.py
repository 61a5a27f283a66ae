"""PyTorch custom ops of ACDA (paper §3.2): ``torch.ops.acda.atom_conv2d`` (Eq. 5) and
``torch.ops.acda.acda_conv2d`` (Eq. 5 fused with the 1×1 coefficient convolution, Eq. 6).

Each is registered with ``torch.library.custom_op``: a fake (meta) implementation for
``torch.compile`` and the meta device, an autograd formula whose backward is a second custom op
(``..._backward``), and FLOP formulas for ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per
multiply-add). ``atom_conv2d``: forward N·C·m·k_h·k_w·H'·W' multiply-adds, each requested gradient
as many again. ``acda_conv2d``: forward adds the 1×1 step's N·O·C·m·H'·W'; its backward counts what
it executes: one GEMM for grad coef plus the recomputed atom convolution it needs, one GEMM for
the gradient of the intermediate when grad x or grad atoms is requested, and one atom-convolution
pass per requested gradient of x and atoms.

Double backward (``create_graph=True``) computes the first backward with the differentiable
reference formulas (``acda.ops.reference``), so higher derivatives stay exact.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from . import get_backend, reference

__all__ = ["atom_conv2d", "atom_conv2d_backward", "acda_conv2d", "acda_conv2d_backward", "macs", "coefficient_macs",
           "acda_macs"]


def macs(x_shape, atoms_shape) -> int:
    """Multiply-adds of the atom convolution: N·C·m·k_h·k_w·H'·W' (one per atom element and channel)."""
    return int(x_shape[1]) * math.prod(int(s) for s in atoms_shape)


def coefficient_macs(atoms_shape, coef_shape) -> int:
    """Multiply-adds of the 1×1 coefficient convolution (Eq. 6): N·O·C·m·H'·W'."""
    n, _, _, _, oh, ow = (int(s) for s in atoms_shape)
    return n * oh * ow * math.prod(int(s) for s in coef_shape)


def acda_macs(x_shape, atoms_shape, coef_shape) -> int:
    """Multiply-adds of two-layer ACDA (Eq. 5 then Eq. 6): ``macs`` + ``coefficient_macs``, no bias.

    The one formula for the fused op: its FLOP formula here, ``acda.profile``'s fvcore handle and
    closed form, and the benchmarks all count through it.
    """
    return macs(x_shape, atoms_shape) + coefficient_macs(atoms_shape, coef_shape)


def _out_dtype(x: Tensor, atoms: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, atoms.dtype)


@torch.library.custom_op("acda::atom_conv2d", mutates_args=())
def atom_conv2d(x: Tensor, atoms: Tensor, stride: list[int], padding: list[int], dilation: list[int],
                backend: str) -> Tensor:
    """Atom convolution with backend ``backend`` (a name in ``acda.ops.BACKENDS``): (N, C·m, H', W')."""
    impl = get_backend(backend)
    out = impl.forward(x, atoms, tuple(stride), tuple(padding), tuple(dilation))
    return out.to(_out_dtype(x, atoms)).contiguous(memory_format=impl.memory_format)


@atom_conv2d.register_fake
def _atom_conv2d_fake(x, atoms, stride, padding, dilation, backend):
    n, c = x.shape[:2]
    m, oh, ow = atoms.shape[1], atoms.shape[4], atoms.shape[5]
    return torch.empty((n, c * m, oh, ow), dtype=_out_dtype(x, atoms), device=x.device,
                       memory_format=get_backend(backend).memory_format)


@torch.library.custom_op("acda::atom_conv2d_backward", mutates_args=())
def atom_conv2d_backward(grad_out: Tensor, x: Tensor, atoms: Tensor, stride: list[int], padding: list[int],
                         dilation: list[int], needs_x: bool, needs_atoms: bool, backend: str,
                         ) -> tuple[Tensor, Tensor]:
    """(grad_x, grad_atoms) of ``atom_conv2d``; an empty tensor stands for a gradient not requested."""
    impl = get_backend(backend)
    gx, ga = impl.backward(grad_out, x, atoms, tuple(stride), tuple(padding), tuple(dilation),
                           needs_x, needs_atoms)
    gx = gx.to(x.dtype).contiguous(memory_format=impl.memory_format) if needs_x else x.new_empty(0)
    ga = ga.to(atoms.dtype).contiguous() if needs_atoms else atoms.new_empty(0)
    return gx, ga


@atom_conv2d_backward.register_fake
def _atom_conv2d_backward_fake(grad_out, x, atoms, stride, padding, dilation, needs_x, needs_atoms, backend):
    gx = (torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=get_backend(backend).memory_format)
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


@torch.library.custom_op("acda::acda_conv2d", mutates_args=())
def acda_conv2d(x: Tensor, atoms: Tensor, coef: Tensor, bias: Tensor | None, stride: list[int], padding: list[int],
                dilation: list[int], backend: str) -> Tensor:
    """Two-layer ACDA (Eq. 5 then Eq. 6) with the fused implementation of ``backend``: (N, O, H', W')."""
    impl = get_backend(backend)
    out = impl.fused_forward(x, atoms, coef, bias, tuple(stride), tuple(padding), tuple(dilation))
    return out.to(_out_dtype(x, atoms)).contiguous(memory_format=impl.memory_format)


@acda_conv2d.register_fake
def _acda_conv2d_fake(x, atoms, coef, bias, stride, padding, dilation, backend):
    n, o = x.shape[0], coef.shape[0]
    oh, ow = atoms.shape[4], atoms.shape[5]
    return torch.empty((n, o, oh, ow), dtype=_out_dtype(x, atoms), device=x.device,
                       memory_format=get_backend(backend).memory_format)


@torch.library.custom_op("acda::acda_conv2d_backward", mutates_args=())
def acda_conv2d_backward(grad_out: Tensor, x: Tensor, atoms: Tensor, coef: Tensor, stride: list[int],
                         padding: list[int], dilation: list[int], needs_x: bool, needs_atoms: bool,
                         needs_coef: bool, backend: str) -> tuple[Tensor, Tensor, Tensor]:
    """(grad_x, grad_atoms, grad_coef) of ``acda_conv2d``; an empty tensor stands for a gradient not requested."""
    impl = get_backend(backend)
    gx, ga, gc = impl.fused_backward(grad_out, x, atoms, coef, tuple(stride), tuple(padding), tuple(dilation),
                                     needs_x, needs_atoms, needs_coef)
    gx = gx.to(x.dtype).contiguous(memory_format=impl.memory_format) if needs_x else x.new_empty(0)
    ga = ga.to(atoms.dtype).contiguous() if needs_atoms else atoms.new_empty(0)
    gc = gc.to(coef.dtype).contiguous() if needs_coef else coef.new_empty(0)
    return gx, ga, gc


@acda_conv2d_backward.register_fake
def _acda_conv2d_backward_fake(grad_out, x, atoms, coef, stride, padding, dilation, needs_x, needs_atoms,
                               needs_coef, backend):
    gx = (torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=get_backend(backend).memory_format)
          if needs_x else x.new_empty(0))
    ga = torch.empty(atoms.shape, dtype=atoms.dtype, device=atoms.device) if needs_atoms else atoms.new_empty(0)
    gc = torch.empty(coef.shape, dtype=coef.dtype, device=coef.device) if needs_coef else coef.new_empty(0)
    return gx, ga, gc


def _fused_setup_context(ctx, inputs, output):
    x, atoms, coef, bias, stride, padding, dilation, backend = inputs
    ctx.save_for_backward(x, atoms, coef)
    ctx.args = (stride, padding, dilation, backend)


def _fused_backward(ctx, grad_out):
    x, atoms, coef = ctx.saved_tensors
    stride, padding, dilation, backend = ctx.args
    needs_x, needs_atoms, needs_coef, needs_bias = ctx.needs_input_grad[:4]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (grad_out, x, atoms, coef)):
        gx, ga, gc = reference.fused_backward(grad_out, x, atoms, coef, tuple(stride), tuple(padding),
                                              tuple(dilation), needs_x, needs_atoms, needs_coef)
    elif needs_x or needs_atoms or needs_coef:
        gx, ga, gc = torch.ops.acda.acda_conv2d_backward(grad_out, x, atoms, coef, stride, padding, dilation,
                                                         needs_x, needs_atoms, needs_coef, backend)
    else:
        gx = ga = gc = None
    gb = grad_out.sum((0, 2, 3)) if needs_bias else None
    return ((gx if needs_x else None), (ga if needs_atoms else None), (gc if needs_coef else None), gb,
            None, None, None, None)


acda_conv2d.register_autograd(_fused_backward, setup_context=_fused_setup_context)


@register_flop_formula(torch.ops.acda.acda_conv2d)
def _acda_conv2d_flops(x_shape, atoms_shape, coef_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * acda_macs(x_shape, atoms_shape, coef_shape)


@register_flop_formula(torch.ops.acda.acda_conv2d_backward)
def _acda_conv2d_backward_flops(grad_shape, x_shape, atoms_shape, coef_shape, stride, padding, dilation, needs_x,
                                needs_atoms, needs_coef, *args, out_shape=None, **kwargs) -> int:
    atom, gemm = macs(x_shape, atoms_shape), coefficient_macs(atoms_shape, coef_shape)
    total = (atom + gemm) * int(needs_coef) + gemm * int(needs_x or needs_atoms)
    return 2 * (total + atom * (int(needs_x) + int(needs_atoms)))
