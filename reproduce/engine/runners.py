"""The two ways a reproducer trains: a recipe's models over seeds (``seed_runs`` of ``train``: proxies, worker
processes) and one model on a user's real dataset (``train_real``: resumable checkpoints under ``--runs``)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from acda.train import TrainConfig, fit

from . import base

__all__ = ["train", "seed_runs", "train_real", "run_dir", "smoke_subset"]


def train(recipe: Any, slug: str, kwargs: dict, seed: int, device: str = "cpu",
          keep_state: bool = False) -> dict | tuple[dict, dict]:
    """Train ``recipe.build(slug, **kwargs)`` on ``recipe.datasets()`` with ``seed``; the last epoch's metrics
    (and, with ``keep_state``, the model's state dict on the CPU). One CPU thread, so the numbers do not depend
    on how many runs share the machine."""
    train_set, test_set = recipe.datasets()
    with base.threads(1):
        torch.manual_seed(seed)
        model = recipe.build(slug, **kwargs)
        metrics = fit(recipe.trainable(model), train_set, test_set, recipe.train_config(seed, device),
                      task=recipe.task())
    if not keep_state:
        return metrics
    return metrics, {k: v.detach().cpu() for k, v in model.state_dict().items()}


def seed_runs(recipe: Any, models: Mapping[str, tuple[str, dict]], *, jobs: int, device: str = "cpu",
              keep_state: tuple[str, ...] = (), desc: str = "proxy runs",
              log: Callable[[str], None] = print) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """Train every model of ``models`` (row → (registered model, kwargs)) with seeds 0 … ``recipe.seeds`` − 1
    (``train``), in ``jobs`` worker processes on the CPU. Returns {row: [metrics per seed]}
    and the seed-0 state dicts of the rows in ``keep_state``."""
    tasks = [(row, (recipe, slug, kwargs, seed, device, seed == 0 and row in keep_state))
             for row, (slug, kwargs) in models.items() for seed in range(recipe.seeds)]
    done = base.run_jobs(train, [t for _, t in tasks], jobs if device == "cpu" else 1, desc=desc)
    runs: dict[str, list[dict]] = {row: [] for row in models}
    states: dict[str, dict] = {}
    for (row, task), out in zip(tasks, done, strict=True):
        metrics, state = out if task[-1] else (out, None)
        if state is not None:
            states[row] = state
        runs[row].append(metrics)
        log(f"{desc}: {row} seed {task[3]}: " + ", ".join(
            f"{k[4:]} {v:.4g}" for k, v in metrics.items() if k.startswith("val_") and isinstance(v, float)))
    return runs, states


def run_dir(runs: str | Path, *parts: str, seed: int) -> Path:
    """``<runs>/<parts…>/seed<seed>``: where ``train_real`` keeps one run's checkpoints."""
    return Path(runs, *parts, f"seed{seed}")


def train_real(build: Callable[[], nn.Module], train_set, test_set, config: TrainConfig, where: str | Path, *,
               task: Any = None) -> dict:
    """Seed torch with ``config.seed``, build the model, and ``fit`` it with checkpoints in ``where`` (an
    interrupted run resumes there, also under ``torchrun``); the last epoch's metrics."""
    torch.manual_seed(config.seed)
    return fit(build(), train_set, test_set, replace(config, out_dir=str(where), resume=True), task=task)


def smoke_subset(dataset: Dataset, n: int | None) -> Dataset:
    """``n`` evenly spaced samples of ``dataset`` (``--smoke N``: every class folder or scene has a chance to
    appear); the dataset itself when ``n`` is None or not smaller."""
    if n is None or n >= len(dataset):
        return dataset
    return Subset(dataset, [i * len(dataset) // n for i in range(n)])
