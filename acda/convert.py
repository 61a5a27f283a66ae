"""Plug-and-play conversion (paper §1, §4): swap ``nn.Conv2d`` modules of any model for ACDA layers.

``convert(model)`` replaces every ``nn.Conv2d`` that ``layer`` can represent with a new ``layer``
of the same geometry (in/out channels, kernel size, stride, padding, dilation, bias), on a copy
or in place, and says which convolutions it converted and which it skipped and why. The new
layers are freshly initialised (an ACDA layer has no weights a convolution could be copied into).

``ACDAConv2d`` cannot represent grouped/depthwise convolutions (``groups != 1``), even or
non-square kernels (the Fourier-Bessel bases are centred discs) or non-zero padding modes; those
are skipped. With ``layer=CondConv2d`` or ``DynamicConv2d`` (``acda.peers``) the same function
builds CondConv/DY-CNN variants; they accept any zero-padded convolution.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from .layers import ACDAConv2d
from .peers import CondConv2d, DFNConv2d, DynamicConv2d

__all__ = ["convert", "Conversion", "unsupported_reason"]


@dataclass
class Conversion:
    """Result of ``convert``: the model, the converted module names, and the skipped ones with why."""

    model: nn.Module
    converted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def unsupported_reason(conv: nn.Conv2d, layer: type[nn.Module] = ACDAConv2d) -> str | None:
    """Why ``layer`` cannot replace ``conv`` with the same geometry, or ``None`` if it can."""
    if conv.padding_mode != "zeros":
        return f"padding_mode={conv.padding_mode!r} (only zero padding)"
    if layer in (ACDAConv2d, DFNConv2d):
        kh, kw = conv.kernel_size
        if conv.groups != 1:
            return f"groups={conv.groups} (grouped/depthwise convolutions are not representable)"
        if kh != kw:
            return f"kernel_size={conv.kernel_size} is not square"
        if kh % 2 == 0:
            return f"kernel_size={conv.kernel_size} is even (bases need an odd size)"
    return None


def convert(
    model: nn.Module,
    *,
    where: Callable[[str, nn.Conv2d], bool] | None = None,
    inplace: bool = False,
    layer: type[nn.Module] = ACDAConv2d,
    **layer_kwargs,
) -> Conversion:
    """Replace ``nn.Conv2d`` modules of ``model`` with ``layer`` (default ``ACDAConv2d``).

    ``where(name, conv) -> bool`` picks the convolutions to consider (all by default; ``name`` is
    the qualified module name). ``inplace=False`` converts a deep copy. ``layer_kwargs`` go to
    every new layer (e.g. ``num_atoms=6, generator="official"`` for ACDA, ``num_experts=8`` for
    CondConv). Returns a ``Conversion`` with the model and the lists of converted and skipped names.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if where is not None and not callable(where):
        raise TypeError(f"where must be a callable (name, module) -> bool or None, got {type(where).__name__}")
    supported = (ACDAConv2d, DFNConv2d, CondConv2d, DynamicConv2d)
    if layer not in supported:
        raise ValueError(f"layer must be one of {[c.__name__ for c in supported]}, got {layer!r}")
    if not inplace:
        model = copy.deepcopy(model)
    result = Conversion(model)
    targets = [(name, m) for name, m in model.named_modules()
               if type(m) is nn.Conv2d and (where is None or where(name, m))]
    for name, conv in targets:
        reason = unsupported_reason(conv, layer)
        if reason is not None:
            result.skipped[name] = reason
            continue
        new = _same_geometry(conv, layer, layer_kwargs)
        if name == "":  # the model is itself a convolution
            result.model = new
        else:
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, new)
        result.converted.append(name)
    return result


def _same_geometry(conv: nn.Conv2d, layer: type[nn.Module], kwargs: dict) -> nn.Module:
    args = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None)
    if layer in (CondConv2d, DynamicConv2d):
        args["groups"] = conv.groups
    new = layer(conv.in_channels, conv.out_channels, conv.kernel_size, **args, **kwargs)
    return new.to(device=conv.weight.device, dtype=conv.weight.dtype)
