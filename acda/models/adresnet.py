"""Ad-ResNet-s/-m/-l (paper §4.1, Appendix A.4, Table A): ResNets with dynamic bottleneck blocks.

Table A, as built here (``[...] × n`` = n blocks; numbers are output channels):

- Conv0 (all): 7×7 conv, 64, stride 2; 3×3 max pool, stride 2.
- Conv1_x: -s [3×3 64, 3×3 64] ×2; -m, -l [1×1 64, 3×3 64, 1×1 256] ×2.
- Conv2_x: -s [3×3 128, 3×3 128] ×2; -m, -l [1×1 128, 3×3 128, 1×1 512] ×2 (-l ×3).
- Conv3_x: -s [1×1 128, ACDA 7×7 128, 1×1 256] ×2; -m, -l [1×1 256, ACDA 7×7 256, 1×1 512] ×2 (-l ×8).
- Conv4_x: -s [1×1 256, ACDA 5×5 256, 1×1 512] ×2; -m, -l [1×1 512, ACDA 5×5 512, 1×1 1024] ×2 (-l ×3).
- Output: global average pool, 1000-d FC on the Conv4_x width (512 for -s, 1024 for -m, -l).

Input (N, 3, H, W) → logits (N, num_classes); the dense variants (``adresnet_{s,m,l}_dense``: no
first max pool, no Output stage) return the Conv4_x map (N, C, H/16, W/16). Where Table A is silent
the choice is an argument of ``AdResNet`` and of the builders: ``stride_on``, ``shortcut``,
``generator`` (``"paper"`` or ``"official"``), ``conv`` (``"acda"``, ``"conv"``, ``"dfn"`` or a
callable: the k×k layer of the dynamic blocks), ``maxpool``, ``features_only``, ``stem_channels``.

See docs/adresnet.md for every choice made (block types, downsampling, shortcuts, ACDA layer
settings, baselines, dense variant, stem width) and why.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..generator import GENERATORS
from ..layers import ACDAConv2d
from ..peers import DFNConv2d
from ..replacement import Conv2dReplacement
from ..utils import check_choice, check_positive_int
from ._registry import register_model

__all__ = ["AdResNet", "Stage", "ARCHS", "adresnet_s", "adresnet_m", "adresnet_l",
           "adresnet_s_dense", "adresnet_m_dense", "adresnet_l_dense"]

CONVS = ("acda", "conv", "dfn")
SHORTCUTS = ("A", "B")
STRIDE_ON = ("kxk", "1x1")


@dataclass(frozen=True)
class Stage:
    """One row of Table A: ``depth`` blocks of type ``block`` ('basic' | 'bottleneck' | 'dynamic')."""

    block: str
    width: int
    out_channels: int
    depth: int
    kernel_size: int = 3


ARCHS: dict[str, tuple[Stage, ...]] = {
    "s": (Stage("basic", 64, 64, 2), Stage("basic", 128, 128, 2),
          Stage("dynamic", 128, 256, 2, 7), Stage("dynamic", 256, 512, 2, 5)),
    "m": (Stage("bottleneck", 64, 256, 2), Stage("bottleneck", 128, 512, 2),
          Stage("dynamic", 256, 512, 2, 7), Stage("dynamic", 512, 1024, 2, 5)),
    "l": (Stage("bottleneck", 64, 256, 2), Stage("bottleneck", 128, 512, 3),
          Stage("dynamic", 256, 512, 8, 7), Stage("dynamic", 512, 1024, 3, 5)),
}

ConvFactory = Callable[..., nn.Module]


class _PadShortcut(nn.Module):
    """ResNet option A: subsample by ``stride`` and zero-pad the extra output channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"shortcut='A' cannot reduce channels ({in_channels} → {out_channels})")
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad_channels={self.extra}"


