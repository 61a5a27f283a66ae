"""§3.2 memory claim: recomputed from shapes, and the committed results/sec32.csv is current."""
from pathlib import Path

import pandas as pd

from reproduce import sec32
from reproduce.regression import compare_files

RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_filter_elements_from_shapes():
    assert sec32.filter_elements(1) == 100 * 100 * 100 * 100 * 3 * 3
    assert sec32.filter_elements(8) == 8 * sec32.filter_elements(1)


def test_search_finds_gib_and_no_gb_combination():
    hits = sec32.search(26.8, 1)
    assert hits and {h["unit"] for h in hits} == {"GiB"}
    assert {(h["batch"], h["dtype"], h["content"]) for h in hits} >= {(8, "fp32", "gradients only"),
                                                                       (4, "fp32", "filters + gradients")}
    assert dict(batch=1, dtype="fp32", content="gradients only", unit="GB", value=3.6) in sec32.search(3.6, 1)


def test_sec32_matches_committed_results(tmp_path, capsys):
    assert sec32.main(["--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("# §3.2")
    problems = compare_files(tmp_path, RESULTS, "sec32")
    assert problems == [], "\n".join(problems)
    df = pd.read_csv(tmp_path / "sec32.csv").set_index(["row", "setting", "metric"])
    assert df.loc[sec32.KEY, "status"] == "consistent"  # found by a search over unstated settings, not a match
    assert "GiB" in df.loc[sec32.KEY, "note"] and "chosen after the fact" in df.loc[sec32.KEY, "note"]
