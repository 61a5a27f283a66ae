"""The native kernels built with AddressSanitizer, through torch.compile: any out-of-bounds access aborts.

``bash scripts/asan.sh`` builds that variant (``ACDA_SANITIZE=address``) and runs the compile matrix, the
native-op tests and the fuzz test against it (several minutes). This suite runs the compiled layer against it
whenever that build is cached on the machine, in a process with the sanitizer runtime preloaded.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

CXX = os.environ.get("CXX", "c++")
ASAN = {"ACDA_SANITIZE": "address", "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1"}

# The compiled layer (odd sizes, stride 2) with grad, forward and backward, and under no_grad, against the reference
# backend; the whole matrix of tests/test_compile_matrix.py runs under the sanitizer in scripts/asan.sh.
SNIPPET = """
import torch
from acda import ACDAConv2d
from acda.ops import native
assert native.sanitizer() == "address" and native.is_compiled()
torch.manual_seed(0)
layer = ACDAConv2d(3, 4, 5, stride=2, padding=2, backend="native")
ref = ACDAConv2d(3, 4, 5, stride=2, padding=2, backend="reference")
ref.load_state_dict(layer.state_dict())
x = torch.randn(2, 3, 11, 9, requires_grad=True)
for mode in (torch.enable_grad, torch.no_grad):
    torch._dynamo.reset()
    with mode():
        out, want = torch.compile(layer, fullgraph=True)(x), ref(x)
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)
    if out.requires_grad:
        out.sum().backward()
        want.sum().backward()
        torch.testing.assert_close(layer.coef.grad, ref.coef.grad, rtol=1e-4, atol=1e-4)
print("ok")
"""


def _runtime(name: str) -> str | None:
    if shutil.which(CXX) is None:
        return None
    path = subprocess.run([CXX, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.slow
def test_compiled_native_layer_under_address_sanitizer():
    asan, stdcxx = _runtime("libasan.so"), _runtime("libstdc++.so")
    if asan is None or stdcxx is None:
        pytest.skip(f"{CXX} has no AddressSanitizer runtime")
    env = {**os.environ, **ASAN}
    built = subprocess.run([sys.executable, "-c", "from acda.ops import native; print(native.is_built(), native.build_dir())"],
                           capture_output=True, text=True, env=env)
    if not built.stdout.startswith("True"):
        pytest.skip(f"no AddressSanitizer build of the native kernels on this machine ({built.stdout.strip()}): bash "
                    "scripts/asan.sh builds it")
    run = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True,
                         env={**env, "LD_PRELOAD": f"{asan} {stdcxx}"})
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-4000:]
