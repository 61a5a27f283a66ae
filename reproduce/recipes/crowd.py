"""Crowd-counting recipe (paper §4.2): the models as trained (``build``, ``WholeImage``) and the proxy that
stands in for ShanghaiTech / UCF-QNRF in Table 3 and Figure 7 (``CrowdProxy``: LFW faces pasted under a
perspective scale gradient onto scikit-image photographs, ``acda.data.crowd_proxy``).
Why × 100 density maps and the authors' generator: docs/reproductions.md (reproduce.table3)."""
from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import torch
from torch import nn

from acda.data.crowd import pad_to_multiple
from acda.data.crowd_proxy import crowd_proxy
from acda.models import get_model
from acda.models.crowd import CrowdCounter
from acda.profile import count_parameters
from acda.train import DensityCounting

from .base import Training, cached_datasets, doc

__all__ = ["ACDA_MODELS", "DENSITY_SCALE", "GENERATOR", "Crowd", "CrowdProxy", "CrowdTraining",
           "WholeImage", "build"]

ACDA_MODELS = ("crowd_adresnet_s", "crowd_adresnet_m")
DENSITY_SCALE = 100.0  # the network learns 100 × the density map
GENERATOR = "official"  # atom generator of the trained Ad-ResNets


def build(slug: str, *, width_mult: float = 1.0, generator: str = "paper") -> CrowdCounter:
    """The registered crowd model ``slug`` (the ACDA models with ``generator``)."""
    kwargs = {"width_mult": width_mult}
    if slug in ACDA_MODELS:
        kwargs["generator"] = generator
    return get_model(slug, **kwargs)


@functools.cache
def _parameters(slug: str, width_mult: float, generator: str) -> int:
    with torch.device("meta"):
        return count_parameters(build(slug, width_mult=width_mult, generator=generator))


class WholeImage(nn.Module):
    """A ``CrowdCounter`` on images of any size: zero-pads the input (bottom/right) to a multiple of the
    backbone's stride and crops the density map back to ⌈H/s⌉ × ⌈W/s⌉ (s = output stride), so the
    count is over the image only. No parameters of its own."""

    def __init__(self, model: CrowdCounter) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x, _ = pad_to_multiple(x, self.model.stride)
        s = self.model.output_stride
        return self.model(x)[..., :-(-h // s), :-(-w // s)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CrowdTraining(Training):
    """What every crowd recipe shares: Adam, whole-image evaluation (batch 1), pixel-wise MSE on
    ``density_scale`` × the σ = 4 px density map (the count is the output's sum / ``density_scale``)."""

    optimizer: str = doc("optimizer", "adam")
    weight_decay: float = doc("weight decay (not on biases/norms)", 1e-4)
    drop_last: bool = doc("incomplete last batch dropped", True)
    eval_batch_size: int = doc("evaluation batch size", 1)
    density_scale: float = doc("density map scale", DENSITY_SCALE)
    width_mult: float = doc("width multiplier", 1.0)
    generator: str = doc("ACDA atom generator", GENERATOR)

    def build(self, slug: str, width_mult: float | None = None) -> CrowdCounter:
        """The registered model ``slug`` at the recipe's width (or ``width_mult``) and generator."""
        return build(slug, width_mult=self.width_mult if width_mult is None else width_mult, generator=self.generator)

    def parameters(self, slug: str, width_mult: float | None = None) -> int:
        """Parameters of ``build(slug, width_mult)``, counted on the meta device (once per process)."""
        return _parameters(slug, self.width_mult if width_mult is None else width_mult, self.generator)

    def matched_width(self, slug: str, target: str) -> float:
        """The width multiplier (a multiple of 1/64) at which ``slug`` has the parameter count nearest to
        ``target``'s at the recipe's width (matched parameter budgets)."""
        goal = self.parameters(target)
        return min((k / 64 for k in range(1, 65)), key=lambda w: (abs(self.parameters(slug, w) - goal), w))

    def trainable(self, model: CrowdCounter) -> nn.Module:
        return WholeImage(model)

    def task(self) -> DensityCounting:
        return DensityCounting(density_scale=self.density_scale)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Crowd(CrowdTraining):
    """Table 3 on ShanghaiTech / UCF-QNRF: random crops + flips, constant learning rate."""

    lr: float = doc("learning rate", 1e-4)
    schedule: str = doc("schedule", "constant")
    batch_size: int = doc("batch size", 8)
    epochs: int = doc("epochs", 200)
    crop_size: int = doc("training crop (px, + flips)", 256)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CrowdProxy(CrowdTraining):
    """Whole proxy images + flips, from scratch. Full ≈ 15 min on 2 cores; quick (CI's) ≈ 1 min, 10 seeds.
    Face sizes and counts scale with the image side."""

    PRESETS: ClassVar = {
        "full": {},
        "quick": {"size": 64, "train": 128, "test": 32, "epochs": 6, "seeds": 10, "count": (5, 30),
                  "scale": (3.0, 12.0)},
    }
    lr: float = doc("learning rate", 3e-3)
    warmup_epochs: float = doc("warmup epochs", 1.0)
    grad_clip: float | None = doc("gradient-norm clip", 1.0)
    batch_size: int = doc("batch size", 4)
    epochs: int = doc("epochs", 20)
    width_mult: float = doc("width multiplier", 0.125)
    size: int = doc("image side (px, + flips)", 128)
    train: int = doc("training images", 240)
    test: int = doc("test images", 60)
    count: tuple[int, int] = doc("faces per image", (10, 60))
    scale: tuple[float, float] = doc("face side top→bottom (px)", (6.0, 24.0))
    seeds: int = doc("seeds", 5)

    def setting(self) -> str:
        """The ``setting`` column of its rows."""
        return (f"{self.proxy_tag()}: lfw faces on skimage photos, {self.size}×{self.size}, {self.train}/{self.test} "
                f"images, width ×{self.width_mult:g}")

    def datasets(self):
        """(train, test) crowd proxy, built once per process."""
        return cached_datasets(_crowd, self.size, self.train, self.test, tuple(self.count), tuple(self.scale))


def _crowd(size: int, train: int, test: int, count: tuple, scale: tuple):
    kwargs = {"size": size, "seed": 0, "count": count, "scale": scale}
    return crowd_proxy("train", train, **kwargs), crowd_proxy("test", test, **kwargs)
