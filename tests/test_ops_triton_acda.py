"""Fused Triton two-layer ACDA on the α path (§3.2: D = α·ψ, Eq. 5, Eq. 6) against the unfold oracle.

The oracle is ``reference.fused_forward``/``fused_backward`` on ``atoms = einsum(alpha, bases)``
(``grad_alpha`` = the atoms' gradient projected on the bases), in fp64 on the same (rounded)
inputs. Without a GPU the kernels run on CPU tensors under Triton's interpreter: the module-scoped
``triton_device`` fixture of ``tests/conftest.py`` (``device`` here) sets ``TRITON_INTERPRET=1``
for these tests only (the kernels are decorated lazily, under the setting current at their first
call). With CUDA and ``TRITON_INTERPRET`` not set to ``1`` the same checks run the compiled kernels.
Shapes are tiny: the interpreter is slow.
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed: the Triton backend cannot be tested")

from acda.ops import reference  # noqa: E402
from acda.ops import triton_acda as ta  # noqa: E402
from acda.utils import conv_output_size  # noqa: E402


@pytest.fixture(scope="module")
def device(triton_device):
    return triton_device


def _inputs(n, c, size, m, nb, kernel, o, stride, padding, dilation, *, bias=True, device, dtype=torch.float32):
    """x, alpha, bases, coef, bias | None, grad_out (fp32 draws, then cast to ``dtype``)."""
    out_size = conv_output_size(size, kernel, stride, padding, dilation)
    tensors = (
        torch.randn(n, c, *size),
        torch.randn(n, m, nb, *out_size),
        torch.randn(nb, *kernel),
        torch.randn(o, c, m),
        torch.randn(o) if bias else None,
        torch.randn(n, o, *out_size),
    )
    return tuple(None if t is None else t.to(device=device, dtype=dtype) for t in tensors)


def _oracle(x, alpha, bases, coef, bias, grad_out, stride, padding, dilation):
    """(out, grad_x, grad_alpha, grad_coef) of the reference in fp64, on CPU."""
    x, alpha, bases, coef, grad_out = (t.detach().cpu().double() for t in (x, alpha, bases, coef, grad_out))
    bias = None if bias is None else bias.detach().cpu().double()
    out = reference.alpha_forward(x, alpha, bases, coef, bias, stride, padding, dilation)
    return (out, *reference.alpha_backward(grad_out, x, alpha, bases, coef, stride, padding, dilation,
                                           True, True, True))


def _assert_close(name, got, want, tol):
    """Max error relative to the largest magnitude of ``want`` below ``tol``."""
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    scale = want.abs().max().item() if want.numel() else 1.0
    err = (got.detach().cpu().double() - want).abs().max().item() if want.numel() else 0.0
    assert err <= tol * max(scale, 1e-6), f"{name}: error {err:.2e} > {tol:.0e} × scale {scale:.2e}"


# (N, C, (H, W), m, B, (k_h, k_w), O, stride, padding, dilation, bias, blocks)
CASES = [
    (2, 3, (7, 9), 2, 4, (3, 3), 5, (1, 1), (1, 1), (1, 1), True, {}),  # "same"
    (1, 3, (8, 6), 2, 4, (3, 3), 5, (2, 2), (0, 0), (2, 2), False, {}),  # stride 2, dilation 2, no padding
    (1, 4, (6, 7), 3, 6, (5, 5), 6, (2, 2), (2, 2), (1, 1), True, {}),  # k = 5, stride 2
    (2, 5, (5, 8), 1, 1, (1, 1), 3, (1, 1), (0, 0), (1, 1), False, {}),  # k = 1, m = B = 1
    (1, 3, (9, 7), 2, 3, (3, 5), 5, (1, 2), (0, 2), (2, 1), True, {}),  # non-square kernel, mixed geometry
    # several pixel, channel and output-channel tiles (C, O > 16 with 16-wide blocks)
    (1, 17, (4, 5), 2, 3, (3, 3), 18, (1, 1), (1, 1), (1, 1), True, {"block_p": 16, "block_c": 16, "block_o": 16}),
]


def _case_id(case) -> str:
    n, c, size, m, nb, kernel, o, stride, padding, dilation, bias, blocks = case
    return (f"N{n}-C{c}-{size[0]}x{size[1]}-m{m}-B{nb}-k{kernel[0]}x{kernel[1]}-O{o}-s{stride[0]}{stride[1]}"
            f"-p{padding[0]}{padding[1]}-d{dilation[0]}{dilation[1]}{'-bias' if bias else ''}{'-tiles' if blocks else ''}")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_oracle_fp32(device, case):
    n, c, size, m, nb, kernel, o, stride, padding, dilation, bias, blocks = case
    x, alpha, bases, coef, b, grad_out = _inputs(n, c, size, m, nb, kernel, o, stride, padding, dilation,
                                                 bias=bias, device=device)
    want = _oracle(x, alpha, bases, coef, b, grad_out, stride, padding, dilation)

    out = ta.alpha_forward(x, alpha, bases, coef, b, stride, padding, dilation, **blocks)
    grads = ta.alpha_backward(grad_out, x, alpha, bases, coef, stride, padding, dilation, True, True, True, **blocks)

    assert out.dtype == torch.float32 and out.is_contiguous()
    assert [g.dtype for g in grads] == [torch.float32] * 3
    for name, got, ref in zip(("out", "grad_x", "grad_alpha", "grad_coef"), (out, *grads), want):
        _assert_close(name, got, ref, 1e-5)


@pytest.mark.parametrize("dtype, tol", [(torch.bfloat16, 2e-2), (torch.float16, 3e-3)], ids=["bf16", "fp16"])
def test_low_precision_accumulates_in_fp32(device, dtype, tol):
    """bf16/fp16 in and out, fp32 accumulation: against the oracle on the same rounded inputs."""
    stride, padding, dilation = (2, 1), (1, 2), (1, 2)
    args = _inputs(2, 5, (7, 8), 3, 4, (3, 3), 6, stride, padding, dilation, device=device, dtype=dtype)
    x, alpha, bases, coef, b, grad_out = args
    want = _oracle(*args, stride, padding, dilation)

    out = ta.alpha_forward(x, alpha, bases, coef, b, stride, padding, dilation)
    grads = ta.alpha_backward(grad_out, x, alpha, bases, coef, stride, padding, dilation, True, True, True)

    assert [t.dtype for t in (out, *grads)] == [dtype] * 4
    for name, got, ref in zip(("out", "grad_x", "grad_alpha", "grad_coef"), (out, *grads), want):
        _assert_close(name, got, ref, tol)


def test_strided_layouts_stride0_grad_and_determinism(device):
    """Channels-last x, non-contiguous alpha and coef, a stride-0 grad_out (from ``sum()``)."""
    stride, padding, dilation = (2, 2), (1, 1), (1, 1)
    x, alpha, bases, coef, b, _ = _inputs(2, 3, (7, 9), 2, 4, (3, 3), 5, stride, padding, dilation, device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    alpha_t = alpha.transpose(-1, -2).contiguous().transpose(-1, -2)
    coef_t = coef.permute(2, 1, 0).contiguous().permute(2, 1, 0)
    assert not (x_cl.is_contiguous() or alpha_t.is_contiguous() or coef_t.is_contiguous())
    grad_out = torch.ones((), device=device).expand(2, 5, 4, 5)
    want = _oracle(x, alpha, bases, coef, b, grad_out, stride, padding, dilation)

    out = ta.alpha_forward(x_cl, alpha_t, bases, coef_t, b, stride, padding, dilation)
    assert out.is_contiguous()
    _assert_close("out", out, want[0], 1e-5)
    grads = ta.alpha_backward(grad_out, x_cl, alpha_t, bases, coef_t, stride, padding, dilation, True, True, True)
    for name, got, ref in zip(("grad_x", "grad_alpha", "grad_coef"), grads, want[1:]):
        _assert_close(name, got, ref, 1e-5)
        assert got.is_contiguous()
    # grad_coef: per-program partials summed by torch, no atomics: bitwise reproducible
    again = ta.alpha_backward(grad_out, x_cl, alpha_t, bases, coef_t, stride, padding, dilation, False, False, True)
    assert torch.equal(again[2], grads[2])


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (True, False, True)], ids=["x", "alpha", "coef", "x+coef"])
def test_requested_gradients_only(device, needs):
    stride, padding, dilation = (1, 1), (0, 0), (1, 1)
    args = _inputs(1, 3, (5, 6), 2, 3, (3, 3), 4, stride, padding, dilation, bias=False, device=device)
    x, alpha, bases, coef, _, grad_out = args
    want = _oracle(*args, stride, padding, dilation)[1:]
    grads = ta.alpha_backward(grad_out, x, alpha, bases, coef, stride, padding, dilation, *needs)
    for name, need, got, ref in zip(("grad_x", "grad_alpha", "grad_coef"), needs, grads, want):
        if need:
            _assert_close(name, got, ref, 1e-5)
        else:
            assert got is None, f"{name} was not requested"


def test_empty_batch(device):
    stride, padding, dilation = (1, 1), (1, 1), (1, 1)
    x, alpha, bases, coef, b, grad_out = _inputs(0, 3, (5, 6), 2, 3, (3, 3), 4, stride, padding, dilation,
                                                 device=device)
    out = ta.alpha_forward(x, alpha, bases, coef, b, stride, padding, dilation)
    assert out.shape == (0, 4, 5, 6) and out.dtype == x.dtype
    grad_x, grad_alpha, grad_coef = ta.alpha_backward(grad_out, x, alpha, bases, coef, stride, padding, dilation,
                                                      True, True, True)
    assert grad_x.shape == x.shape and grad_alpha.shape == alpha.shape
    assert grad_coef.shape == coef.shape and not grad_coef.any()


def test_dot_precision_follows_torch_tf32_flag(monkeypatch):
    """TF32 only for fp32 inputs on the GPU with ``allow_tf32``; bf16 dots widened in the interpreter."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    assert ta._dot_mode(torch.float32) == (False, "tf32")
    assert ta._dot_mode(torch.bfloat16) == (True, "ieee")
    assert ta._dot_mode(torch.float16) == (True, "ieee")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    assert ta._dot_mode(torch.float32) == (False, "ieee")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    assert ta._dot_mode(torch.float32) == (False, "ieee")
    assert ta._dot_mode(torch.bfloat16) == (False, "ieee")
    assert ta._dot_mode(torch.float16) == (True, "ieee")


