"""What every reproducer shares: its command line, devices and threads, publishing, worker processes, plots.

A reproducer module declares its command line and reports (``reproducer.Reproducer``); ``reproducer.run`` calls
``parser``, ``threads`` and ``publish`` from here for every one of them.

Shared options (``OPTIONS``: device, threads, seeds, jobs, quick, data_root, runs, smoke) are added only where the
reproducer names them, with per-reproducer argparse overrides; ``--out`` and ``--allow-dirty`` are on
every reproducer that writes a report. Each option: docs/reproductions.md, section "reproduce.base".
"""
from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from acda.train import distributed_context
from acda.utils import atomic_write

from .report import Result, write_report

__all__ = ["OPTIONS", "Parser", "parser", "recipe_options", "positive_int", "non_negative_int", "positive_float", "non_negative_float", "resolve_device", "training_context", "is_main_process", "threads",
           "usable_cpus", "run_jobs", "preset", "publish", "pyplot", "save_figure"]

def _number(kind: type, text: str, minimum: float, strict: bool):
    """``text`` as a finite ``kind`` above (``strict``) or at least ``minimum``; argparse names the option."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None
    if not math.isfinite(value) or (value <= minimum if strict else value < minimum):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse ``type``: an integer >= 1."""
    return _number(int, text, 1, strict=False)


def non_negative_int(text: str) -> int:
    """argparse ``type``: an integer >= 0."""
    return _number(int, text, 0, strict=False)


def positive_float(text: str) -> float:
    """argparse ``type``: a finite number > 0."""
    return _number(float, text, 0, strict=True)


def non_negative_float(text: str) -> float:
    """argparse ``type``: a finite number >= 0."""
    return _number(float, text, 0, strict=False)


# name → argparse keywords; a reproducer may override any of them
OPTIONS: dict[str, dict[str, Any]] = {
    "device": {"default": "auto", "help": "auto (CUDA when available), cpu, cuda or cuda:i (default: %(default)s)"},
    "threads": {"type": positive_int, "default": None,
                "help": "torch CPU threads (default: torch's; 1 is fastest on a loaded machine and makes CPU "
                        "results reproducible across thread counts)"},
    "seeds": {"type": positive_int, "default": 1, "help": "seeds per model (default: %(default)s)"},
    "jobs": {"type": positive_int, "default": None,
             "help": "worker processes on CPU, one thread each (default: the CPU count); results do not depend "
                     "on it"},
    "quick": {"action": "store_true", "help": "the small configuration CI checks"},
    "data_root": {"default": None, "help": "root folder of the dataset"},
    "runs": {"default": None, "help": "checkpoints of the --data-root training, resumable (default: checkpoints/<table>)"},
    "smoke": {"type": positive_int, "default": None, "metavar": "N",
              "help": "check the whole real-data path in minutes: N evenly spaced training and N test samples, one "
                      "epoch, batches of at most N with the learning rate scaled linearly, checkpoints in <runs>/smoke, the report <table>_smoke in <runs>/smoke unless --out "
                      "(a pipeline check, not a result)"},
}


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that validates the shared options once, after parsing."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        parsed = super().parse_args(args, namespace)
        if getattr(parsed, "device", None) is not None:
            try:
                resolve_device(parsed.device)
            except ValueError as e:
                self.error(str(e))
        if hasattr(parsed, "jobs") and parsed.jobs is None:
            parsed.jobs = usable_cpus()
        seeds = getattr(parsed, "seeds", None)
        if isinstance(seeds, list) and len(set(seeds)) != len(seeds):
            self.error(f"--seeds must be distinct non-negative integers, got {seeds}")
        if getattr(parsed, "smoke", None) is not None:
            self._smoke(parsed)
        if hasattr(parsed, "out") and parsed.out is None:
            parsed.out = "results"
        return parsed

    def _smoke(self, parsed: argparse.Namespace) -> None:
        """``--smoke N``: one epoch, batches of at most N (the learning rate scaled with the batch), no proxy,
        checkpoints (and, by default, the report) in ``<runs>/smoke``, apart from a real run's;
        ``runners.smoke_subset`` takes the N samples."""
        if parsed.data_root is None:
            self.error(f"--smoke {parsed.smoke} checks the real-data path: it needs --data-root")
        if hasattr(parsed, "epochs"):
            parsed.epochs = 1
        if hasattr(parsed, "batch_size"):
            batch = min(parsed.batch_size, parsed.smoke)
            if hasattr(parsed, "lr"):  # linear scaling: the recipe's learning rate is for its batch
                parsed.lr *= batch / parsed.batch_size
            parsed.batch_size = batch
        if hasattr(parsed, "proxy"):
            parsed.proxy = False
        parsed.runs = str(Path(parsed.runs, "smoke"))
        if hasattr(parsed, "out") and parsed.out is None:
            parsed.out = parsed.runs


