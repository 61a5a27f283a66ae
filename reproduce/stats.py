"""The statistics of the regression rule (``reproduce.regression``): Welch's test and its power; and the
mean ± std over seeds that reproducers report."""
from __future__ import annotations

import math
import statistics

from scipy import stats

__all__ = ["FALSE_ALARM", "POWER", "welch", "detectable_change", "mean_std", "seed_comparison"]

FALSE_ALARM = 0.01  # per table, over all its seeded rows
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
    (two-sided) detects with probability ``power``, for a new run of ``n`` seeds with the same spread."""
    if n < 2:
        return math.nan
    df = 2 * (n - 1)
    z = stats.t.ppf(1 - alpha / max(tests, 1) / 2, df) + stats.t.ppf(power, df)
    return float(z * std * math.sqrt(2 / n))


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def seed_comparison(name_a: str, a: list[float], name_b: str, b: list[float], metric: str, *,
                    higher_is_better: bool, decimals: int = 2, unit: str = "") -> str:
    """"B m ± s vs A m ± s <metric> (mean ± std over n seeds), Welch p = …: significant / not": the
    sentence every seeded comparison in the findings uses (B is the model under test, A the reference)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    f = f"{{:.{decimals}f}}"
    text = (f"{name_b} {f.format(mb)} ± {f.format(sb)}{unit} vs {name_a} {f.format(ma)} ± {f.format(sa)}{unit} "
            f"{metric} (mean ± std over {len(b)} / {len(a)} seeds)")
    if len(a) < 2 or len(b) < 2:
        return text + ": fewer than 2 seeds on a side, no significance can be stated."
    p = welch(a, b)
    if p >= 0.05:
        return text + f", Welch p = {p:.2g}: not significant at 0.05, no difference is shown."
    better = (mb > ma) == higher_is_better
    return (text + f", Welch p = {p:.2g}: significant at 0.05, {name_b}'s {metric} is "
            f"{'higher' if mb > ma else 'lower'} ({'better' if better else 'worse'}).")
