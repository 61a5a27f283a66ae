"""Fused Triton kernels for the two-layer ACDA on the "α path" (paper §3.2, Eq. 5 then Eq. 6).

The atoms are never materialised: each program forms them per pixel, in registers, from the
basis coefficients ``alpha`` and the fixed bases (``D = α·ψ``, §3.2), convolves them with the
input (Eq. 5) and contracts the result with the coefficients (the 1×1 convolution of Eq. 6) by
``tl.dot``, all in one kernel. Semantics (cross-correlation, zero padding)::

    atoms[n, b, u, v, i, j] = Σ_β alpha[n, b, β, i, j] · bases[β, u, v]
    z[n, c·m + b, i, j]     = Σ_{u,v} atoms[n, b, u, v, i, j] · x[n, c, i·s_h − p_h + u·d_h, j·s_w − p_w + v·d_w]
    out[n, o, i, j]         = bias[o] + Σ_{c,b} coef[o, c, b] · z[n, c·m + b, i, j]

with ``x`` (N, C, H, W), ``alpha`` (N, m, B, H', W'), ``bases`` (B, k_h, k_w) (no gradient),
``coef`` (O, C, m), ``bias`` (O,) or ``None``. The oracle is ``acda.ops.reference.fused_forward``
/ ``fused_backward`` applied to ``einsum("nmbhw,buv->nmuvhw", alpha, bases)``. Accumulation is
fp32; the backward is deterministic. Runs on CUDA, and on CPU under ``TRITON_INTERPRET=1`` (how CI
tests it: ``tests/test_ops_triton_acda.py``). See docs/triton.md for the four kernels, the dot
precision and the interpreter constraints.
"""
from __future__ import annotations

from typing import Any

import torch

from .triton_atom_conv import _HAS_TRITON, _lazy_kernels, interpreting, is_available

__all__ = ["is_available", "interpreting", "alpha_forward", "alpha_backward"]

BLOCK_P = 64
BLOCK_C_MAX = 32
BLOCK_O_MAX = 64
NUM_WARPS = 4
# grad_coef: about this many programs in all (SPLIT · m · channel tiles · output tiles), from the shapes only.
COEF_PROGRAMS = 512
# grad_coef: software pipelining of its tile loop multi-buffers the k_h·k_w x tiles in shared memory
# (fp32, k = 5, sm_90: 231 KB at 2 stages, 455 KB at 3 — over the limit; 24 KB at 1).
COEF_STAGES = 1


@_lazy_kernels
def _kernels(h) -> dict[str, Any]:
    """Decorate the four kernels, from the shared jit helpers ``h`` (see ``triton_atom_conv._lazy_kernels``)."""
    return {"fwd": _fwd_kernel(h), "bwd_gz": _bwd_gz_kernel(h), "bwd_x": _bwd_x_kernel(h),
            "bwd_coef": _bwd_coef_kernel(h)}


