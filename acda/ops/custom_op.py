"""PyTorch custom ops of ACDA (paper §3.2): ``torch.ops.acda.atom_conv2d`` (Eq. 5),
``torch.ops.acda.acda_conv2d`` (Eq. 5 fused with the 1×1 coefficient convolution, Eq. 6) and
``torch.ops.acda.acda_alpha_conv2d`` (the same on the atoms α·ψ, formed per tile by the backend).

Each is registered with ``torch.library.custom_op``: a fake (meta) implementation for
``torch.compile`` and the meta device, an autograd formula whose backward is a second custom op
(``..._backward``; double backward goes through the differentiable ``acda.ops.reference``), and
FLOP formulas for ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add; ``macs``,
``acda_macs``, ``reconstruction_macs``). ``channels_first`` is a layout copy, not ACDA arithmetic.

See docs/backends.md for what each FLOP formula counts, ``channels_first`` and double backward.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from . import reference
from .registry import get_backend

__all__ = ["channels_first", "atom_conv2d", "atom_conv2d_backward", "acda_conv2d", "acda_conv2d_backward",
           "acda_alpha_conv2d", "acda_alpha_conv2d_backward", "macs", "coefficient_macs", "acda_macs",
           "reconstruction_macs", "alpha_atoms_shape"]


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


def alpha_atoms_shape(alpha_shape, bases_shape) -> tuple[int, ...]:
    """Shape (N, m, k_h, k_w, H', W') of the atoms α·ψ for α (N, m, B, H', W') and ψ (B, k_h, k_w)."""
    n, m, _, oh, ow = (int(s) for s in alpha_shape)
    return n, m, int(bases_shape[1]), int(bases_shape[2]), oh, ow


def reconstruction_macs(alpha_shape, bases_shape) -> int:
    """Multiply-adds of the atom reconstruction D = α·ψ (paper Eq. 4): N·m·B·k_h·k_w·H'·W'."""
    return math.prod(int(s) for s in alpha_shape) * int(bases_shape[1]) * int(bases_shape[2])


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


@torch.library.custom_op("acda::acda_alpha_conv2d", mutates_args=())
def acda_alpha_conv2d(x: Tensor, alpha: Tensor, bases: Tensor, coef: Tensor, bias: Tensor | None, stride: list[int],
                      padding: list[int], dilation: list[int], backend: str) -> Tensor:
    """Two-layer ACDA on the atoms α·ψ, formed in cache by ``backend``'s α path: (N, O, H', W')."""
    impl = get_backend(backend)
    out = impl.alpha_forward(x, alpha, bases, coef, bias, tuple(stride), tuple(padding), tuple(dilation))
    return out.to(_out_dtype(x, alpha)).contiguous(memory_format=impl.memory_format)


@acda_alpha_conv2d.register_fake
def _acda_alpha_conv2d_fake(x, alpha, bases, coef, bias, stride, padding, dilation, backend):
    n, o = x.shape[0], coef.shape[0]
    oh, ow = alpha.shape[3], alpha.shape[4]
    return torch.empty((n, o, oh, ow), dtype=_out_dtype(x, alpha), device=x.device,
                       memory_format=get_backend(backend).memory_format)


@torch.library.custom_op("acda::acda_alpha_conv2d_backward", mutates_args=())
def acda_alpha_conv2d_backward(grad_out: Tensor, x: Tensor, alpha: Tensor, bases: Tensor, coef: Tensor,
                               stride: list[int], padding: list[int], dilation: list[int], needs_x: bool,
                               needs_alpha: bool, needs_coef: bool, backend: str) -> tuple[Tensor, Tensor, Tensor]:
    """(grad_x, grad_alpha, grad_coef) of ``acda_alpha_conv2d``; an empty tensor stands for a gradient not requested."""
    impl = get_backend(backend)
    gx, ga, gc = impl.alpha_backward(grad_out, x, alpha, bases, coef, tuple(stride), tuple(padding), tuple(dilation),
                                     needs_x, needs_alpha, needs_coef)
    gx = gx.to(x.dtype).contiguous(memory_format=impl.memory_format) if needs_x else x.new_empty(0)
    ga = _in_layout_of(ga.to(alpha.dtype), alpha) if needs_alpha else alpha.new_empty(0)
    gc = gc.to(coef.dtype).contiguous() if needs_coef else coef.new_empty(0)
    return gx, ga, gc


