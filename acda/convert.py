"""Plug-and-play conversion (paper §1, §4): swap ``nn.Conv2d`` modules of any model for ACDA layers.

``convert(model)`` replaces every ``nn.Conv2d`` that ``layer`` can represent with a new ``layer``
of the same geometry (in/out channels, kernel size, stride, padding, dilation, bias), on a copy
or in place, and returns the model (like ``nn.SyncBatchNorm.convert_sync_batchnorm``). The new
layers are freshly initialised (an ACDA layer has no weights a convolution could be copied into).
``plan(model)`` says, without changing anything, which convolutions ``convert`` would replace and
which it would skip and why.

What a layer can replace is the layer's business: every layer ``convert`` builds subclasses
``Conv2dReplacement`` and answers two class-level hooks, ``unsupported_reason(conv)`` and
``from_conv(conv, **kwargs)``; a new layer type needs nothing here. ``ACDAConv2d`` cannot represent
grouped/depthwise convolutions (``groups != 1``), even or non-square kernels (the Fourier-Bessel
bases are centred discs) or non-zero padding modes; those are skipped. With ``layer=CondConv2d`` or
``DynamicConv2d`` (``acda.peers``) the same function builds CondConv/DY-CNN variants; they accept
any zero-padded convolution. The convolutions *inside* such layers (an ACDA layer's generator) are
part of the layer and never converted: they are reported as skipped.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from .replacement import Conv2dReplacement
from .utils import ArgumentTypeError, ArgumentValueError

__all__ = ["convert", "plan", "ConversionPlan", "Conv2dReplacement"]

@dataclass
class ConversionPlan:
    """What ``convert`` does to a model: the names it converts and the ones it skips, with why."""

    layer: type[Conv2dReplacement]
    converted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def plan(
    model: nn.Module,
    *,
    where: Callable[[str, nn.Conv2d], bool] | None = None,
    layer: type[Conv2dReplacement] | None = None,
) -> ConversionPlan:
    """The ``nn.Conv2d`` modules ``convert(model, where=where, layer=layer)`` replaces and skips.

    Changes nothing. ``converted``: qualified module names in ``model.named_modules()`` order
    (``""`` for a model that is itself a convolution); ``skipped``: name → reason, for the
    convolutions ``where`` selects that ``layer`` cannot represent or that belong to a layer of a
    ``Conv2dReplacement`` type already in the model (e.g. an ACDA layer's generator).
    """
    layer = _check_arguments(model, where, layer)
    result = ConversionPlan(layer)
    owner: dict[int, str] = {}  # id(submodule) → what it belongs to, e.g. "ACDAConv2d 'layer1.0.conv2'"
    for name, module in model.named_modules():  # pre-order: a layer comes before its submodules
        if isinstance(module, Conv2dReplacement):
            for sub in module.modules():
                if sub is not module:
                    owner.setdefault(id(sub), f"{type(module).__name__} {name!r}" if name else
                                     f"the {type(module).__name__} model")
        if type(module) is not nn.Conv2d or (where is not None and not where(name, module)):
            continue
        if id(module) in owner:
            result.skipped[name] = (f"part of {owner[id(module)]}: the convolutions of a layer convert builds "
                                    f"are never converted")
        elif (reason := layer.unsupported_reason(module)) is not None:
            result.skipped[name] = reason
        else:
            result.converted.append(name)
    return result


def convert(
    model: nn.Module,
    *,
    where: Callable[[str, nn.Conv2d], bool] | None = None,
    inplace: bool = False,
    layer: type[Conv2dReplacement] | None = None,
    **layer_kwargs,
) -> nn.Module:
    """Replace ``nn.Conv2d`` modules of ``model`` with ``layer`` (default ``ACDAConv2d``); return the model.

    ``where(name, conv) -> bool`` picks the convolutions to consider (all by default; ``name`` is
    the qualified module name). ``inplace=False`` converts a deep copy (``inplace=True``: ``model``
    itself, returned, unless it is itself a convolution, which is returned replaced).
    ``layer_kwargs`` go to every new layer (e.g. ``num_atoms=6, generator="official"`` for ACDA,
    ``num_experts=8`` for CondConv), checked once before anything is built
    (``layer.check_layer_kwargs``). Which convolutions are converted, and which are skipped and
    why: ``plan(model, where=where, layer=layer)``, computed before converting. Layers of a
    ``Conv2dReplacement`` type already in the model, and the convolutions inside them, are left
    alone: converting a converted model changes nothing.
    """
    layer = _check_arguments(model, where, layer)
    layer.check_layer_kwargs(layer_kwargs)
    if not inplace:
        model = copy.deepcopy(model)
    for name in plan(model, where=where, layer=layer).converted:
        new = layer.from_conv(model.get_submodule(name), **layer_kwargs)
        if name == "":  # the model is itself a convolution
            return new
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, new)
    return model


def _check_arguments(model, where, layer) -> type[Conv2dReplacement]:
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if where is not None and not callable(where):
        raise ArgumentTypeError(f"where must be a callable (name, module) -> bool or None, got {type(where).__name__}")
    if layer is None:
        from .layers import ACDAConv2d

        return ACDAConv2d
    if not (isinstance(layer, type) and issubclass(layer, Conv2dReplacement)):
        raise ArgumentValueError(f"layer must be a Conv2dReplacement subclass (one of {_layer_names()}), got {layer!r}")
    return layer


def _layer_names(base: type = Conv2dReplacement) -> list[str]:
    """The public layer types ``convert`` can build (subclasses of ``Conv2dReplacement``)."""
    names = []
    for sub in base.__subclasses__():
        if not sub.__name__.startswith("_"):
            names.append(sub.__name__)
        names.extend(_layer_names(sub))
    return sorted(set(names))
