"""acda.convert: nn.Conv2d → ACDAConv2d (or a peer layer) of the same geometry, in any model."""
import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v3_small, resnet18

from acda import ACDAConv2d
from acda.convert import convert
from acda.peers import CondConv2d, DynamicConv2d

GEOMETRY = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation")


def _convs(model):
    return {name: m for name, m in model.named_modules() if type(m) is nn.Conv2d}


def _same_geometry(old: nn.Conv2d, new: nn.Module) -> bool:
    return all(getattr(old, a) == getattr(new, a) for a in GEOMETRY) and (old.bias is None) == (new.bias is None)


@pytest.mark.slow
def test_resnet18_every_conv_converted_output_shape_unchanged():
    model = resnet18(weights=None).eval()
    convs = _convs(model)
    result = convert(model)
    assert result.converted == list(convs) and len(convs) == 20 and result.skipped == {}
    new = dict(result.model.named_modules())
    assert all(isinstance(new[n], ACDAConv2d) and _same_geometry(c, new[n]) for n, c in convs.items())
    assert _convs(model) == convs  # inplace=False left the original alone
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert result.model.eval()(x).shape == model(x).shape == (1, 1000)


@pytest.mark.slow
def test_mobilenet_v3_small_depthwise_convs_skipped():
    model = mobilenet_v3_small(weights=None).eval()
    convs = _convs(model)
    depthwise = [n for n, c in convs.items() if c.groups != 1]
    result = convert(model)
    assert sorted(result.skipped) == sorted(depthwise) and len(depthwise) == 11
    assert all("groups=" in reason for reason in result.skipped.values())
    assert result.converted == [n for n in convs if n not in depthwise]
    new = dict(result.model.named_modules())
    assert all(type(new[n]) is nn.Conv2d for n in depthwise)
    assert all(_same_geometry(convs[n], new[n]) for n in result.converted)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert result.model.eval()(x).shape == model(x).shape == (1, 1000)


def test_even_and_non_square_kernels_skipped_where_and_inplace():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 2), nn.Conv2d(4, 4, (3, 5)),
                          nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), nn.Conv2d(4, 4, 5, padding=2))
    result = convert(model, where=lambda name, conv: name != "4", inplace=True, num_atoms=2, generator="official")
    assert result.model is model and result.converted == ["0"]
    assert set(result.skipped) == {"1", "2", "3"}
    assert "even" in result.skipped["1"] and "square" in result.skipped["2"] and "reflect" in result.skipped["3"]
    assert isinstance(model[0], ACDAConv2d) and model[0].num_atoms == 2
    assert model[0].generator.variant == "official" and type(model[4]) is nn.Conv2d


@pytest.mark.parametrize("layer,kwargs", [(CondConv2d, {"num_experts": 2}), (DynamicConv2d, {"num_kernels": 2})])
def test_peer_layers_convert_grouped_convolutions_too(layer, kwargs):
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False))
    result = convert(model, layer=layer, **kwargs)
    assert result.converted == ["0", "1"] and result.skipped == {}
    assert result.model[1].groups == 8 and result.model[1].bias is None
    assert result.model(torch.randn(2, 4, 6, 6)).shape == (2, 8, 6, 6)


def test_a_bare_convolution_is_converted():
    result = convert(nn.Conv2d(3, 4, 3, padding=1))
    assert result.converted == [""] and isinstance(result.model, ACDAConv2d)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="model"):
        convert("resnet")
    with pytest.raises(TypeError, match="where"):
        convert(nn.Conv2d(1, 1, 3), where=True)
    with pytest.raises(ValueError, match="layer"):
        convert(nn.Conv2d(1, 1, 3), layer=nn.Linear)
