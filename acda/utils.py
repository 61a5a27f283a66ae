"""Small helpers every module shares: argument checks, convolution arithmetic, atomic file writes.

One place for each small idea (``nn.Conv2d``'s argument rules and output-size formula, the
"positive int, not bool" check, write-then-rename), so that layers, peers, ops, models, data and the
trainer cannot drift apart.

Argument errors raised here are ``ArgumentValueError`` / ``ArgumentTypeError``: subclasses of
``ValueError`` / ``TypeError`` (what callers catch) and of ``ArgumentError`` (how tests recognise an
error of our validation, as opposed to one from inside torch). Their messages name the argument.

Tensor checks (``check_tensor``, ``check_float_dtype``, ``check_same_dtype``, ``check_same_device``)
and the convolution-size check ``check_conv_size`` are the pieces of the one validation path every
ACDA backend goes through (``acda.functional``), before anything is allocated or dispatched.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

__all__ = [
    "ArgumentError",
    "ArgumentValueError",
    "ArgumentTypeError",
    "FLOAT_DTYPES",
    "MAX_EXTENT",
    "IntPair",
    "is_int",
    "pair",
    "check_positive_int",
    "check_choice",
    "check_number",
    "check_int",
    "resolve_padding",
    "conv_output_size",
    "window_center",
    "check_conv_size",
    "check_tensor",
    "check_float_dtype",
    "check_dtype_arg",
    "check_device_arg",
    "check_same_dtype",
    "check_same_device",
    "atomic_write",
    "atomic_write_many",
]

IntPair = int | Sequence[int]

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
"""The dtypes ACDA computes in: real floating point, as ``F.conv2d`` (no complex, no integers)."""

MAX_EXTENT = 2**31 - 1
"""Largest padded input extent per axis, and largest output plane H'·W': int32 index arithmetic
(the Triton kernels) stays exact below it; larger requests are refused before any allocation."""


class ArgumentError(Exception):
    """Base of the errors our argument validation raises (always with a ``ValueError`` or ``TypeError``)."""


class ArgumentValueError(ArgumentError, ValueError):
    """An argument has a valid type but an invalid value (a shape, a size, a device, a name)."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument has an invalid type (not a tensor, not an int, a dtype ACDA does not compute in)."""


def is_int(value: object) -> bool:
    """``True`` for an ``int`` that is not a ``bool`` (``True`` is an ``int`` to Python, not to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``TypeError`` unless ``value`` is an int (not a bool), ``ValueError`` outside [minimum, maximum]."""
    if not is_int(value):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ArgumentValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ArgumentValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """``TypeError`` unless ``value`` is an int, ``ValueError`` unless it is >= 1; names ``name``."""
    if not is_int(value):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ArgumentValueError(f"{name} must be a positive integer, got {value}")
    return value


def check_number(name: str, value: object, *, minimum: float | None = None, positive: bool = False,
                 below: float | None = None) -> float:
    """``value`` as a float: ``ValueError`` naming ``name`` unless it is a finite real number (not a bool), at least
    ``minimum``, above 0 with ``positive``, below ``below``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")
    if below is not None and not value < below:
        raise ValueError(f"{name} must be < {below:g}, got {value!r}")
    return float(value)


def check_choice(name: str, value: object, choices: Sequence) -> object:
    """``ValueError`` naming ``name`` and ``choices`` unless ``value`` is one of them."""
    if value not in choices:
        raise ArgumentValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def pair(value: IntPair, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """``int`` or 2-sequence of ints → ``(a, b)``, each ``>= minimum``, else ``ValueError``."""
    if is_int(value):
        out = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(map(is_int, value)):
        out = (int(value[0]), int(value[1]))
    else:
        raise ArgumentTypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        raise ArgumentValueError(f"{name} must be >= {minimum}, got {value!r}")
    return out


def resolve_padding(padding: IntPair | str, kernel_size: tuple[int, int], stride: tuple[int, int],
                    dilation: tuple[int, int]) -> tuple[int, int]:
    """``nn.Conv2d``'s padding argument (int, pair, ``"same"``, ``"valid"``) → ``(p_h, p_w)``."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ArgumentValueError("padding='same' is not supported for strided convolutions")
        if any(k % 2 == 0 for k in kernel_size):
            raise ArgumentValueError(f"padding='same' needs an odd kernel_size, got {kernel_size}")
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel_size, dilation))  # type: ignore[return-value]
    if isinstance(padding, str):
        raise ArgumentValueError(f"padding must be 'same', 'valid', an int or a pair, got {padding!r}")
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


