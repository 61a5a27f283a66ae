"""``torch.ops.acda.atom_conv2d``: opcheck, torch.compile without graph breaks, FLOP counting, dispatch."""

import pytest
import torch

from acda import ACDAConv2d, acda_conv2d, atom_conv2d, ops
from acda.ops import custom_op, reference, resolve_backend
from acda.profile import closed_form, count_flops, flop_counter_macs


def _small(dtype, requires_grad=False):
    x = torch.randn(2, 3, 7, 6, dtype=dtype, requires_grad=requires_grad)
    atoms = torch.randn(2, 4, 3, 3, 4, 3, dtype=dtype, requires_grad=requires_grad)
    return x, atoms  # stride 2, padding 1 → 4 × 3


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck(backend, dtype):
    x, atoms = _small(dtype, requires_grad=True)
    torch.library.opcheck(torch.ops.acda.atom_conv2d.default, (x, atoms, [2, 2], [1, 1], [1, 1], backend))
    grad = torch.randn(2, 12, 4, 3, dtype=dtype)
    for needs in [(True, True), (True, False), (False, True)]:
        torch.library.opcheck(torch.ops.acda.atom_conv2d_backward.default,
                              (grad, x.detach(), atoms.detach(), [2, 2], [1, 1], [1, 1], *needs, backend))


def test_auto_dispatch_and_bad_backend():
    assert resolve_backend("auto", "cpu") == "native"
    assert resolve_backend("auto", "meta") == "native"
    assert resolve_backend("reference", "cpu") == "reference"
    with pytest.raises(ValueError, match="backend must be 'auto' or one of"):
        resolve_backend("cuda-magic", "cpu")
    x, atoms = _small(torch.float32)
    with pytest.raises(TypeError, match="backend must be a str"):
        atom_conv2d(x, atoms, 2, 1, backend=None)


def test_an_unknown_backend_name_is_refused_where_it_is_given():
    known = r"\['native', 'reference', 'shift', 'triton'\]"
    x, atoms = _small(torch.float32)
    with pytest.raises(ValueError, match=rf"backend must be 'auto' or one of {known}, got 'cuda-magic'"):
        ACDAConv2d(3, 4, 3, backend="cuda-magic")  # at construction, not at the first forward
    with pytest.raises(ValueError, match=rf"one of {known}"):
        atom_conv2d(x, atoms, 2, 1, backend="cuda-magic")
    with pytest.raises(ValueError, match=rf"one of {known}"):
        acda_conv2d(x, atoms, torch.randn(5, 3, 4), None, 2, 1, backend="cuda-magic")
    with pytest.raises(ValueError, match=rf"unknown backend 'cuda-magic'; registered: {known}"):
        torch.ops.acda.atom_conv2d(x, atoms, [2, 2], [1, 1], [1, 1], "cuda-magic")


def test_a_backend_is_added_with_one_keyword_call():
    with pytest.raises(TypeError):
        ops.register_backend("positional", reference.forward, reference.backward, torch.contiguous_format,
                             lambda device: True)
    with pytest.raises(TypeError):
        ops.Backend("positional", reference.forward, reference.backward, torch.contiguous_format, lambda device: True)
    backend = ops.register_backend("test_unfold", forward=reference.forward, backward=reference.backward,
                                   memory_format=torch.contiguous_format, available=lambda device: True)
    try:
        assert ops.BACKENDS["test_unfold"] is backend and ops.get_backend("test_unfold") is backend
        assert "test_unfold" in ops.backend_names() and backend.fused_forward is None
        x, atoms = _small(torch.float64, requires_grad=True)
        coef = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
        out = acda_conv2d(x, atoms, coef, None, 2, 1, backend="test_unfold")  # no fused pair: atom conv + 1×1
        grads = torch.autograd.grad(out.square().sum(), (x, atoms, coef))
        want = acda_conv2d(x, atoms, coef, None, 2, 1, backend="reference")
        torch.testing.assert_close(out, want)
        torch.testing.assert_close(grads, torch.autograd.grad(want.square().sum(), (x, atoms, coef)))
        with pytest.raises(ValueError, match="already registered"):
            ops.register_backend("test_unfold", forward=reference.forward, backward=reference.backward,
                                 memory_format=torch.contiguous_format, available=lambda device: True)
    finally:
        del ops.BACKENDS["test_unfold"]
    with pytest.raises(ValueError, match="both fused_forward and fused_backward"):
        ops.register_backend("half_fused", forward=reference.forward, backward=reference.backward,
                             memory_format=torch.contiguous_format, available=lambda device: True,
                             fused_forward=reference.fused_forward)
    with pytest.raises(ValueError, match="other than 'auto'"):
        ops.register_backend("auto", forward=reference.forward, backward=reference.backward,
                             memory_format=torch.contiguous_format, available=lambda device: True)
    assert "half_fused" not in ops.BACKENDS and "auto" not in ops.BACKENDS


