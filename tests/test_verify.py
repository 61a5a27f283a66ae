"""``python -m reproduce verify`` fails on each way a committed result can be edited, flipped or quietly
re-recipied: every mutation is applied to a scratch copy of results/ and reproduce/published/."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from reproduce import verify as verify_module
from reproduce.engine.report import PUBLISHED_DIR
from reproduce.recipes import ClassificationProxy
from reproduce.verify import CHECKSUMS, RESULTS, _content_id, checksums, verify


@pytest.fixture
def scratch(tmp_path):
    results, published = tmp_path / "results", tmp_path / "published"
    shutil.copytree(RESULTS, results)
    shutil.copytree(PUBLISHED_DIR, published)
    return results, published


def _problems(scratch) -> list[str]:
    return verify(*scratch)


def _restamp(results: Path, name: str) -> None:
    """What a careful forger does after an edit: make the run id the hash of the new content again."""
    old = json.loads((results / f"{name}.json").read_text(encoding="utf-8"))["run_id"]
    new = _content_id(results, name)
    for suffix in (".csv", ".json", ".md"):
        path = results / f"{name}{suffix}"
        path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def test_committed_results_verify_clean():
    assert verify() == []
    assert (PUBLISHED_DIR / CHECKSUMS).read_text(encoding="utf-8") == checksums()


def test_a_published_number_edited_alone(scratch):
    results, published = scratch
    _edit(published / "table6.csv", ",16386.6,", ",16386.7,")
    problems = _problems(scratch)
    assert any("checksums" in p for p in problems) and any("table6: " in p and "published" in p for p in problems)


def test_a_trained_value_edited_in_every_file_of_a_report(scratch):
    results, _ = scratch
    csv = (results / "table3.csv").read_text(encoding="utf-8")
    value = re.search(r'Ad-ResNet-s,"proxy: [^"]*",MAE,people,,([0-9.]+),', csv).group(1)
    for suffix in (".csv", ".json", ".md"):
        path = results / f"table3{suffix}"
        path.write_text(path.read_text(encoding="utf-8").replace(value, "7.6"), encoding="utf-8")
    assert any(p.startswith("table3: the run id is not the hash") for p in _problems(scratch))


def test_a_finding_flipped_in_json_and_markdown(scratch):
    results, _ = scratch
    for suffix in (".json", ".md"):
        _edit(results / f"table1_quick{suffix}", "significant at 0.05", "NOT significant at 0.05")
    assert any(p.startswith("table1_quick: the run id is not the hash") for p in _problems(scratch))


def _caught_after_restamp(scratch, name: str, says: str) -> None:
    """Restamp report ``name`` as a careful forger would; verify still names it, saying ``says``."""
    _restamp(scratch[0], name)
    problems = _problems(scratch)
    assert any(p.startswith(f"{name}: ") and says in p for p in problems), problems
    assert not any("run id is not the hash" in p for p in problems)


@pytest.mark.parametrize("name, old, new", [
    ("table1_quick", "significant at 0.05", "NOT significant at 0.05"),
    ("tableB_quick", "Proxy ×3 sweep", "Proxy ×3 sweep (edited)"),
    ("figure6_quick", "The claim holds for both layers.", "The claim holds for both layers!"),
    ("figure7_quick", "not significant at 0.05", "significant at 0.05"),
    ("sec32", "254× less.", "354× less."),
    ("table7", "(+1.57 M apart)", "(+1.75 M apart)"),
])
def test_a_finding_edited_and_restamped(scratch, name, old, new):
    """With the run id recomputed, the finding is still not what the per-seed values it cites give."""
    results, _ = scratch
    for suffix in (".json", ".md"):
        _edit(results / f"{name}{suffix}", old, new)
    _caught_after_restamp(scratch, name, "is not what its rows give")


def _double_a_counted_row(results: Path, name: str = "table4", metric: str = "GFLOPs/MP") -> None:
    """The first counted (or analytic) ``metric`` value of report ``name``, doubled in the CSV."""
    text = (results / f"{name}.csv").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines()
               if f",{metric}," in line and (",counted," in line or ",analytic," in line))
    number = next(csv.DictReader([text.splitlines()[0], row]))["reproduced"]
    _edit(results / f"{name}.csv", row, row.replace(f",{number},", f",{float(number) * 2:.10g},", 1))


@pytest.mark.parametrize("name, metric", [("table4", "GFLOPs/MP"), ("table7", "Params"), ("sec32", "Memory")])
def test_a_counted_row_edited_and_restamped(scratch, name, metric):
    results, _ = scratch
    _double_a_counted_row(results, name, metric)
    _caught_after_restamp(scratch, name, "counted now")


def test_a_counted_row_of_a_full_report_edited(scratch):
    results, _ = scratch
    _double_a_counted_row(results)
    assert any(p.startswith("table4: the run id is not the hash") for p in _problems(scratch))


def test_a_status_flipped_and_restamped(scratch):
    """Even with the run id recomputed, a status the numbers do not give is caught."""
    results, _ = scratch
    text = (results / "table6.csv").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if ",match," in line)
    _edit(results / "table6.csv", row, row.replace(",match,", ",better,"))
    _restamp(results, "table6")
    problems = _problems(scratch)
    assert any("status 'better', the numbers give 'match'" in p for p in problems)
    assert not any("run id is not the hash" in p for p in problems)


def test_a_published_typo_carried_into_regenerated_results(scratch):
    """The typo is in published/ and in a report that a clean regeneration would write: the checksums fail."""
    results, published = scratch
    _edit(published / "table6.csv", ",16386.6,", ",16368.6,")
    _edit(results / "table6.csv", ",16386.6,", ",16368.6,")
    _restamp(results, "table6")
    assert any("differ from their checksums" in p for p in _problems(scratch))


def test_a_quick_recipe_changed_without_regenerating(scratch, monkeypatch):
    presets = {**ClassificationProxy.PRESETS, "quick": {**ClassificationProxy.PRESETS["quick"], "lr": 0.1}}
    monkeypatch.setattr(ClassificationProxy, "PRESETS", presets)
    problems = _problems(scratch)
    assert any(p.startswith("table1_quick: recipe 'proxy' changed") and "fields lr" in p for p in problems)
    assert any(p.startswith("a5_quick: recipe 'proxy' changed") for p in problems)


def test_the_command_exits_nonzero_with_one_line_per_problem(scratch, capsys):
    results, _ = scratch
    _edit(results / "sec32.md", "# ", "#  ")
    assert verify_module.main(["--results", str(results)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["sec32: the Markdown is not the rendering of the CSV and JSON"]
