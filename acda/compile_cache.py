"""Keep ``torch.compile``'s caches apart for processes that vectorise differently on the CPU.

Inductor writes CPU kernels for the vector width of the instruction set it picks (16 floats with
AVX-512, 8 with AVX2; ``ATEN_CPU_CAPABILITY`` chooses among those the CPU has) and caches the
generated code, but in torch 2.14 that choice is not part of the FX-graph cache key. Code cached by
a process on one width, rebuilt by a process on another (same cache folder, another
``ATEN_CPU_CAPABILITY`` or another CPU sharing the folder), strides its loops by one width and its
vectors by the other: wrong results, writes past the end of buffers, glibc aborts. Plain torch
reproduces it (``tests/test_compile_cache.py``).

``tag_compile_cache()`` (run when ``acda`` is imported) appends the CPU's vector capability and
feature set to ``torch.compiler.config.cache_key_tag``, which every compile cache includes in its
keys, so such processes never share an entry. The user's own tag is kept.
"""
from __future__ import annotations

import hashlib

import torch

__all__ = ["cpu_cache_tag", "tag_compile_cache"]


def cpu_cache_tag() -> str:
    """``acda-cpu=<capability>-<digest of the CPU's features>``, e.g. ``acda-cpu=AVX512-3f2a9c01``."""
    features = sorted(name for name, value in torch.cpu.get_capabilities().items() if value is True)
    digest = hashlib.sha256(" ".join(features).encode()).hexdigest()[:8]
    return f"acda-cpu={torch.backends.cpu.get_cpu_capability()}-{digest}"


def tag_compile_cache() -> str:
    """Append ``cpu_cache_tag()`` to ``torch.compiler.config.cache_key_tag`` (once) and return the tag."""
    import torch.compiler.config as compiler_config

    ours, tag = cpu_cache_tag(), compiler_config.cache_key_tag
    if ours not in tag.split("|"):
        compiler_config.cache_key_tag = f"{tag}|{ours}" if tag else ours
    return compiler_config.cache_key_tag
