"""pytest-benchmark timings of one layer: nn.Conv2d vs ACDAConv2d (reference backend).

    tox -e bench                                   # timed, JSON in .benchmarks/
    pytest benchmarks                              # CI: --benchmark-disable, correctness smoke only

Shapes are small here so that the smoke run stays fast; the Table 6 and ResNet-stage shapes and
the fast backends are in ``bench_acda.py``. ``extra_info`` records FLOPs, peak memory, threads and device.
"""
from __future__ import annotations

import platform

import pandas as pd
import pytest
import torch
from torch import nn

from acda import ACDAConv2d
from acda.profile import count_flops, peak_memory

SHAPE = (1, 64, 32, 32)


def _layer(kind: str, k: int) -> nn.Module:
    if kind == "conv":
        return nn.Conv2d(64, 64, k, padding=k // 2)
    return ACDAConv2d(64, 64, k, padding=k // 2, backend="reference")


@pytest.mark.parametrize("k", [3, 7])
@pytest.mark.parametrize("kind", ["conv", "acda"])
@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
def test_layer_time(benchmark, kind, k, mode):
    torch.manual_seed(0)
    layer = _layer(kind, k)
    x = torch.randn(*SHAPE, requires_grad=mode == "forward_backward")

    def run():
        if mode == "forward":
            with torch.no_grad():
                return layer(x)
        out = layer(x)
        out.sum().backward()
        return out

    benchmark.extra_info.update(
        flops=count_flops(layer.eval(), x.detach()).total,
        peak_bytes=peak_memory(run),
        threads=torch.get_num_threads(),
        device=f"cpu ({platform.machine()})",
        torch=torch.__version__,
    )
    layer.train()
    out = benchmark(run)
    assert out.shape == (1, 64, 32, 32)


def test_breakdown_writes_its_report(tmp_path, monkeypatch):
    """``python -m benchmarks.breakdown`` end to end at a tiny shape and budget (a smoke test, not a timing)."""
    from benchmarks import breakdown

    monkeypatch.setattr(breakdown, "SHAPE", (1, 8, 12, 12))
    monkeypatch.setattr(breakdown, "machine_limits",
                        lambda seconds: {"onednn GMAC/s": 1.0, "mkl GMAC/s": 1.0, "bandwidth GB/s": 1.0})
    assert breakdown.main(["--threads", "1", "--seconds", "0.001", "--rounds", "3", "--out", str(tmp_path),
                           "--allow-dirty"]) == 0
    df = pd.read_csv(tmp_path / "benchmarks-breakdown-cpu.csv")
    assert list(df["k"]) == [3, 5, 7] and (df["layer ms"] > 0).all() and df["fingerprint"].notna().all()
    text = (tmp_path / "benchmarks-breakdown-cpu.md").read_text(encoding="utf-8")
    assert text.count("- k = ") == 3 and "floors" in text and "best multiply-add rate" in text
    assert "oneDNN against MKL, paired" in text and set(df["onednn wins forward"].str.split("/").str[1]) == {"3"}
    assert df["p Holm forward+backward"].between(0, 1).all()
