"""Restoration network of §4.3 (real-world SR, Table 4) and its Conv baseline (denoising, Table 5).

The paper: "We use two convolution layers and pixel shuffle downsampling layers to reduce the feature
resolution, and 8 consecutive dynamic bottleneck blocks to process the intermediate features. Finally,
two convolution layers with pixel shuffle upsampling layers are followed to restore the feature
resolution and output the final predictions." Reading used here (``C`` = ``channels``, ``W`` =
``width``, ``r`` = ``down`` = 2, so ``C`` must be divisible by ``r⁴``):

- Head (2 × [conv 3×3 + ReLU + PixelUnshuffle(r)]): conv 3×3 ``in → C/r⁴``, ReLU, PixelUnshuffle(r)
  (``C/r²`` channels), conv 3×3 ``C/r² → C/r²``, ReLU, PixelUnshuffle(r) (``C`` channels, 1/r² = 1/4
  resolution for r = 2).
- Body: ``blocks`` = 8 dynamic bottleneck blocks (A.4), the repository's
  :class:`acda.models.adresnet.Bottleneck` ``(C, W, C, stride 1, kernel_size)``: 1×1 ``C → W``, BN, ReLU;
  k×k ``W → W`` (``ACDAConv2d``, k = 7 → scales 3×3, 5×5, 7×7, m = m' = 6; or ``nn.Conv2d`` k×k for the
  baseline, "the same network architecture as ACDA with standard convolutions only"), BN, ReLU;
  1×1 ``W → C``, BN; + identity, ReLU.
- Tail, the mirror of the head (2 × [PixelShuffle(r) + conv 3×3]): PixelShuffle(r) (``C/r²``), conv
  3×3 ``C/r² → C/r²``, ReLU, PixelShuffle(r) (``C/r⁴``), conv 3×3 ``C/r⁴ → in`` (no activation).
  Head/tail convs have biases; body layers have none (BN follows), as in ``Bottleneck``.
- Global residual: ``output = input + net(input)`` (RealSR V3 feeds LR images already upsampled to the
  HR size, and denoising maps noisy → clean at equal size); zeroing ``tail[-1]`` gives the identity.
- Any H, W: the input is padded at the bottom/right to a multiple of ``r²`` (``padding_mode``, default
  ``"reflect"``; ``"replicate"`` is used where an edge is too short to reflect) and the output is
  cropped back.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..generator import GENERATORS
from ..layers import ACDAConv2d
from ..profile import count_parameters
from ..utils import check_positive_int
from ._registry import register_model
from .adresnet import Bottleneck

__all__ = ["RestorationNet", "restoration_baseline", "restoration_acda", "table5_parameter_study",
           "TABLE5_PRINTED"]

CONVS = ("acda", "conv")
TABLE5_PRINTED = {"baseline": 2.28e6, "acda": 1.97e6}  # Table 5: Baseline + MSE, ACDA + MSE
DEFAULT_CHANNELS, DEFAULT_WIDTH = 256, 64


class RestorationNet(nn.Module):
    """§4.3's "extremely simple" restoration network; see the module docstring for every choice."""

    def __init__(self, in_channels: int = 3, channels: int = DEFAULT_CHANNELS, width: int = DEFAULT_WIDTH,
                 blocks: int = 8, kernel_size: int = 7, conv: str = "acda", generator: str = "paper",
                 down: int = 2, padding_mode: str = "reflect", num_atoms: int = 6, num_bases: int = 6,
                 num_scales: int | None = None) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("channels", channels), ("width", width),
                            ("blocks", blocks), ("kernel_size", kernel_size), ("down", down)):
            check_positive_int(name, value)
        if channels % down ** 4:
            raise ValueError(f"channels must be divisible by down**4 = {down ** 4}, got {channels}")
        if conv not in CONVS:
            raise ValueError(f"conv must be one of {CONVS}, got {conv!r}")
        if generator not in GENERATORS:
            raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
        if padding_mode not in ("reflect", "replicate", "constant"):
            raise ValueError(f"padding_mode must be 'reflect', 'replicate' or 'constant', got {padding_mode!r}")
        self.factor, self.padding_mode, self.conv = down * down, padding_mode, conv
        c1, c2 = channels // down ** 4, channels // down ** 2
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(inplace=True), nn.PixelUnshuffle(down),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(inplace=True), nn.PixelUnshuffle(down))
        layer = (partial(ACDAConv2d, generator=generator, num_atoms=num_atoms, num_bases=num_bases,
                         num_scales=num_scales) if conv == "acda" else nn.Conv2d)
        self.body = nn.Sequential(*(Bottleneck(channels, width, channels, 1, kernel_size, layer, "B", "kxk")
                                    for _ in range(blocks)))
        self.tail = nn.Sequential(
            nn.PixelShuffle(down), nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(inplace=True),
            nn.PixelShuffle(down), nn.Conv2d(c1, in_channels, 3, padding=1))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.factor, -w % self.factor
        if not (ph or pw):
            return x
        mode = self.padding_mode
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        out = self.tail(self.body(self.head(self._pad(x))))
        return x + out[..., :h, :w]


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


def table5_parameter_study(grid: tuple[tuple[int, int], ...] = ((128, 32), (128, 48), (128, 64), (256, 32), (256, 48),
                                                                (256, 64), (256, 128), (512, 48), (512, 64)),
                           **kwargs) -> dict:
    """Parameter counts of both variants over round (C, W) pairs, against Table 5's 2.28M / 1.97M.

    Returns ``{"printed": TABLE5_PRINTED, "rows": [...], "closest": {...}}``; each row has ``channels``,
    ``width``, ``baseline``, ``acda``, ``difference`` (baseline − acda; printed: 0.31M) and
    ``acda_smaller``. ``closest`` names the (C, W) whose count is nearest each printed value.
    """
    rows = []
    for c, w in grid:
        base = count_parameters(RestorationNet(channels=c, width=w, conv="conv", **kwargs))
        acda = count_parameters(RestorationNet(channels=c, width=w, conv="acda", **kwargs))
        rows.append({"channels": c, "width": w, "baseline": base, "acda": acda, "difference": base - acda,
                     "acda_smaller": acda < base})
    closest = {k: min(rows, key=lambda r, k=k: abs(r[k] - TABLE5_PRINTED[k]))
               for k in ("baseline", "acda")}
    closest = {k: (r["channels"], r["width"]) for k, r in closest.items()}
    return {"printed": dict(TABLE5_PRINTED), "printed_difference": TABLE5_PRINTED["baseline"] - TABLE5_PRINTED["acda"],
            "rows": rows, "closest": closest}
