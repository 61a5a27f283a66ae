"""benchmarks.report: ratios to nn.Conv2d and target checks from a pytest-benchmark JSON."""
import json
from pathlib import Path

import pytest

from benchmarks import report

RESULTS = Path(__file__).resolve().parent.parent / "results"


def _bench(impl, k, mode, median, peak, shape="table6", **extra):
    return {"stats": {"data": [median, median * 1.1, median * 0.9], "median": median, "rounds": 3},
            "extra_info": {"shape": shape, "shape_dims": [1, 256, 100, 100], "k": k, "mode": mode, "impl": impl,
                           "macs": 10**9, "peak_bytes": peak, "threads": 2, "device": "cpu (test)",
                           "torch": "x", "loadavg": "1.0 1.0 1.0 1/1 1", "smoke": False, **extra}}


def test_report_ratios_and_targets(tmp_path):
    benches = []
    for k in (3, 5, 7):
        for mode in ("forward", "forward_backward"):
            benches += [_bench("conv", k, mode, 1.0, 100), _bench("acda_reference", k, mode, 10.0, 1000),
                        _bench("acda_native", k, mode, 0.2 if k == 7 else 0.5, 150 if k == 3 else 300)]
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"benchmarks": benches, "machine_info": {}}))
    frame, _ = report.load(path)
    native = frame[frame["impl"] == "acda_native"].set_index(["k", "mode"])
    assert native.loc[(7, "forward"), "time_vs_conv"] == pytest.approx(0.2)
    assert native.loc[(3, "forward_backward"), "peak_vs_reference"] == pytest.approx(0.15)
    assert frame.loc[frame["mode"] == "forward", "gflops"].iloc[0] == pytest.approx(2.0)
    met = {t["target"]: t["met"] for t in report.targets(frame)}
    assert met["acda_native k=7 forward time ≤ 0.25× nn.Conv2d"] == "yes"
    assert met["acda_native k=5 forward time ≤ 0.40× nn.Conv2d"] == "no"
    assert met["acda_native k=3 forward_backward peak memory ≤ 0.2× reference"] == "yes"
    assert met["acda_native k=7 forward_backward peak memory ≤ 0.2× reference"] == "no"
    assert report.main(["--json", str(path), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "benchmarks-cpu.md").read_text()
    assert "Issue-3 targets" in text and "DFN" in text and (tmp_path / "benchmarks-cpu.csv").exists()


def test_targets_use_the_paired_ratio_where_measured(tmp_path):
    """Separately measured medians say 0.5× (conv ran during a slow spell); back-to-back pairs say 0.2×."""
    benches = [_bench("conv", 7, "forward", 1.0, 100), _bench("acda_reference", 7, "forward", 10.0, 1000),
               _bench("acda_native", 7, "forward", 0.5, 100, paired_ratio_to_conv=0.2, paired_rounds=3)]
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"benchmarks": benches, "machine_info": {}}))
    frame, _ = report.load(path)
    met = {t["target"]: (t["ours"], t["met"]) for t in report.targets(frame)}
    assert met["acda_native k=7 forward time ≤ 0.25× nn.Conv2d"] == (pytest.approx(0.2), "yes")
    assert report.main(["--json", str(path), "--out", str(tmp_path)]) == 0
    assert "× nn.Conv2d (paired)" in (tmp_path / "benchmarks-cpu.md").read_text()


def test_report_rejects_smoke_only_json(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"benchmarks": [{**_bench("conv", 3, "forward", 1.0, 1),
                                                "extra_info": {"smoke": True, "impl": "conv"}}]}))
    with pytest.raises(SystemExit, match="no timed bench_acda results"):
        report.load(path)


def test_written_report_renders_from_its_csv_with_provenance(tmp_path):
    benches = [_bench("conv", 7, "forward", 1.0, 100), _bench("acda_reference", 7, "forward", 10.0, 1000),
               _bench("acda_native", 7, "forward", 0.2, 100, paired_ratio_to_conv=0.2, paired_rounds=3)]
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"benchmarks": benches, "machine_info": {"cpu": {"brand_raw": "Test CPU"}}}))
    assert report.main(["--json", str(path), "--out", str(tmp_path)]) == 0
    frame = report.read(tmp_path / "benchmarks-cpu.csv")
    assert {"commit", "fingerprint", "mkl", "onednn", "cpu", "cores"} <= set(frame.columns)
    assert report.render(frame) == (tmp_path / "benchmarks-cpu.md").read_text()
    assert "Test CPU" in report.render(frame)


def test_committed_benchmarks_regenerate_and_verdicts_follow_from_the_csv():
    """Timings are never compared across runs; what is checked: they were measured at a clean commit, the
    Markdown is the rendering of the CSV, and each target verdict follows from the CSV's ratios."""
    csv = RESULTS / "benchmarks-cpu.csv"
    frame = report.read(csv)
    assert (frame["median_s"] > 0).all() and frame["commit"].nunique() == 1
    assert not frame["commit"].iloc[0].endswith("-dirty")
    md = csv.with_suffix(".md").read_text()
    assert report.render(frame) == md
    for t in report.targets(frame):
        limit = float(t["target"].split("≤ ")[1].split("×")[0])
        assert t["met"] == ("yes" if t["ours"] <= limit else "no"), t
        assert t["target"] in md
