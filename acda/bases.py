"""Fourier-Bessel atom bases ψ (paper §3.2 "Multi-scale atom bases", Appendix A.2; DCFNet [27]).

Recipe for one scale with kernel size ``2L + 1`` (``L >= 1``):

1. Grid. Integer offsets ``(dy, dx)`` with ``-L <= dy, dx <= L`` (``dy`` along rows, downwards;
   ``dx`` along columns), scaled by ``R = L + 0.5``: ``r = sqrt(dx² + dy²) / R`` and
   ``θ = atan2(dy, dx)``.
2. Candidates. For angular order ``k = 0..15`` and every zero ``j_kq`` of the Bessel function
   ``J_k`` with ``j_kq <= π·R·f`` (``f = 2`` for ``L = 1``, else ``1.5``, as in DCFNet), the radial
   function ``φ_kq(r) = J_k(j_kq·r) / |J_{k+1}(j_kq)|``, set to zero for ``r >= 1``.
   ``k = 0`` gives one element ``φ_0q``; ``k > 0`` gives two, ``√2·φ_kq·cos(kθ)`` then
   ``√2·φ_kq·sin(kθ)``.
3. Order. Candidates are sorted by ``j_kq`` (stable, so cos precedes sin), i.e. from low to
   high frequency, and at most ``(2L + 1)² − 1`` are kept.
4. Normalisation. One scalar per scale: every element is divided by
   ``c = sqrt(mean_b ||ψ_b||²)``, the root-mean-square norm of the kept candidates of step 3
   (not only of the ``m'`` elements finally used). This is DCFNet's choice; it keeps the
   relative norms of the elements, so low frequencies keep their larger weight.
5. Truncation. The first ``m'`` (``num_bases``) elements are returned.

The multi-scale set (paper Fig. 4) stacks scales ``3×3, 5×5, …, (2S+1)×(2S+1)``, each truncated
to ``m'`` elements, the smaller ones zero-padded (centred) to the layer's kernel size. A
``1×1`` kernel has the single trivial basis ``[[1]]``.

Note: the sampled elements are orthogonal across different angular orders and between the cos
and sin of one order (exactly, by the 4-fold symmetry of the grid), but two elements of the same
angular order and different radial zeros are only approximately orthogonal on a coarse grid;
``gram`` shows by how much.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy import special

from .utils import check_int, is_int

__all__ = ["fourier_bessel_basis", "multiscale_bases", "default_num_scales"]

_MAX_ANGULAR_ORDER = 15


def _check_odd_size(kernel_size: int, name: str = "kernel_size") -> None:
    check_int(name, kernel_size)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer (1, 3, 5, ...), got {kernel_size}")


@functools.cache
def _fourier_bessel_numpy(kernel_size: int) -> np.ndarray:
    """All kept candidates of one scale, normalised, as float64 of shape (B, k, k)."""
    if kernel_size == 1:
        return np.ones((1, 1, 1))
    L = kernel_size // 2
    R = L + 0.5
    factor = 2.0 if L < 2 else 1.5
    max_zero = math.pi * R * factor

    offsets = np.arange(-L, L + 1, dtype=np.float64)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    r = np.sqrt(dx**2 + dy**2) / R
    theta = np.arctan2(dy, dx)

    candidates = []  # (j_kq, k)
    for k in range(_MAX_ANGULAR_ORDER + 1):
        zeros = special.jn_zeros(k, 32)
        candidates.extend((float(z), k) for z in zeros[zeros <= max_zero])
    candidates.sort(key=lambda c: c[0])

    elements = []
    for zero, k in candidates:
        radial = special.jv(k, zero * r) / abs(special.jv(k + 1, zero))
        radial = np.where(r >= 1.0, 0.0, radial)
        if k == 0:
            elements.append(radial)
        else:
            elements.append(math.sqrt(2.0) * radial * np.cos(k * theta))
            elements.append(math.sqrt(2.0) * radial * np.sin(k * theta))
    psi = np.stack(elements)[: kernel_size**2 - 1]
    scale = math.sqrt(float(np.mean(np.sum(psi**2, axis=(1, 2)))))
    return psi / scale


def fourier_bessel_basis(
    kernel_size: int, num_bases: int = 6, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Fourier-Bessel basis of one scale, shape ``(num_bases, kernel_size, kernel_size)``.

    See the module docstring for the exact recipe (DCFNet [27], paper Appendix A.2).
    """
    _check_odd_size(kernel_size)
    psi = _fourier_bessel_numpy(kernel_size)
    if kernel_size == 1:
        num_bases = 1
    if not is_int(num_bases) or num_bases < 1 or num_bases > psi.shape[0]:
        raise ValueError(
            f"num_bases must be an int in [1, {psi.shape[0]}] for kernel_size={kernel_size}, "
            f"got {num_bases}"
        )
    return torch.from_numpy(psi[:num_bases].copy()).to(dtype)


def default_num_scales(kernel_size: int) -> int:
    """Scales 3×3 … k×k, i.e. ``k // 2`` (the authors' code); 1 for a 1×1 kernel."""
    _check_odd_size(kernel_size)
    return max(1, kernel_size // 2)


def multiscale_bases(
    kernel_size: int,
    num_bases: int = 6,
    num_scales: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Multi-scale set ψ (paper Fig. 4), shape ``(S·m', kernel_size, kernel_size)``.

    Scale ``s`` (``s = 1..S``) has kernel size ``2s + 1`` and is zero-padded to ``kernel_size``.
    ``num_scales=None`` uses ``kernel_size // 2`` scales (all that fit). For ``kernel_size=1``
    the set is the single element ``[[1]]``.
    """
    _check_odd_size(kernel_size)
    if kernel_size == 1:
        if num_scales not in (None, 1):
            raise ValueError(f"num_scales must be None or 1 for kernel_size=1, got {num_scales}")
        return torch.ones(1, 1, 1, dtype=dtype)
    max_scales = kernel_size // 2
    if num_scales is None:
        num_scales = max_scales
    if not is_int(num_scales) or not 1 <= num_scales <= max_scales:
        raise ValueError(
            f"num_scales must be an int in [1, {max_scales}] for kernel_size={kernel_size} "
            f"(scales 3x3 ... {kernel_size}x{kernel_size}), got {num_scales}"
        )
    sets = []
    for s in range(1, num_scales + 1):
        basis = fourier_bessel_basis(2 * s + 1, num_bases, dtype=torch.float64)
        pad = kernel_size // 2 - s
        sets.append(torch.nn.functional.pad(basis, (pad, pad, pad, pad)))
    return torch.cat(sets).to(dtype)


def gram(basis: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``<ψ_a, ψ_b>`` of a basis of shape (B, k, k)."""
    flat = basis.reshape(basis.shape[0], -1)
    return flat @ flat.T
