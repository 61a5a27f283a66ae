"""Figure 6's command line: ``python -m reproduce.figure6``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine import base
from ..engine.reproducer import Report, Reproducer
from ..recipes.toymap import ToyMap
from ..toymap.experiment import run_all
from ..toymap.plots import plot_figure6, plot_scales
from . import __doc__ as DESCRIPTION
from .findings import findings
from .rows import build_results

__all__ = ["REPRODUCER", "main"]


def recipes(quick: bool) -> dict[str, ToyMap]:
    """The recipe of the report (``figure6`` or ``figure6_quick``)."""
    return {"toy map": ToyMap.of(quick)}


def report_findings(rows, quick: bool) -> list[str]:
    """Every finding of a committed report, recomputed from its rows (``python -m reproduce verify``)."""
    return findings(rows, recipes(quick)["toy map"])


def _arguments(parser: argparse.ArgumentParser) -> None:
    full = ToyMap.full()
    parser.add_argument("--steps", type=int, default=None,
                        help=f"step cap per layer (default {full.max_steps}; quick: {ToyMap.quick().max_steps})")
    parser.add_argument("--momentum", type=float, default=None,
                        help=f"SGD momentum (default {full.momentum}; 0 = plain SGD)")
    parser.add_argument("--amplitude", type=float, default=None,
                        help=f"pattern amplitude (default {full.amplitude})")
    parser.add_argument("--noise", type=float, default=None, help=f"noise standard deviation (default {full.noise_std})")
    parser.add_argument("--name", default=None, help="output name (default figure6, or figure6_quick with --quick)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")


def build_reports(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Report]:
    """The toy runs over seeds (and plain SGD), their rows, findings and the two PNG figures."""
    overrides = {}
    if args.seeds is not None:
        overrides["seeds"] = tuple(args.seeds)
    if args.steps is not None:
        overrides["max_steps"] = args.steps
    for key, value in (("momentum", args.momentum), ("amplitude", args.amplitude), ("noise_std", args.noise)):
        if value is not None:
            overrides[key] = value
    try:
        cfg = ToyMap.of(args.quick).with_(**overrides)
    except ValueError as e:
        parser.error(str(e))
    name = args.name or ("figure6_quick" if args.quick else "figure6")
    device = str(base.resolve_device(args.device))
    runs, plain = run_all(cfg, device, args.jobs)
    results = build_results(runs, cfg, plain)
    figures = [] if args.no_plots else [lambda out: plot_figure6(runs[0], Path(out, f"{name}.png")),
                                        lambda out: plot_scales(runs[0], Path(out, f"{name}_scales.png"))]
    return [Report(name, f"Figure 6: toy multi-scale pattern detection and translation test ({len(cfg.seeds)} seeds, "
                         f"SGD lr {cfg.lr:g}, momentum {cfg.momentum:g}, cap {cfg.max_steps} steps; one CPU thread "
                         "per run)", results, findings(results, cfg), {"toy map": cfg}, device, figures)]


_QUICK = ToyMap.quick()
REPRODUCER = Reproducer(
    "figure6", [("Fig 6", "Toy multi-scale pattern detection and translation test (§3.3)")], DESCRIPTION, {
        "device": {"default": "cpu", "help": "device (default: cpu)"},
        "seeds": {"nargs": "+", "default": None, "type": base.non_negative_int,
                  "help": f"seeds (default {' '.join(map(str, ToyMap.full().seeds))}; quick: 0–{max(_QUICK.seeds)})"},
        "jobs": {},
        "quick": {"help": f"reduced run ({len(_QUICK.seeds)} seeds on a {_QUICK.size}×{_QUICK.size} map, step cap "
                          f"{_QUICK.max_steps}, no plain-SGD runs) written as figure6_quick.* (CI)"},
    }, build_reports, _arguments, recipes=recipes, report_findings=report_findings)
main = REPRODUCER.main


if __name__ == "__main__":
    sys.exit(main())
