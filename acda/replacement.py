"""``Conv2dReplacement``: the base of every layer ``acda.convert`` can put in place of an ``nn.Conv2d``.

``ACDAConv2d`` and the peers (``acda.peers``) subclass it; ``acda.convert`` only calls its hooks, so the
layers never import the conversion module.
"""
from __future__ import annotations

import inspect
from typing import ClassVar

import torch
from torch import nn

from .functional import autocast_dtype
from .utils import ArgumentTypeError, ArgumentValueError, check_conv_size, check_float_dtype

__all__ = ["Conv2dReplacement"]

# nn.Conv2d's geometry, which from_conv takes from each convolution
_GEOMETRY = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")


class Conv2dReplacement(nn.Module):
    """Base of the layers ``convert`` can put in place of an ``nn.Conv2d`` (the hooks it calls).

    A subclass takes ``nn.Conv2d``'s positional arguments (in_channels, out_channels, kernel_size,
    stride, padding, dilation[, groups], bias) and declares what it cannot represent:

    - ``grouped`` (class attribute, default ``False``): whether it represents grouped convolutions,
      taking ``groups`` as ``nn.Conv2d`` does (without it, convolutions with ``groups > 1`` are skipped);
    - ``centred_kernel`` (class attribute): whether its filters are centred on the pixel, so the
      kernel must be square and odd;
    - override ``unsupported_reason`` for anything else (call ``super()`` first).

    ``from_conv`` then builds the layer for a given convolution; ``check_layer_kwargs`` checks the
    keyword options ``convert`` passes to every new layer once, before any is built (so a bad
    ``backend=`` is refused even for a model with nothing to convert).
    """

    grouped: ClassVar[bool] = False
    centred_kernel: ClassVar[bool] = False

    @classmethod
    def unsupported_reason(cls, conv: nn.Conv2d) -> str | None:
        """Why this layer cannot replace ``conv`` with the same geometry, or ``None`` if it can."""
        if conv.padding_mode != "zeros":
            return f"padding_mode={conv.padding_mode!r} (only zero padding)"
        if not cls.grouped and conv.groups != 1:
            return f"groups={conv.groups} (grouped/depthwise convolutions are not representable)"
        if cls.centred_kernel:
            kh, kw = conv.kernel_size
            if kh != kw:
                return f"kernel_size={conv.kernel_size} is not square"
            if kh % 2 == 0:
                return f"kernel_size={conv.kernel_size} is even (bases need an odd size)"
        return None

    @classmethod
    def check_layer_kwargs(cls, kwargs: dict) -> None:
        """``TypeError`` for keyword options the constructor does not take, or that each convolution sets.

        Subclasses override it to check values too (call ``super()`` first).
        """
        params = inspect.signature(cls).parameters
        geometry = sorted(set(kwargs) & set(_GEOMETRY))
        if geometry:
            raise ArgumentTypeError(f"{cls.__name__}: {geometry} are taken from each convolution, not from "
                                    f"keyword options")
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ArgumentTypeError(f"{cls.__name__} got unexpected keyword options {unknown}; it takes "
                                    f"{sorted(set(params) - set(_GEOMETRY))}")

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kwargs) -> Conv2dReplacement:
        """A freshly initialised layer with ``conv``'s geometry, on its device and in its dtype.

        ``kwargs`` go to the constructor (e.g. ``num_atoms=6``); ``ValueError`` if
        ``unsupported_reason(conv)`` gives a reason.
        """
        reason = cls.unsupported_reason(conv)
        if reason is not None:
            raise ArgumentValueError(f"{cls.__name__} cannot replace {conv}: {reason}")
        args = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None)
        if conv.groups != 1:
            args["groups"] = conv.groups
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, **args, **kwargs)
        return new.to(device=conv.weight.device, dtype=conv.weight.dtype)

    def _check_input(self, x: torch.Tensor) -> tuple[int, int]:
        """The output size for ``x`` after the checks the functional ops make (type, 4-D, ``in_channels``,
        a float dtype equal to the parameters' outside autocast, their device, a geometry with an output), so
        the layer's own networks never see bad input."""
        if not isinstance(x, torch.Tensor):
            raise ArgumentTypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ArgumentValueError(
                f"{type(self).__name__} expects a 4-D input (N, C, H, W), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ArgumentValueError(
                f"input must have in_channels={self.in_channels} channels, got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        check_float_dtype("input", x.dtype)
        param = next(self.parameters(), None)
        if param is not None and x.device != param.device:
            raise ArgumentValueError(f"input is on device {x.device} but the layer's parameters are on "
                                     f"{param.device}")
        if param is not None and x.dtype != param.dtype and autocast_dtype(x.device) is None:
            raise ArgumentTypeError(f"input has dtype {x.dtype} but the layer's parameters have dtype "
                                    f"{param.dtype}: convert the input (or the layer, with .to(dtype))")
        return check_conv_size(tuple(x.shape[-2:]), self.kernel_size, self.stride, self.padding, self.dilation)
