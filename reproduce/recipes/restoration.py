"""Restoration recipe (paper §4.3, A.6): the trainer task of each problem and the real-image proxy that stands
in for RealSR (Tables 4, B) and SIDD (Table 5): scikit-image photographs under synthetic spatially varying
degradations (``acda.data.restoration_proxy``), reduced widths, several seeds."""
from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import torch
from torch import nn

from acda.data.restoration_proxy import restoration_proxy
from acda.models import get_model
from acda.profile import count_parameters
from acda.train import Restoration

from .base import Training, cached_datasets, doc

__all__ = ["RestorationTraining", "RestorationReal", "RestorationProxy", "task_for", "build", "parameters", "matched_budgets", "budget_text"]


def task_for(task: str, scale: int = 1) -> Restoration:
    """The trainer task of ``task`` ("sr" or "denoise"): MSE loss; SR scored on Y with ``scale`` shaved,
    denoising on 8-bit sRGB."""
    if task == "sr":
        return Restoration(criterion="mse", space="y", shave=scale)
    if task == "denoise":
        return Restoration(criterion="mse", space="rgb8")
    raise ValueError(f"task must be 'sr' or 'denoise', got {task!r}")


def build(slug: str, **kwargs) -> nn.Module:
    """The registered restoration model ``slug`` with ``kwargs``."""
    return get_model(slug, **kwargs)


def parameters(slug: str, **kwargs) -> int:
    """Parameters of ``build(slug, **kwargs)``, counted on the meta device (no memory, no initialisation); each
    configuration counted once per process."""
    return _parameters(slug, tuple(sorted(kwargs.items())))


@functools.cache
def _parameters(slug: str, kwargs: tuple) -> int:
    with torch.device("meta"):
        return count_parameters(build(slug, **dict(kwargs)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class RestorationTraining(Training):
    """What every restoration recipe shares: Adam, pixel-wise MSE, the problem ("sr" at ``scale``, or
    "denoise") and the widths C, W of the trained models (None: the model's own, 256 and 64)."""

    optimizer: str = doc("optimizer", "adam")
    weight_decay: float = doc("weight decay", 0.0)
    drop_last: bool = doc("incomplete last batch dropped", True)
    problem: str = doc("problem", "sr")
    scale: int = doc("upscaling factor", 2)
    channels: int | None = doc("body channels C", None)
    width: int | None = doc("bottleneck width W (ACDA)", None)

    def widths(self) -> dict[str, int]:
        return {k: v for k, v in (("channels", self.channels), ("width", self.width)) if v is not None}

    def build(self, slug: str, **kwargs) -> nn.Module:
        return build(slug, **{**self.widths(), **kwargs})

    def parameters(self, slug: str, **kwargs) -> int:
        return parameters(slug, **{**self.widths(), **kwargs})

    def trainable(self, model: nn.Module) -> nn.Module:
        return model

    def task(self) -> Restoration:
        return task_for(self.problem, self.scale if self.problem == "sr" else 1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RestorationReal(RestorationTraining):
    """Tables 4, 5 and B on RealSR / SIDD: random crops + flips, constant learning rate, whole test images."""

    lr: float = doc("learning rate", 1e-4)
    schedule: str = doc("schedule", "constant")
    batch_size: int = doc("batch size", 16)
    eval_batch_size: int = doc("evaluation batch size", 1)
    epochs: int = doc("epochs", 1000)
    crop_size: int = doc("training crop (px, + flips)", 128)
    convention: str = doc("SR scores' convention (BasicSR's beside it)", "realsr")
    denoise_ssim: str = doc("denoising SSIM (per-channel beside it)", "matlab")

    def task(self) -> Restoration:
        """SR scored in ``convention`` with BasicSR's (shave = scale) beside it; denoising on 8-bit sRGB blocks
        with ``denoise_ssim`` SSIM and the per-channel one beside it."""
        if self.problem != "sr":
            return Restoration(criterion="mse", space="rgb8", convention=self.denoise_ssim,
                               secondary=("per_channel", 0) if self.denoise_ssim != "per_channel" else None)
        shave = 0 if self.convention == "realsr" else self.scale
        return Restoration(criterion="mse", space="y", shave=shave, convention=self.convention,
                           secondary=("basicsr", self.scale) if self.convention != "basicsr" else None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RestorationProxy(RestorationTraining):
    """Crops + flips/transposes, from scratch; the last epoch's model on held-out test patches. Sizes are
    multiples of 2, 3 and 4. Full: minutes on 2 cores; quick (CI's): seconds."""

    PRESETS: ClassVar = {
        "full": {},
        "quick": {"crop": 24, "train": 128, "test": 8, "test_size": 36, "epochs": 4, "width": 8, "batch_size": 8,
                  "lr": 4e-3},
    }
    lr: float = doc("learning rate", 2e-3)
    warmup_epochs: float = doc("warmup epochs", 1.0)
    grad_clip: float | None = doc("gradient-norm clip", 1.0)
    batch_size: int = doc("batch size", 16)
    eval_batch_size: int = doc("evaluation batch size", 8)
    epochs: int = doc("epochs", 8)
    channels: int | None = doc("body channels C", 64)
    width: int | None = doc("bottleneck width W (ACDA)", 16)
    crop: int = doc("training crop (px)", 48)
    train: int = doc("training crops", 384)
    test: int = doc("test images", 24)
    test_size: int = doc("test image side (px)", 96)
    seeds: int = doc("seeds", 5)

    def datasets(self):
        """(train, test) proxy of the problem at its scale (1 for denoising), built once per process."""
        return cached_datasets(_restoration, self.problem, self.scale, self.crop, self.train, self.test,
                               self.test_size)


def matched_budgets(models: dict[str, tuple[str, dict]], recipe: RestorationProxy) -> dict[str, tuple[str, dict]]:
    """``models`` with the bottleneck width W of every non-ACDA model set so that its parameter count is the
    nearest to the ACDA model's (matched parameter budgets): at reduced widths ACDA's atom generators
    (64 hidden channels, A.3) outweigh the k×k convolutions they replace."""
    target = recipe.parameters("restoration_acda")
    out = {}
    for row, (slug, kwargs) in models.items():
        if slug != "restoration_acda" and "width" not in kwargs:
            width = min(range(1, 8 * recipe.width + 1), key=lambda w, s=slug, k=kwargs: (
                abs(recipe.parameters(s, width=w, **k) - target), w))
            kwargs = {**kwargs, "width": width}
        out[row] = (slug, kwargs)
    return out


def budget_text(models: dict[str, tuple[str, dict]], recipe: RestorationProxy) -> str:
    """"row (W = …) n" parameters of each model, as trained."""
    return ", ".join(f"{row} (W = {kwargs.get('width', recipe.width)}) {recipe.parameters(slug, **kwargs):,}"
                     for row, (slug, kwargs) in models.items())


def _restoration(problem: str, scale: int, crop: int, train: int, test: int, test_size: int):
    kwargs = {"scale": scale} if problem == "sr" else {}
    return (restoration_proxy(problem, "train", train, crop, seed=0, **kwargs),
            restoration_proxy(problem, "test", test, test_size, seed=0, **kwargs))
