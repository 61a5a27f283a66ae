"""Figure 7 (paper §3.3, §4.2): which basis scale ACDA's per-pixel coefficients α weigh, as heatmaps.

The paper draws, for a crowd-counting model, the per-pixel weight of the 3×3, 5×5 and 7×7 atom bases
and states (Fig. 7 caption) that ACDA adopts the 7×7 bases on large (near) objects and the 3×3 bases on
small (far, dense) ones. Without a trained crowd model this is a PROXY on Figure 6's toy map
(``acda.data.toy``: patterns of 3×3, 5×5 and 7×7 on noise), with Figure 6's ACDA layer trained by
``reproduce.toymap.experiment.run_all``, shared with ``reproduce.figure6`` (same configuration, same seeds:
Figure 6's docstring describes the experiment).

- Per pixel, ``ACDAConv2d.scale_share``: the L2 norm on each scale of the effective coefficients
  β_ij = Σ_a A_a·α_ij,a (the coefficients of the filter actually applied at (i, j)), divided by the sum
  of the three norms, so the shares sum to 1 at each pixel (``reproduce.toymap.metrics.scale_norms``).
- Per seed, the mean share of each scale at the centres of each pattern size; the claim rows are the
  per-seed differences 7×7-scale share at 7×7 minus at 3×3 centres, and 3×3-scale share at 3×3 minus at
  7×7 centres (percentage points, mean ± std over seeds), tested with Welch's t-test between the two
  sets of per-seed shares (findings).
- PNG: the input map and one heatmap per scale (lighter = higher share), pattern centres marked, for
  the first seed.

Each seed runs on one CPU thread in ``--jobs`` worker processes (the numbers do not depend on it).
``--quick``: Figure 6's quick configuration (64×64 map, 12 patterns, cap 1000 steps) on seeds 0–4,
written as ``figure7_quick.*`` (CI). Default: Figure 6's full configuration (100×100 map, 25 patterns,
cap 3000 steps, seeds 0–4) without its plain-SGD comparison runs.

    python -m reproduce.figure7 [--quick] [--seeds 0 1 2] [--steps N] [--jobs J] [--out results/]
"""
from __future__ import annotations

import statistics
import sys
from dataclasses import replace
from pathlib import Path

from acda.data.toy import PATTERN_SIZES

from . import base
from .report import Result, load_published
from .stats import mean_std, welch
from .toymap.experiment import SeedRun, run_all
from .toymap.plots import plot_scales
from .toymap.recipe import KERNEL, QUICK, Config

__all__ = ["FULL", "QUICK7", "build_results", "findings", "main"]

FULL = Config(plain_sgd=False)
QUICK7 = replace(QUICK, seeds=(0, 1, 2, 3, 4))
SETTING = "all seeds"
LARGE, SMALL = max(PATTERN_SIZES), min(PATTERN_SIZES)
SCALES = tuple(range(3, KERNEL + 1, 2))  # the bases' scales 3×3 … 7×7 (ACDAConv2d's default S = k // 2)


def _share(run: SeedRun, pattern: int, scale: int) -> float:
    """Mean share (%) of basis scale ``scale`` (0 = 3×3) at the centres of ``pattern``×``pattern`` patterns."""
    return 100 * float(run.scale_share[pattern][scale])


def build_results(runs: list[SeedRun]) -> list[Result]:
    """The claim rows (status ``proxy``), then every scale's share at every pattern size; one sample per seed."""
    claims = load_published("figure7").set_index(["row", "setting", "metric"])["note"]
    proxy = "A PROXY for Fig. 7's crowd-counting statement: Figure 6's toy map, not crowd images"
    results = []
    for scale, hi, lo in ((-1, LARGE, SMALL), (0, SMALL, LARGE)):
        k = SCALES[scale]
        metric = f"{k}x{k}-scale share: {hi}x{hi} minus {lo}x{lo} pattern centres"
        note = (f"{claims[('ACDA', SETTING, metric)]}. Ours: per seed, the {k}×{k} bases' share of the per-pixel "
                f"norm of β = Σ_a A_a·α_a, averaged over the {hi}×{hi} centres minus over the {lo}×{lo} centres, in "
                f"percentage points. {proxy}")
        results.append(Result("ACDA", SETTING, metric, None, "trained", note=note, unit="%", status="proxy",
                              samples=[_share(r, hi, scale) - _share(r, lo, scale) for r in runs]))
    for p in PATTERN_SIZES:
        for s, k in enumerate(SCALES):
            results.append(Result("ACDA", SETTING, f"{p}x{p} centres: {k}x{k}-scale share", None, "trained",
                                  note="share of the scale in the per-pixel norms of β (ACDAConv2d.scale_share), "
                                       "averaged over the centres of that pattern size", unit="%",
                                  samples=[_share(r, p, s) for r in runs]))
    return results


