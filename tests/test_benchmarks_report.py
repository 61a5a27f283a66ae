"""benchmarks.report: ratios to nn.Conv2d and target checks from pytest-benchmark JSONs (CPU and CUDA)."""
import json
from pathlib import Path

import pytest
import torch

from benchmarks import bench_acda, report

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
    assert "Atom-convolution targets" in text and "DFN" in text and (tmp_path / "benchmarks-cpu.csv").exists()


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
    with pytest.raises(SystemExit, match="no timed bench_acda or bench_triton results"):
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
        assert t["met"] == ("not run" if t["ours"] != t["ours"] else "yes" if t["ours"] <= limit else "no"), t
        assert t["target"] in md


def _cpu_run_with_whole_layer(layer_paired: dict[int, float]) -> list[dict]:
    """conv, reference, native (atoms given) and the whole layer at k ∈ {3, 5, 7}, both modes."""
    benches = []
    for k in (3, 5, 7):
        for mode in ("forward", "forward_backward"):
            benches += [_bench("conv", k, mode, 1.0, 100), _bench("acda_reference", k, mode, 10.0, 1000),
                        _bench("acda_native", k, mode, 0.1, 50, paired_ratio_to_conv=0.1, paired_rounds=3),
                        _bench("acda_layer", k, mode, layer_paired[k] * 1.2, 80,
                               paired_ratio_to_conv=layer_paired[k], paired_rounds=3)]
    return benches


def test_whole_layer_targets_beside_the_atoms_given_ones(tmp_path):
    """Whole-layer CPU targets: the whole ACDAConv2d judged on its paired ratio (k=5 not met here), the
    atom-convolution targets kept."""
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"benchmarks": _cpu_run_with_whole_layer({3: 0.85, 5: 0.40, 7: 0.20}),
                                "machine_info": {}}))
    frame, _ = report.load(path)
    met = {t["target"]: (t["group"], t["ours"], t["met"]) for t in report.targets(frame)}
    assert met["acda_layer k=7 forward time ≤ 0.22× nn.Conv2d"] == ("layer-cpu", pytest.approx(0.2), "yes")
    assert met["acda_layer k=7 forward_backward time ≤ 0.22× nn.Conv2d"][2] == "yes"
    assert met["acda_layer k=5 forward time ≤ 0.33× nn.Conv2d"] == ("layer-cpu", pytest.approx(0.4), "no")
    assert met["acda_layer k=3 forward_backward time ≤ 0.90× nn.Conv2d"][2] == "yes"
    assert met["acda_native k=7 forward time ≤ 0.25× nn.Conv2d"] == ("atoms", pytest.approx(0.1), "yes")
    assert sum(t[0] == "layer-cpu" for t in met.values()) == 6 and sum(t[0] == "atoms" for t in met.values()) == 9
    assert report.main(["--json", str(path), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "benchmarks-cpu.md").read_text()
    assert md == report.render(report.read(tmp_path / "benchmarks-cpu.csv"))
    section = md.split("## table6 (1×256×100×100), k=7, forward\n")[1].split("\n## ")[0]
    assert "| acda_native " in section and "| acda_layer " in section  # the two kinds of row side by side
    assert "## Atom-convolution targets (atoms given, Table 6 shape)" in md and "Met: 9 of 9." in md
    assert "## Whole-layer targets on CPU (Table 6 shape, fp32, 2 threads)" in md
    assert "Met: 4 of 6." in md and "generator Φ included" in md


def test_whole_layer_targets_not_run_and_other_thread_counts_are_said(tmp_path):
    benches = [b for b in _cpu_run_with_whole_layer({3: 0.5, 5: 0.3, 7: 0.2})
               if not (b["extra_info"]["impl"] == "acda_layer" and b["extra_info"]["k"] == 3)]
    for b in benches:
        b["extra_info"]["threads"] = 4
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"benchmarks": benches, "machine_info": {}}))
    frame, _ = report.load(path)
    met = {t["target"]: t["met"] for t in report.targets(frame)}
    assert met["acda_layer k=3 forward time ≤ 0.90× nn.Conv2d"] == "not run"
    assert report.main(["--json", str(path), "--out", str(tmp_path)]) == 0
    assert "Judged on this run's 4 threads (the targets are set at 2: not comparable)." in \
        (tmp_path / "benchmarks-cpu.md").read_text()


