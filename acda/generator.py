"""Atom generation network Φ and atom reconstruction D = α·ψ (paper Eq. 4, §3.2, Appendix A.3).

``AtomGenerator`` maps input features (N, C, H, W) to per-pixel dynamic atoms
(N, m, k, k, H', W') at the *output* resolution of the ACDA layer: Φ predicts basis
coefficients α ∈ R^{m × S·m'} at each output pixel, and the atoms are α·ψ with the fixed
multi-scale Fourier-Bessel bases ψ (``acda.bases``). ``bases`` replaces ψ by any fixed set of
shape (B, k, k) (e.g. the pixel basis ``eye(k²)``: ``acda.peers.DFNConv2d``).

Two variants of Φ (``GENERATORS``), because the paper and the authors' code disagree:

- ``"paper"`` (Appendix A.3): 1×1 conv C → 64, ReLU, 3×3 conv 64 → m·S·m' (stride on the 3×3).
- ``"official"`` (the authors' ``Conv_DCFD``, github.com/ZeWang95/ACDA): 3×3 conv C → h, BN, Tanh,
  3×3 conv h → m·S·m', BN, Tanh, h = max(64, m·S·m' // 2), with the authors' bases; exactly their
  function where their layer is defined (``tests/test_official.py``).

The strided 3×3 conv is evaluated at the centres of the windows the layer's output pixels read, so
atoms are centred on their window for any stride, padding and dilation. See docs/generator.md for
the choices behind each variant, where the authors' layer is defined, and the alignment rule.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .bases import multiscale_bases
from .ops.reference import atoms_from_alpha
from .utils import check_choice, conv_output_size

__all__ = ["AtomGenerator", "GENERATORS"]

GENERATORS = ("paper", "official")


class _GradInLayout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        ctx.memory_format = torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        return t.view_as(t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=ctx.memory_format)


class GradInLayout(nn.Module):
    """Identity whose gradient is handed back in the memory layout of its input (no parameters).

    Placed after the official generator's BatchNorms: PyTorch's CPU ``batch_norm`` backward of a channels-last
    input is wrong when the incoming gradient is in another, permuted layout (as the view/einsum backward of
    α produces; found by ``tests/test_fuzz.py``), so the gradient is put in the input's layout first.
    """

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if t.requires_grad and t.dim() == 4 and torch.is_grad_enabled() and not torch.jit.is_tracing():
            return _GradInLayout.apply(t)
        return t  # (traced for FLOP counting: an identity, no Python op in the graph)


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
        check_choice("generator", variant, GENERATORS)
        factory = {"device": device, "dtype": dtype}
        if bases is None:
            bases = multiscale_bases(kernel_size, num_bases, num_scales, dtype=dtype or torch.float32,
                                     variant=variant)
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
                nn.Conv2d(in_channels, hidden, 3, stride=stride, **factory),  # padded by _centred_conv
                nn.BatchNorm2d(hidden, **factory),
                GradInLayout(),
                nn.Tanh(),
            )
            self.head = nn.Conv2d(hidden, out_channels, 3, padding=1, **factory)
            self.post = nn.Sequential(nn.BatchNorm2d(out_channels, **factory), GradInLayout(), nn.Tanh())
        self.hidden_channels = hidden

    @property
    def num_basis_elements(self) -> int:
        """S·m', the number of basis elements each atom is a combination of."""
        return self.bases.shape[0]

    def _pads(self, size: tuple[int, int], output_size: tuple[int, int]) -> list[tuple[int, int]]:
        """(before, after) zero padding (negative: crop) of rows, then columns, for which an unpadded, strided
        3×3 conv sees the window centres."""
        pads = []
        for length, out, off, stride in zip(size, output_size, self.center_offset, self.stride):
            before = 1 - off
            pads.append((before, (out - 1) * stride + 3 - (length + before)))
        return pads

    def _centred_conv(self, conv: nn.Conv2d, h: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """``conv`` (3×3, stride ``self.stride``) evaluated at the window centres (see Alignment above).

        When the alignment is a symmetric zero padding as far as the taps reach (the usual case: padding
        (k − 1)/2), it is the convolution's own padding; otherwise ``h`` is padded or cropped first.
        """
        (top, bottom), (left, right) = self._pads(tuple(h.shape[-2:]), output_size)
        if (0 <= bottom <= top and 0 <= right <= left and tuple(output_size) == conv_output_size(
                tuple(h.shape[-2:]), (3, 3), self.stride, (top, left), (1, 1))):
            return F.conv2d(h, conv.weight, conv.bias, self.stride, (top, left))
        return conv(F.pad(h, (left, right, top, bottom)))

    def coefficients(self, x: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """Basis coefficients α, shape (N, m, S·m', H', W') (paper Fig. 4)."""
        if self.variant == "paper":  # stride on the 3×3 conv after the pointwise body
            h = self._centred_conv(self.head, self.body(x), output_size)
        else:  # stride on the first 3×3 conv, as the authors' layer
            h = self.head(self.body[1:](self._centred_conv(self.body[0], x, output_size)))
        alpha = self.post(h)
        out_h, out_w = output_size
        return alpha.view(alpha.shape[0], self.num_atoms, self.num_basis_elements, out_h, out_w)

    def forward(self, x: torch.Tensor, output_size: tuple[int, int], *, reconstruct: bool = True) -> torch.Tensor:
        """Atoms D = α·ψ (N, m, k, k, H', W'), or with ``reconstruct=False`` the coefficients α (N, m, S·m', H', W')
        (what ``ACDAConv2d`` hands to the fused op; called through the module so that hooks and per-module
        FLOP counts see Φ)."""
        alpha = self.coefficients(x, output_size)
        return atoms_from_alpha(alpha, self.bases.to(alpha.dtype)) if reconstruct else alpha

    def extra_repr(self) -> str:
        return (
            f"variant={self.variant!r}, num_atoms={self.num_atoms}, "
            f"bases={tuple(self.bases.shape)}, stride={self.stride}, "
            f"center_offset={self.center_offset}"
        )
