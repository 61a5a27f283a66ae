"""Reference atom convolution (paper Eq. 5): unfold + einsum, the authors' formulation and our oracle.

``forward`` materialises the unfolded input (N, C·k_h·k_w, H'·W'); ``backward`` is written with the
same differentiable operations (unfold, einsum, fold), so it can itself be differentiated (double
backward through the custom ops uses it). ``fused_forward``/``fused_backward`` compose it with the
1×1 coefficient convolution (Eq. 6): the two-layer ACDA as the authors compute it. ``alpha_forward``/
``alpha_backward`` take the basis coefficients α instead of the atoms: the atoms are reconstructed at
full size, D = α·ψ (``atoms_from_alpha``, Eq. 4 with the bases of §3.2), as the authors do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["forward", "backward", "fused_forward", "fused_backward", "atoms_from_alpha", "alpha_grad",
           "alpha_forward", "alpha_backward"]


def forward(x: torch.Tensor, atoms: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
            dilation: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) × (N, m, k_h, k_w, H', W') → (N, C·m, H', W'), contiguous."""
    n, c = x.shape[:2]
    _, m, kh, kw, oh, ow = atoms.shape
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = cols.view(n, c, kh * kw, oh * ow)
    out = torch.einsum("nckl,nmkl->ncml", cols, atoms.reshape(n, m, kh * kw, oh * ow))
    return out.reshape(n, c * m, oh, ow)


def backward(grad_out: torch.Tensor, x: torch.Tensor, atoms: torch.Tensor, stride: tuple[int, int],
             padding: tuple[int, int], dilation: tuple[int, int], needs_x: bool, needs_atoms: bool,
             ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients w.r.t. ``x`` and ``atoms`` (``None`` where not needed), differentiable."""
    n, c, h, w = x.shape
    _, m, kh, kw, oh, ow = atoms.shape
    g = grad_out.reshape(n, c, m, oh * ow)
    grad_x = grad_atoms = None
    if needs_x:
        cols = torch.einsum("ncml,nmkl->nckl", g, atoms.reshape(n, m, kh * kw, oh * ow))
        grad_x = F.fold(cols.reshape(n, c * kh * kw, oh * ow), (h, w), (kh, kw), dilation=dilation,
                        padding=padding, stride=stride)
    if needs_atoms:
        cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride).view(n, c, kh * kw, oh * ow)
        grad_atoms = torch.einsum("ncml,nckl->nmkl", g, cols).reshape(n, m, kh, kw, oh, ow)
    return grad_x, grad_atoms


def fused_forward(x: torch.Tensor, atoms: torch.Tensor, coef: torch.Tensor, bias: torch.Tensor | None,
                  stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int]) -> torch.Tensor:
    """Two-layer ACDA (Eq. 5 then Eq. 6): atom convolution, then a 1×1 convolution with ``coef`` (O, C, m)."""
    o, c, m = coef.shape
    return F.conv2d(forward(x, atoms, stride, padding, dilation), coef.reshape(o, c * m, 1, 1), bias)


def fused_backward(grad_out: torch.Tensor, x: torch.Tensor, atoms: torch.Tensor, coef: torch.Tensor,
                   stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], needs_x: bool,
                   needs_atoms: bool, needs_coef: bool,
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``fused_forward`` w.r.t. ``x``, ``atoms`` and ``coef`` (``None`` where not needed), differentiable."""
    o, c, m = coef.shape
    grad_coef = None
    if needs_coef:
        z = forward(x, atoms, stride, padding, dilation)
        grad_coef = torch.einsum("nohw,nkhw->ok", grad_out, z).reshape(o, c, m)
    grad_x = grad_atoms = None
    if needs_x or needs_atoms:
        grad_z = torch.einsum("nohw,ok->nkhw", grad_out, coef.reshape(o, c * m))
        grad_x, grad_atoms = backward(grad_z, x, atoms, stride, padding, dilation, needs_x, needs_atoms)
    return grad_x, grad_atoms, grad_coef


def atoms_from_alpha(alpha: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
    """Atoms D = α·ψ (paper Eq. 4, Fig. 4): α (N, m, B, H', W') and ψ (B, k_h, k_w) → (N, m, k_h, k_w, H', W')."""
    return torch.einsum("nmbhw,buv->nmuvhw", alpha, bases)


def alpha_forward(x: torch.Tensor, alpha: torch.Tensor, bases: torch.Tensor, coef: torch.Tensor,
                  bias: torch.Tensor | None, stride: tuple[int, int], padding: tuple[int, int],
                  dilation: tuple[int, int]) -> torch.Tensor:
    """``fused_forward`` on the atoms α·ψ (reconstructed at full size)."""
    return fused_forward(x, atoms_from_alpha(alpha, bases), coef, bias, stride, padding, dilation)


def alpha_backward(grad_out: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, bases: torch.Tensor,
                   coef: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                   needs_x: bool, needs_alpha: bool, needs_coef: bool,
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``alpha_forward`` w.r.t. ``x``, ``alpha`` and ``coef`` (``None`` where not needed), differentiable:
    grad α = grad D·ψᵀ."""
    grad_x, grad_atoms, grad_coef = fused_backward(grad_out, x, atoms_from_alpha(alpha, bases), coef, stride, padding,
                                                   dilation, needs_x, needs_alpha, needs_coef)
    return grad_x, alpha_grad(grad_atoms, bases), grad_coef


def alpha_grad(grad_atoms: torch.Tensor | None, bases: torch.Tensor) -> torch.Tensor | None:
    """grad α = grad D·ψᵀ (the gradient of ``atoms_from_alpha``); ``None`` for ``None``."""
    return None if grad_atoms is None else torch.einsum("nmuvhw,buv->nmbhw", grad_atoms, bases)