GPU = "NVIDIA H200"
PROVENANCE = {"mkl": "2024.2", "onednn": "3.12.0", "fingerprint": "feedfacecafe", "cuda": "13.0"}


def _gpu_bench(impl, dtype, k, mode, median, peak, shape="table6", **extra):
    bench = _bench(impl, k, mode, median, peak, shape, suite="triton", dtype=dtype, device=GPU,
                   provenance=PROVENANCE, **extra)
    bench["extra_info"]["shape_dims"] = [32, 256, 100, 100] if shape == "table6" else [32, 256, 56, 56]
    return bench


def _gpu_run(tmp_path) -> Path:
    """A synthetic bench_triton JSON: TF32 meets every target; bf16 misses k=7 forward+backward time
    (0.6 > 0.5) and k=3 memory (0.3 > 0.2)."""
    benches = []
    for shape in ("table6", "resnet_stage"):
        for dtype in ("tf32", "bf16"):
            for k in (3, 5, 7):
                for mode in ("forward", "forward_backward"):
                    slow = dtype == "bf16" and k == 7 and mode == "forward_backward"
                    layer_peak = 300 if dtype == "bf16" and k == 3 else 100
                    benches += [_gpu_bench("conv", dtype, k, mode, 1.0, 50, shape),
                                _gpu_bench("triton_atom", dtype, k, mode, 0.1, 60, shape,
                                           paired_ratio_to_conv=0.1, paired_rounds=3),
                                _gpu_bench("acda_layer", dtype, k, mode, 0.6 if slow else 0.3, layer_peak, shape,
                                           paired_ratio_to_conv=0.6 if slow else 0.3, paired_rounds=3)]
                    if mode == "forward_backward":
                        benches.append(_gpu_bench("acda_layer_reference", dtype, k, mode, 5.0, 1000, shape))
    path = tmp_path / "triton.json"
    path.write_text(json.dumps({"benchmarks": benches, "machine_info": {"cpu": {"brand_raw": "Host CPU"}}}))
    return path


