"""Table 7 reproducer: runs end to end at a tiny size; parameter counts equal the committed results."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from reproduce import table7

RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_dfn_memory_prediction_matches_shapes():
    # Ad-ResNet-s at 224: the stem gives 56×56, Conv2_x 28×28; Conv3_x has two 7×7 DFN layers at
    # 14×14 with 128→128 channels, Conv4_x two 5×5 at 7×7 with 256→256; float32.
    want = 4 * (2 * 14 * 14 * 128 * 128 * 49 + 2 * 7 * 7 * 256 * 256 * 25)
    assert table7.dfn_filter_bytes(1, 224) == want
    assert table7.dfn_filter_bytes(3, 224) == 3 * want


@pytest.mark.slow
def test_table7_tiny_run_and_params_regression(tmp_path, capsys):
    assert table7.main(["--batch", "2", "--image-size", "64", "--iters", "1", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("# Table 7")
    new = pd.read_csv(tmp_path / "table7.csv").set_index(["row", "metric"])
    old = pd.read_csv(RESULTS / "table7.csv").set_index(["row", "metric"])
    for row in table7.ROWS.values():
        assert new.loc[(row, "Params"), "reproduced"] == old.loc[(row, "Params"), "reproduced"]
    assert new.loc[("ACDA / Conv", "Time ratio"), "reproduced"] > 0
    assert (new.loc[new.index.get_level_values("metric").isin(["Memory", "Time"]), "status"]
            .isin(["proxy", "reproduced here"]).all())


def test_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        table7.main(["--image-size", "16"])
    with pytest.raises(SystemExit):
        table7.main(["--batch", "0"])


def test_device_cuda_without_cuda_is_refused_cleanly(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        table7.main(["--device", "cuda"])
    assert exc.value.code == 2 and "--device cuda requested but CUDA is not available" in capsys.readouterr().err


def test_device_cuda_selects_the_gpu_setting(monkeypatch, tmp_path):
    """--device cuda (CUDA faked, the run stubbed): the GPU batch (64) and the device reach the run and the report."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    seen = {}
    monkeypatch.setattr(table7, "build_results", lambda *args: seen.setdefault("run", args) and [])
    monkeypatch.setattr(table7.base, "publish", lambda *args, **kwargs: seen.setdefault("device", kwargs["device"]))
    assert table7.main(["--device", "cuda", "--out", str(tmp_path / "cuda")]) == 0
    assert seen == {"run": (torch.device("cuda"), 64, 224, 5, "auto"), "device": "cuda"}
