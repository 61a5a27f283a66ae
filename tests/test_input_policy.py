"""One input policy for every backend (docs/backends.md): same errors, same results.

Regression tests of an audit that fed generated cases through the public API on every backend: each
bad input gets the same clear ``ValueError``/``TypeError`` (an ``acda.utils.ArgumentError`` naming
the argument) from the one validation in ``acda.functional``, whatever the backend; each valid one
(including N = 0 and NaN/inf) the reference's result. Triton runs under its CPU interpreter.
"""
from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from acda import ACDAConv2d, acda_conv2d, atom_conv2d, convert
from acda.ops import shift
from acda.peers import CondConv2d, DFNConv2d, DynamicConv2d
from acda.utils import MAX_EXTENT, ArgumentError, conv_output_size, pair

BACKENDS = ["reference", "shift", "native"] + (["triton"] if importlib.util.find_spec("triton") else [])


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Every backend that runs on CPU (Triton under ``TRITON_INTERPRET=1``, as ``tests/test_ops_triton.py``)."""
    if request.param == "triton":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    return request.param


def _inputs(n=2, c=3, size=(6, 5), m=2, k=3, o=4, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
            dtype=torch.float64, grad=False):
    oh, ow = conv_output_size(size, (k, k), stride, padding, dilation)
    tensors = (torch.randn(n, c, *size, dtype=dtype), torch.randn(n, m, k, k, oh, ow, dtype=dtype),
               torch.randn(o, c, m, dtype=dtype), torch.randn(o, dtype=dtype))
    return tuple(t.requires_grad_(grad) for t in tensors)


def _outcome(fn):
    """``("ok", result)`` or ``(exception type, message)``, so backends can be compared on both."""
    try:
        return "ok", fn()
    except Exception as error:  # noqa: BLE001 - the point is to compare them
        return type(error), str(error)


def _same_error_everywhere(call, exc, match):
    """``call(backend)`` raises the same ``exc`` with the same message on every backend, ours, matching ``match``."""
    messages = set()
    for name in BACKENDS:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TRITON_INTERPRET", "1")
            with pytest.raises(exc, match=match) as info:
                call(name)
        assert isinstance(info.value, ArgumentError), f"{name}: {info.value!r} is not from our validation"
        messages.add((type(info.value), str(info.value)))
    assert len(messages) == 1, messages


# ---- 1. convert is a no-op on a converted model ---------------------------------------------------

@pytest.mark.parametrize("layer", [ACDAConv2d, CondConv2d, DynamicConv2d, DFNConv2d])
def test_converting_a_converted_model_is_a_no_op(layer):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1))
    once = convert(model, layer=layer)
    modules = list(once.modules())
    state = {k: v.clone() for k, v in once.state_dict().items()}
    for other in (ACDAConv2d, CondConv2d, DynamicConv2d, DFNConv2d):  # any layer type: nothing inside is touched
        assert convert(once, layer=other, inplace=True) is once
        assert list(once.modules()) == modules and all(a is b for a, b in zip(once.modules(), modules))
        assert all(torch.equal(v, once.state_dict()[k]) for k, v in state.items())


# ---- 2. empty batch --------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False], ids=["acda_conv2d", "atom_conv2d"])
def test_empty_batch_forward_and_backward(backend, fused):
    dtype = torch.float32 if backend == "triton" else torch.float64
    x, atoms, coef, bias = _inputs(n=0, dtype=dtype, grad=True)
    if fused:
        out = acda_conv2d(x, atoms, coef, bias, 1, 1, 1, backend=backend)
        assert out.shape == (0, 4, 6, 5)
    else:
        out = atom_conv2d(x, atoms, 1, 1, 1, backend=backend)
        assert out.shape == (0, 6, 6, 5)
    out.sum().backward()
    assert x.grad.shape == x.shape and atoms.grad.shape == atoms.shape
    if fused:
        assert torch.equal(coef.grad, torch.zeros_like(coef)) and torch.equal(bias.grad, torch.zeros_like(bias))


@pytest.mark.parametrize("generator", ["paper", "official"])
def test_empty_batch_through_the_layer(backend, generator):
    layer = ACDAConv2d(3, 4, 3, padding=1, num_atoms=2, generator=generator, backend=backend)
    x = torch.randn(0, 3, 5, 6, requires_grad=True)
    out = layer(x)
    assert out.shape == (0, 4, 5, 6)
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is None or not p.grad.any() for p in layer.parameters())


# ---- 3. devices ------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["atoms", "coef", "bias"])
def test_a_tensor_on_another_device_is_refused(which):
    def call(backend):
        args = dict(zip(("x", "atoms", "coef", "bias"), _inputs(dtype=torch.float32)))
        args[which] = args[which].to("meta")
        return acda_conv2d(args["x"], args["atoms"], args["coef"], args["bias"], 1, 1, 1, backend=backend)

    _same_error_everywhere(call, ValueError, rf"{which} is on device meta but x is on device cpu")


def test_layer_input_on_another_device_is_refused():
    with pytest.raises(ValueError, match="input is on device meta but the layer's parameters are on cpu"):
        ACDAConv2d(3, 4, 3)(torch.empty(1, 3, 8, 8, device="meta"))


def test_a_backend_unavailable_on_the_device_is_refused(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x, atoms, coef, bias = _inputs(dtype=torch.float32)
    with pytest.raises(ValueError, match="backend 'triton' is not available for tensors on device cpu"):
        acda_conv2d(x, atoms, coef, bias, 1, 1, 1, backend="triton")


# ---- 4. dtypes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64, torch.int32, torch.bool])
@pytest.mark.parametrize("which", ["x", "atoms", "coef", "bias"])
def test_complex_and_integer_tensors_are_refused(dtype, which):
    def call(backend):
        args = dict(zip(("x", "atoms", "coef", "bias"), _inputs(dtype=torch.float32)))
        args[which] = args[which].to(dtype)
        return acda_conv2d(args["x"], args["atoms"], args["coef"], args["bias"], 1, 1, 1, backend=backend)

    _same_error_everywhere(call, TypeError, rf"{which} has dtype {dtype}, but ACDA accepts only torch.float16, "
                                            r"torch.bfloat16, torch.float32, torch.float64")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_every_floating_dtype_is_accepted(backend, dtype):
    x, atoms, coef, bias = _inputs(dtype=torch.float64)
    want = acda_conv2d(x, atoms, coef, bias, 1, 1, 1, backend="reference")
    args = [t.to(dtype) for t in (x, atoms, coef, bias)]
    if backend == "triton" and dtype == torch.float64:
        with pytest.raises(TypeError, match=r"x has dtype torch.float64, but backend 'triton' accepts only"):
            acda_conv2d(*args, 1, 1, 1, backend=backend)
        return
    out = acda_conv2d(*args, 1, 1, 1, backend=backend)
    assert out.dtype == dtype
    tol = {torch.float16: 5e-2, torch.bfloat16: 2e-1, torch.float32: 1e-4, torch.float64: 1e-10}[dtype]
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol * want.abs().max().item())


def test_layer_refuses_integer_and_complex_input():
    layer = ACDAConv2d(3, 4, 3)
    for dtype in (torch.int64, torch.complex64):
        with pytest.raises(TypeError, match=rf"input has dtype {dtype}, but ACDA accepts only"):
            layer(torch.ones(1, 3, 8, 8, dtype=dtype))
    with pytest.raises(TypeError, match=r"dtype must be a floating torch.dtype \(torch.float16, torch.bfloat16, "
                                        r"torch.float32, torch.float64\) or None, got str 'float32'"):
        ACDAConv2d(3, 4, 3, dtype="float32")
    with pytest.raises(TypeError, match="dtype must be a floating torch.dtype .* got dtype torch.int64"):
        ACDAConv2d(3, 4, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match="device is not a valid device: 'gpu0'"):
        ACDAConv2d(3, 4, 3, device="gpu0")


# ---- 5. mixed dtypes -------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["atoms", "coef", "bias"])
def test_mixed_dtypes_are_refused_naming_both(which):
    def call(backend):
        args = dict(zip(("x", "atoms", "coef", "bias"), _inputs(dtype=torch.float32)))
        args[which] = args[which].double()
        return acda_conv2d(args["x"], args["atoms"], args["coef"], args["bias"], 1, 1, 1, backend=backend)

    _same_error_everywhere(call, TypeError, rf"{which} has dtype torch.float64 but x has dtype torch.float32")


def test_layer_refuses_input_of_another_dtype():
    with pytest.raises(TypeError, match="input has dtype torch.float64 but the layer's parameters have dtype "
                                        "torch.float32"):
        ACDAConv2d(3, 4, 3)(torch.randn(1, 3, 8, 8, dtype=torch.float64))


def test_autocast_still_mixes_dtypes():
    x, atoms, coef, bias = _inputs(dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = acda_conv2d(x, atoms.bfloat16(), coef, bias.double(), 1, 1, 1, backend="native")
    assert out.dtype == torch.bfloat16


# ---- 6. degenerate shapes --------------------------------------------------------------------------

DEGENERATE = {
    "m = 0": (dict(m=0), r"atoms must hold at least one atom"),
    "C = 0": (dict(c=0), r"x must have at least one channel"),
    "O = 0": (dict(o=0), r"coef must have at least one output channel"),
    "k = 0": (dict(k=0, padding=(0, 0)), r"atoms must hold at least one atom .* of at least 1×1 taps"),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_sizes_are_refused(case):
    kwargs, match = DEGENERATE[case]

    def call(backend):
        x, atoms, coef, bias = _inputs(dtype=torch.float32, **kwargs)
        return acda_conv2d(x, atoms, coef, bias, 1, kwargs.get("padding", 1), 1, backend=backend)

    _same_error_everywhere(call, ValueError, match)


def test_empty_planes_and_empty_outputs_are_refused():
    x, atoms, coef, bias = _inputs(dtype=torch.float32)
    _same_error_everywhere(lambda b: acda_conv2d(x[:, :, :0], atoms[..., :0, :], coef, bias, 1, 1, 1, backend=b),
                           ValueError, r"input spatial size must be >= 1 in both dimensions; got input size \(0, 5\)")
    small = torch.randn(2, 3, 2, 5)
    _same_error_everywhere(lambda b: acda_conv2d(small, atoms[..., :0, :], coef, bias, 1, 0, 1, backend=b),
                           ValueError, r"input spatial size \(2, 5\) is too small for kernel_size=\(3, 3\)")


# ---- 7. NaN and inf on the padding ----------------------------------------------------------------

def _assert_same_nan(got, want, tol):
    assert torch.equal(got.isnan(), want.isnan()), "NaN at different places"
    torch.testing.assert_close(got.nan_to_num(0), want.nan_to_num(0), rtol=tol, atol=tol)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # Triton's interpreter: 0·inf
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_atom_on_the_padding_gives_nan_everywhere(backend, value):
    dtype, tol = (torch.float32, 1e-4) if backend == "triton" else (torch.float64, 1e-10)
    x, atoms, coef, bias = _inputs(dtype=dtype)
    atoms = atoms.clone()
    atoms[0, 1, 0, 0, 0, 0] = value  # tap (0, 0) of output pixel (0, 0): on the padding
    want_z = atom_conv2d(x, atoms, 1, 1, 1, backend="reference")
    assert want_z[0, 1::2, 0, 0].isnan().all() and not want_z[0, 0::2].isnan().any()
    _assert_same_nan(atom_conv2d(x, atoms, 1, 1, 1, backend=backend), want_z, tol)
    _assert_same_nan(acda_conv2d(x, atoms, coef, bias, 1, 1, 1, backend=backend),
                     acda_conv2d(x, atoms, coef, bias, 1, 1, 1, backend="reference"), tol)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_gradients_propagate_like_the_reference(backend):
    dtype, tol = (torch.float32, 1e-4) if backend == "triton" else (torch.float64, 1e-10)
    x, atoms, coef, bias = _inputs(dtype=dtype)
    atoms[0, 1, 0, 0, 0, 0] = float("inf")
    grad_z = torch.randn(2, 6, 6, 5, dtype=dtype)
    grad_z[1, 3, 0, 4] = float("inf")  # atom 1 of channel 1 at a border pixel of image 1

    def grads(name, fused):
        leaves = [t.detach().clone().requires_grad_() for t in (x, atoms, coef)]
        if fused:
            out = acda_conv2d(*leaves, None, 1, 1, 1, backend=name)
            out.backward(torch.ones_like(out))
        else:
            atom_conv2d(*leaves[:2], 1, 1, 1, backend=name).backward(grad_z)
        return [t.grad for t in leaves if t.grad is not None]

    for fused in (False, True):
        for got, want in zip(grads(backend, fused), grads("reference", fused), strict=True):
            _assert_same_nan(got, want, tol)


# ---- 8. backend names ------------------------------------------------------------------------------

def test_unknown_backend_is_refused_at_construction_and_by_convert():
    with pytest.raises(ValueError, match="backend must be 'auto' or one of"):
        ACDAConv2d(3, 4, 3, backend="cuda-magic")
    with pytest.raises(ValueError, match="backend must be 'auto' or one of"):
        convert(nn.Sequential(nn.ReLU()), backend="cuda-magic")  # nothing to convert: still refused
    with pytest.raises(TypeError, match=r"ACDAConv2d got unexpected keyword options \['num_atom'\]"):
        convert(nn.Sequential(nn.ReLU()), num_atom=3)
    with pytest.raises(TypeError, match=r"\['padding'\] are taken from each convolution"):
        convert(nn.Conv2d(3, 4, 3), padding=1)
    with pytest.raises(ValueError, match="generator must be one of"):
        convert(nn.Conv2d(3, 4, 3), generator="huge")


# ---- 9. messages and sizes -------------------------------------------------------------------------

def test_non_tensor_arguments_are_type_errors_naming_them():
    x, atoms, coef, bias = _inputs(dtype=torch.float32)
    _same_error_everywhere(lambda b: acda_conv2d(x, atoms, coef, [0.0] * 4, 1, 1, 1, backend=b),
                           TypeError, r"bias must be a torch.Tensor \(O,\), got list")
    _same_error_everywhere(lambda b: acda_conv2d(x, atoms, None, None, 1, 1, 1, backend=b),
                           TypeError, r"coef must be a torch.Tensor")
    _same_error_everywhere(lambda b: atom_conv2d(x.numpy(), atoms, 1, 1, 1, backend=b),
                           TypeError, r"x must be a torch.Tensor \(N, C, H, W\), got ndarray")


def test_zero_height_input_is_refused_before_the_generator():
    layer = ACDAConv2d(1, 1, 1, padding=1)  # the output would be 2 × 3: F.conv2d refuses it, so do we
    with pytest.raises(ValueError, match=r"input spatial size must be >= 1 in both dimensions; got input size "
                                         r"\(0, 1\), kernel_size=\(1, 1\), stride=\(1, 1\), padding=\(1, 1\), "
                                         r"dilation=\(1, 1\)"):
        layer(torch.randn(1, 1, 0, 1))


def test_huge_padding_is_refused_before_any_allocation():
    with pytest.raises(ValueError, match="padding is too large: the padded input would have 4294967300 rows"):
        ACDAConv2d(1, 1, 3, padding=2**31)(torch.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="padding is too large: the output plane would have 131076×131076"):
        ACDAConv2d(1, 1, 1, padding=2**16)(torch.randn(1, 1, 4, 4))
    x, atoms, coef, bias = _inputs(n=1, dtype=torch.float32)  # the size is refused before the atoms' shape is checked
    _same_error_everywhere(lambda b: acda_conv2d(x, atoms, coef, bias, 1, 2**30, 1, backend=b),
                           ValueError, rf"the padded input would have {6 + 2**31} rows, more than {MAX_EXTENT}")


def test_same_padding_with_a_huge_dilation_costs_no_memory(backend):
    """``padding="same"``, dilation 10⁶: the off-centre taps read only padding; no backend builds it."""
    dtype = torch.float32 if backend == "triton" else torch.float64
    layer = ACDAConv2d(2, 3, 3, padding="same", dilation=10**6, backend=backend).to(dtype)
    x = torch.randn(2, 2, 5, 4, dtype=dtype, requires_grad=True)
    out = layer(x)
    grads = torch.autograd.grad(out.square().sum(), (x, layer.coef))
    layer.backend = "reference"
    want = layer(x)
    torch.testing.assert_close(out, want)
    for got, ref in zip(grads, torch.autograd.grad(want.square().sum(), (x, layer.coef))):
        torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("stride,padding,dilation,size", [(1, 7, 8, (5, 6)), (2, 9, 9, (4, 7)),
                                                          (3, 4, (1, 6), (2, 9)), (1, (0, 8), (1, 7), (6, 3))])
def test_shift_builds_only_the_padding_it_reads(stride, padding, dilation, size):
    """Taps reading only padding, stride gaps, one axis trimmed and the other not: equal to the reference."""
    stride, padding, dilation = pair(stride, "stride"), pair(padding, "padding", minimum=0), pair(dilation, "dilation")
    x, atoms, coef, _ = _inputs(n=2, c=3, size=size, m=2, k=3, stride=stride, padding=padding, dilation=dilation,
                                grad=True)
    got = acda_conv2d(x, atoms, coef, None, stride, padding, dilation, backend="shift")
    want = acda_conv2d(x, atoms, coef, None, stride, padding, dilation, backend="reference")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    built = shift._pad(x, atoms, stride, padding, dilation)
    assert not all(built.live[0] + built.live[1])  # some tap reads only padding, which is not built
    assert built.data.shape[-1] < size[1] + 2 * padding[1]
    for g, w in zip(torch.autograd.grad(got.square().sum(), (x, atoms, coef)),
                    torch.autograd.grad(want.square().sum(), (x, atoms, coef))):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


# ---- found by tests/test_fuzz.py ------------------------------------------------------------------

@pytest.mark.parametrize("in_channels,num_atoms", [(1, 3), (3, 1), (1, 1)])
def test_native_backward_with_one_channel_or_one_atom_on_two_threads(in_channels, num_atoms):
    """With C = 1 or m = 1 the native kernel's coefficient matrix was a view of ``coef``, which requires grad,
    and its GEMMs on worker threads reached autograd ("mm(): functions with out=... arguments")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        layer = ACDAConv2d(in_channels, 4, 3, padding=1, num_atoms=num_atoms, backend="native").double()
        x = torch.randn(2, in_channels, 16, 16, dtype=torch.float64, requires_grad=True)
        got = torch.autograd.grad(layer(x).square().sum(), (x, layer.coef))
        layer.backend = "reference"
        want = torch.autograd.grad(layer(x).square().sum(), (x, layer.coef))
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(got, want)