def check_conv_size(
    input_size: tuple[int, int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int]:
    """The output size ``(H', W')`` of a convolution, or ``ArgumentValueError`` naming the sizes.

    Refused (as ``F.conv2d`` refuses the first two): an empty input plane (H or W = 0), a kernel
    that does not fit in the padded input (H' or W' < 1), and sizes beyond ``MAX_EXTENT``
    (a padded extent H + 2·p, or an output plane H'·W'), which would overflow index arithmetic
    or ask the allocator for absurd amounts.
    """
    geometry = (f"input size {tuple(input_size)}, kernel_size={tuple(kernel_size)}, stride={tuple(stride)}, "
                f"padding={tuple(padding)}, dilation={tuple(dilation)}")
    if min(input_size) < 1:
        raise ArgumentValueError(f"input spatial size must be >= 1 in both dimensions; got {geometry}")
    for axis, (size, p) in enumerate(zip(input_size, padding)):
        if size + 2 * p > MAX_EXTENT:
            raise ArgumentValueError(
                f"padding is too large: the padded input would have {size + 2 * p} "
                f"{('rows', 'columns')[axis]}, more than {MAX_EXTENT}; got {geometry}"
            )
    out = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    if min(out) < 1:
        raise ArgumentValueError(
            f"input spatial size {tuple(input_size)} is too small for kernel_size={tuple(kernel_size)}, "
            f"padding={tuple(padding)}, dilation={tuple(dilation)} (output size {out}); got {geometry}"
        )
    if out[0] * out[1] > MAX_EXTENT:
        raise ArgumentValueError(
            f"padding is too large: the output plane would have {out[0]}×{out[1]} pixels, more than "
            f"{MAX_EXTENT}; got {geometry}"
        )
    return out


def check_tensor(name: str, value: object, dim: int, layout: str) -> torch.Tensor:
    """``value`` if it is a ``dim``-D tensor; ``ArgumentTypeError``/``ArgumentValueError`` naming ``name`` otherwise."""
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor {layout}, got {type(value).__name__}")
    if value.dim() != dim:
        raise ArgumentValueError(f"{name} must be a {dim}-D tensor {layout}, got shape {tuple(value.shape)}")
    return value


def check_float_dtype(name: str, dtype: torch.dtype, allowed: Sequence[torch.dtype] = FLOAT_DTYPES,
                      where: str = "") -> torch.dtype:
    """``dtype`` if it is in ``allowed``, else ``ArgumentTypeError`` naming ``name`` and the accepted dtypes."""
    if dtype not in allowed:
        accepted = ", ".join(str(t) for t in allowed)
        raise ArgumentTypeError(f"{name} has dtype {dtype}, but {where or 'ACDA'} accepts only {accepted}")
    return dtype


def check_dtype_arg(name: str, dtype: object) -> torch.dtype | None:
    """A factory ``dtype=`` argument: ``None`` or a floating ``torch.dtype`` (``ArgumentTypeError`` otherwise)."""
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype) or dtype not in FLOAT_DTYPES:
        raise ArgumentTypeError(
            f"{name} must be a floating torch.dtype ({', '.join(map(str, FLOAT_DTYPES))}) or None, got "
            f"{type(dtype).__name__} {dtype!r}"
        )
    return dtype


def check_device_arg(name: str, device: object) -> torch.device | None:
    """A factory ``device=`` argument: ``None`` or anything ``torch.device`` accepts (else an argument error)."""
    if device is None:
        return None
    if not isinstance(device, (str, int, torch.device)) or isinstance(device, bool):
        raise ArgumentTypeError(f"{name} must be a torch.device, a str or an int, got {type(device).__name__} "
                                f"{device!r}")
    try:
        return torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ArgumentValueError(f"{name} is not a valid device: {device!r} ({error})") from None


def _check_same(what: str, verb: str, error: type[Exception], reference: tuple[str, torch.Tensor],
                others: tuple[tuple[str, torch.Tensor | None], ...], advice: str) -> None:
    ref_name, ref = reference
    for name, t in others:
        if t is not None and getattr(t, what) != getattr(ref, what):
            raise error(f"{name} {verb} {what} {getattr(t, what)} but {ref_name} {verb} {what} "
                        f"{getattr(ref, what)}: they must {'have' if verb == 'has' else 'be on'} the same "
                        f"{what}{advice.format(name=name, ref=ref_name)}")


def check_same_dtype(reference: tuple[str, torch.Tensor], *others: tuple[str, torch.Tensor | None]) -> None:
    """``ArgumentTypeError`` naming both tensors and dtypes unless every tensor has the dtype of ``reference``."""
    _check_same("dtype", "has", ArgumentTypeError, reference, others,
                " (outside autocast); convert one of them, e.g. {name}.to({ref}.dtype)")


def check_same_device(reference: tuple[str, torch.Tensor], *others: tuple[str, torch.Tensor | None]) -> None:
    """``ArgumentValueError`` naming both tensors and devices unless every tensor is on ``reference``'s device."""
    _check_same("device", "is on", ArgumentValueError, reference, others, "")


def atomic_write(path: str | Path, data: str | bytes | Callable[[str], None]) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then ``os.replace``.

    ``data``: text (UTF-8), bytes, or a function that writes the temporary file given its path
    (e.g. ``lambda p: torch.save(obj, p)``). A crash leaves the old file or the new one, never half
    of one; the temporary file (``.<name>.*.tmp``) is removed on any error. The file gets the mode of the
    file it replaces, else the one ``open`` would give it (0666 less the umask), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_many(files: dict[str | Path, str | bytes]) -> None:
    """Write several files as one set: every temporary file first, then the renames, one after the other (a
    crash before the renames leaves all the old files; the window between them is a few system calls). The
    temporary files are removed on any error."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~_umask()
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.chmod(tmp, mode)
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read from /proc where it can be, else set and restored)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask
