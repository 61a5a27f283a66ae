"""Shift-and-accumulate ACDA (paper §3.2, Eq. 5 and Eq. 6) in plain PyTorch: the no-compiler fallback.

The atom convolution is a sum over the k_h·k_w taps of a shifted (strided, dilated) window of the
zero-padded input times one atom plane: ``z_b = Σ_uv D[:, b, u, v] ⊙ window_uv(x)``. No unfolded
tensor is built; the fused forward forms one atom's ``z_b`` (N, C, H', W') at a time and applies its
slice of the 1×1 coefficients at once, so the C·m-channel intermediate is never stored, and the
backward recomputes ``z_b`` for the coefficient gradient. Any device, any floating dtype; several
times faster than the unfold reference on CPU (``benchmarks/``), much slower than ``"native"``.

Implements the backend contract of ``acda.ops`` (including the fused pair).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["forward", "backward", "fused_forward", "fused_backward"]

Pair = tuple[int, int]


def _window(padded: torch.Tensor, u: int, v: int, out_size: Pair, stride: Pair, dilation: Pair) -> torch.Tensor:
    """View of the padded input that tap (u, v) reads for every output pixel: (N, C, H', W')."""
    (oh, ow), (sh, sw), (dh, dw) = out_size, stride, dilation
    return padded[:, :, u * dh: u * dh + sh * (oh - 1) + 1: sh, v * dw: v * dw + sw * (ow - 1) + 1: sw]


def _pad(x: torch.Tensor, padding: Pair) -> torch.Tensor:
    return F.pad(x, (padding[1], padding[1], padding[0], padding[0]))


def _taps(atoms: torch.Tensor):
    _, _, kh, kw, _, _ = atoms.shape
    return [(u, v) for u in range(kh) for v in range(kw)]


def _atom_sum(padded: torch.Tensor, atoms: torch.Tensor, b: int, stride: Pair, dilation: Pair) -> torch.Tensor:
    """z_b = Σ_uv atoms[:, b, u, v] ⊙ window_uv(x): (N, C, H', W')."""
    out_size = tuple(atoms.shape[-2:])
    z = None
    for u, v in _taps(atoms):
        term = _window(padded, u, v, out_size, stride, dilation) * atoms[:, b: b + 1, u, v]
        z = term if z is None else z.add_(term)
    return z


def _scatter(grad_padded: torch.Tensor, grad_z: torch.Tensor, atoms: torch.Tensor, b: int, stride: Pair,
             dilation: Pair) -> None:
    """grad_padded[window_uv] += atoms[:, b, u, v] ⊙ grad_z for every tap (gradient of ``_atom_sum`` w.r.t. x)."""
    out_size = tuple(atoms.shape[-2:])
    for u, v in _taps(atoms):
        _window(grad_padded, u, v, out_size, stride, dilation).addcmul_(grad_z, atoms[:, b: b + 1, u, v])


def _tap_dots(grad_z: torch.Tensor, padded: torch.Tensor, atoms: torch.Tensor, b: int, stride: Pair,
              dilation: Pair, grad_atoms: torch.Tensor) -> None:
    """grad_atoms[:, b, u, v] = Σ_c grad_z ⊙ window_uv(x) (gradient of ``_atom_sum`` w.r.t. the atoms)."""
    out_size = tuple(atoms.shape[-2:])
    for u, v in _taps(atoms):
        grad_atoms[:, b, u, v] = torch.einsum("nchw,nchw->nhw", grad_z,
                                              _window(padded, u, v, out_size, stride, dilation))


def _crop(grad_padded: torch.Tensor, x: torch.Tensor, padding: Pair) -> torch.Tensor:
    h, w = x.shape[-2:]
    return grad_padded[:, :, padding[0]: padding[0] + h, padding[1]: padding[1] + w].contiguous()


def forward(x: torch.Tensor, atoms: torch.Tensor, stride: Pair, padding: Pair, dilation: Pair) -> torch.Tensor:
    """Atom convolution (Eq. 5): (N, C·m, H', W'), channel c·m + b."""
    padded = _pad(x, padding)
    z = torch.stack([_atom_sum(padded, atoms, b, stride, dilation) for b in range(atoms.shape[1])], 2)
    return z.flatten(1, 2)


def backward(grad_out: torch.Tensor, x: torch.Tensor, atoms: torch.Tensor, stride: Pair, padding: Pair,
             dilation: Pair, needs_x: bool, needs_atoms: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of the atom convolution w.r.t. ``x`` and ``atoms`` (``None`` where not needed)."""
    n, c = x.shape[:2]
    m = atoms.shape[1]
    grad = grad_out.reshape(n, c, m, *grad_out.shape[-2:])
    padded = _pad(x, padding)
    grad_padded = torch.zeros_like(padded) if needs_x else None
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
    padded = _pad(x, padding)
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
    padded = _pad(x, padding)
    grad_padded = torch.zeros_like(padded) if needs_x else None
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
