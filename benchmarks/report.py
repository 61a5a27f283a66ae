"""Turn pytest-benchmark JSONs of ``benchmarks/bench_acda.py`` / ``bench_triton.py`` into ``results/benchmarks-<device>.md``.

    python -m benchmarks.report [--json .benchmarks/latest.json [more.json ...]] [--out results] [--device-tag cpu]

One table per (shape, k, mode) of ``bench_acda`` rows (and per (shape, dtype, k, mode) of
``bench_triton`` rows): median time, ratio to ``nn.Conv2d`` from the same run (and the paired,
back-to-back ratio where measured), achieved GFLOP/s (2 FLOPs per multiply-add; forward+backward
counted as 3× the forward multiply-adds), peak memory and its ratio to the reference (``acda_reference``
for bench_acda, the whole layer with ``backend="reference"`` for bench_triton); then the targets, each
met or not: the atom-convolution targets (CPU, atoms given), the whole-layer targets on CPU and the
whole-layer targets on GPU (Triton backend, Table 6 shape at N=32, TF32 and bf16).

The CSV holds every number plus the provenance (commit, fingerprint, library versions: recorded by the
benchmarks where they ran, or taken here for JSONs that lack them); the Markdown is rendered from the
CSV alone (``render(read(csv))``), so it can be regenerated and checked byte for byte, and its target
verdicts follow from the CSV. Timings are never compared across runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from acda.utils import atomic_write
from reproduce.engine.provenance import check_clean, fingerprint

# Atom-convolution targets, CPU, Table 6 shape, fp32, atoms given: (k, mode) → maximum ratio of ACDA time to nn.Conv2d time.
CPU_TIME_TARGETS = {(7, "forward"): 0.25, (7, "forward_backward"): 0.25, (5, "forward"): 0.40,
                    (5, "forward_backward"): 0.40, (3, "forward"): 1.0, (3, "forward_backward"): 1.0}
CPU_MEMORY_TARGET = 0.2  # peak memory of ACDA forward+backward / unfold reference
# Whole-layer targets on CPU, Table 6 shape, fp32, 2 threads, the whole ACDAConv2d (generator included), paired ratio.
CPU_LAYER_TIME_TARGETS = {(7, "forward"): 0.22, (7, "forward_backward"): 0.22, (5, "forward"): 0.33,
                          (5, "forward_backward"): 0.33, (3, "forward"): 0.90, (3, "forward_backward"): 0.90}
CPU_LAYER_THREADS = 2
# Whole-layer targets on GPU (bench_triton), Table 6 shape at N=32, TF32 and bf16: the whole layer vs cuDNN.
GPU_TIME_TARGETS = {(7, "forward"): 0.35, (7, "forward_backward"): 0.5}
GPU_MEMORY_TARGET = 0.2  # whole layer forward+backward peak / the same layer with backend="reference"
LAYER = "acda_layer"
REFERENCE = {"acda": "acda_reference", "triton": "acda_layer_reference"}  # suite → its memory reference
SCRIPTS = {"acda": "benchmarks/bench_acda.py", "triton": "benchmarks/bench_triton.py"}
PROVENANCE = ("mkl", "onednn", "fingerprint", "cuda")
TARGET_GROUPS = {  # group key → section title in the report
    "atoms": "Atom-convolution targets (atoms given, Table 6 shape)",
    "layer-cpu": f"Whole-layer targets on CPU (Table 6 shape, fp32, {CPU_LAYER_THREADS} threads)",
    "layer-gpu": "Whole-layer targets on GPU, Triton backend (Table 6 shape, N=32)",
}


def load(paths: Path | Sequence[Path]) -> tuple[pd.DataFrame, dict]:
    """Rows (one per timed benchmark) and the machine info of one or more pytest-benchmark JSONs."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    rows, machine = [], {}
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        machine = machine or data.get("machine_info", {})
        for bench in data["benchmarks"]:
            info = bench.get("extra_info", {})
            if "impl" not in info or info.get("smoke"):
                continue
            stats = bench["stats"]
            median = statistics.median(stats["data"]) if stats.get("data") else stats["median"]
            recorded = info.get("provenance", {})
            rows.append({**{k: info[k] for k in ("shape", "k", "mode", "impl", "macs", "peak_bytes", "threads",
                                                 "device", "torch", "loadavg")},
                         "dims": "×".join(map(str, info["shape_dims"])), "median_s": median,
                         "rounds": stats["rounds"], "paired": info.get("paired_ratio_to_conv", float("nan")),
                         "cores": info.get("cores", os.cpu_count()),
                         "cpu": data.get("machine_info", {}).get("cpu", {}).get("brand_raw", "n/a"),
                         "source": str(path), "suite": info.get("suite", "acda"), "dtype": info.get("dtype", "fp32"),
                         **{k: recorded[k] for k in PROVENANCE if k in recorded}})
    if not rows:
        raise SystemExit(f"{', '.join(map(str, paths))}: no timed bench_acda or bench_triton results "
                         "(was it run with --benchmark-enable?)")
    frame = pd.DataFrame(rows)
    factor = frame["mode"].map({"forward": 2.0, "forward_backward": 6.0})
    frame["gflops"] = factor * frame["macs"] / frame["median_s"] / 1e9
    key = ["suite", "shape", "dtype", "k", "mode"]
    idx = pd.MultiIndex.from_frame(frame[key])
    conv = frame[frame["impl"] == "conv"].set_index(key)["median_s"]
    ref = frame[frame["impl"] == frame["suite"].map(REFERENCE)].set_index(key)["peak_bytes"]
    frame["time_vs_conv"] = frame["median_s"].to_numpy() / conv.reindex(idx).to_numpy()
    frame["peak_vs_reference"] = frame["peak_bytes"].to_numpy() / ref.reindex(idx).to_numpy()
    return frame, machine


