"""The α path of the fused op, ``torch.ops.acda.acda_alpha_conv2d`` (what ``ACDAConv2d`` runs): two-layer ACDA
on the atoms D = α·ψ (paper Eq. 4–6), formed per tile in cache. Exact against the per-pixel filter formula
(Eq. 2 with K = A·D) and the reference composition, forward and every gradient, on every backend."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from acda import ACDAConv2d, acda_conv2d
from acda.functional import acda_alpha_conv2d, per_pixel_conv2d, per_pixel_filters
from acda.ops import BACKENDS, custom_op, native, reference
from acda.utils import conv_output_size

CASES = [
    # N, C, O, (H, W), m, B, k, stride, padding, dilation
    (1, 5, 4, (7, 9), 3, 1, 1, (1, 1), (0, 0), (1, 1)),
    (2, 5, 7, (7, 9), 3, 4, 3, (1, 1), (1, 1), (1, 1)),
    (2, 37, 13, (11, 8), 6, 6, 3, (2, 2), (0, 1), (1, 1)),
    (1, 20, 9, (9, 10), 4, 5, 3, (1, 2), (2, 2), (2, 2)),
    (3, 17, 33, (5, 4), 7, 12, 5, (1, 1), (2, 2), (1, 1)),
    (1, 3, 2, (6, 5), 1, 18, 7, (1, 1), (3, 3), (1, 1)),
    (2, 33, 33, (13, 12), 6, 18, 7, (2, 3), (3, 2), (1, 1)),
]
ALL = (True, True, True)


def _inputs(n, c, o, size, m, b, k, stride, padding, dilation, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    oh, ow = conv_output_size(size, (k, k), stride, padding, dilation)
    x = torch.randn(n, c, *size, dtype=dtype, generator=g)
    alpha = torch.randn(n, m, b, oh, ow, dtype=dtype, generator=g)
    bases = torch.randn(b, k, k, dtype=dtype, generator=g) / k
    coef = torch.randn(o, c, m, dtype=dtype, generator=g) / c
    bias = torch.randn(o, dtype=dtype, generator=g)
    return x, alpha, bases, coef, bias


def _geometry(case):
    return case[7:]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype,tol,library", [(torch.float64, 1e-11, "onednn"), (torch.float32, 3e-4, "onednn"),
                                               (torch.float32, 3e-4, "mkl")])
@pytest.mark.parametrize("tile", [0, 1, 5])
def test_native_alpha_path_equals_reference(case, dtype, tol, library, tile):
    """Every tile size (1: a GEMM per pixel; 5: tiles straddling rows, stripes and, for small images, images), with
    either tile GEMM library (fp32; fp64 always multiplies with ATen's mm)."""
    with native.tile_gemm(library):
        _check_alpha_path(case, dtype, tol, tile)


def _check_alpha_path(case, dtype, tol, tile):
    x, alpha, bases, coef, bias = _inputs(*case, dtype)
    geometry = _geometry(case)
    ref = reference.alpha_forward(x, alpha, bases, coef, bias, *geometry)
    torch.testing.assert_close(native.alpha_forward(x, alpha, bases, coef, bias, *geometry, tile), ref,
                               rtol=tol, atol=tol)
    torch.testing.assert_close(native.alpha_forward(x, alpha, bases, coef, None, *geometry, tile),
                               reference.alpha_forward(x, alpha, bases, coef, None, *geometry), rtol=tol, atol=tol)
    grad = torch.randn_like(ref)
    expected = reference.alpha_backward(grad, x, alpha, bases, coef, *geometry, *ALL)
    got = native.alpha_backward(grad, x, alpha, bases, coef, *geometry, *ALL, tile)
    for name, a, b in zip(("x", "alpha", "coef"), got, expected):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda s, name=name: f"grad {name}: {s}")


