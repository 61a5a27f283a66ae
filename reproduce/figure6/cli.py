"""Figure 6's command line: ``python -m reproduce.figure6``."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from .. import base
from ..toymap.experiment import run_all
from ..toymap.plots import plot_figure6, plot_scales
from ..toymap.recipe import QUICK, Config
from . import __doc__ as DESCRIPTION
from .findings import findings
from .rows import build_results

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = base.parser(DESCRIPTION, "figure6", {
        "device": {"default": "cpu", "help": "device (default: cpu)"},
        "seeds": {"nargs": "+", "default": None,
                  "help": f"seeds (default {' '.join(map(str, Config.seeds))}; quick: 0–{max(QUICK.seeds)})"},
        "jobs": {},
        "quick": {"help": f"reduced run ({len(QUICK.seeds)} seeds on a {QUICK.size}×{QUICK.size} map, step cap "
                          f"{QUICK.max_steps}, no plain-SGD runs) written as figure6_quick.* (CI)"},
    })
    parser.add_argument("--steps", type=int, default=None,
                        help=f"step cap per layer (default {Config.max_steps}; quick: {QUICK.max_steps})")
    parser.add_argument("--momentum", type=float, default=None,
                        help=f"SGD momentum (default {Config.momentum}; 0 = plain SGD)")
    parser.add_argument("--amplitude", type=float, default=None,
                        help=f"pattern amplitude (default {Config.amplitude})")
    parser.add_argument("--noise", type=float, default=None, help=f"noise standard deviation (default {Config.noise_std})")
    parser.add_argument("--name", default=None, help="output name (default figure6, or figure6_quick with --quick)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    overrides = {}
    if args.seeds is not None:
        overrides["seeds"] = tuple(args.seeds)
    if args.steps is not None:
        overrides["max_steps"] = args.steps
    for key, value in (("momentum", args.momentum), ("amplitude", args.amplitude), ("noise_std", args.noise)):
        if value is not None:
            overrides[key] = value
    try:
        cfg = replace(cfg, **overrides)
    except ValueError as e:
        parser.error(str(e))
    name = args.name or ("figure6_quick" if args.quick else "figure6")
    jobs = args.jobs
    device = str(base.resolve_device(args.device))
    runs, plain = run_all(cfg, device, jobs)
    base.publish("figure6", build_results(runs, cfg, plain), args, name=name, device=device,
                 findings=findings(runs, cfg, plain),
                 title=f"Figure 6: toy multi-scale pattern detection and translation test ({len(cfg.seeds)} seeds, "
                       f"SGD lr {cfg.lr:g}, momentum {cfg.momentum:g}, cap {cfg.max_steps} steps; one CPU thread per run)")
    if not args.no_plots:
        plot_figure6(runs[0], Path(args.out, f"{name}.png"))
        plot_scales(runs[0], Path(args.out, f"{name}_scales.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
