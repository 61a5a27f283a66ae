"""Restoration network of §4.3 (real-world SR, Table 4) and its Conv baseline (denoising, Table 5).

``RestorationNet``: a head of 2 × [conv 3×3 + ReLU + PixelUnshuffle(2)], 8 dynamic bottlenecks (A.4;
``ACDAConv2d`` k×k or ``nn.Conv2d`` for the baseline) at ``C`` channels with bottleneck width ``W``, the
mirrored tail, and a global residual (``output = input + net(input)``); the untrained network is the
identity. ``KPNRestorationNet``: the same trunk predicting an l×l kernel per pixel, applied to the image
(``apply_pixel_kernels``; Table 4's KPN rows). Inputs (N, in, H, W) of any H, W (padded and cropped back).
Readings of the paper's text, initialisation and the KPN details: docs/models.md.
"""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..generator import GENERATORS
from ..layers import ACDAConv2d
from ..utils import (
    ArgumentValueError,
    check_choice,
    check_float_dtype,
    check_positive_int,
    check_same_device,
    check_same_dtype,
    check_tensor,
)
from ._registry import register_model
from .adresnet import Bottleneck

__all__ = ["RestorationNet", "KPNRestorationNet", "apply_pixel_kernels", "restoration_baseline",
           "restoration_acda", "restoration_kpn", "KPN_NORMALIZE"]

CONVS = ("acda", "conv")
DEFAULT_CHANNELS, DEFAULT_WIDTH = 256, 64
PADDING_MODES = ("reflect", "replicate", "constant")
KPN_NORMALIZE = ("none", "softmax", "sum")


def _pad_mode(mode: str, h: int, w: int, ph: int, pw: int) -> str:
    """``mode``, or ``"replicate"`` where ``"reflect"`` is impossible (a pad as long as the edge)."""
    return "replicate" if mode == "reflect" and (ph >= h or pw >= w) else mode


class _RestorationTrunk(nn.Module):
    """Head / body / tail of §4.3's network (module docstring), shared by RestorationNet and the KPN peer.

    ``tail[-1]`` outputs ``out_channels``; :meth:`_trunk` pads the input to a multiple of ``down²``, runs
    head, body and tail, and crops back to the input's H × W.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int, width: int, blocks: int,
                 kernel_size: int, conv: str, generator: str, down: int, padding_mode: str, num_atoms: int,
                 num_bases: int, num_scales: int | None) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("channels", channels), ("width", width),
                            ("blocks", blocks), ("kernel_size", kernel_size), ("down", down)):
            check_positive_int(name, value)
        if channels % down ** 4:
            raise ValueError(f"channels must be divisible by down**4 = {down ** 4}, got {channels}")
        for name, value, choices in (("conv", conv, CONVS), ("generator", generator, GENERATORS),
                                     ("padding_mode", padding_mode, PADDING_MODES)):
            check_choice(name, value, choices)
        self.factor, self.padding_mode, self.conv = down * down, padding_mode, conv
        c1, c2 = channels // down ** 4, channels // down ** 2
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(inplace=True), nn.PixelUnshuffle(down),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(inplace=True), nn.PixelUnshuffle(down))
        layer = (partial(ACDAConv2d, generator=generator, num_atoms=num_atoms, num_bases=num_bases,
                         num_scales=num_scales) if conv == "acda" else nn.Conv2d)
        self.body = nn.Sequential(*(Bottleneck(channels, width, channels, 1, kernel_size, layer, "B", "kxk")
                                    for _ in range(blocks)))
        for block in self.body:  # every block starts as the identity (module docstring: initialisation)
            nn.init.zeros_(block.last_bn.weight)
        self.tail = nn.Sequential(
            nn.PixelShuffle(down), nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(inplace=True),
            nn.PixelShuffle(down), nn.Conv2d(c1, out_channels, 3, padding=1))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.factor, -w % self.factor
        if not (ph or pw):
            return x
        return F.pad(x, (0, pw, 0, ph), mode=_pad_mode(self.padding_mode, h, w, ph, pw))

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self.tail(self.body(self.head(self._pad(x))))[..., :h, :w]


class RestorationNet(_RestorationTrunk):
    """§4.3's "extremely simple" restoration network; see the module docstring for every choice."""

    def __init__(self, in_channels: int = 3, channels: int = DEFAULT_CHANNELS, width: int = DEFAULT_WIDTH,
                 blocks: int = 8, kernel_size: int = 7, conv: str = "acda", generator: str = "paper",
                 down: int = 2, padding_mode: str = "reflect", num_atoms: int = 6, num_bases: int = 6,
                 num_scales: int | None = None) -> None:
        super().__init__(in_channels, in_channels, channels, width, blocks, kernel_size, conv, generator, down,
                         padding_mode, num_atoms, num_bases, num_scales)
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self._trunk(x)


