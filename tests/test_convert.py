"""acda.convert: nn.Conv2d → ACDAConv2d (or a peer layer) of the same geometry, in any model."""
import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v3_small, resnet18

from acda import ACDAConv2d
from acda.convert import Conv2dReplacement, convert, plan
from acda.peers import CondConv2d, DFNConv2d, DynamicConv2d

GEOMETRY = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation")


def _convs(model):
    return {name: m for name, m in model.named_modules() if type(m) is nn.Conv2d}


def _same_geometry(old: nn.Conv2d, new: nn.Module) -> bool:
    return all(getattr(old, a) == getattr(new, a) for a in GEOMETRY) and (old.bias is None) == (new.bias is None)


@pytest.mark.slow
def test_resnet18_every_conv_converted_output_shape_unchanged():
    model = resnet18(weights=None).eval()
    convs = _convs(model)
    todo = plan(model)
    assert todo.converted == list(convs) and len(convs) == 20 and todo.skipped == {}
    converted = convert(model)
    new = dict(converted.named_modules())
    assert all(isinstance(new[n], ACDAConv2d) and _same_geometry(c, new[n]) for n, c in convs.items())
    assert _convs(model) == convs  # inplace=False left the original alone
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert converted.eval()(x).shape == model(x).shape == (1, 1000)


@pytest.mark.slow
def test_mobilenet_v3_small_depthwise_convs_skipped():
    model = mobilenet_v3_small(weights=None).eval()
    convs = _convs(model)
    depthwise = [n for n, c in convs.items() if c.groups != 1]
    todo = plan(model)
    assert sorted(todo.skipped) == sorted(depthwise) and len(depthwise) == 11
    assert all("groups=" in reason for reason in todo.skipped.values())
    assert todo.converted == [n for n in convs if n not in depthwise]
    converted = convert(model)
    new = dict(converted.named_modules())
    assert all(type(new[n]) is nn.Conv2d for n in depthwise)
    assert all(_same_geometry(convs[n], new[n]) for n in todo.converted)
    assert all(isinstance(new[n], ACDAConv2d) for n in todo.converted)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert converted.eval()(x).shape == model(x).shape == (1, 1000)


def test_even_and_non_square_kernels_skipped_where_and_inplace():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 2), nn.Conv2d(4, 4, (3, 5)),
                          nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), nn.Conv2d(4, 4, 5, padding=2))
    where = lambda name, conv: name != "4"  # noqa: E731
    todo = plan(model, where=where)
    assert all(type(m) is nn.Conv2d for m in model)  # plan changes nothing
    assert todo.converted == ["0"] and set(todo.skipped) == {"1", "2", "3"}
    assert "even" in todo.skipped["1"] and "square" in todo.skipped["2"] and "reflect" in todo.skipped["3"]
    assert convert(model, where=where, inplace=True, num_atoms=2, generator="official") is model
    assert isinstance(model[0], ACDAConv2d) and model[0].num_atoms == 2
    assert model[0].generator.variant == "official" and type(model[4]) is nn.Conv2d
    assert all(type(model[i]) is nn.Conv2d for i in (1, 2, 3))


@pytest.mark.parametrize("layer,kwargs", [(CondConv2d, {"num_experts": 2}), (DynamicConv2d, {"num_kernels": 2})])
def test_peer_layers_convert_grouped_convolutions_too(layer, kwargs):
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False))
    todo = plan(model, layer=layer)
    assert todo.converted == ["0", "1"] and todo.skipped == {} and todo.layer is layer
    converted = convert(model, layer=layer, **kwargs)
    assert all(isinstance(m, layer) for m in converted)
    assert converted[1].groups == 8 and converted[1].bias is None
    assert converted(torch.randn(2, 4, 6, 6)).shape == (2, 8, 6, 6)


