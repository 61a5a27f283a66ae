"""Appendix A.5: intra-image diversity of the predicted basis coefficients α.

The paper: "average pairwise cosine distance of basis coefficients α (averaged across scales)
within the spatial position of a single image", 0.68 ± 0.30 over ImageNet val with a trained
Ad-ResNet. Our definition (``acda.metrics.intra_image_cosine_distance``, ``mode="per_scale"``):
for each ACDA layer, image, atom and scale, the mean of ``1 − cos(α_p, α_q)`` over all pairs of
output positions p < q of that scale's m' coefficients; averaged over scales and atoms, then over
the ACDA layers → one number per image. We report its mean and std over images ("images"), and
the mean and std over every single pair distance ("pairs") since the paper does not say what its
± is taken over; and the alternative reading (α averaged over scales first, ``mean_alpha``).

With ``--checkpoint`` and ``--data-root`` it follows the paper's protocol on ImageNet val
(``--model adresnet_s`` by default). Without them it reports the metric for LeNet + ACDA untrained
and trained on the real-image proxy of Table 1 (status "proxy", never compared with the paper).

    python -m reproduce.a5 [--checkpoint CKPT --data-root DIR [--model adresnet_s] [--limit N]]
                           [--quick] [--generator paper|official] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from acda.data import DatasetLayoutError
from acda.data.imagenet import EXPECTED_LAYOUT, imagenet
from acda.data.layout import one_line
from acda.metrics import alpha_diversity
from acda.models import get_model, list_models
from acda.train import fit

from .engine import base
from .engine.report import Result, missing, samples_of
from .engine.reproducer import Report, Reproducer
from .engine.stats import welch
from .recipes import ClassificationProxy

MODES = ("per_scale", "mean_alpha")


class Accumulator:
    """Per-image values (averaged over layers) and pair sums, for each mode."""

    def __init__(self) -> None:
        self.images = {mode: [] for mode in MODES}
        self.pairs = {mode: torch.zeros(3, dtype=torch.float64) for mode in MODES}

    def add(self, model: torch.nn.Module, x: torch.Tensor) -> None:
        by_mode = alpha_diversity(model, x, MODES)
        for mode, per_layer in by_mode.items():
            self.images[mode] += torch.stack([v["image_mean"] for v in per_layer.values()]).mean(0).tolist()
            for v in per_layer.values():
                self.pairs[mode] += torch.stack([v["pair_sum"], v["pair_sq_sum"], v["pair_count"]])

    def summary(self) -> dict[str, float]:
        out = {}
        for mode in MODES:
            values = self.images[mode]
            s, sq, n = self.pairs[mode].tolist()
            mean = s / n
            suffix = "" if mode == "per_scale" else " (α averaged over scales)"
            out[f"Cosine distance mean{suffix}"] = statistics.fmean(values)
            out[f"Cosine distance std{suffix}"] = statistics.pstdev(values)
            out[f"Pair cosine distance mean{suffix}"] = mean
            out[f"Pair cosine distance std{suffix}"] = max(sq / n - mean * mean, 0.0) ** 0.5
        return out


def measure(model: torch.nn.Module, loader, device: torch.device, desc: str) -> dict[str, float]:
    acc = Accumulator()
    model.to(device)
    for x, _ in tqdm(loader, desc=desc, leave=False):
        acc.add(model, x.to(device))
    return acc.summary()


def paper_protocol(args) -> tuple[list[Result], list[str]]:
    if args.model not in list_models():
        raise SystemExit(f"error: model {args.model!r} is not registered (available: {', '.join(list_models())}); "
                         "the paper's protocol needs a trained Ad-ResNet (acda/models/adresnet.py)")
    device = base.resolve_device(args.device)
    model = get_model(args.model, generator=args.generator)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"] if isinstance(state, dict) and "model" in state else state)
    try:
        val = imagenet(args.data_root, "val")
    except DatasetLayoutError as e:
        raise SystemExit(f"error: {e}") from None
    if args.limit:
        val = torch.utils.data.Subset(val, range(min(args.limit, len(val))))
    loader = DataLoader(val, batch_size=args.batch_size, num_workers=args.num_workers)
    summary = measure(model, loader, device, "ImageNet val")
    note = (f"{args.model} from {args.checkpoint}, {len(val)} ImageNet val images, {args.generator} generator; "
            "the paper's ± is compared with our std over images")
    results = [Result("Ad-ResNet (trained)", "ImageNet val", metric, value, "measured", note=note)
               for metric, value in summary.items()]
    return results, []


A5_QUICK_EPOCHS = 3  # the quick A.5 proxy trains shorter than Table 1's: its metric is α diversity, not error


def recipes(quick: bool, generator: str = "paper") -> dict[str, ClassificationProxy]:
    """The recipes of the proxy report: Table 1's proxy (quick: ``A5_QUICK_EPOCHS`` epochs) with ``generator``."""
    recipe = ClassificationProxy.of(quick).with_(generator=generator)
    return {"proxy": recipe.with_(epochs=A5_QUICK_EPOCHS) if quick else recipe}


