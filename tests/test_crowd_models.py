"""Crowd-counting models of Table 3 (acda.models.crowd): shapes, gradients, stride check, structure, counts."""
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from acda import ACDAConv2d
from acda.models import crowd, get_model, list_models
from acda.models.adresnet import AdResNet
from acda.peers import CondConv2d
from acda.profile import count_parameters

NAMES = ["crowd_baseline", "crowd_adresnet_s", "crowd_adresnet_m", "crowd_condconv_s", "crowd_condconv_l"]
SMALL = {"width_mult": 0.125}


def test_every_crowd_model_is_registered():
    assert set(NAMES) <= set(list_models())


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shape_and_non_negative(name, one_thread):
    model = get_model(name, **SMALL)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 1, 64, 64) and model.output_stride == 1
    assert (out >= 0).all()
    (out.mean() + sum(p.sum() * 0 for p in model.parameters())).backward()
    head = model.decoder.head.weight.grad
    first = next(p for p in model.backbone.parameters()).grad
    assert head is not None and head.abs().sum() > 0
    assert first is not None and first.abs().sum() > 0


def test_dynamic_layers_are_where_the_docstring_says():
    acda = [m for m in get_model("crowd_adresnet_s", **SMALL).modules() if isinstance(m, ACDAConv2d)]
    assert [m.kernel_size[0] for m in acda] == [7, 7, 5, 5]
    base = get_model("crowd_baseline", **SMALL)
    assert not any(isinstance(m, ACDAConv2d) for m in base.modules())
    cc = get_model("crowd_condconv_l", **SMALL)
    names = [n for n, m in cc.backbone.named_modules() if isinstance(m, CondConv2d)]
    assert names and all(n.split(".")[0] in ("5", "6", "7") and not n.endswith(("fc1", "fc2")) for n in names)
    assert all(m.num_experts == 8 for m in cc.modules() if isinstance(m, CondConv2d))
    assert all(m.num_experts == 4 for m in get_model("crowd_condconv_s", **SMALL).modules()
               if isinstance(m, CondConv2d))
    assert cc.stride == 32 and len(cc.decoder.widths) == 5


def test_output_stride_and_stride_check(one_thread):
    model = get_model("crowd_adresnet_s", output_stride=4, **SMALL).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 48)).shape == (1, 1, 8, 12)
    assert len(model.decoder.widths) == 2
    with pytest.raises(ValueError, match=r"multiples of 16 .*got 72×64.*80×64"):
        model(torch.randn(1, 3, 72, 64))
    with pytest.raises(ValueError, match=r"multiples of 32 .*got 48×64"):
        get_model("crowd_condconv_s", **SMALL)(torch.randn(1, 3, 48, 64))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.randn(3, 32, 32))


def test_baseline_and_adresnet_s_differ_only_in_the_replaced_convolutions():
    base, acda = get_model("crowd_baseline", width_mult=0.25), get_model("crowd_adresnet_s", width_mult=0.25)
    replaced = [f"backbone.stages.{i}.{j}.conv2" for i in (2, 3) for j in (0, 1)]
    for name in replaced:
        b, a = base.get_submodule(name), acda.get_submodule(name)
        assert type(b) is nn.Conv2d and b.kernel_size == (3, 3) and isinstance(a, ACDAConv2d)
        assert (b.in_channels, b.out_channels, b.stride) == (a.in_channels, a.out_channels, a.stride)

    def outside(model):
        return {k: tuple(v.shape) for k, v in model.state_dict().items()
                if not any(k.startswith(r + ".") for r in replaced)}

    assert outside(base) == outside(acda)  # same backbone elsewhere, same decoder
    assert str(base.decoder) == str(acda.decoder)
    diff = count_parameters(acda) - count_parameters(base)
    assert diff == sum(count_parameters(acda.get_submodule(n)) - count_parameters(base.get_submodule(n))
                       for n in replaced)


def test_width_mult_scales_every_model_alike():
    base, s = get_model("crowd_baseline", width_mult=0.25), get_model("crowd_adresnet_s", width_mult=0.25)
    assert base.decoder.widths == s.decoder.widths == (64, 32, 16, 8)
    assert base.backbone.stem[0].out_channels == s.backbone.stem[0].out_channels == 16
    assert base.backbone.out_channels == s.backbone.out_channels == 128
    assert get_model("crowd_adresnet_m", width_mult=0.25).backbone.out_channels == 256
    assert get_model("crowd_condconv_s", width_mult=0.25).decoder.widths == (64, 32, 16, 8, 4)