def read(path: Path) -> pd.DataFrame:
    """A benchmarks CSV as written by ``main`` (empty cells are NaN, text stays text; CSVs from before
    the bench_triton rows are all ``bench_acda`` rows in fp32)."""
    frame = pd.read_csv(path, keep_default_na=False,
                        na_values={c: [""] for c in ("paired", "peak_vs_reference", "time_vs_conv")})
    for column, default in (("suite", "acda"), ("dtype", "fp32")):
        if column not in frame:
            frame[column] = default
    return frame


def _is_cpu(frame: pd.DataFrame) -> bool:
    return str(frame["device"].iloc[0]).startswith("cpu")


def _verdict(value: float, limit: float) -> str:
    return "not run" if value != value else ("yes" if value <= limit else "no")


def _row(frame: pd.DataFrame, **where) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    return frame[mask]


def targets(frame: pd.DataFrame) -> list[dict]:
    """Every target the rows of ``frame`` can judge, each with our ratio and whether it is met: the
    atom-convolution targets (CPU, atoms given), the whole-layer targets on CPU (only when ``acda_layer`` rows
    were run) and on GPU (only when bench_triton rows were run). ``group`` keys ``TARGET_GROUPS``."""
    out = []
    acda = frame[(frame["suite"] == "acda") & (frame["shape"] == "table6")]
    if _is_cpu(frame):
        for impl in [i for i in acda["impl"].unique() if i == "acda_native"]:
            for (k, mode), limit in CPU_TIME_TARGETS.items():
                value = _paired_or_separate(_row(acda, impl=impl, k=k, mode=mode))
                out.append({"group": "atoms", "target": f"{impl} k={k} {mode} time ≤ {limit:.2f}× nn.Conv2d",
                            "ours": value, "met": _verdict(value, limit)})
            for k in _kernels(acda):
                row = _row(acda, impl=impl, k=k, mode="forward_backward")
                value = float(row["peak_vs_reference"].iloc[0]) if len(row) else float("nan")
                out.append({"group": "atoms",
                            "target": f"{impl} k={k} forward_backward peak memory ≤ {CPU_MEMORY_TARGET}× reference",
                            "ours": value, "met": _verdict(value, CPU_MEMORY_TARGET)})
        if (acda["impl"] == LAYER).any():
            for (k, mode), limit in CPU_LAYER_TIME_TARGETS.items():
                value = _paired_or_separate(_row(acda, impl=LAYER, k=k, mode=mode))
                out.append({"group": "layer-cpu", "target": f"{LAYER} k={k} {mode} time ≤ {limit:.2f}× nn.Conv2d",
                            "ours": value, "met": _verdict(value, limit)})
    gpu = frame[(frame["suite"] == "triton") & (frame["shape"] == "table6")]
    for dtype in gpu["dtype"].unique():
        for (k, mode), limit in GPU_TIME_TARGETS.items():
            value = _paired_or_separate(_row(gpu, impl=LAYER, dtype=dtype, k=k, mode=mode))
            out.append({"group": "layer-gpu", "target": f"{LAYER} {dtype} k={k} {mode} time ≤ {limit:.2f}× cuDNN nn.Conv2d",
                        "ours": value, "met": _verdict(value, limit)})
        for k in _kernels(gpu):
            row = _row(gpu, impl=LAYER, dtype=dtype, k=k, mode="forward_backward")
            value = float(row["peak_vs_reference"].iloc[0]) if len(row) else float("nan")
            out.append({"group": "layer-gpu",
                        "target": f"{LAYER} {dtype} k={k} forward_backward peak memory ≤ {GPU_MEMORY_TARGET}× "
                                  "reference layer",
                        "ours": value, "met": _verdict(value, GPU_MEMORY_TARGET)})
    return out


