"""The package installs like a library: ``import acda`` needs only torch and scipy (+ numpy); the suite's
dependencies are extras; exact versions live in constraints.txt; ``scripts/run.sh`` uses them."""
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE_ONLY = ("pandas", "matplotlib", "skimage", "tabulate", "fvcore", "tqdm", "torchvision")
CORE = {"torch", "scipy", "numpy"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip().lower(): version.strip() for name, version in pins}


LIBRARY_WITHOUT_THE_SUITE = textwrap.dedent(f"""
    import importlib.abc, importlib.util, sys

    BLOCKED = {SUITE_ONLY!r}

    class Hide(importlib.abc.MetaPathFinder):
        # wraps a finder: the blocked packages look not installed (find_spec is None; torch probes so)

        def __init__(self, finder):
            self.finder = finder

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED or not hasattr(self.finder, "find_spec"):
                return None
            return self.finder.find_spec(name, path, target)

        def invalidate_caches(self):
            getattr(self.finder, "invalidate_caches", lambda: None)()

    sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
    for name in BLOCKED:
        assert importlib.util.find_spec(name) is None, name

    import torch
    import acda
    from acda import ACDAConv2d, convert
    from acda.models import get_model
    from acda.profile import count_flops, count_parameters, flop_counter_macs

    layer = ACDAConv2d(3, 4, 3, padding=1, num_atoms=2)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad.shape == x.shape and layer.coef.grad is not None

    model = convert(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
    assert isinstance(model[0], ACDAConv2d)
    lenet = get_model("lenet")
    assert lenet(torch.randn(1, 3, 32, 32)).shape == (1, 10) and count_parameters(lenet) > 0
    assert flop_counter_macs(layer, torch.randn(1, 3, 6, 6)) > 0
    try:
        count_flops(layer, torch.randn(1, 3, 6, 6))
    except ImportError as error:
        assert "acda-repro[repro]" in str(error), error
    else:
        raise AssertionError("count_flops ran without fvcore")
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("library ok")
""")


def test_the_library_works_without_the_suites_dependencies():
    """``import acda``, an ACDA layer's forward and backward, ``convert``, ``acda.models`` and ``acda.profile``
    with pandas, matplotlib, scikit-image, tabulate, fvcore, tqdm and torchvision made unimportable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", LIBRARY_WITHOUT_THE_SUITE], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "library ok" in done.stdout, done.stderr[-3000:]


def test_core_dependencies_are_torch_and_scipy_with_compatible_ranges():
    project = _pyproject()["project"]
    core = {_name(r): r for r in project["dependencies"]}
    assert {"torch", "scipy"} <= set(core) <= CORE
    assert not any("==" in r for r in core.values()), core  # ranges; exact versions are in constraints.txt
    extras = project["optional-dependencies"]
    suite = {_name(r) for r in extras["repro"]}
    assert {"torchvision", "fvcore", "pandas", "tabulate", "scikit-image", "tqdm", "matplotlib"} <= suite
    assert {"pytest", "pytest-benchmark", "pytest-xdist"} <= {_name(r) for r in extras["test"]}
    assert {_name(r) for r in extras["lint"]} == {"ruff"}


def test_only_the_library_is_installed():
    find_packages = pytest.importorskip("setuptools").find_packages
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(where=str(ROOT), include=include)
    assert "acda" in packages and "acda.ops" in packages and "acda.models" in packages
    assert all(p == "acda" or p.startswith("acda.") for p in packages), packages
    assert "reproduce" not in _pyproject()["tool"]["setuptools"].get("package-data", {})


def test_constraints_pin_every_dependency_exactly():
    pins = _pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["fvcore"] == "0.1.5.post20221221"
    project = _pyproject()["project"]
    named = {_name(r) for r in project["dependencies"]}
    named |= {_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    assert named <= set(pins), named - set(pins)


_STUB_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/calls.log"
if [ "$1" = "-m" ] && [ "$2" = "pytest" ]; then exit "${STUB_PYTEST_RC:-0}"; fi
if [ "$1" = "-m" ] && [ "$2" = "ruff" ]; then exit "${STUB_RUFF_RC:-0}"; fi
if [ "$1" = "-m" ] && [ "$2" = "reproduce" ]; then exit "${STUB_VERIFY_RC:-0}"; fi
exit 0
"""


def _run_sh(tmp_path: Path, *args: str, pytest_rc: int = 0, ruff_rc: int = 0,
            verify_rc: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": str(tmp_path / "bin" / "python"), "STUB_PYTEST_RC": str(pytest_rc),
           "STUB_RUFF_RC": str(ruff_rc), "STUB_VERIFY_RC": str(verify_rc)}
    return subprocess.run(["bash", str(tmp_path / "repo" / "scripts" / "run.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_run_sh_installs_with_the_constraints_and_fails_when_no_test_ran(tmp_path):
    """With a stub Python: setup runs pip with the extras and ``-c constraints.txt``, again only when
    pyproject.toml or constraints.txt changed; ``test`` lints first (a lint failure stops it before pytest), then
    passes pytest's exit status on, 5 (no test ran) included."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("scripts/run.sh", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, repo / name)
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    stub.write_text(_STUB_PYTHON)
    stub.chmod(0o755)
    log = tmp_path / "bin" / "calls.log"

    def pip_calls() -> list[str]:
        return [line for line in log.read_text().splitlines() if line.startswith("-m pip")]

    assert _run_sh(tmp_path, "setup").returncode == 0
    assert pip_calls() == ["-m pip install --disable-pip-version-check -q -e .[repro,test,lint] -c constraints.txt"]
    assert _run_sh(tmp_path, "setup").returncode == 0 and len(pip_calls()) == 1  # nothing changed: no install
    with open(repo / "constraints.txt", "a") as f:
        f.write("extra-package==1.0\n")
    assert _run_sh(tmp_path, "setup").returncode == 0 and len(pip_calls()) == 2  # the constraints changed

    assert _run_sh(tmp_path, "test", "-q").returncode == 0
    assert log.read_text().splitlines()[-3:] == ["-m ruff check acda reproduce tests benchmarks", "-m reproduce verify",
                                                 "-m pytest -n 2 -q"]
    assert _run_sh(tmp_path, "test", "-q", ruff_rc=1).returncode == 1
    assert log.read_text().splitlines()[-1].startswith("-m ruff")
    assert _run_sh(tmp_path, "test", "-q", verify_rc=1).returncode == 1  # an edited result fails before pytest
    assert log.read_text().splitlines()[-1] == "-m reproduce verify"
    no_tests = _run_sh(tmp_path, "test", "-k", "nothing", pytest_rc=5)
    assert no_tests.returncode == 5 and "no tests" in no_tests.stderr
    assert _run_sh(tmp_path, "test", pytest_rc=1).returncode == 1
