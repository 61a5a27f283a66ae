"""Recipes: frozen dataclasses holding everything that determines a training run, one per task family
(``base.Recipe``: ``full()``/``quick()``, ``describe()``, ``fingerprint()`` recorded in every report)."""
from .base import Recipe, Training
from .classification import Cifar, ClassificationProxy, ImageNet
from .crowd import CrowdProxy
from .restoration import RestorationProxy, RestorationReal
from .toymap import ToyMap

__all__ = ["Recipe", "Training", "Cifar", "ClassificationProxy", "ImageNet", "CrowdProxy", "RestorationProxy", "RestorationReal", "ToyMap"]
