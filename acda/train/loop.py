"""The training loop behind ``acda.train.fit`` and ``acda.train.evaluate`` (see the package docstring)."""
from __future__ import annotations

import atexit
import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from torch.utils.data._utils.collate import default_collate

from ..utils import atomic_write
from .checkpoint import (
    CheckpointError,
    clean_stale_temporaries,
    data_fingerprint,
    history_csv,
    load_checkpoint,
    save_checkpoint,
)
from .config import RECIPE_FIELDS, TrainConfig, config_dict, recipe_default
from .tasks import Classification, Task, task_from_spec

__all__ = ["fit", "evaluate", "distributed_context", "DistContext", "CHECKPOINT", "METRICS_LOG", "BEST"]

CHECKPOINT, METRICS_LOG, BEST = "checkpoint.pt", "metrics.csv", "best.pt"
TRAINING_KEYS = ("format", "epoch", "model", "optimizer", "scheduler", "scaler", "rng", "history", "config")


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


# --------------------------------------------------------------------------- data

def _collate(batch):
    """``default_collate`` with a hint when samples of different sizes cannot be stacked."""
    try:
        return default_collate(batch)
    except RuntimeError as e:
        if "equal size" not in str(e):
            raise
        raise RuntimeError(f"{e}\n(samples of different sizes cannot form a batch: use eval_batch_size=1 "
                           "for validation images of varying size)") from None


def _val_loader(val_set: Dataset, config: TrainConfig, ctx: DistContext) -> DataLoader:
    share = Subset(val_set, range(ctx.rank, len(val_set), ctx.world_size))  # unpadded: each sample once
    return DataLoader(share, batch_size=config.eval_batch_size, shuffle=False, num_workers=config.num_workers,
                      pin_memory=ctx.device.type == "cuda", worker_init_fn=_seed_worker, collate_fn=_collate)


def _to(x, device: torch.device):
    return x.to(device, non_blocking=True)


# --------------------------------------------------------------------------- optimizer

def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on biases and norms
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


# --------------------------------------------------------------------------- evaluation

def _evaluate(model: nn.Module, loader: DataLoader, task: Task, config: TrainConfig, ctx: DistContext,
              amp_dtype: torch.dtype, total: int) -> dict:
    """Validation row. Per-sample values go to a (total, columns) table at each sample's global index
    (process r holds samples r, r + world, ...), all-reduced (one non-zero term per entry: exact) and
    summed in index order, so the sums do not depend on the number of processes."""
    model.eval()
    table = torch.zeros(total, len(task.eval_columns), dtype=torch.float64)
    loss_n = torch.zeros(2, dtype=torch.float64)  # loss sum, samples
    pos = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = _to(x, ctx.device), _to(y, ctx.device)
            with torch.autocast(ctx.device.type, dtype=amp_dtype, enabled=config.amp):
                out = model(x)
            loss = task.loss(out, y)
            b = y.shape[0]
            if not torch.isfinite(loss):
                _non_finite_validation(loss, x, pos, b, ctx, model)
            index = torch.arange(pos, pos + b) * ctx.world_size + ctx.rank
            table[index] = task.eval_values(out, y).to("cpu", torch.float64)
            loss_n += torch.tensor([loss.item() * b, b], dtype=torch.float64)
            pos += b
    table, loss_n = _all_sum(table, ctx), _all_sum(loss_n, ctx)
    n = loss_n[1].item()
    row = {"val_loss": loss_n[0].item() / n}
    row.update(task.eval_row(table.sum(dim=0).tolist(), n))
    row["val_samples"] = int(n)
    return row


