"""Atom generation network Φ and atom reconstruction D = α·ψ (paper Eq. 4, §3.2, Appendix A.3).

``AtomGenerator`` maps input features (N, C, H, W) to per-pixel dynamic atoms
(N, m, k, k, H', W') at the *output* resolution of the ACDA layer: Φ predicts basis
coefficients α ∈ R^{m × S·m'} at each output pixel, and the atoms are α·ψ with the fixed
multi-scale Fourier-Bessel bases ψ (``acda.bases``).

``bases`` replaces ψ by any fixed set of shape (B, k, k) (e.g. the pixel basis ``eye(k²)``, for
which the coefficients are the atoms themselves: ``acda.peers.DFNConv2d``).

Two variants of Φ, because the paper and the authors' code disagree:

- ``"paper"`` (Appendix A.3): 1×1 conv C → 64, ReLU, 3×3 conv 64 → m·S·m'. The paper names
  the two layers but no non-linearity; we put a ReLU between them (two stacked linear layers
  would collapse into one).
- ``"official"`` (the authors' released layer): 3×3 conv C → h, BatchNorm, Tanh, 3×3 conv
  h → m·S·m', BatchNorm, Tanh, with h = max(64, m·S·m' // 2).

Alignment: output pixel (i, j) of an ACDA layer reads the input window whose centre is at
(i·stride + o_h, j·stride + o_w), with o = dilation·(k − 1)/2 − padding. The last 3×3 conv of
Φ is evaluated at exactly those centres (the input is zero-padded or cropped by o before a
stride-``stride``, unpadded 3×3 conv), so atoms are centred on the window they are applied to
and the layer stays translation-equivariant for any stride, padding and dilation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .bases import multiscale_bases

__all__ = ["AtomGenerator", "GENERATORS"]

GENERATORS = ("paper", "official")


class AtomGenerator(nn.Module):
    """Φ followed by D = α·ψ: (N, C, H, W) → atoms (N, m, k, k, H', W')."""

    def __init__(
        self,
        in_channels: int,
        num_atoms: int,
        kernel_size: int,
        stride: tuple[int, int] = (1, 1),
        center_offset: tuple[int, int] = (0, 0),
        *,
        num_bases: int = 6,
        num_scales: int | None = None,
        variant: str = "paper",
        hidden_channels: int | None = None,
        bases: torch.Tensor | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if variant not in GENERATORS:
            raise ValueError(f"generator must be one of {GENERATORS}, got {variant!r}")
        factory = {"device": device, "dtype": dtype}
        if bases is None:
            bases = multiscale_bases(kernel_size, num_bases, num_scales, dtype=dtype or torch.float32)
        elif bases.dim() != 3 or tuple(bases.shape[1:]) != (kernel_size, kernel_size):
            raise ValueError(f"bases must have shape (B, {kernel_size}, {kernel_size}), got {tuple(bases.shape)}")
        else:
            bases = bases.to(dtype or torch.float32)
        self.register_buffer("bases", bases.to(device), persistent=False)
        self.in_channels = in_channels
        self.num_atoms = num_atoms
        self.kernel_size = kernel_size
        self.stride = stride
        self.center_offset = center_offset
        self.variant = variant
        out_channels = num_atoms * bases.shape[0]
        if variant == "paper":
            hidden = 64 if hidden_channels is None else hidden_channels
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, hidden, 1, **factory), nn.ReLU(inplace=True)
            )
            self.head = nn.Conv2d(hidden, out_channels, 3, stride=stride, **factory)
            self.post = nn.Identity()
        else:
            hidden = max(64, out_channels // 2) if hidden_channels is None else hidden_channels
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, hidden, 3, padding=1, **factory),
                nn.BatchNorm2d(hidden, **factory),
                nn.Tanh(),
            )
            self.head = nn.Conv2d(hidden, out_channels, 3, stride=stride, **factory)
            self.post = nn.Sequential(nn.BatchNorm2d(out_channels, **factory), nn.Tanh())
        self.hidden_channels = hidden

    @property
    def num_basis_elements(self) -> int:
        """S·m', the number of basis elements each atom is a combination of."""
        return self.bases.shape[0]

    def coefficients(self, x: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """Basis coefficients α, shape (N, m, S·m', H', W') (paper Fig. 4)."""
        h = self.body(x)
        out_h, out_w = output_size
        pads = []  # F.pad order: last dim first; negative values crop
        for size, out, off, stride in (
            (h.shape[-1], out_w, self.center_offset[1], self.stride[1]),
            (h.shape[-2], out_h, self.center_offset[0], self.stride[0]),
        ):
            before = 1 - off
            after = (out - 1) * stride + 3 - (size + before)
            pads += [before, after]
        h = F.pad(h, pads)
        alpha = self.post(self.head(h))
        n = alpha.shape[0]
        return alpha.view(n, self.num_atoms, self.num_basis_elements, out_h, out_w)

    def forward(self, x: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        alpha = self.coefficients(x, output_size)
        return torch.einsum("nmbhw,buv->nmuvhw", alpha, self.bases.to(alpha.dtype))

    def extra_repr(self) -> str:
        return (
            f"variant={self.variant!r}, num_atoms={self.num_atoms}, "
            f"bases={tuple(self.bases.shape)}, stride={self.stride}, "
            f"center_offset={self.center_offset}"
        )
