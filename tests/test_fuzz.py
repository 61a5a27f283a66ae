"""Fuzz of the public API on every CPU backend: our clear error, or the reference's result — nothing else.

Each case is drawn from one seed (Hypothesis draws the seeds; ``random.Random(seed)`` the case, so every
argument is valid most of the time and each is invalid with a small, known probability): layer
arguments (channels, kernel 1/3/5, stride, padding incl. "same"/"valid", dilation, bias, num_atoms,
num_bases, generator), functional arguments (shapes incl. N = 0 and degenerate sizes, stride,
padding, dilation, bias), input sizes and layouts (tiny H/W, channels-last, non-contiguous), and
dtypes (float32, float64, mixed, integer, complex). A failing example prints the whole case. Every
case runs on the ``reference`` backend and on each other backend; then either

- all of them raise *our* error (``ours``: a ``ValueError``/``TypeError`` raised inside the ``acda``
  package, never from inside torch, whose message names an argument — ``acda.utils.ArgumentError`` from
  the shared validation, or a constructor check), the same type and message on every backend, or
- all of them agree with the reference: output and every gradient (float64: tight; float32: looser).

A backend may refuse a dtype the reference accepts (``Backend.dtypes``: Triton has no float64), with
our ``TypeError``. Deterministic (``derandomize=True``), bounded to about a minute on 2 cores; Triton
runs under its CPU interpreter (``TRITON_INTERPRET=1``, as ``tests/test_ops_triton.py``), with few
examples. Layers run in eval mode: in train mode the "official" generator's BatchNorm refuses a batch
with a single value per channel (torch's own clear ``ValueError``, as for any BatchNorm model).
"""
from __future__ import annotations

import contextlib
import importlib.util
import random
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import acda
from acda import ACDAConv2d, acda_conv2d, atom_conv2d
from acda.functional import per_pixel_conv2d, per_pixel_filters
from acda.utils import conv_output_size, pair

ACDA_DIR = Path(acda.__file__).resolve().parent
CPU_BACKENDS = ["shift", "native"]
HAS_TRITON = importlib.util.find_spec("triton") is not None
ARGUMENTS = ("x", "input", "atoms", "coef", "bias", "filters", "stride", "padding", "dilation", "kernel_size", "in_channels",
             "out_channels", "num_atoms", "num_bases", "num_scales", "generator", "backend", "dtype", "device")
INVALID_DTYPES = (torch.int64, torch.int32, torch.complex64)
FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                   HealthCheck.function_scoped_fixture])


def ours(error: BaseException) -> bool:
    """A ``ValueError``/``TypeError`` raised by acda's own code (not torch's) whose message names an argument."""
    if not isinstance(error, (ValueError, TypeError)):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    if not frames or not Path(frames[-1].filename).resolve().is_relative_to(ACDA_DIR):
        return False
    return any(re.search(rf"\b{name}\b", str(error)) for name in ARGUMENTS)


# ---- cases -----------------------------------------------------------------------------------------

