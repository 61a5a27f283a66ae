"""§4.3 restoration network (acda.models.restoration): shapes, residual, registration, params."""
import pytest
import torch
from torch import nn

from acda.layers import ACDAConv2d
from acda.models import get_model, list_models
from acda.models.adresnet import Bottleneck
from acda.models.restoration import RestorationNet, table5_parameter_study
from acda.profile import count_parameters

SMALL = dict(channels=32, width=8, blocks=2)


@pytest.mark.parametrize("conv", ["acda", "conv"])
@pytest.mark.parametrize("hw", [(16, 16), (17, 23), (5, 3), (1, 2)])
def test_any_size(conv, hw):
    net = RestorationNet(conv=conv, **SMALL).eval()
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        assert net(x).shape == x.shape


@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
def test_global_residual(mode):
    net = RestorationNet(padding_mode=mode, **SMALL).eval()
    nn.init.zeros_(net.tail[-1].weight)
    nn.init.zeros_(net.tail[-1].bias)
    x = torch.randn(1, 3, 13, 10)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x)


def test_structure():
    net = RestorationNet()
    assert len(net.body) == 8 and all(isinstance(b, Bottleneck) for b in net.body)
    assert all(isinstance(b.conv2, ACDAConv2d) and b.conv2.kernel_size == (7, 7) for b in net.body)
    assert net.body[0].conv1.in_channels == 256 and net.body[0].conv1.out_channels == 64
    base = RestorationNet(conv="conv")
    assert all(type(b.conv2) is nn.Conv2d and b.conv2.kernel_size == (7, 7) for b in base.body)
    # head reaches 1/4 resolution with C channels
    assert net.head(torch.zeros(1, 3, 8, 12)).shape == (1, 256, 2, 3)
    with pytest.raises(ValueError):
        RestorationNet(channels=24)
    with pytest.raises(ValueError):
        RestorationNet(conv="dfn")


def test_registration():
    assert {"restoration_acda", "restoration_baseline"} <= set(list_models())
    acda = get_model("restoration_acda", **SMALL)
    base = get_model("restoration_baseline", **SMALL)
    assert acda.conv == "acda" and base.conv == "conv"
    with pytest.raises(TypeError):
        get_model("restoration_baseline", conv="acda")


@pytest.mark.parametrize("conv", ["acda", "conv"])
def test_gradients_flow(conv):
    net = RestorationNet(conv=conv, **SMALL).train()
    x = torch.randn(2, 3, 9, 11)
    loss = nn.functional.mse_loss(net(x), torch.zeros_like(x))
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.head[0].weight.grad.abs().sum() > 0
    assert net.body[0].conv2.parameters().__next__().grad.abs().sum() > 0


def test_parameter_ordering_is_structural():
    # Only the k×k layers differ between the variants, so the difference depends on W only;
    # ACDA 7×7 (m = m' = 6, 3 scales) has fewer parameters than a 7×7 conv from W = 39 on.
    for w in (32, 48, 64):
        diffs = {count_parameters(RestorationNet(channels=c, width=w, conv="conv"))
                 - count_parameters(RestorationNet(channels=c, width=w)) for c in (128, 256)}
        assert len(diffs) == 1
        acda_kxk = count_parameters(ACDAConv2d(w, w, 7, padding=3, bias=False))
        assert diffs.pop() == 8 * (49 * w * w - acda_kxk)
        assert (acda_kxk < 49 * w * w) == (w >= 39)
    # default widths (C=256, W=64): ACDA smaller, as in Table 5
    assert count_parameters(get_model("restoration_acda")) < count_parameters(get_model("restoration_baseline"))


def test_table5_parameter_study():
    res = table5_parameter_study(grid=((128, 32), (256, 64)))
    assert res["printed"] == {"baseline": 2.28e6, "acda": 1.97e6}
    assert [(r["channels"], r["width"]) for r in res["rows"]] == [(128, 32), (256, 64)]
    r32, r64 = res["rows"]
    assert not r32["acda_smaller"] and r64["acda_smaller"]
    assert r64["baseline"] == count_parameters(get_model("restoration_baseline"))
    assert r64["difference"] == r64["baseline"] - r64["acda"]
    assert set(res["closest"]) == {"baseline", "acda"}
