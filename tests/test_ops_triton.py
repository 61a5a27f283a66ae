"""Triton atom-convolution kernels (paper Eq. 5) against the reference backend, forward and both gradients.

Without a GPU the kernels run on CPU tensors under Triton's interpreter: the module-scoped
``triton_device`` fixture of ``tests/conftest.py`` (``device`` here) sets ``TRITON_INTERPRET=1``
for these tests only (the kernels are decorated lazily, under the setting current at their first
call). With CUDA and ``TRITON_INTERPRET`` not set to ``1`` the same checks run the compiled kernels
on the GPU. Shapes are tiny: the interpreter is slow.
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed: the Triton backend cannot be tested")

from acda.ops import reference  # noqa: E402
from acda.ops import triton_atom_conv as tac  # noqa: E402
from acda.utils import conv_output_size  # noqa: E402


@pytest.fixture(scope="module")
def device(triton_device):
    return triton_device


def _inputs(n, c, size, m, kernel, stride, padding, dilation, *, device, dtype=torch.float32):
    out_size = conv_output_size(size, kernel, stride, padding, dilation)
    x = torch.randn(n, c, *size, dtype=dtype, device=device)
    atoms = torch.randn(n, m, *kernel, *out_size, dtype=dtype, device=device)
    grad_out = torch.randn(n, c * m, *out_size, dtype=dtype, device=device)
    return x, atoms, grad_out


def _reference(x, atoms, grad_out, stride, padding, dilation):
    """Forward and autograd (grad_x, grad_atoms) of the unfold reference (the oracle), in the inputs' dtype."""
    x = x.detach().requires_grad_()
    atoms = atoms.detach().requires_grad_()
    out = reference.forward(x, atoms, stride, padding, dilation)
    grad_x, grad_atoms = torch.autograd.grad(out, (x, atoms), grad_out)
    return out.detach(), grad_x, grad_atoms


# (N, C, (H, W), m, (k_h, k_w), stride, padding, dilation, block_c, block_p); None = default blocks.
# C ∈ {3..17} is never a multiple of the channel block; small blocks force several tiles.
CASES = [
    (1, 5, (7, 9), 3, (3, 3), (1, 1), (1, 1), (1, 1), None, None),
    (2, 5, (8, 11), 6, (3, 3), (2, 2), (1, 1), (1, 1), 4, 16),
    (2, 3, (11, 8), 1, (5, 5), (2, 2), (3, 3), (2, 2), None, None),
    (1, 7, (9, 10), 3, (7, 7), (1, 1), (3, 3), (1, 1), 8, 128),
    (2, 6, (7, 9), 6, (1, 1), (2, 2), (0, 0), (1, 1), 4, 16),
    (1, 4, (10, 7), 3, (3, 3), (1, 1), (0, 0), (2, 2), None, 32),
    (1, 17, (6, 5), 1, (5, 5), (1, 1), (3, 3), (1, 1), None, None),
    (2, 3, (9, 12), 6, (7, 7), (2, 2), (3, 3), (2, 2), None, None),
    (1, 5, (9, 8), 3, (3, 5), (1, 2), (0, 1), (2, 1), 4, 16),
    (1, 3, (5, 6), 6, (5, 3), (2, 1), (3, 0), (1, 2), None, None),
]


def _case_id(case) -> str:
    n, c, size, m, kernel, stride, padding, dilation, *_ = case
    return f"N{n}-C{c}-{size[0]}x{size[1]}-m{m}-k{kernel[0]}x{kernel[1]}-s{stride}-p{padding}-d{dilation}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_reference_fp32(device, case):
    n, c, size, m, kernel, stride, padding, dilation, block_c, block_p = case
    x, atoms, grad_out = _inputs(n, c, size, m, kernel, stride, padding, dilation, device=device)
    ref_out, ref_gx, ref_ga = _reference(x, atoms, grad_out, stride, padding, dilation)
    blocks = {"block_c": block_c, "block_p": block_p}

    out = tac.forward(x, atoms, stride, padding, dilation, **blocks)
    grad_x, grad_atoms = tac.backward(grad_out, x, atoms, stride, padding, dilation, True, True, **blocks)

    assert out.shape == ref_out.shape and out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_x, ref_gx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_atoms, ref_ga, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype, tol", [(torch.bfloat16, 2e-2), (torch.float16, 2e-3)], ids=["bf16", "fp16"])
