"""Functional ACDA: atom convolution (Eq. 5), coefficient convolution (Eq. 6), per-pixel filters.

Shapes (stride, padding, dilation as in ``torch.nn.functional.conv2d``, cross-correlation):

- ``x``: (N, C, H, W) input; ``atoms``: (N, m, k, k, H', W') per-pixel dynamic atoms ``D_ij``;
- ``coef``: (O, C, m) shared compositional coefficients ``A``; ``bias``: (O,) or None.

Atom element ``atoms[n, b, u, v, i, j]`` multiplies ``x[n, c, i·s_h − p_h + u·d_h,
j·s_w − p_w + v·d_w]``. ``atom_conv2d`` returns channel ``c·m + b`` = Σ_uv D_ij[b, u, v]·x[...],
so ``acda_conv2d(x, atoms, coef, bias)[n, o, i, j] = Σ_c Σ_uv K_ij[o, c, u, v]·x[...] + bias[o]``
with ``K_ij = A·D_ij`` (paper Eq. 2, Fig. 2): the two-layer implementation of Fig. 3.
``acda_alpha_conv2d`` takes the basis coefficients α and bases ψ instead of the atoms (Eq. 4; what
``ACDAConv2d`` calls); ``per_pixel_filters``/``per_pixel_conv2d`` build and apply the full filters
K_ij (Dynamic Filter Networks, the path ACDA's two-layer form avoids).

``atom_conv2d`` is the one dispatch point to the backends of ``acda.ops.BACKENDS`` (``backend="auto"``
picks the best available for the input's device), and every argument is validated here, once and
the same way for every backend (``TypeError``/``ValueError`` naming the argument). See
docs/backends.md for the dispatch and the full input policy (devices, dtypes and autocast, sizes,
NaN/inf).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops import check_backend, get_backend, reference, resolve_backend
from .ops import custom_op as _custom_op  # noqa: F401  (registers torch.ops.acda.*)
from .utils import (
    ArgumentTypeError,
    ArgumentValueError,
    IntPair,
    check_conv_size,
    check_float_dtype,
    check_same_device,
    check_same_dtype,
    check_tensor,
    pair,
)

__all__ = [
    "atom_conv2d",
    "acda_conv2d",
    "acda_alpha_conv2d",
    "to_channels_last",
    "per_pixel_filters",
    "per_pixel_conv2d",
]


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype when autocast is on for ``device``'s type, else ``None``."""
    kind = device.type
    if torch.amp.is_autocast_available(kind) and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return None


_LAYOUTS = {"atoms": (6, "(N, m, k_h, k_w, H', W')"), "alpha": (5, "(N, m, B, H', W')"), "bases": (3, "(B, k_h, k_w)"),
            "coef": (3, "(O, C, m)"), "bias": (1, "(O,)")}


def _check_tensors(x, **tensors) -> torch.dtype:
    """Types, dims, devices and dtypes of ``x`` and the named tensors (``coef`` and ``bias`` may be ``None``:
    ``atom_conv2d`` has neither, and ``coef``'s absence is refused by its callers); returns the dtype the op
    computes in."""
    check_tensor("x", x, 4, "(N, C, H, W)")
    for name, t in tensors.items():
        if t is not None or name not in ("coef", "bias"):
            check_tensor(name, t, *_LAYOUTS[name])
    named = list(tensors.items())
    check_same_device(("x", x), *named)
    for name, t in [("x", x), *named]:
        if t is not None:
            check_float_dtype(name, t.dtype)
    autocast = autocast_dtype(x.device)
    if autocast is None:
        check_same_dtype(("x", x), *named)
    return autocast or x.dtype


