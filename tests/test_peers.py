"""Peer layers (acda.peers): shapes, gradients, degenerate cases equal to a plain convolution."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from acda import acda_conv2d, per_pixel_conv2d
from acda.peers import CondConv2d, DFNConv2d, DynamicConv2d

GEOMETRIES = [(1, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 2), (2, 2, 1)]  # stride, padding, dilation


@pytest.mark.parametrize("stride,padding,dilation", GEOMETRIES)
@pytest.mark.parametrize("make", [
    lambda *a: DFNConv2d(*a), lambda *a: DFNConv2d(*a, num_atoms=None),
    lambda *a: CondConv2d(*a, num_experts=3), lambda *a: DynamicConv2d(*a, num_kernels=3),
])
def test_output_shape_matches_conv2d(make, stride, padding, dilation):
    x = torch.randn(2, 4, 11, 9)
    ref = nn.Conv2d(4, 5, 3, stride, padding, dilation)(x)
    assert make(4, 5, 3, stride, padding, dilation)(x).shape == ref.shape


@pytest.mark.parametrize("make", [
    lambda: DFNConv2d(8, 4, 3, padding=1), lambda: DFNConv2d(8, 4, 3, padding=1, generator="official"),
    lambda: CondConv2d(8, 4, 3, padding=1, num_experts=2),
    lambda: DynamicConv2d(8, 4, 3, padding=1, num_kernels=2, temperature=1.0, min_hidden=8),
])
def test_gradients_reach_every_parameter(make):
    layer = make()  # built under the seeded fixture; 8 hidden attention units so that ReLU is not all dead
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    layer(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("groups", [1, 2])
def test_dynamic_conv_with_one_kernel_is_a_plain_convolution(groups):
    layer = DynamicConv2d(4, 6, 3, stride=2, padding=1, groups=groups, num_kernels=1).double()
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64)
    want = F.conv2d(x, layer.weight[0], layer.bias[0], 2, 1, 1, groups)
    torch.testing.assert_close(layer(x), want)


def test_condconv_with_one_expert_is_a_routed_plain_convolution():
    layer = CondConv2d(4, 6, 3, padding=1, num_experts=1).double()
    x = torch.randn(3, 4, 7, 7, dtype=torch.float64)
    r = layer.routing_weights(x)  # (N, 1)
    plain = F.conv2d(x, layer.weight[0], layer.bias[0], padding=1)
    torch.testing.assert_close(layer(x), r.view(-1, 1, 1, 1) * plain)
    with torch.no_grad():  # saturated routing, r ≡ 1: exactly nn.Conv2d
        layer.routing.weight.zero_()
        layer.routing.bias.fill_(100.0)
    torch.testing.assert_close(layer(x), plain)


def test_mixture_is_per_example():
    layer = DynamicConv2d(3, 4, 3, padding=1, num_kernels=3, temperature=1.0).double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    pi = layer.attention_weights(x)
    torch.testing.assert_close(pi.sum(1), torch.ones(2, dtype=torch.float64))
    for n in range(2):
        w = torch.einsum("e,eoikl->oikl", pi[n], layer.weight)
        torch.testing.assert_close(layer(x)[n:n + 1], F.conv2d(x[n:n + 1], w, pi[n] @ layer.bias, padding=1))


def _freeze_generator(layer: DFNConv2d, head_bias: torch.Tensor) -> None:
    with torch.no_grad():
        layer.generator.head.weight.zero_()
        layer.generator.head.bias.copy_(head_bias.reshape(-1))


@pytest.mark.parametrize("stride,padding,dilation", GEOMETRIES)
def test_dfn_full_filters_with_constant_generator_is_a_plain_convolution(stride, padding, dilation):
    layer = DFNConv2d(3, 4, 3, stride, padding, dilation, num_atoms=None).double()
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    _freeze_generator(layer, weight)
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    torch.testing.assert_close(layer(x), F.conv2d(x, weight, layer.bias, stride, padding, dilation))


def test_dfn_atoms_with_constant_generator_is_a_plain_convolution():
    layer = DFNConv2d(3, 4, 5, padding=2, num_atoms=2).double()
    atoms = torch.randn(2, 5, 5, dtype=torch.float64)
    _freeze_generator(layer, atoms)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    weight = torch.einsum("ocb,buv->ocuv", layer.coef, atoms)
    torch.testing.assert_close(layer(x), F.conv2d(x, weight, layer.bias, padding=2))


@pytest.mark.parametrize("stride,padding,dilation", GEOMETRIES)
def test_dfn_direct_application_equals_two_layer_acda(stride, padding, dilation):
    """Same per-pixel atoms: the direct path (full K_ij) equals ACDA's two-layer path (Eq. 5, 6)."""
    layer = DFNConv2d(3, 4, 3, stride, padding, dilation, num_atoms=2).double()
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    out = layer.output_size((9, 10))
    atoms = layer.generator.coefficients(x, out).reshape(2, 2, 3, 3, *out)
    want = acda_conv2d(x, atoms, layer.coef, layer.bias, stride, padding, dilation)
    torch.testing.assert_close(layer(x), want)


def test_dfn_filters_shape_and_generator_alignment_with_acda():
    from acda import ACDAConv2d
    dfn, acda = DFNConv2d(3, 4, 5, stride=2, padding=1), ACDAConv2d(3, 4, 5, stride=2, padding=1)
    assert dfn.generator.center_offset == acda.generator.center_offset == (1, 1)
    assert dfn.filters(torch.randn(2, 3, 11, 11)).shape == (2, 5, 5, 4, 3, 5, 5)  # (11 + 2 − 5) // 2 + 1 = 5
    assert dfn.generator.head.out_channels == 6 * 25


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="kernel_size"):
        DFNConv2d(3, 4, 4)
    with pytest.raises(ValueError, match="generator"):
        DFNConv2d(3, 4, 3, generator="nope")
    with pytest.raises(ValueError, match="groups"):
        CondConv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="num_kernels"):
        DynamicConv2d(3, 4, 3, num_kernels=0)
    with pytest.raises(ValueError, match="temperature"):
        DynamicConv2d(3, 4, 3, temperature=0)
    with pytest.raises(ValueError, match="in_channels=3"):
        CondConv2d(3, 4, 3)(torch.randn(1, 2, 5, 5))


def test_extra_repr():
    assert "num_experts=8" in repr(CondConv2d(3, 4, 3))
    assert "num_kernels=4, temperature=30" in repr(DynamicConv2d(3, 4, 3))
    assert "num_atoms=None" in repr(DFNConv2d(3, 4, 3, num_atoms=None))


@pytest.mark.parametrize("stride,padding,dilation", GEOMETRIES)
def test_per_pixel_conv2d_with_the_same_filter_everywhere_is_a_convolution(stride, padding, dilation):
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 5, dtype=torch.float64)
    want = F.conv2d(x, weight, None, stride, padding, dilation)
    filters = weight.expand(2, *want.shape[-2:], *weight.shape)  # (N, H', W', O, C, k_h, k_w)
    torch.testing.assert_close(per_pixel_conv2d(x, filters, stride, padding, dilation), want)
    with pytest.raises(ValueError, match=r"x must have 3 channels \(filters.shape\[4\]\), got 2"):
        per_pixel_conv2d(x[:, :2], filters, stride, padding, dilation)


PEERS = [
    pytest.param(lambda *a, **kw: DFNConv2d(*a, **kw), id="dfn"),
    pytest.param(lambda *a, **kw: DFNConv2d(*a, num_atoms=None, generator="official", **kw), id="dfn-full-official"),
    pytest.param(lambda *a, **kw: CondConv2d(*a, num_experts=3, **kw), id="condconv"),
    pytest.param(lambda *a, **kw: DynamicConv2d(*a, num_kernels=3, **kw), id="dyconv"),
]


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]


@pytest.mark.parametrize("device,dtype", [("meta", torch.float32), ("cpu", torch.float64), ("meta", torch.bfloat16)])
@pytest.mark.parametrize("make", PEERS)
def test_factory_kwargs_reach_every_parameter_and_buffer(make, device, dtype):
    """``device=`` / ``dtype=`` as for ``nn.Conv2d``: every parameter, buffer and submodule is built there."""
    layer = make(4, 5, 3, 2, 1, device=device, dtype=dtype)
    tensors = _tensors(layer)
    assert tensors and all(t.device.type == device and t.dtype == dtype for t in tensors)
    x = torch.randn(2, 4, 9, 8, device=device, dtype=dtype)
    out = layer(x)  # meta: no data is touched on the host
    assert out.device.type == device and out.dtype == dtype
    assert out.shape == nn.Conv2d(4, 5, 3, 2, 1, device="meta")(x.to("meta", torch.float32)).shape


@pytest.mark.parametrize("make", PEERS)
def test_factory_kwargs_match_building_then_moving(make):
    built = make(4, 5, 3, padding=1, dtype=torch.float64)
    moved = make(4, 5, 3, padding=1).double()
    assert {n: (p.shape, p.dtype) for n, p in built.state_dict().items()} == \
           {n: (p.shape, p.dtype) for n, p in moved.state_dict().items()}
    moved.load_state_dict(built.state_dict())
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64)
    torch.testing.assert_close(built.eval()(x), moved.eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize("make", PEERS + [pytest.param(lambda *a, **kw: nn.Conv2d(*a, **kw), id="nn.Conv2d")])
def test_no_bias_is_a_registered_none_parameter_as_in_conv2d(make):
    layer = make(4, 5, 3, bias=False)
    assert layer.bias is None
    assert "bias" in layer._parameters and layer._parameters["bias"] is None  # registered, not a plain attribute
    assert "bias" not in dict(layer.named_parameters()) and "bias" not in layer.state_dict()
    layer.bias = nn.Parameter(torch.zeros(1))  # assigning a Parameter later registers it, as in nn.Conv2d
    assert "bias" in dict(layer.named_parameters())
    with_bias = make(4, 5, 3, bias=True)
    assert "bias" in dict(with_bias.named_parameters()) and "bias" in with_bias.state_dict()