def _non_finite_validation(loss: torch.Tensor, x: torch.Tensor, pos: int, b: int, ctx: DistContext,
                           model: nn.Module) -> None:
    """Refuse a non-finite validation loss (its metrics, and the choice of best.pt, would be NaN), saying where
    and, for a network trained for few steps, the likely causes."""
    samples = [(pos + i) * ctx.world_size + ctx.rank for i in range(b)]
    bad = [s for s, row in zip(samples, x.reshape(b, -1), strict=True) if not torch.isfinite(row).all()]
    where = (f"validation samples {bad[:10]} contain NaN or inf" if bad else
             f"the validation inputs (samples {samples[0]}..{samples[-1]}) are finite but the model's outputs are not")
    seen = [int(m.num_batches_tracked) for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.num_batches_tracked is not None]
    if not bad and seen and min(seen) < 100:
        where += (f". It has trained for only {min(seen)} step(s): its BatchNorm running statistics may not yet "
                  "describe its activations, or a step at a learning rate meant for a larger batch moved its "
                  "weights too far; a network that is not scale-invariant (ACDA with the paper's generator is "
                  "quadratic in its input) amplifies either without bound. Scale the learning rate with the batch "
                  "(linear scaling) or train more steps before evaluating")
    raise RuntimeError(f"non-finite validation loss {loss.item()}: {where}")


def _resolve_task(task: Task | None, config: TrainConfig) -> Task:
    if task is None:
        task = Classification()
    if not isinstance(task, Task):
        raise TypeError(f"task must be an acda.train.Task (Classification, DensityCounting, Restoration), "
                        f"got {type(task).__name__}")
    return task.resolve(config)


def evaluate(model: nn.Module, dataset: Dataset, config: TrainConfig | None = None, *,
             task: Task | None = None) -> dict:
    """The ``val_*`` metrics of ``model`` on ``dataset`` as ``fit`` computes them each epoch.

    Uses ``config``'s ``eval_batch_size``, ``num_workers``, ``device`` and ``amp`` (default:
    ``TrainConfig()``); under ``torchrun`` every process evaluates its strided share and all
    return the same sums. Leaves the model in the train/eval mode it was in.
    """
    config = TrainConfig(progress=False) if config is None else config
    task = _resolve_task(task, config)
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    ctx = distributed_context(config.device)
    model.to(ctx.device)
    amp_dtype = torch.float16 if ctx.device.type == "cuda" else torch.bfloat16
    was_training = model.training
    try:
        return _evaluate(model, _val_loader(dataset, config, ctx), task, config, ctx, amp_dtype, len(dataset))
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- resume checks

def _check_resume(ckpt: dict, config: TrainConfig, task: Task, data: dict, path: Path) -> None:
    saved = ckpt["config"]
    now = config_dict(config)
    for name in RECIPE_FIELDS:
        before = saved.get(name, recipe_default(name))  # checkpoints predating a field used its default
        if before != now[name]:
            raise ValueError(f"cannot resume {str(path)!r}: config.{name}={now[name]!r} differs from the "
                             f"checkpoint's {before!r}")
    spec = ckpt.get("task", {"name": "classification", "topk": list(config.topk),
                             "label_smoothing": config.label_smoothing})
    if spec != task.spec() and not _same_task(spec, task):
        raise ValueError(f"cannot resume {str(path)!r}: task {task.spec()!r} differs from the checkpoint's {spec!r}")
    saved_data = ckpt.get("data")
    if saved_data is None:
        warnings.warn(f"{str(path)!r} records no data fingerprint: cannot check that the training set is the same",
                      stacklevel=4)
    else:
        for split in ("train", "val"):
            a, b = saved_data.get(split), data[split]
            if (a is None) != (b is None) or (a is not None and a["sha256"] != b["sha256"]):
                describe = lambda f: "none" if f is None else f"{f['len']} samples, {f['covers']} {f['sha256'][:12]}"  # noqa: E731
                msg = (f"cannot resume {str(path)!r}: the {split} set ({describe(b)}) differs from the checkpoint's "
                       f"({describe(a)})")
                if split == "train":
                    raise ValueError(msg)
                warnings.warn(msg.replace("cannot resume", "resuming") + ": the metrics history mixes two "
                              "validation sets", stacklevel=4)
    threads = ckpt.get("threads")
    if threads is not None and threads != torch.get_num_threads():
        warnings.warn(f"resuming {str(path)!r} with {torch.get_num_threads()} torch threads, the checkpoint was "
                      f"written with {threads}: the result will not be bit-identical to an uninterrupted run",
                      stacklevel=4)


