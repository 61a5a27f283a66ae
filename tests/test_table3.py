"""Table 3 reproducer: the published numbers, counted parameter rows, needs-data rows, and the real-data
training path on tiny generated files in the ShanghaiTech A and UCF-QNRF formats."""
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from acda.data.crowd import SHANGHAITECH_A_LAYOUT, UCF_QNRF_LAYOUT
from acda.models import _registry, get_model
from acda.profile import count_parameters
from acda.train.checkpoint import save_checkpoint
from reproduce import table3
from reproduce.engine.regression import compare_files
from reproduce.engine.report import load_published, read_results
from reproduce.parameter_studies import table3_parameter_study
from reproduce.recipes import CrowdProxy
from reproduce.recipes.crowd import WholeImage
from tests.replicas import qnrf_release, shanghaitech_release

# Table 3 as printed: method (Params in M or None), SHTech-A MAE, MSE, UCF-QNRF MAE, MSE ('-' = None)
PRINTED = """
MCNN [45]        -     110.2 173.2  277    426
Switch-CNN [29]  -     90.4  135.0  228    445
SCNet [38]       -     71.9  117.9  -      -
ic-CNN [28]      -     68.5  116.2  -      -
SANet [5]        -     67.0  104.5  -      -
CL-CNN [14]      -     -     -      132    191
PACNN [32]       -     62.4  102.0  -      -
SFCN [35]        38.60 64.8  107.5  102    171
CAN [21]         18.10 62.3  100.0  107    183
Wan et al. [34]  -     64.7  97.1   101    176
BL [22]          21.50 62.8  101.8  88.7   154.8
CondConv-s [40]  14.8  68.44 112.96 117    182
CondConv-l [40]  25.5  63.82 104.23 109    179
Baseline         4.78  67.73 110.12 124.77 210.05
Ad-ResNet-s      4.87  57.88 91.27  99.22  182.13
Ad-ResNet-m      11.87 56.04 89.76  96.08  176.87
"""
OURS = ("CondConv-s [40]", "CondConv-l [40]", "Baseline", "Ad-ResNet-s", "Ad-ResNet-m")
TRAINED = ("Baseline", "Ad-ResNet-s", "Ad-ResNet-m")


def _printed():
    for line in PRINTED.strip().splitlines():
        *name, params, a, b, c, d = line.split()
        yield " ".join(name), params, {("SHTech-A", "MAE"): a, ("SHTech-A", "MSE"): b,
                                       ("UCF-QNRF", "MAE"): c, ("UCF-QNRF", "MSE"): d}


@pytest.fixture(scope="module")
def study():
    return table3_parameter_study()


def test_published_csv_has_every_printed_number():
    pub = load_published("table3").set_index(["row", "setting", "metric"])
    expected = set()
    for name, params, cells in _printed():
        for (setting, metric), text in cells.items():
            expected.add((name, setting, metric))
            row = pub.loc[(name, setting, metric)]
            assert row.unit == "people" and row.better == "lower"
            if text == "-":
                assert pd.isna(row.published) and "printed as '-'" in row.note
            else:
                assert row.published == float(text) and row.decimals == len(text.partition(".")[2])
            if metric == "MSE" and text != "-":
                assert "root of the mean squared count error" in row.note
        if params != "-":
            expected.add((name, "crowd model", "Params"))
            row = pub.loc[(name, "crowd model", "Params")]
            assert row.published == float(params) and row.decimals == len(params.partition(".")[2])
            assert row.unit == "M" and row.better == ""
    assert set(pub.index) == expected and len(pub) == 16 * 4 + 8


def test_parameter_rows_are_counted_from_the_registered_models(study):
    results, findings = table3.parameter_results(study)
    by_row = {r.row: r for r in results}
    for row, (slug, _) in table3.MODELS.items():
        assert by_row[row].value == count_parameters(get_model(slug)) / 1e6, row
        assert by_row[row].status is None and by_row[row].method == "counted"
    for row in table3.OTHERS_WITH_PARAMS:
        assert by_row[row].status == "not implemented" and by_row[row].value is None
    text = " ".join(findings)
    assert "145,380" in text and "231,482" in text and "consistent" in text  # the arithmetic of the study
    assert "closest" in by_row["Ad-ResNet-s"].note.lower() and "145,380" in by_row["Ad-ResNet-s"].note


