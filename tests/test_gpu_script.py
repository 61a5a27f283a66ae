"""benchmarks/gpu.sh, the one GPU command, on a CPU machine: its help, its argument check, and a run up to its
first CUDA step (setup skipped: this interpreter is used as it is), which must stop there cleanly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.sh"
NO_CUDA = "no CUDA device: stopping before the first CUDA step"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "ACDA_GPU_SCRIPT_CHECK"}
    env = {**base, "ACDA_GPU_SKIP_SETUP": "1", "PYTHON": sys.executable, "ACDA_GPU_WORK": str(tmp_path / "work"), **env}
    return subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "results"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_help_and_bad_arguments(tmp_path):
    out = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("The one GPU command")
    assert "benchmarks-cuda.md" in out.stdout and "--check" in out.stdout and "8 minutes" in out.stdout
    bad = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown argument '--bogus'" in bad.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the stop on a machine without CUDA")
def test_stops_cleanly_before_the_first_cuda_step(tmp_path):
    out = _run(tmp_path, "--allow-dirty")
    assert out.returncode == 3, out.stdout + out.stderr
    assert NO_CUDA in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert "setup: skipped" in out.stdout and f"torch {torch.__version__}" in out.stdout
    assert "== cuda-tests" not in out.stdout  # no CUDA step was started
    assert not (tmp_path / "results" / "benchmarks-cuda.md").exists()
    assert NO_CUDA in (tmp_path / "work" / "gpu.log").read_text()


def test_check_mode_lists_the_cuda_steps_without_running_them(tmp_path):
    out = _run(tmp_path, "--allow-dirty", ACDA_GPU_SCRIPT_CHECK="1")
    assert out.returncode == 0, out.stdout + out.stderr
    log = out.stdout
    for command in ("-m pytest -q -p no:cacheprovider tests/test_ops_triton.py", "env -u TRITON_INTERPRET",
                    "benchmarks/bench_triton.py", "ACDA_BENCH_DEVICE=cuda", "--benchmark-max-time=0.05",
                    f"-m benchmarks.report --json {tmp_path}/work/triton.json {tmp_path}/work/acda.json",
                    f"-m reproduce.table7 --device cuda --out {tmp_path}/results/cuda",
                    f"-m reproduce.sec32 --device cuda --out {tmp_path}/results/cuda"):
        assert command in log, command
    assert "check mode: stopped before the first CUDA step" in log
    # the per-step limits add up to the 8-minute budget
    limits = [int(line.split("(timeout ")[1].split("s)")[0]) for line in log.splitlines()
              if "(timeout " in line and "== setup" not in line]
    assert len(limits) == 6 and sum(limits) <= 480