@acda_alpha_conv2d_backward.register_fake
def _acda_alpha_conv2d_backward_fake(grad_out, x, alpha, bases, coef, stride, padding, dilation, needs_x,
                                     needs_alpha, needs_coef, backend):
    gx = (torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=get_backend(backend).memory_format)
          if needs_x else x.new_empty(0))
    ga = torch.empty_like(alpha) if needs_alpha else alpha.new_empty(0)
    gc = torch.empty(coef.shape, dtype=coef.dtype, device=coef.device) if needs_coef else coef.new_empty(0)
    return gx, ga, gc


def _in_layout_of(t: Tensor, like: Tensor) -> Tensor:
    """``t`` stored as ``torch.empty_like(like)`` would be (the layout the fake implementation promises): grad α
    keeps the memory layout of α (pixel-major from the layer's channels-last generator), copied only if needed."""
    if t.stride() == torch.empty_like(like, device="meta").stride():  # strides only, nothing allocated
        return t
    return torch.empty_like(like).copy_(t)


def _alpha_setup_context(ctx, inputs, output):
    x, alpha, bases, coef, bias, stride, padding, dilation, backend = inputs
    ctx.save_for_backward(x, alpha, bases, coef)
    ctx.args = (stride, padding, dilation, backend)


def _alpha_backward(ctx, grad_out):
    x, alpha, bases, coef = ctx.saved_tensors
    stride, padding, dilation, backend = ctx.args
    needs_x, needs_alpha, needs_bases, needs_coef, needs_bias = ctx.needs_input_grad[:5]
    if needs_bases:
        raise RuntimeError("acda::acda_alpha_conv2d does not differentiate the bases; acda.functional.acda_alpha_conv2d "
                           "reconstructs the atoms instead when bases requires grad")
    if torch.is_grad_enabled() and any(t.requires_grad for t in (grad_out, x, alpha, coef)):
        gx, ga, gc = reference.alpha_backward(grad_out, x, alpha, bases, coef, tuple(stride), tuple(padding),
                                              tuple(dilation), needs_x, needs_alpha, needs_coef)
    elif needs_x or needs_alpha or needs_coef:
        gx, ga, gc = torch.ops.acda.acda_alpha_conv2d_backward(grad_out, x, alpha, bases, coef, stride, padding,
                                                               dilation, needs_x, needs_alpha, needs_coef, backend)
    else:
        gx = ga = gc = None
    gb = grad_out.sum((0, 2, 3)) if needs_bias else None
    return ((gx if needs_x else None), (ga if needs_alpha else None), None, (gc if needs_coef else None), gb,
            None, None, None, None)


acda_alpha_conv2d.register_autograd(_alpha_backward, setup_context=_alpha_setup_context)


@register_flop_formula(torch.ops.acda.acda_alpha_conv2d)
def _acda_alpha_conv2d_flops(x_shape, alpha_shape, bases_shape, coef_shape, *args, out_shape=None, **kwargs) -> int:
    atoms = alpha_atoms_shape(alpha_shape, bases_shape)
    return 2 * (acda_macs(x_shape, atoms, coef_shape) + reconstruction_macs(alpha_shape, bases_shape))


@register_flop_formula(torch.ops.acda.acda_alpha_conv2d_backward)
def _acda_alpha_conv2d_backward_flops(grad_shape, x_shape, alpha_shape, bases_shape, coef_shape, stride, padding,
                                      dilation, needs_x, needs_alpha, needs_coef, *args, out_shape=None,
                                      **kwargs) -> int:
    atoms = alpha_atoms_shape(alpha_shape, bases_shape)
    fused = _acda_conv2d_backward_flops(grad_shape, x_shape, atoms, coef_shape, stride, padding, dilation, needs_x,
                                        needs_alpha, needs_coef)
    rebuilds = int(needs_x or needs_coef) + int(needs_alpha)
    return fused + 2 * rebuilds * reconstruction_macs(alpha_shape, bases_shape)


@torch.library.custom_op("acda::channels_first", mutates_args=())
def channels_first(t: Tensor) -> Tensor:
    """``t`` (N, C, H, W) copied to the contiguous layout; a blocked transpose for a CPU tensor stored channels-last
    (``acda.ops.native.channels_first``): the gradient ``acda.functional.to_channels_last`` hands back."""
    if t.device.type == "cpu" and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        from . import native

        return native.channels_first(t)
    return t.clone(memory_format=torch.contiguous_format)


@channels_first.register_fake
def _channels_first_fake(t):
    return torch.empty(t.shape, dtype=t.dtype, device=t.device)
