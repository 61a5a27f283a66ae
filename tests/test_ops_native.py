"""Native CPU backend (and its pure-PyTorch fallback, ``shift``) of the atom convolution (Eq. 5) equal the reference."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from acda import atom_conv2d
from acda.ops import native, reference, shift
from acda.utils import conv_output_size

REPO = Path(__file__).resolve().parents[1]

CASES = [
    # N, C, (H, W), m, k, stride, padding, dilation
    (1, 5, (7, 9), 3, 1, (1, 1), (0, 0), (1, 1)),
    (2, 5, (7, 9), 3, 3, (1, 1), (1, 1), (1, 1)),
    (2, 37, (11, 8), 6, 3, (2, 2), (0, 1), (1, 1)),
    (1, 20, (9, 10), 4, 3, (1, 2), (2, 2), (2, 2)),
    (2, 17, (10, 7), 7, 5, (1, 1), (2, 2), (1, 1)),
    (1, 70, (9, 11), 13, 5, (2, 1), (1, 3), (1, 2)),
    (1, 3, (6, 5), 1, 7, (1, 1), (3, 3), (1, 1)),
    (2, 33, (13, 12), 6, 7, (2, 3), (3, 2), (1, 1)),
]


def _inputs(n, c, size, m, k, stride, padding, dilation, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    oh, ow = conv_output_size(size, (k, k), stride, padding, dilation)
    x = torch.randn(n, c, *size, dtype=dtype, generator=g)
    atoms = torch.randn(n, m, k, k, oh, ow, dtype=dtype, generator=g)
    return x, atoms


def test_extension_is_compiled_and_cached():
    ext = native.load_extension()
    assert ext is not None, "the C++ kernel did not build (a compiler is expected in CI)"
    assert Path(ext.__file__).resolve().is_relative_to(native.extension_dir().resolve())
    assert ext.capability() in ("AVX512", "AVX2", "DEFAULT")


@pytest.mark.parametrize("n,c,size,m,k,stride,padding,dilation", CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
@pytest.mark.parametrize("impl", [native, shift], ids=["native", "shift"])
def test_backend_equals_reference(impl, n, c, size, m, k, stride, padding, dilation, dtype, tol):
    x, atoms = _inputs(n, c, size, m, k, stride, padding, dilation, dtype)
    out = impl.forward(x, atoms, stride, padding, dilation)
    ref = reference.forward(x, atoms, stride, padding, dilation)
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    grad = torch.randn_like(ref)
    gx, ga = impl.backward(grad, x, atoms, stride, padding, dilation, True, True)
    rx, ra = reference.backward(grad, x, atoms, stride, padding, dilation, True, True)
    torch.testing.assert_close(gx, rx, rtol=tol, atol=tol)
    torch.testing.assert_close(ga, ra, rtol=tol, atol=tol)
    assert impl.backward(grad, x, atoms, stride, padding, dilation, False, True)[0] is None
    assert impl.backward(grad, x, atoms, stride, padding, dilation, True, False)[1] is None


@pytest.mark.parametrize("n,c,size,m,k,stride,padding,dilation", CASES[1::2])
@pytest.mark.parametrize("backend", ["native", "shift"])
def test_gradcheck_through_custom_op(backend, n, c, size, m, k, stride, padding, dilation):
    size = (min(size[0], 6 + k // 2), min(size[1], 5 + k // 2))
    x, atoms = _inputs(min(n, 2), min(c, 3), size, min(m, 3), k, stride, padding, dilation, torch.float64, seed=1)
    x.requires_grad_(), atoms.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: atom_conv2d(a, b, stride, padding, dilation, backend=backend), (x, atoms), fast_mode=True
    )


@pytest.mark.parametrize("impl", [native, shift], ids=["native", "shift"])
def test_layouts_channels_last_and_non_contiguous(impl):
    x, atoms = _inputs(2, 19, (9, 8), 5, 3, (1, 1), (1, 1), (1, 1), torch.float64)
    ref = reference.forward(x, atoms, (1, 1), (1, 1), (1, 1))
    grad = torch.randn_like(ref)
    rx, ra = reference.backward(grad, x, atoms, (1, 1), (1, 1), (1, 1), True, True)
    channel_strided = torch.stack([x, torch.zeros_like(x)], 2).flatten(1, 2)[:, ::2]
    variants = [
        (x.to(memory_format=torch.channels_last), atoms, grad),
        (x.transpose(2, 3).contiguous().transpose(2, 3),
         atoms.permute(0, 2, 3, 1, 4, 5).contiguous().permute(0, 3, 1, 2, 4, 5),
         grad.to(memory_format=torch.channels_last)),
        (channel_strided, atoms[..., ::1], grad.transpose(2, 3).contiguous().transpose(2, 3)),
    ]
    for xv, av, gv in variants:
        torch.testing.assert_close(atom_conv2d(xv, av, 1, 1, 1, backend=impl.__name__.rsplit(".", 1)[-1]), ref,
                                   rtol=1e-12, atol=1e-12)
        gx, ga = impl.backward(gv, xv, av, (1, 1), (1, 1), (1, 1), True, True)
        torch.testing.assert_close(gx, rx, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ga, ra, rtol=1e-12, atol=1e-12)


def test_sum_backward_with_expanded_gradient():
    """``out.sum().backward()`` hands the op a stride-0 gradient."""
    x, atoms = _inputs(1, 6, (8, 8), 2, 3, (1, 1), (1, 1), (1, 1), torch.float64)
    grads = []
    for backend in ("native", "shift", "reference"):
        xr, ar = x.clone().requires_grad_(), atoms.clone().requires_grad_()
        atom_conv2d(xr, ar, 1, 1, 1, backend=backend).sum().backward()
        grads.append((xr.grad, ar.grad))
    torch.testing.assert_close(grads[0], grads[2], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads[1], grads[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_computes_in_fp32(dtype):
    x, atoms = _inputs(2, 10, (7, 6), 3, 3, (1, 1), (1, 1), (1, 1), torch.float32)
    x, atoms = x.to(dtype), atoms.to(dtype)
    out = native.forward(x, atoms, (1, 1), (1, 1), (1, 1))
    assert out.dtype == dtype
    ref = reference.forward(x.float(), atoms.float(), (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO), **env})


CHECK = """
    import warnings, torch
    from acda.ops import native, reference, shift
    x, a = torch.randn(1, 5, 6, 7, dtype=torch.float64), torch.randn(1, 2, 3, 3, 6, 7, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            out = native.forward(x, a, (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(out, reference.forward(x, a, (1, 1), (1, 1), (1, 1)))
    coef, bias = torch.randn(4, 5, 2, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    fused = native.fused_forward(x, a, coef, bias, (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(fused, reference.fused_forward(x, a, coef, bias, (1, 1), (1, 1), (1, 1)))
    print("compiled", native.is_compiled(), "warnings", sum("falling back" in str(w.message) for w in caught))
"""


@pytest.mark.slow
def test_compile_on_first_use_into_fresh_cache(tmp_path):
    """What CI's first call does: compile the kernel into an empty cache directory, then use it."""
    result = _run(CHECK, {"ACDA_EXTENSIONS_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compiled True warnings 0" in result.stdout
    assert list(tmp_path.rglob("acda_native_*.so"))


def test_fallback_without_compiler_warns_once(tmp_path):
    result = _run(CHECK, {"ACDA_EXTENSIONS_DIR": str(tmp_path), "CXX": str(tmp_path / "no-such-compiler")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compiled False warnings 1" in result.stdout


def test_build_folder_is_keyed_on_the_python_and_torch_it_is_built_for(monkeypatch):
    """Two environments with one torch version no longer share (and rebuild in turn) one build folder."""
    here = native.build_dir()
    monkeypatch.setattr(sys, "executable", "/another/venv/bin/python")
    assert native.build_dir() != here and native.build_dir().parent == here.parent
    monkeypatch.undo()
    monkeypatch.setenv("CXX", "clang++")
    assert native.build_dir() != here
    monkeypatch.undo()
    assert native.build_dir() == here



@pytest.mark.parametrize("library,enabled,op", [("onednn", True, "mkldnn::_linear_pointwise"),
                                                ("mkl", True, "aten::mm"), ("onednn", False, "aten::mm")])
def test_fp32_tiles_are_multiplied_by_the_chosen_library(library, enabled, op, one_thread, monkeypatch):
    """fp32 tiles go to oneDNN by default (faster on the CPUs measured: docs/performance.md), to ATen's mm under
    ``tile_gemm("mkl")`` or where the user disabled oneDNN (``torch.backends.mkldnn.enabled = False``); fp64
    tiles always to ATen's mm. Seen by the profiler (one thread: the tiles run in the calling thread)."""
    if library == "onednn" and not torch.backends.mkldnn.is_available():
        pytest.skip("torch is built without oneDNN")
    x, atoms = _inputs(1, 8, (6, 6), 3, 3, (1, 1), (1, 1), (1, 1), torch.float32)
    coef = torch.randn(4, 8, 3)
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", enabled)

    def ops(dtype):
        with native.tile_gemm(library), torch.profiler.profile() as prof:
            out = native.fused_forward(x.to(dtype), atoms.to(dtype), coef.to(dtype), None, (1, 1), (1, 1), (1, 1))
            native.fused_backward(torch.ones_like(out), x.to(dtype), atoms.to(dtype), coef.to(dtype), (1, 1), (1, 1),
                                  (1, 1), True, True, True)
        return {e.key for e in prof.key_averages()}

    fp32 = ops(torch.float32)
    assert op in fp32 and ("mkldnn::_linear_pointwise" in fp32) == (op == "mkldnn::_linear_pointwise")
    assert "mkldnn::_linear_pointwise" not in ops(torch.float64)


def test_tile_gemm_is_restored_and_checked():
    ext = native.load_extension()
    with native.tile_gemm("mkl"):
        with native.tile_gemm("onednn"):
            assert ext.set_tile_gemm("onednn") == "onednn"
        assert ext.set_tile_gemm("mkl") == "mkl"
    with pytest.raises(ValueError, match=r"name must be one of \('onednn', 'mkl'\), got 'blas'"):
        with native.tile_gemm("blas"):
            pass
