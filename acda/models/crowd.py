"""Crowd-counting models of Table 3 (paper §4.2, Appendix A.4): a backbone and a transposed-conv decoder.

Every model maps images (N, 3, H, W) to a non-negative density map (N, 1, H / s, W / s), where
``s = output_stride`` (default 1); the count is the map's sum. H and W must be multiples of the
backbone's stride (16 for the Ad-ResNets, 32 for EfficientNet-B0), else ``forward`` raises.

Registered builders (``acda.models.get_model``): ``crowd_adresnet_s`` / ``_m`` (Ad-ResNet without its
max pool and classifier head, A.4), ``crowd_baseline`` (the same network with standard 3×3 convolutions),
``crowd_condconv_s`` / ``_l`` (EfficientNet-CondConv-B0 with 4 / 8 experts). ``width_mult`` scales every
channel count for the CPU proxies. Decoder: ``DensityDecoder`` (transposed convs + BN + ReLU, each
doubling H and W, then a 1×1 head). Readings of the paper, widths and parameter counts: docs/models.md.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from ..convert import convert
from ..peers import CondConv2d
from ..utils import check_choice, check_positive_int
from ._registry import register_model
from .adresnet import ARCHS, AdResNet

__all__ = [
    "CrowdCounter", "DensityDecoder", "conv3x3", "decoder_parameters", "decoder_widths", "adresnet_backbone",
    "efficientnet_b0_backbone", "condconv_backbone", "crowd_baseline", "crowd_adresnet_s",
    "crowd_adresnet_m", "crowd_condconv_s", "crowd_condconv_l",
]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "softplus": nn.Softplus}
CONDCONV_BACKBONES = ("efficientnet_b0", "adresnet_s")


def _scaled(channels: int, width_mult: float) -> int:
    return max(1, int(round(channels * width_mult)))


def _check_width_mult(width_mult: float) -> float:
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")
    return float(width_mult)


def _transposed_geometry(kernel_size: int) -> tuple[int, int]:
    """(padding, output_padding) for which a stride-2 ``ConvTranspose2d`` maps H to exactly 2H."""
    padding = (kernel_size - 1) // 2
    return padding, 2 + 2 * padding - kernel_size


class DensityDecoder(nn.Module):
    """Transposed-conv decoder (A.4): ``len(widths)`` × [ConvTranspose2d ×2, BN, ReLU], 1×1 conv, activation.

    (N, in_channels, h, w) → (N, 1, h·2^n, w·2^n), non-negative. See the module docstring.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...], kernel_size: int = 4,
                 activation: str = "relu") -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("decoder_kernel", kernel_size)
        if kernel_size < 2:
            raise ValueError(f"decoder_kernel must be >= 2 for a stride-2 transposed convolution, got {kernel_size}")
        check_choice("activation", activation, ACTIVATIONS)
        padding, output_padding = _transposed_geometry(kernel_size)
        blocks, c = [], in_channels
        for w in widths:
            check_positive_int("decoder width", w)
            blocks += [nn.ConvTranspose2d(c, w, kernel_size, 2, padding, output_padding, bias=False),
                       nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        self.widths, self.kernel_size, self.activation_name = tuple(widths), kernel_size, activation
        self.up = nn.Sequential(*blocks)
        self.head = nn.Conv2d(c, 1, 1)
        self.activation = ACTIVATIONS[activation]()
        self.reset_head()

    def reset_head(self) -> None:
        """PyTorch's default draw for the 1×1 head, made non-negative, and a zero bias.

        Its inputs follow a ReLU, so the map starts ≥ 0 and, with ``activation="relu"``, positive
        (with a gradient) wherever any input feature is: a ReLU head cannot start dead.
        """
        with torch.no_grad():
            self.head.reset_parameters()
            self.head.weight.abs_()
            self.head.bias.zero_()

    @property
    def upsampling(self) -> int:
        """Total upsampling factor, 2^len(widths)."""
        return 2 ** len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.head(self.up(x)))


def decoder_parameters(in_channels: int, widths: tuple[int, ...], kernel_size: int) -> int:
    """Parameters of ``DensityDecoder(in_channels, widths, kernel_size)``, in closed form."""
    total, c = 0, in_channels
    for w in widths:
        total += c * w * kernel_size ** 2 + 2 * w  # transposed conv (no bias) + BatchNorm
        c = w
    return total + c + 1  # 1×1 conv to one channel, with bias


