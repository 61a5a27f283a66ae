"""§3.2 memory claim: recomputed from shapes, and the committed results/sec32.csv is current."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from reproduce import sec32
from reproduce.engine import report
from reproduce.engine.regression import compare_files

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


def test_device_cuda_without_cuda_is_refused_cleanly(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        sec32.main(["--device", "cuda"])
    assert exc.value.code == 2
    assert "--device cuda requested but CUDA is not available" in capsys.readouterr().err


def test_device_cuda_adds_measured_rows(tmp_path, monkeypatch, capsys):
    """The CUDA path is selected by --device cuda (CUDA faked; the measurement stubbed) and its rows are
    added to the shape-derived ones, which stay as committed."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(report, "fingerprint", lambda device="cpu": {
        "device": "Fake GPU", "isa": "x", "torch": torch.__version__, "mkl": "-", "onednn": "-", "fingerprint": "f"})
    calls = []

    def fake_rows(device, batch):
        calls.append((device.type, batch))
        return [report.Result("ACDA two-layer: forward+backward peak (measured)", f"N={batch}, fp32, cuda", "Memory",
                              12.5, "timed", status="reproduced here", unit="MiB", note="MEASURED on Fake GPU")], \
            ["measured finding"]

    monkeypatch.setattr(sec32, "measured_rows", fake_rows)
    assert sec32.main(["--device", "cuda", "--out", str(tmp_path)]) == 0
    assert calls == [("cuda", 8)]  # the batch of the setting the search shows
    df = pd.read_csv(tmp_path / "sec32.csv").set_index(["row", "setting", "metric"])
    committed = pd.read_csv(RESULTS / "sec32.csv").set_index(["row", "setting", "metric"])
    assert set(committed.index) < set(df.index)
    row = df.loc[("ACDA two-layer: forward+backward peak (measured)", "N=8, fp32, cuda", "Memory")]
    assert row["reproduced"] == 12.5 and row["kind"] == "timing" and row["status"] == "reproduced here"
    assert "measured finding" in capsys.readouterr().out


def test_measure_on_a_small_layer(monkeypatch):
    """``measure`` on CPU at a small size: the per-pixel path holds K and its gradient, the two-layer path far less."""
    for name, value in (("C_OUT", 32), ("C_IN", 32), ("HEIGHT", 8), ("WIDTH", 7)):
        monkeypatch.setattr(sec32, name, value)
    k_bytes = sec32.filter_elements(2) * 4
    per_pixel = sec32.measure("per-pixel", 2, torch.device("cpu"))
    assert per_pixel >= 2 * k_bytes
    assert sec32.measure("two-layer", 2, torch.device("cpu")) < per_pixel
