"""Triton kernels for the atom convolution (paper §3.2, Eq. 5): forward and both gradients.

Semantics are those of ``acda.functional.atom_conv2d``: ``x`` (N, C, H, W), ``atoms``
(N, m, k_h, k_w, H', W'); ``atoms[n, b, u, v, i, j]`` multiplies
``x[n, c, i·s_h − p_h + u·d_h, j·s_w − p_w + v·d_w]`` (zero outside the image) and the sum over
the taps ``(u, v)`` is output channel ``c·m + b`` of ``out`` (N, C·m, H', W').

``forward`` and ``backward`` (w.r.t. atoms; w.r.t. x as a deterministic gather, no atomics) follow
the neighbourhood kernels of NATTEN; inputs are read through their strides (no copies), results are
written contiguous, accumulation is fp32 (fp32, bf16, fp16 inputs; fp64 raises ``TypeError``).

Runs on CUDA tensors when ``is_available()``, and on CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``, how CI tests them: ``tests/test_ops_triton.py``); the kernels are
decorated lazily, so importing this module never needs triton. See docs/triton.md for the kernel
design, the interpreter constraints and the GPU benchmark.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import Any

import torch

from ..utils import conv_output_size, is_int, pair

__all__ = ["is_available", "interpreting", "forward", "backward"]

_FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _find_triton() -> bool:
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):
        return False


_HAS_TRITON = _find_triton()

# Default tiles: BLOCK_M·BLOCK_C·BLOCK_P fp32 accumulators per program (8·16·64 = 8192 for m ≤ 8,
# 64 registers per thread at 4 warps).
BLOCK_C = 16
BLOCK_P = 64
NUM_WARPS = 4


def interpreting() -> bool:
    """True when Triton's CPU interpreter is switched on (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def is_available() -> bool:
    """True when triton imports and CUDA is available (the kernels can run on the GPU)."""
    if not _HAS_TRITON or not torch.cuda.is_available():
        return False
    try:
        import triton  # noqa: F401
    except Exception:  # a broken triton install counts as absent
        return False
    return True


def _lazy_kernels(build: Callable[[Any], dict[str, Any]]) -> Callable[[bool], dict[str, Any]]:
    """Decorator: ``_kernels = _lazy_kernels(build)`` gives ``_kernels(interpret)``, the kernels that
    ``build(h)`` decorates from the shared ``@triton.jit`` helpers ``h`` (``triton_common.Helpers``).

    Both are decorated on first use, once per interpreter mode (cached: ``triton.jit`` reads
    ``TRITON_INTERPRET`` when it decorates), so importing a kernel module needs no triton. Every call
    also binds that mode's helpers by name in ``build``'s module globals: the compiler finds them in
    the kernels' closure, the interpreter only there (see ``triton_common``).
    """
    @functools.cache
    def cached(interpret: bool) -> dict[str, Any]:
        from .triton_common import helpers

        return build(helpers(interpret))

    @functools.wraps(build)
    def kernels(interpret: bool) -> dict[str, Any]:
        from .triton_common import bind

        bind(build.__globals__, interpret)
        return cached(interpret)

    return kernels