class CrowdCounter(nn.Module):
    """Backbone → ``DensityDecoder`` → density map (N, 1, H / output_stride, W / output_stride).

    ``stride`` (the backbone's total stride) is the multiple H and W must be.
    """

    def __init__(self, backbone: nn.Module, backbone_channels: int, stride: int, decoder: DensityDecoder,
                 name: str = "") -> None:
        super().__init__()
        if stride % decoder.upsampling:
            raise ValueError(f"the decoder upsamples by {decoder.upsampling}, more than the backbone stride {stride}")
        if decoder.up and decoder.up[0].in_channels != backbone_channels or (
                not decoder.up and decoder.head.in_channels != backbone_channels):
            raise ValueError(f"the decoder must take the backbone's {backbone_channels} channels")
        self.backbone, self.decoder = backbone, decoder
        self.backbone_channels, self.stride = backbone_channels, stride
        self.output_stride = stride // decoder.upsampling
        self.name = name

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"{self.name or type(self).__name__} expects a 4-D input (N, C, H, W), got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            up = lambda v: -(-v // self.stride) * self.stride  # noqa: E731
            raise ValueError(f"{self.name or type(self).__name__}: input height and width must be multiples of "
                             f"{self.stride} (the backbone's stride), got {h}×{w}; pad or resize to e.g. "
                             f"{up(h)}×{up(w)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.decoder(self.backbone(x))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, stride={self.stride}, output_stride={self.output_stride}"


def conv3x3(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 0,
            bias: bool = True) -> nn.Conv2d:
    """The Baseline's layer in place of an ACDA k×k layer: a standard 3×3 conv (``kernel_size``, ``padding`` ignored)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=bias)


def adresnet_backbone(arch: str, *, conv: str | Callable[..., nn.Module] = "acda", width_mult: float = 1.0,
                      **kwargs) -> AdResNet:
    """Dense Ad-ResNet (A.4): no first max pool, no Output stage; every width × ``width_mult``. Stride 16."""
    if arch not in ("s", "m", "l"):
        raise ValueError(f"arch must be 's', 'm' or 'l', got {arch!r}")
    width_mult = _check_width_mult(width_mult)
    stages = tuple(replace(st, width=_scaled(st.width, width_mult), out_channels=_scaled(st.out_channels, width_mult))
                   for st in ARCHS[arch])
    for key in ("maxpool", "features_only", "num_classes", "stem_channels"):
        if key in kwargs:
            raise TypeError(f"{key!r} is fixed by the crowd-counting backbone")
    return AdResNet(stages, conv=conv, maxpool=False, features_only=True,
                    stem_channels=_scaled(64, width_mult), **kwargs)


def efficientnet_b0_backbone(width_mult: float = 1.0) -> nn.Sequential:
    """torchvision's EfficientNet-B0 ``features`` (no pooling, no classifier), widths × ``width_mult``. Stride 32."""
    try:
        from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
    except ImportError as e:  # torchvision is a suite dependency, not the library's
        raise ImportError("the EfficientNet-B0 backbone of crowd_condconv_s/_l needs torchvision (pip install "
                          "acda-repro[repro]); backbone='adresnet_s' does not") from e

    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=_check_width_mult(width_mult), depth_mult=1.0)
    return EfficientNet(setting, dropout=0.2, last_channel=last).features


def _efficientnet_condconv_where(name: str, conv: nn.Conv2d) -> bool:
    # features.5–7 (here "5.", "6.", "7." inside ``features``), not the SE block's fc1/fc2
    return name.split(".", 1)[0] in ("5", "6", "7") and not name.endswith((".fc1", ".fc2"))


def _adresnet_condconv_where(name: str, conv: nn.Conv2d) -> bool:
    return name.startswith(("stages.2.", "stages.3.")) and ".shortcut" not in name


def condconv_backbone(num_experts: int, backbone: str = "efficientnet_b0", width_mult: float = 1.0,
                      **kwargs) -> tuple[nn.Module, int, int]:
    """(backbone, output channels, stride) with CondConv2d layers (see the module docstring)."""
    check_positive_int("num_experts", num_experts)
    check_choice("backbone", backbone, CONDCONV_BACKBONES)
    if backbone == "efficientnet_b0":
        if kwargs:
            raise TypeError(f"unexpected arguments for the EfficientNet-B0 backbone: {sorted(kwargs)}")
        net = efficientnet_b0_backbone(width_mult)
        convert(net, inplace=True, layer=CondConv2d, num_experts=num_experts, where=_efficientnet_condconv_where)
        return net, net[-1][0].out_channels, 32
    # backbone == "adresnet_s"
    net = adresnet_backbone("s", conv=conv3x3, width_mult=width_mult, **kwargs)
    convert(net, inplace=True, layer=CondConv2d, num_experts=num_experts, where=_adresnet_condconv_where)
    return net, net.out_channels, 16