def _paired_or_separate(row: pd.DataFrame) -> float:
    """The paired (back-to-back) ratio to nn.Conv2d where measured, else the ratio of the two medians."""
    if not len(row):
        return float("nan")
    paired = float(row["paired"].iloc[0])
    return paired if paired == paired else float(row["time_vs_conv"].iloc[0])


def _kernels(frame: pd.DataFrame) -> list[int]:
    return sorted(int(k) for k in frame["k"].unique())


def load_note(frame: pd.DataFrame) -> str:
    """How busy the machine was: the 1-minute load averages seen during the run against the threads used."""
    loads = [float(text.split()[0]) for text in frame["loadavg"] if text]
    threads = int(frame["threads"].iloc[0])
    cores = int(frame["cores"].iloc[0])
    if not loads:
        return "load not recorded"
    span = f"1-minute load average {min(loads):.2f}–{max(loads):.2f} on {cores} cores, {threads} threads used"
    if max(loads) > cores + 0.5:
        return f"{span}: the cores were shared with other jobs, so absolute times are noisy"
    return f"{span}: no other significant load"


def _ratio(r: float) -> str:
    return f"{r:.3f}" if r == r else ""


def _tables(frame: pd.DataFrame, keys: list[str], heading) -> list[str]:
    """One Markdown table per group of ``keys``, under ``heading(group_key, first_row)``."""
    lines = []
    for group_key, group in frame.groupby(keys, sort=False):
        lines += [heading(group_key, group.iloc[0]), ""]
        table = pd.DataFrame({
            "impl": group["impl"],
            "median ms": group["median_s"].map(lambda s: f"{s * 1e3:.1f}"),
            "× nn.Conv2d": group["time_vs_conv"].map(_ratio),
            "× nn.Conv2d (paired)": group["paired"].map(_ratio),
            "GFLOP/s": group["gflops"].map(lambda g: f"{g:.1f}"),
            "peak MiB": group["peak_bytes"].map(lambda b: f"{b / 2**20:.1f}"),
            "peak × reference": group["peak_vs_reference"].map(_ratio),
            "rounds": group["rounds"],
        })
        lines += [table.to_markdown(index=False), ""]
    return lines


