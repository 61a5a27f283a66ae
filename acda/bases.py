"""Fourier-Bessel atom bases ψ (paper §3.2 "Multi-scale atom bases", Appendix A.2; DCFNet [27]).

``fourier_bessel_basis(kernel_size, num_bases)`` → ``(num_bases, k, k)``: the Bessel-zero radial
functions times cos/sin of the angular order, sampled on the ``k × k`` grid, sorted from low to
high frequency, normalised by one scalar per scale (DCFNet's) and truncated to the first m'.
``multiscale_bases`` stacks the scales ``3×3, 5×5, …, (2S+1)×(2S+1)`` (paper Fig. 4), m' elements
each, the smaller ones zero-padded (centred) to the layer's kernel size → ``(S·m', k, k)``; a
``1×1`` kernel has the single trivial basis ``[[1]]``. ``gram`` measures how orthogonal a set is.

Variants (``variant=``, ``BASES_VARIANTS``): ``"paper"`` follows the paper's recipe; ``"official"``
reproduces the authors' released bases (``fb.py`` / ``bases_list`` in github.com/ZeWang95/ACDA, a
port of DCFNet's ``calculate_FB_bases.m``): transposed, normalised over a smaller candidate set and
rounded to float32.

See docs/bases.md for the exact recipe (grid, candidates, order, normalisation, truncation), the
orthogonality of the sampled elements and how, and by how much, ``"official"`` differs.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy import special

from .utils import check_choice, check_int, is_int

__all__ = ["fourier_bessel_basis", "multiscale_bases", "default_num_scales", "BASES_VARIANTS"]

BASES_VARIANTS = ("paper", "official")
_MAX_ANGULAR_ORDER = 15


def _check_odd_size(kernel_size: int, name: str = "kernel_size") -> None:
    check_int(name, kernel_size)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer (1, 3, 5, ...), got {kernel_size}")


def _check_variant(variant: str) -> None:
    check_choice("variant", variant, BASES_VARIANTS)


def _candidates(L: int, variant: str) -> list[tuple[float, int]]:
    """Steps 2–3: ``(j_kq, k)`` of the kept candidates of scale ``2L + 1``, sorted by ``j_kq``."""
    R = L + 0.5
    factor = 2.0 if L < 2 else 1.5
    max_zero = math.pi * R * factor
    candidates = []  # (j_kq, k)
    count = max(32, math.ceil(max_zero / math.pi) + 2)  # j_kq > π(q − 1/4): every zero below the cut
    for k in range(_MAX_ANGULAR_ORDER + 1):
        zeros = _bessel_zeros(k, count)
        if variant == "paper":
            kept = zeros[zeros <= max_zero]
        else:  # DCFNet's table: the cut is on the next zero j_{k,q+1}
            kept = zeros[:-1][zeros[1:] <= max_zero]
        candidates.extend((float(z), k) for z in kept)
    candidates.sort(key=lambda c: c[0])
    return candidates


@functools.lru_cache(maxsize=64)
def _bessel_zeros(k: int, count: int) -> np.ndarray:
    zeros = special.jn_zeros(k, count)
    zeros.setflags(write=False)
    return zeros


class _Radii:
    """The distinct values of a radius grid and where each grid point reads its value: Bessel functions of a
    grid are evaluated once per distinct radius (a grid repeats each radius up to 8 times), bit-identical to
    the direct call on the grid and many times faster."""

    def __init__(self, r: np.ndarray) -> None:
        self.values, inverse = np.unique(r, return_inverse=True)
        self.inverse = inverse.reshape(r.shape)
        self.inside = self.values < 1.0  # only these are evaluated: the elements vanish at r >= 1

    def radial(self, k: int, zero: float, official: bool = False) -> np.ndarray:
        """``special.jv(k, zero * r) / |J_{k+1}(zero)|`` on the grid (``official``: the reciprocal times the
        Bessel values, the authors' order of operations), 0 where r >= 1."""
        inner, norm = special.jv(k, zero * self.values[self.inside]), abs(special.jv(k + 1, zero))
        values = np.zeros_like(self.values)
        values[self.inside] = 1.0 / norm * inner if official else inner / norm
        return values[self.inverse]


class _Angles:
    """cos(kθ) and sin(kθ) of a grid, computed once per order k."""

    def __init__(self, theta: np.ndarray) -> None:
        self.theta = theta
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._cache:
            self._cache[k] = (np.cos(k * self.theta), np.sin(k * self.theta))
        return self._cache[k]


@functools.lru_cache(maxsize=256)
def _scale_bases(kernel_size: int, variant: str, count: int) -> tuple[np.ndarray, int]:
    """The first ``count`` normalised elements of one scale (read-only float64 (count, k, k)) and how
    many candidates the scale keeps. Only these small arrays are cached (bounded); the full candidate
    set of a large kernel (up to k² − 1 elements of k × k) is built, used for the normaliser and dropped."""
    psi = _fourier_bessel_numpy(kernel_size, variant)
    head = psi[:count].copy()
    head.setflags(write=False)
    return head, psi.shape[0]


def _fourier_bessel_numpy(kernel_size: int, variant: str = "paper") -> np.ndarray:
    """All kept candidates of one scale, normalised, as float64 of shape (B, k, k)."""
    if kernel_size == 1:
        return np.ones((1, 1, 1))
    if variant == "official":
        return _fourier_bessel_official(kernel_size)
    L = kernel_size // 2
    R = L + 0.5

    offsets = np.arange(-L, L + 1, dtype=np.float64)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    r = np.sqrt(dx**2 + dy**2) / R
    theta = np.arctan2(dy, dx)

    radii, angles, elements = _Radii(r), _Angles(theta), []
    for zero, k in _candidates(L, "paper"):
        if len(elements) >= kernel_size**2 - 1:
            break
        radial = radii.radial(k, zero)
        if k == 0:
            elements.append(radial)
        else:
            cos, sin = angles(k)
            elements.append(math.sqrt(2.0) * radial * cos)
            elements.append(math.sqrt(2.0) * radial * sin)
    psi = np.stack(elements)[: kernel_size**2 - 1]
    scale = math.sqrt(float(np.mean(np.sum(psi**2, axis=(1, 2)))))
    return psi / scale


def _fourier_bessel_official(kernel_size: int) -> np.ndarray:
    """The authors' variant of one scale (docs/bases.md), float32 values as float64 (B, k, k).

    Same steps, in the authors' arithmetic order: offsets scaled by 1/R before the polar
    transform, θ measured from the row axis, elements as columns of a (k², B) array.
    """
    L = kernel_size // 2
    R = L + 0.5
    offsets = np.arange(-L, L + 1, dtype=np.float64) / R
    cols, rows = np.meshgrid(offsets, offsets)  # cols varies along a row, rows down a column
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    r = np.sqrt(rows**2 + cols**2)
    theta = np.arctan2(cols, rows)

    radii, angles, elements = _Radii(r), _Angles(theta), []
    for zero, k in _candidates(L, "official"):
        if len(elements) >= kernel_size**2 - 1:
            break
        radial = radii.radial(k, zero, official=True)
        if k == 0:
            elements.append(radial)
        else:
            cos, sin = angles(k)
            elements.append(radial * cos * math.sqrt(2.0))
            elements.append(radial * sin * math.sqrt(2.0))
    psi = np.ascontiguousarray(np.stack(elements, axis=1)[:, : kernel_size**2 - 1])  # (k², B)
    psi = psi / np.sqrt(np.sum(psi**2, 0).mean())
    return psi.T.reshape(-1, kernel_size, kernel_size).astype(np.float32).astype(np.float64)


def fourier_bessel_basis(
    kernel_size: int,
    num_bases: int = 6,
    *,
    dtype: torch.dtype = torch.float32,
    variant: str = "paper",
) -> torch.Tensor:
    """Fourier-Bessel basis of one scale, shape ``(num_bases, kernel_size, kernel_size)``.

    See docs/bases.md for the exact recipe (DCFNet [27], paper Appendix A.2) and for what
    ``variant="official"`` (the authors' code: transposed, another normalisation, float32) changes.
    """
    _check_odd_size(kernel_size)
    _check_variant(variant)
    if kernel_size == 1:
        num_bases = 1
    valid = is_int(num_bases) and num_bases >= 1
    psi, available = _scale_bases(kernel_size, variant, num_bases if valid else 1)
    if not valid or num_bases > available:
        where = "" if variant == "paper" else f" (variant={variant!r})"
        raise ValueError(
            f"num_bases must be an int in [1, {available}] for kernel_size={kernel_size}{where}, "
            f"got {num_bases}"
        )
    return torch.from_numpy(psi.copy()).to(dtype)


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
    variant: str = "paper",
) -> torch.Tensor:
    """Multi-scale set ψ (paper Fig. 4), shape ``(S·m', kernel_size, kernel_size)``.

    Scale ``s`` (``s = 1..S``) has kernel size ``2s + 1`` and is zero-padded to ``kernel_size``.
    ``num_scales=None`` uses ``kernel_size // 2`` scales (all that fit). For ``kernel_size=1``
    the set is the single element ``[[1]]``. ``variant="official"``: the authors' set
    (``bases_list`` of their ``Conv_DCFD.py``): each scale transposed, normalised over DCFNet's
    candidate set and rounded to float32 (docs/bases.md).
    """
    _check_odd_size(kernel_size)
    _check_variant(variant)
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
        basis = fourier_bessel_basis(2 * s + 1, num_bases, dtype=torch.float64, variant=variant)
        pad = kernel_size // 2 - s
        sets.append(torch.nn.functional.pad(basis, (pad, pad, pad, pad)))
    return torch.cat(sets).to(dtype)


def gram(basis: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``<ψ_a, ψ_b>`` of a basis of shape (B, k, k)."""
    flat = basis.reshape(basis.shape[0], -1)
    return flat @ flat.T