# --------------------------------------------------------------------------- fit

def fit(model: nn.Module, train_set: Dataset, val_set: Dataset | None, config: TrainConfig, *,
        task: Task | None = None, on_epoch_end: Callable[[int, dict], bool | None] | None = None) -> dict:
    """Train ``model`` on ``train_set``; return the last epoch's metrics (see the package docstring).

    ``task``: what to optimise and measure (default ``Classification()``, which takes ``topk`` and
    ``label_smoothing`` from ``config``). Seeds the python, numpy and torch RNGs with ``config.seed +
    rank`` at the start (the model's initialisation is the caller's: seed before building it).

    ``on_epoch_end(epoch, row)`` is called after each epoch's files are written (rank 0 and others
    alike). Returning ``True`` stops training after that epoch (under ``torchrun``: if any process's
    hook says so); an exception it raises stops training there, as a crash would.
    """
    run = _prepare(model, train_set, val_set, config, task)
    start, history, best = _resume(run)
    for epoch in range(start, config.epochs):
        t0 = time.perf_counter()
        row = _train_one_epoch(run, epoch)
        if run.val_loader is not None:
            row.update(_evaluate(run.core, run.val_loader, run.task, config, run.ctx, run.amp_dtype, len(val_set)))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        improved = run.val_loader is not None and run.task.better(row[run.task.best_metric],
                                                                  None if best is None else best["value"])
        if improved:
            best = {"metric": run.task.best_metric, "value": row[run.task.best_metric], "epoch": epoch + 1,
                    "higher_is_better": run.task.higher_is_better}
        if _end_of_epoch(run, history, best, improved, on_epoch_end):
            break
    return {k: v for k, v in history[-1].items() if k != "seconds"}


@dataclass
class _Run:
    """What one ``fit`` call trains with: the model (``core``; ``model`` is its DDP wrapper under torchrun), the
    data, the optimizer state and where it writes."""

    model: nn.Module
    core: nn.Module
    task: Task
    config: TrainConfig
    ctx: DistContext
    amp_dtype: torch.dtype
    out_dir: Path | None
    data: dict | None
    loader_gen: torch.Generator
    sampler: DistributedSampler
    train_loader: DataLoader
    val_loader: DataLoader | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler


