"""ACDAConv2d eager and under ``torch.compile(fullgraph=True)`` agrees with the reference backend in every
grad mode (grad, ``no_grad``, ``inference_mode``), train and eval, both generators, every CPU backend,
odd sizes and stride 2 — under this machine's instruction set and, in a child pytest, under AVX2
(``ATEN_CPU_CAPABILITY=avx2``, also for MKL and oneDNN), where Inductor writes 8-wide instead of
16-wide kernels. ``scripts/asan.sh`` runs this file against an AddressSanitizer build of the native kernels.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acda import ACDAConv2d

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
BACKENDS = ("reference", "shift", "native")
GRAD_MODES = {"grad": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}
# (in, out, kernel, stride, H, W): odd sizes at stride 1 and 2 (the official generator outside the authors' domain,
# H and W divisible by the stride, runs the natural extension of acda.generator)
SHAPES = {"3-4-k5-10x9": (3, 4, 5, 1, 10, 9), "5-7-k3-s2-11x13": (5, 7, 3, 2, 11, 13),
          "8-6-k7-s2-13x10": (8, 6, 7, 2, 13, 10)}
GENERATOR_SHAPES = {"paper": ("3-4-k5-10x9", "5-7-k3-s2-11x13"), "official": ("8-6-k7-s2-13x10",)}


def _cases():
    for generator, shapes in GENERATOR_SHAPES.items():
        for shape, backend in itertools.product(shapes, BACKENDS):
            yield pytest.param(generator, shape, backend, id=f"{generator}-{shape}-{backend}")


def _layers(generator: str, shape: str, backend: str, train: bool) -> tuple[ACDAConv2d, ACDAConv2d, torch.Tensor]:
    cin, cout, k, stride, h, w = SHAPES[shape]
    torch.manual_seed(0)
    layer = ACDAConv2d(cin, cout, k, stride=stride, padding=k // 2, generator=generator, backend=backend)
    reference = ACDAConv2d(cin, cout, k, stride=stride, padding=k // 2, generator=generator, backend="reference")
    reference.load_state_dict(layer.state_dict())
    return layer.train(train), reference.train(train), torch.randn(2, cin, h, w)


def _run(module: torch.nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output, and in grad mode the gradients of x and of every parameter after a backward pass."""
    x = x.clone().requires_grad_(mode == "grad")
    with GRAD_MODES[mode]():
        out = module(x)
    if mode != "grad":
        return out.detach().clone(), []
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), [x.grad, *(p.grad for p in module.parameters())]


@pytest.mark.slow
@pytest.mark.parametrize("generator,shape,backend", _cases())
def test_layer_agrees_with_reference(generator, shape, backend):
    for train, compiled in itertools.product((True, False), (False, True)):
        for mode in GRAD_MODES:
            layer, reference, x = _layers(generator, shape, backend, train)
            if compiled:
                torch._dynamo.reset()  # every case compiles afresh (no recompilation limit, no guard reuse)
                layer = torch.compile(layer, fullgraph=True)
            where = f"compiled={compiled} train={train} {mode}"
            out, grads = _run(layer, x, mode)
            ref, ref_grads = _run(reference, x, mode)
            assert out.isfinite().all(), where
            torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5, msg=lambda m, where=where: f"{where}: {m}")
            for g, r in zip(grads, ref_grads, strict=True):
                torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4, msg=lambda m, where=where: f"{where} (grad): {m}")
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ATEN_CPU_CAPABILITY") == "avx2", reason="this run is the AVX2 one")
@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
                    reason="the CPU has no AVX2")
def test_matrix_under_avx2():
    """The matrix above again in a child pytest with AVX2 kernels in ATen, MKL, oneDNN and Inductor, sharing
    this run's compile cache (the setting under which Inductor reused kernels of the wrong vector width)."""
    env = {**os.environ, **AVX2}
    with contextlib.suppress(KeyError):
        del env["PYTEST_ADDOPTS"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", "agrees_with_reference",
         str(Path(__file__))], capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1], run.stdout[-2000:]