@dataclass
class Case:
    """One call of the public API: ``run(backend)`` returns (output, gradients), or raises."""

    kind: str
    args: dict
    seed: int

    def run(self, backend: str):
        return (_run_layer if self.kind == "layer" else _run_functional)(backend, self.seed, **self.args)


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in another memory layout."""
    if layout == "channels_last" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "transposed":
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "strided":
        return torch.stack([x, torch.zeros_like(x)], -1)[..., 0]
    return x


def _random(shape, dtype, g: torch.Generator) -> torch.Tensor:
    values = torch.randn(shape, dtype=torch.float64, generator=g)
    if dtype.is_floating_point:
        return values.to(dtype)
    if dtype.is_complex:
        return torch.complex(values, values.flip(-1) if values.dim() else values).to(dtype)
    return (values * 3).round().to(dtype)


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.requires_grad_() if t.dtype.is_floating_point else t


def _grads(out: torch.Tensor, leaves: list[torch.Tensor], seed: int) -> list[torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed + 1)
    weight = torch.randn(out.shape, dtype=torch.float64, generator=g).to(out.dtype)
    leaves = [t for t in leaves if t is not None and t.requires_grad]
    grads = torch.autograd.grad((out * weight).sum(), leaves, allow_unused=True)
    return [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, leaves)]


def _run_layer(backend, seed, *, init, layer_dtype, n, channels, size, dtype, layout):
    torch.manual_seed(seed)
    layer = ACDAConv2d(**init, backend=backend, dtype=layer_dtype).eval()
    x = _leaf(_layout(_random((n, channels, *size), dtype, torch.Generator().manual_seed(seed)), layout))
    out = layer(x)
    return out, _grads(out, [x, *layer.parameters()], seed)


def _run_functional(backend, seed, *, fused, n, c, size, m, kernel, o, stride, padding, dilation, bias, dtypes,
                    wrong_size, layouts):
    g = torch.Generator().manual_seed(seed)
    try:
        geometry = pair(stride, "s"), pair(padding, "p", minimum=0), pair(dilation, "d")
        oh, ow = conv_output_size(size, kernel, *geometry)
    except (TypeError, ValueError):  # e.g. padding="same": refused below, by the function under test
        oh, ow = size
    oh, ow = max(oh + wrong_size, 0), max(ow, 0)
    if oh * ow > 10**4:  # padding=2**31: refused before the atoms' shape is looked at; do not allocate them
        oh, ow = 1, 1
    x = _leaf(_layout(_random((n, c, *size), dtypes["x"], g), layouts[0]))
    atoms = _leaf(_layout(_random((n, m, *kernel, oh, ow), dtypes["atoms"], g), layouts[1]))
    if not fused:
        out = atom_conv2d(x, atoms, stride, padding, dilation, backend=backend)
        return out, _grads(out, [x, atoms], seed)
    coef = _leaf(_random((o, c, m), dtypes["coef"], g))
    bias_t = {"none": None, "ok": _leaf(_random((o,), dtypes["bias"], g)),
              "wrong": _leaf(_random((o + 1,), dtypes["bias"], g)), "list": [0.0] * o}[bias]
    if backend == "per_pixel":  # the full filters K = A·D applied directly: the same numbers, or our error
        out = per_pixel_conv2d(x, per_pixel_filters(atoms, coef), stride, padding, dilation)
        out = out if bias_t is None else out + bias_t.view(1, -1, 1, 1)
    else:
        out = acda_conv2d(x, atoms, coef, bias_t, stride, padding, dilation, backend=backend)
    return out, _grads(out, [x, atoms, coef, bias_t if isinstance(bias_t, torch.Tensor) else None], seed)


def _pick(rnd: random.Random, valid: list, invalid: list = (), p: float = 0.025):
    """One of ``valid``, or with probability ``p`` one of ``invalid``."""
    return rnd.choice(invalid) if invalid and rnd.random() < p else rnd.choice(valid)


LAYOUTS = ["contiguous", "contiguous", "channels_last", "transposed", "strided"]


def _size(rnd: random.Random, kernel, padding, dilation) -> tuple[int, int]:
    """An input size: mostly one the kernel fits in (up to 6 output rows/columns more), sometimes any
    tiny one, rarely an empty plane."""
    try:
        kernel, dilation = pair(kernel, "k"), pair(dilation, "d")
        padding = (0, 0) if isinstance(padding, str) else pair(padding, "p", minimum=0)
        fits = [max(1, d * (k - 1) + 1 - 2 * p) + rnd.randint(0, 6) for k, p, d in zip(kernel, padding, dilation)]
    except (TypeError, ValueError):
        fits = [rnd.randint(1, 9), rnd.randint(1, 9)]
    tiny = (rnd.randint(1, 9), rnd.randint(1, 9))
    return _pick(rnd, [tuple(fits)] * 4 + [tiny], [(0, rnd.randint(0, 3)), (rnd.randint(1, 2), 0)])


def layer_case(seed: int, floats: tuple[torch.dtype, ...] = (torch.float32, torch.float64)) -> Case:
    """Layer arguments and an input, drawn from ``seed`` (a case shows all it drew when it fails); the
    layer's dtype is one of ``floats`` (or, rarely, an invalid one)."""
    rnd = random.Random(seed)
    init = dict(
        in_channels=_pick(rnd, [1, 2, 3], [0, -1, 2.0]),
        out_channels=_pick(rnd, [1, 2, 3], [0]),
        kernel_size=_pick(rnd, [1, 3, 3, 5], [0, 2, (3, 5)]),
        stride=_pick(rnd, [1, 1, 2, 3, (1, 2)], [0, (1, 0)]),
        padding=_pick(rnd, [0, 1, 2, (0, 2), "same", "valid"], [-1, "full"]),
        dilation=_pick(rnd, [1, 1, 2, (1, 3)], [0]),
        bias=rnd.random() < 0.5,
        num_atoms=_pick(rnd, [1, 2, 3, 4], [0]),
        num_bases=_pick(rnd, list(range(1, 7)), [0, 9]),
        generator=_pick(rnd, ["paper", "official"], ["huge"]),
    )
    if init["padding"] == "same" and init["stride"] != 1 and rnd.random() < 0.8:
        init["stride"] = 1  # mostly valid: "same" refuses strides
    layer_dtype = _pick(rnd, list(floats), ["float32", torch.int64])
    valid_dtype = layer_dtype if isinstance(layer_dtype, torch.dtype) else torch.float32
    channels = init["in_channels"] if isinstance(init["in_channels"], int) and init["in_channels"] > 0 else 1
    args = dict(init=init, layer_dtype=layer_dtype, n=rnd.choice([0, 1, 1, 2]),
                channels=_pick(rnd, [channels], [channels + 1]),
                size=_size(rnd, init["kernel_size"], init["padding"], init["dilation"]),
                dtype=_pick(rnd, [valid_dtype], [*INVALID_DTYPES, torch.float32, torch.float64], 0.08),
                layout=rnd.choice(LAYOUTS))
    return Case("layer", args, seed)


