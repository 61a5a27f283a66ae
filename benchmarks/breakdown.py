"""Where the whole layer's CPU time goes, against this machine's measured limits (paper §3.2, Table 6 shape).

For k = 3, 5, 7 at Table 6's shape (1×256×100×100, m = 6, fp32), timed in one run with
``torch.utils.benchmark`` (medians of blocked runs, in five passes over the parts; the median pass): ``nn.Conv2d`` k×k, the whole ``ACDAConv2d`` forward,
its parts (the generator Φ → α; the fused α op on that α), and the op's coefficient GEMM alone at the op's
total shape (H·W × C·m times C·m × O) with each library the op can multiply its tiles with
(``acda.ops.native.tile_gemm``: oneDNN, the default, and MKL through ATen's mm). Limits measured the same way:
a 2048³ SGEMM with each library, the best multiply-add rate of the run (often oneDNN's convolution) and a large
copy (bandwidth). The floor of the layer is its GEMM's multiply-adds at a rate plus the generator as measured
(everything else free), as a ratio to ``nn.Conv2d``: at the tile library's 2048³ rate and at the best rate.

The tile library's effect is measured paired: in each of ``--rounds`` rounds the whole layer runs once with
oneDNN tiles and once with MKL tiles (order alternating), forward and forward+backward; the report gives the
median time ratio, the rounds oneDNN won, and a two-sided sign test, Holm-corrected over the six comparisons.

    python -m benchmarks.breakdown [--threads 2] [--seconds 1.0] [--rounds 25] [--out results/]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import torch.utils.benchmark as tb
from scipy import stats
from torch import nn

from acda import ACDAConv2d, functional
from acda.ops import native
from acda.utils import atomic_write_many

SHAPE = (1, 256, 100, 100)
NUM_ATOMS = 6
TARGETS = {3: 0.90, 5: 0.33, 7: 0.22}  # whole-layer forward targets, × nn.Conv2d
TILE = "onednn"  # the op's default tile library, the rate its floor is computed at
MODES = ("forward", "forward+backward")


def median_seconds(fn, seconds: float) -> float:
    """Median time of ``fn()`` (``torch.utils.benchmark.Timer.blocked_autorange``, at least ``seconds``) at torch's
    current thread count (``Timer`` would otherwise time one thread)."""
    fn()
    timer = tb.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=seconds).median


def interleaved_medians(fns: dict[str, object], seconds: float, rounds: int = 5) -> dict[str, float]:
    """``median_seconds`` of each of ``fns``, measured in ``rounds`` round-robin passes of ``seconds / rounds`` each;
    per function the median over passes, so that a slow phase of the machine spoils at most one pass of every
    function rather than the whole measurement of one."""
    passes = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            passes[name].append(median_seconds(fn, seconds / rounds))
    return {name: statistics.median(values) for name, values in passes.items()}


def product(library: str, rows: torch.Tensor, w: torch.Tensor):
    """``rows @ w.T`` by ``library`` as the op's tiles call it: oneDNN's linear or ATen's mm (MKL)."""
    if library == "onednn":
        return lambda: torch.ops.mkldnn._linear_pointwise(rows, w, None, "none", [], "")
    return lambda: torch.mm(rows, w.t())


