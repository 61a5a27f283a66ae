"""The statistics findings and the regression rule rest on (reproduce/stats.py), pinned against scipy and
simulation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from reproduce.engine.report import read_results
from reproduce.engine.stats import (
    CHECKED_TABLES,
    FALSE_ALARM,
    FALSE_ALARM_RUN,
    detectable_change,
    holm,
    seed_comparison,
    seed_comparisons,
    welch,
)

RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_welch_is_scipys_unequal_variance_t_test():
    rng = np.random.default_rng(3)
    for n, m in ((3, 3), (5, 10), (10, 4)):
        a, b = list(rng.normal(size=n)), list(rng.normal(0.5, 2.0, size=m))
        assert welch(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
        if n != m:  # Student's pooled test differs: replacing Welch's by it would not go unnoticed
            assert welch(a, b) != pytest.approx(stats.ttest_ind(a, b, equal_var=True).pvalue, rel=1e-3)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_detectable_change_has_its_stated_power(n):
    """A shift of ``detectable_change`` is detected by the regression's Welch test in 80% of simulated runs
    (draws independent of the ones the factor was found with)."""
    tests, trials = 4, 4000
    shift = detectable_change(1.0, n, tests)
    rng = np.random.default_rng(12345)
    a, b = rng.standard_normal((trials, n)), rng.standard_normal((trials, n)) + shift
    power = (stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < FALSE_ALARM / tests).mean()
    assert 0.77 <= power <= 0.83


def test_holm_adjusts_step_down_and_monotone():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == [] and holm([0.02]) == [0.02]


def test_a_family_is_judged_on_adjusted_p_values():
    a = [1.0, 1.1, 0.9, 1.05, 0.95]
    near = [v + 0.12 for v in a]  # p ≈ 0.03 alone
    text = seed_comparison("A", a, "B", near, "x", higher_is_better=True)
    assert "significant at 0.05" in text and "not significant" not in text
    family = seed_comparisons([("A", a, "B", near, "x")] * 3, higher_is_better=True)
    assert all("Holm-adjusted over 3 tests" in t and "not significant" in t for t in family)


def test_no_spread_on_either_side_states_no_test_and_never_p_zero():
    text = seed_comparison("A", [1.0, 1.0], "B", [2.0, 2.0], "x", higher_is_better=True)
    assert "no test applies" in text and "p = 0" not in text
    (text,) = seed_comparisons([("A", [1.0, 1.0], "B", [2.0, 2.0], "x")], higher_is_better=True)
    assert "no test applies" in text


def test_false_alarm_of_one_ci_run():
    """The per-table level times the trained quick tables one CI run re-checks is the run's false-alarm rate."""
    quick = [p for p in sorted(RESULTS.glob("*_quick.csv")) if (read_results(p).kind == "seeded").any()]
    assert len(quick) == CHECKED_TABLES and FALSE_ALARM * CHECKED_TABLES == pytest.approx(FALSE_ALARM_RUN)
    assert FALSE_ALARM_RUN <= 0.01
