"""One seed of Figure 6 (data, both layers trained, every metric) and all seeds in worker processes."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from acda.data.toy import PatternMap, make_pattern_scene

from ..engine import base
from ..recipes.toymap import ToyMap
from .metrics import Outcome, evaluate, mean_share_at_centres, scale_norms, shift_error
from .training import build_layers, least_squares_conv, train

__all__ = ["SeedRun", "run_seed", "run_seed_single_threaded", "run_all"]


@dataclass
class SeedRun:
    seed: int
    original: PatternMap
    shifted: PatternMap
    conv: Outcome
    acda: Outcome
    least_squares: Outcome
    scale_norms: torch.Tensor  # (S, H, W): per-pixel norm of β on each scale
    scale_share: dict[int, torch.Tensor]  # pattern size → (S,) mean share at those centres


def run_seed(seed: int, cfg: ToyMap, device: torch.device, progress: bool = True) -> SeedRun:
    scene = make_pattern_scene(seed, size=cfg.size, num_patterns=cfg.num_patterns, amplitude=cfg.amplitude,
                               noise_std=cfg.noise_std, max_shift=cfg.shift)
    original, shifted = scene.render(0), scene.render(cfg.shift)
    original = replace(original, image=original.image.to(device), target=original.target.to(device))
    shifted = replace(shifted, image=shifted.image.to(device), target=shifted.target.to(device))
    torch.manual_seed(seed)
    conv, acda = build_layers(original.image, cfg.num_atoms, device)
    outcomes = {}
    for name, layer in (("Conv", conv), ("ACDA", acda)):
        log = train(layer, original, cfg, f"seed {seed} {name}", progress)
        out = evaluate(layer, original, cfg.threshold)
        out.log = log
        out.shifted_output = evaluate(layer, shifted, cfg.threshold).output
        out.shift_error = shift_error(out.output, out.shifted_output, cfg.shift)
        outcomes[name] = out
    lsq = evaluate(least_squares_conv(original.image, original.target), original, cfg.threshold)
    norms = scale_norms(acda, original.image)
    return SeedRun(seed, original, shifted, outcomes["Conv"], outcomes["ACDA"], lsq, norms,
                   mean_share_at_centres(norms, original))


def run_seed_single_threaded(seed: int, cfg: ToyMap, device: str, progress: bool = True) -> SeedRun:
    """``run_seed`` with one CPU thread, so that results do not depend on ``--jobs`` or the core count."""
    with base.threads(1):
        return run_seed(seed, cfg, torch.device(device), progress)


def run_all(cfg: ToyMap, device: str, jobs: int) -> tuple[list[SeedRun], list[SeedRun]]:
    """All seeds (and their plain-SGD comparison runs), in ``jobs`` single-threaded worker processes on
    CPU, in this process otherwise. Returns (runs in seed order, plain-SGD runs in seed order or [])."""
    tasks = [(seed, cfg) for seed in cfg.seeds]
    if cfg.plain_sgd and cfg.momentum != 0:
        tasks += [(seed, replace(cfg, momentum=0.0)) for seed in cfg.seeds]
    done = base.run_jobs(run_seed_single_threaded, [(seed, c, device) for seed, c in tasks], jobs, desc="runs",
                         in_process=torch.device(device).type != "cpu", worker_args=(False,))  # no progress bars
    return done[:len(cfg.seeds)], done[len(cfg.seeds):]