@_lazy_kernels
def _kernels(h) -> dict[str, Any]:
    """Build (decorate) the three kernels from the shared jit helpers ``h`` (see ``_lazy_kernels``)."""
    import triton
    import triton.language as tl

    pixel_tile, block_range, tap_source, tap_reader = h.pixel_tile, h.block_range, h.tap_source, h.tap_reader

    @triton.jit
    def _fwd(
        x_ptr, a_ptr, out_ptr,
        C, H, W, OH, OW, M,
        sxn, sxc, sxh, sxw,
        san, sab, sau, sav, sah, saw,
        STRIDE_H, STRIDE_W, PAD_H, PAD_W, DIL_H, DIL_W,
        KH: tl.constexpr, KW: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
    ):
        P = OH * OW
        n, offs_p, mask_p, oi, oj = pixel_tile(tl.program_id(0), OH, OW, BLOCK_P)
        offs_c, mask_c = block_range(tl.program_id(1) * BLOCK_C, BLOCK_C, C)
        offs_b, mask_b = block_range(0, BLOCK_M, M)

        x_base = x_ptr + n * sxn + offs_c.to(tl.int64)[:, None] * sxc
        a_base = a_ptr + n * san + offs_b[:, None] * sab + (oi * sah + oj * saw)[None, :]
        a_mask = mask_b[:, None] & mask_p[None, :]
        acc = tl.full([BLOCK_M, BLOCK_C, BLOCK_P], 0.0, tl.float32)
        for u in tl.static_range(KH):
            ih, ok_h = tap_source(oi, u, STRIDE_H, PAD_H, DIL_H, H, mask_p)
            for v in tl.static_range(KW):
                iw, ok = tap_source(oj, v, STRIDE_W, PAD_W, DIL_W, W, ok_h)
                xv = tl.load(x_base + (ih * sxh + iw * sxw)[None, :],
                             mask=mask_c[:, None] & ok[None, :], other=0.0).to(tl.float32)
                av = tl.load(a_base + u * sau + v * sav, mask=a_mask, other=0.0).to(tl.float32)
                acc += av[:, None, :] * xv[None, :, :]

        ch = offs_c.to(tl.int64)[None, :, None] * M + offs_b[:, None, None]
        out_ptrs = out_ptr + n * C * M * P + ch * P + offs_p[None, None, :]
        out_mask = mask_b[:, None, None] & mask_c[None, :, None] & mask_p[None, None, :]
        tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=out_mask)

    @triton.jit
    def _bwd_atoms(
        go_ptr, x_ptr, ga_ptr,
        C, H, W, OH, OW, M,
        sgn, sgc, sgh, sgw,
        sxn, sxc, sxh, sxw,
        STRIDE_H, STRIDE_W, PAD_H, PAD_W, DIL_H, DIL_W,
        KH: tl.constexpr, KW: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_P: tl.constexpr,
    ):
        P = OH * OW
        n, offs_p, mask_p, oi, oj = pixel_tile(tl.program_id(0), OH, OW, BLOCK_P)
        tap = tl.program_id(1)
        u = tap // KW
        v = tap % KW
        offs_b, mask_b = block_range(0, BLOCK_M, M)
        ih, ok = tap_source(oi, u, STRIDE_H, PAD_H, DIL_H, H, mask_p)
        iw, ok = tap_source(oj, v, STRIDE_W, PAD_W, DIL_W, W, ok)

        x_pix = x_ptr + n * sxn + ih * sxh + iw * sxw
        go_pix = go_ptr + n * sgn + offs_b[:, None].to(tl.int64) * sgc + (oi * sgh + oj * sgw)[None, :]
        # grad_out is read on padding taps too: their gradient is Σ_c grad_out·0, NaN where grad_out is not finite
        go_mask = mask_b[:, None] & mask_p[None, :]
        acc = tl.full([BLOCK_M, BLOCK_P], 0.0, tl.float32)
        # one channel per step: no block reduction (see "Interpreter" in docs/triton.md)
        for c in range(0, C):
            xv = tl.load(x_pix + c * sxc, mask=ok, other=0.0).to(tl.float32)
            gv = tl.load(go_pix + c * M * sgc, mask=go_mask, other=0.0).to(tl.float32)
            acc += gv * xv[None, :]

        # grad_atoms is contiguous (N, M, KH, KW, OH, OW)
        ga_ptrs = ga_ptr + n * M * KH * KW * P + offs_b[:, None] * (KH * KW * P) + tap * P + offs_p[None, :]
        tl.store(ga_ptrs, acc.to(ga_ptr.dtype.element_ty), mask=mask_b[:, None] & mask_p[None, :])

    @triton.jit
    def _bwd_x(
        go_ptr, a_ptr, gx_ptr,
        C, H, W, OH, OW,
        sgn, sgc, sgh, sgw,
        san, sab, sau, sav, sah, saw,
        STRIDE_H, STRIDE_W, PAD_H, PAD_W, DIL_H, DIL_W,
        KH: tl.constexpr, KW: tl.constexpr, M: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
    ):
        Q = H * W
        n, offs_q, mask_q, y, xc = pixel_tile(tl.program_id(0), H, W, BLOCK_P)
        offs_c, mask_c = block_range(tl.program_id(1) * BLOCK_C, BLOCK_C, C)

        go_base = go_ptr + n * sgn + offs_c.to(tl.int64)[:, None] * (M * sgc)
        a_base = a_ptr + n * san
        acc = tl.full([BLOCK_C, BLOCK_P], 0.0, tl.float32)
        for u in tl.static_range(KH):
            # output row i reads input row y through tap u iff i·s_h = y + p_h − u·d_h
            oi, ok_h = tap_reader(y, u, STRIDE_H, PAD_H, DIL_H, OH, mask_q)
            for v in tl.static_range(KW):
                oj, ok = tap_reader(xc, v, STRIDE_W, PAD_W, DIL_W, OW, ok_h)
                a_tap = a_base + u * sau + v * sav + oi * sah + oj * saw
                go_tap = go_base + (oi * sgh + oj * sgw)[None, :]
                go_mask = mask_c[:, None] & ok[None, :]
                for b in tl.static_range(M):
                    av = tl.load(a_tap + b * sab, mask=ok, other=0.0).to(tl.float32)
                    gv = tl.load(go_tap + b * sgc, mask=go_mask, other=0.0).to(tl.float32)
                    acc += av[None, :] * gv

        gx_ptrs = gx_ptr + n * C * Q + offs_c.to(tl.int64)[:, None] * Q + offs_q[None, :]
        tl.store(gx_ptrs, acc.to(gx_ptr.dtype.element_ty), mask=mask_c[:, None] & mask_q[None, :])

    return {"fwd": _fwd, "bwd_atoms": _bwd_atoms, "bwd_x": _bwd_x}


