"""``ACDAConv2d``: a drop-in replacement for ``nn.Conv2d`` with per-pixel dynamic filter atoms.

Paper §3.2: per-pixel filters ``K_ij = A·D_ij`` (Eq. 2–4) with atoms ``D_ij = α_ij·ψ`` over
multi-scale Fourier-Bessel bases (Fig. 4), computed with the two-layer implementation (Eq. 5,
Eq. 6, Fig. 3).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import functional
from .bases import default_num_scales
from .functional import autocast_dtype, to_channels_last
from .generator import GENERATORS, AtomGenerator
from .ops import check_backend
from .replacement import Conv2dReplacement
from .utils import (
    ArgumentValueError,
    IntPair,
    check_choice,
    check_device_arg,
    check_dtype_arg,
    check_positive_int,
    conv_output_size,
    pair,
    resolve_padding,
    window_center,
)

__all__ = ["ACDAConv2d"]


class ACDAConv2d(Conv2dReplacement):
    """Adaptive convolution with per-pixel dynamic filter atoms (ACDA, paper §3.2).

    Arguments follow ``nn.Conv2d`` (``padding`` may be an int, a pair, ``"same"`` or
    ``"valid"``); the kernel must be square and odd, as the Fourier-Bessel bases are. Keyword
    arguments: ``num_atoms`` (m), ``num_bases`` (m', basis elements per scale), ``num_scales``
    (S; default ``kernel_size // 2``: scales 3×3 … k×k), ``generator`` (``"paper"`` or
    ``"official"``, see ``acda.generator``), ``backend`` for the atom convolution (checked here,
    not at the first forward). A 1×1 layer has one scale of one element, the trivial basis [[1]],
    whatever ``num_bases`` and ``num_scales`` ask for (so that ``convert`` can pass them to every
    convolution): its ``num_bases`` and ``num_scales`` are both 1.

    Parameters: ``coef`` of shape (out_channels, in_channels, num_atoms), meaning
    ``K[o, c] = Σ_b coef[o, c, b]·D[b]`` at each pixel; ``bias``; the generator's weights.

    Shapes: input (N, C_in, H, W) → output (N, C_out, H', W') with H', W' as for ``nn.Conv2d``.

    ``ACDAConv2d.from_conv(conv, **kwargs)`` builds one with the geometry of an ``nn.Conv2d``
    (``acda.convert``); ungrouped, square, odd, zero-padded convolutions only.

    Example:
        >>> layer = ACDAConv2d(16, 32, kernel_size=3, padding=1)  # m = 6 atoms, scales 3×3
        >>> layer.coef.shape
        torch.Size([32, 16, 6])
        >>> layer(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
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
        num_atoms: int = 6,
        num_bases: int = 6,
        num_scales: int | None = None,
        generator: str = "paper",
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            check_positive_int(name, value)
        self._check_options(dict(num_atoms=num_atoms, num_bases=num_bases, num_scales=num_scales,
                                 generator=generator, backend=backend, device=device, dtype=dtype))
        kh, kw = pair(kernel_size, "kernel_size")
        if kh != kw or kh % 2 == 0:
            raise ArgumentValueError(
                f"kernel_size must be odd and square (Fourier-Bessel bases are circular), "
                f"got {kernel_size!r}"
            )
        k = kh
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (k, k)
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.padding = resolve_padding(padding, self.kernel_size, self.stride, self.dilation)
        self.padding_arg = padding
        self.num_atoms = num_atoms
        self.backend = backend
        center = window_center(self.kernel_size, self.padding, self.dilation)
        factory = {"device": device, "dtype": dtype}
        self.generator = AtomGenerator(
            in_channels, num_atoms, k, self.stride, center,
            num_bases=num_bases, num_scales=None if k == 1 else num_scales,
            variant=generator, **factory,
        )
        # what the generator was built with: S scales of m' elements (1 and 1 for a 1×1 kernel)
        self.num_scales = 1 if k == 1 else (default_num_scales(k) if num_scales is None else num_scales)
        self.num_bases = self.generator.num_basis_elements // self.num_scales
        self.coef = nn.Parameter(torch.empty(out_channels, in_channels, num_atoms, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @classmethod
    def check_layer_kwargs(cls, kwargs: dict) -> None:
        """Check the keyword options (``num_atoms``, ``generator``, ``backend``, ``dtype``, ...) without building."""
        super().check_layer_kwargs(kwargs)
        cls._check_options(kwargs)

    @staticmethod
    def _check_options(kwargs: dict) -> None:
        """The value checks of the keyword options present in ``kwargs``."""
        for name in ("num_atoms", "num_bases"):
            if name in kwargs:
                check_positive_int(name, kwargs[name])
        if kwargs.get("num_scales") is not None:
            check_positive_int("num_scales", kwargs["num_scales"])
        if "generator" in kwargs:
            check_choice("generator", kwargs["generator"], GENERATORS)
        if "backend" in kwargs:
            check_backend(kwargs["backend"])
        check_dtype_arg("dtype", kwargs.get("dtype"))
        check_device_arg("device", kwargs.get("device"))

    def reset_parameters(self) -> None:
        """Kaiming-uniform ``coef`` and uniform ``bias``, as ``nn.Conv2d`` with fan_in = C·m."""
        nn.init.kaiming_uniform_(self.coef, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_channels * self.num_atoms)
            nn.init.uniform_(self.bias, -bound, bound)

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        return conv_output_size(input_size, self.kernel_size, self.stride, self.padding, self.dilation)

    def generate_atoms(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel dynamic atoms ``D`` (paper Eq. 4), shape (N, m, k, k, H', W')."""
        return self.generator(x, self._check_input(x))

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel basis coefficients α (paper §3.2, "multi-scale atom bases", Fig. 4).

        Shape (N, m, S, m', H', W'): α[n, a, s, b, i, j] weighs basis element b of scale s
        (``generator.bases`` reshaped to (S, m', k, k), the s-th scale's support
        (2s + 3)×(2s + 3) centred in the k×k window) in atom a at output pixel (i, j), so that
        ``generate_atoms(x)[n, a] = Σ_{s,b} α[n, a, s, b]·ψ[s, b]`` (D_ij = α_ij·ψ). A 1×1 layer has
        S = 1 scale of one element.
        """
        alpha = self.generator.coefficients(x, self._check_input(x))
        n, m, sb, h, w = alpha.shape
        scales = self.coefficient_scales
        return alpha.view(n, m, scales, sb // scales, h, w)

    @property
    def coefficient_scales(self) -> int:
        """S, the number of scales α is split into (``num_scales``; 1 for a 1×1 kernel)."""
        return self.num_scales

    def scale_norms(self, x: torch.Tensor, effective: bool = True) -> torch.Tensor:
        """Per-pixel L2 norm of the basis coefficients on each scale, shape (N, S, H', W').

        The adaptive receptive field of paper §3.3 (Fig. 6, Fig. 7): how much of pixel (i, j)'s
        filters is drawn from each scale's bases. ``effective=True`` (the default): the norm over
        (o, c, b) of the effective coefficients β_ij[o, c, s, b] = Σ_a A[o, c, a]·α_ij[a, s, b], the
        coefficients of the filters K_ij[o, c] = Σ_{s,b} β_ij[o, c, s, b]·ψ[s, b] actually applied
        (with one input and one output channel, the norm of Σ_a A_a·α_ij,a on each scale);
        ``effective=False``: the norm of α over atoms a and basis elements b.
        """
        alpha = self.coefficients(x)
        if not effective:
            return torch.linalg.vector_norm(alpha, dim=(1, 3))
        coef = self.coef.to(alpha.dtype)
        if self.out_channels * self.in_channels <= self.num_atoms:  # β is no larger than α: form it
            beta = torch.einsum("oca,nasbhw->nsocbhw", coef, alpha)
            return beta.reshape(beta.shape[0], beta.shape[1], -1, *beta.shape[-2:]).norm(dim=2)
        # many channels: ‖β_s‖² = Σ_b α_s,bᵀ G α_s,b with the m×m Gram matrix G = Σ_{o,c} A[o,c]ᵀA[o,c]
        gram = torch.einsum("oca,ocd->ad", coef, coef)
        weighted = torch.einsum("ad,ndsbhw->nasbhw", gram, alpha)
        return (alpha * weighted).sum(dim=(1, 3)).clamp_min(0).sqrt()

    def scale_share(self, x: torch.Tensor, effective: bool = True, eps: float = 1e-12) -> torch.Tensor:
        """Each scale's share of the per-pixel coefficient norm, shape (N, S, H', W') (paper §3.3, Fig. 7).

        ``scale_norms(x, effective)`` divided by its sum over the S scales (clamped below at
        ``eps``), so that at every pixel the shares are ≥ 0 and sum to 1.
        """
        norms = self.scale_norms(x, effective)
        return norms / norms.sum(dim=1, keepdim=True).clamp_min(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Φ(x) → α, then the two-layer ACDA on the atoms α·ψ (on the native and Triton backends the atoms are
        formed in cache, never stored). ``x`` is checked once (``_check_input``) and the backend resolved once;
        α, ψ and the coefficients are the layer's own, so they go to the dispatcher unchecked."""
        size = self._check_input(x)
        plan = functional._plan(self.backend, x.device, autocast_dtype(x.device) or x.dtype, self.stride,
                                self.padding, self.dilation)
        # a channels-last backend (native) reads x channels-last: convert once, here, so that Φ runs in that layout
        # too (oneDNN's fast one), hands α over pixel-major and both gradients of x arrive in one layout
        if plan.backend.memory_format == torch.channels_last:
            x = to_channels_last(x)
        alpha = self.generator(x, size, reconstruct=False)
        return functional._run(plan, x, self.coef, self.bias, alpha=alpha, bases=self.generator.bases.to(alpha.dtype))

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            s += f", stride={self.stride}"
        if self.padding_arg not in (0, (0, 0)):
            s += f", padding={self.padding_arg!r}" if isinstance(self.padding_arg, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        s += f", num_atoms={self.num_atoms}, num_bases={self.num_bases}, num_scales={self.num_scales}"
        if self.backend != "auto":
            s += f", backend={self.backend!r}"
        return s