# ---- k = 1: truthful num_bases / num_scales --------------------------------------------------------

def test_a_1x1_layer_reports_its_single_trivial_basis():
    layer = ACDAConv2d(3, 4, 1, num_atoms=2)  # num_bases=6 by default, as convert passes to every conv
    assert (layer.num_bases, layer.num_scales, layer.coefficient_scales) == (1, 1, 1)
    assert layer.generator.num_basis_elements == layer.num_bases * layer.num_scales == 1
    assert "num_bases=1, num_scales=1" in repr(layer)
    assert layer.coefficients(torch.randn(2, 3, 4, 5)).shape == (2, 2, 1, 1, 4, 5)
    wide = ACDAConv2d(3, 4, 5, num_bases=4)
    assert (wide.num_bases, wide.num_scales) == (4, 2) and wide.generator.num_basis_elements == 8


def test_metrics_work_on_models_with_1x1_layers():
    from acda.metrics import alpha_diversity

    model = nn.Sequential(ACDAConv2d(3, 4, 1, num_atoms=2), nn.ReLU(), ACDAConv2d(4, 4, 5, padding=2, num_atoms=2))
    out = alpha_diversity(model, torch.randn(2, 3, 6, 6))["per_scale"]
    assert set(out) == {"0", "2"} and all(torch.isfinite(v["image_mean"]).all() for v in out.values())


