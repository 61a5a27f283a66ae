"""Shift-and-accumulate ACDA (paper §3.2, Eq. 5 and Eq. 6) in plain PyTorch: the no-compiler fallback.

The atom convolution is a sum over the k_h·k_w taps of a shifted (strided, dilated) window of the
zero-padded input times one atom plane: ``z_b = Σ_uv D[:, b, u, v] ⊙ window_uv(x)``. No unfolded
tensor is built; the fused forward forms one atom's ``z_b`` (N, C, H', W') at a time and applies its
slice of the 1×1 coefficients at once, so the C·m-channel intermediate is never stored, and the
backward recomputes ``z_b`` for the coefficient gradient. Any device, any floating dtype; several
times faster than the unfold reference on CPU (``benchmarks/``), much slower than ``"native"``.
Only the part of the zero-padded input that some tap reads is built (all of it in the usual case), so
a huge padding or dilation (``padding="same"`` with dilation 10⁶) costs no memory; a tap that reads
only padding contributes 0·atom (NaN for an infinite atom), as in the reference.

Implements the backend contract of ``acda.ops`` (including the fused pair).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["forward", "backward", "fused_forward", "fused_backward"]

Pair = tuple[int, int]


class _Padded(NamedTuple):
    """The part of the zero-padded input the taps read: ``data`` holds padded rows/columns from ``origin`` on."""

    data: torch.Tensor
    origin: Pair
    live: tuple[tuple[bool, ...], tuple[bool, ...]]  # per axis, whether tap u (v) ever reads the image


def _axis(size: int, k: int, s: int, p: int, d: int, out: int) -> tuple[int, int, tuple[bool, ...]]:
    """Padding to materialise before and after the image along one axis, and which taps reach the image.

    Tap u reads padded rows u·d, u·d + s, …, u·d + s·(out − 1); it is live when that span meets the image,
    rows [p, p + size). With every tap live (the usual case) the padding is the full (p, p); otherwise only
    the rows the live taps read are built, so a huge padding or dilation costs no memory.
    """
    span = s * (out - 1)
    live = tuple(u * d + span >= p and u * d < p + size for u in range(k))
    if all(live):
        return p, p, live
    starts = [u * d for u in range(k) if live[u]]
    lo = min([p, *starts])
    hi = max([p + size, *(t + span + 1 for t in starts)])
    return p - lo, hi - p - size, live


def _pad(x: torch.Tensor, atoms: torch.Tensor, stride: Pair, padding: Pair, dilation: Pair) -> _Padded:
    (h, w), (_, _, kh, kw, oh, ow) = x.shape[-2:], atoms.shape
    top, bottom, live_h = _axis(h, kh, stride[0], padding[0], dilation[0], oh)
    left, right, live_w = _axis(w, kw, stride[1], padding[1], dilation[1], ow)
    data = F.pad(x, (left, right, top, bottom))
    return _Padded(data, (padding[0] - top, padding[1] - left), (live_h, live_w))


def _window(padded: _Padded, u: int, v: int, out_size: Pair, stride: Pair, dilation: Pair) -> torch.Tensor | None:
    """View of the padded input that tap (u, v) reads for every output pixel: (N, C, H', W'); ``None``
    when the tap reads only padding (zeros)."""
    if not (padded.live[0][u] and padded.live[1][v]):
        return None
    (oh, ow), (sh, sw), (dh, dw) = out_size, stride, dilation
    top, left = u * dh - padded.origin[0], v * dw - padded.origin[1]
    return padded.data[:, :, top: top + sh * (oh - 1) + 1: sh, left: left + sw * (ow - 1) + 1: sw]


def _read(padded: _Padded, u: int, v: int, out_size: Pair, stride: Pair, dilation: Pair) -> torch.Tensor:
    """``_window``, with a tap that reads only padding as a broadcast zero (so 0·inf stays NaN)."""
    window = _window(padded, u, v, out_size, stride, dilation)
    if window is None:
        n, c = padded.data.shape[:2]
        window = padded.data.new_zeros(()).expand(n, c, *out_size)
    return window


def _taps(atoms: torch.Tensor):
    _, _, kh, kw, _, _ = atoms.shape
    return [(u, v) for u in range(kh) for v in range(kw)]


def _atom_sum(padded: _Padded, atoms: torch.Tensor, b: int, stride: Pair, dilation: Pair) -> torch.Tensor:
    """z_b = Σ_uv atoms[:, b, u, v] ⊙ window_uv(x): (N, C, H', W')."""
    out_size = tuple(atoms.shape[-2:])
    z = None
    for u, v in _taps(atoms):
        term = _read(padded, u, v, out_size, stride, dilation) * atoms[:, b: b + 1, u, v]
        z = term if z is None else z.add_(term)
    return z


def _scatter(grad_padded: _Padded, grad_z: torch.Tensor, atoms: torch.Tensor, b: int, stride: Pair,
             dilation: Pair) -> None:
    """grad_padded[window_uv] += atoms[:, b, u, v] ⊙ grad_z for every tap (gradient of ``_atom_sum`` w.r.t. x;
    taps that read only padding are skipped: their gradient is cropped away)."""
    out_size = tuple(atoms.shape[-2:])
    for u, v in _taps(atoms):
        window = _window(grad_padded, u, v, out_size, stride, dilation)
        if window is not None:
            window.addcmul_(grad_z, atoms[:, b: b + 1, u, v])


def _tap_dots(grad_z: torch.Tensor, padded: _Padded, atoms: torch.Tensor, b: int, stride: Pair,
              dilation: Pair, grad_atoms: torch.Tensor) -> None:
    """grad_atoms[:, b, u, v] = Σ_c grad_z ⊙ window_uv(x) (gradient of ``_atom_sum`` w.r.t. the atoms)."""
    out_size = tuple(atoms.shape[-2:])
    for u, v in _taps(atoms):
        grad_atoms[:, b, u, v] = torch.einsum("nchw,nchw->nhw", grad_z,
                                              _read(padded, u, v, out_size, stride, dilation))


def _zeros_like(padded: _Padded) -> _Padded:
    """A zero gradient buffer laid out like ``padded``."""
    return padded._replace(data=torch.zeros_like(padded.data))


def _crop(grad_padded: _Padded, x: torch.Tensor, padding: Pair) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = padding[0] - grad_padded.origin[0], padding[1] - grad_padded.origin[1]
    return grad_padded.data[:, :, top: top + h, left: left + w].contiguous()


def forward(x: torch.Tensor, atoms: torch.Tensor, stride: Pair, padding: Pair, dilation: Pair) -> torch.Tensor:
    """Atom convolution (Eq. 5): (N, C·m, H', W'), channel c·m + b."""
    padded = _pad(x, atoms, stride, padding, dilation)
    z = torch.stack([_atom_sum(padded, atoms, b, stride, dilation) for b in range(atoms.shape[1])], 2)
    return z.flatten(1, 2)


def backward(grad_out: torch.Tensor, x: torch.Tensor, atoms: torch.Tensor, stride: Pair, padding: Pair,
             dilation: Pair, needs_x: bool, needs_atoms: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of the atom convolution w.r.t. ``x`` and ``atoms`` (``None`` where not needed)."""
    n, c = x.shape[:2]
    m = atoms.shape[1]
    grad = grad_out.reshape(n, c, m, *grad_out.shape[-2:])
    padded = _pad(x, atoms, stride, padding, dilation)
    grad_padded = _zeros_like(padded) if needs_x else None
    grad_atoms = torch.empty_like(atoms, memory_format=torch.contiguous_format) if needs_atoms else None
    for b in range(m):
        if needs_x:
            _scatter(grad_padded, grad[:, :, b], atoms, b, stride, dilation)
        if needs_atoms:
            _tap_dots(grad[:, :, b], padded, atoms, b, stride, dilation, grad_atoms)
    return (_crop(grad_padded, x, padding) if needs_x else None), grad_atoms