def parser(doc: str | None, prog: str, options: Iterable[str] | Mapping[str, Mapping[str, Any]] = (), *,
           report: bool = True) -> Parser:
    """The command line of ``python -m reproduce.<prog>`` (``prog`` "" for the index): ``doc`` as its
    description, the shared ``options`` it names (a mapping gives each one's argparse overrides), and
    ``--out`` / ``--allow-dirty`` when it writes a report. Add the reproducer's own options to the result."""
    p = Parser(prog="python -m reproduce" + (f".{prog}" if prog else ""), description=doc,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    overrides = dict(options) if isinstance(options, Mapping) else dict.fromkeys(options, {})
    unknown = set(overrides) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown shared options {sorted(unknown)}; known: {sorted(OPTIONS)}")
    for name in OPTIONS:  # a fixed order, whatever the reproducer's
        if name in overrides:
            p.add_argument("--" + name.replace("_", "-"), **{**OPTIONS[name], **overrides[name]})
    if "runs" in overrides and "default" not in overrides["runs"]:
        p.set_defaults(runs=f"checkpoints/{prog}")
    if report:
        where = "results/" + ("; with --smoke, <runs>/smoke" if "smoke" in overrides else "")
        p.add_argument("--out", default=None, help=f"output directory (default: {where})")
        p.add_argument("--allow-dirty", action="store_true",
                       help="write the repository's results/ from a tree with uncommitted changes (refused "
                            "otherwise; the commit column then says '<sha>-dirty')")
    return p


# ---------------------------------------------------------------- devices and threads

POSITIVE_FIELDS = ("lr", "density_scale")  # float recipe fields that must be > 0 (the others >= 0)


def recipe_options(parser: argparse.ArgumentParser, recipe: Any, helps: Mapping[str, str]) -> None:
    """One ``--option`` per field of ``recipe`` named in ``helps`` (field ``batch_size`` → ``--batch-size``), with
    the recipe's value as default and its type checked by kind: integers ≥ 1, ``POSITIVE_FIELDS`` > 0, other
    floats ≥ 0 (a bad value is refused by name)."""
    for field, help_text in helps.items():
        value = getattr(recipe, field)
        kind = (positive_int if isinstance(value, int) else positive_float if field in POSITIVE_FIELDS
                else non_negative_float)
        parser.add_argument("--" + field.replace("_", "-"), type=kind, default=value,
                            help=f"{help_text} (default %(default)s)")


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:i`` as given.
    ValueError for anything else, or for CUDA when it is not available."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:i, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:i, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def training_context(device: str, log: Callable[..., None] = print) -> tuple[str, Callable[..., None]]:
    """(device type, log) of a training run on real data: under ``torchrun`` the process group is set up here
    (``acda.train.distributed_context``) and only rank 0 logs; ``device`` is the ``--device`` argument."""
    ctx = distributed_context(device)
    return (ctx.device.type if device == "auto" else device), (log if ctx.is_main else _silent)


def _silent(*args: Any, **kwargs: Any) -> None:
    """The log of a rank other than 0."""


def is_main_process() -> bool:
    """Whether this process writes reports: always, except on ranks other than 0 under ``torchrun``."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def threads(count: int | None) -> Iterator[None]:
    """``torch.set_num_threads(count)`` inside the block (nothing when ``count`` is None); restored after."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_jobs(fn: Callable[..., Any], tasks: Sequence[tuple], jobs: int, desc: str = "runs",
             in_process: bool = False, worker_args: tuple = ()) -> list[Any]:
    """``[fn(*task) for task in tasks]`` in order: in this process when ``jobs`` is 1 or ``in_process``,
    otherwise in ``jobs`` spawned worker processes of one torch thread each, each call as
    ``fn(*task, *worker_args)`` (``fn`` must be importable by its module's name: defined at the top level
    of a module other than ``__main__``)."""
    jobs = min(jobs, len(tasks))
    if jobs <= 1 or in_process:
        return [fn(*task) for task in tqdm(tasks, desc=desc, disable=None)]
    # one torch thread per worker for everything it does (data too): two workers of two threads each on two
    # cores made OpenMP spin and built a proxy's data 35× slower than one process did
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = [pool.submit(fn, *task, *worker_args) for task in tasks]
        for _ in tqdm(as_completed(futures), total=len(futures), desc=desc, disable=None):
            pass
        return [f.result() for f in futures]


def preset(presets: Mapping[str, Mapping[str, Any]], quick: bool, **overrides) -> dict:
    """A copy of ``presets["quick"]`` or ``presets["full"]`` (a proxy's configurations) with ``overrides``;
    an override of a setting the preset does not have is a ValueError naming it."""
    cfg = dict(presets["quick" if quick else "full"])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown proxy settings {sorted(unknown)}")
    return {**cfg, **overrides}


# ---------------------------------------------------------------- publishing

def publish(table: str, results: Iterable[Result], args: argparse.Namespace, *, name: str | None = None,
            title: str | None = None, device: str = "cpu", findings: Sequence[str] = (),
            recipes: Mapping[str, Any] | None = None):
    """``write_report`` into ``args.out`` (``args.allow_dirty``), with the ``recipes`` (label → recipe) that
    produced it, then print the Markdown it wrote. Returns the table as read back from the CSV."""
    name = name or table
    if getattr(args, "smoke", None) is not None:
        name += "_smoke"
        title = f"{title or table} — SMOKE RUN: {args.smoke} samples, one epoch; a pipeline check, not a result"
    df = write_report(table, results, out_dir=args.out, name=name, title=title, device=device, findings=findings,
                      recipes=recipes, allow_dirty=args.allow_dirty)
    print(Path(args.out, f"{name}.md").read_text(encoding="utf-8"))
    return df


# ---------------------------------------------------------------- plots

def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Save ``fig`` as PNG through a temporary file and a rename (never a half-written file), without
    the matplotlib version in its metadata (so equal figures are equal files), and close it."""
    plt = pyplot()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None}))
    finally:
        plt.close(fig)
