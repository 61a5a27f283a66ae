import json
import math

import pandas as pd
import pytest

from reproduce.engine import report
from reproduce.engine.regression import regress
from reproduce.engine.report import Result, build_table, read_results, status_for, write_report

PROV = {"device": "cpu", "isa": "X", "torch": "t", "mkl": "m", "onednn": "o", "fingerprint": "f", "commit": "c"}


@pytest.mark.parametrize(
    "published,reproduced,decimals,tol,better,want",
    [
        (5900.8, 5900.8, 1, None, "", "match"),
        (16386.6, 16386.56, 1, None, "", "match"),  # within half a unit of the last digit
        (0.39, 0.393472, 2, None, "", "match"),
        (0.39, 0.3951, 2, None, "", "mismatch"),
        (30.0, 30.3, 1, 0.5, "higher", "within tolerance"),
        (30.0, 31.0, 1, 0.5, "higher", "better"),
        (30.0, 29.0, 1, 0.5, "higher", "worse"),
        (24.74, 20.0, 2, 1.0, "lower", "better"),
        (24.74, 26.0, 2, 1.0, "lower", "worse"),
    ],
)
def test_status_for(published, reproduced, decimals, tol, better, want):
    assert status_for(published, reproduced, decimals, tol, better) == want


def _published(tmp_path, monkeypatch):
    (tmp_path / "tx.csv").write_text(
        "row,setting,metric,unit,published,decimals,better,note\n"
        "A,s1,FLOPs,M,10.0,1,,\n"
        "A,s2,Top-1,%,24.74,2,lower,\n"
        "B,s1,Params,M,0.59,2,,\n"
    )
    monkeypatch.setattr(report, "PUBLISHED_DIR", tmp_path)


def test_build_table_joins_every_published_row(tmp_path, monkeypatch):
    _published(tmp_path, monkeypatch)
    df = build_table("tx", [
        Result("A", "s1", "FLOPs", 10.04, "fvcore"),
        Result("A", "s2", "Top-1", None, "trained", status="needs data", note="expects DIR/cifar-10-batches-py"),
        Result("C", "proxy", "Top-1", 12.5, "trained", status="proxy", unit="%"),
    ], PROV)
    assert list(df.columns) == report.COLUMNS
    got = {(r.row, r.setting): r for r in df.itertuples()}
    assert got[("A", "s1")].status == "match" and math.isclose(got[("A", "s1")].delta, 0.04)
    assert got[("A", "s2")].status == "needs data" and math.isnan(got[("A", "s2")].reproduced)
    assert got[("B", "s1")].status == "not implemented"  # published but not addressed: never silent
    assert got[("C", "proxy")].status == "proxy" and math.isnan(got[("C", "proxy")].published)


def test_result_validation():
    with pytest.raises(ValueError, match="method must be one of"):
        Result("A", "s", "m", 1.0, "guessed")
    with pytest.raises(ValueError, match="may only set status"):
        Result("A", "s", "m", 1.0, "fvcore", status="match")
    with pytest.raises(ValueError, match="needs a status"):
        Result("A", "s", "m", None, "fvcore")


def test_duplicate_results_rejected(tmp_path, monkeypatch):
    _published(tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="two results"):
        build_table("tx", [Result("A", "s1", "FLOPs", 1, "fvcore"), Result("A", "s1", "FLOPs", 2, "fvcore")], PROV)


