"""Functional ACDA: atom convolution (Eq. 5), coefficient convolution (Eq. 6), per-pixel filters.

Shapes (stride, padding, dilation as in ``torch.nn.functional.conv2d``, cross-correlation):

- ``x``: (N, C, H, W) input; ``atoms``: (N, m, k, k, H', W') per-pixel dynamic atoms ``D_ij``;
- ``coef``: (O, C, m) shared compositional coefficients ``A``; ``bias``: (O,) or None.

Atom element ``atoms[n, b, u, v, i, j]`` multiplies ``x[n, c, i·s_h − p_h + u·d_h,
j·s_w − p_w + v·d_w]``. ``atom_conv2d`` returns channel ``c·m + b`` = Σ_uv D_ij[b, u, v]·x[...],
so ``acda_conv2d(x, atoms, coef, bias)[n, o, i, j] = Σ_c Σ_uv K_ij[o, c, u, v]·x[...] + bias[o]``
with ``K_ij = A·D_ij`` (paper Eq. 2, Fig. 2): the two-layer implementation of Fig. 3.

``atom_conv2d`` is the single dispatch point for the atom-convolution backends (registry
``acda.ops.BACKENDS``): ``"reference"`` (unfold + einsum, the correctness oracle, differentiated by
autograd), ``"shift"`` (shift-and-accumulate, plain PyTorch), ``"native"`` (C++ CPU kernels) and
``"triton"`` (CUDA), all but the first through the custom op ``torch.ops.acda.atom_conv2d``;
``"auto"`` picks the best available for the input's device.
``per_pixel_filters`` builds the full filters K_ij = A·D_ij and ``per_pixel_conv2d`` applies
per-pixel filters directly (Dynamic Filter Networks, the path ACDA's two-layer form avoids).
``acda_conv2d`` runs a backend's fused two-layer implementation when it has one (``"native"``,
``"shift"``: ``torch.ops.acda.acda_conv2d``, the C·m-channel intermediate never stored at full size), else
``atom_conv2d`` followed by a 1×1 convolution.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .ops import check_backend, get_backend, reference, resolve_backend
from .ops import custom_op as _custom_op  # noqa: F401  (registers torch.ops.acda.*)
from .utils import IntPair, conv_output_size, pair

__all__ = [
    "atom_conv2d",
    "acda_conv2d",
    "per_pixel_filters",
    "per_pixel_conv2d",
]


def _check_atom_conv_args(x: torch.Tensor, atoms: torch.Tensor, stride, padding, dilation):
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a 4-D tensor (N, C, H, W), got shape {tuple(getattr(x, 'shape', ()))}")
    if not isinstance(atoms, torch.Tensor) or atoms.dim() != 6:
        raise ValueError(
            f"atoms must be a 6-D tensor (N, m, k, k, H', W'), got shape {tuple(getattr(atoms, 'shape', ()))}"
        )
    stride = pair(stride, "stride")
    padding = pair(padding, "padding", minimum=0)
    dilation = pair(dilation, "dilation")
    n, _, kh, kw, oh, ow = atoms.shape
    if n != x.shape[0]:
        raise ValueError(f"atoms batch size {n} does not match x batch size {x.shape[0]}")
    expected = conv_output_size(tuple(x.shape[-2:]), (kh, kw), stride, padding, dilation)
    if min(expected) < 1:
        raise ValueError(
            f"input of spatial size {tuple(x.shape[-2:])} is too small for kernel ({kh}, {kw}), "
            f"padding {padding}, dilation {dilation}"
        )
    if (oh, ow) != expected:
        raise ValueError(
            f"atoms must have output spatial size {expected} for this input, stride {stride}, "
            f"padding {padding} and dilation {dilation}; got {(oh, ow)}"
        )
    if atoms.device != x.device or (
        atoms.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type)
    ):
        raise ValueError(
            f"atoms ({atoms.dtype}, {atoms.device}) must match x ({x.dtype}, {x.device})"
        )
    return stride, padding, dilation


def _compute_dtype(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """Custom ops are not autocast-aware: cast to the autocast dtype here, else to the promoted dtype."""
    x = tensors[0]
    if torch.amp.is_autocast_available(x.device.type) and torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
    else:
        dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors if t is not None))
    return tuple(None if t is None else t.to(dtype) for t in tensors)


def atom_conv2d(
    x: torch.Tensor,
    atoms: torch.Tensor,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Atom convolution (paper Eq. 5): (N, C, H, W) × (N, m, k, k, H', W') → (N, C·m, H', W')."""
    check_backend(backend)
    stride, padding, dilation = _check_atom_conv_args(x, atoms, stride, padding, dilation)
    backend = resolve_backend(backend, x.device)
    if backend == "reference":
        return reference.forward(x, atoms, stride, padding, dilation)
    x, atoms = _compute_dtype(x, atoms)
    return torch.ops.acda.atom_conv2d(x, atoms, list(stride), list(padding), list(dilation), backend)


