"""Checkpoint files: checksummed atomic saves, verified loads, stale temporary files, data fingerprints.

Format 2 (this version): a ``torch.save``'d dict of plain types and tensors (loads with
``weights_only=True``) with a ``checksum`` entry, ``"sha256:<hex>"`` over a canonical walk of every
other entry (tensors by dtype, shape and raw bytes; dict keys in order; numbers exactly). A single
flipped bit in a stored weight, a truncated or garbage file, a foreign ``.pt`` and a directory in
the file's place all raise ``CheckpointError`` naming the file. Format 1 (before checksums) still
loads, with a warning that it cannot be verified.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import struct
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset, TensorDataset

from ..utils import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "payload_digest", "data_fingerprint",
           "clean_stale_temporaries", "history_csv", "FORMAT"]

FORMAT = 2
REQUIRED = ("format", "epoch", "model")


class CheckpointError(ValueError):
    """A checkpoint file that is unreadable, corrupted, foreign or of the wrong kind; names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"checkpoint {str(path)!r}: {problem}")


# --------------------------------------------------------------------------- canonical digest

def _digest(obj, h) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(obj, dict):
        h.update(b"D%d" % len(obj))
        for k, v in obj.items():
            _digest(k, h)
            _digest(v, h)
    elif isinstance(obj, list | tuple):
        h.update(b"%s%d" % (b"L" if isinstance(obj, list) else b"U", len(obj)))
        for v in obj:
            _digest(v, h)
    elif obj is None:
        h.update(b"N")
    elif isinstance(obj, bool):
        h.update(b"b1" if obj else b"b0")
    elif isinstance(obj, int):
        h.update(b"I%d;" % obj)
    elif isinstance(obj, float):
        h.update(b"F" + struct.pack("<d", obj))
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(b"S%d;" % len(data) + data)
    elif isinstance(obj, bytes):
        h.update(b"B%d;" % len(obj) + obj)
    elif isinstance(obj, torch.dtype | torch.device):
        h.update(f"O{obj}".encode())
    else:
        raise TypeError(f"cannot checksum a {type(obj).__name__} in a checkpoint")


def payload_digest(payload: dict) -> str:
    """``"sha256:<hex>"`` of every entry of ``payload`` except ``checksum``."""
    h = hashlib.sha256()
    _digest({k: v for k, v in payload.items() if k != "checksum"}, h)
    return "sha256:" + h.hexdigest()


def save_checkpoint(payload: dict, path: str | Path) -> None:
    """Atomically write ``payload`` (plain types and tensors) with its checksum, as format 2."""
    payload = {"format": FORMAT, **{k: v for k, v in payload.items() if k not in ("format", "checksum")}}
    payload["checksum"] = payload_digest(payload)
    try:
        atomic_write(path, lambda tmp: torch.save(payload, tmp))
    except (OSError, RuntimeError) as e:  # a full disk, a read-only folder: torch says neither where nor why plainly
        raise CheckpointError(path, f"could not be written ({_reason(e)}); the previous file, if any, is "
                              "unchanged") from e


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    required: Iterable[str] = REQUIRED) -> dict:
    """A checkpoint written by ``fit`` (``torch.load(..., weights_only=True)``), checksum verified.

    ``FileNotFoundError`` when nothing is at ``path``; ``CheckpointError`` (a ``ValueError``) naming
    the file when it is not a regular file, cannot be read, is not a dict with ``required`` keys,
    or fails its checksum.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    if not path.is_file():
        raise CheckpointError(path, "is not a regular file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 -- any failure to read means an unusable file
        raise CheckpointError(path, f"cannot be read ({_reason(e)}): truncated, corrupted or not a torch.save "
                              "file of tensors and plain types") from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in required):
        keys = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(path, f"is not a checkpoint written by acda.train (needs keys {list(required)}, "
                              f"has {keys})")
    fmt = ckpt.get("format")
    if fmt == 1 and "checksum" not in ckpt:
        warnings.warn(f"checkpoint {str(path)!r} was written before checksums (format 1): it cannot be verified",
                      stacklevel=2)
        return ckpt
    if fmt != FORMAT:
        raise CheckpointError(path, f"has format {fmt!r}; this version reads formats 1 and {FORMAT}")
    stored = ckpt.get("checksum")
    try:
        actual = payload_digest(ckpt)
    except TypeError as e:
        raise CheckpointError(path, f"holds an unexpected object ({e})") from None
    if stored != actual:
        raise CheckpointError(path, f"checksum mismatch (stored {stored!r}, contents give {actual!r}): the file "
                              "is corrupted")
    return ckpt


def _reason(e: Exception) -> str:
    """The informative line of a ``torch.load`` failure (weights_only errors bury it in advice)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if "WeightsUnpickler error:" in str(e):
        after = str(e).split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        lines = [after[0]] if after else lines
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


