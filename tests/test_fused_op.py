"""Fused two-layer ACDA (Eq. 5 + Eq. 6), ``torch.ops.acda.acda_conv2d``: equals the reference composition."""

import contextlib

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from acda import acda_conv2d
from acda.ops import custom_op, native, reference, shift
from acda.utils import conv_output_size

CASES = [
    # N, C, O, (H, W), m, k, stride, padding, dilation
    (1, 5, 4, (7, 9), 3, 1, (1, 1), (0, 0), (1, 1)),
    (2, 5, 7, (7, 9), 3, 3, (1, 1), (1, 1), (1, 1)),
    (2, 37, 13, (11, 8), 6, 3, (2, 2), (0, 1), (1, 1)),
    (1, 20, 9, (9, 10), 4, 3, (1, 2), (2, 2), (2, 2)),
    (2, 17, 33, (10, 7), 7, 5, (1, 1), (2, 2), (1, 1)),
    (1, 70, 20, (9, 11), 13, 5, (2, 1), (1, 3), (1, 2)),
    (1, 3, 2, (6, 5), 1, 7, (1, 1), (3, 3), (1, 1)),
    (2, 33, 33, (13, 12), 6, 7, (2, 3), (3, 2), (1, 1)),
]
ALL = (True, True, True)


def _inputs(n, c, o, size, m, k, stride, padding, dilation, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    oh, ow = conv_output_size(size, (k, k), stride, padding, dilation)
    x = torch.randn(n, c, *size, dtype=dtype, generator=g)
    atoms = torch.randn(n, m, k, k, oh, ow, dtype=dtype, generator=g)
    coef = torch.randn(o, c, m, dtype=dtype, generator=g) / c
    bias = torch.randn(o, dtype=dtype, generator=g)
    return x, atoms, coef, bias


FUSED = [("native", tile, dtype, tol, library) for tile in (0, 1, 7)
         for dtype, tol, library in ((torch.float64, 1e-11, "onednn"), (torch.float32, 2e-4, "onednn"),
                                     (torch.float32, 2e-4, "mkl"))]
FUSED += [("shift", None, dtype, tol, None) for dtype, tol in ((torch.float64, 1e-11), (torch.float32, 2e-4))]


@pytest.mark.parametrize("n,c,o,size,m,k,stride,padding,dilation", CASES)
@pytest.mark.parametrize("impl,tile,dtype,tol,library", FUSED)
def test_fused_backend_equals_reference(n, c, o, size, m, k, stride, padding, dilation, impl, tile, dtype, tol,
                                        library):
    """Every native tile size (1: a GEMM per pixel; 7: tiles that straddle rows and stripes) with either tile GEMM
    library (fp32; fp64 always multiplies with ATen's mm), and the pure-PyTorch fallback, give the reference."""
    with contextlib.nullcontext() if library is None else native.tile_gemm(library):
        _check_fused_backend(n, c, o, size, m, k, stride, padding, dilation, dtype, tol, impl, tile)


def _check_fused_backend(n, c, o, size, m, k, stride, padding, dilation, dtype, tol, impl, tile):
    x, atoms, coef, bias = _inputs(n, c, o, size, m, k, stride, padding, dilation, dtype)
    geometry = (stride, padding, dilation)
    backend = {"native": native, "shift": shift}[impl]
    extra = () if tile is None else (tile,)
    ref = reference.fused_forward(x, atoms, coef, bias, *geometry)
    torch.testing.assert_close(backend.fused_forward(x, atoms, coef, bias, *geometry, *extra), ref, rtol=tol, atol=tol)
    torch.testing.assert_close(backend.fused_forward(x, atoms, coef, None, *geometry, *extra),
                               reference.fused_forward(x, atoms, coef, None, *geometry), rtol=tol, atol=tol)
    grad = torch.randn_like(ref)
    expected = reference.fused_backward(grad, x, atoms, coef, *geometry, *ALL)
    got = backend.fused_backward(grad, x, atoms, coef, *geometry, *ALL, *extra)
    for name, a, b in zip(("x", "atoms", "coef"), got, expected):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda s, name=name: f"grad {name}: {s}")


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (False, True, True), (True, False, True)])
@pytest.mark.parametrize("impl", [native, shift], ids=["native", "shift"])
def test_only_requested_gradients_are_computed(impl, needs, assert_requested):
    x, atoms, coef, _ = _inputs(*CASES[4], torch.float64)
    grad = torch.randn(2, 33, 10, 7, dtype=torch.float64)
    got = impl.fused_backward(grad, x, atoms, coef, (1, 1), (2, 2), (1, 1), *needs)
    assert_requested(needs, got, reference.fused_backward(grad, x, atoms, coef, (1, 1), (2, 2), (1, 1), *ALL))


