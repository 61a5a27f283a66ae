"""Where a result came from: the code commit, and the fingerprint of the machine and software.

Trained numbers are bit-reproducible only on the same kernel path: the same CPU model, the same
instruction set that ATen, MKL and oneDNN dispatch to, the same torch/MKL/oneDNN versions, the same
build of our native extension, the same thread count and the same code. ``fingerprint()`` names all
of these; two runs with equal fingerprints must give bit-identical numbers, any other pair is
compared statistically (``reproduce.regression``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import torch

__all__ = ["REPO_ROOT", "DirtyTreeError", "git_commit", "fingerprint", "check_clean"]

REPO_ROOT = Path(__file__).resolve().parents[2]
# Environment variables that change which kernels MKL and oneDNN run without changing ATen's capability.
ISA_OVERRIDES = ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")


class DirtyTreeError(SystemExit):
    """Refusal to write committed results from a tree with uncommitted changes (a clean CLI exit)."""


def git_commit() -> str:
    """Short commit of the checkout, with ``-dirty`` when tracked files outside ``results/`` differ from
    it; ``unknown`` outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        # results/ itself is what the reproducers write: regenerating one table must not block the next
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
                               cwd=REPO_ROOT, text=True, capture_output=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check_clean(out_dir: str | Path, allow_dirty: bool) -> str:
    """The commit to record for a write into ``out_dir``.

    Writing into the repository's own ``results/`` from a dirty tree is refused unless
    ``allow_dirty``; elsewhere (or when allowed) the commit is recorded as ``<sha>-dirty`` and a
    warning is printed.
    """
    commit = git_commit()
    if not commit.endswith("-dirty"):
        return commit
    committed_results = Path(out_dir).resolve() == (REPO_ROOT / "results").resolve()
    if committed_results and not allow_dirty:
        raise DirtyTreeError(
            f"error: refusing to write {REPO_ROOT / 'results'} from a tree with uncommitted changes "
            f"(commit {commit}): committed results must come from a clean commit. Commit first, or pass "
            "--allow-dirty to write them marked '-dirty'.")
    if committed_results:
        print(f"WARNING: writing results/ from a dirty tree; recorded as commit {commit}", file=sys.stderr)
    return commit


def _cpuinfo(*keys: str) -> dict[str, str]:
    """Fields of the first CPU in /proc/cpuinfo (empty strings where absent or unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    found = {key: re.search(rf"^{key}\s*:\s*(.*)$", text, re.MULTILINE) for key in keys}
    return {key: m.group(1).strip() if m else "" for key, m in found.items()}


def _cpu_model() -> str:
    return _cpuinfo("model name")["model name"] or platform.processor() or platform.machine()


def _cpu_features() -> str:
    """Family, model, stepping and a hash of the feature flags: machines that share a model name (e.g.
    every KVM guest's "Intel(R) Xeon(R) Processor") can still dispatch MKL/oneDNN to other kernels."""
    fields = _cpuinfo("cpu family", "model", "stepping", "flags")
    flags = hashlib.sha256(fields.pop("flags").encode()).hexdigest()[:8]
    return " ".join(f"{k}={v}" for k, v in fields.items()) + f" flags={flags}"


def _library_versions() -> tuple[str, str]:
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v([\w.]+)", config)
    return (mkl.group(1) if mkl else "none"), (onednn.group(1) if onednn else "none")


def isa_level() -> str:
    """ATen's CPU capability, plus any MKL / oneDNN instruction-set cap set in the environment."""
    level = torch.backends.cpu.get_cpu_capability()
    caps = [f"{name}={os.environ[name]}" for name in ISA_OVERRIDES if os.environ.get(name)]
    return level + (f" ({', '.join(caps)})" if caps else "")


@functools.cache
def code_hash() -> str:
    """Hash of the sources that compute results (``acda/`` and ``reproduce/``, code and published CSVs)."""
    h = hashlib.sha256()
    for root in (REPO_ROOT / "acda", REPO_ROOT / "reproduce"):
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".cpp", ".h", ".csv"):
                h.update(str(path.relative_to(REPO_ROOT)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _extension_flags() -> str:
    from acda.ops import native

    return " ".join(native.compile_flags())


def fingerprint(device: torch.device | str = "cpu") -> dict[str, str]:
    """Provenance columns of a result row: readable fields plus ``fingerprint``, a hash of every
    field that can change a trained number's bits (everything here except ``commit``)."""
    device = torch.device(device)
    mkl, onednn = _library_versions()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{_cpu_model()} ({platform.machine()}), {torch.get_num_threads()} thread(s)"
    fields = {"device": name, "isa": isa_level(), "torch": torch.__version__, "mkl": mkl, "onednn": onednn}
    hashed = {**fields, "cpu": _cpu_features(), "extension": _extension_flags(), "code": code_hash(),
              "cuda": torch.version.cuda if device.type == "cuda" else ""}
    fields["fingerprint"] = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12]
    return fields
