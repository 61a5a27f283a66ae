"""Table B: ablation on the number of atoms m and of Fourier-Bessel scales S, RealSR Final ×3 (Appendix A.6).

Two sweeps of the ACDA restoration network: m ∈ {3, 5, …, 15} atoms at S = 3, and S ∈ {1, …, 5} scales
at m = 6. With ``--data-root`` (RealSR, ×3) each configuration is trained (``reproduce.restoration``);
without it the rows say "needs data". Params/GFLOPs are counted without data; the paper's
inconsistencies are flagged in the notes. The proxy (on unless ``--no-proxy``): the same sweeps on Table
4's ×3 proxy, each configuration Welch-tested against m = 6, S = 3, never compared with the paper;
``--quick``: CI's configuration (``tableB_quick``).

Kernel sizes, metrics and the flagged entries: docs/reproductions.md, section "reproduce.tableB".

    python -m reproduce.tableB [--out results/] [--jobs N]
    python -m reproduce.tableB --data-root DIR [--train m=3 S=2 ...]
    python -m reproduce.tableB --quick
"""
from __future__ import annotations

import sys
from pathlib import Path

from acda.data.restoration import realsr

from . import restoration as rst
from .engine import base
from .engine.report import Result
from .engine.stats import seed_comparisons
from .recipes.restoration import RestorationProxy, budget_text

SCALE = 3
SETTING = "RealSR Final ×3"
COUNT_SETTING = "SR model, ×3 ablation"
DEFAULT_M, DEFAULT_S = 6, 3


def config(m: int = DEFAULT_M, s: int = DEFAULT_S) -> tuple[str, dict]:
    """The registered model and its arguments for m atoms and S scales."""
    return "restoration_acda", {"num_atoms": m, "num_scales": s, "kernel_size": 2 * s + 1}


SWEEP = {**{f"m = {m}": config(m=m) for m in (3, 5, 7, 9, 11, 13, 15)},
         **{f"S = {s}": config(s=s) for s in (1, 2, 3, 4, 5)}}
REFERENCE_ROW = "S = 3"  # m = 6, S = 3: the text's choice, our reference
QUICK_ROWS = ("m = 3", "S = 3")
# twelve configurations: fewer seeds and a shorter schedule than Table 4's proxy, the same data and widths
PROXY_OVERRIDES = {"full": {"seeds": 3, "train": 256, "epochs": 6}, "quick": {"seeds": 3}}


def data_rows(args, log=print) -> tuple[list[Result], list[str], str, dict]:
    if args.data_root is None:
        return [r for row in SWEEP for r in rst.needs_data_rows(row, SETTING, rst.realsr_layout_note())], [], "cpu", {}
    device, log = base.training_context(args.device, log)
    recipe = rst.real_recipe(args, "sr", SCALE)
    train_set = realsr(args.data_root, "train", SCALE, crop_size=args.crop_size)
    test_set = realsr(args.data_root, "test", SCALE)
    rows, runs = rst.real_rows(SWEEP, set(args.train), train_set, test_set, recipe, SETTING, args, device,
                               Path(args.runs), log)
    return rows, [], device, {"real": recipe}


def counted_rows() -> list[Result]:
    return [r for row, (slug, kwargs) in SWEEP.items() for r in rst.count_rows(row, slug, kwargs, COUNT_SETTING)]


def recipes(quick: bool, **overrides) -> dict[str, RestorationProxy]:
    """The recipes of the proxy report (``tableB`` or ``tableB_quick``): Table 4's ×3 proxy, fewer seeds."""
    preset = PROXY_OVERRIDES["quick" if quick else "full"]
    return {f"proxy ×{SCALE}": RestorationProxy.of(quick).with_(**{"scale": SCALE, **preset, **overrides})}


def proxy_rows(args, name: str, overrides: dict | None = None, log=print) -> tuple[list[Result], list[str], dict]:
    quick = args.quick
    recipe = recipes(quick, **(overrides or {}))[f"proxy ×{SCALE}"]
    models = {row: SWEEP[row] for row in (QUICK_ROWS if quick else SWEEP)}
    setting = f"proxy ×{SCALE}{' (quick)' if quick else ''}: non-uniform blur + bicubic on skimage photos"
    results, runs, _, _ = rst.proxy_results(recipe, models, setting, "Bicubic", jobs=args.jobs, log=log)
    findings = []
    ref = runs[REFERENCE_ROW]
    for metric in rst.METRICS:
        decimals = 2 if metric == "PSNR" else 4
        parts = seed_comparisons([(f"{REFERENCE_ROW} (m = 6)", ref[metric], row, runs[row][metric], metric)
                                  for row in models if row != REFERENCE_ROW], higher_is_better=True, decimals=decimals)
        findings.append(f"Proxy ×{SCALE} sweep (NOT RealSR; C {recipe.channels}, W {recipe.width}), each "
                        f"configuration against m = 6, S = 3: " + " ".join(parts))
    findings.append(f"Parameters of the proxy configurations: {budget_text(models, recipe)}.")
    return results, findings, {f"proxy ×{SCALE}": recipe}


def main(argv: list[str] | None = None, proxy_overrides: dict | None = None) -> int:
    parser = rst.command_line(__doc__, "tableB", "RealSR folder holding Canon/ and Nikon/ (×3 is used)", crop=129,
                              what="configuration")
    parser.add_argument("--train", nargs="+", choices=tuple(SWEEP), default=list(SWEEP), metavar="ROW",
                        help="configurations to train with --data-root, e.g. 'm = 3' 'S = 2' (default: all)")
    return rst.run(parser, argv, "tableB", "Table B: ablation on atoms m and scales S (RealSR Final ×3)", data_rows,
                   lambda: (counted_rows(), []), lambda args, name: proxy_rows(args, name, proxy_overrides))


if __name__ == "__main__":
    sys.exit(main())