def _header(frame: pd.DataFrame) -> list[str]:
    """Title and provenance line: what ran where, from which JSONs, at which commit."""
    first = frame.iloc[0]
    sources = ", ".join(dict.fromkeys(frame["source"]))
    scripts = ", ".join(f"`{SCRIPTS[s]}`" for s in dict.fromkeys(frame["suite"]))
    head = [f"# Benchmarks: ACDA atom convolution backends vs nn.Conv2d ({first['device']})", ""]
    if _is_cpu(frame):
        return head + [
            f"Generated by `python -m benchmarks.report` from `{sources}` (pytest-benchmark, {scripts}) at commit "
            f"{first['commit']} (fingerprint {first['fingerprint']}). torch {first['torch']} (MKL {first['mkl']}, "
            f"oneDNN {first['onednn']}), {int(first['threads'])} threads, fp32; CPU: "
            f"{first['cpu']}. During the run: {load_note(frame)}. Ratios are to "
            "`nn.Conv2d` measured in the same run.", ""]
    return head + [
        f"Generated by `python -m benchmarks.report` from `{sources}` (pytest-benchmark, {scripts}) at commit "
        f"{first['commit']} (fingerprint {first['fingerprint']}). torch {first['torch']} (CUDA {first['cuda']}); "
        f"GPU: {first['device']} (`torch.cuda.get_device_name()`); host CPU: {first['cpu']}. During the run: "
        f"{load_note(frame)}. Ratios are to `nn.Conv2d` (cuDNN) measured in the same run.", ""]


def _acda_lines(frame: pd.DataFrame) -> list[str]:
    """The bench_acda part: what its rows are, then one table per (shape, k, mode)."""
    lines = [
        "ACDA rows time `acda_conv2d` with the atoms given (Table 6's \"ACDA (conv only)\": atom "
        "convolution Eq. 5 + 1×1 coefficient convolution Eq. 6). `acda_native` is the fused C++ op "
        "(`torch.ops.acda.acda_conv2d`: per tile of pixels, atom convolution into a cache-resident buffer, "
        "then one GEMM; the backward recomputes the intermediate); `acda_reference` is the authors' "
        "formulation (unfold + einsum, then a 1×1 convolution); `acda_shift` is the pure-PyTorch "
        "shift-and-accumulate fallback (used by `native` when no compiler is present). `dfn` applies "
        "full per-pixel filters "
        "(N, H, W, O, C, k, k) and runs only where they fit. GFLOP/s counts 2 FLOPs per multiply-add "
        "(forward+backward: 3× the forward multiply-adds). Peak memory: `acda.profile.peak_memory` "
        "(the profiler's allocator events in the calling thread during one call). `× nn.Conv2d` divides "
        "the two medians; `× nn.Conv2d (paired)` is the median of per-round ratios with the ACDA call and "
        "the `nn.Conv2d` call timed back to back in each round, which cancels drift in the machine's "
        "speed between benchmarks; the targets use the paired ratio.",
        "",
    ]
    if (frame["impl"] == LAYER).any():
        lines += [
            f"`{LAYER}` times the whole layer, `ACDAConv2d(256, 256, k, padding=k // 2, num_atoms=6, "
            "generator=\"paper\")` with its default backend (`auto`: the native fused op on CPU, Triton on "
            "CUDA), generator Φ included (input and parameters require grad in forward+backward); its GFLOP/s "
            "count Φ's multiply-adds too, and its `peak × reference` is relative to the atoms-given "
            "`acda_reference`. The whole-layer targets on CPU are judged on its paired ratio.",
            "",
        ]
    lines += _tables(frame, ["shape", "k", "mode"], lambda key, row: f"## {key[0]} ({row['dims']}), k={key[1]}, {key[2]}")
    return lines + _dfn_lines(frame)


def _triton_lines(frame: pd.DataFrame) -> list[str]:
    """The bench_triton part: what its rows are, then one table per (shape, dtype, k, mode)."""
    return [
        "CUDA rows of `benchmarks/bench_triton.py` (batch N=32; `tf32`: fp32 tensors with TF32 allowed in cuDNN "
        "and matmuls; `bf16`: bfloat16 tensors and parameters): `conv` is cuDNN's `nn.Conv2d`; `triton_atom` "
        "the Triton atom-convolution kernels alone; `acda_layer` the whole `ACDAConv2d(256, 256, k, "
        "padding=k // 2, num_atoms=6, generator=\"paper\", backend=\"triton\")` (generator Φ, Triton atom "
        "convolution, cuDNN 1×1 coefficients); `acda_layer_reference` the same layer with "
        "`backend=\"reference\"` (unfold + einsum), run forward+backward only, for its peak memory. Peak "
        "memory is `torch.cuda.max_memory_allocated` above what was allocated before one call; `peak × "
        "reference` divides by `acda_layer_reference`'s. The paired ratio times the call and cuDNN's back to "
        "back in each round; the GPU targets use it.",
        "",
    ] + _tables(frame, ["shape", "dtype", "k", "mode"],
                lambda key, row: f"## CUDA {key[0]} ({row['dims']}), {key[1]}, k={key[2]}, {key[3]}")