# ---- 8. the same policy on every layer ------------------------------------------------------------

BAD_INPUTS = {
    "not a tensor": (lambda: [[1.0]], TypeError, r"input must be a torch.Tensor, got list"),
    "3-D": (lambda: torch.randn(3, 6, 6), ValueError, r"expects a 4-D input \(N, C, H, W\)"),
    "channels": (lambda: torch.randn(1, 2, 6, 6), ValueError, r"input must have in_channels=3 channels, got 2"),
    "integer": (lambda: torch.ones(1, 3, 6, 6, dtype=torch.int64), TypeError, r"input has dtype torch.int64"),
    "float64 into float32": (lambda: torch.randn(1, 3, 6, 6, dtype=torch.float64), TypeError,
                             r"input has dtype torch.float64 but the layer's parameters have dtype torch.float32"),
    "too small": (lambda: torch.randn(1, 3, 1, 6), ValueError, r"input spatial size \(1, 6\) is too small"),
}


@pytest.mark.parametrize("layer", [ACDAConv2d, DFNConv2d, CondConv2d, DynamicConv2d], ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_every_layer_refuses_bad_input_with_the_same_error(layer, case):
    make, exc, match = BAD_INPUTS[case]
    module = layer(3, 4, 3).eval()  # no padding: a 1-pixel-high input has no output
    with pytest.raises(exc, match=match) as info:
        module(make())
    assert isinstance(info.value, ArgumentError)


@pytest.mark.parametrize("case", ["dims", "dtype", "m", "channels", "size", "device"])
def test_per_pixel_functions_follow_the_policy(case):
    from acda.functional import per_pixel_conv2d, per_pixel_filters

    x, atoms, coef, _ = _inputs(dtype=torch.float64)
    bad = {
        "dims": (lambda: per_pixel_filters(atoms[0], coef), r"atoms must be a 6-D tensor"),
        "dtype": (lambda: per_pixel_filters(atoms, coef.float()), r"coef.*dtype|dtype.*coef"),
        "m": (lambda: per_pixel_filters(atoms[:, :1], coef), r"atoms must hold m=2 atoms \(coef.shape\[2\]\), got 1"),
        "channels": (lambda: per_pixel_conv2d(x[:, :2], per_pixel_filters(atoms, coef), 1, 1),
                     r"x must have 3 channels \(filters.shape\[4\]\), got 2"),
        "size": (lambda: per_pixel_conv2d(x, per_pixel_filters(atoms, coef), 1, 0),
                 r"filters must have output spatial size \(4, 3\)"),
        "device": (lambda: per_pixel_conv2d(x.to("meta"), per_pixel_filters(atoms, coef), 1, 1), r"device"),
    }
    call, match = bad[case]
    with pytest.raises(ArgumentError, match=match):
        call()
    torch.testing.assert_close(per_pixel_conv2d(x, per_pixel_filters(atoms, coef), 1, 1),
                               acda_conv2d(x, atoms, coef, None, 1, 1, 1, backend="reference"))