def _prepare(model: nn.Module, train_set: Dataset, val_set: Dataset | None, config: TrainConfig,
             task: Task | None) -> _Run:
    """Check the arguments, set up the process group, the output folder, the RNGs, the loaders and the optimizer."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    task = _resolve_task(task, config)
    if len(train_set) == 0:
        raise ValueError("train_set is empty")
    if val_set is not None and len(val_set) == 0:
        raise ValueError("val_set is empty (pass None for no validation)")
    ctx = distributed_context(config.device)
    if config.batch_size % ctx.world_size:
        raise ValueError(f"batch_size={config.batch_size} (global) must be divisible by the number of "
                         f"processes ({ctx.world_size})")
    out_dir = Path(config.out_dir) if config.out_dir is not None else None
    data = _prepare_out_dir(out_dir, ctx, train_set, val_set) if out_dir is not None else None

    _seed_all(config.seed + ctx.rank)
    loader_gen = torch.Generator().manual_seed(config.seed + 7919 * ctx.rank)
    sampler = DistributedSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=config.seed, drop_last=config.drop_last)
    train_loader = DataLoader(train_set, batch_size=config.batch_size // ctx.world_size, sampler=sampler,
                              num_workers=config.num_workers, generator=loader_gen,
                              pin_memory=ctx.device.type == "cuda", worker_init_fn=_seed_worker,
                              drop_last=config.drop_last)
    val_loader = _val_loader(val_set, config, ctx) if val_set is not None else None
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError(f"no training steps: {len(train_set)} samples, batch_size={config.batch_size}, drop_last=True")

    model.to(ctx.device)
    core = model
    if ctx.distributed:
        model = DistributedDataParallel(core, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    optimizer = _optimizer(config, core)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: config.lr_factor(s, steps_per_epoch))
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=config.amp and ctx.device.type == "cuda")
    amp_dtype = torch.float16 if ctx.device.type == "cuda" else torch.bfloat16
    return _Run(model, core, task, config, ctx, amp_dtype, out_dir, data, loader_gen, sampler, train_loader,
                val_loader, optimizer, scheduler, scaler)


def _prepare_out_dir(out_dir: Path, ctx: DistContext, train_set: Dataset, val_set: Dataset | None) -> dict:
    """Refuse non-file entries where fit writes, remove temporaries an interrupted write left; the data fingerprint."""
    for name in (CHECKPOINT, BEST, METRICS_LOG):
        path = out_dir / name
        if path.exists() and not path.is_file():
            if name == METRICS_LOG:
                raise ValueError(f"{str(path)!r} exists and is not a regular file (fit writes its metrics log there)")
            raise CheckpointError(path, "exists and is not a regular file (fit writes this checkpoint)")
    if ctx.is_main:
        for p in clean_stale_temporaries(out_dir, (CHECKPOINT, METRICS_LOG, BEST)):
            warnings.warn(f"removed {str(p)!r}, left by a write that was interrupted", stacklevel=4)
    return {"train": data_fingerprint(train_set), "val": data_fingerprint(val_set)}


def _same_task(spec: dict, task: Task) -> bool:
    """Whether a checkpoint's task ``spec`` describes ``task`` (fields it predates at their defaults)."""
    try:
        return task_from_spec(spec) == task
    except (ValueError, TypeError):
        return False


def _resume(run: _Run) -> tuple[int, list, dict | None]:
    """(first epoch, history, best) from ``checkpoint.pt`` when ``config.resume`` and it exists, else (0, [], None)."""
    config, ctx = run.config, run.ctx
    ckpt_path = run.out_dir / CHECKPOINT if run.out_dir is not None else None
    if not (config.resume and ckpt_path.is_file()):
        return 0, [], None
    ckpt = load_checkpoint(ckpt_path, required=TRAINING_KEYS)
    _check_resume(ckpt, config, run.task, run.data, ckpt_path)
    run.core.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    start, history, best = ckpt["epoch"], list(ckpt["history"]), ckpt.get("best")
    if type(start) is not int or start < 1 or len(history) != start:
        raise CheckpointError(ckpt_path, f"records epoch {start!r} and {len(history)} epochs of history: a training "
                              "checkpoint is written after epoch e >= 1 with e rows of history")
    if start > config.epochs:
        raise ValueError(f"config.epochs={config.epochs} but {str(ckpt_path)!r} is already at epoch {start}")
    if len(ckpt["rng"]) == ctx.world_size:
        _set_rng_state(ckpt["rng"][ctx.rank], run.loader_gen)
    else:
        warnings.warn(f"checkpoint was written by {len(ckpt['rng'])} processes, resuming with "
                      f"{ctx.world_size}: RNG streams are reseeded, so the run is not bit-exact", stacklevel=3)
        _seed_all(config.seed + ctx.rank + 1_000_003 * start)
    if ctx.is_main and history:  # the checkpoint's history is the truth: restore a lost or cut log
        atomic_write(run.out_dir / METRICS_LOG, history_csv(history))
    return start, history, best


