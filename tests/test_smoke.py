"""``--smoke N`` on the release replicas: every "needs data" row of every committed real-data report is filled by
a smoke run of its reproducer (load, one epoch of N samples, checkpoint, evaluate with the real metric, the rows
the full run writes); a second launch resumes. A.5's rows: its protocol run (tests/test_a5.py)."""
from pathlib import Path

import pandas as pd
import pytest

from reproduce import table1, table2, table3, table4, table5, tableB
from reproduce.engine.report import read_results
from tests.replicas import (
    cifar_release,
    imagenet_release,
    qnrf_release,
    realsr_release,
    shanghaitech_release,
    sidd_release,
)

RESULTS = Path(__file__).resolve().parent.parent / "results"
COMMON = ["--smoke", "2", "--device", "cpu"]
TINY_RESTORATION = ["--channels", "16", "--width", "4", "--crop-size", "16", "--num-workers", "0", "--threads", "1"]


def _table1(root: Path) -> list[list[str]]:
    cifar_release(root, "cifar10")
    cifar_release(root, "cifar100")
    return [["--dataset", "both", "--num-workers", "0"]]


def _table2(root: Path) -> list[list[str]]:
    imagenet_release(root, "devkit")
    return [["--train", *table2.ENTRIES, "--workers", "0"]]


def _table3(root: Path) -> list[list[str]]:
    shanghaitech_release(root, "A")
    qnrf_release(root)
    return [["--train", *table3.ROW_OF, "--crop-size", "32", "--num-workers", "0", "--threads", "1"]]


def _table4(root: Path) -> list[list[str]]:
    realsr_release(root / "V3", 3)
    realsr_release(root / "V2", 2)
    return [["--data-root", str(root / version), "--release", release, "--scale", "2", "3", "4", *TINY_RESTORATION]
            for version, release in (("V3", "final"), ("V2", "2019"))]


def _table5(root: Path) -> list[list[str]]:
    sidd_release(root, "medium")
    return [TINY_RESTORATION]


def _table_b(root: Path) -> list[list[str]]:
    realsr_release(root, 3)
    return [TINY_RESTORATION]


CASES = {"table1": (table1, _table1), "table2": (table2, _table2), "table3": (table3, _table3),
         "table4": (table4, _table4), "table5": (table5, _table5), "tableB": (tableB, _table_b)}


def _smoke(module, argv: list[str], root: Path, runs: Path) -> pd.DataFrame:
    argv = ["--data-root", str(root), *argv] if "--data-root" not in argv else argv
    assert module.main([*argv, *COMMON, "--runs", str(runs)]) == 0
    return read_results(next((runs / "smoke").glob("*_smoke.csv")))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_every_needs_data_row_is_filled_by_a_smoke_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module, replica = CASES[name]
    waiting = read_results(RESULTS / f"{name}.csv").query("status == 'needs data'")
    assert len(waiting)
    filled = set()
    for i, argv in enumerate(replica(tmp_path / "data")):
        df = _smoke(module, argv, tmp_path / "data", tmp_path / f"runs{i}")
        assert (df.run_id.nunique(), df.commit.nunique()) == (1, 1)
        filled |= {(r.row, r.setting, r.metric) for r in df.itertuples() if r.status != "needs data"
                   and r.reproduced == r.reproduced}
    left = {(r.row, r.setting, r.metric) for r in waiting.itertuples()} - filled
    assert not left, sorted(left)


def test_smoke_keeps_apart_from_a_real_run_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = cifar_release(tmp_path / "data", "cifar10")
    argv = ["--data-root", str(root), "--dataset", "cifar10", "--num-workers", "0", "--device", "cpu",
            "--smoke", "3", "--runs", "runs"]
    assert table1.main(argv) == 0
    report = Path("runs/smoke/table1_smoke.csv")
    first = read_results(report).set_index(["row", "setting", "metric"])
    assert first.loc[("LeNet", "CIFAR-10", "Top-1 error"), "status"] != "needs data"
    assert (first.loc[("LeNet", "CIFAR-10", "Top-1 error"), "reproduced"] * 3) % 100 == pytest.approx(0, abs=1e-6)
    assert not Path("results").exists() and Path("runs/smoke/cifar10/lenet/seed0/checkpoint.pt").is_file()
    assert "SMOKE RUN: 3 samples" in Path("runs/smoke/table1_smoke.md").read_text()
    assert len(pd.read_csv("runs/smoke/cifar10/lenet/seed0/metrics.csv")) == 1  # one epoch
    assert table1.main(argv) == 0  # resumes the finished runs: the same numbers, nothing trained again
    assert read_results(report).set_index(["row", "setting", "metric"])["reproduced"].equals(first["reproduced"])


def test_smoke_needs_a_data_root(capsys):
    with pytest.raises(SystemExit):
        table3.main(["--smoke", "2"])
    assert "--smoke 2 checks the real-data path: it needs --data-root" in capsys.readouterr().err


def test_smoke_scales_the_learning_rate_with_the_batch(tmp_path, monkeypatch):
    """Ad-ResNet-l (paper generator, quadratic layers) after one step at ImageNet's lr 0.1 on a batch of 2 overflows
    in eval mode, and the error names the cause; --smoke scales the lr with the batch (0.1 · 2/256), which evaluates."""
    monkeypatch.chdir(tmp_path)
    root = imagenet_release(tmp_path / "data", "folders")
    argv = ["--data-root", str(root), "--train", "adresnet_l", "--workers", "0", *COMMON]
    with pytest.raises(RuntimeError, match=r"trained for only 1 step\(s\).*learning rate meant for a larger batch"):
        table2.main([*argv, "--batch-size", "2", "--runs", "unscaled"])
    assert table2.main(argv) == 0
    df = read_results(Path("checkpoints/table2/smoke/table2_smoke.csv")).set_index(["row", "setting", "metric"])
    assert df.loc[("Ad-ResNet-l", "ImageNet", "Top-1"), "status"] != "needs data"
    assert table2.REPRODUCER.parser().parse_args([*argv]).lr == pytest.approx(0.1 * 2 / 256)
