"""pytest-benchmark: ACDA (conv only, paper Eq. 5 + 6) vs nn.Conv2d vs DFN at Table 6 and ResNet shapes.

    tox -e bench                      # or: pytest benchmarks/bench_acda.py --benchmark-enable \\
                                      #        --benchmark-json=.benchmarks/latest.json
    python -m benchmarks.report       # → results/benchmarks-<device>.md
    pytest benchmarks                 # CI: --benchmark-disable → small shapes, correctness smoke only

Rows: ``conv`` (``nn.Conv2d``, the baseline of every ratio, measured in the same run), ``acda_<backend>``
(the atom convolution with the atoms given), ``acda_layer`` (the whole ``ACDAConv2d``), ``dfn`` (per-pixel
filters applied directly, where they fit), forward and forward+backward, with ``paired_ratio_to_conv``
(median of back-to-back ratios) and peak memory in ``extra_info``. ``ACDA_BENCH_SECONDS`` (default 3) is
each row's time budget. Shapes and every field: docs/performance.md, section "Benchmark rows".
"""
from __future__ import annotations

import functools
import os
import platform
import statistics
import time

import pytest
import torch

from acda import ACDAConv2d
from acda.functional import acda_conv2d, per_pixel_conv2d
from acda.ops import BACKENDS
from acda.profile import closed_form, peak_memory

DEVICE = torch.device(os.environ.get("ACDA_BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu"))
SHAPES = {"table6": (1, 256, 100, 100), "resnet_stage": (2, 256, 56, 56)}
SMOKE_SHAPE = (2, 16, 12, 10)
KERNELS = (3, 5, 7)
MODES = ("forward", "forward_backward")
NUM_ATOMS = 6
ACDA_BACKENDS = ["reference", "shift", "triton"] if DEVICE.type == "cuda" else ["reference", "shift", "native"]
LAYER = "acda_layer"  # the whole ACDAConv2d, default backend
IMPLS = ["conv", *(f"acda_{b}" for b in ACDA_BACKENDS), LAYER, "dfn"]
BUDGET_S = float(os.environ.get("ACDA_BENCH_SECONDS", "3.0"))
_MEDIANS: dict[tuple, float] = {}


def dfn_bytes(shape: tuple[int, int, int, int], k: int, element_size: int = 4) -> int:
    """Bytes DFN needs at least: K and its gradient (N·H·W·O·C·k² each) plus the unfolded input."""
    n, c, h, w = shape
    return element_size * (2 * n * h * w * c * c * k * k + n * c * k * k * h * w)


def _available_bytes() -> int:
    if DEVICE.type == "cuda":
        return torch.cuda.mem_get_info(DEVICE)[0]
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["MemAvailable"].split()[0]) * 1024


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def _cases():
    for shape_name in SHAPES:
        for k in KERNELS:
            for mode in MODES:
                for impl in IMPLS:
                    yield pytest.param(shape_name, k, mode, impl, id=f"{shape_name}-k{k}-{mode}-{impl}")


def backend_of(impl: str) -> str | None:
    """The ``acda_conv2d`` backend an ``acda_<backend>`` row times (None for conv, dfn and the whole layer)."""
    return impl.removeprefix("acda_") if impl.startswith("acda_") and impl != LAYER else None


