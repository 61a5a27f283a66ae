"""pytest-benchmark timings of the Triton backend on CUDA (paper §3.2, Eq. 5): the whole-layer GPU suite.

    pytest benchmarks/bench_triton.py --benchmark-enable --benchmark-json=triton.json
    python -m benchmarks.report --json triton.json --device-tag cuda    # → results/benchmarks-cuda.md

Rows ``conv`` (cuDNN), ``triton_atom``, ``acda_layer`` (``backend="triton"``) and ``acda_layer_reference``
(peak memory only) at N=32, fp32 (TF32) and bf16, with the card's name. Skipped without CUDA;
``pytest benchmarks`` runs each case once at ``bench_acda.SMOKE_SHAPE``. Details: docs/performance.md,
section "Benchmark rows".
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from acda.ops import triton_atom_conv
from acda.ops.custom_op import macs as atom_macs
from acda.profile import closed_form, peak_memory
from acda.utils import conv_output_size

from .bench_acda import NUM_ATOMS, SHAPES, SMOKE_SHAPE, _rounds, layer_macs, paired_ratio, run_info, whole_layer

if not triton_atom_conv.is_available():
    pytest.skip("the Triton backend needs CUDA and triton: nothing to time here", allow_module_level=True)

DEVICE = torch.device("cuda")
N = 32  # the GPU batch of the whole-layer GPU targets
GPU_SHAPES = {name: (N, *dims[1:]) for name, dims in SHAPES.items()}
DTYPES = {"tf32": torch.float32, "bf16": torch.bfloat16}
IMPLS = ("conv", "triton_atom", "acda_layer", "acda_layer_reference")
PAIRED = ("triton_atom", "acda_layer")


def _setup(impl: str, shape: tuple[int, int, int, int], k: int, dtype: torch.dtype, backward: bool):
    """Return ``(run, macs)``: a closure doing one forward (+ backward) and its forward multiply-adds."""
    torch.manual_seed(0)
    device = DEVICE
    n, c, h, w = shape
    pad = k // 2
    x = torch.randn(n, c, h, w, device=device, dtype=dtype, requires_grad=backward)
    if impl == "triton_atom":
        out_hw = conv_output_size((h, w), (k, k), (1, 1), (pad, pad), (1, 1))
        atoms = torch.randn(n, NUM_ATOMS, k, k, *out_hw, device=device, dtype=dtype)
        grad_out = torch.randn(n, c * NUM_ATOMS, *out_hw, device=device, dtype=dtype)
        one, padding = (1, 1), (pad, pad)

        def run():
            out = triton_atom_conv.forward(x.detach(), atoms, one, padding, one)
            if backward:
                triton_atom_conv.backward(grad_out, x.detach(), atoms, one, padding, one, True, True)
            torch.cuda.synchronize()
            return out

        return run, atom_macs(x.shape, atoms.shape)

    if impl == "conv":
        layer = nn.Conv2d(c, c, k, padding=pad)
        count = n * closed_form("conv", c, c, k, h, w)["flops"]
    else:
        layer = whole_layer(c, k, backend="triton" if impl == "acda_layer" else "reference")
        count = n * layer_macs(layer, h, w)
    layer = layer.to(device=device, dtype=dtype)
    grad = torch.randn(n, c, h, w, device=device, dtype=dtype) if backward else None

    def run():
        if backward:
            for p in (x, *layer.parameters()):
                p.grad = None
            out = layer(x)
            out.backward(grad)
        else:
            with torch.no_grad():
                out = layer(x)
        torch.cuda.synchronize()
        return out

    return run, count


def _cases():
    for shape_name in GPU_SHAPES:
        for dtype_name in DTYPES:
            for k in (3, 5, 7):
                for mode in ("forward", "forward_backward"):
                    for impl in IMPLS:
                        if impl == "acda_layer_reference" and mode == "forward":
                            continue  # only its forward+backward peak memory is a target's denominator
                        yield pytest.param(shape_name, dtype_name, k, mode, impl,
                                           id=f"{shape_name}-{dtype_name}-k{k}-{mode}-{impl}")


@pytest.mark.parametrize("shape_name,dtype_name,k,mode,impl", list(_cases()))
def test_triton_time(benchmark, shape_name, dtype_name, k, mode, impl):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    smoke = benchmark.disabled  # `pytest benchmarks` (CI, or the test suite on a GPU): small shapes, no timing
    shape = SMOKE_SHAPE if smoke else GPU_SHAPES[shape_name]
    dtype, backward = DTYPES[dtype_name], mode == "forward_backward"
    try:
        run, count = _setup(impl, shape, k, dtype, backward)
        run()  # warm-up: Triton compiles on the first call
        peak = peak_memory(run, DEVICE)
    except torch.cuda.OutOfMemoryError as e:  # the unfold reference at N=32 is the only candidate
        torch.cuda.empty_cache()
        pytest.skip(f"{impl} does not fit on {torch.cuda.get_device_name()}: {str(e).splitlines()[0]}")
    benchmark.extra_info.update(
        shape=shape_name, shape_dims=list(shape), k=k, mode=mode, impl=impl, dtype=dtype_name, macs=count,
        peak_bytes=peak, smoke=smoke, suite="triton", **run_info(DEVICE, provenance=not smoke),
    )
    if smoke:
        assert torch.isfinite(benchmark(run)).all()
        return
    if impl == "acda_layer_reference":  # memory only: one timed round
        out = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    else:
        out = benchmark(run)
    assert torch.isfinite(out).all()
    if impl in PAIRED:
        conv_run, _ = _setup("conv", shape, k, dtype, backward)
        conv_run()
        ratio, pairs = paired_ratio(run, conv_run, _rounds(benchmark.stats.stats.median))
        benchmark.extra_info.update(paired_ratio_to_conv=ratio, paired_rounds=pairs)