def findings(runs: list[SeedRun]) -> list[str]:
    """The claims as measured statements: mean ± std over seeds and Welch's p-value."""
    out = []
    for scale in (-1, 0):
        k = SCALES[scale]
        at = {p: [_share(r, p, scale) for r in runs] for p in (LARGE, SMALL)}
        (m_l, s_l), (m_s, s_s) = mean_std(at[LARGE]), mean_std(at[SMALL])
        p_value = welch(at[LARGE], at[SMALL]) if len(runs) > 1 else float("nan")
        favoured = LARGE if scale == -1 else SMALL
        holds = sum((a > b) == (favoured == LARGE) and a != b for a, b in zip(at[LARGE], at[SMALL], strict=True))
        out.append(
            f"The {k}×{k} bases hold {m_l:.1f} ± {s_l:.1f}% of the coefficient norm at {LARGE}×{LARGE} pattern "
            f"centres and {m_s:.1f} ± {s_s:.1f}% at {SMALL}×{SMALL} centres (mean ± std over {len(runs)} seeds; "
            f"Welch p = {p_value:.2g}); higher at {favoured}×{favoured} centres on {holds}/{len(runs)} seeds: "
            + ("consistent with" if holds == len(runs) and p_value < 0.05 else "not clear support for")
            + f" the paper's {'large' if favoured == LARGE else 'small'}-object claim (proxy: toy map)."
        )
    overall = [statistics.fmean(_overall(r, s) for r in runs) for s in range(len(SCALES))]
    out.append("Over all pixels, the 3×3 / 5×5 / 7×7 bases hold " + " / ".join(f"{v:.1f}" for v in overall)
               + "% of the coefficient norm (mean over seeds).")
    return out


def _overall(run: SeedRun, scale: int) -> float:
    norms = run.scale_norms
    return 100 * float((norms[scale] / norms.sum(dim=0).clamp_min(1e-12)).mean())


def main(argv: list[str] | None = None) -> int:
    parser = base.parser(__doc__, "figure7", {
        "device": {"default": "cpu", "help": "device (default: cpu)"},
        "seeds": {"nargs": "+", "default": None,
                  "help": f"seeds (default {' '.join(map(str, FULL.seeds))}; quick: "
                          f"{' '.join(map(str, QUICK7.seeds))})"},
        "jobs": {},
        "quick": {"help": f"Figure 6's quick configuration ({QUICK7.size}×{QUICK7.size} map, step cap "
                          f"{QUICK7.max_steps}) on {len(QUICK7.seeds)} seeds, written as figure7_quick.* (CI)"},
    })
    parser.add_argument("--steps", type=int, default=None,
                        help=f"step cap per layer (default {FULL.max_steps}; quick: {QUICK7.max_steps})")
    parser.add_argument("--name", default=None, help="output name (default figure7, or figure7_quick with --quick)")
    args = parser.parse_args(argv)
    overrides = {}
    if args.seeds is not None:
        overrides["seeds"] = tuple(args.seeds)
    if args.steps is not None:
        overrides["max_steps"] = args.steps
    try:
        cfg = replace(QUICK7 if args.quick else FULL, **overrides)
    except ValueError as e:
        parser.error(str(e))
    name = args.name or ("figure7_quick" if args.quick else "figure7")
    jobs = args.jobs
    device = str(base.resolve_device(args.device))
    runs, _ = run_all(cfg, device, jobs)
    base.publish("figure7", build_results(runs), args, name=name, device=device, findings=findings(runs),
                 title=f"Figure 7 (proxy): basis-scale shares of ACDA's coefficients on Figure 6's toy map "
                       f"({len(cfg.seeds)} seeds, {cfg.size}×{cfg.size} map, cap {cfg.max_steps} steps; one CPU "
                       "thread per run)")
    plot_scales(runs[0], Path(args.out, f"{name}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