def apply_pixel_kernels(image: torch.Tensor, kernels: torch.Tensor, padding_mode: str = "reflect") -> torch.Tensor:
    """Per-pixel l×l kernels applied to an image (KPN's "linear corrections"), one kernel for all channels.

    ``image`` (N, C, H, W), ``kernels`` (N, l², H, W) with tap index ``i·l + j`` (row i, column j), l odd:
    ``out[n, c, y, x] = Σ_{i,j} kernels[n, i·l + j, y, x] · pad(image)[n, c, y + i − r, x + j − r]``,
    r = l // 2, the image padded by r on every side with ``padding_mode`` (``"reflect"`` falls back to
    ``"replicate"`` where an edge is not longer than r; ``"constant"`` pads with zeros).

    Memory: the l² taps are accumulated into one (N, C, H, W) output (``addcmul_`` on shifted views of
    the padded image and on ``kernels.unbind(1)``), so nothing of size (N, C·l², H, W) is materialised,
    forward or backward; the gradient of ``kernels`` is assembled by one stack of size (N, l², H, W).
    Differentiable in both arguments (plain autograd, so higher orders too).
    """
    check_tensor("image", image, 4, "(N, C, H, W)")
    check_tensor("kernels", kernels, 4, "(N, l*l, H, W)")
    check_float_dtype("image", image.dtype, where="apply_pixel_kernels")
    check_same_dtype(("image", image), ("kernels", kernels))
    check_same_device(("image", image), ("kernels", kernels))
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    n, _, h, w = image.shape
    taps = kernels.shape[1]
    size = math.isqrt(taps)
    if size * size != taps or size % 2 == 0:
        raise ArgumentValueError(f"kernels must have l*l channels with l odd, got {taps} channels")
    if kernels.shape[0] != n or kernels.shape[2:] != image.shape[2:]:
        raise ArgumentValueError(f"kernels must have shape (N, l*l, H, W) = ({n}, {taps}, {h}, {w}) to match "
                                 f"image {tuple(image.shape)}, got {tuple(kernels.shape)}")
    r = size // 2
    padded = F.pad(image, (r, r, r, r), mode=_pad_mode(padding_mode, h, w, r, r)) if r else image
    out = torch.zeros_like(image, memory_format=torch.contiguous_format)
    for t, k in enumerate(kernels.unbind(1)):
        i, j = divmod(t, size)
        out.addcmul_(k.unsqueeze(1), padded[..., i:i + h, j:j + w])
    return out


def _check_odd_kernel(name: str, value: object) -> int:
    check_positive_int(name, value)
    if value % 2 == 0:
        raise ArgumentValueError(f"{name} must be a positive odd int (the l of an l×l kernel), got {value}")
    return value


class KPNRestorationNet(_RestorationTrunk):
    """KPN peer of Table 4: the trunk predicts a per-pixel l×l kernel applied to the input image.

    ``kernel_size_kpn`` = l (positive, odd); ``kernel_size`` is the trunk's bottleneck k×k (standard
    convs, as the Baseline).  ``tail[-1]`` outputs l² channels; it is initialised with zero weights and a
    centre-tap bias of 1, so that the untrained model is the identity (``normalize="none"`` or
    ``"sum"``; with ``"softmax"`` the centre weight is 0.99).  See the module docstring's KPN section.
    """

    def __init__(self, kernel_size_kpn: int = 5, normalize: str = "none", in_channels: int = 3,
                 channels: int = DEFAULT_CHANNELS, width: int = DEFAULT_WIDTH, blocks: int = 8,
                 kernel_size: int = 7, down: int = 2, padding_mode: str = "reflect") -> None:
        _check_odd_kernel("kernel_size_kpn", kernel_size_kpn)
        check_choice("normalize", normalize, KPN_NORMALIZE)
        taps = kernel_size_kpn ** 2
        super().__init__(in_channels, taps, channels, width, blocks, kernel_size, "conv", "paper", down,
                         padding_mode, 6, 6, None)
        self.kernel_size_kpn, self.normalize = kernel_size_kpn, normalize
        last = self.tail[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        with torch.no_grad():
            last.bias[taps // 2] = math.log(99.0 * (taps - 1)) if normalize == "softmax" and taps > 1 else 1.0

    def predict_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """The (normalised) per-pixel kernels (N, l², H, W), in ``x``'s dtype."""
        k = self._trunk(x).to(x.dtype)
        if self.normalize == "softmax":
            return k.softmax(dim=1)
        if self.normalize == "sum":
            s = k.sum(dim=1, keepdim=True)
            sign = torch.where(s < 0, -1.0, 1.0).to(s.dtype)
            return k / (sign * s.abs().clamp_min(1e-6))
        return k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_pixel_kernels(x, self.predict_kernels(x), self.padding_mode)


@register_model()
def restoration_baseline(**kwargs) -> RestorationNet:
    """Table 5's Baseline: the restoration network with standard k×k convs in the bottlenecks."""
    if "conv" in kwargs or "generator" in kwargs:
        raise TypeError("restoration_baseline has standard convolutions: no 'conv' or 'generator' argument")
    return RestorationNet(conv="conv", **kwargs)


@register_model()
def restoration_acda(**kwargs) -> RestorationNet:
    """§4.3 / Table 4-5's ACDA restoration network (ACDA 7×7 in the 8 dynamic bottlenecks)."""
    if "conv" in kwargs:
        raise TypeError("restoration_acda has ACDA layers: no 'conv' argument")
    return RestorationNet(conv="acda", **kwargs)


@register_model()
def restoration_kpn(kernel: int = 5, **kwargs) -> KPNRestorationNet:
    """Table 4's "KPN, l = kernel" peer: the Baseline's trunk predicting per-pixel l×l image kernels."""
    _check_odd_kernel("kernel", kernel)
    for name in ("conv", "generator", "kernel_size_kpn"):
        if name in kwargs:
            raise TypeError(f"restoration_kpn takes no {name!r} argument (standard convs; l is 'kernel')")
    return KPNRestorationNet(kernel_size_kpn=kernel, **kwargs)
