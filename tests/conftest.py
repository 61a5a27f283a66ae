import contextlib
import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from acda import ops


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One torch thread: on a loaded 2-core machine two threads oversubscribe and run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def _spy_backend(name: str, *fields: str):
    """Count the calls of ``ops.BACKENDS[name].<field>`` for each field while the context is open."""
    calls = dict.fromkeys(fields, 0)
    original = ops.BACKENDS[name]

    def counted(field):
        fn = getattr(original, field)

        def wrapper(*args):
            calls[field] += 1
            return fn(*args)
        return wrapper

    ops.BACKENDS[name] = dataclasses.replace(original, **{field: counted(field) for field in fields})
    try:
        yield calls
    finally:
        ops.BACKENDS[name] = original


@pytest.fixture
def spy_backend():
    """``with spy_backend("native", "forward", "backward") as calls: ...`` counts backend calls."""
    return _spy_backend


@pytest.fixture(scope="module")
def triton_device():
    """Where the Triton kernels run: ``"cuda"`` when triton and CUDA are there and ``TRITON_INTERPRET``
    is not ``1``, else ``"cpu"`` with ``TRITON_INTERPRET=1`` set for the module's tests (the kernels are
    decorated lazily, under the setting current at their first call). Skips without triton, which
    this file never imports itself."""
    pytest.importorskip("triton", reason="triton is not installed: the Triton backend cannot be tested")
    from acda.ops import triton_atom_conv

    if triton_atom_conv.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        yield "cuda"
        return
    patch = pytest.MonkeyPatch()
    patch.setenv("TRITON_INTERPRET", "1")
    yield "cpu"
    patch.undo()


@pytest.fixture
def run_without_triton():
    """``run_without_triton(module, call)``: in a fresh interpreter where ``import triton`` fails (and
    ``TRITON_INTERPRET`` is unset), ``acda.ops.<module>`` must import, report ``is_available() is False``,
    and ``call`` (a statement using it as ``t``) must raise a ``RuntimeError`` naming triton."""
    def run(module: str, call: str) -> None:
        code = (
            "import sys; sys.modules['triton'] = None\n"
            f"from acda.ops import {module} as t\n"
            "import torch\n"
            "assert t.is_available() is False\n"
            "try:\n"
            f"    {call}\n"
            "except RuntimeError as e:\n"
            "    assert 'triton' in str(e)\n"
            "else:\n"
            "    raise AssertionError('no error without triton')\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
    return run


@pytest.fixture
def assert_requested():
    """``assert_requested(needs, got, expected)``: a backward's gradients, the requested ones equal to
    ``expected`` (float64 tolerance), the others ``None``."""
    def check(needs, got, expected, tol: float = 1e-11) -> None:
        for wanted, a, b in zip(needs, got, expected, strict=True):
            if wanted:
                torch.testing.assert_close(a, b, rtol=tol, atol=tol)
            else:
                assert a is None
    return check
