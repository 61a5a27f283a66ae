"""CI regression: Table 2 (parameters and GFLOPs) re-run here must equal the committed results/table2*.csv exactly."""
from pathlib import Path

import pandas as pd
import pytest

from reproduce import table2
from reproduce.engine.regression import compare_files

RESULTS = Path(__file__).resolve().parent.parent / "results"


@pytest.mark.slow
@pytest.mark.parametrize("generator,name", [("paper", "table2"), ("official", "table2_official")])
def test_table2_matches_committed_results(tmp_path, generator, name, capsys):
    assert table2.main(["--generator", generator, "--flops", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("# Table 2")
    problems = compare_files(tmp_path, RESULTS, name)
    assert problems == [], "\n".join(problems)

    df = pd.read_csv(tmp_path / f"{name}.csv").set_index(["row", "setting", "metric"])
    params = df.xs("Params", level="metric")
    assert params.reproduced.notna().all()  # every model of Table 2 is built and counted
    assert params.loc[("ResNet-18", "ImageNet"), "status"] == "match"
    assert params.loc[("ResNet-50", "ImageNet"), "status"] == "match"
    assert params.loc[("ResNet-34", "ImageNet"), "status"] == "erratum"  # printed without its FC layer
    assert (params.loc[params.status != "match", "note"].str.len() > 50).all()
    assert "DY-CNN paper" in params.loc[("MobileNet-V3 small [12]", "ImageNet"), "note"]
    errors = df[df.index.get_level_values("metric").isin(["Top-1", "Top-5"])]
    assert (errors.status == "needs data").all() and errors.note.str.contains("train/<wnid>").all()


def test_counts_are_computed_from_the_models():
    results, findings = table2.parameter_results("paper", flops=False)
    by_row = {r.row: r.value for r in results}
    from torchvision.models import resnet34

    from acda.models import get_model
    from acda.profile import count_parameters
    assert by_row["ResNet-34"] == count_parameters(resnet34(weights=None)) / 1e6
    assert by_row["Ad-ResNet-s"] == count_parameters(get_model("adresnet_s")) / 1e6
    assert any("ResNet-34" in f for f in findings)


def test_help_and_bad_data_root(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        table2.main(["--help"])
    assert e.value.code == 0 and "--data-root" in capsys.readouterr().out
    assert table2.main(["--data-root", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "train/<wnid>" in capsys.readouterr().err