def functional_case(seed: int, floats: tuple[torch.dtype, ...] = (torch.float32, torch.float64)) -> Case:
    """``atom_conv2d``/``acda_conv2d`` arguments drawn from ``seed``, in one of ``floats`` (mostly)."""
    rnd = random.Random(seed)
    dtype = rnd.choice(floats)
    dtypes = dict.fromkeys(("x", "atoms", "coef", "bias"), dtype)
    if rnd.random() < 0.12:  # one tensor in another dtype: mixed float, integer or complex
        dtypes[rnd.choice(list(dtypes))] = rnd.choice([*INVALID_DTYPES, torch.float32, torch.float64])
    kernel = _pick(rnd, [(k, rnd.choice([1, 2, 3, 3, 5])) for k in (1, 3, 3, 5)], [(0, 1), (1, 0)])
    padding = _pick(rnd, [0, 1, 1, 2, (0, 3)], [-1, "same", 2**31])
    dilation = _pick(rnd, [1, 1, 2, (1, 3)], [0, 1.5])
    args = dict(
        fused=rnd.random() < 0.6, n=rnd.choice([0, 1, 1, 2]), c=_pick(rnd, [1, 2, 3], [0]),
        size=_size(rnd, kernel, padding, dilation), m=_pick(rnd, [1, 2, 3], [0]), kernel=kernel,
        o=_pick(rnd, [1, 2, 3], [0]), stride=_pick(rnd, [1, 1, 2, (2, 1), 3], [0, (1, -1)]), padding=padding,
        dilation=dilation, bias=_pick(rnd, ["none", "ok", "ok"], ["wrong", "list"]),
        dtypes=dtypes, wrong_size=_pick(rnd, [0], [1]), layouts=(rnd.choice(LAYOUTS), rnd.choice(LAYOUTS)),
    )
    return Case("functional", args, seed)


SEEDS = st.integers(0, 2**32 - 1)


# ---- the property ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _outcome(case: Case, backend: str, threads: int | None = None):
    """(result, None) or (None, error), on ``threads`` torch threads (default: as set)."""
    try:
        with _threads(threads or torch.get_num_threads()):
            return case.run(backend), None
    except Exception as error:  # noqa: BLE001 - classified below
        return None, error


