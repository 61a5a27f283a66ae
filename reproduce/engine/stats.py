"""The statistics of the regression rule (``reproduce.regression``): Welch's test and its power; and the
mean ± std over seeds and the (Holm-corrected) comparisons that reproducers report."""
from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["FALSE_ALARM_RUN", "CHECKED_TABLES", "FALSE_ALARM", "POWER", "welch", "detectable_change", "holm",
           "mean_std", "seed_comparison", "seed_comparisons"]

FALSE_ALARM_RUN = 0.01  # of one whole CI run, over every trained table it re-checks
CHECKED_TABLES = 8  # trained quick reports a CI run re-checks (tests/test_stats.py counts them)
FALSE_ALARM = FALSE_ALARM_RUN / CHECKED_TABLES  # per table, over all its seeded rows
POWER = 0.8


def welch(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test that ``a`` and ``b`` have the same mean.

    With no spread on either side the test degenerates: p = 1 if the means are equal, else 0.
    """
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's test needs at least 2 values per side, got {len(a)} and {len(b)}")
    if max(a) == min(a) and max(b) == min(b):
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def detectable_change(std: float, n: int, tests: int, alpha: float = FALSE_ALARM, power: float = POWER) -> float:
    """Shift of a mean over ``n`` seeds (sample std ``std``) that Welch's test at ``alpha / tests``
    (two-sided) detects with probability ``power``, for a new run of ``n`` seeds with the same spread
    (``std`` × a factor found by simulating Welch's test itself: its degrees of freedom are random)."""
    if n < 2:
        return math.nan
    return float(std * _welch_factor(n, alpha / max(tests, 1), power))


@functools.cache
def _welch_factor(n: int, level: float, power: float, trials: int = 20_000) -> float:
    """The shift, in units of σ, at which Welch's test of two samples of ``n`` unit normals at ``level``
    rejects with probability ``power`` (one fixed set of draws, so the result is a deterministic function)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((trials, n)), rng.standard_normal((trials, n))

    def achieved(shift: float) -> float:
        return float((stats.ttest_ind(a, b + shift, axis=1, equal_var=False).pvalue < level).mean())

    lo, hi = 0.0, 1.0
    while achieved(hi) < power:
        lo, hi = hi, 2 * hi
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if achieved(mid) < power else (lo, mid)
    return hi


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values of a family of tests (step-down, monotone, at most 1)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [1.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def seed_comparison(name_a: str, a: list[float], name_b: str, b: list[float], metric: str, *,
                    higher_is_better: bool, decimals: int = 2, unit: str = "",
                    family: tuple[float, int] | None = None) -> str:
    """"B m ± s vs A m ± s <metric> (mean ± std over n seeds), Welch p = …: significant / not": the
    sentence every seeded comparison in the findings uses (B is the model under test, A the reference).
    ``family`` = (Holm-adjusted p, number of tests) when the comparison is one of a family reported together
    (``seed_comparisons``); significance is then judged on the adjusted p."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    f = f"{{:.{decimals}f}}"
    text = (f"{name_b} {f.format(mb)} ± {f.format(sb)}{unit} vs {name_a} {f.format(ma)} ± {f.format(sa)}{unit} "
            f"{metric} (mean ± std over {len(b)} / {len(a)} seeds)")
    if len(a) < 2 or len(b) < 2:
        return text + ": fewer than 2 seeds on a side, no significance can be stated."
    if sa == 0 and sb == 0:
        return text + ": no spread over seeds on either side, so no test applies (the runs are deterministic)."
    p = welch(a, b)
    judged = p if family is None else family[0]
    test = f"Welch p = {p:.2g}" + ("" if family is None or family[1] == 1 else
                                   f", Holm-adjusted over {family[1]} tests p = {family[0]:.2g}")
    if judged >= 0.05:
        return text + f", {test}: not significant at 0.05, no difference is shown."
    better = (mb > ma) == higher_is_better
    return (text + f", {test}: significant at 0.05, {name_b}'s {metric} is "
            f"{'higher' if mb > ma else 'lower'} ({'better' if better else 'worse'}).")


def seed_comparisons(tests: Sequence[tuple[str, list[float], str, list[float], str]], *, higher_is_better: bool,
                     decimals: int = 2, unit: str = "") -> list[str]:
    """``seed_comparison`` sentences of a family of tests reported together, each (name A, A, name B, B, metric),
    judged on Holm-adjusted Welch p-values over the family (tests without a p-value stay out of it)."""
    testable = [i for i, (_, a, _, b, _) in enumerate(tests)
                if len(a) > 1 and len(b) > 1 and not (max(a) == min(a) and max(b) == min(b))]
    adjusted = dict(zip(testable, holm([welch(tests[i][1], tests[i][3]) for i in testable]), strict=True))
    return [seed_comparison(name_a, a, name_b, b, metric, higher_is_better=higher_is_better, decimals=decimals,
                            unit=unit, family=(adjusted[i], len(testable)) if i in adjusted else None)
            for i, (name_a, a, name_b, b, metric) in enumerate(tests)]
