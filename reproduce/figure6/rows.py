"""Figure 6's report rows: the paper's claims first, then ours, every row over seeds."""
from __future__ import annotations

from acda.data.toy import PATTERN_SIZES

from ..engine.report import Result, load_published
from ..recipes.toymap import RADIUS, ToyMap
from ..toymap.experiment import SeedRun
from ..toymap.metrics import SHIFT_BOUND

__all__ = ["METRICS", "build_results"]

METRICS = (("MSE", "mse", "1e-4", 1e4), ("pixel error", "pixel_error", "%", 100.0),
           ("centre error", "centre_error", "%", 100.0))


def _claim(holds: bool) -> str:
    return "claim holds" if holds else "claim fails"


def _magnitude_lower(conv: float, acda: float) -> float:
    """1.0 when ``acda`` is at least ten times lower than a non-zero ``conv``, else 0.0."""
    return float(conv > 0 and conv >= 10 * acda)


def build_results(runs: list[SeedRun], cfg: ToyMap, plain: list[SeedRun] = ()) -> list[Result]:
    """Rows for ``write_report("figure6", ...)``: the paper's claims first, then ours.

    Every row holds one value per seed (``samples``); its value is their mean.
    """
    results: list[Result] = []
    claims = load_published("figure6").set_index(["row", "setting", "metric"])["note"]

    def add(row: str, metric: str, samples: list[float], unit: str = "", note: str = "", method: str = "trained",
            status: str | None = None):
        if (row, "all seeds", metric) in claims.index:
            note = f"{claims[(row, 'all seeds', metric)]}. Ours: {note}"
        results.append(Result(row, "all seeds", metric, None, method, note=note, unit=unit, status=status,
                              samples=[float(v) for v in samples]))

    ratios = [r.conv.mse / r.acda.mse for r in runs]
    add("Conv / ACDA", "MSE ratio", ratios, "x", "per-seed ratio of the final MSEs, mean over seeds; the claim "
        "holds when the ratio is 10 or more on every seed", status=_claim(min(ratios) >= 10))
    for m, attr, _, _ in METRICS[1:]:
        lower = [_magnitude_lower(getattr(r.conv, attr), getattr(r.acda, attr)) for r in runs]
        add("Conv / ACDA", f"{m} ten times lower", lower, "share of seeds",
            f"1 on a seed where ACDA's {m} is at most a tenth of the Conv's (and the Conv's is not 0), else 0; the "
            "claim holds when the share is 1", status=_claim(min(lower) == 1))
    for name, attr in (("Conv", "conv"), ("ACDA", "acda")):
        within = [float(getattr(r, attr).shift_error <= SHIFT_BOUND) for r in runs]
        add(name, "shift error within rounding", within, "share of seeds",
            f"1 on a seed where the max over the {cfg.size - cfg.shift - 2 * RADIUS}² interior pixels is at most "
            f"{SHIFT_BOUND:g} (float32 rounding of values near 1 is 1.2e-7), else 0; the claim holds when the share "
            "is 1", status=_claim(min(within) == 1))
    add("ACDA", "7x7-scale share: 7x7 minus 3x3 pattern centres",
        [100 * float(r.scale_share[7][-1] - r.scale_share[3][-1]) for r in runs], "%",
        "per seed, in percentage points (rows 'k×k centres: …-scale share' below). A PROXY for Fig. 7's crowd-"
        "counting statement: a toy map, not crowd images", status="proxy")
    for row, key in (("Conv", "conv"), ("ACDA", "acda"), ("Conv (least squares)", "least_squares")):
        method = "analytic" if key == "least_squares" else "trained"
        for m, attr, unit, scale in METRICS:
            add(row, m, [scale * getattr(getattr(r, key), attr) for r in runs], unit, method=method)
        add(row, "missed centres", [getattr(r, key).missed for r in runs], method=method)
        add(row, "false centres", [getattr(r, key).false for r in runs], method=method)
        if key != "least_squares":
            _training_rows(add, row, [getattr(r, key) for r in runs], cfg)
    for s in range(len(PATTERN_SIZES)):
        add("ACDA", f"all pixels: {2 * s + 3}x{2 * s + 3}-scale share",
            [100 * float(_overall_share(r)[s]) for r in runs], "%",
            "share of each scale in the per-pixel norms of β, averaged over every pixel of the map")
    for k in PATTERN_SIZES:
        for s in range(len(PATTERN_SIZES)):
            add("ACDA", f"{k}x{k} centres: {2 * s + 3}x{2 * s + 3}-scale share",
                [100 * float(r.scale_share[k][s]) for r in runs], "%",
                "share of each scale in the per-pixel norms of β = Σ_a A_a·α_a (ACDAConv2d.scale_share), "
                "averaged over the centres of that pattern size")
    for row, key in (("Conv (plain SGD)", "conv"), ("ACDA (plain SGD)", "acda")):
        if not plain:
            break
        for m, attr, unit, scale in METRICS:
            add(row, m, [scale * getattr(getattr(r, key), attr) for r in plain], unit,
                "momentum 0 (plain SGD), otherwise the same runs")
        add(row, "missed centres", [getattr(r, key).missed for r in plain], note="momentum 0 (plain SGD)")
        add(row, "false centres", [getattr(r, key).false for r in plain], note="momentum 0 (plain SGD)")
        _training_rows(add, row, [getattr(r, key) for r in plain], cfg, "momentum 0 (plain SGD); ")
    return results


def _overall_share(run: SeedRun):
    """Each scale's share of β's per-pixel norm, averaged over every pixel: (S,)."""
    norms = run.scale_norms
    return (norms / norms.sum(dim=0, keepdim=True).clamp_min(1e-12)).mean(dim=(1, 2))


def _training_rows(add, row: str, outcomes: list, cfg: ToyMap, prefix: str = "") -> None:
    """Steps, convergence, the shift error and the loss drop over the last window, one sample per seed."""
    add(row, "steps", [o.log.steps for o in outcomes],
        note=f"{prefix}steps until the relative loss change over {cfg.window} steps fell below {cfg.tol:g}, or the "
             f"cap ({cfg.max_steps})")
    add(row, "converged", [float(o.log.converged) for o in outcomes], "share of seeds",
        f"{prefix}1 on a seed where the stopping rule was met before the cap, else 0")
    add(row, "shift error", [o.shift_error for o in outcomes],
        note=f"{prefix}max |y_shifted[i + shift, j + shift] − y[i, j]| over the interior pixels")
    add(row, "loss drop over the last window", [100 * _last_drop(o.log.losses, cfg.window) for o in outcomes], "%",
        f"{prefix}relative fall of the loss over the last {cfg.window} steps taken")


def _last_drop(losses: list[float], window: int) -> float:
    return (losses[-1 - window] - losses[-1]) / losses[-1 - window] if len(losses) > window else 0.0
