import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["reproduce", "reproduce.table6"])
def test_help(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True)
    assert "usage:" in out.stdout


def test_index_lists_every_table_and_figure():
    out = subprocess.run([sys.executable, "-m", "reproduce"], capture_output=True, text=True, check=True).stdout
    for ident in ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "TB", "Fig 6", "Fig 7", "§3.2", "A.5"]:
        assert any(line.startswith(ident + " ") for line in out.splitlines()), ident
    assert "python -m reproduce.table6" in out


def test_table6_rejects_unavailable_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    out = subprocess.run([sys.executable, "-m", "reproduce.table6", "--device", "cuda"], capture_output=True, text=True)
    assert out.returncode == 2 and "CUDA is not available" in out.stderr