def test_equals_the_per_pixel_filter_formula_forward_and_backward():
    """Eq. 2 with K_ij = A·D_ij and D_ij = α_ij·ψ, applied directly, gives the same output and gradients."""
    case = CASES[3]
    x, alpha, bases, coef, bias = (t.requires_grad_() for t in _inputs(*case, torch.float64, seed=1))
    stride, padding, dilation = _geometry(case)
    out = acda_alpha_conv2d(x, alpha, bases, coef, bias, stride, padding, dilation, backend="native")
    filters = per_pixel_filters(reference.atoms_from_alpha(alpha, bases), coef)
    direct = per_pixel_conv2d(x, filters, stride, padding, dilation) + bias[:, None, None]
    torch.testing.assert_close(out, direct, rtol=1e-11, atol=1e-11)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, alpha, coef, bias), grad)
    want = torch.autograd.grad(direct, (x, alpha, coef, bias), grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (False, True, True), (True, False, True)])
def test_only_requested_gradients_are_computed(needs, assert_requested):
    case = CASES[4]
    x, alpha, bases, coef, _ = _inputs(*case, torch.float64)
    grad = torch.randn(3, 33, 5, 4, dtype=torch.float64)
    got = native.alpha_backward(grad, x, alpha, bases, coef, *_geometry(case), *needs)
    assert_requested(needs, got, reference.alpha_backward(grad, x, alpha, bases, coef, *_geometry(case), *ALL))


def test_layouts_and_empty_batch():
    case = CASES[2]
    x, alpha, bases, coef, bias = _inputs(*case, torch.float64)
    geometry = _geometry(case)
    ref = reference.alpha_forward(x, alpha, bases, coef, bias, *geometry)
    strided = (x.to(memory_format=torch.channels_last), alpha.transpose(3, 4).contiguous().transpose(3, 4),
               bases.transpose(1, 2).contiguous().transpose(1, 2), coef.transpose(0, 2).contiguous().transpose(0, 2))
    torch.testing.assert_close(native.alpha_forward(*strided, bias, *geometry), ref, rtol=1e-11, atol=1e-11)
    empty = [t[:0] for t in (x, alpha)]
    out = native.alpha_forward(empty[0], empty[1], bases, coef, bias, *geometry)
    assert out.shape == (0, 13, *ref.shape[2:])
    gx, ga, gc = native.alpha_backward(out, empty[0], empty[1], bases, coef, *geometry, *ALL)
    assert gx.shape == empty[0].shape and ga.shape == empty[1].shape
    assert torch.equal(gc, torch.zeros_like(coef))


def test_grad_alpha_keeps_the_layout_of_alpha():
    """α from a channels-last generator is pixel-major (N, H', W', m, B) in memory; grad α comes back so, no copy."""
    case = CASES[2]
    x, alpha, bases, coef, bias = _inputs(*case, torch.float64)
    pixel_major = alpha.permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)
    for a in (alpha, pixel_major):
        a = a.clone().requires_grad_()
        out = acda_alpha_conv2d(x, a, bases, coef, bias, *_geometry(case), backend="native")
        (grad,) = torch.autograd.grad(out.square().sum(), a)
        assert grad.stride() == a.stride()
        ref = reference.alpha_forward(x, a, bases, coef, bias, *_geometry(case))
        torch.testing.assert_close(grad, torch.autograd.grad(ref.square().sum(), a)[0], rtol=1e-11, atol=1e-11)
    inputs = (x, pixel_major.requires_grad_(), bases, coef.requires_grad_(), bias)
    torch.library.opcheck(torch.ops.acda.acda_alpha_conv2d.default, (*inputs, [2, 2], [0, 1], [1, 1], "native"))