def test_bad_blocks_and_device(device, monkeypatch):
    one = ((1, 1), (1, 1), (1, 1))
    x, alpha, bases, coef, b, _ = _inputs(1, 2, (4, 4), 2, 2, (3, 3), 2, *one, device=device)
    with pytest.raises(ValueError, match="block_c must be a power of two >= 16"):
        ta.alpha_forward(x, alpha, bases, coef, b, *one, block_c=8)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="CUDA tensors"):
        ta.alpha_forward(x.cpu(), alpha.cpu(), bases.cpu(), coef.cpu(), b.cpu(), *one)


def test_module_imports_without_triton(run_without_triton):
    call = ("t.alpha_forward(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 1, 1, 1), torch.zeros(1, 3, 3), "
            "torch.zeros(1, 1, 1), None, (1, 1), (0, 0), (1, 1))")
    run_without_triton("triton_acda", call)


def test_layer_runs_the_fused_triton_op(device, spy_backend):
    """``ACDAConv2d(backend="triton")`` runs the α path (one fused op each way), equal to the reference layer."""
    from acda import ACDAConv2d

    torch.manual_seed(0)
    layer = ACDAConv2d(3, 4, 3, padding=1, num_atoms=2, num_bases=2, backend="triton").to(device)
    x = torch.randn(2, 3, 6, 5, device=device, requires_grad=True)
    with spy_backend("triton", "alpha_forward", "alpha_backward", "forward") as calls:
        out = layer(x)
        out.square().sum().backward()
    assert calls == {"alpha_forward": 1, "alpha_backward": 1, "forward": 0}
    grads = [x.grad.clone(), *(p.grad.clone() for p in layer.parameters())]
    x.grad = None
    layer.zero_grad()
    layer.backend = "reference"
    ref = layer(x)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    for a, b in zip(grads, [x.grad, *(p.grad for p in layer.parameters())]):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
