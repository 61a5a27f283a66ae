"""results/README.md is generated from the committed reports and kept up to date."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from reproduce import index

ROOT = Path(__file__).resolve().parent.parent


def test_committed_index_is_current():
    assert (ROOT / "results" / "README.md").read_text() == index.build_index(), \
        "results/README.md is stale: run python -m reproduce.index"
    assert index.main(["--check"]) == 0


def test_index_follows_the_reports(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    assert index.main(["--check", "--results", str(results)]) == 0
    df = pd.read_csv(results / "table6.csv")
    df.loc[df["status"] == "mismatch", "status"] = "match"  # a hand edit of the statuses
    df.to_csv(results / "table6.csv", index=False)
    assert index.main(["--check", "--results", str(results)]) == 1
    row = next(line for line in index.build_index(results).splitlines() if "[table6](table6.md)" in line)
    statuses = index._statuses([df])
    assert row.split(" | ")[3 + statuses.index("match")] == str((df["status"] == "match").sum())
    assert index.main(["--results", str(results)]) == 0
    assert index.main(["--check", "--results", str(results)]) == 0


def test_findings_are_quoted_only_when_they_state_a_statistic():
    text = index.build_index()
    quoted = [line[2:] for line in text.splitlines() if line.startswith("- ")]
    assert quoted and all(index._STATISTIC.search(q) for q in quoted)


def test_readme_points_at_the_index():
    assert "results/README.md" in (ROOT / "README.md").read_text()


def test_readme_is_short_and_types_no_result():
    """Numbers of results live in the reports and their index, not in README.md."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 140
    assert "±" not in text and "p = " not in text
