"""LeNet and LeNet + ACDA for 32×32 images (paper §4.1, Table 1).

LeNet-5 as commonly used on CIFAR (LeCun et al. 1998, ref. [18]): conv 5×5 (C→6), ReLU, max-pool
2×2, conv 5×5 (6→16), ReLU, max-pool 2×2, FC 400→120, ReLU, FC 120→84, ReLU, FC 84→classes.
LeNet + ACDA replaces *both* convolutions with ``ACDAConv2d`` of the same geometry (Table 1:
"by only replacing the two convolutional layers"); everything else is unchanged. The paper does
not print its LeNet variant; ReLU and max-pooling are the PyTorch-tutorial CIFAR LeNet's choice,
and we document them here as ours.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import ACDAConv2d
from ..utils import check_positive_int
from ._registry import register_model

__all__ = ["LeNet", "lenet", "lenet_acda"]


class LeNet(nn.Module):
    """LeNet-5 for (N, C, 32, 32) inputs → (N, num_classes) logits.

    ``conv`` is ``"conv"`` (``nn.Conv2d``) or ``"acda"`` (``ACDAConv2d``, with ``acda_kwargs``
    passed on: ``generator``, ``num_atoms``, ``num_bases``, ``num_scales``, ``backend``).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, conv: str = "conv",
                 image_size: int = 32, **acda_kwargs) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels),
                            ("image_size", image_size)):
            check_positive_int(name, value)
        if conv not in ("conv", "acda"):
            raise ValueError(f"conv must be 'conv' or 'acda', got {conv!r}")
        if conv == "conv" and acda_kwargs:
            raise TypeError(f"ACDA arguments {sorted(acda_kwargs)} given for a plain-conv LeNet")
        feat = ((image_size - 4) // 2 - 4) // 2
        if feat < 1:
            raise ValueError(f"image_size must be at least 16 for LeNet's two 5×5 convs, got {image_size}")
        self.conv_type = conv
        self.num_classes = num_classes

        def make(cin: int, cout: int) -> nn.Module:
            if conv == "acda":
                return ACDAConv2d(cin, cout, 5, **acda_kwargs)
            return nn.Conv2d(cin, cout, 5)

        self.features = nn.Sequential(
            make(in_channels, 6), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            make(6, 16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * feat * feat, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def extra_repr(self) -> str:
        return f"conv={self.conv_type!r}, num_classes={self.num_classes}"


@register_model()
def lenet(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> LeNet:
    """LeNet of Table 1 (two 5×5 convs, two max-pools, three FC layers)."""
    return LeNet(num_classes, in_channels, "conv", image_size)


@register_model()
def lenet_acda(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
               generator: str = "paper", **acda_kwargs) -> LeNet:
    """LeNet + ACDA of Table 1: both 5×5 convolutions replaced by ``ACDAConv2d``."""
    return LeNet(num_classes, in_channels, "acda", image_size, generator=generator, **acda_kwargs)