def proxy_seed(seed: int, recipe: ClassificationProxy) -> tuple[dict[str, float], dict[str, float], float]:
    """α diversity of LeNet + ACDA untrained and after training with ``recipe`` and ``seed``, and its top-1
    error; on one CPU thread (``base.run_jobs`` workers), so the numbers do not depend on the number of jobs."""
    train_set, val_set = recipe.datasets()
    loader = DataLoader(val_set, batch_size=50)
    with base.threads(1):
        torch.manual_seed(seed)
        model = recipe.build("lenet_acda")
        untrained = measure(model, loader, torch.device("cpu"), f"untrained seed {seed}")
        error = fit(model, train_set, val_set, recipe.train_config(seed))["val_top1_err"]
        return untrained, measure(model, loader, torch.device("cpu"), f"trained seed {seed}"), error


def proxy_protocol(args, recipe: ClassificationProxy) -> tuple[list[Result], list[str]]:
    _, val_set = recipe.datasets()
    setting = recipe.setting()
    done = base.run_jobs(proxy_seed, [(seed, recipe) for seed in range(recipe.seeds)], args.jobs, desc="proxy seeds")
    per_seed = {"untrained": [d[0] for d in done], "proxy-trained": [d[1] for d in done]}
    errors = [d[2] for d in done]
    for seed, (u, t, e) in enumerate(done):
        print(f"seed {seed}: untrained {u['Cosine distance mean']:.3f}, trained {t['Cosine distance mean']:.3f} "
              f"(top-1 error {e:.2f}%)")
    results = []
    for state, runs in per_seed.items():
        row = f"LeNet + ACDA ({state})"
        how = "at initialisation" if state == "untrained" else f"after training (recipe proxy: Table 1's, {recipe.epochs} epochs)"
        note = (f"PROXY: LeNet + ACDA ({args.generator} generator) {how}, on the {len(val_set)} proxy test patches; "
                "mean over seeds. Not ImageNet, not Ad-ResNet.")
        for metric in runs[0]:
            results.append(Result(row, setting, metric, None, "measured", status="proxy", note=note,
                                  samples=[r[metric] for r in runs]))
    results.append(Result("LeNet + ACDA (proxy-trained)", setting, "Top-1 error", None, "trained", status="proxy",
                          unit="%", samples=errors, note="PROXY: test error of the models measured above"))
    findings = proxy_findings(results, recipe)
    return results, findings


def proxy_findings(rows: Iterable[Result] | pd.DataFrame, recipe: ClassificationProxy) -> list[str]:
    """The proxy's finding, computed from its rows: α diversity untrained vs trained, Welch over seeds."""
    samples, setting = samples_of(rows), recipe.setting()
    untrained, trained = (samples[(f"LeNet + ACDA ({state})", setting, "Cosine distance mean")]
                          for state in ("untrained", "proxy-trained"))
    u, t = statistics.fmean(untrained), statistics.fmean(trained)
    return [
        f"Proxy only (no ImageNet here): LeNet + ACDA's α diversity is {u:.3f} untrained and {t:.3f} after "
        f"proxy training (mean over {recipe.seeds} seeds, 2 ACDA layers, {recipe.patch - 4}×{recipe.patch - 4} "
        f"and {recipe.patch // 2 - 6}×{recipe.patch // 2 - 6} positions; Welch p = {welch(untrained, trained):.2g} for the "
        "difference). These are not comparable with the paper's 0.68 (a different model, data and resolution).",
    ]


