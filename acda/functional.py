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

Each public function validates its arguments once, the same way for every backend (``TypeError``/
``ValueError`` naming the argument), resolves the backend once (``backend="auto"``: the best available for
the input's device; ``acda.ops.registry``), and hands the result to one private dispatcher, ``_run``, which
owns the fallback chain (α path → fused op → atom convolution + 1×1). Dispatch and input policy (devices,
dtypes and autocast, sizes, NaN/inf): docs/backends.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .ops import custom_op as _custom_op  # noqa: F401  (registers torch.ops.acda.*)
from .ops import reference
from .ops.registry import Backend, check_backend, get_backend, resolve_backend
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


_LAYOUTS = {"x": (4, "(N, C, H, W)"), "atoms": (6, "(N, m, k_h, k_w, H', W')"), "alpha": (5, "(N, m, B, H', W')"),
            "bases": (3, "(B, k_h, k_w)"), "coef": (3, "(O, C, m)"), "bias": (1, "(O,)"),
            "filters": (7, "(N, H', W', O, C, k_h, k_w)")}


def _check_tensors(**tensors) -> torch.dtype:
    """Types, dims, devices and dtypes of the named tensors, the first of which is never ``None`` (``coef`` and
    ``bias`` may be: ``atom_conv2d`` has neither, and ``coef``'s absence is refused by its callers); returns
    the dtype the op computes in."""
    named = [(name, t) for name, t in tensors.items() if t is not None or name not in ("coef", "bias")]
    for name, t in named:
        check_tensor(name, t, *_LAYOUTS[name])
    check_same_device(*named)
    for name, t in named:
        check_float_dtype(name, t.dtype)
    first = named[0][1]
    autocast = autocast_dtype(first.device)
    if autocast is None:
        check_same_dtype(*named)
    return autocast or first.dtype


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


@dataclass(frozen=True)
class _Plan:
    """What one call runs: its geometry (pairs) and its resolved backend."""

    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    backend: Backend

    @property
    def geometry(self) -> tuple[list[int], list[int], list[int]]:
        return list(self.stride), list(self.padding), list(self.dilation)


def _plan(backend: str, device: torch.device, compute: torch.dtype, stride, padding, dilation) -> _Plan:
    """Resolve ``backend`` for ``device`` once and check it can run in ``compute`` (``Backend.available``,
    ``Backend.dtypes``); ``stride``/``padding``/``dilation`` as pairs (already checked)."""
    name = resolve_backend(backend, device)
    impl = get_backend(name)
    if not impl.available(device):
        raise ArgumentValueError(f"backend {name!r} is not available for tensors on device {device}")
    check_float_dtype("x", compute, impl.dtypes, where=f"backend {name!r}")
    return _Plan(stride, padding, dilation, impl)


def _validate(x, atoms, coef, bias, stride, padding, dilation, backend, *, alpha=None, bases=None) -> _Plan:
    """The one validation of ``atom_conv2d``, ``acda_conv2d`` (``coef`` None for the former) and
    ``acda_alpha_conv2d`` (``atoms`` None, ``alpha`` and ``bases`` given), the same for every backend, before any
    allocation or dispatch; returns the call's ``_Plan``.

    Backend-independent checks come first, so every backend raises the same error for the same bad
    input; then the resolved backend's own limits (``Backend.available``, ``Backend.dtypes``).
    """
    check_backend(backend)
    if atoms is None:
        compute = _check_tensors(x=x, alpha=alpha, bases=bases, coef=coef, bias=bias)
        if alpha.shape[2] != bases.shape[0]:
            raise ArgumentValueError(f"alpha must hold B={bases.shape[0]} coefficients per atom (bases.shape[0]) "
                                     f"in alpha.shape[2], got {alpha.shape[2]}")
        atoms_shape = (*alpha.shape[:2], *bases.shape[1:], *alpha.shape[3:])
    else:
        compute = _check_tensors(x=x, atoms=atoms, coef=coef, bias=bias)
        atoms_shape = tuple(atoms.shape)
    stride = pair(stride, "stride")
    padding = pair(padding, "padding", minimum=0)
    dilation = pair(dilation, "dilation")
    _check_shapes(x, atoms_shape, coef, bias, stride, padding, dilation, alpha=atoms is None)
    return _plan(backend, x.device, compute, stride, padding, dilation)


def _compute_dtype(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """Custom ops are not autocast-aware: under autocast, cast to its dtype (else the dtypes already agree)."""
    dtype = autocast_dtype(tensors[0].device)
    if dtype is None:
        return tensors
    return tuple(None if t is None else t.to(dtype) for t in tensors)


def _run(plan: _Plan, x: torch.Tensor, coef: torch.Tensor | None, bias: torch.Tensor | None = None, *,
         atoms: torch.Tensor | None = None, alpha: torch.Tensor | None = None,
         bases: torch.Tensor | None = None) -> torch.Tensor:
    """The one dispatcher, on validated arguments: the α path where the backend has one (and ψ needs no
    gradient), else the atoms α·ψ; then the fused op where the backend has one, else the atom convolution
    (``coef`` None: its output) followed by the 1×1 coefficient convolution."""
    impl, (stride, padding, dilation) = plan.backend, plan.geometry
    if alpha is not None:
        if impl.alpha_forward is not None and not (bases.requires_grad and torch.is_grad_enabled()):
            x, alpha, bases, coef, bias = _compute_dtype(x, alpha, bases, coef, bias)
            return torch.ops.acda.acda_alpha_conv2d(x, alpha, bases, coef, bias, stride, padding, dilation,
                                                    impl.name)
        atoms = reference.atoms_from_alpha(*_compute_dtype(alpha, bases))
    if coef is not None and impl.fused_forward is not None:
        x, atoms, coef, bias = _compute_dtype(x, atoms, coef, bias)
        return torch.ops.acda.acda_conv2d(x, atoms, coef, bias, stride, padding, dilation, impl.name)
    if impl.name == "reference":
        z = reference.forward(x, atoms, plan.stride, plan.padding, plan.dilation)
    else:
        xc, atoms_c = _compute_dtype(x, atoms)
        z = torch.ops.acda.atom_conv2d(xc, atoms_c, stride, padding, dilation, impl.name)
    if coef is None:
        return z
    out_channels, in_channels, m = coef.shape
    return F.conv2d(z, coef.reshape(out_channels, in_channels * m, 1, 1), bias)


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
    return _run(_validate(x, atoms, None, None, stride, padding, dilation, backend), x, None, atoms=atoms)


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
    return _run(_validate(x, atoms, coef, bias, stride, padding, dilation, backend), x, coef, bias, atoms=atoms)


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
    (the fused op does not differentiate ψ), the atoms are reconstructed (``acda.ops.reference.atoms_from_alpha``).
    """
    if coef is None:
        raise ArgumentTypeError("coef must be a torch.Tensor (O, C, m), got NoneType")
    plan = _validate(x, None, coef, bias, stride, padding, dilation, backend, alpha=alpha, bases=bases)
    return _run(plan, x, coef, bias, alpha=alpha, bases=bases)


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
    """Full per-pixel filters K_ij = A·D_ij (paper Fig. 2): ``atoms`` (N, m, k_h, k_w, H', W') and ``coef``
    (O, C, m) → (N, H', W', O, C, k_h, k_w). Checked as ``acda_conv2d`` checks them.

    For tests and visualisation only: this is the tensor the two-layer implementation avoids.
    """
    _check_tensors(atoms=atoms, coef=coef)
    if min(atoms.shape[1:4]) < 1 or min(coef.shape[:2]) < 1:
        raise ArgumentValueError(f"atoms and coef must hold at least one atom of at least 1×1 taps, one input and one "
                                 f"output channel, got atoms {tuple(atoms.shape)} and coef {tuple(coef.shape)}")
    if coef.shape[2] != atoms.shape[1]:
        raise ArgumentValueError(f"atoms must hold m={coef.shape[2]} atoms (coef.shape[2]), got {atoms.shape[1]}")
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
    computed from the unfolded input (N, C·k_h·k_w, H'·W'), so memory grows as O·C·k²·H'·W'. Checked as
    ``acda_conv2d`` checks its arguments.
    """
    _check_tensors(x=x, filters=filters)
    stride, padding, dilation = pair(stride, "stride"), pair(padding, "padding", minimum=0), pair(dilation, "dilation")
    n, oh, ow, _, c, kh, kw = filters.shape
    if n != x.shape[0]:
        raise ArgumentValueError(f"filters batch size {n} does not match x batch size {x.shape[0]}")
    if c != x.shape[1]:
        raise ArgumentValueError(f"x must have {c} channels (filters.shape[4]), got {x.shape[1]}")
    if min(filters.shape[1:]) < 1:
        raise ArgumentValueError(f"filters must have non-empty H', W', O, C, k_h, k_w, got shape {tuple(filters.shape)}")
    expected = check_conv_size(tuple(x.shape[-2:]), (kh, kw), stride, padding, dilation)
    if (oh, ow) != expected:
        raise ArgumentValueError(f"filters must have output spatial size {expected} for this input, stride {stride}, "
                                 f"padding {padding} and dilation {dilation}; got {(oh, ow)}")
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = cols.view(n, c, kh, kw, oh, ow)
    return torch.einsum("nhwocuv,ncuvhw->nohw", filters, cols)