def test_layouts_channels_last_and_non_contiguous():
    x, atoms, coef, bias = _inputs(*CASES[2], torch.float64)
    geometry = ((2, 2), (0, 1), (1, 1))
    ref = reference.fused_forward(x, atoms, coef, bias, *geometry)
    grad = torch.randn_like(ref)
    expected = reference.fused_backward(grad, x, atoms, coef, *geometry, *ALL)
    variants = [
        (x.to(memory_format=torch.channels_last), atoms, coef, grad.to(memory_format=torch.channels_last)),
        (x.transpose(2, 3).contiguous().transpose(2, 3),
         atoms.permute(0, 4, 5, 2, 3, 1).contiguous().permute(0, 5, 3, 4, 1, 2),
         coef.permute(2, 0, 1).contiguous().permute(1, 2, 0), grad.transpose(2, 3).contiguous().transpose(2, 3)),
        (torch.stack([x, x], 1)[:, 0], torch.stack([atoms, atoms], -1)[..., 1], coef, grad[:, :, :, :]),
    ]
    for xv, av, cv, gv in variants:
        torch.testing.assert_close(native.fused_forward(xv, av, cv, bias, *geometry), ref, rtol=1e-11, atol=1e-11)
        got = native.fused_backward(gv, xv, av, cv, *geometry, *ALL)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_result_does_not_depend_on_thread_count_or_timing():
    """Per-chunk grad-coef partial sums are added in a fixed order: repeated runs are bit-identical."""
    x, atoms, coef, _ = _inputs(*CASES[7], torch.float32)
    grad = torch.randn(2, 33, 7, 4)
    geometry = ((2, 3), (3, 2), (1, 1))
    first = native.fused_backward(grad, x, atoms, coef, *geometry, *ALL, 5)
    for _ in range(3):
        again = native.fused_backward(grad, x, atoms, coef, *geometry, *ALL, 5)
        for a, b in zip(first, again):
            assert torch.equal(a, b)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = native.fused_backward(grad, x, atoms, coef, *geometry, *ALL, 5)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(first, serial):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_computes_in_fp32(dtype):
    x, atoms, coef, bias = _inputs(*CASES[1], torch.float32)
    out = native.fused_forward(x.to(dtype), atoms.to(dtype), coef.to(dtype), bias.to(dtype), (1, 1), (1, 1), (1, 1))
    assert out.dtype == dtype
    ref = reference.fused_forward(x.to(dtype).float(), atoms.to(dtype).float(), coef.to(dtype).float(),
                                  bias.to(dtype).float(), (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("backend", ["native", "shift"])
def test_opcheck(backend, dtype):
    x, atoms, coef, bias = _inputs(2, 3, 5, (7, 6), 4, 3, (2, 2), (1, 1), (1, 1), dtype)
    args = ([2, 2], [1, 1], [1, 1], backend)
    for b in (bias, None):
        inputs = [t.requires_grad_() for t in (x.clone(), atoms.clone(), coef.clone())]
        inputs.append(None if b is None else b.clone().requires_grad_())
        torch.library.opcheck(torch.ops.acda.acda_conv2d.default, (*inputs, *args))
    grad = torch.randn(2, 5, 4, 3, dtype=dtype)
    for needs in [ALL, (True, False, False), (False, True, True)]:
        torch.library.opcheck(torch.ops.acda.acda_conv2d_backward.default,
                              (grad, x, atoms, coef, *args[:3], *needs, backend))


@pytest.mark.parametrize("backend", ["native", "shift"])
def test_gradcheck_and_gradgradcheck_through_acda_conv2d(backend):
    x, atoms, coef, bias = (t.requires_grad_() for t in _inputs(2, 3, 4, (6, 5), 3, 3, (1, 2), (1, 1), (2, 1),
                                                                   torch.float64, seed=3))

    def fn(*args):
        return acda_conv2d(*args, (1, 2), (1, 1), (2, 1), backend=backend)

    assert torch.autograd.gradcheck(fn, (x, atoms, coef, bias))
    assert torch.autograd.gradgradcheck(fn, (x, atoms, coef, bias), fast_mode=True)


def test_acda_conv2d_runs_the_fused_op_once_per_pass(spy_backend):
    with spy_backend("native", "fused_forward", "fused_backward") as calls:
        x, atoms, coef, bias = (t.requires_grad_() for t in _inputs(*CASES[1], torch.float64))
        out = acda_conv2d(x, atoms, coef, bias, 1, 1)
        out.square().sum().backward()
    calls = {"forward": calls["fused_forward"], "backward": calls["fused_backward"]}
    assert calls == {"forward": 1, "backward": 1}
    assert out.is_contiguous(memory_format=torch.channels_last)
    ref = reference.fused_forward(x, atoms, coef, bias, (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(bias.grad, 2 * ref.sum((0, 2, 3)))


def test_flop_counter_mode_counts_executed_work():
    """Forward: atom conv + 1×1 step. Backward: grad coef (GEMM + recomputed atom conv), grad z (GEMM),
    grad x and grad atoms (one atom pass each)."""
    x, atoms, coef, _ = (t.requires_grad_() for t in _inputs(*CASES[1], torch.float32))
    atom, gemm = custom_op.macs(x.shape, atoms.shape), custom_op.coefficient_macs(atoms.shape, coef.shape)
    assert (atom, gemm) == (2 * 5 * 3 * 9 * 63, 2 * 63 * 7 * 5 * 3)
    counter = FlopCounterMode(display=False)
    with counter:
        out = acda_conv2d(x, atoms, coef, None, 1, 1, backend="native")
    assert counter.get_total_flops() == 2 * (atom + gemm)
    with counter:
        out.backward(torch.ones_like(out))
    assert counter.get_total_flops() == 2 * ((atom + gemm) + gemm + 2 * atom)


def test_bad_input_is_named():
    x, atoms, coef, bias = _inputs(*CASES[1], torch.float32)
    with pytest.raises(ValueError, match="coef must be a 3-D tensor"):
        acda_conv2d(x, atoms, coef[0], bias, 1, 1, backend="native")
    with pytest.raises(ValueError, match="x must have 5 channels"):
        acda_conv2d(x[:, :4], atoms, coef, bias, 1, 1, backend="native")
    with pytest.raises(ValueError, match="bias must have shape"):
        acda_conv2d(x, atoms, coef, bias[:3], 1, 1, backend="native")
    with pytest.raises(TypeError, match="backend must be a str"):
        acda_conv2d(x, atoms, coef, bias, 1, 1, backend=3)
    with pytest.raises(RuntimeError, match="tile must be >= 0"):
        native.fused_forward(x, atoms, coef, bias, (1, 1), (1, 1), (1, 1), -1)