def _train_one_epoch(run: _Run, epoch: int) -> dict:
    """One pass over the training set; the epoch's row (epoch, lr, train loss and the task's train metrics)."""
    config, ctx, task = run.config, run.ctx, run.task
    run.sampler.set_epoch(epoch)
    run.model.train()
    sums = None  # loss sum, the task's train sums, samples
    bar = None
    if config.progress and ctx.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(run.train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
    for x, y in bar if bar is not None else run.train_loader:
        loss, batch_sums = _train_step(run, x, y, epoch)
        sums = batch_sums if sums is None else sums + batch_sums
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
    sums = _all_sum(sums, ctx)
    n = sums[-1].item()
    row = {"epoch": epoch + 1, "lr": run.optimizer.param_groups[0]["lr"], "train_loss": sums[0].item() / n}
    row.update(task.train_row(sums[1:-1].tolist(), n))
    return row


def _train_step(run: _Run, x, y, epoch: int) -> tuple[float, torch.Tensor]:
    """One optimizer step on a batch; (its loss, its float64 sums: loss·b, the task's train sums, b)."""
    config, ctx, task = run.config, run.ctx, run.task
    x, y = _to(x, ctx.device), _to(y, ctx.device)
    with torch.autocast(ctx.device.type, dtype=run.amp_dtype, enabled=config.amp):
        out = run.model(x)
        loss = task.loss(out, y)
    if not torch.isfinite(loss):
        raise RuntimeError(f"non-finite training loss {loss.item()} at epoch {epoch + 1}")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if config.grad_clip is not None:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.core.parameters(), config.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    with torch.no_grad():
        extra = task.train_sums(out, y)
    b = y.shape[0]
    return loss.item(), torch.tensor([loss.item() * b, *extra, b], dtype=torch.float64)


def _end_of_epoch(run: _Run, history: list, best: dict | None, improved: bool,
                  on_epoch_end: Callable[[int, dict], bool | None] | None) -> bool:
    """Write the epoch's files (rank 0), call the hook; whether to stop (any process's hook says so)."""
    ctx, row = run.ctx, history[-1]
    if run.out_dir is not None:
        rng = _rng_state(run.loader_gen)
        if ctx.distributed:
            rng_all: list = [None] * ctx.world_size
            dist.all_gather_object(rng_all, rng)
        else:
            rng_all = [rng]
        if ctx.is_main:
            _write_epoch(run, rng_all, history, best, improved)
    if ctx.distributed:
        dist.barrier()
    stop = bool(on_epoch_end(row["epoch"], row)) if on_epoch_end is not None else False
    if ctx.distributed and on_epoch_end is not None:
        flag = torch.tensor([float(stop)], device=ctx.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        stop = bool(flag.item())
    return stop


def _write_epoch(run: _Run, rng_all: list, history: list, best: dict | None, improved: bool) -> None:
    """best.pt (if improved), then checkpoint.pt, then metrics.csv, each atomically. A kill between
    two writes leaves files that a resume reconciles: best.pt ahead of the checkpoint is rewritten
    when that epoch is trained again, metrics.csv is rewritten from the checkpoint's history."""
    out_dir, config, task = run.out_dir, run.config, run.task
    row = history[-1]
    model_state = run.core.state_dict()
    if improved:
        save_checkpoint({"kind": "best", "epoch": row["epoch"], "model": model_state, "metrics": row, "best": best,
                         "config": config_dict(config), "task": task.spec()}, out_dir / BEST)
    elif best is None:
        (out_dir / BEST).unlink(missing_ok=True)  # a previous run's best.pt: not this run's
    save_checkpoint({"kind": "training", "epoch": row["epoch"], "model": model_state,
                     "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                     "scaler": run.scaler.state_dict(), "rng": rng_all, "history": history,
                     "config": config_dict(config), "world_size": run.ctx.world_size, "task": task.spec(),
                     "best": best, "data": run.data,
                     "threads": torch.get_num_threads()}, out_dir / CHECKPOINT)
    atomic_write(out_dir / METRICS_LOG, history_csv(history))