def test_a_bare_convolution_is_converted():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    assert plan(conv).converted == [""]
    assert isinstance(convert(conv), ACDAConv2d) and isinstance(convert(conv, inplace=True), ACDAConv2d)
    assert type(conv) is nn.Conv2d


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("layer", [ACDAConv2d, CondConv2d])
def test_convolutions_inside_converted_layers_are_skipped(layer):
    """The generator's own convolutions inside an ACDA or DFN layer are never converted, only reported."""
    model = nn.Sequential(ACDAConv2d(3, 16, 3, padding=1), nn.ReLU(), DFNConv2d(16, 16, 3, padding=1),
                          nn.Conv2d(16, 16, 3, padding=1))
    inner = [n for n, m in model.named_modules() if type(m) is nn.Conv2d and n != "3"]
    assert len(inner) == 4 and all(n.startswith(("0.generator.", "2.generator.")) for n in inner)
    todo = plan(model, layer=layer)
    assert todo.converted == ["3"] and sorted(todo.skipped) == sorted(inner)
    assert all(todo.skipped[n].startswith("part of ACDAConv2d '0':" if n[0] == "0" else "part of DFNConv2d '2':")
               for n in inner)
    converted = convert(model, layer=layer)
    assert isinstance(converted[3], layer)
    for i in (0, 2):
        assert [type(m) for m in converted[i].modules()] == [type(m) for m in model[i].modules()]
        assert _count(converted[i]) == _count(model[i])
    whole = plan(ACDAConv2d(3, 4, 3)).skipped
    assert set(whole) == {"generator.body.0", "generator.head"}
    assert all(reason.startswith("part of the ACDAConv2d model:") for reason in whole.values())


def test_converting_twice_changes_nothing_more():
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1))
    once = convert(model)
    twice = convert(once)
    assert _count(twice) == _count(once) and [type(m) for m in twice.modules()] == [type(m) for m in once.modules()]
    assert plan(once).converted == [] and len(plan(once).skipped) == 4


def test_a_new_layer_type_needs_only_its_own_hooks():
    class Shifted(Conv2dReplacement):  # a layer defined outside acda: convert needs no change for it
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias)

        def forward(self, x):
            return self.conv(x) + 1

        @classmethod
        def unsupported_reason(cls, conv):
            return super().unsupported_reason(conv) or (f"stride={conv.stride}" if conv.stride != (1, 1) else None)

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, stride=2), nn.Conv2d(4, 4, 1, groups=2))
    todo = plan(model, layer=Shifted)
    assert todo.converted == ["0"] and set(todo.skipped) == {"1", "2"} and "stride=(2, 2)" in todo.skipped["1"]
    converted = convert(model, layer=Shifted)
    assert isinstance(converted[0], Shifted) and converted[0].conv.kernel_size == (3, 3)
    assert plan(converted, layer=Shifted).skipped["0.conv"].startswith("part of Shifted '0'")
    with pytest.raises(ValueError, match="cannot replace.*stride"):
        Shifted.from_conv(model[1])


def test_from_conv_keeps_geometry_device_and_dtype():
    conv = nn.Conv2d(4, 6, 5, stride=2, padding=2, dilation=1, bias=False).double()
    layer = ACDAConv2d.from_conv(conv, num_atoms=3)
    assert _same_geometry(conv, layer) and layer.num_atoms == 3 and layer.coef.dtype == torch.float64
    grouped = CondConv2d.from_conv(nn.Conv2d(4, 8, 3, groups=4), num_experts=2)
    assert grouped.groups == 4 and grouped.num_experts == 2
    with pytest.raises(ValueError, match="ACDAConv2d cannot replace.*groups=4"):
        ACDAConv2d.from_conv(nn.Conv2d(4, 8, 3, groups=4))
    assert DFNConv2d.unsupported_reason(nn.Conv2d(4, 8, 4)).endswith("is even (bases need an odd size)")


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="model"):
        convert("resnet")
    with pytest.raises(TypeError, match="where"):
        convert(nn.Conv2d(1, 1, 3), where=True)
    with pytest.raises(ValueError, match=r"layer must be a Conv2dReplacement subclass \(one of \['ACDAConv2d', "
                                         r"'CondConv2d', 'DFNConv2d', 'DynamicConv2d'"):
        convert(nn.Conv2d(1, 1, 3), layer=nn.Linear)
    with pytest.raises(ValueError, match="layer"):
        plan(nn.Conv2d(1, 1, 3), layer=ACDAConv2d(1, 1, 3))
