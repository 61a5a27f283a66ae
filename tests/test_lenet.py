"""LeNet and LeNet + ACDA of Table 1 (acda/models/lenet.py)."""
import pytest
import torch
from torch import nn

from acda import ACDAConv2d
from acda.models import get_model, list_models
from acda.profile import count_parameters


def test_registered_and_shapes():
    assert {"lenet", "lenet_acda"} <= set(list_models())
    x = torch.randn(2, 3, 32, 32)
    for name in ("lenet", "lenet_acda"):
        assert get_model(name)(x).shape == (2, 10)
        assert get_model(name, num_classes=100)(x).shape == (2, 100)
    assert get_model("lenet", in_channels=1)(torch.randn(1, 1, 32, 32)).shape == (1, 10)


def test_lenet_is_lenet5():
    model = get_model("lenet")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(3, 6, (5, 5)), (6, 16, (5, 5))]
    assert [(f.in_features, f.out_features) for f in fcs] == [(400, 120), (120, 84), (84, 10)]
    assert count_parameters(model) == 62006  # the classic CIFAR LeNet-5 count


def test_lenet_acda_replaces_exactly_the_two_convs():
    plain, acda = get_model("lenet"), get_model("lenet_acda", generator="official")
    layers = [m for m in acda.modules() if isinstance(m, ACDAConv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in layers] == [(3, 6, (5, 5)), (6, 16, (5, 5))]
    assert all(m.generator.variant == "official" for m in layers)
    assert not any(type(m) is nn.Conv2d for m in acda.features.children())  # (generators hold their own)
    fc = [(f.in_features, f.out_features) for f in acda.modules() if isinstance(f, nn.Linear)]
    assert fc == [(f.in_features, f.out_features) for f in plain.modules() if isinstance(f, nn.Linear)]
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    acda(x).sum().backward()
    assert all(p.grad is not None for p in acda.parameters())
    assert "conv='acda'" in repr(acda)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        get_model("lenet", num_classes=0)
    with pytest.raises(TypeError, match="num_classes must be an int, got bool"):
        get_model("lenet", num_classes=True)
    with pytest.raises(ValueError, match="generator"):
        get_model("lenet_acda", generator="nope")
    with pytest.raises(ValueError, match="image_size"):
        get_model("lenet", image_size=8)
