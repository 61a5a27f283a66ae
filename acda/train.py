"""The one trainer for every training reproducer (Table 1, Table 2, proxies).

``fit(model, train_set, val_set, config)`` trains a classifier with SGD (momentum, weight decay),
a per-iteration cosine or step schedule with optional linear warmup, optional label smoothing and
AMP (float16 + GradScaler on CUDA, bfloat16 on CPU), optional gradient-norm clipping, no weight decay on biases and other 1-D
parameters, and returns the final epoch's metrics. With ``config.out_dir`` it writes, every epoch and
atomically (temporary file + ``os.replace``):

- ``metrics.csv``: one row per epoch (lr, train loss/error, val loss/top-k error, samples, seconds);
- ``checkpoint.pt``: model, optimizer, scheduler, AMP scaler, every process's RNG states (torch,
  CUDA, numpy, python, the DataLoader's generator), the metrics history and the epoch.

Exact resume: ``config.resume=True`` continues from ``checkpoint.pt`` (a fresh start if there is
none). The data order is a pure function of (seed, epoch) — ``DistributedSampler`` with
``set_epoch``, also for one process — and everything else that is random is restored from the
checkpoint, so on CPU a run killed after epoch e and resumed ends bit-identical to an
uninterrupted one (``tests/test_train.py``). Checkpoints load with ``weights_only=True``.

Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1) the trainer initialises the process
group (NCCL on CUDA, Gloo on CPU), wraps the model in ``DistributedDataParallel`` and splits the
*global* ``batch_size`` evenly over processes. Evaluation gives each process the unpadded strided
share ``val[rank::world]`` and sums correct counts, losses and sample counts with ``all_reduce``, so
every validation sample is counted exactly once (``DistributedSampler`` would pad). Only rank 0
writes files.
"""
from __future__ import annotations

import atexit
import csv
import io
import math
import os
import random
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm.auto import tqdm

from .metrics import topk_correct

__all__ = ["TrainConfig", "fit", "load_checkpoint", "distributed_context", "CHECKPOINT", "METRICS_LOG"]

CHECKPOINT, METRICS_LOG = "checkpoint.pt", "metrics.csv"
SCHEDULES = ("cosine", "step", "constant")
# Fields that must not change when a run is resumed (``epochs`` may grow: the run is extended).
RECIPE_FIELDS = ("lr", "momentum", "weight_decay", "nesterov", "schedule", "milestones", "gamma",
                 "warmup_epochs", "label_smoothing", "grad_clip", "amp", "batch_size", "seed", "drop_last")