def _fwd_kernel(h) -> Any:
    """Forward: per tile of pixels × output channels, z_b from the atoms α·ψ in registers, then ``tl.dot`` with W_b."""
    import triton
    import triton.language as tl

    pixel_tile, block_range, tap_source, tap_reader, basis_tap, atom_at, dot_acc = h

    @triton.jit
    def _fwd(
        x_ptr, a_ptr, bs_ptr, w_ptr, bias_ptr, out_ptr,
        C, H, W, OH, OW, M, NB, CO,
        sxn, sxc, sxh, sxw,
        san, sam, sab, sah, saw,
        swo, swc, swm,
        STRIDE_H, STRIDE_W, PAD_H, PAD_W, DIL_H, DIL_W,
        KH: tl.constexpr, KW: tl.constexpr, HAS_BIAS: tl.constexpr, LOWP: tl.constexpr, PREC: tl.constexpr,
        BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_B: tl.constexpr,
    ):
        P = OH * OW
        n, offs_p, mask_p, oi, oj = pixel_tile(tl.program_id(0), OH, OW, BLOCK_P)
        offs_o, mask_o = block_range(tl.program_id(1) * BLOCK_O, BLOCK_O, CO)
        offs_bt, mask_bt = block_range(0, BLOCK_B, NB)

        a_pix = a_ptr + n * san + (oi * sah + oj * saw)[:, None] + offs_bt[None, :] * sab  # [P, B]
        a_mask = mask_p[:, None] & mask_bt[None, :]
        acc = tl.full([BLOCK_P, BLOCK_O], 0.0, tl.float32)
        for c0 in range(0, C, BLOCK_C):
            offs_c, mask_c = block_range(c0, BLOCK_C, C)
            x_base = x_ptr + n * sxn + offs_c.to(tl.int64)[None, :] * sxc  # [1, C]
            w_ptrs = w_ptr + offs_c[:, None] * swc + offs_o[None, :] * swo  # [C, CO]
            w_mask = mask_c[:, None] & mask_o[None, :]
            for b in range(0, M):
                al = tl.load(a_pix + b * sam, mask=a_mask, other=0.0).to(tl.float32)
                z = tl.full([BLOCK_P, BLOCK_C], 0.0, tl.float32)
                for u in tl.static_range(KH):
                    ih, ok_h = tap_source(oi, u, STRIDE_H, PAD_H, DIL_H, H, mask_p)
                    for v in tl.static_range(KW):
                        iw, ok = tap_source(oj, v, STRIDE_W, PAD_W, DIL_W, W, ok_h)
                        atom = atom_at(al, basis_tap(bs_ptr, offs_bt, mask_bt, u, v, KH, KW), 1)  # [P]: D = α·ψ
                        xv = tl.load(x_base + (ih * sxh + iw * sxw)[:, None],
                                     mask=ok[:, None] & mask_c[None, :], other=0.0).to(tl.float32)
                        z += atom[:, None] * xv
                # padded channels: 0 (an infinite atom times the masked 0 would be NaN)
                z = tl.where(mask_c[None, :], z, 0.0)
                wb = tl.load(w_ptrs + b * swm, mask=w_mask, other=0.0)
                acc = dot_acc(z, wb, acc, x_ptr, LOWP, PREC)

        if HAS_BIAS:
            acc += tl.load(bias_ptr + offs_o, mask=mask_o, other=0.0).to(tl.float32)[None, :]
        out_ptrs = out_ptr + n * CO * P + offs_o.to(tl.int64)[None, :] * P + offs_p[:, None]
        tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mask_p[:, None] & mask_o[None, :])

    return _fwd


