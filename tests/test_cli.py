"""Every ``python -m reproduce[.<name>]`` command: --help, the index, and the shared --device check."""
import runpy
import subprocess
import sys
import warnings

import pytest

from reproduce.catalogue import MODULES as REPRODUCERS

MODULES = ["reproduce"] + sorted(f"reproduce.{m}" for m in REPRODUCERS)


@pytest.mark.parametrize("module", MODULES)
def test_help(module, monkeypatch, capsys):
    """``python -m <module> --help`` as ``python -m`` runs it (runpy, in this process: one torch import)."""
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("ignore", RuntimeWarning)  # re-running an imported module as __main__
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m {module}") and "--help" in out
    if module != "reproduce":
        assert "--out" in out and "--allow-dirty" in out


def test_index_lists_every_table_and_figure():
    out = subprocess.run([sys.executable, "-m", "reproduce"], capture_output=True, text=True, check=True).stdout
    for ident in ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "TB", "Fig 6", "Fig 7", "§3.2", "A.5"]:
        assert any(line.startswith(ident + " ") for line in out.splitlines()), ident
    assert "python -m reproduce.table6" in out and "python -m reproduce.figure6" in out


def test_table6_rejects_unavailable_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    out = subprocess.run([sys.executable, "-m", "reproduce.table6", "--device", "cuda"], capture_output=True, text=True)
    assert out.returncode == 2 and "--device cuda requested but CUDA is not available" in out.stderr