def machine_limits(seconds: float) -> dict[str, float]:
    """Multiply-adds per second of a 2048³ SGEMM with each tile library and bytes per second of a 256 MiB copy
    (read + write)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    times = interleaved_medians({lib: product(lib, a, b) for lib in native.TILE_GEMMS}, seconds)
    rates = {f"{lib} GMAC/s": 2048 ** 3 / t / 1e9 for lib, t in times.items()}
    src = torch.empty(64 * 2 ** 20)
    dst = torch.empty_like(src)
    copy = median_seconds(lambda: dst.copy_(src), seconds)
    return {**rates, "bandwidth GB/s": 2 * src.numel() * 4 / copy / 1e9}


def _layer(k: int) -> tuple[nn.Module, ACDAConv2d, torch.Tensor]:
    c = SHAPE[1]
    conv = nn.Conv2d(c, c, k, padding=k // 2)
    layer = ACDAConv2d(c, c, k, padding=k // 2, num_atoms=NUM_ATOMS, generator="paper")
    return conv, layer, torch.randn(*SHAPE)


def measure(k: int, seconds: float) -> dict[str, float]:
    """Times (ms) and multiply-adds of the parts of one forward at kernel size ``k`` (tiles on ``TILE``)."""
    n, c, h, w = SHAPE
    conv, layer, x = _layer(k)
    layer.eval()
    with torch.no_grad(), native.tile_gemm(TILE):
        size = layer._check_input(x)
        plan = functional._plan(layer.backend, x.device, x.dtype, layer.stride, layer.padding, layer.dilation)
        xl = functional.to_channels_last(x) if plan.backend.memory_format == torch.channels_last else x
        alpha = layer.generator(xl, size, reconstruct=False)
        bases = layer.generator.bases.to(alpha.dtype)
        a = layer.coef.reshape(c, c * NUM_ATOMS).contiguous()
        z = torch.randn(h * w, c * NUM_ATOMS)
        times = interleaved_medians({
            "conv": lambda: conv(x),
            "layer": lambda: layer(x),
            "generator": lambda: layer.generator(xl, size, reconstruct=False),
            "fused_op": lambda: functional._run(plan, xl, layer.coef, layer.bias, alpha=alpha, bases=bases),
            **{f"gemm_{lib}": product(lib, z, a) for lib in native.TILE_GEMMS},
        }, seconds)
    macs = {"conv": c * c * k * k * h * w, "gemm": c * c * NUM_ATOMS * h * w,
            "atom_pass": c * NUM_ATOMS * k * k * h * w}
    return {**{f"{key}_ms": 1e3 * v for key, v in times.items()}, **{f"{key}_macs": v for key, v in macs.items()}}


def paired_tile_gemm(k: int, backward: bool, rounds: int) -> list[float]:
    """Per round, time(whole layer with oneDNN tiles) / time(with MKL tiles), the two run back to back in
    alternating order so that drift in the machine's speed cancels."""
    _, layer, x = _layer(k)
    x.requires_grad_(backward)
    grad = torch.randn(SHAPE[0], layer.out_channels, *SHAPE[2:])

    def once(library: str) -> float:
        with native.tile_gemm(library), torch.set_grad_enabled(backward):
            start = time.perf_counter()
            out = layer(x)
            if backward:
                out.backward(grad)
            return time.perf_counter() - start

    once("onednn"), once("mkl")  # warm-up
    ratios = []
    for r in range(rounds):
        order = ("onednn", "mkl") if r % 2 == 0 else ("mkl", "onednn")
        t = {lib: once(lib) for lib in order}
        ratios.append(t["onednn"] / t["mkl"])
    return ratios


def sign_test(ratios: list[float]) -> float:
    """Two-sided sign test that a ratio is as likely below 1 as above (ties dropped)."""
    wins, losses = sum(r < 1 for r in ratios), sum(r > 1 for r in ratios)
    return stats.binomtest(wins, wins + losses).pvalue if wins + losses else 1.0


def rows(limits: dict[str, float], seconds: float, rounds: int) -> pd.DataFrame:
    """One row per kernel size: times, shares, rates, the two floors and the paired tile-library comparison."""
    from reproduce.engine.stats import holm

    measured = {k: measure(k, seconds) for k in TARGETS}
    tile_rate = limits[f"{TILE} GMAC/s"] * 1e9
    best = max([limits[f"{lib} GMAC/s"] * 1e9 for lib in native.TILE_GEMMS]
               + [m["conv_macs"] / (m["conv_ms"] / 1e3) for m in measured.values()])
    paired = {(k, mode): paired_tile_gemm(k, mode != "forward", rounds) for k in TARGETS for mode in MODES}
    adjusted = dict(zip(paired, holm([sign_test(r) for r in paired.values()])))
    out = []
    for k, m in measured.items():
        conv, gemm = m["conv_ms"], m[f"gemm_{TILE}_ms"]
        rest = m["fused_op_ms"] - gemm  # ≤ 0: the op's per-tile GEMMs beat the one large GEMM (in cache)
        row = {
            "k": k, "conv ms": conv, "layer ms": m["layer_ms"], "layer × conv": m["layer_ms"] / conv,
            "target × conv": TARGETS[k],
            "generator share": m["generator_ms"] / m["layer_ms"], "fused op share": m["fused_op_ms"] / m["layer_ms"],
            "GEMM alone ms": gemm, "GEMM alone ms (mkl)": m["gemm_mkl_ms"],
            "GEMM share of the op": gemm / m["fused_op_ms"],
            "GEMM × its 2048³ rate": m["gemm_macs"] / (gemm / 1e3) / tile_rate,
            "conv GMAC/s": m["conv_macs"] / (conv / 1e3) / 1e9,
            "floor × conv (GEMM rate)": (1e3 * m["gemm_macs"] / tile_rate + m["generator_ms"]) / conv,
            "floor × conv (best rate)": (1e3 * m["gemm_macs"] / best + m["generator_ms"]) / conv,
            "rest of the op ms": rest,
            "atom pass GMAC/s (rest)": m["atom_pass_macs"] / rest / 1e6 if rest > 0 else math.nan,
            "best GMAC/s": best / 1e9,
        }
        for mode in MODES:
            ratios = paired[(k, mode)]
            row[f"onednn/mkl {mode}"] = statistics.median(ratios)
            row[f"onednn wins {mode}"] = f"{sum(r < 1 for r in ratios)}/{len(ratios)}"
            row[f"p Holm {mode}"] = adjusted[(k, mode)]
        out.append(row)
    return pd.DataFrame(out)