def test_cuda_report_from_bench_triton_json(tmp_path):
    path = _gpu_run(tmp_path)
    frame, _ = report.load(path)
    layer = frame[(frame["impl"] == "acda_layer") & (frame["shape"] == "table6")].set_index(["dtype", "k", "mode"])
    assert layer.loc[("tf32", 7, "forward_backward"), "peak_vs_reference"] == pytest.approx(0.1)
    assert layer.loc[("bf16", 3, "forward"), "peak_vs_reference"] != layer.loc[("bf16", 3, "forward"), "peak_vs_reference"]
    met = {t["target"]: (t["group"], t["ours"], t["met"]) for t in report.targets(frame)}
    assert set(t[0] for t in met.values()) == {"layer-gpu"} and len(met) == 2 * (2 + 3)
    assert met["acda_layer tf32 k=7 forward time ≤ 0.35× cuDNN nn.Conv2d"] == ("layer-gpu", pytest.approx(0.3), "yes")
    assert met["acda_layer bf16 k=7 forward_backward time ≤ 0.50× cuDNN nn.Conv2d"][1:] == (pytest.approx(0.6), "no")
    assert met["acda_layer tf32 k=7 forward_backward peak memory ≤ 0.2× reference layer"][2] == "yes"
    assert met["acda_layer bf16 k=3 forward_backward peak memory ≤ 0.2× reference layer"][1:] == (
        pytest.approx(0.3), "no")
    assert report.main(["--json", str(path), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "benchmarks-cuda.md").read_text()
    csv = report.read(tmp_path / "benchmarks-cuda.csv")
    assert report.render(csv) == md  # rendered from the CSV alone
    assert (csv["fingerprint"] == "feedfacecafe").all() and (csv["device"] == GPU).all()  # recorded where it ran
    assert md.startswith(f"# Benchmarks: ACDA atom convolution backends vs nn.Conv2d ({GPU})")
    assert "CUDA 13.0" in md and "## CUDA resnet_stage (32×256×56×56), bf16, k=5, forward" in md
    assert "## Whole-layer targets on GPU, Triton backend (Table 6 shape, N=32)" in md
    assert "Met: 8 of 10." in md and "Atom-convolution targets" not in md and "DFN" not in md


def test_cuda_report_combines_bench_triton_and_bench_acda_jsons(tmp_path):
    triton = _gpu_run(tmp_path)
    acda = tmp_path / "acda.json"
    acda.write_text(json.dumps({"benchmarks": [
        _bench(impl, 7, "forward", median, peak, device=GPU, provenance=PROVENANCE)
        for impl, median, peak in (("conv", 1.0, 10), ("acda_reference", 3.0, 100), ("acda_triton", 0.5, 20))]}))
    assert report.main(["--json", str(triton), str(acda), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "benchmarks-cuda.md").read_text()
    assert "`benchmarks/bench_triton.py`, `benchmarks/bench_acda.py`" in md
    assert "## table6 (1×256×100×100), k=7, forward" in md and "Atom-convolution targets" not in md  # CPU targets only on CPU
    with pytest.raises(SystemExit, match="one report per device"):
        report.main(["--json", str(triton), str(_write_cpu_json(tmp_path)), "--out", str(tmp_path)])


def _write_cpu_json(tmp_path) -> Path:
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({"benchmarks": [_bench("conv", 7, "forward", 1.0, 10)]}))
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_json_without_provenance_is_refused_without_cuda(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"benchmarks": [_bench("conv", 7, "forward", 1.0, 10, device=GPU)]}))
    with pytest.raises(SystemExit, match="records no provenance and this machine has no CUDA"):
        report.main(["--json", str(path), "--out", str(tmp_path)])


def test_bench_helpers():
    assert bench_acda.backend_of("acda_native") == "native" and bench_acda.backend_of("acda_layer") is None
    assert bench_acda.backend_of("conv") is None
    assert bench_acda._rounds(0.1, budget=0.2) == 3 and bench_acda._rounds(0.01, budget=0.05) == 5  # 3 at least
    assert bench_acda._rounds(0.001) == 15 and bench_acda._rounds(30.0) == 1
    layer = bench_acda.whole_layer(16, 7, device="meta")
    assert layer.backend == "auto" and layer.generator.num_basis_elements == 18
    assert bench_acda.layer_macs(layer, 10, 10) > bench_acda.closed_form("acda_conv", 16, 16, 7, 10, 10)["flops"]


def test_breakdown_times_at_torchs_thread_count(monkeypatch):
    """``torch.utils.benchmark.Timer`` defaults to one thread; the breakdown times at the count it was asked for."""
    import torch

    from benchmarks import breakdown

    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        breakdown.median_seconds(lambda: seen.append(torch.get_num_threads()), 0.01)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {2}


@pytest.mark.parametrize("impl", ["conv", "acda_native", bench_acda.LAYER])
def test_forward_macs_count_every_image_of_the_batch(impl):
    """The GFLOP/s column divides these counts: a batch of N images is N times one image, and the whole-layer and
    convolution counts equal fvcore's count of the modules (acda.profile.count_flops)."""
    one, two = (bench_acda.forward_macs(impl, (n, 8, 6, 5), 3) for n in (1, 2))
    assert two == 2 * one > 0
    from acda.profile import count_flops

    x = torch.randn(2, 8, 6, 5)
    if impl == "conv":
        assert two == count_flops(torch.nn.Conv2d(8, 8, 3, padding=1), (x,)).total
    elif impl == bench_acda.LAYER:
        assert two == count_flops(bench_acda.whole_layer(8, 3), (x,)).total
