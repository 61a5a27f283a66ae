"""Peer dynamic convolutions the paper compares against (Tables 2, 3, 7), as ``nn.Conv2d`` drop-ins.

- ``DFNConv2d``: Dynamic Filter Networks (Jia et al. 2016, paper ref. [16]) used per pixel, the
  "DFN" row of Table 7: a light generator predicts per-pixel filters that are *applied directly*,
  i.e. the full per-pixel filter tensor (N, H', W', O, C, k, k) is materialised — the expensive
  path that ACDA's two-layer implementation avoids (§3.2, §4.4).
- ``CondConv2d``: conditionally parameterised convolution (Yang et al. 2019, ref. [40]): per
  example, ``W = Σ_e r_e(x)·W_e`` with sigmoid routing ``r = σ(FC(GAP(x)))``.
- ``DynamicConv2d``: DY-CNN (Chen et al. 2020, ref. [6]): per example, ``W = Σ_k π_k(x)·W_k`` with
  ``π = softmax(FC(ReLU(FC(GAP(x)))) / τ)`` and temperature ``τ`` (annealed from 30 in the paper).

All three take ``nn.Conv2d``'s positional arguments (in_channels, out_channels, kernel_size,
stride, padding, dilation, groups, bias — DFN has no ``groups``) and its ``device`` / ``dtype``
factory keywords (for every parameter, buffer and submodule), and return its output shape; without
a bias, ``bias`` is a registered ``None`` parameter, as in ``nn.Conv2d``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .functional import per_pixel_conv2d, per_pixel_filters
from .generator import GENERATORS, AtomGenerator
from .replacement import Conv2dReplacement
from .utils import IntPair, check_choice, check_positive_int, conv_output_size, pair, resolve_padding, window_center

__all__ = ["DFNConv2d", "CondConv2d", "DynamicConv2d"]


def _factory(device: torch.device | str | None, dtype: torch.dtype | None) -> dict:
    return {"device": device, "dtype": dtype}


def _register_bias(module: nn.Module, bias: bool, shape: tuple[int, ...], factory: dict) -> None:
    """``module.bias``: a parameter of ``shape``, or a registered ``None`` (as ``nn.Conv2d``)."""
    if bias:
        module.bias = nn.Parameter(torch.empty(shape, **factory))
    else:
        module.register_parameter("bias", None)


def pixel_atom_generator(
    in_channels: int,
    num_atoms: int,
    kernel_size: int,
    stride: tuple[int, int],
    center_offset: tuple[int, int],
    *,
    variant: str = "paper",
    hidden_channels: int = 64,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> AtomGenerator:
    """``AtomGenerator`` over the *pixel* basis: Φ predicts each atom's k² values directly.

    Same Φ (Appendix A.3 or the authors' variant) and the same centre alignment as ACDA's
    generator, but the basis ψ is the identity ``eye(k²)``, so the generator's coefficients
    *are* the k×k atoms — no Fourier-Bessel decomposition.
    """
    k2 = kernel_size * kernel_size
    return AtomGenerator(in_channels, num_atoms, kernel_size, stride, center_offset, variant=variant,
                         hidden_channels=hidden_channels, bases=torch.eye(k2).view(k2, kernel_size, kernel_size),
                         device=device, dtype=dtype)


class DFNConv2d(Conv2dReplacement):
    """Per-pixel dynamic filters applied directly (DFN [16]; the "DFN" row of paper Table 7).

    A light generator Φ (``generator="paper"``: 1×1 conv C→64, ReLU, 3×3 conv, Appendix A.3; or
    ``"official"``), aligned with each output pixel's window exactly as ACDA's, predicts:

    - ``num_atoms=None``: the full filter K_ij ∈ R^{O×C×k×k} at every pixel (Φ outputs O·C·k²
      channels — literal DFN, only practical for small layers);
    - ``num_atoms=m`` (default 6): m pixel-space atoms D_ij ∈ R^{m×k×k}, combined with learned
      coefficients ``coef`` (O, C, m) into K_ij = A·D_ij (``acda.functional.per_pixel_filters``)
      — ACDA's decomposition without the Fourier-Bessel bases and without the two-layer
      implementation.

    Either way, the full (N, H', W', O, C, k, k) filter tensor is materialised and contracted with
    the unfolded input (``acda.functional.per_pixel_conv2d``): memory grows as O·C·k²·H'·W' per
    example (why Table 7 reports OOM).
    """

    centred_kernel = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair | str = 0,
        dilation: IntPair = 1,
        bias: bool = True,
        *,
        num_atoms: int | None = 6,
        hidden_channels: int = 64,
        generator: str = "paper",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("hidden_channels", hidden_channels)):
            check_positive_int(name, value)
        if num_atoms is not None:
            check_positive_int("num_atoms", num_atoms)
        check_choice("generator", generator, GENERATORS)
        kh, kw = pair(kernel_size, "kernel_size")
        if kh != kw or kh % 2 == 0:
            raise ValueError(f"kernel_size must be odd and square (filters are centred on the pixel), "
                             f"got {kernel_size!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kh)
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.padding = resolve_padding(padding, self.kernel_size, self.stride, self.dilation)
        self.num_atoms = num_atoms
        center = window_center(self.kernel_size, self.padding, self.dilation)
        m = in_channels * out_channels if num_atoms is None else num_atoms
        factory = _factory(device, dtype)
        self.generator = pixel_atom_generator(in_channels, m, kh, self.stride, center,  # type: ignore[arg-type]
                                              variant=generator, hidden_channels=hidden_channels, **factory)
        if num_atoms is None:
            self.register_parameter("coef", None)
        else:
            self.coef = nn.Parameter(torch.empty(out_channels, in_channels, num_atoms, **factory))
        _register_bias(self, bias, (out_channels,), factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.in_channels * (self.num_atoms or self.kernel_size[0] ** 2)
        if self.coef is not None:
            nn.init.kaiming_uniform_(self.coef, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        return conv_output_size(input_size, self.kernel_size, self.stride, self.padding, self.dilation)

    def filters(self, x: torch.Tensor) -> torch.Tensor:
        """The per-pixel filters K_ij, shape (N, H', W', O, C, k, k) (layout of ``per_pixel_filters``)."""
        out = self._check_input(x)
        k = self.kernel_size[0]
        raw = self.generator.coefficients(x, out)  # (N, m, k², H', W'): pixel basis, so these are atoms
        atoms = raw.reshape(x.shape[0], raw.shape[1], k, k, *out)
        if self.coef is None:
            n = x.shape[0]
            return atoms.view(n, self.out_channels, self.in_channels, k, k, *out).permute(0, 5, 6, 1, 2, 3, 4)
        return per_pixel_filters(atoms, self.coef)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = per_pixel_conv2d(x, self.filters(x), self.stride, self.padding, self.dilation)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        return s + f", num_atoms={self.num_atoms}"


class _MixtureConv2d(Conv2dReplacement):
    """Shared part of CondConv and DY-CNN: E kernels mixed per example, applied as one grouped conv."""

    grouped = True  # any zero-padded convolution, grouped and depthwise ones included

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 num_kernels, kernels_name, factory):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("groups", groups), (kernels_name, num_kernels)):
            check_positive_int(name, value)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                             f"divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.padding = resolve_padding(padding, self.kernel_size, self.stride, self.dilation)
        self.num_kernels = num_kernels
        self.weight = nn.Parameter(torch.empty(num_kernels, out_channels, in_channels // groups, *self.kernel_size,
                                               **factory))
        _register_bias(self, bias, (num_kernels, out_channels), factory)

    def reset_parameters(self) -> None:
        for e in range(self.num_kernels):  # each expert initialised as nn.Conv2d would be
            nn.init.kaiming_uniform_(self.weight[e], a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.weight[0, 0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def mixed_weights(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mix`` (N, E) → per-example kernels (N, O, C/g, kh, kw) and biases (N, O)."""
        weight = torch.einsum("ne,eoikl->noikl", mix, self.weight)
        bias = None if self.bias is None else mix @ self.bias
        return weight, bias

    def mixed_conv(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        weight, bias = self.mixed_weights(mix)
        out = F.conv2d(x.reshape(1, n * self.in_channels, *x.shape[-2:]),
                       weight.reshape(n * self.out_channels, *weight.shape[2:]),
                       None if bias is None else bias.reshape(-1),
                       self.stride, self.padding, self.dilation, self.groups * n)
        return out.view(n, self.out_channels, *out.shape[-2:])

    def _geometry_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class CondConv2d(_MixtureConv2d):
    """CondConv (Yang et al. 2019, paper ref. [40]): W(x) = Σ_e σ(FC(GAP(x)))_e · W_e.

    ``num_experts`` E kernels (and biases) per layer; routing: global average pooling, one fully
    connected layer C → E with bias, sigmoid, optional dropout on the pooled input. With E = 1 the
    layer computes r(x)·(W_1 ∗ x + b_1) — a plain convolution whenever r ≡ 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair | str = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        num_experts: int = 8,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        factory = _factory(device, dtype)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         num_experts, "num_experts", factory)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_experts = num_experts
        self.dropout = nn.Dropout(dropout)
        self.routing = nn.Linear(in_channels, num_experts, **factory)
        self.reset_parameters()

    def routing_weights(self, x: torch.Tensor) -> torch.Tensor:
        """r(x) ∈ (0, 1)^E per example, shape (N, E)."""
        return torch.sigmoid(self.routing(self.dropout(x.mean(dim=(2, 3)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.mixed_conv(x, self.routing_weights(x))

    def extra_repr(self) -> str:
        return self._geometry_repr() + f", num_experts={self.num_experts}"


class DynamicConv2d(_MixtureConv2d):
    """Dynamic convolution, DY-CNN (Chen et al. 2020, paper ref. [6]): W(x) = Σ_k π_k(x)·W_k.

    ``num_kernels`` K kernels (and biases); attention π = softmax(z / τ) with
    z = FC(ReLU(FC(GAP(x)))), hidden width ``max(in_channels // reduction, min_hidden)``; the
    temperature ``temperature`` (τ, an attribute: the paper anneals it from 30 to 1 over the first
    epochs). With K = 1, π ≡ 1 and the layer is exactly a plain convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair | str = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        num_kernels: int = 4,
        reduction: int = 4,
        min_hidden: int = 4,
        temperature: float = 30.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        factory = _factory(device, dtype)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         num_kernels, "num_kernels", factory)
        check_positive_int("reduction", reduction)
        check_positive_int("min_hidden", min_hidden)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        hidden = max(in_channels // reduction, min_hidden)
        self.attention = nn.Sequential(nn.Linear(in_channels, hidden, **factory), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, num_kernels, **factory))
        self.reset_parameters()

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """π(x) on the simplex, shape (N, K)."""
        return torch.softmax(self.attention(x.mean(dim=(2, 3))) / self.temperature, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.mixed_conv(x, self.attention_weights(x))

    def extra_repr(self) -> str:
        return self._geometry_repr() + f", num_kernels={self.num_kernels}, temperature={self.temperature:g}"
