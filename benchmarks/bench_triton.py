"""pytest-benchmark timings of the Triton atom convolution on CUDA (paper §3.2, Eq. 5; Table 6 shape).

    pytest benchmarks/bench_triton.py --benchmark-enable --benchmark-json=triton.json

Table 6 layer shape with the issue's GPU batch: N=32, 256→256 channels, 100×100, m=6, k ∈ {3, 5, 7},
in fp32 with TF32 allowed and in bf16. Kinds: ``conv`` (cuDNN ``nn.Conv2d``, the baseline),
``atom`` (the Triton atom-convolution kernels alone: ``acda.ops.triton_atom_conv``), ``acda``
(the whole ``ACDAConv2d`` layer with ``backend="triton"``: generator, atom conv, 1×1 coefficients).
Each timed call synchronises the device. ``extra_info`` holds forward FLOPs (multiply-adds: closed
forms of ``acda.profile``, ``acda.ops.custom_op.macs`` for ``atom``; for ``acda`` the atom and coefficient
convolutions, generator excluded), peak memory, device name and torch version.

Skipped without CUDA (the interpreter can test these kernels on CPU but not time them).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from acda import ACDAConv2d
from acda.ops import triton_atom_conv
from acda.ops.custom_op import macs
from acda.profile import closed_form, peak_memory
from acda.utils import conv_output_size

if not triton_atom_conv.is_available():
    pytest.skip("the Triton backend needs CUDA and triton: nothing to time here", allow_module_level=True)

N, C, HW, M = 32, 256, (100, 100), 6
DTYPES = {"tf32": torch.float32, "bf16": torch.bfloat16}


def _setup(kind: str, k: int, dtype: torch.dtype, backward: bool):
    """Return ``(run, flops)``: a closure doing one forward (+ backward) and its FLOP count."""
    device = torch.device("cuda")
    pad = k // 2
    x = torch.randn(N, C, *HW, device=device, dtype=dtype, requires_grad=backward)
    if kind == "atom":
        out_hw = conv_output_size(HW, (k, k), (1, 1), (pad, pad), (1, 1))
        atoms = torch.randn(N, M, k, k, *out_hw, device=device, dtype=dtype)
        grad_out = torch.randn(N, C * M, *out_hw, device=device, dtype=dtype)
        one, padding = (1, 1), (pad, pad)

        def run():
            out = triton_atom_conv.forward(x.detach(), atoms, one, padding, one)
            if backward:
                triton_atom_conv.backward(grad_out, x.detach(), atoms, one, padding, one, True, True)
            torch.cuda.synchronize()
            return out

        return run, macs(x.shape, atoms.shape)

    if kind == "conv":
        layer = nn.Conv2d(C, C, k, padding=pad)
        flops = closed_form("conv", C, C, k, *HW)["flops"]
    else:
        layer = ACDAConv2d(C, C, k, padding=pad, num_atoms=M, backend="triton")
        flops = closed_form("acda_conv", C, C, k, *HW, num_atoms=M)["flops"]  # generator not counted
    layer = layer.to(device=device, dtype=dtype)

    def run():
        if backward:
            out = layer(x)
            out.backward(torch.ones_like(out))
        else:
            with torch.no_grad():
                out = layer(x)
        torch.cuda.synchronize()
        return out

    return run, N * flops


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("kind", ["conv", "atom", "acda"])
@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
def test_triton_time(benchmark, kind, k, dtype_name, mode):
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    run, flops = _setup(kind, k, DTYPES[dtype_name], mode == "forward_backward")
    run()  # warm-up: Triton compiles on the first call
    benchmark.extra_info.update(
        flops_forward=flops,
        peak_bytes=peak_memory(run, "cuda"),
        device=torch.cuda.get_device_name(),
        torch=torch.__version__,
        dtype=dtype_name,
    )
    out = benchmark(run)
    assert torch.isfinite(out).all()