def _assert_close(got: torch.Tensor, want: torch.Tensor, what: str, grad: bool) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, f"{what}: {got.shape}/{got.dtype} vs {want.shape}/{want.dtype}"
    tol = 1e-9 if want.dtype == torch.float64 else (1e-3 if grad else 2e-4)
    scale = max(1.0, want.detach().abs().max().item()) if want.numel() else 1.0
    torch.testing.assert_close(got, want, rtol=tol, atol=tol * scale, msg=lambda m: f"{what}: {m}")


def check(case: Case, backends: list[str], threads: int | None = None) -> None:
    """The property of the module docstring; ``backends`` run on ``threads`` torch threads."""
    want, want_error = _outcome(case, "reference")
    if want_error is not None:
        assert ours(want_error), f"reference: not our error: {want_error!r}\n{''.join(traceback.format_exception(want_error))}"
    for backend in backends:
        got, error = _outcome(case, backend, threads)
        if want_error is not None:
            assert error is not None, f"{backend} accepted what the reference refused: {want_error!r}"
            assert (type(error), str(error)) == (type(want_error), str(want_error)), f"{backend}: {error!r}"
            continue
        if error is not None:  # only a dtype the backend does not compute in may be refused
            assert ours(error) and isinstance(error, TypeError) and f"backend {backend!r} accepts only" in str(error), (
                f"{backend}: {error!r}\n{''.join(traceback.format_exception(error))}")
            continue
        (out, grads), (ref_out, ref_grads) = got, want
        _assert_close(out, ref_out, f"{backend} output", grad=False)
        assert len(grads) == len(ref_grads)
        for i, (g, r) in enumerate(zip(grads, ref_grads)):
            _assert_close(g, r, f"{backend} gradient {i}", grad=True)


@settings(max_examples=300, **FUZZ)
@given(case=SEEDS.map(layer_case))
def test_fuzz_layer(case, one_thread):
    check(case, CPU_BACKENDS)


@settings(max_examples=1000, **FUZZ)
@given(case=SEEDS.map(functional_case))
def test_fuzz_functional(case, one_thread):
    check(case, CPU_BACKENDS)


@settings(max_examples=300, **FUZZ)
@given(case=SEEDS.map(functional_case))
def test_fuzz_per_pixel_filters(case, one_thread):
    """``per_pixel_filters`` + ``per_pixel_conv2d`` (the DFN path): the reference's numbers, or our error
    wherever the reference refuses (its own message: it names its own arguments, ``filters`` among them)."""
    args = case.args  # a bias is added outside these two: only a valid one
    assume(args["fused"] and (args["bias"] == "none" or (args["bias"] == "ok" and args["dtypes"]["bias"] == args["dtypes"]["x"])))
    want, want_error = _outcome(case, "reference")
    got, error = _outcome(case, "per_pixel")
    if want_error is not None or error is not None:
        assert want_error is not None and error is not None and ours(error), (
            f"reference {want_error!r}, per-pixel {error!r}\n{''.join(traceback.format_exception(error)) if error else ''}")
        return
    (out, grads), (ref_out, ref_grads) = got, want
    _assert_close(out, ref_out, "per-pixel output", grad=False)
    for i, (g, r) in enumerate(zip(grads, ref_grads, strict=True)):
        _assert_close(g, r, f"per-pixel gradient {i}", grad=True)


TRITON_FLOATS = (torch.float32,) * 7 + (torch.float64,)  # mostly what it computes in; float64 is refused


@settings(max_examples=100, **FUZZ)
@given(case=st.one_of(SEEDS.map(functional_case), SEEDS.map(layer_case)))
def test_fuzz_native_on_two_threads(case, one_thread):
    """The native kernels' parallel paths: their worker threads do not inherit the main thread's dispatch
    state, which hid a bug from single-threaded runs (``test_input_policy``: one channel or one atom)."""
    check(case, ["native"], threads=2)


@pytest.fixture
def triton_interpreter(monkeypatch):
    if not HAS_TRITON:
        pytest.skip("triton is not installed")
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@settings(max_examples=20, **FUZZ)
@given(case=st.one_of(SEEDS.map(lambda seed: functional_case(seed, TRITON_FLOATS)),
                      SEEDS.map(lambda seed: layer_case(seed, TRITON_FLOATS))))
def test_fuzz_triton_interpreted(case, triton_interpreter, one_thread):
    check(case, ["triton"])
