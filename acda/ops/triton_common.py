"""``@triton.jit`` helpers shared by the kernels of ``triton_atom_conv`` and ``triton_acda``.

This module imports triton, so it is imported only from those modules' kernel builders
(``_kernels``), on first use: importing ``triton_atom_conv`` or ``triton_acda`` still needs no
triton, and by then ``TRITON_INTERPRET`` is final (see "Interpreter" in ``triton_atom_conv``).
The helpers below are plain functions; ``helpers(interpret)`` decorates them with ``triton.jit``,
cached per interpreter mode exactly as the kernels are. They call only Triton builtins (and
``tl.reduce`` with ``tl.standard._sum_combine``, which the interpreter recognises), never
``tl.sum``/``tl.zeros``.

How a kernel reaches them: the compiler resolves a kernel's names in its closure (over its module
globals), but Triton's interpreter re-executes the kernel's source against its *module globals*
only, so a helper that is just a closure variable of the kernel is a ``NameError`` there.
``bind(namespace, interpret)`` therefore also stores the helpers of the requested mode in the
kernel module's globals; the kernel modules call it on every ``_kernels`` lookup, so those globals
always hold the mode about to run (the compiler, which reads globals first when hashing a kernel's
dependencies, then sees the same functions as in the closure).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import triton
import triton.language as tl

__all__ = ["Helpers", "helpers", "bind"]


def pixel_tile(t, ROWS, COLS, BLOCK: tl.constexpr):
    """Tile ``t`` of the (sample, pixel tile) pairs of a ROWS×COLS image, pixels flattened row-major.

    Returns ``(n, offs, mask, row, col)``: the sample (int64), the ``[BLOCK]`` flat pixel offsets,
    their in-image mask and their row and column.
    """
    total = ROWS * COLS
    num_t = (total + BLOCK - 1) // BLOCK
    n = (t // num_t).to(tl.int64)
    offs = (t % num_t) * BLOCK + tl.arange(0, BLOCK)
    return n, offs, offs < total, offs // COLS, offs % COLS


def block_range(start, BLOCK: tl.constexpr, limit):
    """The ``[BLOCK]`` offsets ``start + arange(BLOCK)`` and their mask ``< limit`` (a channel, atom or basis tile)."""
    offs = start + tl.arange(0, BLOCK)
    return offs, offs < limit


def tap_source(o, k, STRIDE, PAD, DIL, SIZE, mask):
    """Input index ``o·STRIDE − PAD + k·DIL`` read by output index ``o`` through tap ``k``, and
    ``mask`` narrowed to the taps inside the image ``[0, SIZE)`` (the others read zero padding)."""
    i = o * STRIDE - PAD + k * DIL
    return i, mask & (i >= 0) & (i < SIZE)


def tap_reader(q, k, STRIDE, PAD, DIL, OSIZE, mask):
    """The inverse neighbourhood: the output index ``o`` that reads input index ``q`` through tap ``k``,
    i.e. ``o·STRIDE = q + PAD − k·DIL``, and ``mask`` narrowed to where that ``o`` is an integer in
    ``[0, OSIZE)``; elsewhere ``o`` is 0 (an in-range index: the lanes are masked anyway)."""
    num = q + PAD - k * DIL
    ok = mask & (num >= 0)
    num = tl.where(ok, num, 0)  # keep //, % away from negatives
    o = num // STRIDE
    ok = ok & (num % STRIDE == 0) & (o < OSIZE)
    return tl.where(ok, o, 0), ok


def basis_tap(bs_ptr, offs_bt, mask_bt, u, v, KH: tl.constexpr, KW: tl.constexpr):
    """ψ[:, u, v], ``[BLOCK_B]``, from the contiguous fp32 (B, KH·KW) table of the bases."""
    return tl.load(bs_ptr + offs_bt * (KH * KW) + (u * KW + v), mask=mask_bt, other=0.0)


def atom_at(al, psi, AXIS: tl.constexpr):
    """Each pixel's atom ``Σ_β α[β]·ψ[β]`` (D = α·ψ, §3.2): ``al`` holds the β axis at ``AXIS`` (of 2)."""
    return tl.reduce(al * tl.expand_dims(psi, 1 - AXIS), AXIS, tl.standard._sum_combine)


def dot_acc(a, b, acc, ref_ptr, LOWP: tl.constexpr, PREC: tl.constexpr):
    """``acc + a·b`` with ``tl.dot``: operands in the element type of ``ref_ptr`` when ``LOWP``
    (fp16/bf16 tensor cores), else in fp32; ``PREC`` is the fp32 input precision ("tf32"/"ieee")."""
    if LOWP:
        out = tl.dot(a.to(ref_ptr.dtype.element_ty), b.to(ref_ptr.dtype.element_ty), acc, input_precision=PREC)
    else:
        out = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision=PREC)
    return out


class Helpers(NamedTuple):
    pixel_tile: Any
    block_range: Any
    tap_source: Any
    tap_reader: Any
    basis_tap: Any
    atom_at: Any
    dot_acc: Any


@functools.cache
def helpers(interpret: bool) -> Helpers:
    """The helpers decorated with ``triton.jit``; cached per interpreter mode, as ``triton.jit`` reads it."""
    del interpret  # the cache key; triton.jit reads TRITON_INTERPRET itself
    fns = (pixel_tile, block_range, tap_source, tap_reader, basis_tap, atom_at, dot_acc)
    return Helpers(*(_device_function(triton.jit(fn)) for fn in fns))


def _device_function(fn):
    """``fn`` as a kernel calls it. Under the interpreter, its rewritten Python function: what
    ``InterpretedFunction.__call__`` runs after re-patching ``triton.language`` — a patch the running
    kernel's launch has already applied, and which costs about 1 ms a call (``inspect.getmembers``),
    enough to double the interpreter's time for kernels that call helpers in their tap loops."""
    from triton.runtime.interpreter import InterpretedFunction

    rewrite = getattr(fn, "rewrite", None) if isinstance(fn, InterpretedFunction) else None
    return rewrite() if callable(rewrite) else fn  # another triton: the interpreter's own (slower) call


def bind(namespace: dict[str, Any], interpret: bool) -> Helpers:
    """``helpers(interpret)``, also stored by name in ``namespace`` (a kernel module's ``globals()``)."""
    h = helpers(interpret)
    namespace.update(h._asdict())
    return h