@dataclass
class TrainConfig:
    """Training recipe. ``batch_size`` is the global batch, split evenly over processes."""

    epochs: int = 1
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
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
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("lr", "momentum", "weight_decay", "gamma", "warmup_epochs", "label_smoothing"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
        if self.grad_clip is not None and (not isinstance(self.grad_clip, int | float) or not self.grad_clip > 0):
            raise ValueError(f"grad_clip must be None or a positive number, got {self.grad_clip!r}")
        if self.label_smoothing >= 1:
            raise ValueError(f"label_smoothing must be < 1, got {self.label_smoothing!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.schedule == "step" and not self.milestones:
            raise ValueError("schedule='step' needs milestones (epochs at which lr is multiplied by gamma)")
        if any(not isinstance(m, int) or m < 1 for m in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing positive epochs, got {self.milestones!r}")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative int, got {self.num_workers!r}")
        if not self.topk or any(not isinstance(k, int) or k < 1 for k in self.topk):
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


# --------------------------------------------------------------------------- distributed helpers

@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_context(device: str = "auto") -> DistContext:
    """Rank, world size and device; initialises the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    if use_cuda:
        dev = torch.device(f"cuda:{local_rank}") if world > 1 or device in ("auto", "cuda") else torch.device(device)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return DistContext(rank, world, local_rank, dev)


def _all_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.distributed:
        values = values.to(ctx.device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values.cpu()


# --------------------------------------------------------------------------- RNG state (weights_only-safe)

def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(loader_gen: torch.Generator) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, pystate, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(pystate, dtype=torch.int64), "gauss": gauss},
        "loader": loader_gen.get_state(),
    }


def _set_rng_state(state: dict, loader_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    loader_gen.set_state(state["loader"])


def _seed_worker(_: int) -> None:
    seed = torch.initial_seed() % 2**32  # DataLoader seeds torch and python in workers, not numpy
    np.random.seed(seed)


# --------------------------------------------------------------------------- files

def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if isinstance(obj, str):
            Path(tmp).write_text(obj, encoding="utf-8")
        else:
            torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint written by ``fit`` (``torch.load(..., weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    return torch.load(path, map_location=map_location, weights_only=True)


def _config_dict(config: TrainConfig) -> dict:
    d = asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# --------------------------------------------------------------------------- train / evaluate

def _evaluate(model: nn.Module, loader: DataLoader, criterion: nn.Module, config: TrainConfig,
              ctx: DistContext, amp_dtype: torch.dtype) -> dict:
    model.eval()
    ks = config.topk
    sums = torch.zeros(len(ks) + 2, dtype=torch.float64)  # correct@k..., loss sum, samples
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            with torch.autocast(ctx.device.type, dtype=amp_dtype, enabled=config.amp):
                out = model(x)
            loss = criterion(out.float(), y)
            correct = topk_correct(out.float(), y, ks)
            sums += torch.tensor([*(correct[k] for k in ks), loss.item() * len(y), len(y)], dtype=torch.float64)
    sums = _all_sum(sums, ctx)
    n = sums[-1].item()
    row = {"val_loss": sums[-2].item() / n}
    for i, k in enumerate(ks):
        row[f"val_top{k}_err"] = 100.0 * (1.0 - sums[i].item() / n)
    row["val_samples"] = int(n)
    return row


def fit(model: nn.Module, train_set: Dataset, val_set: Dataset | None, config: TrainConfig,
        *, on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
    """Train ``model`` on ``train_set``; return the last epoch's metrics (see module docstring).

    Seeds the python, numpy and torch RNGs with ``config.seed + rank`` at the start (the model's
    initialisation is the caller's: seed before building it).

    ``on_epoch_end(epoch, row)`` is called after each epoch's checkpoint is written (rank 0 and
    others alike); an exception it raises stops training there, as a crash would.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if len(train_set) == 0:
        raise ValueError("train_set is empty")
    ctx = distributed_context(config.device)
    if config.batch_size % ctx.world_size:
        raise ValueError(f"batch_size={config.batch_size} (global) must be divisible by the number of "
                         f"processes ({ctx.world_size})")
    out_dir = Path(config.out_dir) if config.out_dir is not None else None
    amp_dtype = torch.float16 if ctx.device.type == "cuda" else torch.bfloat16

    _seed_all(config.seed + ctx.rank)
    loader_gen = torch.Generator().manual_seed(config.seed + 7919 * ctx.rank)
    sampler = DistributedSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=config.seed, drop_last=config.drop_last)
    pin = ctx.device.type == "cuda"
    train_loader = DataLoader(train_set, batch_size=config.batch_size // ctx.world_size, sampler=sampler,
                              num_workers=config.num_workers, generator=loader_gen, pin_memory=pin,
                              worker_init_fn=_seed_worker, drop_last=config.drop_last)
    val_loader = None
    if val_set is not None:
        share = Subset(val_set, range(ctx.rank, len(val_set), ctx.world_size))  # unpadded: each sample once
        val_loader = DataLoader(share, batch_size=config.eval_batch_size, shuffle=False,
                                num_workers=config.num_workers, pin_memory=pin, worker_init_fn=_seed_worker)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError(f"no training steps: {len(train_set)} samples, batch_size={config.batch_size}, drop_last=True")

    model.to(ctx.device)
    core = model
    if ctx.distributed:
        model = DistributedDataParallel(core, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    decay, no_decay = [], []
    for p in core.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on biases and norms
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: config.lr_factor(s, steps_per_epoch))
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=config.amp and ctx.device.type == "cuda")
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    start, history = 0, []
    ckpt_path = out_dir / CHECKPOINT if out_dir is not None else None
    if config.resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        saved = ckpt["config"]
        for name in RECIPE_FIELDS:
            now = _config_dict(config)[name]
            if saved.get(name) != now:
                raise ValueError(f"cannot resume {str(ckpt_path)!r}: config.{name}={now!r} differs from the "
                                 f"checkpoint's {saved.get(name)!r}")
        core.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start, history = int(ckpt["epoch"]), list(ckpt["history"])
        if start > config.epochs:
            raise ValueError(f"config.epochs={config.epochs} but {str(ckpt_path)!r} is already at epoch {start}")
        if len(ckpt["rng"]) == ctx.world_size:
            _set_rng_state(ckpt["rng"][ctx.rank], loader_gen)
        else:
            warnings.warn(f"checkpoint was written by {len(ckpt['rng'])} processes, resuming with "
                          f"{ctx.world_size}: RNG streams are reseeded, so the run is not bit-exact", stacklevel=2)
            _seed_all(config.seed + ctx.rank + 1_000_003 * start)

    for epoch in range(start, config.epochs):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        model.train()
        sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct@1, samples
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not (config.progress and ctx.is_main))
        for x, y in bar:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            with torch.autocast(ctx.device.type, dtype=amp_dtype, enabled=config.amp):
                out = model(x)
                loss = criterion(out.float(), y)
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite training loss {loss.item()} at epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(core.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            with torch.no_grad():
                top1 = topk_correct(out.float(), y, (1,))[1]
            sums += torch.tensor([loss.item() * len(y), top1, len(y)], dtype=torch.float64)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        sums = _all_sum(sums, ctx)
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
               "train_loss": sums[0].item() / sums[2].item(),
               "train_top1_err": 100.0 * (1.0 - sums[1].item() / sums[2].item())}
        if val_loader is not None:
            row.update(_evaluate(core, val_loader, criterion, config, ctx, amp_dtype))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)

        rng = _rng_state(loader_gen)
        if ctx.distributed:
            gathered: list = [None] * ctx.world_size
            dist.all_gather_object(gathered, rng)
            rng_all = gathered
        else:
            rng_all = [rng]
        if ctx.is_main and out_dir is not None:
            _atomic_save({"format": 1, "epoch": epoch + 1, "model": core.state_dict(),
                          "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                          "scaler": scaler.state_dict(), "rng": rng_all, "history": history,
                          "config": _config_dict(config), "world_size": ctx.world_size}, ckpt_path)
            _atomic_save(_history_csv(history), out_dir / METRICS_LOG)
        if ctx.distributed:
            dist.barrier()
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)

    return {k: v for k, v in history[-1].items() if k != "seconds"}
