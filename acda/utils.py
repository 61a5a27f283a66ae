"""Small helpers every module shares: argument checks, convolution arithmetic, atomic file writes.

One place for each small idea (``nn.Conv2d``'s argument rules and output-size formula, the
"positive int, not bool" check, write-then-rename), so that layers, peers, ops, models, data and the
trainer cannot drift apart.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "IntPair",
    "is_int",
    "pair",
    "check_positive_int",
    "check_int",
    "resolve_padding",
    "conv_output_size",
    "window_center",
    "atomic_write",
]

IntPair = int | Sequence[int]


def is_int(value: object) -> bool:
    """``True`` for an ``int`` that is not a ``bool`` (``True`` is an ``int`` to Python, not to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``TypeError`` unless ``value`` is an int (not a bool), ``ValueError`` outside [minimum, maximum]."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """``TypeError`` unless ``value`` is an int, ``ValueError`` unless it is >= 1; names ``name``."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def pair(value: IntPair, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """``int`` or 2-sequence of ints → ``(a, b)``, each ``>= minimum``, else ``ValueError``."""
    if is_int(value):
        out = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(map(is_int, value)):
        out = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return out


def resolve_padding(padding: IntPair | str, kernel_size: tuple[int, int], stride: tuple[int, int],
                    dilation: tuple[int, int]) -> tuple[int, int]:
    """``nn.Conv2d``'s padding argument (int, pair, ``"same"``, ``"valid"``) → ``(p_h, p_w)``."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        if any(k % 2 == 0 for k in kernel_size):
            raise ValueError(f"padding='same' needs an odd kernel_size, got {kernel_size}")
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel_size, dilation))  # type: ignore[return-value]
    if isinstance(padding, str):
        raise ValueError(f"padding must be 'same', 'valid', an int or a pair, got {padding!r}")
    return pair(padding, "padding", minimum=0)


def conv_output_size(
    size: tuple[int, int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int]:
    """Spatial output size of a convolution (the formula of ``nn.Conv2d``)."""
    return tuple(  # type: ignore[return-value]
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, k, st, p, d in zip(size, kernel_size, stride, padding, dilation)
    )


def window_center(kernel_size: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Input position of the centre tap of output pixel (0, 0)'s window, per axis: ``d·(k − 1) // 2 − p``.

    (Output pixel (i, j) is centred at ``(i·s_h, j·s_w)`` plus this offset: how a dynamic layer's
    generator aligns its per-pixel predictions with the windows.)
    """
    return tuple(d * (k - 1) // 2 - p for k, p, d in zip(kernel_size, padding, dilation))  # type: ignore[return-value]


def atomic_write(path: str | Path, data: str | bytes | Callable[[str], None]) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then ``os.replace``.

    ``data``: text (UTF-8), bytes, or a function that writes the temporary file given its path
    (e.g. ``lambda p: torch.save(obj, p)``). A crash leaves the old file or the new one, never half
    of one; the temporary file (``.<name>.*.tmp``) is removed on any error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
