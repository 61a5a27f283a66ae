"""Native CPU backend of ACDA (paper §3.2, Eq. 5 and Eq. 6): C++ kernels compiled on first use.

The sources in ``csrc/`` are compiled with ``torch.utils.cpp_extension.load`` when first needed and
cached in ``$ACDA_EXTENSIONS_DIR`` (default ``~/.cache/acda-repro/extensions``), one build per torch
version, CPU instruction set and hash of sources and flags; nothing is built at install time.

Ops (channels-last ``x``, no unfolded tensor, deterministic):

- ``forward``/``backward``: the atom convolution alone (Eq. 5), ``x`` (N, C, H, W), ``atoms``
  (N, m, k_h, k_w, H', W') → (N, C·m, H', W');
- ``fused_forward``/``fused_backward``: Eq. 5 fused with the 1×1 coefficient convolution (Eq. 6),
  the C·m intermediate kept per tile in cache → (N, O, H', W');
- ``alpha_forward``/``alpha_backward``: the same on the α path, atoms D = α·ψ formed per tile from
  ``alpha`` (N, m, B, H', W') and ``bases`` (B, k_h, k_w); neither the atoms nor their gradient
  exists at full size.

The fused ops multiply their fp32 tiles with oneDNN where torch has it (``tile_gemm``: ``"onednn"`` or
``"mkl"``, ATen's mm), fp64 tiles with ATen's mm. fp32/fp64 natively, bf16/fp16 computed in fp32. Without a compiler every entry point falls back to
``acda.ops.shift``, with one warning. See docs/backends.md for the build cache, the kernels and the
numerics.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import sysconfig
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

from ..utils import atomic_write, check_choice
from . import reference, shift

__all__ = ["forward", "backward", "fused_forward", "fused_backward", "alpha_forward", "alpha_backward",
           "channels_first", "tile_gemm", "TILE_GEMMS", "load_extension", "extension_dir", "build_dir", "is_built", "is_compiled",
           "compile_flags", "sanitizer"]

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = ("atom_conv2d.cpp", "acda_conv2d.cpp", "layout.cpp", "bindings.cpp")
_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma",
               "-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"],
    "AVX2": ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"],
}
_lock = threading.Lock()
_state: dict[str, object] = {}


def extension_dir() -> Path:
    """Where compiled extensions are cached (``$ACDA_EXTENSIONS_DIR`` or ``~/.cache/acda-repro/extensions``)."""
    root = os.environ.get("ACDA_EXTENSIONS_DIR") or Path.home() / ".cache" / "acda-repro" / "extensions"
    return Path(root) / f"torch-{torch.__version__.replace('+', '_')}"


def _capability() -> str:
    cap = torch.backends.cpu.get_cpu_capability()
    return cap if cap in _FLAGS else "DEFAULT"


def sanitizer() -> str | None:
    """The sanitizer the extension is built with: ``$ACDA_SANITIZE`` (``"address"``), else ``None``.

    An AddressSanitizer build only loads into a process started with the sanitizer runtime preloaded
    (``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``; ``scripts/asan.sh`` does this).
    """
    name = os.environ.get("ACDA_SANITIZE") or None
    if name not in (None, "address"):
        raise ValueError(f"ACDA_SANITIZE must be 'address' or unset, got {name!r}")
    return name


def compile_flags() -> list[str]:
    """The C++ flags the extension is (or would be) built with on this machine: they follow
    ``torch.backends.cpu.get_cpu_capability()``, so ``ATEN_CPU_CAPABILITY=avx2`` builds the AVX2 kernels."""
    if sanitizer():
        return ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address", "-fopenmp", *_FLAGS.get(_capability(), [])]
    return ["-O3", "-fopenmp", *_FLAGS.get(_capability(), [])]


def _staged_sources(build: Path) -> list[str]:
    """Copies of ``csrc/`` inside the build folder, the files the compiler is given.

    The build command then names the same paths whichever checkout (or installed copy) of this package
    asks, so checkouts sharing the cache reuse one build instead of rebuilding it for each other.
    """
    staged = build / "src"
    for path in sorted(_CSRC.iterdir()):
        data = path.read_bytes()
        target = staged / path.name
        if not target.is_file() or target.read_bytes() != data:  # rewritten only when missing or different
            atomic_write(target, data)
    return [str(staged / name) for name in _SOURCES]


def _build_key() -> bytes:
    """Everything the compiled binary (and the build command ninja compares) depends on: the sources, the flags,
    the compiler named by ``$CXX``, and the Python and torch installation whose headers and ABI it is built for
    (two environments with one torch version otherwise rebuild each other's extension in turn); the interpreter by
    its real path, so ``python`` and ``python3`` of one installation share a build."""
    parts = [" ".join(compile_flags()), os.environ.get("CXX", "c++"), sys.version, os.path.realpath(sys.executable),
             str(sysconfig.get_config_var("EXT_SUFFIX")), str(Path(torch.__file__).resolve().parent)]
    return b"".join(p.read_bytes() for p in sorted(_CSRC.iterdir())) + "\n".join(parts).encode()


def build_dir() -> Path:
    """The folder of this machine's build: instruction set, sanitizer and a digest of ``_build_key()``."""
    digest = hashlib.sha256(_build_key()).hexdigest()[:10]
    return extension_dir() / f"{_capability().lower()}{'-asan' if sanitizer() else ''}-{digest}"


def is_built() -> bool:
    """True when ``build_dir()`` holds a compiled extension (loading it then compiles nothing)."""
    return any(build_dir().glob("acda_native_*.so"))


def load_extension(*, verbose: bool = False) -> ModuleType | None:
    """Compile (first call) or load the cached C++ extension; ``None`` (and one warning) if that fails."""
    with _lock:
        if "module" in _state:
            return _state["module"]  # type: ignore[return-value]
        flags = compile_flags()
        build = build_dir()
        module: ModuleType | None
        try:
            from torch.utils.cpp_extension import load

            build.mkdir(parents=True, exist_ok=True)
            # one build per folder at a time: torch's load holds an OS advisory lock (released if its holder dies)
            module = load(
                name=f"acda_native_{build.name.replace('-', '_')}",
                sources=_staged_sources(build),
                extra_cflags=flags,
                extra_ldflags=["-fopenmp", *(["-fsanitize=address"] if sanitizer() else [])],
                build_directory=str(build),
                verbose=verbose,
            )
        except Exception as error:  # no compiler, no ninja, broken toolchain: fall back, say so once
            warnings.warn(
                f"acda: could not build the native atom_conv2d kernel ({type(error).__name__}: "
                f"{str(error).strip().splitlines()[-1] if str(error).strip() else error}); falling back "
                "to the pure-PyTorch shift-and-accumulate formulation (acda.ops.shift), which is several times slower",
                RuntimeWarning,
                stacklevel=3,
            )
            module = None
        _state["module"] = module
        return module


def is_compiled() -> bool:
    """True when the C++ kernel is available (compiling it now if needed)."""
    return load_extension() is not None


def forward(x: torch.Tensor, atoms: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
            dilation: tuple[int, int]) -> torch.Tensor:
    """Atom convolution (Eq. 5): (N, C·m, H', W'), channels-last memory."""
    ext = load_extension()
    if ext is None:
        return shift.forward(x, atoms, stride, padding, dilation)
    dtype = torch.promote_types(x.dtype, atoms.dtype)
    compute = _compute(dtype)
    out = ext.forward(x.to(compute), atoms.to(compute), stride, padding, dilation)
    return out.to(dtype)


def backward(grad_out: torch.Tensor, x: torch.Tensor, atoms: torch.Tensor, stride: tuple[int, int],
             padding: tuple[int, int], dilation: tuple[int, int], needs_x: bool, needs_atoms: bool,
             ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients w.r.t. ``x`` (channels-last) and ``atoms`` (contiguous); ``None`` where not needed."""
    ext = load_extension()
    if ext is None:
        return shift.backward(grad_out, x, atoms, stride, padding, dilation, needs_x, needs_atoms)
    dtype = torch.promote_types(x.dtype, atoms.dtype)
    compute = _compute(dtype)
    gx, ga = ext.backward(grad_out.to(compute), x.to(compute), atoms.to(compute), stride, padding, dilation,
                          needs_x, needs_atoms)
    return (None if gx is None else gx.to(x.dtype)), (None if ga is None else ga.to(atoms.dtype))


def fused_forward(x: torch.Tensor, atoms: torch.Tensor, coef: torch.Tensor, bias: torch.Tensor | None,
                  stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                  tile: int = 0) -> torch.Tensor:
    """Two-layer ACDA (Eq. 5 then Eq. 6) in one pass: (N, O, H', W'), channels-last memory."""
    ext = load_extension()
    if ext is None:
        return shift.fused_forward(x, atoms, coef, bias, stride, padding, dilation)
    dtype = torch.promote_types(x.dtype, atoms.dtype)
    compute = _compute(dtype)
    out = ext.acda_forward(x.to(compute), atoms.to(compute), coef.to(compute),
                           None if bias is None else bias.to(compute), stride, padding, dilation, tile)
    return out.to(dtype)


def fused_backward(grad_out: torch.Tensor, x: torch.Tensor, atoms: torch.Tensor, coef: torch.Tensor,
                   stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], needs_x: bool,
                   needs_atoms: bool, needs_coef: bool, tile: int = 0,
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients w.r.t. ``x`` (channels-last), ``atoms`` and ``coef``; ``None`` where not needed.

    The bias gradient is ``grad_out.sum((0, 2, 3))`` and is left to the caller.
    """
    ext = load_extension()
    if ext is None:
        return shift.fused_backward(grad_out, x, atoms, coef, stride, padding, dilation, needs_x,
                                        needs_atoms, needs_coef)
    dtype = torch.promote_types(x.dtype, atoms.dtype)
    compute = _compute(dtype)
    gx, ga, gc = ext.acda_backward(grad_out.to(compute), x.to(compute), atoms.to(compute), coef.to(compute),
                                   stride, padding, dilation, needs_x, needs_atoms, needs_coef, tile)
    return ((None if gx is None else gx.to(x.dtype)), (None if ga is None else ga.to(atoms.dtype)),
            (None if gc is None else gc.to(coef.dtype)))


def alpha_forward(x: torch.Tensor, alpha: torch.Tensor, bases: torch.Tensor, coef: torch.Tensor,
                  bias: torch.Tensor | None, stride: tuple[int, int], padding: tuple[int, int],
                  dilation: tuple[int, int], tile: int = 0) -> torch.Tensor:
    """``fused_forward`` on the atoms α·ψ, formed per tile of pixels in cache (never stored): (N, O, H', W')."""
    ext = load_extension()
    if ext is None:
        return shift.fused_forward(x, reference.atoms_from_alpha(alpha, bases), coef, bias, stride, padding, dilation)
    dtype = torch.promote_types(x.dtype, alpha.dtype)
    compute = _compute(dtype)
    out = ext.alpha_forward(x.to(compute), alpha.to(compute), bases.to(compute), coef.to(compute),
                            None if bias is None else bias.to(compute), stride, padding, dilation, tile)
    return out.to(dtype)


def alpha_backward(grad_out: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, bases: torch.Tensor,
                   coef: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                   needs_x: bool, needs_alpha: bool, needs_coef: bool, tile: int = 0,
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients w.r.t. ``x`` (channels-last), ``alpha`` and ``coef``; grad α per tile, grad atoms never at full size."""
    ext = load_extension()
    if ext is None:
        grad_x, grad_atoms, grad_coef = shift.fused_backward(
            grad_out, x, reference.atoms_from_alpha(alpha, bases), coef, stride, padding, dilation, needs_x,
            needs_alpha, needs_coef)
        return grad_x, reference.alpha_grad(grad_atoms, bases), grad_coef
    compute = _compute(torch.promote_types(x.dtype, alpha.dtype))
    gx, ga, gc = ext.alpha_backward(grad_out.to(compute), x.to(compute), alpha.to(compute), bases.to(compute),
                                    coef.to(compute), stride, padding, dilation, needs_x, needs_alpha, needs_coef,
                                    tile)
    return ((None if gx is None else gx.to(x.dtype)), (None if ga is None else ga.to(alpha.dtype)),
            (None if gc is None else gc.to(coef.dtype)))


def channels_first(t: torch.Tensor) -> torch.Tensor:
    """``t`` (N, C, H, W) in the contiguous layout: a blocked transpose when it is stored channels-last (ATen's
    copy is several times slower in that direction), else ``t.contiguous()``. A new tensor or ``t`` itself."""
    ext = load_extension()
    return t.contiguous() if ext is None else ext.channels_first(t)


TILE_GEMMS = ("onednn", "mkl")


@contextlib.contextmanager
def tile_gemm(name: str) -> Iterator[None]:
    """Within the block, the fused ops multiply their fp32 tiles with ``name``: ``"onednn"`` (the default, where
    torch is built with it) or ``"mkl"`` (ATen's mm). Process-wide; for benchmarks and tests. No-op without the
    compiled extension."""
    check_choice("name", name, TILE_GEMMS)
    ext = load_extension()
    previous = None if ext is None else ext.set_tile_gemm(name)
    try:
        yield
    finally:
        if previous is not None:
            ext.set_tile_gemm(previous)


def _compute(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels run in: fp32 and fp64 natively, bf16 and fp16 in fp32 (rounded once at the end)."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32
