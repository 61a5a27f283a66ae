"""Reference atom convolution (paper Eq. 5): unfold + einsum, the authors' formulation and our oracle.

``forward`` materialises the unfolded input (N, C·k_h·k_w, H'·W'); ``backward`` is written with the
same differentiable operations (unfold, einsum, fold), so it can itself be differentiated (double
backward through the custom op uses it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["forward", "backward"]


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