def fused_forward(x: torch.Tensor, atoms: torch.Tensor, coef: torch.Tensor, bias: torch.Tensor | None,
                  stride: Pair, padding: Pair, dilation: Pair) -> torch.Tensor:
    """Two-layer ACDA (Eq. 5 then Eq. 6), one atom at a time: out = Σ_b coef[:, :, b] · z_b (+ bias)."""
    padded = _pad(x, atoms, stride, padding, dilation)
    out = None
    for b in range(atoms.shape[1]):
        term = F.conv2d(_atom_sum(padded, atoms, b, stride, dilation), coef[:, :, b, None, None],
                        bias if b == 0 else None)
        out = term if out is None else out.add_(term)
    return out


def fused_backward(grad_out: torch.Tensor, x: torch.Tensor, atoms: torch.Tensor, coef: torch.Tensor,
                   stride: Pair, padding: Pair, dilation: Pair, needs_x: bool, needs_atoms: bool, needs_coef: bool,
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``fused_forward`` w.r.t. ``x``, ``atoms`` and ``coef``; z_b is recomputed, not stored."""
    padded = _pad(x, atoms, stride, padding, dilation)
    grad_padded = _zeros_like(padded) if needs_x else None
    grad_atoms = torch.empty_like(atoms, memory_format=torch.contiguous_format) if needs_atoms else None
    grad_coef = torch.empty_like(coef, memory_format=torch.contiguous_format) if needs_coef else None
    for b in range(atoms.shape[1]):
        if needs_coef:
            grad_coef[:, :, b] = torch.einsum("nohw,nchw->oc", grad_out,
                                              _atom_sum(padded, atoms, b, stride, dilation))
        if needs_x or needs_atoms:
            grad_z = F.conv2d(grad_out, coef[:, :, b].t()[:, :, None, None])
            if needs_x:
                _scatter(grad_padded, grad_z, atoms, b, stride, dilation)
            if needs_atoms:
                _tap_dots(grad_z, padded, atoms, b, stride, dilation, grad_atoms)
    return (_crop(grad_padded, x, padding) if needs_x else None), grad_atoms, grad_coef