def report_findings(rows: pd.DataFrame, quick: bool) -> list[str]:
    """Every finding of a committed proxy report, recomputed from its rows (``python -m reproduce verify``)."""
    return proxy_findings(rows, recipes(quick)["proxy"]) + [DEFINITION]


def needs_imagenet() -> list[Result]:
    """The paper's rows when the proxy runs instead: they need a trained Ad-ResNet and ImageNet."""
    note = ("needs a trained Ad-ResNet checkpoint and ImageNet: --checkpoint CKPT --data-root DIR with "
            + one_line(EXPECTED_LAYOUT).replace("<data-root>", "DIR"))
    return missing(["Ad-ResNet (trained)"], ["ImageNet val"], ("Cosine distance mean", "Cosine distance std"),
                   "needs data", note, method="measured")


DEFINITION = ("Definition: per ACDA layer, image, atom and scale, the mean of 1 − cos(α_p, α_q) over all "
              "pairs of output positions p < q (m' = 6 coefficients per scale); averaged over scales and "
              "atoms, then over layers: one number per image. 'Cosine distance mean/std' are over images; "
              "'Pair …' over every single pair distance; '(α averaged over scales)' is the other reading "
              "of the paper's phrase. Cosine distance lies in [0, 2]; 1 is orthogonal on average.")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="trained Ad-ResNet checkpoint (acda.train's or a plain state dict)")
    parser.add_argument("--model", default="adresnet_s", help="registered model of the checkpoint")
    parser.add_argument("--generator", choices=("paper", "official"), default="paper")
    parser.add_argument("--limit", type=base.positive_int, help="use only the first N validation images")
    parser.add_argument("--batch-size", type=base.positive_int, default=32, help="images per batch (default %(default)s)")
    parser.add_argument("--num-workers", type=base.non_negative_int, default=4,
                        help="DataLoader workers (default %(default)s)")


def build_reports(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Report]:
    """The paper's protocol on a checkpoint and ImageNet (``a5_imagenet``), or the proxy (``a5[_quick]``)."""
    if (args.checkpoint is None) != (args.data_root is None):
        parser.error("the paper's protocol needs both --checkpoint and --data-root (or neither, for the proxy)")
    if args.checkpoint and not Path(args.checkpoint).is_file():
        parser.error(f"--checkpoint {args.checkpoint!r} does not exist")
    used = {}
    if args.checkpoint:
        results, findings = paper_protocol(args)
        name = "a5_imagenet"
    else:
        used = recipes(args.quick, args.generator)
        results, findings = proxy_protocol(args, used["proxy"])
        results += needs_imagenet()
        name = "a5_quick" if args.quick else "a5"
    findings.append(DEFINITION)
    title = "Appendix A.5: intra-image cosine distance of α" + (" — quick config" if args.quick else "")
    device = "cuda" if args.checkpoint and base.resolve_device(args.device).type == "cuda" else "cpu"
    return [Report(name, title, results, findings, used, device)]


REPRODUCER = Reproducer(
    "a5", [("A.5", "Intra-image cosine distance of the basis coefficients (Appendix A.5)")], __doc__, {
        "device": {"help": "auto (default), cpu, cuda or cuda:i (paper protocol)"},
        "threads": {"help": "torch CPU threads (default: torch's)"},
        "jobs": {"help": "proxy seeds in this many worker processes, one CPU thread each (default: the CPU count); "
                         "the numbers do not depend on it"},
        "quick": {"help": "small proxy config (the one CI checks)"},
        "data_root": {"help": "ImageNet root (val/ in class folders, or flat with the devkit or LOC_val_solution.csv)"},
    },
    build_reports, _arguments, recipes=recipes, report_findings=report_findings)
main = REPRODUCER.main


if __name__ == "__main__":
    sys.exit(main())