def test_low_precision_accumulates_in_fp32(device, dtype, tol):
    """bf16/fp16 in and out, fp32 accumulation: error is one output rounding, not k²·C of them."""
    stride, padding, dilation = (2, 1), (2, 1), (1, 2)
    x, atoms, grad_out = _inputs(2, 5, (9, 8), 6, (5, 3), stride, padding, dilation, device=device, dtype=dtype)
    out = tac.forward(x, atoms, stride, padding, dilation, block_c=4, block_p=16)
    grad_x, grad_atoms = tac.backward(grad_out, x, atoms, stride, padding, dilation, True, True, block_c=4)
    assert (out.dtype, grad_x.dtype, grad_atoms.dtype) == (dtype, dtype, dtype)

    # the oracle sees the same rounded inputs, in fp64
    ref = _reference(x.double(), atoms.double(), grad_out.double(), stride, padding, dilation)
    for name, got, want in zip(("out", "grad_x", "grad_atoms"), (out, grad_x, grad_atoms), ref):
        err = (got.double() - want).abs().max().item() / want.abs().max().item()
        assert err < tol, f"{name}: relative error {err:.2e} >= {tol:.0e} for {dtype}"


def test_strided_layouts_and_requested_grads(device):
    """Channels-last x, non-contiguous atoms, a stride-0 grad_out (from ``sum()``), needs_* flags."""
    stride, padding, dilation = (2, 2), (1, 1), (1, 1)
    x, atoms, _ = _inputs(2, 5, (7, 9), 3, (3, 3), stride, padding, dilation, device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    atoms_t = atoms.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not x_cl.is_contiguous() and not atoms_t.is_contiguous()
    grad_out = torch.ones((), device=device).expand(2, 15, 4, 5)
    ref_out, ref_gx, ref_ga = _reference(x, atoms, grad_out, stride, padding, dilation)

    out = tac.forward(x_cl, atoms_t, stride, padding, dilation)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    grad_x, grad_atoms = tac.backward(grad_out, x_cl, atoms_t, stride, padding, dilation, True, False)
    assert grad_atoms is None and grad_x.is_contiguous()
    torch.testing.assert_close(grad_x, ref_gx, rtol=1e-5, atol=1e-5)
    grad_x, grad_atoms = tac.backward(grad_out, x_cl, atoms_t, stride, padding, dilation, False, True)
    assert grad_x is None
    torch.testing.assert_close(grad_atoms, ref_ga, rtol=1e-5, atol=1e-5)


def test_bad_arguments_raise(device):
    one = ((1, 1), (1, 1), (1, 1))
    x, atoms, grad_out = _inputs(1, 2, (5, 5), 2, (3, 3), *one, device=device)
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        tac.forward(x.double(), atoms.double(), *one)
    with pytest.raises(ValueError, match="output spatial size"):
        tac.forward(x, atoms[..., :-1], *one)
    with pytest.raises(TypeError, match="stride must be a tuple of 2 ints"):
        tac.forward(x, atoms, 1, (1, 1), (1, 1))
    with pytest.raises(ValueError, match="block_c must be a power of two"):
        tac.forward(x, atoms, *one, block_c=3)
    with pytest.raises(ValueError, match="grad_out must have shape"):
        tac.backward(grad_out[:, :-1], x, atoms, *one, True, True)


def test_cpu_tensors_need_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert not tac.interpreting()
    x, atoms, _ = _inputs(1, 2, (5, 5), 2, (3, 3), (1, 1), (1, 1), (1, 1), device="cpu")
    with pytest.raises(ValueError, match="CUDA tensors"):
        tac.forward(x, atoms, (1, 1), (1, 1), (1, 1))


def test_module_imports_without_triton(run_without_triton):
    run_without_triton("triton_atom_conv",
                       "t.forward(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3, 1, 1), (1, 1), (0, 0), (1, 1))")
