"""Tables 4 and B (and Table 5's training path): rows without data, training on generated RealSR / SIDD
files, the proxies' quick configurations against the committed results (the regression rule)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reproduce import restoration as rst
from reproduce import table4, table5, tableB
from reproduce.catalogue import entries
from reproduce.engine.regression import compare_files
from reproduce.engine.report import load_published, read_results
from tests.replicas import realsr_release, sidd_release

RESULTS = Path(__file__).resolve().parent.parent / "results"
TINY = ["--epochs", "1", "--channels", "16", "--width", "4", "--crop-size", "16", "--batch-size", "2",
        "--num-workers", "0", "--no-proxy", "--device", "cpu", "--threads", "1"]


def _read(path):
    return pd.read_csv(path, keep_default_na=False, na_values={"reproduced": [""]}).set_index(
        ["row", "setting", "metric"])


def _smooth(h, w, seed):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


@pytest.fixture(params=[3, 2], ids=["V3", "V2"])
def realsr_root(tmp_path, request):
    return realsr_release(tmp_path / f"RealSR_V{request.param}", request.param)


def test_index_lists_tables_4_5_and_b():
    modules = {ident: module for ident, _, module in entries()}
    assert [modules[i] for i in ("T4", "T5", "TB")] == ["table4", "table5", "tableB"]


@pytest.fixture(scope="module")
def no_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("nodata")
    for mod in (table4, tableB):
        assert mod.main(["--out", str(out), "--allow-dirty", "--no-proxy"]) == 0
    return out


def test_table4_without_data(no_data):
    df = _read(no_data / "table4.csv")
    pub = load_published("table4")
    assert set(zip(pub["row"], pub["setting"], pub["metric"])) <= set(df.index)
    assert df.loc[("ACDA", "RealSR Final ×3", "PSNR"), "status"] == "needs data"
    assert "Canon" in df.loc[("ACDA", "RealSR Final ×3", "PSNR"), "note"]
    assert df.loc[("LP-KPN, l = 5 [4]", "RealSR Final ×4", "SSIM"), "status"] == "not implemented"
    assert df.loc[("KPN, l = 5", "RealSR 2019 ×2", "PSNR"), "status"] == "needs data"
    assert df.loc[("Bicubic", "RealSR 2019 ×2", "PSNR"), "method"] == "measured"  # measured on the data, not trained
    assert df.loc[("ACDA", "RealSR 2019 ×2", "PSNR"), "method"] == "trained"
    params = df.loc[("ACDA", "SR model", "Params"), "reproduced"]
    assert params == pytest.approx(rst.count_rows("ACDA", "restoration_acda", {}, "x")[0].value)
    assert df.loc[("KPN, l = 19", "SR model", "GFLOPs/MP"), "reproduced"] > df.loc[("KPN, l = 5", "SR model",
                                                                                 "GFLOPs/MP"), "reproduced"]
    md = (no_data / "table4.md").read_text()
    assert "0.837" in md and "typo" in md


def test_table_b_without_data(no_data):
    df = _read(no_data / "tableB.csv")
    pub = load_published("tableB")
    assert set(zip(pub["row"], pub["setting"], pub["metric"])) <= set(df.index)
    assert (df.xs("RealSR Final ×3", level="setting")["status"] == "needs data").all()
    params = df.xs("Params", level="metric")["reproduced"]
    assert params[("m = 15", "SR model, ×3 ablation")] > params[("m = 3", "SR model, ×3 ablation")]
    assert params[("S = 5", "SR model, ×3 ablation")] > params[("S = 1", "SR model, ×3 ablation")]


def test_table_b_configurations():
    assert tableB.config(m=9) == ("restoration_acda", {"num_atoms": 9, "num_scales": 3, "kernel_size": 7})
    assert tableB.config(s=5)[1]["kernel_size"] == 11 and tableB.REFERENCE_ROW == "S = 3"
    assert set(tableB.QUICK_ROWS) <= set(tableB.SWEEP) and len(tableB.SWEEP) == 12


def test_table4_trains_on_realsr_files(realsr_root, tmp_path):
    out = tmp_path / "out"
    argv = ["--data-root", str(realsr_root), "--scale", "2", "--train", "baseline", "acda", "--out", str(out),
            "--allow-dirty", "--runs", str(tmp_path / "runs"), *TINY]
    assert table4.main(argv) == 0
    df = _read(out / "table4.csv")
    acda = df.loc[("ACDA", "RealSR Final ×2", "PSNR")]
    assert acda["kind"] == "seeded" and np.isfinite(acda["reproduced"]) and int(acda["n"]) == 1
    assert "RealSR evaluation" in acda["note"] and "no border shave" in acda["note"]
    basicsr = df.loc[("ACDA", "RealSR Final ×2, basicsr convention", "PSNR")]
    assert basicsr["kind"] == "seeded" and "2 px shaved" in basicsr["note"]
    assert basicsr["reproduced"] != acda["reproduced"]
    assert df.loc[("KPN, l = 5 [25]", "RealSR Final ×2", "PSNR"), "status"] == "needs data"
    assert df.loc[("ACDA", "RealSR Final ×3", "PSNR"), "status"] == "needs data"
    bicubic = df.loc[("Bicubic", "RealSR Final ×2", "PSNR")]
    assert 20 < bicubic["reproduced"] < 60 and np.isfinite(
        df.loc[("Bicubic", "RealSR Final ×2, basicsr convention", "SSIM"), "reproduced"])
    assert ("MATLAB's bicubic" in bicubic["note"]) == ("V3" in str(realsr_root))
    assert (tmp_path / "runs" / "final" / "x2" / "restoration_acda" / "seed0" / "checkpoint.pt").exists()
    assert table4.main(argv) == 0  # resumes: the finished runs are not trained again
    assert _read(out / "table4.csv").loc[("ACDA", "RealSR Final ×2", "PSNR"), "reproduced"] == acda["reproduced"]


def test_table4_missing_data_names_the_layout(tmp_path, capsys):
    assert table4.main(["--data-root", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"), *TINY]) == 2
    assert "Canon" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.fixture
def sidd_root(tmp_path):
    return sidd_release(tmp_path / "SIDD", "medium")


def test_table5_trains_on_sidd_files(sidd_root, tmp_path):
    out = tmp_path / "out"
    assert table5.main(["--data-root", str(sidd_root), "--out", str(out), "--allow-dirty", "--runs",
                        str(tmp_path / "runs"), *TINY]) == 0
    df = _read(out / "table5.csv")
    for row in ("Baseline + MSE", "ACDA + MSE"):
        r = df.loc[(row, "SIDD", "PSNR")]
        assert r["kind"] == "seeded" and np.isfinite(r["reproduced"]) and r["status"] != "needs data"
        assert "MATLAB's psnr and ssim" in r["note"]
        other = df.loc[(row, "SIDD, per_channel convention", "SSIM")]
        assert other["kind"] == "seeded" and other["reproduced"] != df.loc[(row, "SIDD", "SSIM"), "reproduced"]
    noisy = df.loc[("Noisy input", "SIDD", "PSNR"), "reproduced"]
    assert 20 < noisy < 40
    assert df.loc[("Noisy input", "SIDD", "SSIM"), "reproduced"] > df.loc[
        ("Noisy input", "SIDD, per_channel convention", "SSIM"), "reproduced"]


def test_table_b_trains_one_configuration(realsr_root, tmp_path):
    out = tmp_path / "out"
    assert tableB.main(["--data-root", str(realsr_root), "--train", "S = 1", "--out", str(out), "--allow-dirty",
                        "--runs", str(tmp_path / "runs"), *TINY]) == 0
    df = _read(out / "tableB.csv")
    assert df.loc[("S = 1", "RealSR Final ×3", "PSNR"), "kind"] == "seeded"
    assert df.loc[("m = 3", "RealSR Final ×3", "PSNR"), "status"] == "needs data"


@pytest.mark.parametrize("module", [table4, table5, tableB])
def test_help(module, capsys):
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0 and "--data-root" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("module,name", [(table4, "table4_quick"), (table5, "table5_quick"),
                                         (tableB, "tableB_quick")])
def test_quick_proxy_matches_committed_results(module, name, tmp_path, capsys):
    if not (RESULTS / f"{name}.csv").exists():
        pytest.skip(f"results/{name}.csv not committed yet")
    assert module.main(["--quick", "--threads", "1", "--no-plots", "--out", str(tmp_path)]) == 0
    md = capsys.readouterr().out
    assert "PROXY" in md and "Welch p" in md
    df = read_results(tmp_path / f"{name}.csv")
    proxy = df[df.setting.str.startswith("proxy")]
    assert (proxy.status == "proxy").all() and proxy.published.isna().all()
    problems = compare_files(tmp_path, RESULTS, name)
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
def test_table5_under_torchrun_two_processes_on_the_replica(sidd_root, tmp_path):
    """The real-data path as a cluster runs it: torchrun, 2 CPU processes (Gloo), DistributedDataParallel;
    rank 0 alone writes the report, and a second launch resumes from the checkpoints instead of retraining."""
    import os
    import subprocess
    import sys

    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = ["--data-root", str(sidd_root), "--out", str(out), "--allow-dirty", "--runs", str(runs), *TINY]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
              "reproduce.table5", *argv]
    repo = str(Path(__file__).resolve().parent.parent)
    env = {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": repo + os.pathsep + env.get("PYTHONPATH", "")}
    first = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600, cwd=repo)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    df = _read(out / "table5.csv")
    for row in ("Baseline + MSE", "ACDA + MSE"):
        assert df.loc[(row, "SIDD", "PSNR"), "kind"] == "seeded" and np.isfinite(df.loc[(row, "SIDD", "PSNR"),
                                                                                           "reproduced"])
    checkpoints = sorted(runs.rglob("checkpoint.pt"))
    assert len(checkpoints) == 2 and all(torch_load_world(p) == 2 for p in checkpoints)
    stamps = [p.stat().st_mtime_ns for p in checkpoints]
    again = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600, cwd=repo)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [p.stat().st_mtime_ns for p in checkpoints] == stamps  # finished runs are not trained again
    assert _read(out / "table5.csv").loc[("ACDA + MSE", "SIDD", "PSNR"), "reproduced"] == df.loc[
        ("ACDA + MSE", "SIDD", "PSNR"), "reproduced"]


def torch_load_world(path) -> int:
    from acda.train import load_checkpoint

    return load_checkpoint(path)["world_size"]


@pytest.mark.parametrize("module", [table4, table5, tableB], ids=lambda m: m.TABLE.name)
def test_every_needs_data_row_has_a_block_that_fills_it(module):
    """Each "needs data" row of the committed report names a block of the declaration (and the --train name,
    --release and --scale that train it), so a --data-root run can fill it; the replica runs above fill blocks."""
    table = module.TABLE
    df = read_results(RESULTS / f"{table.name}.csv")
    waiting = df[df.status == "needs data"]
    assert len(waiting)
    fills = {(row, block.setting) for block in table.blocks for row, _ in block.rows.values()}
    fills |= {(table.reference, block.setting) for block in table.blocks if table.reference_published}
    assert {(r.row, r.setting) for r in waiting.itertuples(index=False)} <= fills
    parser = module.REPRODUCER.parser()
    for block in table.blocks:  # every block is reachable from the command line
        argv = ["--train", *block.rows]
        argv += ["--release", block.release] if table.releases else []
        argv += ["--scale", str(block.scale)] if len(table.scales) > 1 else []
        args = parser.parse_args(argv)
        assert set(args.train) == set(block.rows) and getattr(args, "release", "") == block.release


def test_proxy_preview_is_drawn_next_to_the_report(tmp_path):
    """The proxy's preview PNG is one of the report's figures: written beside the report, not without --plots."""
    tiny = {"train": 16, "test": 4, "epochs": 1, "seeds": 2}
    argv = ["--quick", "--threads", "1", "--jobs", "1", "--out", str(tmp_path), "--allow-dirty"]
    assert table5.main(argv, proxy_overrides=tiny) == 0
    assert (tmp_path / "table5_quick.csv").is_file() and (tmp_path / "table5_quick_proxy.png").stat().st_size > 0
    assert table5.main([*argv, "--no-plots", "--out", str(tmp_path / "none")], proxy_overrides=tiny) == 0
    assert not list((tmp_path / "none").glob("*.png"))
