"""The regression rule (reproduce/regression.py) and the committed results it guards.

Every committed results/<name>.{csv,json,md} is checked here: the Markdown regenerates from the CSV
and JSON byte for byte, the published columns equal reproduce/published/, the provenance names a
clean commit, the three files carry one run id. Mutating one committed value of each kind makes the
regression fail, and so do files of two different runs side by side.
"""
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from reproduce.engine import regression, report
from reproduce.engine.regression import FALSE_ALARM, compare_files, detectable_change, run_id_problems, welch
from reproduce.engine.report import PUBLISHED_DIR, Result, load_published, read_results, render, write_report

RESULTS = Path(__file__).resolve().parent.parent / "results"
REPORTS = sorted(p.stem for p in RESULTS.glob("*.csv") if not p.stem.startswith("benchmarks"))


def test_every_committed_report_is_covered():
    assert {"table6", "table6_official", "table2", "table2_official", "sec32", "table7", "table1", "table1_quick",
            "a5", "a5_quick", "figure6", "figure6_quick", "table3", "table3_quick", "figure7",
            "figure7_quick", "table4", "table4_quick", "table5", "table5_quick", "tableB", "tableB_quick"} == set(REPORTS)
    for name in REPORTS:
        assert (RESULTS / f"{name}.json").is_file() and (RESULTS / f"{name}.md").is_file()


@pytest.mark.parametrize("name", REPORTS)
def test_markdown_regenerates_from_the_csv_byte_for_byte(name):
    assert render(name, RESULTS) == (RESULTS / f"{name}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", REPORTS)
def test_published_columns_and_provenance(name):
    df = read_results(RESULTS / f"{name}.csv")
    table = df.table.iloc[0]
    published = load_published(table).set_index(["row", "setting", "metric"])
    ours = df.set_index(["row", "setting", "metric"])
    assert set(published.index) <= set(ours.index), "every published row appears"
    for key, p in published.iterrows():
        got = ours.loc[key]
        assert got.unit == p.unit, key
        assert (math.isnan(got.published) and pd.isna(p.published)) or got.published == p.published, key
        if p.note:
            assert p.note in got.note, key
    assert not df.commit.str.endswith("-dirty").any() and not (df.commit == "unknown").any()
    assert df.fingerprint.nunique() == 1 and df.commit.nunique() == 1
    assert (df.kind != "seeded").all() or (df[df.kind == "seeded"].samples != "").all()


@pytest.mark.parametrize("name", REPORTS)
def test_committed_report_files_carry_one_run_id(name):
    assert run_id_problems(RESULTS, name) == []


def _problems_after(name: str, tmp_path: Path, mutate) -> list[str]:
    """Copy a committed report, apply ``mutate`` to its CSV frame (all text), and regress."""
    df = pd.read_csv(RESULTS / f"{name}.csv", dtype=str, keep_default_na=False)
    mutate(df)
    df.to_csv(tmp_path / f"{name}.csv", index=False)
    shutil.copy(RESULTS / f"{name}.json", tmp_path / f"{name}.json")
    shutil.copy(RESULTS / f"{name}.md", tmp_path / f"{name}.md")
    return compare_files(tmp_path, RESULTS, name)


def _set(df, row, metric, column, value, setting=None):
    mask = (df.row == row) & (df.metric == metric) & ((df.setting == setting) if setting else True)
    assert mask.sum() == 1, (row, metric, mask.sum())
    df.loc[mask, column] = value


def test_unchanged_reports_pass(tmp_path):
    for name in REPORTS:
        assert _problems_after(name, tmp_path, lambda df: None) == [], name


@pytest.mark.parametrize("column,value", [("reproduced", "1638.7"), ("published", "16386.7"),
                                          ("note", "edited"), ("status", "mismatch")])
def test_mutating_an_exact_value_fails(tmp_path, column, value):
    problems = _problems_after("table6", tmp_path, lambda df: _set(df, "Conv", "FLOPs", column, value, "5x5"))
    assert any(column in p for p in problems), problems


def test_halving_a_gflops_row_fails(tmp_path):
    def halve(df):
        mask = df.metric == "GFLOPs"
        df.loc[mask.idxmax(), "reproduced"] = repr(float(df.loc[mask.idxmax(), "reproduced"]) / 2)
    assert _problems_after("table2", tmp_path, halve)


def _other_machine(df):
    df["fingerprint"] = "000000000000"


@pytest.mark.parametrize("name,row,metric", [("table1_quick", "LeNet + ACDA", "Top-1 error"),
                                             ("figure6_quick", "ACDA", "MSE"),
                                             ("a5_quick", "LeNet + ACDA (proxy-trained)", "Cosine distance mean"),
                                             ("table3_quick", "Ad-ResNet-s", "MAE")])
def test_seeded_rows_across_machines(tmp_path, name, row, metric):
    df = read_results(RESULTS / f"{name}.csv")
    target = df[(df.row == row) & (df.metric == metric) & (df.kind == "seeded")].iloc[0]
    shift = float(target.detectable)
    assert shift > 0 and target.n >= 10  # quick variants have at least 10 seeds

    def moved(by):
        def mutate(frame):
            _other_machine(frame)
            values = [float(v) + by for v in target.samples.split(";")]
            _set(frame, row, metric, "samples", ";".join(map(repr, values)), target.setting)
        return mutate

    assert _problems_after(name, tmp_path, moved(0.0)) == []  # another machine, same values: passes
    problems = _problems_after(name, tmp_path, moved(shift))
    assert len(problems) == 1 and "Welch" in problems[0], problems
    assert _problems_after(name, tmp_path, moved(shift / 10)) == []  # well inside the noise: passes