def render(frame: pd.DataFrame) -> str:
    """The Markdown report: a pure function of the CSV (as ``read`` returns it)."""
    lines = _header(frame)
    acda, triton = frame[frame["suite"] == "acda"], frame[frame["suite"] == "triton"]
    if len(acda):
        lines += _acda_lines(acda)
    if len(triton):
        lines += _triton_lines(triton)
    met = targets(frame)
    for group, title in TARGET_GROUPS.items():
        rows = [{k: t[k] for k in ("target", "ours", "met")} for t in met if t["group"] == group]
        if not rows:
            continue
        lines += [f"## {title}", ""]
        if group == "layer-cpu":
            threads = int(acda["threads"].iloc[0])
            lines += [f"Judged on this run's {threads} threads (the targets are set at {CPU_LAYER_THREADS}"
                      f"{'' if threads == CPU_LAYER_THREADS else ': not comparable'}).", ""]
        lines += [pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"), ""]
        lines += [f"Met: {sum(t['met'] == 'yes' for t in rows)} of {len(rows)}.", ""]
    return "\n".join(lines)


def _dfn_lines(frame: pd.DataFrame) -> list[str]:
    """DFN's predicted memory where it was not run (bench_acda skips it above half the free memory)."""
    from .bench_acda import SHAPES, dfn_bytes

    ran = set(zip(frame.loc[frame["impl"] == "dfn", "shape"], frame.loc[frame["impl"] == "dfn", "k"]))
    rows = [{"shape": name, "k": k, "DFN needs (GiB)": f"{dfn_bytes(dims, k) / 2**30:.1f}",
             "run": "yes" if (name, k) in ran else "no: does not fit"}
            for name, dims in SHAPES.items() for k in _kernels(frame)]
    return ["## DFN (full per-pixel filters): predicted memory", "",
            "K (N, H, W, O, C, k, k) and its gradient in fp32, plus the unfolded input; run only below half "
            "of the memory available at run time.", "", pd.DataFrame(rows).to_markdown(index=False), ""]


def _provenance(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill the provenance columns the benchmarks did not record with this machine's (legacy JSONs)."""
    if all(c in frame and frame[c].notna().all() for c in PROVENANCE):
        return frame
    cpu = _is_cpu(frame)
    if not cpu:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("the CUDA benchmark JSON records no provenance and this machine has no CUDA device: "
                             "rerun the benchmarks with this version of benchmarks/")
    here = fingerprint("cpu" if cpu else "cuda")
    for column in ("mkl", "onednn", "fingerprint"):
        frame[column] = frame[column].fillna(here[column]) if column in frame else here[column]
    if "cuda" not in frame:
        frame["cuda"] = ""
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, nargs="+", default=[Path(".benchmarks/latest.json")],
                        help="pytest-benchmark JSON(s) of bench_acda and/or bench_triton (default: "
                             ".benchmarks/latest.json, as tox -e bench writes)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder (default: results)")
    parser.add_argument("--device-tag", default=None, help="name suffix (default: cpu or cuda)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="write the repository's results/ from a tree with uncommitted changes")
    args = parser.parse_args(argv)
    frame, _ = load(args.json)
    if frame["device"].nunique() > 1:
        raise SystemExit(f"one report per device; these JSONs mix {sorted(frame['device'].unique())}")
    tag = args.device_tag or ("cpu" if _is_cpu(frame) else "cuda")
    frame = _provenance(frame)
    frame["commit"] = check_clean(args.out, args.allow_dirty)
    out = args.out / f"benchmarks-{tag}.md"
    atomic_write(out.with_suffix(".csv"), frame.to_csv(index=False))
    text = render(read(out.with_suffix(".csv")))
    atomic_write(out, text)
    print(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