def test_non_finite_alpha_on_padding_taps_propagates_as_in_the_reference():
    """An infinite α makes its atom infinite on every tap, padding included: 0·inf = NaN, as the reference."""
    case = CASES[1]
    x, alpha, bases, coef, bias = _inputs(*case, torch.float64)
    alpha[0, 1, 2, 0, 0] = float("inf")
    geometry = _geometry(case)
    got = native.alpha_forward(x, alpha, bases, coef, bias, *geometry)
    ref = reference.alpha_forward(x, alpha, bases, coef, bias, *geometry)
    torch.testing.assert_close(got, ref, equal_nan=True)
    assert got.isnan().any()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_computes_in_fp32(dtype):
    x, alpha, bases, coef, bias = (t.to(dtype) for t in _inputs(*CASES[1], torch.float32))
    out = native.alpha_forward(x, alpha, bases, coef, bias, (1, 1), (1, 1), (1, 1))
    assert out.dtype == dtype
    ref = reference.alpha_forward(*(t.float() for t in (x, alpha, bases, coef, bias)), (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck(dtype):
    x, alpha, bases, coef, bias = _inputs(2, 3, 5, (7, 6), 4, 5, 3, (2, 2), (1, 1), (1, 1), dtype)
    args = ([2, 2], [1, 1], [1, 1], "native")
    for b in (bias, None):
        inputs = [t.clone().requires_grad_() for t in (x, alpha)] + [bases, coef.clone().requires_grad_()]
        inputs.append(None if b is None else b.clone().requires_grad_())
        torch.library.opcheck(torch.ops.acda.acda_alpha_conv2d.default, (*inputs, *args))
    grad = torch.randn(2, 5, 4, 3, dtype=dtype)
    for needs in [ALL, (True, False, False), (False, True, True)]:
        torch.library.opcheck(torch.ops.acda.acda_alpha_conv2d_backward.default,
                              (grad, x, alpha, bases, coef, *args[:3], *needs, "native"))


def test_gradcheck_and_gradgradcheck():
    x, alpha, coef, bias = (t.requires_grad_() for i, t in enumerate(
        _inputs(2, 3, 4, (6, 5), 3, 4, 3, (1, 2), (1, 1), (2, 1), torch.float64, seed=3)) if i != 2)
    bases = _inputs(2, 3, 4, (6, 5), 3, 4, 3, (1, 2), (1, 1), (2, 1), torch.float64, seed=3)[2]

    def fn(x, alpha, coef, bias):
        return acda_alpha_conv2d(x, alpha, bases, coef, bias, (1, 2), (1, 1), (2, 1), backend="native")

    assert torch.autograd.gradcheck(fn, (x, alpha, coef, bias))
    assert torch.autograd.gradgradcheck(fn, (x, alpha, coef, bias), fast_mode=True)


def test_bases_that_require_grad_take_the_atoms_path():
    """The fused op does not differentiate ψ: with bases requiring grad the atoms are reconstructed instead."""
    x, alpha, bases, coef, bias = (t.requires_grad_() for t in _inputs(*CASES[1], torch.float64))
    out = acda_alpha_conv2d(x, alpha, bases, coef, bias, 1, 1, backend="native")
    out.square().sum().backward()
    ref_inputs = [t.detach().clone().requires_grad_() for t in (x, alpha, bases, coef, bias)]
    ref = reference.alpha_forward(*ref_inputs, (1, 1), (1, 1), (1, 1))
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref)
    for a, b in zip((x, alpha, bases, coef, bias), ref_inputs):
        torch.testing.assert_close(a.grad, b.grad)


def test_the_custom_op_refuses_to_differentiate_bases():
    x, alpha, bases, coef, bias = (t.requires_grad_() for t in _inputs(*CASES[1], torch.float64))
    out = torch.ops.acda.acda_alpha_conv2d(x, alpha, bases, coef, bias, [1, 1], [1, 1], [1, 1], "native")
    with pytest.raises(RuntimeError, match="does not differentiate the bases"):
        out.sum().backward()


def test_layer_runs_the_alpha_op_once_per_pass_and_equals_the_atoms_path(spy_backend):
    torch.manual_seed(0)
    layer = ACDAConv2d(6, 5, 5, padding=2, backend="native").double()
    x = torch.randn(2, 6, 9, 8, dtype=torch.float64, requires_grad=True)
    with spy_backend("native", "alpha_forward", "alpha_backward", "fused_forward") as calls:
        out = layer(x)
        out.square().sum().backward()
    assert calls == {"alpha_forward": 1, "alpha_backward": 1, "fused_forward": 0}
    grads = (x.grad.clone(), *(p.grad.clone() for p in layer.parameters()))
    x.grad = None
    layer.zero_grad()
    atoms_path = acda_conv2d(x, layer.generate_atoms(x), layer.coef, layer.bias, 1, 2, backend="reference")
    atoms_path.square().sum().backward()
    torch.testing.assert_close(out, atoms_path, rtol=1e-11, atol=1e-11)
    for a, b in zip(grads, (x.grad, *(p.grad for p in layer.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", sorted(set(BACKENDS) - {"triton"}))
def test_every_backend_gives_the_same_layer(backend):
    """Backends without an α path reconstruct the atoms; all agree with the reference."""
    torch.manual_seed(1)
    layer = ACDAConv2d(4, 3, 3, stride=2, padding=1, generator="official", backend=backend).double().eval()
    x = torch.randn(2, 4, 8, 6, dtype=torch.float64)
    ref = acda_conv2d(x, layer.generate_atoms(x), layer.coef, layer.bias, 2, 1, backend="reference")
    torch.testing.assert_close(layer(x), ref, rtol=1e-11, atol=1e-11)


def test_flop_counts_add_the_reconstruction():
    x, alpha, bases, coef, _ = (t.requires_grad_() for t in _inputs(*CASES[1], torch.float32))
    atoms = custom_op.alpha_atoms_shape(alpha.shape, bases.shape)
    fused = custom_op.acda_macs(x.shape, atoms, coef.shape)
    rebuild = custom_op.reconstruction_macs(alpha.shape, bases.shape)
    assert rebuild == 2 * 3 * 4 * 9 * 63
    counter = FlopCounterMode(display=False)
    with counter:
        out = acda_alpha_conv2d(x, alpha, bases.detach(), coef, None, 1, 1, backend="native")
    assert counter.get_total_flops() == 2 * (fused + rebuild)
    atom, gemm = custom_op.macs(x.shape, atoms), custom_op.coefficient_macs(atoms, coef.shape)
    with counter:
        out.backward(torch.ones_like(out))
    assert counter.get_total_flops() == 2 * ((atom + gemm) + gemm + 2 * atom + 2 * rebuild)


def test_bad_input_is_named_the_same_on_every_backend():
    x, alpha, bases, coef, bias = _inputs(*CASES[1], torch.float32)
    for backend in ("native", "shift", "reference"):
        with pytest.raises(ValueError, match=r"alpha must be a 5-D tensor \(N, m, B, H', W'\)"):
            acda_alpha_conv2d(x, alpha[0], bases, coef, bias, 1, 1, backend=backend)
        with pytest.raises(TypeError, match="bases must be a torch.Tensor"):
            acda_alpha_conv2d(x, alpha, None, coef, bias, 1, 1, backend=backend)
        with pytest.raises(ValueError, match=r"alpha must hold B=3 coefficients per atom"):
            acda_alpha_conv2d(x, alpha, bases[:3], coef, bias, 1, 1, backend=backend)
        with pytest.raises(ValueError, match=r"alpha batch size 1 does not match x batch size 2"):
            acda_alpha_conv2d(x, alpha[:1], bases, coef, bias, 1, 1, backend=backend)
        with pytest.raises(ValueError, match=r"alpha must have output spatial size \(7, 9\)"):
            acda_alpha_conv2d(x, alpha[..., :5], bases, coef, bias, 1, 1, backend=backend)
        with pytest.raises(ValueError, match=r"alpha must hold m=2 atoms \(coef.shape\[2\]\), got 3"):
            acda_alpha_conv2d(x, alpha, bases, coef[..., :2], bias, 1, 1, backend=backend)
        with pytest.raises(TypeError, match="bases has dtype torch.float64"):
            acda_alpha_conv2d(x, alpha, bases.double(), coef, bias, 1, 1, backend=backend)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_official_generator_gradients_in_channels_last(backend):
    """PyTorch's CPU batch_norm backward is wrong for a channels-last input and a gradient in a permuted layout
    (as α's view/einsum backward produces); the official generator hands its BatchNorms the gradient in the
    input's layout (acda.generator.GradInLayout). Found by tests/test_fuzz.py (a 3×1 output)."""
    torch.manual_seed(0)
    layer = ACDAConv2d(2, 3, 3, padding="valid", num_atoms=1, num_bases=2, generator="official",
                       backend=backend).double()
    x = torch.randn(1, 2, 5, 3, dtype=torch.float64, requires_grad=True)
    grads = [torch.autograd.grad(layer(t).square().sum(), x)[0]
             for t in (x, x.contiguous(memory_format=torch.channels_last))]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(lambda t: layer(t), (x,))
