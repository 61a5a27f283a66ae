"""acda.set_backend / acda.use_backend: one call switches every ACDA layer of a model."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import acda
from acda.models import get_model


def _backends(model: nn.Module) -> list[str]:
    return [m.backend for m in model.modules() if isinstance(m, acda.ACDAConv2d)]


def test_set_backend_switches_every_layer_and_keeps_outputs():
    torch.manual_seed(0)
    model = get_model("lenet_acda", num_classes=10, image_size=16).eval()
    x = torch.randn(2, 3, 16, 16)
    assert len(_backends(model)) == 2 and set(_backends(model)) == {"auto"}
    with torch.no_grad():
        auto = model(x)
        assert acda.set_backend(model, "reference") is model and set(_backends(model)) == {"reference"}
        torch.testing.assert_close(model(x), auto, rtol=1e-5, atol=1e-5)
    layer = acda.ACDAConv2d(3, 4, 3)
    assert acda.set_backend(layer, "shift").backend == "shift"  # a layer alone is a model too


def test_use_backend_restores_each_layers_own_backend_even_on_error():
    model = nn.Sequential(acda.ACDAConv2d(3, 4, 3, backend="shift"), acda.ACDAConv2d(4, 4, 3))
    with acda.use_backend(model, "reference"):
        assert _backends(model) == ["reference", "reference"]
    assert _backends(model) == ["shift", "auto"]
    with pytest.raises(RuntimeError, match="inside"), acda.use_backend(model, "reference"):
        raise RuntimeError("inside")
    assert _backends(model) == ["shift", "auto"]


@pytest.mark.parametrize("name,error", [("cuda-magic", ValueError), (3, TypeError)])
def test_unknown_backends_are_refused_before_any_layer_changes(name, error):
    model = nn.Sequential(acda.ACDAConv2d(3, 4, 3, backend="shift"))
    with pytest.raises(error, match="backend"):
        acda.set_backend(model, name)
    with pytest.raises(error, match="backend"), acda.use_backend(model, name):
        pass
    assert _backends(model) == ["shift"]