def _shortcut(in_channels: int, out_channels: int, stride: int, kind: str) -> nn.Module:
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    if kind == "A":
        return _PadShortcut(in_channels, out_channels, stride)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """ResNet basic block [11]: 3×3 conv, BN, ReLU, 3×3 conv, BN, + shortcut, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = _shortcut(in_channels, out_channels, stride, shortcut)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """Bottleneck [11] with a pluggable k×k layer: 1×1 squeeze, k×k, 1×1 restore (+ BN each).

    With ``layer=ACDAConv2d`` this is the dynamic bottleneck block of Appendix A.4.
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, stride: int, kernel_size: int,
                 layer: ConvFactory, shortcut: str, stride_on: str) -> None:
        super().__init__()
        s1, sk = (stride, 1) if stride_on == "1x1" else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, width, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = layer(width, width, kernel_size, stride=sk, padding=kernel_size // 2, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = _shortcut(in_channels, out_channels, stride, shortcut)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _conv_factory(conv: str | ConvFactory, generator: str, acda_kwargs: dict) -> ConvFactory:
    if callable(conv):
        return conv
    if conv == "acda":
        return partial(ACDAConv2d, generator=generator, **acda_kwargs)
    if conv == "conv":
        return nn.Conv2d
    if conv == "dfn":
        dfn_kwargs = {k: v for k, v in acda_kwargs.items() if k == "num_atoms"}
        return partial(DFNConv2d, generator=generator, **dfn_kwargs)
    raise ValueError(f"conv must be one of {CONVS} or a callable, got {conv!r}")


class AdResNet(nn.Module):
    """Ad-ResNet (Appendix A.4, Table A); see docs/adresnet.md for every choice made."""

    def __init__(
        self,
        stages: tuple[Stage, ...],
        num_classes: int = 1000,
        *,
        conv: str | ConvFactory = "acda",
        generator: str = "paper",
        shortcut: str = "B",
        stride_on: str = "kxk",
        maxpool: bool = True,
        features_only: bool = False,
        in_channels: int = 3,
        stem_channels: int = 64,
        num_atoms: int = 6,
        num_bases: int = 6,
        num_scales: int | None = None,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("stem_channels", stem_channels)
        for name, value, choices in (("generator", generator, GENERATORS), ("shortcut", shortcut, SHORTCUTS),
                                     ("stride_on", stride_on, STRIDE_ON)):
            check_choice(name, value, choices)
        layer = _conv_factory(conv, generator,
                              {"num_atoms": num_atoms, "num_bases": num_bases, "num_scales": num_scales})
        self.conv_kind = conv if isinstance(conv, str) else getattr(conv, "__name__", "custom")
        self.generator_variant = generator
        self.shortcut_kind, self.stride_on = shortcut, stride_on
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 7, 2, 3, bias=False), nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1) if maxpool else nn.Identity(),
        )
        channels = stem_channels
        self.stages = nn.ModuleList()
        for i, st in enumerate(stages):
            blocks = []
            for j in range(st.depth):
                stride = 2 if (i > 0 and j == 0) else 1
                if st.block == "basic":
                    blocks.append(BasicBlock(channels, st.out_channels, stride, shortcut))
                elif st.block in ("bottleneck", "dynamic"):
                    kxk = layer if st.block == "dynamic" else nn.Conv2d
                    blocks.append(Bottleneck(channels, st.width, st.out_channels, stride, st.kernel_size,
                                             kxk, shortcut, stride_on))
                else:
                    raise ValueError(f"Stage.block must be 'basic', 'bottleneck' or 'dynamic', got {st.block!r}")
                channels = st.out_channels
            self.stages.append(nn.Sequential(*blocks))
        self.out_channels = channels
        self.features_only = features_only
        if features_only:
            self.fc = None
        else:
            self.fc = nn.Linear(channels, num_classes)
        self._init(zero_init_residual)

    def _init(self, zero_init_residual: bool) -> None:
        # torchvision's ResNet initialisation; ACDA/DFN (any Conv2dReplacement) layers keep their own,
        # generator included.
        own = {id(sub) for layer in self.modules() if isinstance(layer, Conv2dReplacement)
               for sub in layer.modules()}
        for m in self.modules():
            if id(m) in own:
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for stage in self.stages:
                for block in stage:
                    nn.init.zeros_(block.last_bn.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Conv0 … Conv4_x: (N, 3, H, W) → (N, C, H/32, W/32) (H/16 without the max pool)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"AdResNet expects a 4-D input (N, C, H, W), got shape {tuple(getattr(x, 'shape', ()))}")
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        if self.fc is None:
            return x
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def extra_repr(self) -> str:
        return (f"conv={self.conv_kind!r}, generator={self.generator_variant!r}, shortcut={self.shortcut_kind!r}, "
                f"stride_on={self.stride_on!r}, features_only={self.features_only}")


def _build(arch: str, num_classes: int, generator: str, conv: str | ConvFactory, features_only: bool,
           **kwargs) -> AdResNet:
    return AdResNet(ARCHS[arch], num_classes, generator=generator, conv=conv, features_only=features_only, **kwargs)


@register_model()
def adresnet_s(*, num_classes: int = 1000, generator: str = "paper", conv: str | ConvFactory = "acda",
               features_only: bool = False, **kwargs) -> AdResNet:
    """Ad-ResNet-s (Table A, first column); Table 2 prints 3.85M parameters."""
    return _build("s", num_classes, generator, conv, features_only, **kwargs)


@register_model()
def adresnet_m(*, num_classes: int = 1000, generator: str = "paper", conv: str | ConvFactory = "acda",
               features_only: bool = False, **kwargs) -> AdResNet:
    """Ad-ResNet-m (Table A, second column); Table 2 prints 9.83M parameters."""
    return _build("m", num_classes, generator, conv, features_only, **kwargs)


@register_model()
def adresnet_l(*, num_classes: int = 1000, generator: str = "paper", conv: str | ConvFactory = "acda",
               features_only: bool = False, **kwargs) -> AdResNet:
    """Ad-ResNet-l (Table A, third column); Table 2 prints 18.19M parameters."""
    return _build("l", num_classes, generator, conv, features_only, **kwargs)


def _dense(builder: Callable[..., AdResNet], **kwargs) -> AdResNet:
    kwargs.setdefault("maxpool", False)
    return builder(features_only=True, **kwargs)


@register_model()
def adresnet_s_dense(**kwargs) -> AdResNet:
    """Ad-ResNet-s for dense prediction (A.4: first max pool and the Output stage removed)."""
    return _dense(adresnet_s, **kwargs)


@register_model()
def adresnet_m_dense(**kwargs) -> AdResNet:
    """Ad-ResNet-m for dense prediction (A.4: first max pool and the Output stage removed)."""
    return _dense(adresnet_m, **kwargs)


@register_model()
def adresnet_l_dense(**kwargs) -> AdResNet:
    """Ad-ResNet-l for dense prediction (A.4: first max pool and the Output stage removed)."""
    return _dense(adresnet_l, **kwargs)
