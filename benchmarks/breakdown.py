"""Where the whole layer's CPU time goes, against this machine's measured limits (paper §3.2, Table 6 shape).

For k = 3, 5, 7 at Table 6's shape (1×256×100×100, m = 6, fp32), timed in one run with
``torch.utils.benchmark`` (medians of blocked runs): ``nn.Conv2d`` k×k, the whole ``ACDAConv2d`` forward,
its parts (the generator Φ → α; the fused α op on that α), and the op's coefficient GEMM alone at the op's
total shape (O × C·m times C·m × H·W, ``torch.mm``: ATen's mm, the GEMM every tile calls). Limits measured the
same way: a large square SGEMM (oneDNN's convolution gives the best rate of the run) and a large copy (bandwidth). The floor of the layer is its GEMM's multiply-adds at a
rate plus the generator as measured (everything else free), as a ratio to ``nn.Conv2d``: at the op's
GEMM rate and at the best rate any kernel of the run reached, next to the targets.

    python -m benchmarks.breakdown [--threads 2] [--seconds 1.0] [--out results/]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd
import torch
import torch.utils.benchmark as tb
from torch import nn

from acda import ACDAConv2d, functional
from acda.utils import atomic_write_many

SHAPE = (1, 256, 100, 100)
NUM_ATOMS = 6
TARGETS = {3: 0.90, 5: 0.33, 7: 0.22}  # whole-layer forward targets, × nn.Conv2d


def median_seconds(fn, seconds: float) -> float:
    """Median time of ``fn()`` (``torch.utils.benchmark.Timer.blocked_autorange``, at least ``seconds``) at torch's
    current thread count (``Timer`` would otherwise time one thread)."""
    fn()
    timer = tb.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=seconds).median


def machine_limits(seconds: float) -> dict[str, float]:
    """Multiply-adds per second of a 2048³ SGEMM (``torch.mm``, the op's tile GEMM) and bytes per second of a
    256 MiB copy (read + write)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    gemm = median_seconds(lambda: torch.mm(a, b), seconds)
    src = torch.empty(64 * 2 ** 20)
    dst = torch.empty_like(src)
    copy = median_seconds(lambda: dst.copy_(src), seconds)
    return {"peak_gmacs": 2048 ** 3 / gemm / 1e9, "bandwidth_gbs": 2 * src.numel() * 4 / copy / 1e9}


def measure(k: int, seconds: float) -> dict[str, float]:
    """Times (ms) and multiply-adds of the parts of one forward at kernel size ``k``."""
    n, c, h, w = SHAPE
    x = torch.randn(*SHAPE)
    conv = nn.Conv2d(c, c, k, padding=k // 2)
    layer = ACDAConv2d(c, c, k, padding=k // 2, num_atoms=NUM_ATOMS, generator="paper").eval()
    with torch.no_grad():
        size = layer._check_input(x)
        plan = functional._plan(layer.backend, x.device, x.dtype, layer.stride, layer.padding, layer.dilation)
        xl = functional.to_channels_last(x) if plan.backend.memory_format == torch.channels_last else x
        alpha = layer.generator(xl, size, reconstruct=False)
        bases = layer.generator.bases.to(alpha.dtype)
        a = layer.coef.reshape(c, c * NUM_ATOMS).contiguous()
        z = torch.randn(c * NUM_ATOMS, h * w)
        times = {
            "conv": median_seconds(lambda: conv(x), seconds),
            "layer": median_seconds(lambda: layer(x), seconds),
            "generator": median_seconds(lambda: layer.generator(xl, size, reconstruct=False), seconds),
            "fused_op": median_seconds(lambda: functional._run(plan, xl, layer.coef, layer.bias, alpha=alpha,
                                                               bases=bases), seconds),
            "gemm": median_seconds(lambda: torch.mm(a, z), seconds),
        }
    macs = {"conv": c * c * k * k * h * w, "gemm": c * c * NUM_ATOMS * h * w,
            "atom_pass": c * NUM_ATOMS * k * k * h * w}
    return {**{f"{key}_ms": 1e3 * v for key, v in times.items()}, **{f"{key}_macs": v for key, v in macs.items()}}


def rows(limits: dict[str, float], seconds: float) -> pd.DataFrame:
    """One row per kernel size: times, shares, rates and the two floors (module docstring)."""
    measured = {k: measure(k, seconds) for k in TARGETS}
    sgemm = limits["peak_gmacs"] * 1e9
    best = max([sgemm] + [m["conv_macs"] / (m["conv_ms"] / 1e3) for m in measured.values()])
    out = []
    for k, m in measured.items():
        conv = m["conv_ms"]
        rest = m["fused_op_ms"] - m["gemm_ms"]  # ≤ 0: the op's per-tile GEMMs beat the one large GEMM (in cache)
        out.append({
            "k": k, "conv ms": conv, "layer ms": m["layer_ms"], "layer × conv": m["layer_ms"] / conv,
            "target × conv": TARGETS[k],
            "generator share": m["generator_ms"] / m["layer_ms"], "fused op share": m["fused_op_ms"] / m["layer_ms"],
            "GEMM alone ms": m["gemm_ms"], "GEMM share of the op": m["gemm_ms"] / m["fused_op_ms"],
            "GEMM × its 2048³ rate": m["gemm_macs"] / (m["gemm_ms"] / 1e3) / sgemm,
            "conv GMAC/s": m["conv_macs"] / (conv / 1e3) / 1e9,
            "floor × conv (GEMM rate)": (1e3 * m["gemm_macs"] / sgemm + m["generator_ms"]) / conv,
            "floor × conv (best rate)": (1e3 * m["gemm_macs"] / best + m["generator_ms"]) / conv,
            "rest of the op ms": rest,
            "atom pass GMAC/s (rest)": m["atom_pass_macs"] / rest / 1e6 if rest > 0 else math.nan,
            "best GMAC/s": best / 1e9,
        })
    return pd.DataFrame(out)


def render(df: pd.DataFrame, limits: dict[str, float], provenance: dict[str, str], threads: int) -> str:
    best = df["best GMAC/s"].iloc[0]
    lines = [f"# Whole-layer CPU time against this machine's limits (Table 6 shape, fp32, {threads} threads)", "",
             f"Machine: {provenance['device']} · ISA {provenance['isa']} · torch {provenance['torch']} (MKL "
             f"{provenance['mkl']}, oneDNN {provenance['onednn']}) · commit {provenance['commit']}. Measured: the op's "
             f"tile GEMM (ATen's mm, MKL) {limits['peak_gmacs']:.1f} GMAC/s at 2048³, best multiply-add rate of the run "
             f"{best:.1f} GMAC/s, copy {limits['bandwidth_gbs']:.1f} GB/s (256 MiB). Forward pass; times are "
             "medians (`torch.utils.benchmark`), ratios are to `nn.Conv2d` k×k in this run. 'GEMM alone' is the "
             "op's coefficient contraction at its total shape (`torch.mm`); a floor is that GEMM at a rate plus "
             "the generator as measured, everything else free. Written by `python -m benchmarks.breakdown`.",
             "", df.drop(columns=[c for c in df.columns if c in provenance or c in limits or c == "best GMAC/s"])
             .to_markdown(index=False, floatfmt=".3g"), ""]
    for r in df.to_dict("records"):
        target, mkl, fast = r["target × conv"], r["floor × conv (GEMM rate)"], r["floor × conv (best rate)"]
        reach = ("within reach with this GEMM" if mkl <= target else
                 "within reach only with a GEMM at the best rate" if fast <= target else "out of reach on this machine")
        lines.append(f"- k = {r['k']}: the layer runs at {r['layer × conv']:.3f}× `nn.Conv2d` (target {target:.2f}×); "
                     f"floors {mkl:.3f}× (GEMM rate) and {fast:.3f}× (best rate): {reach}. The GEMM alone runs at "
                     f"{r['GEMM × its 2048³ rate']:.0%} of its 2048³ rate and is {r['GEMM share of the op']:.0%} of the "
                     f"op's time; the generator is {r['generator share']:.0%} of the layer's.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s: the targets')")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timing budget per part (default %(default)s)")
    parser.add_argument("--out", default="results", help="folder of benchmarks-breakdown-cpu.{csv,md} (default %(default)s)")
    parser.add_argument("--allow-dirty", action="store_true", help="write results/ from a tree with uncommitted changes")
    args = parser.parse_args(argv)
    if args.threads < 1 or not math.isfinite(args.seconds) or args.seconds <= 0:
        parser.error("--threads must be ≥ 1 and --seconds > 0")
    torch.set_num_threads(args.threads)
    from reproduce.engine.provenance import check_clean, fingerprint

    provenance = {**fingerprint("cpu"), "commit": check_clean(args.out, args.allow_dirty)}
    limits = machine_limits(args.seconds)
    df = rows(limits, args.seconds)
    for key, value in {**limits, **provenance}.items():
        df[key] = value
    out = Path(args.out)
    atomic_write_many({out / "benchmarks-breakdown-cpu.csv": df.to_csv(index=False, float_format="%.6g"),
                       out / "benchmarks-breakdown-cpu.md": render(df, limits, provenance, args.threads)})
    print((out / "benchmarks-breakdown-cpu.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