def _check_shapes(x, atoms_shape, coef, bias, stride, padding, dilation, alpha: bool = False) -> None:
    """Sizes: N, C, m, O, k ≥ 1 (N ≥ 0), consistent across the tensors, and the convolution geometry.

    ``atoms_shape`` (N, m, k_h, k_w, H', W'): the atoms' shape, or with ``alpha`` the shape of α·ψ (the
    messages then name ``alpha`` and ``bases``).
    """
    n, c = x.shape[:2]
    _, m, kh, kw, oh, ow = atoms_shape
    source = "alpha" if alpha else "atoms"
    if atoms_shape[0] != n:
        raise ArgumentValueError(f"{source} batch size {atoms_shape[0]} does not match x batch size {n}")
    if c < 1:
        raise ArgumentValueError(f"x must have at least one channel, got shape {tuple(x.shape)}")
    if m < 1 or kh < 1 or kw < 1:
        taps = "bases.shape[1:]" if alpha else "atoms.shape[2:4]"
        raise ArgumentValueError(
            f"{source} must hold at least one atom (m = {source}.shape[1]) of at least 1×1 taps ({taps}), "
            f"got atoms of shape {tuple(atoms_shape)}"
        )
    expected = check_conv_size(tuple(x.shape[-2:]), (kh, kw), stride, padding, dilation)
    if (oh, ow) != expected:
        raise ArgumentValueError(
            f"{source} must have output spatial size {expected} for this input, stride {stride}, "
            f"padding {padding} and dilation {dilation}; got {(oh, ow)}"
        )
    if coef is None:
        return
    out_channels = coef.shape[0]
    if out_channels < 1:
        raise ArgumentValueError(f"coef must have at least one output channel (O = coef.shape[0]), "
                                 f"got shape {tuple(coef.shape)}")
    if coef.shape[1] != c:
        raise ArgumentValueError(f"x must have {coef.shape[1]} channels (coef.shape[1]), got {c}")
    if coef.shape[2] != m:
        raise ArgumentValueError(f"{source} must hold m={coef.shape[2]} atoms (coef.shape[2]), got {m}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ArgumentValueError(f"bias must have shape ({out_channels},), got {tuple(bias.shape)}")


def _validate(x, atoms, coef, bias, stride, padding, dilation, backend, *, alpha=None, bases=None):
    """The one validation of ``atom_conv2d``, ``acda_conv2d`` (``coef`` None for the former) and
    ``acda_alpha_conv2d`` (``atoms`` None, ``alpha`` and ``bases`` given), the same for every backend, before any
    allocation or dispatch; returns (stride, padding, dilation, backend name).

    Backend-independent checks come first, so every backend raises the same error for the same bad
    input; then the resolved backend's own limits (``Backend.available``, ``Backend.dtypes``).
    """
    check_backend(backend)
    if atoms is None:
        compute = _check_tensors(x, alpha=alpha, bases=bases, coef=coef, bias=bias)
        if alpha.shape[2] != bases.shape[0]:
            raise ArgumentValueError(f"alpha must hold B={bases.shape[0]} coefficients per atom (bases.shape[0]) "
                                     f"in alpha.shape[2], got {alpha.shape[2]}")
        atoms_shape = (*alpha.shape[:2], *bases.shape[1:], *alpha.shape[3:])
    else:
        compute = _check_tensors(x, atoms=atoms, coef=coef, bias=bias)
        atoms_shape = tuple(atoms.shape)
    stride = pair(stride, "stride")
    padding = pair(padding, "padding", minimum=0)
    dilation = pair(dilation, "dilation")
    _check_shapes(x, atoms_shape, coef, bias, stride, padding, dilation, alpha=atoms is None)
    name = resolve_backend(backend, x.device)
    impl = get_backend(name)
    if not impl.available(x.device):
        raise ArgumentValueError(f"backend {name!r} is not available for tensors on device {x.device}")
    check_float_dtype("x", compute, impl.dtypes, where=f"backend {name!r}")
    return stride, padding, dilation, name


def _compute_dtype(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """Custom ops are not autocast-aware: under autocast, cast to its dtype (else the dtypes already agree)."""
    dtype = autocast_dtype(tensors[0].device)
    if dtype is None:
        return tensors
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
    stride, padding, dilation, backend = _validate(x, atoms, None, None, stride, padding, dilation, backend)
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
    """Two-layer ACDA (paper Eq. 5 then Eq. 6, Fig. 3): atom conv, then a 1×1 conv with ``coef``.

    Args:
        x: input (N, C, H, W).
        atoms: per-pixel atoms (N, m, k_h, k_w, H', W').
        coef: coefficients (O, C, m); ``bias``: (O,) or None.
        stride, padding, dilation: as in ``torch.nn.functional.conv2d``.
        backend: a name of ``acda.ops.BACKENDS`` or ``"auto"``.

    Returns:
        (N, O, H', W'), ``Σ_c Σ_uv (coef·atoms)[o, c, u, v]·x[...] + bias[o]`` at each output pixel.

    Example:
        >>> x, atoms = torch.randn(2, 3, 8, 8), torch.randn(2, 4, 3, 3, 8, 8)  # m = 4 atoms, 3×3
        >>> coef = torch.randn(5, 3, 4)  # O = 5, C = 3, m = 4
        >>> acda_conv2d(x, atoms, coef, padding=1).shape
        torch.Size([2, 5, 8, 8])
    """
    if coef is None:
        raise ArgumentTypeError("coef must be a torch.Tensor (O, C, m), got NoneType")
    stride, padding, dilation, name = _validate(x, atoms, coef, bias, stride, padding, dilation, backend)
    out_channels, in_channels, m = coef.shape
    if get_backend(name).fused_forward is None:
        z = atom_conv2d(x, atoms, stride, padding, dilation, backend=name)
        return F.conv2d(z, coef.reshape(out_channels, in_channels * m, 1, 1), bias)
    x, atoms, coef, bias = _compute_dtype(x, atoms, coef, bias)
    return torch.ops.acda.acda_conv2d(x, atoms, coef, bias, list(stride), list(padding), list(dilation), name)


def acda_alpha_conv2d(
    x: torch.Tensor,
    alpha: torch.Tensor,
    bases: torch.Tensor,
    coef: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Two-layer ACDA from the basis coefficients: ``acda_conv2d(x, α·ψ, coef, bias, ...)`` (paper Eq. 4–6).

    ``alpha`` (N, m, B, H', W'), ``bases`` ψ (B, k_h, k_w) (``AtomGenerator.bases``). On a backend with an α
    path (``Backend.alpha_forward``: ``"native"``, ``"triton"``) each pixel's atoms are formed in cache as the
    kernel goes and grad α is computed directly (torch.ops.acda.acda_alpha_conv2d): the atoms
    (N, m, k_h, k_w, H', W') and their gradient are never stored. Elsewhere, and when ``bases`` requires grad
    (the fused op does not differentiate ψ), the atoms are reconstructed (``acda.ops.reference.atoms_from_alpha``)
    and passed to ``acda_conv2d``.
    """
    if coef is None:
        raise ArgumentTypeError("coef must be a torch.Tensor (O, C, m), got NoneType")
    stride, padding, dilation, name = _validate(x, None, coef, bias, stride, padding, dilation, backend,
                                                alpha=alpha, bases=bases)
    if get_backend(name).alpha_forward is None or (bases.requires_grad and torch.is_grad_enabled()):
        atoms = reference.atoms_from_alpha(*_compute_dtype(alpha, bases))
        return acda_conv2d(x, atoms, coef, bias, stride, padding, dilation, backend=name)
    x, alpha, bases, coef, bias = _compute_dtype(x, alpha, bases, coef, bias)
    return torch.ops.acda.acda_alpha_conv2d(x, alpha, bases, coef, bias, list(stride), list(padding),
                                            list(dilation), name)


class _ToChannelsLast(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():  # double backward: stay differentiable
            return grad.contiguous()
        return torch.ops.acda.channels_first(grad)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) stored channels-last, the layout the native kernels read; its gradient comes back
    contiguous when ``x`` was, through a blocked transpose (``torch.ops.acda.channels_first``) instead of ATen's
    strided copy, which is several times slower in that direction. ``x`` itself when already channels-last."""
    if (x.requires_grad and torch.is_grad_enabled() and x.is_contiguous()
            and not x.is_contiguous(memory_format=torch.channels_last) and not torch.jit.is_tracing()):
        return _ToChannelsLast.apply(x)
    return x.contiguous(memory_format=torch.channels_last)  # (traced for FLOP counting: no Python op in the graph)


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
