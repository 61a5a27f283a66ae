"""Model registry in the style of torchvision's ``models/_api.py``: builders register by name."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["register_model", "get_model", "list_models", "get_model_builder"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: ``@register_model()`` registers a builder under its function name."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"a model named {key!r} is already registered")
        _MODELS[key] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]


def get_model(name: str, **config) -> nn.Module:
    """Build a registered model: ``get_model("adresnet_s", num_classes=10)``."""
    return get_model_builder(name)(**config)
