"""Ad-ResNet-s/-m/-l (Appendix A.4, Table A): structure, shapes, variants, parameter arithmetic."""
import pytest
import torch
from torch import nn

from acda import ACDAConv2d
from acda.models import get_model, list_models
from acda.models.adresnet import AdResNet, Bottleneck, adresnet_s
from acda.peers import DFNConv2d
from acda.profile import count_parameters

DEPTHS = {"s": (2, 2, 2, 2), "m": (2, 2, 2, 2), "l": (2, 3, 8, 3)}
WIDTHS = {"s": (64, 128, 256, 512), "m": (256, 512, 512, 1024), "l": (256, 512, 512, 1024)}


def test_registry_lists_every_builder():
    names = set(list_models())
    assert {"adresnet_s", "adresnet_m", "adresnet_l", "adresnet_s_dense", "adresnet_m_dense",
            "adresnet_l_dense"} <= names


@pytest.mark.parametrize("arch", ["s", "m", "l"])
def test_structure_follows_table_a(arch):
    model = get_model(f"adresnet_{arch}")
    assert tuple(len(s) for s in model.stages) == DEPTHS[arch]
    assert tuple(s[-1].shortcut is not None and _out(s[-1]) for s in model.stages) == WIDTHS[arch]
    acda = [m for m in model.modules() if isinstance(m, ACDAConv2d)]
    assert len(acda) == DEPTHS[arch][2] + DEPTHS[arch][3]
    assert [m.kernel_size[0] for m in acda] == [7] * DEPTHS[arch][2] + [5] * DEPTHS[arch][3]
    assert all(m.num_atoms == 6 and m.num_bases == 6 and m.padding == (m.kernel_size[0] // 2,) * 2 for m in acda)
    assert all(m.generator.head.out_channels == 6 * 6 * (m.kernel_size[0] // 2) for m in acda)
    assert model.fc.in_features == WIDTHS[arch][-1] and model.fc.out_features == 1000
    assert all(isinstance(b, Bottleneck) for s in model.stages[2:] for b in s)
    # Strides: Conv2_x, Conv3_x and Conv4_x downsample in their first block, on the k×k layer.
    strided = [(s[0].conv2 if isinstance(s[0], Bottleneck) else s[0].conv1).stride for s in model.stages]
    assert strided == [(1, 1)] + [(2, 2)] * 3


def _out(block) -> int:
    return (block.conv3 if hasattr(block, "conv3") else block.conv2).out_channels


def test_forward_shapes_classifier_and_dense():
    x = torch.randn(2, 3, 32, 32)
    model = adresnet_s(num_classes=10).eval()
    with torch.no_grad():
        assert model(x).shape == (2, 10)
        dense = get_model("adresnet_s_dense").eval()
        assert isinstance(dense.stem[-1], nn.Identity) and dense.fc is None
        assert dense(x).shape == (2, 512, 2, 2)  # stride 16 without the max pool (A.4)
        assert adresnet_s(features_only=True).eval()(x).shape == (2, 512, 1, 1)


def test_backward_reaches_acda_generators():
    model = adresnet_s(num_classes=4)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    gen = next(m for m in model.modules() if isinstance(m, ACDAConv2d)).generator
    assert gen.head.weight.grad is not None and gen.head.weight.grad.abs().sum() > 0


def test_conv_baseline_parameter_count_by_hand():
    """Table 7's "Conv" Ad-ResNet-s: every count below is Table A's arithmetic (weights + 2 per BN channel)."""
    def conv(c, o, k):
        return c * o * k * k + 2 * o  # conv (no bias) + BatchNorm

    stem = conv(3, 64, 7)
    conv1 = 4 * conv(64, 64, 3)
    conv2 = conv(64, 128, 3) + 3 * conv(128, 128, 3) + conv(64, 128, 1)
    conv3 = (conv(128, 128, 1) + conv(128, 128, 7) + conv(128, 256, 1) + conv(128, 256, 1)
             + conv(256, 128, 1) + conv(128, 128, 7) + conv(128, 256, 1))
    conv4 = (conv(256, 256, 1) + conv(256, 256, 5) + conv(256, 512, 1) + conv(256, 512, 1)
             + conv(512, 256, 1) + conv(256, 256, 5) + conv(256, 512, 1))
    fc = 512 * 1000 + 1000
    assert count_parameters(adresnet_s(conv="conv")) == stem + conv1 + conv2 + conv3 + conv4 + fc


def test_acda_layers_account_for_the_difference_with_the_conv_baseline():
    acda, conv = adresnet_s(), adresnet_s(conv="conv")
    dyn = [b.conv2 for s in acda.stages[2:] for b in s]
    std = [b.conv2 for s in conv.stages[2:] for b in s]
    assert count_parameters(conv) - count_parameters(acda) == sum(map(count_parameters, std)) - sum(
        map(count_parameters, dyn))


def test_dfn_variant_and_custom_layer():
    model = adresnet_s(conv="dfn")
    dfn = [m for m in model.modules() if isinstance(m, DFNConv2d)]
    assert len(dfn) == 4 and not any(isinstance(m, ACDAConv2d) for m in model.modules())
    calls = []

    def factory(c, o, k, **kw):
        calls.append((c, o, k, kw["stride"]))
        return nn.Conv2d(c, o, k, **kw)

    adresnet_s(conv=factory)
    assert calls == [(128, 128, 7, 2), (128, 128, 7, 1), (256, 256, 5, 2), (256, 256, 5, 1)]


def test_choices_exposed_as_arguments():
    b, a = adresnet_s(), adresnet_s(shortcut="A")
    projections = sum(count_parameters(blk.shortcut) for s in b.stages for blk in s)
    assert projections > 0 and count_parameters(b) - count_parameters(a) == projections
    v1 = adresnet_s(stride_on="1x1")
    assert v1.stages[2][0].conv1.stride == (2, 2) and v1.stages[2][0].conv2.stride == (1, 1)
    off = adresnet_s(generator="official")
    assert all(m.generator.variant == "official" for m in off.modules() if isinstance(m, ACDAConv2d))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert a.eval()(x).shape == v1.eval()(x).shape == (1, 1000)


def test_zero_init_residual():
    model = adresnet_s(zero_init_residual=True)
    assert all(torch.all(blk.last_bn.weight == 0) for s in model.stages for blk in s)


@pytest.mark.parametrize("kwargs,match", [({"conv": "nope"}, "conv"), ({"generator": "x"}, "generator"),
                                          ({"shortcut": "C"}, "shortcut"), ({"stride_on": "3x3"}, "stride_on"),
                                          ({"num_classes": 0}, "num_classes")])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adresnet_s(**kwargs)


def test_num_classes_must_be_an_int():
    for bad in (10.0, True):
        with pytest.raises(TypeError, match="num_classes must be an int"):
            adresnet_s(num_classes=bad)


def test_repr_names_the_choices():
    assert "conv='acda', generator='paper', shortcut='B', stride_on='kxk'" in repr(adresnet_s())
    assert isinstance(adresnet_s(), AdResNet)