def test_write_report_is_atomic_and_compares(tmp_path, monkeypatch):
    _published(tmp_path, monkeypatch)
    out = tmp_path / "results"
    rows = [Result("A", "s1", "FLOPs", 10.0, "fvcore", note="a note")]
    write_report("tx", rows, out_dir=out, title="Table X")
    md = (out / "tx.md").read_text()
    assert md.startswith("# Table X") and "## Notes" in md and "1. a note" in md
    assert sorted(p.name for p in out.iterdir()) == ["tx.csv", "tx.json", "tx.md"]  # no temp files left
    assert regress(out / "tx.csv", out / "tx.csv") == []
    assert (out / "tx.json").is_file()

    # One run id in all three files: a hash of the contents, so an identical rerun writes identical files.
    run_id = read_results(out / "tx.csv").run_id.unique().tolist()
    assert len(run_id) == 1 and len(run_id[0]) == 12
    assert json.loads((out / "tx.json").read_text())["run_id"] == run_id[0]
    assert f"· run {run_id[0]}" in md.splitlines()[2]
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    write_report("tx", rows, out_dir=out, title="Table X")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    write_report("tx", [Result("A", "s1", "FLOPs", 10.01, "fvcore", note="a note")], out_dir=out, title="Table X")
    assert read_results(out / "tx.csv").run_id.iloc[0] != run_id[0]
    write_report("tx", rows, out_dir=out, title="Table X")

    # A crash while writing leaves the previous file intact and no temporary file behind.
    before = (out / "tx.csv").read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report.pd.DataFrame, "to_csv", boom)
    with pytest.raises(KeyboardInterrupt):
        write_report("tx", [Result("A", "s1", "FLOPs", 99.0, "fvcore")], out_dir=out)
    assert (out / "tx.csv").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["tx.csv", "tx.json", "tx.md"]


def test_regress_reports_drift_of_an_exact_row(tmp_path, monkeypatch):
    _published(tmp_path, monkeypatch)
    committed = tmp_path / "c.csv"
    build_table("tx", [Result("A", "s1", "FLOPs", 10.0, "fvcore")], PROV).to_csv(committed, index=False)
    drifted = build_table("tx", [Result("A", "s1", "FLOPs", 10.3, "fvcore")], PROV)
    problems = regress(drifted, committed)
    assert any("reproduced '10.3'" in p for p in problems) and any("status" in p for p in problems)


def test_seeded_results_carry_samples_and_a_detectable_change(tmp_path, monkeypatch):
    _published(tmp_path, monkeypatch)
    df = build_table("tx", [Result("P", "proxy", "Top-1", None, "trained", status="proxy", samples=[1.0, 2.0, 3.0]),
                            Result("T", "x", "Time", 0.5, "timed", status="proxy", samples=[0.4, 0.5, 0.9])], PROV)
    row = df.set_index("row").loc["P"]
    assert row.kind == "seeded" and row.reproduced == 2.0 and row.n == 3 and row["std"] == 1.0 and row.detectable > 0
    assert row.samples == "1.0;2.0;3.0"
    assert df.set_index("row").loc["T", "kind"] == "timing"
    with pytest.raises(ValueError, match="mean of its samples"):
        Result("P", "s", "m", 5.0, "trained", samples=[1.0, 2.0])


def test_dirty_tree_refused_for_committed_results(monkeypatch):
    from reproduce.engine import provenance
    monkeypatch.setattr(provenance, "git_commit", lambda: "abc1234-dirty")
    with pytest.raises(provenance.DirtyTreeError, match="--allow-dirty"):
        provenance.check_clean(provenance.REPO_ROOT / "results", allow_dirty=False)
    assert provenance.check_clean(provenance.REPO_ROOT / "results", allow_dirty=True) == "abc1234-dirty"
    assert provenance.check_clean("/tmp/elsewhere", allow_dirty=False) == "abc1234-dirty"


def test_a_proxy_row_is_never_compared_with_the_paper():
    published = pd.DataFrame([{"row": "A", "setting": "s", "metric": "Time", "unit": "s", "published": 0.5,
                               "decimals": 2, "better": "lower", "note": ""}])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "load_published", lambda table, directory=None: published)
        df = report.build_table("tx", [Result("A", "s", "Time", 0.2, "timed", status="proxy", samples=[0.2])], PROV)
    row = df.iloc[0]
    assert row.status == "proxy" and row.published == 0.5 and math.isnan(row.delta) and math.isnan(row.rel_delta)
