"""Task objects: what ``fit`` optimises and measures (classification, density counting, restoration).

A task defines

- ``loss(output, target)``: the scalar training loss (mean over the batch);
- ``train_sums(output, target)``: sums over a training batch of the task's running training metric
  (e.g. the number of top-1 hits), turned into ``train_*`` columns by ``train_row``;
- ``eval_values(output, target)``: one row of float64 values per *validation sample*
  (``eval_columns``), which the trainer places at the sample's global index, all-reduces and sums
  in index order, so the sums are the same for any number of processes; ``eval_row`` turns the
  column sums into the ``val_*`` columns;
- ``best_metric`` and ``higher_is_better``: which ``val_*`` column picks ``best.pt``;
- ``spec()``: plain-type description stored in the checkpoint; resuming with a different one is
  refused.

The trainer adds ``train_loss``, ``val_loss`` (mean of the per-batch mean loss, weighted by batch
size) and ``val_samples`` itself. Targets are tensors whose first dimension is the batch.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass, replace
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..metrics import (
    RGB_SSIM,
    Y_CONVENTIONS,
    blockwise_psnr_ssim,
    count_errors,
    psnr_per_image,
    psnr_y,
    ssim_per_image,
    ssim_y,
    topk_correct,
    topk_hits,
)
from ..utils import check_choice, check_number

__all__ = ["Task", "Classification", "DensityCounting", "Restoration", "task_from_spec"]

_CRITERIA = {"mse": F.mse_loss, "l1": F.l1_loss}
_SPACES = ("rgb", "y", "rgb8")
_CONVENTIONS = {"y": Y_CONVENTIONS, "rgb8": RGB_SSIM}  # the first: the default


class Task(ABC):
    """Base class of the trainer's tasks (see the module docstring)."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool] = False

    def resolve(self, config) -> Task:
        """This task with unset options taken from ``config`` (``Classification``: topk, label smoothing)."""
        if config.label_smoothing:
            raise ValueError(f"label_smoothing={config.label_smoothing} applies to classification only, "
                             f"not to the {self.name} task")
        return self

    def spec(self) -> dict:
        """Plain-type description (name and dataclass fields) recorded in checkpoints."""
        d = {"name": self.name}
        for k, v in (asdict(self) if is_dataclass(self) else {}).items():
            d[k] = list(v) if isinstance(v, tuple) else v
        return d

    @property
    @abstractmethod
    def best_metric(self) -> str:
        """The ``val_*`` column that picks ``best.pt``."""

    @property
    @abstractmethod
    def eval_columns(self) -> tuple[str, ...]:
        """Names of ``eval_values``' columns (per-sample values summed over the validation set)."""

    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ...

    def train_sums(self, output: torch.Tensor, target: torch.Tensor) -> list[float]:
        return []

    def train_row(self, sums: Sequence[float], n: float) -> dict:
        return {}

    @abstractmethod
    def eval_values(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ...

    @abstractmethod
    def eval_row(self, sums: Sequence[float], n: float) -> dict:
        ...

    def better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` of ``best_metric`` improves on ``best`` (NaN never does)."""
        if math.isnan(value):
            return False
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


@dataclass(frozen=True)
class Classification(Task):
    """Cross-entropy (with label smoothing) on logits (N, classes); top-k errors in percent.

    Columns: ``train_top1_err``, ``val_top{k}_err`` for k in ``topk``. Best: the first top-k error
    (top-1 by default), lower is better. ``topk``/``label_smoothing`` left ``None`` come from the config.
    """

    topk: tuple[int, ...] | None = None
    label_smoothing: float | None = None
    name: ClassVar[str] = "classification"

    def __post_init__(self) -> None:
        if self.topk is not None:
            object.__setattr__(self, "topk", tuple(self.topk))
            if not self.topk or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.topk):
                raise ValueError(f"topk must be positive ints, got {self.topk!r}")
        if self.label_smoothing is not None and not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")

    def resolve(self, config) -> Classification:
        return replace(self, topk=config.topk if self.topk is None else self.topk,
                       label_smoothing=config.label_smoothing if self.label_smoothing is None else self.label_smoothing)

    @property
    def best_metric(self) -> str:
        return f"val_top{self._ks[0]}_err"

    @property
    def _ks(self) -> tuple[int, ...]:
        if self.topk is None:
            raise RuntimeError("Classification task not resolved against a TrainConfig")
        return self.topk

    @property
    def eval_columns(self) -> tuple[str, ...]:
        return tuple(f"top{k}_correct" for k in self._ks)

    def loss(self, output, target):
        return F.cross_entropy(output.float(), target, label_smoothing=self.label_smoothing or 0.0)

    def train_sums(self, output, target):
        return [topk_correct(output.float(), target, (1,))[1]]

    def train_row(self, sums, n):
        return {"train_top1_err": 100.0 * (1.0 - sums[0] / n)}

    def eval_values(self, output, target):
        return topk_hits(output.float(), target, self._ks).double()

    def eval_row(self, sums, n):
        return {f"val_top{k}_err": 100.0 * (1.0 - sums[i] / n) for i, k in enumerate(self._ks)}


@dataclass(frozen=True)
class DensityCounting(Task):
    """Density-map regression: the model outputs (N, 1, H, W) density maps of the target's shape,
    trained with a pixel-wise ``criterion`` ("mse" or "l1", mean over pixels and images); the count is
    a map's sum (``acda.metrics.count_errors``).

    ``density_scale`` k: the model learns k × the density map (the loss compares the output with k ×
    the target; counts divide the output's sum by k). Fixed-kernel density maps have tiny values
    (a σ = 4 px Gaussian peaks at 1/(32π) ≈ 0.01), so the mean-over-pixels loss and its gradients
    are tiny too, and Adam's ε (1e-8) then damps every update; k ≈ 100 brings them to order 1.

    Columns: ``train_mae``; ``val_mae`` (mean |count error|) and ``val_rmse`` (sqrt of the mean
    squared count error, the crowd-counting papers' "MSE"). Best: ``val_mae``, lower is better.
    """

    criterion: str = "mse"
    density_scale: float = 1.0
    name: ClassVar[str] = "counting"

    def __post_init__(self) -> None:
        check_choice("criterion", self.criterion, sorted(_CRITERIA))
        check_number("density_scale", self.density_scale, positive=True)

    best_metric = "val_mae"  # type: ignore[assignment]
    eval_columns = ("abs_count_error", "sq_count_error")  # type: ignore[assignment]

    def loss(self, output, target):
        return _CRITERIA[self.criterion](output.float(), self.density_scale * target.float())

    def _counts_of(self, output: torch.Tensor) -> torch.Tensor:
        return output.float() / self.density_scale if self.density_scale != 1 else output.float()

    def train_sums(self, output, target):
        return [count_errors(self._counts_of(output), target).abs().sum().item()]

    def train_row(self, sums, n):
        return {"train_mae": sums[0] / n}

    def eval_values(self, output, target):
        e = count_errors(self._counts_of(output), target)
        return torch.stack([e.abs(), e * e], dim=1)

    def eval_row(self, sums, n):
        return {"val_mae": sums[0] / n, "val_rmse": math.sqrt(sums[1] / n)}


@dataclass(frozen=True)
class Restoration(Task):
    """Image-to-image restoration (super-resolution at the HR size, denoising, ...): the model outputs
    images of the target's shape in [0, ``data_range``], trained with ``criterion`` ("l1" or "mse").

    Metrics per image, on the output clamped to [0, ``data_range``] (``clamp``), in one of three
    spaces (``space``):

    - ``"rgb"``: over all channels as they are (``acda.metrics.psnr_per_image``, ``ssim_per_image``;
      images at least 11×11 for SSIM);
    - ``"y"``: the restoration papers' convention (Table 4): RGB in [0, 1] rounded to 8 bits,
      BT.601 Y under ``convention`` ("basicsr": unrounded; "realsr": rounded), ``shave`` pixels off
      each border, data range 255 (``acda.metrics.psnr_y``, ``ssim_y``; needs ``data_range`` 1 and 3
      channels); ``secondary`` = (convention, shave) scores a second convention beside it;
    - ``"rgb8"``: SIDD's convention (Table 5): sRGB rounded to 8 bits, all three channels, data range
      255 (``acda.metrics.blockwise_psnr_ssim`` with each image one block), SSIM under ``convention``
      ("per_channel" or "matlab": MATLAB's ``ssim`` of the H×W×3 array).

    Columns: ``train_psnr``; ``val_psnr`` and, with ``ssim``, ``val_ssim`` (means over images), and with
    ``secondary`` also ``val_psnr_<convention>`` (and ``val_ssim_<convention>``). Best: ``val_psnr``,
    higher is better.
    """

    criterion: str = "l1"
    data_range: float = 1.0
    ssim: bool = True
    clamp: bool = True
    space: str = "rgb"
    shave: int = 0
    convention: str | None = None  # None: the space's default ("basicsr" for y, "per_channel" for rgb8)
    secondary: tuple[str, int] | None = None
    name: ClassVar[str] = "restoration"
    higher_is_better: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice("criterion", self.criterion, sorted(_CRITERIA))
        if not self.data_range > 0:
            raise ValueError(f"data_range must be positive, got {self.data_range!r}")
        check_choice("space", self.space, _SPACES)
        if isinstance(self.shave, bool) or not isinstance(self.shave, int) or self.shave < 0:
            raise ValueError(f"shave must be a non-negative int, got {self.shave!r}")
        if self.space != "rgb" and self.data_range != 1.0:
            raise ValueError(f"space={self.space!r} scores RGB images in [0, 1]: data_range must be 1.0, "
                             f"got {self.data_range!r}")
        if self.shave and self.space != "y":
            raise ValueError(f"shave applies to space='y' only, got shave={self.shave} with space={self.space!r}")
        conventions = _CONVENTIONS.get(self.space, ())
        if not conventions:
            if self.convention is not None or self.secondary is not None:
                raise ValueError(f"space={self.space!r} has no scoring conventions; got convention="
                                 f"{self.convention!r}, secondary={self.secondary!r}")
            return
        object.__setattr__(self, "convention", self.convention or conventions[0])
        check_choice("convention", self.convention, conventions)
        if self.secondary is not None:
            if len(self.secondary) != 2:
                raise ValueError(f"secondary must be (convention, shave), got {self.secondary!r}")
            check_choice("secondary convention", self.secondary[0], conventions)
            object.__setattr__(self, "secondary", (self.secondary[0], int(self.secondary[1])))

    best_metric = "val_psnr"  # type: ignore[assignment]

    @property
    def eval_columns(self) -> tuple[str, ...]:
        columns = ("psnr", "ssim") if self.ssim else ("psnr",)
        if self.secondary is None:
            return columns
        return columns + tuple(f"{c}_{self.secondary[0]}" for c in columns)

    def _out(self, output: torch.Tensor) -> torch.Tensor:
        output = output.detach().float()
        return output.clamp(0.0, self.data_range) if self.clamp else output

    def _scores(self, output: torch.Tensor, target: torch.Tensor, ssim: bool) -> list[torch.Tensor]:
        out, target = self._out(output), target.detach()
        if self.space == "y":
            scores = [psnr_y(out, target, self.shave, self.convention)] + (
                [ssim_y(out, target, self.shave, self.convention)] if ssim else [])
            if self.secondary is not None:
                convention, shave = self.secondary
                scores += [psnr_y(out, target, shave, convention)] + (
                    [ssim_y(out, target, shave, convention)] if ssim else [])
            return scores
        if self.space == "rgb8":
            scores = []
            for convention in (self.convention,) + ((self.secondary[0],) if self.secondary else ()):
                blocks = blockwise_psnr_ssim(out, target, ssim=convention)
                scores += [blocks["psnr_per_block"]] + ([blocks["ssim_per_block"]] if ssim else [])
            return scores
        return ([psnr_per_image(out, target, self.data_range)]
                + ([ssim_per_image(out, target, self.data_range)] if ssim else []))

    def loss(self, output, target):
        return _CRITERIA[self.criterion](output.float(), target.float())

    def train_sums(self, output, target):
        return [self._scores(output, target, ssim=False)[0].sum().item()]

    def train_row(self, sums, n):
        return {"train_psnr": sums[0] / n}

    def eval_values(self, output, target):
        return torch.stack(self._scores(output, target, ssim=self.ssim), dim=1)

    def eval_row(self, sums, n):
        return {f"val_{column}": total / n for column, total in zip(self.eval_columns, sums, strict=True)}


TASKS = {cls.name: cls for cls in (Classification, DensityCounting, Restoration)}


def task_from_spec(spec: dict) -> Task:
    """The task a checkpoint's ``task`` entry describes (built-in tasks only)."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (built-in: {sorted(TASKS)})")
    return TASKS[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