def _bwd_gz_kernel(h) -> Any:
    """grad z_b = g·W_bᵀ per tile (stored for ``_bwd_x`` when asked) and grad α directly."""
    import triton
    import triton.language as tl

    pixel_tile, block_range, tap_source, tap_reader, basis_tap, atom_at, dot_acc = h

    @triton.jit
    def _bwd_gz(
        g_ptr, x_ptr, bs_ptr, w_ptr, gz_ptr, ga_ptr,
        C, H, W, OH, OW, M, NB, CO,
        sgn, sgo, sgh, sgw,
        sxn, sxc, sxh, sxw,
        swo, swc, swm,
        STRIDE_H, STRIDE_W, PAD_H, PAD_W, DIL_H, DIL_W,
        KH: tl.constexpr, KW: tl.constexpr, STORE_GZ: tl.constexpr, NEED_ALPHA: tl.constexpr,
        LOWP: tl.constexpr, PREC: tl.constexpr,
        BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_B: tl.constexpr,
    ):
        P = OH * OW
        n, offs_p, mask_p, oi, oj = pixel_tile(tl.program_id(0), OH, OW, BLOCK_P)
        offs_bt, mask_bt = block_range(0, BLOCK_B, NB)
        g_pix = g_ptr + n * sgn + (oi * sgh + oj * sgw)[:, None]  # [P, 1]

        for b in range(0, M):
            ga = tl.full([BLOCK_P, BLOCK_B], 0.0, tl.float32)
            for c0 in range(0, C, BLOCK_C):
                offs_c, mask_c = block_range(c0, BLOCK_C, C)
                # gz_b[p, c] = Σ_o g[p, o]·coef[o, c, b]: the gradient of z (Eq. 6 transposed)
                gz = tl.full([BLOCK_P, BLOCK_C], 0.0, tl.float32)
                for o0 in range(0, CO, BLOCK_O):
                    offs_o, mask_o = block_range(o0, BLOCK_O, CO)
                    gt = tl.load(g_pix + offs_o.to(tl.int64)[None, :] * sgo,
                                 mask=mask_p[:, None] & mask_o[None, :], other=0.0)
                    wt = tl.load(w_ptr + offs_o[:, None] * swo + offs_c[None, :] * swc + b * swm,
                                 mask=mask_o[:, None] & mask_c[None, :], other=0.0)
                    gz = dot_acc(gt, wt, gz, x_ptr, LOWP, PREC)
                if STORE_GZ:
                    # scratch (N, C·m, P), fp32, for _bwd_x
                    gz_ptrs = (gz_ptr + (n * C * M + offs_c.to(tl.int64)[None, :] * M + b) * P
                               + offs_p[:, None])
                    tl.store(gz_ptrs, gz, mask=mask_p[:, None] & mask_c[None, :])
                if NEED_ALPHA:
                    x_base = x_ptr + n * sxn + offs_c.to(tl.int64)[None, :] * sxc
                    for u in tl.static_range(KH):
                        ih, ok_h = tap_source(oi, u, STRIDE_H, PAD_H, DIL_H, H, mask_p)
                        for v in tl.static_range(KW):
                            iw, ok = tap_source(oj, v, STRIDE_W, PAD_W, DIL_W, W, ok_h)
                            xv = tl.load(x_base + (ih * sxh + iw * sxw)[:, None],
                                         mask=ok[:, None] & mask_c[None, :], other=0.0).to(tl.float32)
                            g_atom = tl.reduce(gz * xv, 1, tl.standard._sum_combine)  # [P]: grad of atoms[b, u, v]
                            ga += g_atom[:, None] * basis_tap(bs_ptr, offs_bt, mask_bt, u, v, KH, KW)[None, :]
            if NEED_ALPHA:
                # grad_alpha is contiguous (N, M, NB, OH, OW)
                ga_ptrs = ga_ptr + ((n * M + b) * NB + offs_bt[None, :]) * P + offs_p[:, None]
                tl.store(ga_ptrs, ga.to(ga_ptr.dtype.element_ty), mask=mask_p[:, None] & mask_bt[None, :])

    return _bwd_gz


def _bwd_x_kernel(h) -> Any:
    """grad x: a gather over each input pixel's inverse neighbourhood from the stored grad z."""
    import triton
    import triton.language as tl

    pixel_tile, block_range, tap_source, tap_reader, basis_tap, atom_at, dot_acc = h

    @triton.jit
    def _bwd_x(
        gz_ptr, a_ptr, bs_ptr, gx_ptr,
        C, H, W, OH, OW, M, NB,
        san, sam, sab, sah, saw,
        STRIDE_H, STRIDE_W, PAD_H, PAD_W, DIL_H, DIL_W,
        KH: tl.constexpr, KW: tl.constexpr,
        BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_B: tl.constexpr,
    ):
        P = OH * OW
        Q = H * W
        n, offs_q, mask_q, y, xc = pixel_tile(tl.program_id(0), H, W, BLOCK_P)
        offs_c, mask_c = block_range(tl.program_id(1) * BLOCK_C, BLOCK_C, C)
        offs_bt, mask_bt = block_range(0, BLOCK_B, NB)

        gz_base = gz_ptr + (n * C * M + offs_c.to(tl.int64)[None, :] * M) * P  # [1, C]
        a_base = a_ptr + n * san + offs_bt[None, :] * sab  # [1, B]
        acc = tl.full([BLOCK_P, BLOCK_C], 0.0, tl.float32)
        for u in tl.static_range(KH):
            # output row i reads input row y through tap u iff i·s_h = y + p_h − u·d_h
            oi, ok_h = tap_reader(y, u, STRIDE_H, PAD_H, DIL_H, OH, mask_q)
            for v in tl.static_range(KW):
                oj, ok = tap_reader(xc, v, STRIDE_W, PAD_W, DIL_W, OW, ok_h)
                psi = basis_tap(bs_ptr, offs_bt, mask_bt, u, v, KH, KW)
                a_tap = a_base + (oi * sah + oj * saw)[:, None]  # [Q, B]
                a_mask = ok[:, None] & mask_bt[None, :]
                gz_tap = gz_base + (oi * OW + oj)[:, None]  # [Q, C]
                gz_mask = ok[:, None] & mask_c[None, :]
                for b in range(0, M):
                    al = tl.load(a_tap + b * sam, mask=a_mask, other=0.0).to(tl.float32)
                    atom = atom_at(al, psi, 1)
                    gv = tl.load(gz_tap + b * P, mask=gz_mask, other=0.0)
                    acc += atom[:, None] * gv

        gx_ptrs = gx_ptr + n * C * Q + offs_c.to(tl.int64)[None, :] * Q + offs_q[:, None]
        tl.store(gx_ptrs, acc.to(gx_ptr.dtype.element_ty), mask=mask_q[:, None] & mask_c[None, :])

    return _bwd_x