def acda_conv2d(
    x: torch.Tensor,
    atoms: torch.Tensor,
    coef: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Two-layer ACDA (paper Eq. 5 then Eq. 6, Fig. 3): atom conv, then a 1×1 conv with ``coef``."""
    if not isinstance(coef, torch.Tensor) or coef.dim() != 3:
        raise ValueError(f"coef must be a 3-D tensor (O, C, m), got shape {tuple(getattr(coef, 'shape', ()))}")
    out_channels, in_channels, m = coef.shape
    stride, padding, dilation = _check_atom_conv_args(x, atoms, stride, padding, dilation)
    if x.shape[1] != in_channels:
        raise ValueError(f"x must have {in_channels} channels (coef.shape[1]), got {x.shape[1]}")
    if atoms.shape[1] != m:
        raise ValueError(f"atoms must hold m={m} atoms (coef.shape[2]), got {atoms.shape[1]}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    name = resolve_backend(backend, x.device)
    if get_backend(name).fused_forward is None:
        z = atom_conv2d(x, atoms, stride, padding, dilation, backend=name)
        return F.conv2d(z, coef.reshape(out_channels, in_channels * m, 1, 1), bias)
    x, atoms, coef, bias = _compute_dtype(x, atoms, coef, bias)
    return torch.ops.acda.acda_conv2d(x, atoms, coef, bias, list(stride), list(padding), list(dilation), name)


def per_pixel_filters(atoms: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Full per-pixel filters K_ij = A·D_ij (paper Fig. 2): shape (N, H', W', O, C, k, k).

    For tests and visualisation only: this is the tensor the two-layer implementation avoids.
    """
    if atoms.dim() != 6 or coef.dim() != 3 or atoms.shape[1] != coef.shape[2]:
        raise ValueError(
            f"expected atoms (N, m, k, k, H', W') and coef (O, C, m) with equal m, got "
            f"{tuple(atoms.shape)} and {tuple(coef.shape)}"
        )
    return torch.einsum("ocb,nbuvhw->nhwocuv", coef, atoms)


def per_pixel_conv2d(
    x: torch.Tensor,
    filters: torch.Tensor,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> torch.Tensor:
    """Per-pixel filters applied directly (DFN, paper ref. [16]): (N, C, H, W) → (N, O, H', W').

    ``filters`` (N, H', W', O, C, k_h, k_w) (the layout of ``per_pixel_filters``);
    ``out[n, o, i, j] = Σ_cuv filters[n, i, j, o, c, u, v]·x[n, c, i·s_h − p_h + u·d_h, j·s_w − p_w + v·d_w]``,
    computed from the unfolded input (N, C·k_h·k_w, H'·W'), so memory grows as O·C·k²·H'·W'.
    """
    if x.dim() != 4 or filters.dim() != 7 or filters.shape[4] != x.shape[1] or filters.shape[0] != x.shape[0]:
        raise ValueError(
            f"expected x (N, C, H, W) and filters (N, H', W', O, C, k_h, k_w) with equal N and C, got "
            f"{tuple(x.shape)} and {tuple(filters.shape)}"
        )
    n, oh, ow, _, c, kh, kw = filters.shape
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = cols.view(n, c, kh, kw, oh, ow)
    return torch.einsum("nhwocuv,ncuvhw->nohw", filters, cols)