def _pair3(stride, padding, dilation) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    out = []
    for name, value, minimum in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(map(is_int, value)):
            raise TypeError(f"{name} must be a tuple of 2 ints, got {value!r}")
        out.append(pair(value, name, minimum=minimum))
    return out[0], out[1], out[2]


def _check_inputs(x: torch.Tensor, atoms: torch.Tensor, stride, padding, dilation):
    """Validate and return ``(stride, padding, dilation)``; raises ``TypeError``/``ValueError``/``RuntimeError``."""
    if not _HAS_TRITON:
        raise RuntimeError("the triton backend needs the 'triton' package, which is not installed")
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a 4-D tensor (N, C, H, W), got shape {tuple(getattr(x, 'shape', ()))}")
    if not isinstance(atoms, torch.Tensor) or atoms.dim() != 6:
        raise ValueError(
            f"atoms must be a 6-D tensor (N, m, k, k, H', W'), got shape {tuple(getattr(atoms, 'shape', ()))}"
        )
    for name, t in (("x", x), ("atoms", atoms)):
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32, bfloat16 or float16 for the triton backend, got {t.dtype}")
    if x.device != atoms.device:
        raise ValueError(f"atoms must be on the device of x ({x.device}), got {atoms.device}")
    if x.device.type != "cuda" and not (x.device.type == "cpu" and interpreting()):
        raise ValueError(
            f"the triton backend needs CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), got device {x.device}"
        )
    stride, padding, dilation = _pair3(stride, padding, dilation)
    n, _, kh, kw, oh, ow = atoms.shape
    if n != x.shape[0]:
        raise ValueError(f"atoms batch size {n} does not match x batch size {x.shape[0]}")
    expected = conv_output_size(tuple(x.shape[-2:]), (kh, kw), stride, padding, dilation)
    if (oh, ow) != expected or min(expected) < 1:
        raise ValueError(
            f"atoms must have output spatial size {expected} (>= 1) for input {tuple(x.shape[-2:])}, kernel "
            f"{(kh, kw)}, stride {stride}, padding {padding}, dilation {dilation}; got {(oh, ow)}"
        )
    return stride, padding, dilation


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(v: int) -> int:
    return 1 << max(v - 1, 0).bit_length()


