"""Crowd-counting models of Table 3 (paper §4.2, Appendix A.4): a backbone and a transposed-conv decoder.

Every model maps images (N, 3, H, W) to a non-negative density map (N, 1, H / s, W / s), where
``s = output_stride`` (default 1: the decoder restores the input resolution); the count is the map's
sum. H and W must be multiples of the backbone's stride (16 for the Ad-ResNets, 32 for
EfficientNet-B0), else ``forward`` raises a ``ValueError`` naming that multiple.

Registered builders (``acda.models.get_model(name, **options)``):

- ``crowd_adresnet_s``, ``crowd_adresnet_m``: Ad-ResNet-s / -m (``acda.models.adresnet``, Table A)
  as A.4 says for crowd counting: "the first 'Max pool' layer and the final 'Output' layer are
  removed". Table A's 'Output' row is "Average pool, 1000-d FC layer", so the output stage is the
  classifier head (global pooling + FC), not the last residual stage: Conv4_x is kept and the
  backbone ends at (N, 512 or 1024, H/16, W/16) (§4.2 says the same: "replace the final linear
  layer with few standard transposed convolutional layers").
- ``crowd_baseline``: Table 3's "Baseline", "a same network architecture as Ad-ResNet with standard
  convolutional layers only": each ACDA k×k layer of the dynamic bottlenecks (Conv3_x, Conv4_x) is a
  standard 3×3 ``nn.Conv2d`` (same in/out channels, stride and BatchNorm); everything else, decoder
  included, is identical. ``arch="s"`` (default, the Ad-ResNet-s geometry Table 3's 4.78M is next
  to) or ``"m"``. Standard 7×7 / 5×5 convolutions are excluded by the printed counts: that backbone
  alone has 6,310,464 parameters, more than the printed 4.78M total
  (``reproduce.parameter_studies.table3_parameter_study``).
- ``crowd_condconv_s``, ``crowd_condconv_l``: "the official models of CondConv [40] ... appending a
  light weight decoder network". The official CondConv checkpoints are EfficientNet-CondConv-B0
  with 4 experts (13.3M, the "CondConv-EfficientNet" row of Table 2) and with 8 experts (24.0M;
  tensorflow/tpu, models/official/efficientnet/condconv/README.md). Table 3 prints 14.8M and
  25.5M: both are their ImageNet counts + 1.5M, and 25.5 − 14.8 = 24.0 − 13.3 = 10.7M, so we take
  CondConv-s = 4 experts and CondConv-l = 8 experts on EfficientNet-B0 (``num_experts`` changes
  it). Backbone: torchvision's EfficientNet-B0 ``features`` (stem, 7 MBConv stages, the 1×1
  320 → 1280 head conv; stride 32) without its pooling and classifier, every convolution of stages
  5–7 (``features.5``–``features.7``: the 112/192/320-channel stages, SE convolutions excluded)
  replaced by ``acda.peers.CondConv2d`` through ``acda.convert`` — the same rule as Table 2's
  CondConv-EfficientNet row (``reproduce/table2.py``), one sigmoid routing per layer; torchvision's
  stochastic depth (0.2) in the MBConv blocks is kept.
  ``backbone="adresnet_s"`` instead puts CondConv (same experts) on the Baseline's backbone: every
  conv inside the Conv3_x / Conv4_x blocks, not the shortcut projections (a per-image dynamic
  analogue of ``crowd_adresnet_s`` in the same architecture; not a Table 3 row).

Decoder (``DensityDecoder``; the paper: "consecutive transposed convolution layers with batch
normalization and ReLU activation are used for resolution recovery", "few standard transposed
convolutional layers", "a light weight decoder"; depth, widths and kernel are not given):

- ``n = log2(backbone stride / output_stride)`` blocks of ``ConvTranspose2d(c, w_i, k, stride 2,
  padding (k − 1) // 2, output_padding 2 + 2·padding − k, bias=False)``, ``BatchNorm2d``, ``ReLU``:
  each block exactly doubles H and W. Default ``decoder_kernel=4`` (a kernel divisible by the
  stride: every output pixel gets the same number of taps, no checkerboard from uneven overlap,
  Odena et al. 2016), widths ``w_i = decoder_width / 2^i`` with ``decoder_width=256``: 256, 128,
  64, 32 after the Ad-ResNets (n = 4), 256 … 16 after EfficientNet (n = 5). The widths do not
  depend on the backbone, so Baseline, Ad-ResNet-s and -m share one decoder design (only the first
  layer's input width differs for -m).
- then a 1×1 ``Conv2d(w_last, 1)`` with bias and ``activation``: ``"relu"`` (default, the
  decoder's own non-linearity; exact zeros in empty regions) or ``"softplus"`` (strictly positive,
  never a dead unit). PyTorch's default initialisation for the decoder, except the 1×1 head: its
  default draw made non-negative, bias 0, so that a ReLU head starts alive (``reset_head``).

Reduced widths for CPU proxies: ``width_mult`` scales every channel count — stem, stages, decoder
(``round(c · width_mult)``, at least 1; EfficientNet's own rounding to multiples of 8 there) — by
the same factor for every model; the ACDA generators keep A.3's 64 hidden channels. Other keyword
arguments of the Ad-ResNet builders go to ``AdResNet`` (``shortcut``, ``stride_on``, ``num_atoms``,
``generator`` ...), with its defaults (option-B projections, stride on the k×k layer, paper generator).

Parameter counts at full width with these defaults (``count_parameters``; Table 3 prints the second
number; ``reproduce.parameter_studies.table3_parameter_study()`` derives what the printed numbers imply):

- ``crowd_baseline``: 5,688,865 (backbone 2,902,592 + decoder 2,786,273) vs 4.78M printed.
- ``crowd_adresnet_s``: 5,454,473 (backbone 2,668,200 + decoder 2,786,273) vs 4.87M printed.
- ``crowd_adresnet_m``: 13,097,353 (backbone 8,213,928 + decoder 4,883,425) vs 11.87M printed.
- ``crowd_condconv_s``: 18,030,221 (backbone 12,090,012 + decoder 5,940,209) vs 14.8M printed.
- ``crowd_condconv_l``: 28,786,285 (backbone 22,846,076 + decoder 5,940,209) vs 25.5M printed.

None of them matches, and no decoder choice would make them all match: the printed counts are not
consistent with one decoder shared by the five models, nor with Table 2's counts of the same
backbones (that study's ``findings``). The defaults above follow the reasons given, not the printed
numbers (the grid's closest points are reported as findings, not adopted).
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
