"""One seeded training run of a recipe's model (``train``), the unit every proxy repeats over seeds."""
from __future__ import annotations

from typing import Any

import torch

from acda.train import fit

from ..base import threads

__all__ = ["train"]


def train(recipe: Any, slug: str, kwargs: dict, seed: int, device: str = "cpu",
          keep_state: bool = False) -> dict | tuple[dict, dict]:
    """Train ``recipe.build(slug, **kwargs)`` on ``recipe.datasets()`` with ``seed``; the last epoch's metrics
    (and, with ``keep_state``, the model's state dict on the CPU). One CPU thread, so the numbers do not depend
    on how many runs share the machine."""
    train_set, test_set = recipe.datasets()
    with threads(1):
        torch.manual_seed(seed)
        model = recipe.build(slug, **kwargs)
        metrics = fit(recipe.trainable(model), train_set, test_set, recipe.train_config(seed, device),
                      task=recipe.task())
    if not keep_state:
        return metrics
    return metrics, {k: v.detach().cpu() for k, v in model.state_dict().items()}
