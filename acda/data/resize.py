"""MATLAB-compatible bicubic upscaling (``imresize(x, s, 'bicubic')``) and ``modcrop``, for RealSR V3's
low-resolution images (stored at HR/s) and the Bicubic row of Table 4.

MATLAB's bicubic kernel has a = −0.5 (Keys), samples output pixel i (1-based) at input coordinate
u = i/s + (1 − 1/s)/2, and extends the image symmetrically at its borders (edge pixels repeated);
``torch.nn.functional.interpolate`` uses a = −0.75 and clamps indices instead.
"""
from __future__ import annotations

import math

import torch

__all__ = ["cubic", "bicubic_weights", "imresize_bicubic", "modcrop"]


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = −0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def bicubic_weights(length: int, scale: int) -> torch.Tensor:
    """The (length·scale, length) float64 matrix of MATLAB's bicubic upscaling by ``scale`` along one axis."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive int, got {length!r}")
    out = torch.arange(1, length * scale + 1, dtype=torch.float64)
    u = out / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - 2)
    taps = left[:, None] + torch.arange(math.ceil(4) + 2, dtype=torch.float64)[None, :]  # 6 taps, 1-based
    w = cubic(u[:, None] - taps)
    w = w / w.sum(dim=1, keepdim=True)
    mirror = torch.cat([torch.arange(length), torch.arange(length - 1, -1, -1)])  # symmetric, edges repeated
    index = mirror[((taps.long() - 1) % (2 * length))]
    matrix = torch.zeros(length * scale, length, dtype=torch.float64)
    matrix.scatter_add_(1, index, w)
    return matrix


def imresize_bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``x`` (..., H, W) upscaled to (..., H·scale, W·scale) as MATLAB's ``imresize(x, scale, 'bicubic')``
    computes it in double precision (not rounded; float64)."""
    if x.dim() < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    rows, cols = bicubic_weights(h, scale), bicubic_weights(w, scale)
    return rows @ x.double() @ cols.T


def modcrop(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` (..., H, W) cropped at the bottom/right to a multiple of ``multiple`` (MATLAB's ``modcrop``)."""
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be a positive int, got {multiple!r}")
    h, w = x.shape[-2:]
    return x[..., :h - h % multiple, :w - w % multiple]