# --------------------------------------------------------------------------- files in out_dir

def clean_stale_temporaries(out_dir: Path, names: Iterable[str]) -> list[Path]:
    """Remove ``.<name>.<random>.tmp`` files left in ``out_dir`` by writes killed midway
    (``acda.utils.atomic_write``'s pattern, for our own ``names`` only); return what was removed."""
    if not out_dir.is_dir():
        return []
    alternatives = "|".join(re.escape(n) for n in names)
    pattern = re.compile(rf"^\.({alternatives})\.[A-Za-z0-9_]+\.tmp$")
    removed = []
    for p in out_dir.iterdir():
        if pattern.match(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    fieldnames: list[str] = []
    for row in history:  # union of the rows' columns, first-seen order (rows may differ, e.g. no val)
        fieldnames += [k for k in row if k not in fieldnames]
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


# --------------------------------------------------------------------------- data fingerprints

def _tensor_digest(h, *tensors: torch.Tensor) -> None:
    for t in tensors:
        _digest(t, h)


def _fingerprint(ds, h) -> str:
    """Feed ``ds``'s identity into ``h``; return a short description of what was covered."""
    # Types from modules that are not imported cannot be ds's types: no import (torchvision) needed here.
    tensors, folder = sys.modules.get("acda.data.tensors"), sys.modules.get("torchvision.datasets.folder")
    h.update(f"len {len(ds)};".encode())
    custom = getattr(ds, "fingerprint", None)
    if callable(custom):
        h.update(str(custom()).encode())
        return "fingerprint()"
    if isinstance(ds, Subset):
        _digest(torch.as_tensor(list(ds.indices), dtype=torch.int64), h)
        return f"Subset of {_fingerprint(ds.dataset, h)}"
    if isinstance(ds, ConcatDataset):
        return "Concat of " + ", ".join(_fingerprint(d, h) for d in ds.datasets)
    if isinstance(ds, TensorDataset):
        _tensor_digest(h, *ds.tensors)
        return "tensors"
    if tensors is not None and isinstance(ds, tensors.TensorImageDataset):
        _tensor_digest(h, ds.images, ds.labels)
        return "tensors"
    if tensors is not None and isinstance(ds, tensors.TensorPairDataset):
        _digest([ds.inputs, ds.targets], h)
        return "tensors"
    if folder is not None and isinstance(ds, folder.DatasetFolder):
        prefix = os.path.join(str(ds.root), "")  # paths relative to the root: the data may move
        listing = "".join(f"{p[len(prefix):] if p.startswith(prefix) else p}\0{t}\n" for p, t in ds.samples)
        h.update(listing.encode("utf-8", "surrogateescape"))
        return "file list and labels"
    h.update(f"{type(ds).__module__}.{type(ds).__qualname__}".encode())
    return "length and type only"


def data_fingerprint(dataset: Dataset | None) -> dict | None:
    """What identifies a dataset for resume: ``{"sha256", "len", "covers"}`` (``None`` for ``None``).

    Covers, without reading items through their transforms (so no RNG is consumed):

    - a dataset's own ``fingerprint()`` method (any value, ``str()``'d), if it has one;
    - ``TensorImageDataset``/``TensorPairDataset``/``TensorDataset``: every byte of the tensors
      (about 0.1 s per 100 MB);
    - ``ImageFolder`` and other ``DatasetFolder``: the file list (paths relative to the root) and
      labels, not the file contents (about 1 s per million files);
    - ``Subset``/``ConcatDataset``: the indices and the underlying datasets;
    - anything else: only its type and length.

    Transforms are not covered.
    """
    if dataset is None:
        return None
    h = hashlib.sha256()
    covers = _fingerprint(dataset, h)
    return {"sha256": h.hexdigest(), "len": len(dataset), "covers": covers}