def _bwd_coef_kernel(h) -> Any:
    """grad coef: per-program partial sums of z_bᵀ·g over a split of the pixel tiles (summed in order after)."""
    import triton
    import triton.language as tl

    pixel_tile, block_range, tap_source, tap_reader, basis_tap, atom_at, dot_acc = h

    @triton.jit
    def _bwd_coef(
        g_ptr, x_ptr, a_ptr, bs_ptr, part_ptr,
        N, C, H, W, OH, OW, M, NB, CO,
        sgn, sgo, sgh, sgw,
        sxn, sxc, sxh, sxw,
        san, sam, sab, sah, saw,
        STRIDE_H, STRIDE_W, PAD_H, PAD_W, DIL_H, DIL_W,
        SPLIT,
        KH: tl.constexpr, KW: tl.constexpr, LOWP: tl.constexpr, PREC: tl.constexpr,
        BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_B: tl.constexpr,
    ):
        P = OH * OW
        num_pt = (P + BLOCK_P - 1) // BLOCK_P
        num_ct = (C + BLOCK_C - 1) // BLOCK_C
        split = tl.program_id(0)
        b = tl.program_id(1) // num_ct
        offs_c, mask_c = block_range((tl.program_id(1) % num_ct) * BLOCK_C, BLOCK_C, C)
        offs_o, mask_o = block_range(tl.program_id(2) * BLOCK_O, BLOCK_O, CO)
        offs_bt, mask_bt = block_range(0, BLOCK_B, NB)

        acc = tl.full([BLOCK_C, BLOCK_O], 0.0, tl.float32)
        for t in range(split, N * num_pt, SPLIT):
            n, offs_p, mask_p, oi, oj = pixel_tile(t, OH, OW, BLOCK_P)
            al = tl.load(a_ptr + n * san + b * sam + offs_bt[:, None] * sab + (oi * sah + oj * saw)[None, :],
                         mask=mask_bt[:, None] & mask_p[None, :], other=0.0).to(tl.float32)  # [B, P]
            x_base = x_ptr + n * sxn + offs_c.to(tl.int64)[:, None] * sxc  # [C, 1]
            z = tl.full([BLOCK_C, BLOCK_P], 0.0, tl.float32)  # z_bᵀ, recomputed as in _fwd
            for u in tl.static_range(KH):
                ih, ok_h = tap_source(oi, u, STRIDE_H, PAD_H, DIL_H, H, mask_p)
                for v in tl.static_range(KW):
                    iw, ok = tap_source(oj, v, STRIDE_W, PAD_W, DIL_W, W, ok_h)
                    atom = atom_at(al, basis_tap(bs_ptr, offs_bt, mask_bt, u, v, KH, KW), 0)  # [P]
                    xv = tl.load(x_base + (ih * sxh + iw * sxw)[None, :],
                                 mask=mask_c[:, None] & ok[None, :], other=0.0).to(tl.float32)
                    z += xv * atom[None, :]
            z = tl.where(mask_c[:, None], z, 0.0)
            gt = tl.load(g_ptr + n * sgn + offs_o.to(tl.int64)[None, :] * sgo + (oi * sgh + oj * sgw)[:, None],
                         mask=mask_p[:, None] & mask_o[None, :], other=0.0)  # [P, CO]
            acc = dot_acc(z, gt, acc, x_ptr, LOWP, PREC)

        # partials (SPLIT, M, C, CO), fp32
        part_ptrs = part_ptr + ((split * M + b).to(tl.int64) * C + offs_c[:, None]) * CO + offs_o[None, :]
        tl.store(part_ptrs, acc, mask=mask_c[:, None] & mask_o[None, :])

    return _bwd_coef


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(v: int) -> int:
    return 1 << max(v - 1, 0).bit_length()


def _block(size: int, override: int | None, name: str, maximum: int) -> int:
    """A power-of-two tile ≥ 16 (``tl.dot``'s minimum) covering ``size`` up to ``maximum``."""
    if override is not None:
        if override < 16 or override & (override - 1):
            raise ValueError(f"{name} must be a power of two >= 16, got {override}")
        return override
    return min(max(_next_pow2(size), 16), maximum)


def _check_device(x: torch.Tensor) -> None:
    if not _HAS_TRITON:
        raise RuntimeError("the triton backend needs the 'triton' package, which is not installed")
    if x.device.type != "cuda" and not (x.device.type == "cpu" and interpreting()):
        raise ValueError(
            f"the triton backend needs CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), got device {x.device}"
        )


def _dot_mode(dtype: torch.dtype) -> tuple[bool, str]:
    """(LOWP, PREC): dot in the input dtype for fp16/bf16 (not bf16 in the interpreter); TF32 per torch's flag."""
    interp = interpreting()
    lowp = dtype == torch.float16 or (dtype == torch.bfloat16 and not interp)
    tf32 = dtype == torch.float32 and not interp and bool(torch.backends.cuda.matmul.allow_tf32)
    return lowp, ("tf32" if tf32 else "ieee")


def _geometry(x: torch.Tensor, alpha: torch.Tensor, bases: torch.Tensor, coef: torch.Tensor):
    n, c, h, w = x.shape
    _, m, nb, oh, ow = alpha.shape
    _, kh, kw = bases.shape
    o = coef.shape[0]
    return n, c, h, w, m, nb, oh, ow, kh, kw, o


def _bases32(bases: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The bases ψ as a contiguous fp32 (B, k_h·k_w) table (tiny)."""
    return bases.detach().to(device=device, dtype=torch.float32).reshape(bases.shape[0], -1).contiguous()


def alpha_forward(
    x: torch.Tensor,
    alpha: torch.Tensor,
    bases: torch.Tensor,
    coef: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    *,
    block_p: int | None = None,
    block_c: int | None = None,
    block_o: int | None = None,
) -> torch.Tensor:
    """Two-layer ACDA from the basis coefficients, one fused kernel (§3.2: D = α·ψ, Eq. 5, Eq. 6).

    ``x`` (N, C, H, W), ``alpha`` (N, m, B, H', W'), ``bases`` (B, k_h, k_w), ``coef`` (O, C, m),
    ``bias`` (O,) or ``None`` → ``out`` (N, O, H', W'), contiguous, in the dtype of ``x``.
    """
    _check_device(x)
    n, c, h, w, m, nb, oh, ow, kh, kw, o = _geometry(x, alpha, bases, coef)
    out = torch.empty((n, o, oh, ow), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    bp = _block(oh * ow, block_p, "block_p", BLOCK_P)
    bc = _block(c, block_c, "block_c", BLOCK_C_MAX)
    bo = _block(o, block_o, "block_o", BLOCK_O_MAX)
    lowp, prec = _dot_mode(x.dtype)
    psi = _bases32(bases, x.device)
    grid = (n * _cdiv(oh * ow, bp), _cdiv(o, bo))
    _kernels(interpreting())["fwd"][grid](
        x, alpha, psi, coef, coef if bias is None else bias, out,
        c, h, w, oh, ow, m, nb, o,
        *x.stride(), *alpha.stride(), *coef.stride(),
        *stride, *padding, *dilation,
        KH=kh, KW=kw, HAS_BIAS=bias is not None, LOWP=lowp, PREC=prec,
        BLOCK_P=bp, BLOCK_C=bc, BLOCK_O=bo, BLOCK_B=max(_next_pow2(nb), 2), num_warps=NUM_WARPS,
    )
    return out


def alpha_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    alpha: torch.Tensor,
    bases: torch.Tensor,
    coef: torch.Tensor,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    needs_x: bool,
    needs_alpha: bool,
    needs_coef: bool,
    *,
    block_p: int | None = None,
    block_c: int | None = None,
    block_o: int | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``alpha_forward`` (Eq. 5/6, §3.2) w.r.t. ``x``, ``alpha`` and ``coef``.

    Each is ``None`` unless requested, else in the dtype of its input; ``bases`` gets none, and
    the bias gradient (``grad_out`` summed) is left to the caller.
    """
    _check_device(x)
    n, c, h, w, m, nb, oh, ow, kh, kw, o = _geometry(x, alpha, bases, coef)
    if grad_out.dtype != x.dtype:
        grad_out = grad_out.to(x.dtype)
    # every element of grad_x and grad_alpha is written by a kernel; an empty batch leaves them empty
    grad_x = torch.empty((n, c, h, w), dtype=x.dtype, device=x.device) if needs_x else None
    grad_alpha = torch.empty((n, m, nb, oh, ow), dtype=alpha.dtype, device=x.device) if needs_alpha else None
    grad_coef = None
    if n == 0:
        if needs_coef:
            grad_coef = torch.zeros((o, c, m), dtype=coef.dtype, device=x.device)
        return grad_x, grad_alpha, grad_coef

    k = _kernels(interpreting())
    p = oh * ow
    bp = _block(p, block_p, "block_p", BLOCK_P)
    bc = _block(c, block_c, "block_c", BLOCK_C_MAX)
    bo = _block(o, block_o, "block_o", BLOCK_O_MAX)
    bb = max(_next_pow2(nb), 2)
    lowp, prec = _dot_mode(x.dtype)
    psi = _bases32(bases, x.device)
    geometry = (*stride, *padding, *dilation)
    num_pt = _cdiv(p, bp)

    if needs_x or needs_alpha:
        gz = torch.empty((n, c * m, p), dtype=torch.float32, device=x.device) if needs_x else grad_out
        k["bwd_gz"][(n * num_pt,)](
            grad_out, x, psi, coef, gz, grad_alpha if needs_alpha else grad_out,
            c, h, w, oh, ow, m, nb, o,
            *grad_out.stride(), *x.stride(), *coef.stride(),
            *geometry,
            KH=kh, KW=kw, STORE_GZ=needs_x, NEED_ALPHA=needs_alpha, LOWP=lowp, PREC=prec,
            BLOCK_P=bp, BLOCK_C=bc, BLOCK_O=bo, BLOCK_B=bb, num_warps=NUM_WARPS,
        )
        if needs_x:
            grid = (n * _cdiv(h * w, bp), _cdiv(c, bc))
            k["bwd_x"][grid](
                gz, alpha, psi, grad_x,
                c, h, w, oh, ow, m, nb,
                *alpha.stride(),
                *geometry,
                KH=kh, KW=kw, BLOCK_P=bp, BLOCK_C=bc, BLOCK_B=bb, num_warps=NUM_WARPS,
            )
            del gz

    if needs_coef:
        groups = m * _cdiv(c, bc) * _cdiv(o, bo)
        split = max(1, min(n * num_pt, _cdiv(COEF_PROGRAMS, groups)))
        part = torch.empty((split, m, c, o), dtype=torch.float32, device=x.device)
        k["bwd_coef"][(split, m * _cdiv(c, bc), _cdiv(o, bo))](
            grad_out, x, alpha, psi, part,
            n, c, h, w, oh, ow, m, nb, o,
            *grad_out.stride(), *x.stride(), *alpha.stride(),
            *geometry,
            split,
            KH=kh, KW=kw, LOWP=lowp, PREC=prec,
            BLOCK_P=bp, BLOCK_C=bc, BLOCK_O=bo, BLOCK_B=bb, num_warps=NUM_WARPS, num_stages=COEF_STAGES,
        )
        grad_coef = part.sum(0).permute(2, 1, 0).to(coef.dtype).contiguous()
    return grad_x, grad_alpha, grad_coef
