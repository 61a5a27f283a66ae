"""acda.compile_cache: torch.compile's cache entries are keyed on the CPU's vector ISA, so kernels Inductor
generated for AVX2 (8 floats a vector) are never rebuilt for AVX-512 (16) or the other way round."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acda.compile_cache import cpu_cache_tag, tag_compile_cache

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}

# Any compiled CPU code after ``import acda`` (an element-wise graph: one vectorised loop, compiled in seconds;
# the ACDA layer fails the same way: tests/test_compile_matrix.py); argv: "tagged" or "untagged" (acda's cache tag
# undone), and a constant that makes each experiment's graph, hence its cache entries, its own.
SNIPPET = """
import sys
import torch
import acda
if sys.argv[1] == "untagged":
    import torch.compiler.config
    torch.compiler.config.cache_key_tag = ""
x = torch.randn(2, 64, 10, 9)
scale = float(sys.argv[2])
f = lambda x: torch.relu(x * scale) - 1.0
with torch.no_grad():
    out = torch.compile(f, fullgraph=True)(x)
print("max difference", (out - f(x)).abs().max().item())
"""


def _tag(env: dict[str, str]) -> str:
    code = "import acda, torch.compiler.config as c; print(c.cache_key_tag)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, **env}).stdout.strip()


def test_tag_names_the_capability_and_keeps_the_users_tag():
    import torch.compiler.config as compiler_config

    assert compiler_config.cache_key_tag.split("|")[-1] == cpu_cache_tag()
    assert cpu_cache_tag().startswith(f"acda-cpu={torch.backends.cpu.get_cpu_capability()}-")
    assert tag_compile_cache() == tag_compile_cache()  # appended once
    assert _tag({"TORCH_COMPILE_CACHE_KEY_TAG": "mine"}) == f"mine|{cpu_cache_tag()}"


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"), reason="the CPU has no AVX2")
def test_tag_differs_between_instruction_sets():
    assert _tag(AVX2).startswith("acda-cpu=AVX2-")
    assert _tag({"ATEN_CPU_CAPABILITY": "default"}).startswith("acda-cpu=DEFAULT-")


def _snippet(cache: Path, variant: str, scale: float, env: dict[str, str]) -> tuple[int, float | None, str]:
    run = subprocess.run([sys.executable, "-c", SNIPPET, variant, str(scale)], capture_output=True, text=True,
                         env={**os.environ, **env, "TORCHINDUCTOR_CACHE_DIR": str(cache)})
    lines = [line for line in run.stdout.splitlines() if line.startswith("max difference")]
    return run.returncode, float(lines[-1].split()[-1]) if lines else None, run.stderr[-1500:]


@pytest.mark.slow
@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() != "AVX512" or os.environ.get("ATEN_CPU_CAPABILITY"),
                    reason="needs a CPU whose default vector width (AVX-512) differs from AVX2's")
def test_compiled_layer_correct_after_a_process_on_another_isa_shared_the_cache(tmp_path):
    """An AVX2 process compiles into a fresh cache, then an AVX-512 one compiles the same graph (untagged, it wrote
    past its buffers). The other order (AVX-512 code reused by AVX2: NaN and garbage) is the AVX2 leg of
    tests/test_compile_matrix.py, which shares the cache of the run before it."""
    # control: without the tag torch reuses the AVX2 code and the AVX-512 process goes wrong (or aborts)
    _snippet(tmp_path, "untagged", 1.5, AVX2)
    rc, diff, _ = _snippet(tmp_path, "untagged", 1.5, {})
    if rc == 0 and diff is not None and diff <= 1e-5:
        pytest.skip("this torch keys its compile cache on the vector ISA itself: nothing to guard against")
    for env in (AVX2, {}):
        rc, diff, err = _snippet(tmp_path, "tagged", 2.0, env)
        assert rc == 0, err
        assert diff is not None and diff <= 1e-5, (env, diff)
