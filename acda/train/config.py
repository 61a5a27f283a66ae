"""``TrainConfig``: the training recipe (optimizer, schedule, batch, seed) and where to write."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..utils import check_choice, check_int, check_number, check_positive_int

__all__ = ["TrainConfig", "SCHEDULES", "OPTIMIZERS", "RECIPE_FIELDS", "config_dict"]

SCHEDULES = ("cosine", "step", "constant")
OPTIMIZERS = ("sgd", "adam", "adamw")
# Fields that must not change when a run is resumed (``epochs`` may grow: the run is extended).
RECIPE_FIELDS = ("optimizer", "lr", "momentum", "betas", "weight_decay", "nesterov", "schedule", "milestones",
                 "gamma", "warmup_epochs", "label_smoothing", "grad_clip", "amp", "batch_size", "seed", "drop_last")


def _check_number(name: str, value: object, *, below_one: bool = False) -> None:
    check_number(name, value, minimum=0, below=1 if below_one else None)


@dataclass
class TrainConfig:
    """Training recipe. ``batch_size`` is the global batch, split evenly over processes.

    - ``optimizer``: ``"sgd"`` (``momentum``, ``nesterov``), ``"adam"`` (L2 weight decay added to the
      gradient) or ``"adamw"`` (decoupled weight decay), the latter two with ``betas``. Weight decay
      never applies to biases and other 1-D parameters (norm scales).
    - ``schedule``: per-iteration ``"cosine"`` (to 0 at the last step), ``"step"`` (× ``gamma`` at each
      epoch in ``milestones``) or ``"constant"``, after ``warmup_epochs`` of linear warmup.
    - ``label_smoothing`` and ``topk`` are the classification task's (``Classification`` takes them
      when not given its own); other tasks refuse ``label_smoothing`` > 0.
    - ``eval_batch_size``: the validation batch (per process). Use 1 for images of varying size
      (density maps, restoration), which the default collation cannot stack.
    """

    epochs: int = 1
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    optimizer: str = "sgd"
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max global gradient norm (None: no clipping)
    amp: bool = False
    batch_size: int = 128
    eval_batch_size: int = 256
    num_workers: int = 0
    seed: int = 0
    drop_last: bool = False
    topk: tuple[int, ...] = (1, 5)
    out_dir: str | None = None
    resume: bool = False
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        self.milestones = tuple(self.milestones)
        self.topk = tuple(self.topk)
        self.betas = tuple(self.betas)
        for name in ("epochs", "batch_size", "eval_batch_size"):
            check_positive_int(name, getattr(self, name))
        check_int("num_workers", self.num_workers, minimum=0)
        check_int("seed", self.seed)
        for name in ("lr", "momentum", "weight_decay", "gamma", "warmup_epochs"):
            _check_number(name, getattr(self, name))
        _check_number("label_smoothing", self.label_smoothing, below_one=True)
        if self.grad_clip is not None and (not isinstance(self.grad_clip, int | float) or not self.grad_clip > 0):
            raise ValueError(f"grad_clip must be None or a positive number, got {self.grad_clip!r}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            _check_number(f"betas[{i}]", beta, below_one=True)
        if self.optimizer != "sgd" and self.nesterov:
            raise ValueError(f"nesterov applies to optimizer='sgd' only, got optimizer={self.optimizer!r}")
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.schedule == "step" and not self.milestones:
            raise ValueError("schedule='step' needs milestones (epochs at which lr is multiplied by gamma)")
        if (any(not isinstance(m, int) or isinstance(m, bool) or m < 1 for m in self.milestones)
                or list(self.milestones) != sorted(self.milestones)):
            raise ValueError(f"milestones must be increasing positive epochs, got {self.milestones!r}")
        if not self.topk or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.topk):
            raise ValueError(f"topk must be positive ints, got {self.topk!r}")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {self.device!r}")
        if self.resume and self.out_dir is None:
            raise ValueError("resume=True needs out_dir (where checkpoint.pt lives)")

    def lr_factor(self, step: int, steps_per_epoch: int) -> float:
        """Learning-rate multiplier at optimizer step ``step`` (0-based), per iteration."""
        epoch = step / steps_per_epoch
        total = self.epochs * steps_per_epoch
        warm = self.warmup_epochs * steps_per_epoch
        if step < warm:
            return (step + 1) / warm
        if self.schedule == "cosine":
            span = max(total - warm, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(step - warm, span) / span))
        if self.schedule == "step":
            return self.gamma ** sum(epoch >= m for m in self.milestones)
        return 1.0


DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


def config_dict(config: TrainConfig) -> dict:
    """The config as plain types (tuples as lists), as stored in checkpoints."""
    d = asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def recipe_default(name: str):
    """The value a checkpoint written before ``name`` existed implicitly used (plain types)."""
    value = DEFAULTS[name]
    return list(value) if isinstance(value, tuple) else value