def test_seeded_rows_on_the_same_machine_must_be_bit_identical(tmp_path):
    df = read_results(RESULTS / "figure6_quick.csv")
    first = df[(df.row == "ACDA") & (df.metric == "MSE")].iloc[0].samples.split(";")
    first[0] = repr(float(first[0]) * (1 + 1e-15) + 1e-18)
    problems = _problems_after("figure6_quick", tmp_path, lambda f: _set(f, "ACDA", "MSE", "samples", ";".join(first)))
    assert any("bit-identical" in p for p in problems), problems


def test_a_changed_status_or_note_of_a_seeded_row_fails_on_any_machine(tmp_path):
    def mutate(df):
        _other_machine(df)
        _set(df, "LeNet + ACDA", "Top-1 error", "status", "better", df.setting[df.setting.str.startswith("proxy")].iloc[0])
    assert any("status" in p for p in _problems_after("table1_quick", tmp_path, mutate))


def test_a_timing_must_be_measured_but_is_never_compared(tmp_path):
    def faster(df):
        _set(df, "Conv", "Time", "reproduced", "0.001")
    assert _problems_after("table7", tmp_path, faster) == []
    assert any("not measured" in p for p in _problems_after("table7", tmp_path,
                                                          lambda df: _set(df, "Conv", "Time", "reproduced", "")))


def test_findings_are_compared_where_runs_are_comparable(tmp_path):
    shutil.copy(RESULTS / "table6.csv", tmp_path / "table6.csv")
    shutil.copy(RESULTS / "table6.md", tmp_path / "table6.md")
    meta = json.loads((RESULTS / "table6.json").read_text())
    meta["findings"][0] = "edited"
    (tmp_path / "table6.json").write_text(json.dumps(meta))
    assert any("finding 1" in p for p in compare_files(tmp_path, RESULTS, "table6"))


def _two_runs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """The same one-row report written twice with different values, into a/ and b/."""
    (tmp_path / "tx.csv").write_text("row,setting,metric,unit,published,decimals,better,note\nA,s,FLOPs,M,10.0,1,,\n")
    monkeypatch.setattr(report, "PUBLISHED_DIR", tmp_path)
    for folder, value in (("a", 10.0), ("b", 12.0)):
        write_report("tx", [Result("A", "s", "FLOPs", value, "fvcore")], out_dir=tmp_path / folder, title="Table X")
    return tmp_path / "a", tmp_path / "b"


def test_files_of_two_runs_fail_naming_the_files(tmp_path, monkeypatch):
    """A run killed between replacing the CSV and the JSON leaves the new CSV beside the old JSON and Markdown."""
    a, b = _two_runs(tmp_path, monkeypatch)
    assert run_id_problems(a, "tx") == run_id_problems(b, "tx") == []
    assert compare_files(a, a, "tx") == []
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(b / "tx.csv", mixed / "tx.csv")
    for suffix in (".json", ".md"):
        shutil.copy(a / f"tx{suffix}", mixed / f"tx{suffix}")
    problems = run_id_problems(mixed, "tx")
    assert len(problems) == 1 and "run ids differ" in problems[0] and "different runs" in problems[0]
    for suffix in (".csv", ".json", ".md"):
        assert str(mixed / f"tx{suffix}") in problems[0]
    assert problems[0] in compare_files(mixed, a, "tx")  # the new report ...
    assert problems[0] in compare_files(a, mixed, "tx")  # ... and the committed one are checked
    shutil.copy(b / "tx.json", mixed / "tx.json")  # CSV and JSON of run b, Markdown of run a
    assert str(mixed / "tx.md") in run_id_problems(mixed, "tx")[0]


def test_a_report_without_run_ids_or_a_file_fails(tmp_path, monkeypatch):
    a, _ = _two_runs(tmp_path, monkeypatch)
    meta = json.loads((a / "tx.json").read_text())
    del meta["run_id"]
    (a / "tx.json").write_text(json.dumps(meta))
    assert any("no run id in" in p and str(a / "tx.json") in p for p in run_id_problems(a, "tx"))
    (a / "tx.md").unlink()
    assert any(str(a / "tx.md") in p and "missing" in p for p in run_id_problems(a, "tx"))


def test_welch_and_detectable_change():
    assert welch([1.0, 1.0], [1.0, 1.0]) == 1.0 and welch([1.0, 1.0], [2.0, 2.0]) == 0.0
    assert welch([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        welch([1.0], [1.0, 2.0])
    assert math.isnan(detectable_change(1.0, 1, 1))
    # more seeds → smaller detectable change; more tested rows → larger (Bonferroni)
    assert detectable_change(1.0, 20, 3) < detectable_change(1.0, 10, 3) < detectable_change(1.0, 10, 30)
    # a shift by the detectable change is caught by the test at the corrected level (equal spreads)
    a = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    d = detectable_change(pd.Series(a).std(), len(a), 4)
    assert welch(a, [v + d for v in a]) < FALSE_ALARM / 4


def test_false_alarm_rate_of_unchanged_seeded_rows():
    """Two independent 10-seed samples of one normal distribution: the rule fails about FALSE_ALARM / k of
    them per row, never more than a small multiple (simulated, fixed seed)."""
    import numpy as np

    rng = np.random.default_rng(0)
    k, trials = 4, 4000
    fails = sum(welch(list(rng.normal(size=10)), list(rng.normal(size=10))) < FALSE_ALARM / k for _ in range(trials))
    assert fails / trials < 2 * FALSE_ALARM / k


def test_rule_is_documented_beside_the_published_format():
    text = (PUBLISHED_DIR / "README.md").read_text()
    assert "Welch" in text and "fingerprint" in text and f"{FALSE_ALARM:g}" in text
    assert regression.__doc__ and "Bonferroni" in regression.__doc__