def whole_layer(channels: int, k: int, **kwargs) -> ACDAConv2d:
    """The layer of the whole-layer rows: ``channels``→``channels``, "same" padding, m = 6, paper generator."""
    return ACDAConv2d(channels, channels, k, padding=k // 2, num_atoms=NUM_ATOMS, generator="paper", **kwargs)


def layer_macs(layer: ACDAConv2d, height: int, width: int) -> int:
    """Forward multiply-adds of one image through a stride-1 paper-generator layer: atom + coefficient
    convolutions and the generator Φ (closed forms of ``acda.profile``)."""
    k = layer.kernel_size[0]
    conv = closed_form("acda_conv", layer.in_channels, layer.out_channels, k, height, width,
                       num_atoms=layer.num_atoms, bias=layer.bias is not None)["flops"]
    gen = closed_form("paper_generator", layer.in_channels, layer.out_channels, k, height, width,
                      num_atoms=layer.num_atoms, num_basis_elements=layer.generator.num_basis_elements,
                      hidden=layer.generator.hidden_channels)["flops"]
    return conv + gen


def forward_macs(impl: str, shape: tuple[int, int, int, int], k: int) -> int:
    """Forward multiply-adds of one call of ``impl`` on a batch of ``shape`` (N, C, H, W), all N images."""
    n, c, h, w = shape
    if impl == LAYER:
        return n * layer_macs(whole_layer(c, k, device="meta"), h, w)
    kind = "conv" if impl in ("conv", "dfn") else "acda_conv"
    return n * closed_form(kind, c, c, k, h, w, num_atoms=NUM_ATOMS, bias=impl != "dfn")["flops"]


def _build(impl: str, shape, k: int, requires_grad: bool):
    torch.manual_seed(0)
    n, c, h, w = shape
    o, p = c, k // 2
    x = torch.randn(n, c, h, w, device=DEVICE)
    if impl == LAYER:
        layer = whole_layer(c, k, device=DEVICE)
        leaves = [x, *layer.parameters()]
        fn = lambda: layer(x)  # noqa: E731
    elif impl == "conv":
        conv = torch.nn.Conv2d(c, o, k, padding=p, device=DEVICE)
        leaves = [x, conv.weight, conv.bias]
        fn = lambda: conv(x)  # noqa: E731
    elif impl == "dfn":
        kernels = torch.randn(n, h, w, o, c, k, k, device=DEVICE) / (c * k)
        leaves = [x, kernels]
        fn = lambda: per_pixel_conv2d(x, kernels, 1, p)  # noqa: E731
    else:
        backend = backend_of(impl)
        atoms = torch.randn(n, NUM_ATOMS, k, k, h, w, device=DEVICE) / k
        coef = torch.randn(o, c, NUM_ATOMS, device=DEVICE) / (c * NUM_ATOMS) ** 0.5
        bias = torch.zeros(o, device=DEVICE)
        leaves = [x, atoms, coef, bias]
        fn = lambda: acda_conv2d(x, atoms, coef, bias, 1, p, 1, backend=backend)  # noqa: E731
    for t in leaves:
        t.requires_grad_(requires_grad)
    return fn, leaves


def _runner(impl: str, shape, k: int, backward: bool):
    """One call of ``impl`` (forward under no_grad, or forward + backward of a fixed output gradient)."""
    fn, leaves = _build(impl, shape, k, backward)
    grad = torch.randn_like(fn().detach()) if backward else None

    def run():
        if not backward:
            with torch.no_grad():
                out = fn()
        else:
            for t in leaves:
                t.grad = None
            out = fn()
            out.backward(grad)
        _sync()
        return out

    return run


def paired_ratio(run, baseline, rounds: int) -> tuple[float, int]:
    """Median over ``rounds`` of time(run) / time(baseline), the two timed back to back in each round, so
    drift in the machine's speed between benchmarks cancels out."""
    ratios = []
    for _ in range(rounds):
        times = []
        for fn in (baseline, run):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        ratios.append(times[1] / times[0])
    return statistics.median(ratios), rounds


@pytest.mark.parametrize("shape_name,k,mode,impl", list(_cases()))
def test_acda_time(benchmark, shape_name, k, mode, impl):
    smoke = benchmark.disabled
    shape = SMOKE_SHAPE if smoke else SHAPES[shape_name]
    backend = backend_of(impl)
    if backend is not None and not BACKENDS[backend].available(DEVICE):
        pytest.skip(f"backend {backend!r} is not available on {DEVICE}")
    need = dfn_bytes(shape, k)
    if impl == "dfn" and need > 0.5 * _available_bytes():
        pytest.skip(f"DFN does not fit: needs {need / 2**30:.1f} GiB, {_available_bytes() / 2**30:.1f} GiB available")
    backward = mode == "forward_backward"
    run = _runner(impl, shape, k, backward)

    n, c, h, w = shape
    macs = forward_macs(impl, shape, k)
    run()  # warm-up (and first-use compile of the native kernel)
    t0 = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - t0
    assert out.shape == (n, c, h, w) and torch.isfinite(out).all()
    benchmark.extra_info.update(
        shape=shape_name, shape_dims=list(shape), k=k, mode=mode, impl=impl, macs=macs,
        peak_bytes=peak_memory(run, DEVICE), smoke=smoke, **run_info(DEVICE, provenance=not smoke),
    )
    if smoke:
        benchmark(run)
        return
    rounds = _rounds(seconds)
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=0)
    median = statistics.median(benchmark.stats.stats.data)
    _MEDIANS[(shape_name, k, mode, impl)] = median
    conv = _MEDIANS.get((shape_name, k, mode, "conv"))
    if conv:
        benchmark.extra_info["ratio_to_conv"] = median / conv
    if impl.startswith("acda_") and impl != "acda_reference":  # the fast backends and the whole layer
        conv_run = _runner("conv", shape, k, backward)
        conv_run()
        ratio, pairs = paired_ratio(run, conv_run, rounds)
        benchmark.extra_info.update(paired_ratio_to_conv=ratio, paired_rounds=pairs)


def _rounds(seconds: float, budget: float = BUDGET_S) -> int:
    """As many rounds as fit in ``budget`` seconds (default ``ACDA_BENCH_SECONDS``, 3: at least 3, at most 15);
    one for calls over 20 s (the reference's backward)."""
    if seconds > 20:
        return 1
    return max(3, min(15, int(budget / max(seconds, 1e-6))))


def run_info(device: torch.device, provenance: bool = True) -> dict:
    """``extra_info`` fields every benchmark row records: threads, device name, torch, load, cores and (when
    ``provenance``) the machine's fingerprint columns, recorded where the benchmark ran."""
    with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
        loadavg = f.read().strip()
    info = dict(threads=torch.get_num_threads(), device=device_name(device), torch=torch.__version__,
                loadavg=loadavg, cores=os.cpu_count())
    if provenance:
        info["provenance"] = _provenance(device.type)
    return info


@functools.cache
def _provenance(device_type: str) -> dict[str, str]:
    from reproduce.engine.provenance import fingerprint

    fields = fingerprint(device_type)
    return {"mkl": fields["mkl"], "onednn": fields["onednn"], "fingerprint": fields["fingerprint"],
            "cuda": (torch.version.cuda or "") if device_type == "cuda" else ""}


def device_name(device: torch.device = DEVICE) -> str:
    """``torch.cuda.get_device_name`` on CUDA; ``cpu (<model>, <ATen capability>)`` on CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu ({cpu}, {torch.backends.cpu.get_cpu_capability()})"