def decoder_widths(stride: int, output_stride: int, decoder_width: int, width_mult: float) -> tuple[int, ...]:
    """The decoder's block widths after a backbone of total ``stride``: ``decoder_width / 2^i``, × ``width_mult``.

    One block per factor 2 from ``stride`` down to ``output_stride`` (a power of 2, at most ``stride``).
    """
    check_positive_int("output_stride", output_stride)
    check_positive_int("decoder_width", decoder_width)
    if output_stride & (output_stride - 1) or output_stride > stride:
        raise ValueError(f"output_stride must be a power of 2 no larger than the backbone stride {stride}, "
                         f"got {output_stride}")
    n = int(math.log2(stride // output_stride))
    return tuple(_scaled(decoder_width / 2 ** i, width_mult) for i in range(n))


def _counter(name: str, backbone: nn.Module, channels: int, stride: int, *, width_mult: float, output_stride: int,
             decoder_width: int, decoder_kernel: int, activation: str) -> CrowdCounter:
    widths = decoder_widths(stride, output_stride, decoder_width, width_mult)
    return CrowdCounter(backbone, channels, stride, DensityDecoder(channels, widths, decoder_kernel, activation), name)


def _adresnet_counter(name: str, arch: str, conv, width_mult: float, output_stride: int, decoder_width: int,
                      decoder_kernel: int, activation: str, **kwargs) -> CrowdCounter:
    backbone = adresnet_backbone(arch, conv=conv, width_mult=width_mult, **kwargs)
    return _counter(name, backbone, backbone.out_channels, 16, width_mult=width_mult, output_stride=output_stride,
                    decoder_width=decoder_width, decoder_kernel=decoder_kernel, activation=activation)


@register_model()
def crowd_baseline(*, arch: str = "s", width_mult: float = 1.0, output_stride: int = 1, decoder_width: int = 256,
                   decoder_kernel: int = 4, activation: str = "relu", **kwargs) -> CrowdCounter:
    """Table 3's Baseline: dense Ad-ResNet-``arch`` with standard 3×3 convs in place of ACDA, and the decoder."""
    if "conv" in kwargs or "generator" in kwargs:
        raise TypeError("crowd_baseline has standard 3×3 convolutions: no 'conv' or 'generator' argument")
    return _adresnet_counter("crowd_baseline", arch, conv3x3, width_mult, output_stride, decoder_width,
                             decoder_kernel, activation, **kwargs)


@register_model()
def crowd_adresnet_s(*, generator: str = "paper", width_mult: float = 1.0, output_stride: int = 1,
                     decoder_width: int = 256, decoder_kernel: int = 4, activation: str = "relu",
                     **kwargs) -> CrowdCounter:
    """Ad-ResNet-s for crowd counting (A.4; Table 3 prints 4.87M)."""
    return _adresnet_counter("crowd_adresnet_s", "s", kwargs.pop("conv", "acda"), width_mult, output_stride,
                             decoder_width, decoder_kernel, activation, generator=generator, **kwargs)


@register_model()
def crowd_adresnet_m(*, generator: str = "paper", width_mult: float = 1.0, output_stride: int = 1,
                     decoder_width: int = 256, decoder_kernel: int = 4, activation: str = "relu",
                     **kwargs) -> CrowdCounter:
    """Ad-ResNet-m for crowd counting (A.4; Table 3 prints 11.87M)."""
    return _adresnet_counter("crowd_adresnet_m", "m", kwargs.pop("conv", "acda"), width_mult, output_stride,
                             decoder_width, decoder_kernel, activation, generator=generator, **kwargs)


def _condconv_counter(name: str, num_experts: int, backbone: str, width_mult: float, output_stride: int,
                      decoder_width: int, decoder_kernel: int, activation: str, **kwargs) -> CrowdCounter:
    net, channels, stride = condconv_backbone(num_experts, backbone, width_mult, **kwargs)
    return _counter(name, net, channels, stride, width_mult=width_mult, output_stride=output_stride,
                    decoder_width=decoder_width, decoder_kernel=decoder_kernel, activation=activation)


@register_model()
def crowd_condconv_s(*, num_experts: int = 4, backbone: str = "efficientnet_b0", width_mult: float = 1.0,
                     output_stride: int = 1, decoder_width: int = 256, decoder_kernel: int = 4,
                     activation: str = "relu", **kwargs) -> CrowdCounter:
    """CondConv-s of Table 3: EfficientNet-CondConv-B0, 4 experts (14.8M printed), and the decoder."""
    return _condconv_counter("crowd_condconv_s", num_experts, backbone, width_mult, output_stride, decoder_width,
                             decoder_kernel, activation, **kwargs)


@register_model()
def crowd_condconv_l(*, num_experts: int = 8, backbone: str = "efficientnet_b0", width_mult: float = 1.0,
                     output_stride: int = 1, decoder_width: int = 256, decoder_kernel: int = 4,
                     activation: str = "relu", **kwargs) -> CrowdCounter:
    """CondConv-l of Table 3: EfficientNet-CondConv-B0, 8 experts (25.5M printed), and the decoder."""
    return _condconv_counter("crowd_condconv_l", num_experts, backbone, width_mult, output_stride, decoder_width,
                             decoder_kernel, activation, **kwargs)