def render(df: pd.DataFrame, limits: dict[str, float], provenance: dict[str, str], threads: int) -> str:
    best = df["best GMAC/s"].iloc[0]
    paired = [c for c in df.columns if c.startswith(("onednn/mkl", "onednn wins", "p Holm"))]
    hidden = set(provenance) | set(limits) | {"best GMAC/s", *paired}
    lines = [f"# Whole-layer CPU time against this machine's limits (Table 6 shape, fp32, {threads} threads)", "",
             f"Machine: {provenance['device']} · ISA {provenance['isa']} · torch {provenance['torch']} (MKL "
             f"{provenance['mkl']}, oneDNN {provenance['onednn']}) · commit {provenance['commit']}. Measured: 2048³ "
             f"SGEMM {limits['onednn GMAC/s']:.1f} GMAC/s with oneDNN (the op's tile library), "
             f"{limits['mkl GMAC/s']:.1f} with MKL (ATen's mm); best multiply-add rate of the run {best:.1f} GMAC/s; "
             f"copy {limits['bandwidth GB/s']:.1f} GB/s (256 MiB). Forward pass; times are medians "
             "(`torch.utils.benchmark`), ratios are to `nn.Conv2d` k×k in this run. 'GEMM alone' is the op's "
             "coefficient contraction at its total shape with the tile library; a floor is that GEMM at a rate plus "
             "the generator as measured, everything else free. Written by `python -m benchmarks.breakdown`.",
             "", df.drop(columns=[c for c in df.columns if c in hidden]).to_markdown(index=False, floatfmt=".3g"), ""]
    for r in df.to_dict("records"):
        target, tile, fast = r["target × conv"], r["floor × conv (GEMM rate)"], r["floor × conv (best rate)"]
        reach = ("within reach with this GEMM" if tile <= target else
                 "within reach only with a GEMM at the best rate" if fast <= target else "out of reach on this machine")
        lines.append(f"- k = {r['k']}: the layer runs at {r['layer × conv']:.3f}× `nn.Conv2d` (target {target:.2f}×); "
                     f"floors {tile:.3f}× (GEMM rate) and {fast:.3f}× (best rate): {reach}. The GEMM alone runs at "
                     f"{r['GEMM × its 2048³ rate']:.0%} of its 2048³ rate and is {r['GEMM share of the op']:.0%} of the "
                     f"op's time; the generator is {r['generator share']:.0%} of the layer's; the rest of the op (atom "
                     f"convolution, per-tile GEMM overheads, α·ψ) takes {r['rest of the op ms']:.1f} ms = "
                     f"{r['rest of the op ms'] / r['conv ms']:.3f}× `nn.Conv2d`.")
    lines += ["", "## Tile library: oneDNN against MKL, paired", "",
              "Whole layer, time with oneDNN tiles ÷ time with MKL tiles, both in each round (order alternating); "
              "median over rounds, rounds oneDNN was faster, two-sided sign test Holm-corrected over the six rows.",
              "", df[["k", *paired]].to_markdown(index=False, floatfmt=".3g"), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s: the targets')")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timing budget per part (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=25,
                        help="paired rounds of the tile-library comparison (default %(default)s)")
    parser.add_argument("--out", default="results", help="folder of benchmarks-breakdown-cpu.{csv,md} (default %(default)s)")
    parser.add_argument("--allow-dirty", action="store_true", help="write results/ from a tree with uncommitted changes")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or not math.isfinite(args.seconds) or args.seconds <= 0:
        parser.error("--threads and --rounds must be ≥ 1 and --seconds > 0")
    if native.load_extension() is None or not torch.backends.mkldnn.is_available():
        parser.error("the breakdown times the native backend's tiles on oneDNN and MKL: it needs the compiled "
                     "extension and a torch built with oneDNN")
    torch.set_num_threads(args.threads)
    from reproduce.engine.provenance import check_clean, fingerprint

    provenance = {**fingerprint("cpu"), "commit": check_clean(args.out, args.allow_dirty)}
    limits = machine_limits(args.seconds)
    df = rows(limits, args.seconds, args.rounds)
    for key, value in {**limits, **provenance}.items():
        df[key] = value
    out = Path(args.out)
    atomic_write_many({out / "benchmarks-breakdown-cpu.csv": df.to_csv(index=False, float_format="%.6g"),
                       out / "benchmarks-breakdown-cpu.md": render(df, limits, provenance, args.threads)})
    print((out / "benchmarks-breakdown-cpu.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
