"""Table 1 reproducer: needs-data rows, the CIFAR path on generated pickles, the proxy vs committed."""
from pathlib import Path

import pandas as pd
import pytest

from reproduce import table1
from reproduce.engine.regression import compare_files
from reproduce.engine.report import read_results
from reproduce.recipes import ClassificationProxy
from tests.replicas import cifar_release

RESULTS = Path(__file__).resolve().parent.parent / "results"


def _read(path):
    return read_results(path)


def test_without_data_root_rows_say_needs_data(tmp_path, capsys):
    assert table1.main(["--no-proxy", "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "table1.csv", keep_default_na=False)
    assert (df.status == "needs data").all() and len(df) == 6
    assert df.note.str.contains("cifar-10-batches-py/{data_batch_1").sum() == 3
    assert df.note.str.contains("cifar-100-python/{train, test}").sum() == 3
    out = capsys.readouterr().out
    assert "34.24%" in out and "12.49%" in out and "consistent" in out and "INCONSISTENT" not in out


def test_relative_reductions_of_the_paper():
    assert table1.relative_reduction(24.74, 16.27) == pytest.approx(34.236, abs=1e-3)
    assert table1.relative_reduction(56.60, 49.53) == pytest.approx(12.491, abs=1e-3)


@pytest.mark.slow
def test_cifar_path_trains_both_models_and_resumes(tmp_path):
    cifar_release(tmp_path / "data", "cifar10")
    args = ["--data-root", str(tmp_path / "data"), "--dataset", "cifar10", "--epochs", "1", "--no-proxy",
            "--num-workers", "0", "--device", "cpu", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path)]
    assert table1.main(args) == 0
    df = _read(tmp_path / "table1.csv").set_index(["row", "setting", "metric"])
    for row in ("LeNet", "LeNet + ACDA"):
        value = df.loc[(row, "CIFAR-10", "Top-1 error"), "reproduced"]
        assert 0 <= value <= 100 and value * 7 / 100 == pytest.approx(round(value * 7 / 100))  # k of 7 wrong
        assert df.loc[(row, "CIFAR-10", "Top-1 error"), "status"] in ("better", "worse", "match")
        assert df.loc[(row, "CIFAR-100", "Top-1 error"), "status"] == "needs data"
    assert (tmp_path / "runs/cifar10/lenet_acda/seed0/checkpoint.pt").is_file()
    # A second run finds the finished checkpoints and reports the same numbers without training.
    assert table1.main(args) == 0
    again = _read(tmp_path / "table1.csv").set_index(["row", "setting", "metric"])
    assert again["reproduced"].equals(df["reproduced"])


def test_malformed_data_root_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "cifar-10-batches-py").mkdir()
    code = table1.main(["--data-root", str(tmp_path), "--dataset", "cifar10", "--no-proxy", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "missing file" in err and "data_batch_1" in err and "Traceback" not in err


@pytest.mark.slow
def test_quick_proxy_matches_committed_results(tmp_path, capsys):
    assert table1.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    md = capsys.readouterr().out
    assert "PROXY, not CIFAR" in md and "proxy (quick)" in md and "Welch p" in md
    df = _read(tmp_path / "table1_quick.csv")
    proxy = df[df.setting.str.startswith("proxy")]
    assert (proxy.status == "proxy").all() and proxy.published.isna().all() and len(proxy) == 3
    assert (proxy.kind == "seeded").all() and (proxy.n == ClassificationProxy.quick().seeds).all()
    errors = proxy[proxy.metric == "Top-1 error"].reproduced
    assert ((errors > 0) & (errors < 90)).all()  # both models learn: better than chance (90%)
    problems = compare_files(tmp_path, RESULTS, "table1_quick")
    assert problems == [], "\n".join(problems)


def test_comparison_finding_states_means_significance_and_reduction():
    errors = {"LeNet": [40.0, 41.0, 42.0], "LeNet + ACDA": [30.0, 30.5, 31.0]}
    text = table1.comparison_finding(errors, "Proxy")
    assert text.startswith("Proxy: LeNet + ACDA 30.50 ± 0.50% vs LeNet 41.00 ± 1.00% top-1 error")
    assert "significant at 0.05, LeNet + ACDA's top-1 error is lower (better)" in text
    assert "Difference of the means +10.50 points; relative reduction of the means +25.6%" in text
    assert "mean of the per-seed relative reductions +25.6%" in text
    one = table1.comparison_finding({"LeNet": [40.0], "LeNet + ACDA": [30.0]}, "CIFAR-10")
    assert "no significance can be stated" in one
