"""Classification recipes: Table 1's CIFAR recipe (``Cifar``: the paper prints none) and the real-image proxy
that stands in for CIFAR (Table 1) and ImageNet (A.5): 16/32-pixel patches of scikit-image's photographs."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from torch import nn

from acda.data.proxy import PROXY_IMAGES, texture_proxy
from acda.models import get_model
from acda.train import TrainConfig

from .base import Training, cached_datasets, doc

__all__ = ["Cifar", "ClassificationProxy", "ImageNet", "ACDA_CLASSIFIERS"]

ACDA_CLASSIFIERS = ("lenet_acda",)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cifar(Training):
    """LeNet and LeNet + ACDA on CIFAR. Gradient-norm clipping is part of it: LeNet + ACDA with the paper
    generator (no normalisation of α) diverges without it at this learning rate."""

    PRESETS: ClassVar = {"full": {}, "quick": {"epochs": 5}}
    lr: float = doc("learning rate", 0.05)
    warmup_epochs: float = doc("warmup epochs", 1.0)
    grad_clip: float | None = doc("gradient-norm clip", 1.0)
    epochs: int = doc("epochs", 60)
    generator: str = doc("ACDA atom generator", "paper")

    def model_kwargs(self, slug: str, num_classes: int, image_size: int) -> dict:
        """The arguments of the registered classifier ``slug``."""
        kwargs = {"num_classes": num_classes, "image_size": image_size}
        return {**kwargs, "generator": self.generator} if slug in ACDA_CLASSIFIERS else kwargs


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageNet(Training):
    """Table 2's Ad-ResNets on ImageNet (standard transforms; ``batch_size`` is the global batch)."""

    PRESETS: ClassVar = {"full": {}, "quick": {"epochs": 1}}
    weight_decay: float = doc("weight decay (not on biases/norms)", 1e-4)
    batch_size: int = doc("global batch size", 256)
    epochs: int = doc("epochs", 90)
    label_smoothing: float = doc("label smoothing", 0.0)
    generator: str = doc("ACDA atom generator", "paper")

    def train_config(self, seed: int, device: str = "cpu", **changes) -> TrainConfig:
        return super().train_config(seed, device, **{"label_smoothing": self.label_smoothing, **changes})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassificationProxy(Cifar):
    """Table 1's recipe on the texture proxy (``acda.data.proxy``): a smaller batch, fewer epochs. Quick (CI's):
    10 seeds of 16×16 patches (LeNet's smallest input), each cheap enough for the regression to see a change."""

    PRESETS: ClassVar = {
        "full": {"per_class_train": 100, "per_class_test": 50, "epochs": 15, "batch_size": 32, "seeds": 3,
                 "patch": 32},
        "quick": {"per_class_train": 60, "per_class_test": 100, "epochs": 8, "batch_size": 16, "seeds": 10,
                  "patch": 16},
    }
    per_class_train: int = doc("training patches per class", 100)
    per_class_test: int = doc("test patches per class", 50)
    patch: int = doc("patch side (px)", 32)
    seeds: int = doc("seeds", 3)

    def setting(self) -> str:
        """The ``setting`` column of its rows."""
        return (f"{self.proxy_tag()}: {self.patch}×{self.patch} skimage patches, {len(PROXY_IMAGES)} classes, "
                f"{self.per_class_train}/{self.per_class_test} per class")

    def datasets(self):
        """(train, test) texture proxy, built once per process."""
        return cached_datasets(_texture, self.per_class_train, self.per_class_test, self.patch)

    def build(self, slug: str, **kwargs) -> nn.Module:
        return get_model(slug, **self.model_kwargs(slug, len(PROXY_IMAGES), self.patch), **kwargs)

    def trainable(self, model: nn.Module) -> nn.Module:
        return model

    def task(self) -> None:
        return None  # fit's default: classification


def _texture(per_class_train: int, per_class_test: int, patch: int):
    return texture_proxy(per_class_train, per_class_test, patch=patch)
