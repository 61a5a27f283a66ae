"""Counting: parameters, FLOPs and peak memory (paper §4.4, Tables 6 and 7).

FLOP convention (Table 6's, checked against its Conv and ACDA rows): one multiply-add = 1 FLOP,
plus one add per output element for a bias; data movement, activations and normalisation count 0.

- ``count_parameters(module)``: the number of parameters (fixed bases are buffers, not counted);
- ``count_flops(module, inputs)`` → ``FlopCount`` (total, per module, per operator): fvcore's
  tracer with a handle for every operator of the ACDA models, failing loudly (``strict``) on any
  other; needs fvcore (the ``repro`` extra), imported when called;
- ``flop_counter_macs``: an independent count with ``torch.utils.flop_counter.FlopCounterMode``,
  used as a cross-check;
- ``peak_memory(fn, device)``: peak bytes allocated while ``fn()`` runs (CUDA: the allocator's
  statistics; CPU: the profiler's allocator events).

See docs/profiling.md for the full FLOP convention per operator and what the CPU memory count sees
and misses.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .ops.custom_op import acda_macs, alpha_atoms_shape, macs, reconstruction_macs

__all__ = [
    "FlopCount",
    "count_parameters",
    "count_flops",
    "flop_counter_macs",
    "executed_macs",
    "peak_memory",
    "closed_form",
]


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (fixed bases are buffers and not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------- fvcore handles
def _shape(value) -> list[int]:
    from fvcore.nn.jit_handles import get_shape

    return list(get_shape(value))


def _is_none(value) -> bool:
    return value.type().kind() == "NoneType"


def _conv_handle(inputs, outputs) -> int:
    x, w, out = _shape(inputs[0]), _shape(inputs[1]), _shape(outputs[0])
    transposed = inputs[6].toIValue() if len(inputs) > 6 else False
    groups = inputs[8].toIValue() if len(inputs) > 8 else 1
    out_elems = math.prod(out)
    if transposed:
        macs = math.prod(x) * math.prod(w[1:])  # each input element spreads over w[1:] outputs
    else:
        macs = out_elems * math.prod(w[1:])  # w: (O, C/groups, kh, kw)
    del groups  # already in w[1]
    return macs + (0 if _is_none(inputs[2]) else out_elems)


def _linear_handle(inputs, outputs) -> int:
    w, out = _shape(inputs[1]), _shape(outputs[0])
    return math.prod(out) * w[-1] + (0 if _is_none(inputs[2]) else math.prod(out))


def _addmm_handle(inputs, outputs) -> int:
    a, out = _shape(inputs[1]), _shape(outputs[0])
    return math.prod(out) * a[-1] + math.prod(out)


def _matmul_handle(inputs, outputs) -> int:
    a, out = _shape(inputs[0]), _shape(outputs[0])
    return math.prod(out) * a[-1]


def _einsum_handle(inputs, outputs) -> int:
    equation = inputs[0].toIValue().replace(" ", "")
    operands = inputs[1].node().inputs()
    sizes: dict[str, int] = {}
    lhs = equation.split("->")[0].split(",")
    for spec, operand in zip(lhs, operands):
        for letter, size in zip(spec, _shape(operand)):
            sizes[letter] = size
    return math.prod(sizes.values())


def _atom_conv_handle(inputs, outputs) -> int:
    """``acda::atom_conv2d`` (paper Eq. 5): N·C·m·k_h·k_w·H'·W' multiply-adds, no bias."""
    return macs(_shape(inputs[0]), _shape(inputs[1]))


def _acda_conv_handle(inputs, outputs) -> int:
    """``acda::acda_conv2d`` (Eq. 5 + Eq. 6): the atom convolution plus the 1×1 coefficient step (+ bias adds)."""
    x, atoms, coef = _shape(inputs[0]), _shape(inputs[1]), _shape(inputs[2])
    bias_adds = 0 if _is_none(inputs[3]) else math.prod(_shape(outputs[0]))
    return acda_macs(x, atoms, coef) + bias_adds


def _acda_alpha_conv_handle(inputs, outputs) -> int:
    """``acda::acda_alpha_conv2d``: ``acda::acda_conv2d`` on the atoms α·ψ plus their reconstruction (Eq. 4)."""
    x, alpha, bases, coef = (_shape(inputs[i]) for i in range(4))
    bias_adds = 0 if _is_none(inputs[4]) else math.prod(_shape(outputs[0]))
    return (acda_macs(x, alpha_atoms_shape(alpha, bases), coef) + reconstruction_macs(alpha, bases)
            + bias_adds)


def _zero_handle(inputs, outputs) -> int:
    return 0


def _addcmul_handle(inputs, outputs) -> int:
    """``addcmul`` (x + v·a·b): one multiply-add per output element (KPN's per-pixel kernel taps)."""
    return math.prod(_shape(outputs[0]))


_HANDLES: dict[str, Callable] = {
    "aten::_convolution": _conv_handle,
    "aten::conv2d": _conv_handle,
    "aten::linear": _linear_handle,
    "aten::addmm": _addmm_handle,
    "aten::matmul": _matmul_handle,
    "aten::mm": _matmul_handle,
    "aten::bmm": _matmul_handle,
    "aten::einsum": _einsum_handle,
    "acda::atom_conv2d": _atom_conv_handle,
    "acda::acda_conv2d": _acda_conv_handle,
    "acda::acda_alpha_conv2d": _acda_alpha_conv_handle,
    "aten::addcmul": _addcmul_handle,
    "aten::addcmul_": _addcmul_handle,
}
# Explicit zeros: data movement, shape arithmetic, element-wise and normalisation ops.
_ZERO_OPS = [
    "aten::im2col", "aten::col2im", "aten::pad", "aten::constant_pad_nd", "aten::add", "aten::add_",
    "aten::sub", "aten::mul", "aten::mul_", "aten::div", "aten::floordiv", "aten::relu", "aten::relu_",
    "aten::tanh", "aten::tanh_", "aten::sigmoid", "aten::batch_norm", "aten::max_pool2d",
    "aten::avg_pool2d", "aten::adaptive_avg_pool2d", "aten::softmax", "aten::flatten", "aten::cat",
    "aten::dropout", "aten::dropout_", "aten::gelu", "aten::silu", "aten::silu_", "aten::hardswish",
    "aten::hardswish_", "aten::hardsigmoid", "aten::hardsigmoid_", "aten::sigmoid_", "aten::mean",
    "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::pixel_shuffle",
    "aten::pixel_unshuffle", "aten::sum", "aten::exp", "aten::neg", "aten::rsub",
    "aten::clamp", "aten::abs", "aten::sqrt",
]
_HANDLES.update({name: _zero_handle for name in _ZERO_OPS})


@dataclass
class FlopCount:
    """FLOPs of one forward pass (paper convention, see docs/profiling.md)."""

    total: int
    by_module: dict[str, int] = field(default_factory=dict)
    by_operator: dict[str, int] = field(default_factory=dict)

    def module(self, name: str) -> int:
        return self.by_module.get(name, 0)

    def atom_generation(self, name: str, layer: nn.Module, output_size: tuple[int, int], batch: int = 1) -> int:
        """FLOPs of the atom generation of ``ACDAConv2d`` ``layer`` (submodule ``name``; ``""`` for the root):
        its generator Φ plus the reconstruction D = α·ψ (paper Eq. 4), which ``ACDAConv2d`` runs inside the
        fused op (``acda::acda_alpha_conv2d``), so fvcore counts it at the layer, not in the generator."""
        prefix = f"{name}." if name else ""
        generator = layer.generator
        alpha = (batch, generator.num_atoms, generator.num_basis_elements, *output_size)
        return self.module(f"{prefix}generator") + reconstruction_macs(alpha, generator.bases.shape)


def count_flops(module: nn.Module, inputs: Any, *, strict: bool = True) -> FlopCount:
    """FLOPs of ``module(*inputs)`` with fvcore and the handles above.

    ``strict`` raises ``RuntimeError`` naming any operator fvcore met without a handle.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation, used by fvcore
            from fvcore.nn import FlopCountAnalysis
    except ImportError as error:
        raise ImportError("acda.profile.count_flops needs fvcore, which is not installed: install the suite's "
                          "extra, pip install 'acda-repro[repro]' (or pip install fvcore)") from error

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    analysis = FlopCountAnalysis(module, inputs)
    analysis.set_op_handle(**_HANDLES)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation, used by fvcore
        total = int(analysis.total())
    unsupported = analysis.unsupported_ops()
    if strict and unsupported:
        raise RuntimeError(f"operators without a FLOP handle: {dict(unsupported)}")
    by_operator = {k: int(v) for k, v in analysis.by_operator().items()}
    by_module = {k: int(v) for k, v in analysis.by_module().items()}
    return FlopCount(total, by_module, by_operator)


def flop_counter_macs(module: nn.Module, inputs: Any) -> int:
    """Multiply-adds counted by ``torch.utils.flop_counter.FlopCounterMode`` (its FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*inputs)
    return counter.get_total_flops() // 2


def executed_macs(fn: Callable[[], Any]) -> int:
    """Multiply-adds ``torch.utils.flop_counter.FlopCounterMode`` counts while ``fn()`` runs (e.g. a whole
    training step: forward, backward, each op's executed work, ACDA's custom ops included)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() // 2


# ---------------------------------------------------------------- closed forms
def closed_form(
    kind: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    height: int,
    width: int,
    *,
    num_atoms: int = 6,
    num_basis_elements: int = 18,
    hidden: int = 64,
    bias: bool = True,
) -> dict[str, int]:
    """Closed-form FLOPs and parameters of one layer (paper §4.4, with Table 6's convention).

    ``kind``: ``"conv"``; ``"acda_conv"`` (atom conv c'·m·l²·hw + coefficient conv c'·m·c·hw);
    ``"paper_generator"`` (1×1 c'→d, 3×3 d→m·S·m', reconstruction m·S·m'·l² per pixel).
    """
    c_in, c_out, k, hw, m, b, d = in_channels, out_channels, kernel_size, height * width, num_atoms, num_basis_elements, hidden
    bias_adds = c_out * hw if bias else 0
    if kind == "conv":
        return {"flops": c_in * c_out * k * k * hw + bias_adds, "params": c_in * c_out * k * k + (c_out if bias else 0)}
    if kind == "acda_conv":
        atoms = (1, m, k, k, height, width)
        return {"flops": acda_macs((1, c_in), atoms, (c_out, c_in, m)) + bias_adds,
                "params": c_out * c_in * m + (c_out if bias else 0)}
    if kind == "paper_generator":
        outs = m * b
        flops = (c_in * d + d) * hw + (d * outs * 9 + outs) * hw + outs * k * k * hw
        return {"flops": flops, "params": c_in * d + d + d * outs * 9 + outs}
    raise ValueError(f"kind must be 'conv', 'acda_conv' or 'paper_generator', got {kind!r}")


# ---------------------------------------------------------------- memory
def _cpu_peak(fn: Callable[[], Any]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and str(e.device_type()) == "DeviceType.CPU"]
    events.sort(key=lambda event: event[0])  # stable: same-time events keep their recorded order
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def peak_memory(fn: Callable[[], Any], device: torch.device | str | None = None) -> int:
    """Peak bytes allocated while ``fn()`` runs, above what was allocated before.

    CUDA devices use the caching allocator's statistics; the CPU uses the profiler's allocator
    events (see docs/profiling.md).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    if device.type != "cpu":
        raise ValueError(f"peak_memory measures 'cpu' or 'cuda' devices, got {device.type!r}")
    return _cpu_peak(fn)