def test_a_changed_model_changes_its_row(study, monkeypatch):
    original = _registry.get_model_builder("crowd_baseline")

    def bigger(**kwargs):
        model = original(**kwargs)
        model.extra = nn.Parameter(torch.zeros(1234))
        return model

    monkeypatch.setitem(_registry._MODELS, "crowd_baseline", bigger)
    results, _ = table3.parameter_results(study)
    value = next(r.value for r in results if r.row == "Baseline")
    assert value * 1e6 == pytest.approx(5_688_865 + 1234, abs=1e-3)


def test_without_data_root(tmp_path, capsys, study, monkeypatch):
    monkeypatch.setattr(table3, "table3_parameter_study", lambda: study)
    assert table3.main(["--no-proxy", "--out", str(tmp_path), "--allow-dirty"]) == 0
    assert capsys.readouterr().out.startswith("# Table 3")
    df = read_results(tmp_path / "table3.csv").set_index(["row", "setting", "metric"])
    params = df.xs("Params", level="metric")
    for row in OURS:
        assert params.loc[(row, "crowd model"), "status"] == "mismatch"  # none matches at our decoder
    counts = df[df.index.get_level_values("metric").isin(["MAE", "MSE"])]
    ours = counts[counts.index.get_level_values("row").isin(OURS)]
    assert len(ours) == 5 * 4 and (ours.status == "needs data").all() and (ours.kind == "exact").all()
    for setting, layout in (("SHTech-A", SHANGHAITECH_A_LAYOUT), ("UCF-QNRF", UCF_QNRF_LAYOUT)):
        notes = ours.xs(setting, level="setting").note
        first = layout.splitlines()[0].split()[0]  # e.g. <data-root>/part_A_final/{train_data,...}/IMG_<n>.jpg
        assert notes.str.contains(first, regex=False).all()
    assert ours.note.str.contains("GT_IMG_<n>.mat", regex=False).sum() == 10
    assert ours.note.str.contains("annPoints", regex=False).sum() == 10
    others = df[~df.index.get_level_values("row").isin(OURS)]
    assert (others.status == "not implemented").all() and len(others) == 11 * 4 + 3


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        table3.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--data-root" in out and "--width-mult" in out and "--pretrained" in out