def test_adresnet_stem_channels():
    model = AdResNet((crowd.ARCHS["s"][0],), stem_channels=16, features_only=True)
    assert model.stem[0].out_channels == 16 and model.stages[0][0].conv1.in_channels == 16
    with pytest.raises(ValueError, match="stem_channels"):
        AdResNet(crowd.ARCHS["s"], stem_channels=0)


def test_decoder_closed_form_and_geometry():
    for k in (2, 3, 4, 5):
        dec = crowd.DensityDecoder(40, (16, 8), k)
        assert count_parameters(dec) == crowd.decoder_parameters(40, (16, 8), k)
        assert dec(torch.randn(1, 40, 3, 5)).shape == (1, 1, 12, 20)
    soft = crowd.DensityDecoder(4, (), activation="softplus")
    assert (soft(torch.randn(1, 4, 2, 2)) > 0).all()


def _documented_counts() -> dict[str, tuple[int, int, int]]:
    """The parameter counts docs/models.md states for each crowd model."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "models.md").read_text(encoding="utf-8")
    found = re.findall(r"`(crowd_\w+)`: ([\d,]+) \(backbone ([\d,]+) \+ decoder ([\d,]+)\)", text)
    return {name: tuple(int(v.replace(",", "")) for v in values) for name, *values in found}


def test_full_width_parameter_counts_are_the_documented_ones():
    documented = _documented_counts()
    assert set(documented) == set(NAMES)
    for name in NAMES:
        model = get_model(name)
        counted = (count_parameters(model), count_parameters(model.backbone), count_parameters(model.decoder))
        assert counted == documented[name], name
        assert counted[2] == crowd.decoder_parameters(model.backbone_channels, model.decoder.widths, 4)
        assert model.decoder.widths == crowd.decoder_widths(model.stride, 1, 256, 1.0)


def test_condconv_backbone_is_table2_condconv_efficientnet_without_classifier():
    from reproduce.table2 import condconv_efficientnet_b0

    ref = condconv_efficientnet_b0()
    with torch.device("meta"):
        ours = crowd.condconv_backbone(4)[0]
    assert count_parameters(ours) == count_parameters(ref) - count_parameters(ref.classifier)


@pytest.mark.parametrize("name,kwargs,match", [
    ("crowd_adresnet_s", {"output_stride": 3}, "output_stride"),
    ("crowd_adresnet_s", {"output_stride": 32}, "output_stride"),
    ("crowd_adresnet_s", {"activation": "tanh"}, "activation"),
    ("crowd_adresnet_s", {"decoder_kernel": 1}, "decoder_kernel"),
    ("crowd_baseline", {"width_mult": 0}, "width_mult"),
    ("crowd_baseline", {"arch": "x"}, "arch"),
    ("crowd_condconv_s", {"backbone": "resnet"}, "backbone"),
    ("crowd_condconv_s", {"num_experts": 0}, "num_experts"),
])
def test_bad_arguments_raise(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_model(name, **kwargs)


def test_fixed_arguments_are_refused():
    with pytest.raises(TypeError, match="conv"):
        get_model("crowd_baseline", conv="acda")
    with pytest.raises(TypeError, match="maxpool"):
        get_model("crowd_adresnet_s", maxpool=True)


def test_condconv_on_the_baseline_backbone(one_thread):
    model = get_model("crowd_condconv_s", backbone="adresnet_s", **SMALL)
    layers = [n for n, m in model.backbone.named_modules() if isinstance(m, CondConv2d)]
    assert len(layers) == 12 and not any("shortcut" in n for n in layers)  # 4 blocks × 3 convs
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("seed", range(5))
def test_relu_head_starts_alive(seed):
    torch.manual_seed(seed)
    dec = crowd.DensityDecoder(8, (2,))  # a 2-channel head: with a default draw often all-negative
    assert (dec.head.weight >= 0).all() and (dec.head.bias == 0).all()
    out = dec(torch.randn(1, 8, 8, 8))
    assert (out > 0).float().mean() > 0.2
