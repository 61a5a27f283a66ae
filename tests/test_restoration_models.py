"""§4.3 restoration network (acda.models.restoration): shapes, residual, registration, params; KPN peer."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from acda.layers import ACDAConv2d
from acda.models import get_model, list_models
from acda.models.adresnet import Bottleneck
from acda.models.restoration import (
    KPNRestorationNet,
    RestorationNet,
    apply_pixel_kernels,
    restoration_acda,
    restoration_baseline,
)
from acda.profile import count_parameters
from acda.utils import ArgumentError

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
    nn.functional.mse_loss(net(x), torch.zeros_like(x)).backward()
    assert net.tail[-1].weight.grad.abs().sum() > 0  # the zero-initialised last conv learns first
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):  # then the zero-γ BNs, then the layers behind them
        opt.step()
        net.zero_grad()
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


# ---------------------------------------------------------------- KPN peer (Table 4)

KPN_SMALL = dict(channels=32, width=8, blocks=2)


def _unfold_reference(image, kernels, mode="reflect"):
    n, c, h, w = image.shape
    ks = int(round(kernels.shape[1] ** 0.5))
    r = ks // 2
    padded = F.pad(image, (r, r, r, r), mode=mode)
    cols = F.unfold(padded, ks).view(n, c, ks * ks, h, w)  # channel index c·ks² + i·ks + j
    return (cols * kernels.unsqueeze(1)).sum(2)


@pytest.mark.parametrize("ks", [1, 3, 5])
@pytest.mark.parametrize("hw", [(6, 7), (7, 6), (8, 8)])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
def test_apply_pixel_kernels_matches_unfold(ks, hw, mode):
    g = torch.Generator().manual_seed(ks * 100 + hw[0])
    image = torch.randn(2, 3, *hw, generator=g, dtype=torch.float64)
    kernels = torch.randn(2, ks * ks, *hw, generator=g, dtype=torch.float64)
    torch.testing.assert_close(apply_pixel_kernels(image, kernels, mode), _unfold_reference(image, kernels, mode))


def test_apply_pixel_kernels_formula_and_reflect_fallback():
    # one explicit tap: kernel 1 at (i, j) = (0, 2) of a 3×3 → out[y, x] = pad(img)[y − 1, x + 1]
    image = torch.arange(20.0, dtype=torch.float64).view(1, 1, 4, 5)
    kernels = torch.zeros(1, 9, 4, 5, dtype=torch.float64)
    kernels[:, 2] = 1
    out = apply_pixel_kernels(image, kernels)
    torch.testing.assert_close(out[..., 1:, :4], image[..., :3, 1:])
    torch.testing.assert_close(out[..., 0, :4], image[..., 1, 1:])  # reflected row −1 = row 1
    # r = 2 on a 2×5 image cannot reflect: replicate is used
    image = torch.randn(1, 2, 2, 5, dtype=torch.float64)
    kernels = torch.randn(1, 25, 2, 5, dtype=torch.float64)
    torch.testing.assert_close(apply_pixel_kernels(image, kernels), _unfold_reference(image, kernels, "replicate"))


@pytest.mark.parametrize("ks,hw", [(3, (4, 5)), (5, (5, 6))])
def test_apply_pixel_kernels_gradcheck(ks, hw):
    g = torch.Generator().manual_seed(0)
    image = torch.randn(1, 2, *hw, generator=g, dtype=torch.float64, requires_grad=True)
    kernels = torch.randn(1, ks * ks, *hw, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(apply_pixel_kernels, (image, kernels))
    # and the gradients equal the unfold reference's
    go = torch.randn(1, 2, *hw, generator=g, dtype=torch.float64)
    ours = torch.autograd.grad(apply_pixel_kernels(image, kernels), (image, kernels), go)
    ref = torch.autograd.grad(_unfold_reference(image, kernels), (image, kernels), go)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


class _LargestTensor(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_apply_pixel_kernels_never_materialises_unfold():
    ks, (n, c, h, w) = 19, (1, 3, 40, 40)
    image = torch.randn(n, c, h, w)
    kernels = torch.randn(n, ks * ks, h, w, requires_grad=True)
    with _LargestTensor() as mode:
        apply_pixel_kernels(image, kernels).square().sum().backward()
    assert mode.largest <= kernels.numel() < n * c * ks * ks * h * w
    assert kernels.grad.shape == kernels.shape


def test_apply_pixel_kernels_validation():
    image, kernels = torch.randn(1, 3, 6, 6), torch.randn(1, 9, 6, 6)
    for bad in (torch.randn(1, 4, 6, 6), torch.randn(1, 8, 6, 6), torch.randn(1, 9, 6, 5), torch.randn(2, 9, 6, 6)):
        with pytest.raises(ArgumentError, match="kernels"):
            apply_pixel_kernels(image, bad)
    with pytest.raises(ArgumentError, match="kernels"):
        apply_pixel_kernels(image, kernels.double())
    with pytest.raises(ArgumentError, match="padding_mode"):
        apply_pixel_kernels(image, kernels, "circular")


@pytest.mark.parametrize("normalize", ["none", "sum"])
@pytest.mark.parametrize("hw", [(13, 10), (16, 16), (3, 2)])
def test_kpn_identity_at_init(normalize, hw):
    net = KPNRestorationNet(kernel_size_kpn=5, normalize=normalize, **KPN_SMALL).eval()
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x)


def test_kpn_softmax_init_is_near_identity():
    net = KPNRestorationNet(kernel_size_kpn=3, normalize="softmax", **KPN_SMALL).eval()
    with torch.no_grad():
        k = net.predict_kernels(torch.randn(1, 3, 8, 9))
    torch.testing.assert_close(k.sum(1), torch.ones(1, 8, 9))
    torch.testing.assert_close(k[:, 4], torch.full((1, 8, 9), 0.99))


@pytest.mark.parametrize("normalize", ["none", "softmax", "sum"])
def test_kpn_forward_is_kernel_application(normalize):
    torch.manual_seed(0)
    net = KPNRestorationNet(kernel_size_kpn=3, normalize=normalize, **KPN_SMALL).eval()
    nn.init.normal_(net.tail[-1].weight, std=0.1)
    x = torch.randn(2, 3, 9, 7)
    with torch.no_grad():
        k = net.predict_kernels(x)
        assert k.shape == (2, 9, 9, 7)
        if normalize != "none":
            torch.testing.assert_close(k.sum(1), torch.ones(2, 9, 7))
        torch.testing.assert_close(net(x), _unfold_reference(x, k))
        assert not torch.allclose(net(x), x)


def test_kpn_l19_runs_and_trains():
    net = get_model("restoration_kpn", kernel=19, **KPN_SMALL).train()
    assert net.tail[-1].out_channels == 361
    x = torch.randn(1, 3, 40, 40)
    out = net(x)
    assert out.shape == x.shape
    F.mse_loss(out, torch.zeros_like(x)).backward()
    assert net.tail[-1].weight.grad.abs().sum() > 0


def test_kpn_parameters_differ_only_by_last_conv():
    for ks in (5, 19):
        for cfg in (KPN_SMALL, dict(channels=256, width=64)):
            kpn = KPNRestorationNet(kernel_size_kpn=ks, **cfg)
            base = RestorationNet(conv="conv", **cfg)
            c1 = kpn.tail[-1].in_channels
            assert count_parameters(kpn) - count_parameters(base) == (ks * ks - 3) * (9 * c1 + 1)
            kk, bk = kpn.state_dict(), base.state_dict()
            assert kk.keys() == bk.keys()
            assert [n for n in kk if kk[n].shape != bk[n].shape] == ["tail.4.weight", "tail.4.bias"]
    kpn = KPNRestorationNet()
    assert all(type(b.conv2) is nn.Conv2d and b.conv2.kernel_size == (7, 7) for b in kpn.body)


def test_restoration_net_state_dict_keys_unchanged():
    keys = list(RestorationNet(conv="conv", **SMALL).state_dict())
    assert keys[:4] == ["head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"]
    assert keys[-4:] == ["tail.1.weight", "tail.1.bias", "tail.4.weight", "tail.4.bias"]
    assert all(k.split(".")[0] in ("head", "body", "tail") for k in keys)


def test_kpn_registration_and_validation():
    assert "restoration_kpn" in list_models()
    net = get_model("restoration_kpn", kernel=5, channels=64, width=16)
    assert isinstance(net, KPNRestorationNet) and net.kernel_size_kpn == 5 and net.normalize == "none"
    assert len(net.body) == 8 and net.tail[-1].out_channels == 25
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 11, 9)).shape == (1, 3, 11, 9)
    for bad, error in ((4, ValueError), (0, ValueError), (-3, ValueError), (3.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="kernel") as info:
            get_model("restoration_kpn", kernel=bad)
        assert isinstance(info.value, ArgumentError) and "kernel" in str(info.value)
        with pytest.raises(error, match="kernel_size_kpn"):
            KPNRestorationNet(kernel_size_kpn=bad)
    with pytest.raises(ValueError, match="normalize"):
        KPNRestorationNet(normalize="l1")
    for name in ("conv", "generator", "kernel_size_kpn"):
        with pytest.raises(TypeError, match=name):
            get_model("restoration_kpn", **{name: "acda" if name != "kernel_size_kpn" else 5})


def test_kpn_y_channel_setting():
    net = KPNRestorationNet(kernel_size_kpn=5, in_channels=1, **KPN_SMALL).eval()
    x = torch.randn(2, 1, 10, 12)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x)


@pytest.mark.parametrize("factory", [restoration_baseline, restoration_acda])
def test_untrained_restoration_net_is_the_identity(factory):
    net = factory(channels=32, width=8).eval()
    assert all(not b.last_bn.weight.detach().any() for b in net.body)
    x = torch.rand(2, 3, 18, 22)
    with torch.no_grad():
        assert torch.equal(net(x), x)
