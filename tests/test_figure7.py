"""Figure 7 reproducer (reproduce/figure7.py): a tiny run, the command line, the regression of the CI run."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reproduce import figure7
from reproduce.regression import compare_files
from reproduce.report import read_results

RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_tiny_run_gives_per_seed_rows_and_a_png(tmp_path, capsys):
    """Two seeds on the quick map, 100 steps: every row holds one sample per seed, the claims are proxies."""
    assert figure7.main(["--quick", "--seeds", "0", "1", "--steps", "100", "--jobs", "2", "--name", "tiny",
                         "--out", str(tmp_path), "--allow-dirty"]) == 0
    df = read_results(tmp_path / "tiny.csv")
    assert len(df) == 2 + 9 and (df.n == 2).all()
    assert all(len(s.split(";")) == 2 for s in df.samples)
    claims = df[df.metric.str.contains("minus")]
    assert list(claims.status) == ["proxy", "proxy"] and claims.note.str.startswith("Claim").all()
    shares = df[df.metric.str.contains("centres: ")]
    for size in (3, 5, 7):  # the three scales' shares at each pattern size sum to 100%
        assert abs(shares[shares.metric.str.startswith(f"{size}x{size}")].reproduced.sum() - 100) < 1e-4
    assert (tmp_path / "tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    found = json.loads((tmp_path / "tiny.json").read_text(encoding="utf-8"))["findings"]
    assert len(found) == 3 and "Welch p" in found[0] and "Welch p" in found[1]
    assert capsys.readouterr().out.startswith("# Figure 7")


def test_help():
    out = subprocess.run([sys.executable, "-m", "reproduce.figure7", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--quick" in out.stdout and "Figure 7" in out.stdout


@pytest.mark.slow
def test_quick_run_passes_the_regression(tmp_path):
    """The CI run against the committed results/figure7_quick.* (bit-identity on the same fingerprint, Welch
    test otherwise)."""
    if not (RESULTS / "figure7_quick.csv").exists():
        pytest.skip("results/figure7_quick.* not committed yet (python -m reproduce.figure7 --quick --out results)")
    out = subprocess.run([sys.executable, "-m", "reproduce.figure7", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    problems = compare_files(tmp_path, RESULTS, "figure7_quick")
    assert problems == [], "\n".join(problems)