def test_bad_arguments_and_data_roots(tmp_path, capsys):
    for argv in (["--pretrained", "adresnet_s=x.pt"], ["--pretrained", "crowd_adresnet_s"], ["--epochs", "0"]):
        with pytest.raises(SystemExit) as e:
            table3.main(argv + ["--out", str(tmp_path)])
        assert e.value.code == 2
    capsys.readouterr()
    assert table3.main(["--data-root", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "neither part_A_final nor UCF-QNRF_ECCV18" in capsys.readouterr().err
    (tmp_path / "UCF-QNRF_ECCV18").mkdir()
    assert table3.main(["--data-root", str(tmp_path), "--dataset", "shtech_a", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "part_A_final" in err and "Traceback" not in err


def test_whole_image_wrapper_pads_and_crops_back():
    torch.manual_seed(0)
    model = get_model("crowd_adresnet_s", width_mult=0.0625).eval()
    wrapped = WholeImage(model)
    x = torch.randn(1, 3, 37, 45)
    with torch.no_grad():
        out = wrapped(x)
        full = model(torch.nn.functional.pad(x, (0, 3, 0, 11)))
    assert out.shape == (1, 1, 37, 45) and torch.equal(out, full[..., :37, :45])
    assert count_parameters(wrapped) == count_parameters(model)


def test_trained_rows_compare_at_full_width_and_are_proxies_otherwise():
    runs = [{"val_mae": 60.0, "val_rmse": 95.0}, {"val_mae": 62.0, "val_rmse": 97.0}]
    full = table3.trained_results("SHTech-A", "crowd_adresnet_s", runs, "recipe", 182)
    assert [r.key for r in full] == [("Ad-ResNet-s", "SHTech-A", "MAE"), ("Ad-ResNet-s", "SHTech-A", "MSE")]
    assert full[0].status is None and full[0].value == 61.0 and full[0].tolerance == pytest.approx(2 * math.sqrt(2))
    small = table3.trained_results("SHTech-A", "crowd_adresnet_s", runs, "recipe", 182, width_mult=0.25)
    assert {r.status for r in small} == {"proxy", "needs data"}
    assert {r.setting for r in small if r.status == "proxy"} == {"SHTech-A, width ×0.25"}


def test_backbone_from_an_imagenet_checkpoint(tmp_path):
    torch.manual_seed(0)
    imagenet = get_model("adresnet_s")
    save_checkpoint({"epoch": 1, "model": imagenet.state_dict()}, tmp_path / "best.pt")
    crowd = get_model("crowd_adresnet_s")
    assert table3.load_backbone(crowd, tmp_path / "best.pt") == len(crowd.backbone.state_dict())
    for key, value in crowd.backbone.state_dict().items():
        assert torch.equal(value, imagenet.state_dict()[key]), key
    with pytest.raises(ValueError, match="does not hold this model's backbone"):
        table3.load_backbone(get_model("crowd_adresnet_m", width_mult=0.25), tmp_path / "best.pt")


# ------------------------------------------------------------------ the data path on generated files

def _write_datasets(root):
    """ShanghaiTech A and UCF-QNRF as released (tests.replicas), sides not multiples of 16."""
    shanghaitech_release(root, "A", size=(36, 50))
    qnrf_release(root, size=(38, 54))


def test_data_path_trains_and_evaluates_on_generated_files(tmp_path, capsys, study, monkeypatch, one_thread):
    monkeypatch.setattr(table3, "table3_parameter_study", lambda: study)
    _write_datasets(tmp_path / "data")
    args = ["--data-root", str(tmp_path / "data"), "--epochs", "1", "--width-mult", "0.0625", "--batch-size", "2",
            "--crop-size", "32", "--num-workers", "0", "--device", "cpu", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "out"), "--allow-dirty", "--no-proxy"]
    assert table3.main(args) == 0
    out = capsys.readouterr().out
    assert "PROXY: not the paper's models" in out and "Trained rows report the last epoch" in out
    df = read_results(tmp_path / "out" / "table3.csv").set_index(["row", "setting", "metric"])
    for row in TRAINED:
        for setting in ("SHTech-A", "UCF-QNRF"):
            for metric in ("MAE", "MSE"):
                proxy = df.loc[(row, f"{setting}, width ×0.0625", metric)]
                assert proxy.status == "proxy" and proxy.kind == "seeded" and proxy.n == 1
                assert math.isfinite(proxy.reproduced) and proxy.reproduced >= 0 and math.isnan(proxy.published)
                assert df.loc[(row, setting, metric), "status"] == "needs data"
                assert "reduced-width" in df.loc[(row, setting, metric), "note"]
            mae = df.loc[(row, f"{setting}, width ×0.0625", "MAE"), "reproduced"]
            rmse = df.loc[(row, f"{setting}, width ×0.0625", "MSE"), "reproduced"]
            assert rmse >= mae - 1e-9  # RMSE ≥ MAE for the same errors
    assert df.loc[("CondConv-s [40]", "SHTech-A", "MAE"), "note"].startswith("not trained in this run")
    for dataset in ("shtech_a", "ucf_qnrf"):
        run = tmp_path / "runs" / dataset / "crowd_adresnet_s_w0.0625" / "seed0"
        assert (run / "checkpoint.pt").is_file()
        log = pd.read_csv(run / "metrics.csv")
        assert len(log) == 1 and log.val_samples.iloc[0] == 2  # the two whole test images, batch 1
    # a second run resumes the finished checkpoints and reports the same numbers
    assert table3.main(args) == 0
    again = read_results(tmp_path / "out" / "table3.csv").set_index(["row", "setting", "metric"])
    assert again["reproduced"].equals(df["reproduced"])


# ---------------------------------------------------------------------------------------------
# The proxy (lfw faces on scikit-image photographs)
# ---------------------------------------------------------------------------------------------

RESULTS = Path(__file__).resolve().parent.parent / "results"
TINY_PROXY = {"train": 16, "test": 8, "epochs": 2, "seeds": 3}


def test_small_proxy_has_seeded_rows_a_reference_and_findings(tmp_path, capsys, study, monkeypatch, one_thread):
    monkeypatch.setattr(table3, "table3_parameter_study", lambda: study)
    assert table3.main(["--quick", "--out", str(tmp_path), "--allow-dirty"], proxy_overrides=TINY_PROXY) == 0
    md = capsys.readouterr().out
    assert "quick config" in md and "Welch p" in md
    df = read_results(tmp_path / "table3_quick.csv")
    proxy = df[df.setting.str.startswith("proxy (quick): lfw faces on skimage photos, 64×64")]
    seeded = proxy[proxy.row.isin(["Baseline", table3.MATCHED_ROW, "Ad-ResNet-s"])]
    assert len(seeded) == 6 and (seeded.status == "proxy").all() and (seeded.kind == "seeded").all()
    assert (seeded.n == 3).all() and seeded.published.isna().all() and (seeded.reproduced >= 0).all()
    assert seeded[seeded.metric == "MSE"].note.str.contains("root of the mean squared").all()
    ref = proxy[proxy.row == table3.TRIVIAL_ROW].set_index("metric")
    assert set(ref.index) == {"MAE", "MSE"} and (ref.status == "proxy").all()
    assert 0 < ref.loc["MAE", "reproduced"] <= ref.loc["MSE", "reproduced"]
    (finding,) = [line for line in md.splitlines() if "Proxy (NOT SHTech/UCF-QNRF" in line]
    assert finding.count("Welch p = ") == 4 and finding.count("Holm-adjusted over 4 tests") == 4
    counts = next(line for line in md.splitlines() if "Proxy parameter counts" in line)
    assert all(row in counts for row in ("Baseline", table3.MATCHED_ROW, "Ad-ResNet-s"))
    assert (tmp_path / "table3_quick_proxy.png").stat().st_size > 1000


def test_trivial_errors():
    class Counts:
        def __init__(self, counts):
            self.counts_ = counts

        def __len__(self):
            return len(self.counts_)

        def count(self, i):
            return self.counts_[i]

    mean, mae, rmse = table3.trivial_errors(Counts([2, 4]), Counts([1, 5]))
    assert (mean, mae, rmse) == (3.0, 2.0, 2.0)


@pytest.mark.slow
@pytest.mark.skipif(not (RESULTS / "table3_quick.csv").exists(),
                    reason="results/table3_quick.csv not committed yet (generate it with "
                           "`python -m reproduce.table3 --quick --threads 1 --out results`)")
def test_quick_proxy_matches_committed_results(tmp_path, capsys):
    assert table3.main(["--quick", "--threads", "1", "--no-plots", "--out", str(tmp_path)]) == 0
    md = capsys.readouterr().out
    assert "PROXY, not SHTech/UCF-QNRF" in md and "proxy (quick)" in md and "Welch p" in md
    df = read_results(tmp_path / "table3_quick.csv")
    proxy = df[df.setting.str.startswith("proxy")]
    seeded = proxy[proxy.kind == "seeded"]
    assert (proxy.status == "proxy").all() and proxy.published.isna().all() and len(seeded) == 6
    assert (seeded.n == CrowdProxy.quick().seeds).all()
    problems = compare_files(tmp_path, RESULTS, "table3_quick")
    assert problems == [], "\n".join(problems)


def test_matched_budget_baseline_is_the_nearest_count():
    recipe = CrowdProxy.quick()
    width = recipe.matched_width("crowd_baseline", "crowd_adresnet_s")
    target = recipe.parameters("crowd_adresnet_s")
    gap = abs(recipe.parameters("crowd_baseline", width) - target)
    assert width > recipe.width_mult and gap < 0.1 * target
    assert all(gap <= abs(recipe.parameters("crowd_baseline", width + d) - target) for d in (-1 / 64, 1 / 64))
    assert table3.proxy_models(recipe)[table3.MATCHED_ROW] == ("crowd_baseline", {"width_mult": width})


def test_findings_compare_seeds_with_welch():
    trained = {"crowd_baseline": [100.0, 101.0], "crowd_adresnet_s": [80.0, 81.0]}
    text = table3.comparison_finding("SHTech-A", trained)
    assert "Ad-ResNet-s 80.50 ± 0.71 vs Baseline 100.50 ± 0.71 MAE" in text and "lower (better)" in text
    assert "Printed: Ad-ResNet-s" in text and table3.comparison_finding("SHTech-A", {}) is None
    rows = [r for slug, values in trained.items()  # the same finding from the report's rows
            for r in table3.trained_results("SHTech-A", slug, [{"val_mae": v, "val_rmse": v} for v in values], "r", 9)]
    assert table3.real_findings(rows)[0] == text and "best.pt is not used" in table3.real_findings(rows)[1]
