"""Backends of the atom convolution (paper §3.2, Eq. 5) behind ``torch.ops.acda.atom_conv2d``.

Every backend implements (``stride``, ``padding``, ``dilation``: pairs of ints, already validated by
``acda.functional``, which checks every argument once for all backends):

- ``forward(x, atoms, stride, padding, dilation) -> out``: ``x`` (N, C, H, W), ``atoms``
  (N, m, k_h, k_w, H', W') → ``out`` (N, C·m, H', W'), channel ``c·m + b`` being
  ``Σ_uv atoms[n, b, u, v, i, j]·x[n, c, i·s_h − p_h + u·d_h, j·s_w − p_w + v·d_w]`` (zero outside);
- ``backward(grad_out, x, atoms, stride, padding, dilation, needs_x, needs_atoms)
  -> (grad_x | None, grad_atoms | None)``;
- optionally the fused two-layer ACDA (Eq. 5 then Eq. 6; ``fused_forward``/``fused_backward``) and
  its α path (atoms ``einsum("nmbhw,buv->nmuvhw", alpha, bases)``, Eq. 4; ``alpha_forward``/...).

Registry (``acda.ops.registry``): ``BACKENDS`` (name → ``Backend``), filled by ``register_backend``. Built in:
``"reference"`` (unfold + einsum, the oracle), ``"shift"`` (plain PyTorch, fused), ``"native"``
(C++ CPU kernels, falling back to ``"shift"``) and ``"triton"`` (CUDA, or CPU under
``TRITON_INTERPRET=1``). ``get_backend`` looks a name up; ``resolve_backend`` maps ``"auto"`` to
the best available one for a device. See docs/backends.md for the full contract (dtypes, memory
formats, N = 0, NaN/inf, the fused and α-path signatures) and the registry.
"""
from __future__ import annotations

from . import native, reference, shift
from .registry import BACKENDS, Backend, backend_names, check_backend, get_backend, register_backend, resolve_backend

__all__ = ["Backend", "BACKENDS", "register_backend", "get_backend", "check_backend", "resolve_backend",
           "backend_names", "native", "reference", "shift"]