def _blocks(m: int, block_c: int | None, block_p: int | None) -> tuple[int, int, int]:
    bc = BLOCK_C if block_c is None else block_c
    bp = BLOCK_P if block_p is None else block_p
    for name, value in (("block_c", bc), ("block_p", bp)):
        if value < 1 or value & (value - 1):
            raise ValueError(f"{name} must be a power of two, got {value}")
    return _next_pow2(m), bc, bp


def forward(
    x: torch.Tensor,
    atoms: torch.Tensor,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    *,
    block_c: int | None = None,
    block_p: int | None = None,
) -> torch.Tensor:
    """Atom convolution (Eq. 5): (N, C, H, W) × (N, m, k_h, k_w, H', W') → (N, C·m, H', W'), contiguous."""
    stride, padding, dilation = _check_inputs(x, atoms, stride, padding, dilation)
    k = _kernels(interpreting())
    n, c, h, w = x.shape
    _, m, kh, kw, oh, ow = atoms.shape
    out = torch.empty((n, c * m, oh, ow), dtype=torch.promote_types(x.dtype, atoms.dtype), device=x.device)
    if out.numel() == 0:
        return out
    bm, bc, bp = _blocks(m, block_c, block_p)
    grid = (n * _cdiv(oh * ow, bp), _cdiv(c, bc))
    k["fwd"][grid](
        x, atoms, out,
        c, h, w, oh, ow, m,
        *x.stride(), *atoms.stride(),
        *stride, *padding, *dilation,
        KH=kh, KW=kw, BLOCK_M=bm, BLOCK_C=bc, BLOCK_P=bp, num_warps=NUM_WARPS,
    )
    return out


def backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    atoms: torch.Tensor,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    needs_x: bool,
    needs_atoms: bool,
    *,
    block_c: int | None = None,
    block_p: int | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of the atom convolution w.r.t. ``x`` and ``atoms`` (each ``None`` unless requested)."""
    stride, padding, dilation = _check_inputs(x, atoms, stride, padding, dilation)
    n, c, h, w = x.shape
    _, m, kh, kw, oh, ow = atoms.shape
    if not isinstance(grad_out, torch.Tensor) or tuple(grad_out.shape) != (n, c * m, oh, ow):
        raise ValueError(
            f"grad_out must have shape {(n, c * m, oh, ow)}, got {tuple(getattr(grad_out, 'shape', ()))}"
        )
    if grad_out.device != x.device or grad_out.dtype not in _FLOAT_DTYPES:
        raise ValueError(
            f"grad_out must be a float32/bfloat16/float16 tensor on {x.device}, got {grad_out.dtype} on {grad_out.device}"
        )
    k = _kernels(interpreting())
    bm, bc, bp = _blocks(m, block_c, block_p)
    grad_x = grad_atoms = None
    if needs_x:
        grad_x = torch.empty((n, c, h, w), dtype=x.dtype, device=x.device)
        if grad_x.numel():
            if grad_out.numel() == 0:
                grad_x.zero_()
            else:
                grid = (n * _cdiv(h * w, bp), _cdiv(c, bc))
                k["bwd_x"][grid](
                    grad_out, atoms, grad_x,
                    c, h, w, oh, ow,
                    *grad_out.stride(), *atoms.stride(),
                    *stride, *padding, *dilation,
                    KH=kh, KW=kw, M=m, BLOCK_C=bc, BLOCK_P=bp, num_warps=NUM_WARPS,
                )
    if needs_atoms:
        grad_atoms = torch.empty((n, m, kh, kw, oh, ow), dtype=atoms.dtype, device=atoms.device)
        if grad_atoms.numel():
            if c == 0:
                grad_atoms.zero_()
            else:
                grid = (n * _cdiv(oh * ow, bp), kh * kw)
                k["bwd_atoms"][grid](
                    grad_out, x, grad_atoms,
                    c, h, w, oh, ow, m,
                    *grad_out.stride(), *x.stride(),
                    *stride, *padding, *dilation,
                    KH=kh, KW=kw, BLOCK_M=bm, BLOCK_P=bp, num_warps=NUM_WARPS,
                )
    return grad_x, grad_atoms