def test_default_backend_runs_the_custom_op_forward_and_backward(spy_backend):
    with spy_backend("native", "forward", "backward") as calls:
        x, atoms = _small(torch.float64, requires_grad=True)
        out = atom_conv2d(x, atoms, 2, 1)
        out.square().sum().backward()
    assert calls == {"forward": 1, "backward": 1}
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_double_backward_through_native_op():
    x, atoms = _small(torch.float64, requires_grad=True)
    coef = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(
        lambda a, b, c: acda_conv2d(a, b, c, None, 2, 1, backend="native"), (x, atoms, coef), fast_mode=True
    )


def test_flop_counter_mode_counts_the_op():
    """FlopCounterMode: forward N·C·m·k²·H'·W' MACs; backward as many per requested gradient."""
    from torch.utils.flop_counter import FlopCounterMode

    x, atoms = _small(torch.float32, requires_grad=True)
    macs = custom_op.macs(x.shape, atoms.shape)
    assert macs == 2 * 3 * 4 * 9 * 12
    counter = FlopCounterMode(display=False)
    with counter:
        out = atom_conv2d(x, atoms, 2, 1, backend="native")
    assert counter.get_total_flops() == 2 * macs
    with counter:
        out.backward(torch.ones_like(out))
    assert counter.get_total_flops() == 2 * 2 * macs


@pytest.mark.parametrize("k", [3, 7])
def test_layer_flops_match_closed_form(k):
    """fvcore (acda.profile) and FlopCounterMode count the native layer like the reference one (§4.4)."""
    layer = ACDAConv2d(16, 8, k, padding=k // 2, backend="native").eval()
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        flops = count_flops(layer, x)
    assert flops.total - flops.atom_generation("", layer, (12, 12)) == closed_form("acda_conv", 16, 8, k, 12, 12)["flops"]
    reference = ACDAConv2d(16, 8, k, padding=k // 2, backend="reference").eval()
    reference.load_state_dict(layer.state_dict())
    assert flop_counter_macs(layer, x) == flop_counter_macs(reference, x)


def test_meta_and_autocast():
    layer = ACDAConv2d(4, 6, 3, stride=2, padding=1, device="meta", backend="native")
    assert layer(torch.empty(2, 4, 9, 8, device="meta")).shape == (2, 6, 5, 4)
    layer = ACDAConv2d(3, 4, 3, padding=1, backend="native")
    x = torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), layer(x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int64,
                                   torch.bool])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 40, 6, 11), (3, 17, 1, 129), (0, 4, 3, 3), (2, 33, 0, 4)])
def test_channels_first_copies_a_channels_last_tensor(dtype, shape):
    """torch.ops.acda.channels_first (blocked transpose, partial 16 × 16 tiles at every edge) equals ATen's copy."""
    x = (torch.randn(shape) * 10).to(dtype).contiguous(memory_format=torch.channels_last)
    y = torch.ops.acda.channels_first(x)
    assert y.is_contiguous() and y.dtype == dtype and torch.equal(y, x)
    if x.numel():
        assert y.data_ptr() != x.data_ptr()


def test_channels_first_opcheck_and_other_layouts():
    x = torch.randn(2, 5, 4, 3).contiguous(memory_format=torch.channels_last)
    torch.library.opcheck(torch.ops.acda.channels_first.default, (x,))
    for t in (torch.randn(2, 5, 4, 3), torch.randn(2, 5, 4, 6)[..., ::2]):  # contiguous; neither layout
        y = torch.ops.acda.channels_first(t)
        assert y.is_contiguous() and torch.equal(y, t) and y.data_ptr() != t.data_ptr()
    if ops.native.load_extension() is not None:
        with pytest.raises(RuntimeError, match="t must be 4-D"):
            ops.native.load_extension().channels_first(torch.randn(2, 3, 4))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_layer_input_gradient_comes_back_in_the_input_layout(layout):
    """The native layer reads x channels-last; a contiguous x gets a contiguous gradient (blocked transpose of the
    channels-last sum of both branches' gradients), equal to the reference backend's."""
    torch.manual_seed(0)
    layer = ACDAConv2d(5, 4, 3, padding=1, backend="native").double()
    ref = ACDAConv2d(5, 4, 3, padding=1, backend="reference").double()
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 6, 7, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    grad = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    layer(x).backward(grad)
    ref(x_ref).backward(grad)
    assert x.grad.is_contiguous(memory_format=layout)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-10)


def test_to_channels_last_gradcheck_and_double_backward():
    from acda.functional import to_channels_last

    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: to_channels_last(t).square(), (x,))
    assert torch.autograd.gradgradcheck(lambda t: to_channels_last(t).square(), (x,))
    assert to_channels_last(x).is_contiguous(memory_format=torch.channels_last)
    cl = x.detach().contiguous(memory_format=torch.channels_last)
    assert to_channels_last(cl) is cl


def test_layer_with_input_requiring_grad_traces_for_flop_counting():
    """fvcore traces the layer with an input that requires grad (a model's inner activations): no Python op."""
    layer = ACDAConv2d(4, 6, 3, padding=1, backend="native")
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    assert count_flops(layer, x).total > 0
