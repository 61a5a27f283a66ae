"""Figure 7 reproducer (reproduce/figure7.py, reproduce/scalemaps.py): a tiny run of both proxies, one image of
a checkpoint, the errors, the command line, the regression of the CI run."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import write_png

from acda.train.checkpoint import save_checkpoint
from reproduce import figure7, scalemaps
from reproduce.engine.regression import compare_files
from reproduce.engine.report import read_results
from reproduce.recipes.crowd import GENERATOR, build

RESULTS = Path(__file__).resolve().parent.parent / "results"
TINY_PROXY = {"train": 8, "test": 4, "epochs": 1}
WIDTH = 0.125
TOP = ["backbone.stages.2.0.conv2", "backbone.stages.2.1.conv2"]  # Ad-ResNet-s's 7×7 (3-scale) ACDA layers


def test_tiny_run_gives_per_seed_rows_and_pngs(tmp_path, capsys):
    """Two seeds on the quick map (100 steps) and on a tiny crowd proxy (8 images, 1 epoch): every row holds
    one sample per seed, the claims are proxies, the shares of each third sum to 100%."""
    assert figure7.main(["--quick", "--seeds", "0", "1", "--steps", "100", "--jobs", "2", "--name", "tiny",
                         "--out", str(tmp_path), "--allow-dirty"], proxy_overrides=TINY_PROXY) == 0
    df = read_results(tmp_path / "tiny.csv")
    assert (df.n == 2).all() and all(len(s.split(";")) == 2 for s in df.samples)
    toy, crowd, control = df[df.row == "ACDA"], df[df.row == "Ad-ResNet-s"], df[df.row == figure7.UNTRAINED_ROW]
    assert len(toy) == 2 + 9 + 3 and len(crowd) == 2 + 9 + 1 + 2 + 1 and len(control) == 2
    assert len(df) == len(toy) + len(crowd) + len(control) and (df.status == "proxy").all()
    for part in (toy, crowd):
        claims = part[part.metric.str.contains("minus") & ~part.metric.str.contains("layers")]
        assert list(claims.status) == ["proxy", "proxy"] and claims.note.str.startswith("Claim").all()
    assert crowd.note.str.contains("PROXY").all() and set(crowd.setting) == {"crowd proxy"}
    shares = toy[toy.metric.str.contains("centres: ")]
    for size in (3, 5, 7):  # the three scales' shares at each pattern size sum to 100%
        assert abs(shares[shares.metric.str.startswith(f"{size}x{size}")].reproduced.sum() - 100) < 1e-4
    for third in ("top", "middle", "bottom"):
        rows = crowd[crowd.metric.str.startswith(f"{third} third: ")]
        assert len(rows) == 3 and abs(rows.reproduced.sum() - 100) < 1e-4
    by = crowd.set_index("metric").reproduced
    assert by["7x7-scale share: bottom minus top third"] == pytest.approx(
        by["bottom third: 7x7-scale share"] - by["top third: 7x7-scale share"], abs=1e-6)
    assert by["3x3-scale share: top minus bottom third"] == pytest.approx(
        by["top third: 3x3-scale share"] - by["bottom third: 3x3-scale share"], abs=1e-6)
    r = crowd[crowd.metric.str.contains(" r")].reproduced
    assert len(r) == 2 and ((r >= -1) & (r <= 1)).all() and by["test MAE"] >= 0
    for png in ("tiny.png", "tiny_crowd.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    found = json.loads((tmp_path / "tiny.json").read_text(encoding="utf-8"))["findings"]
    assert len(found) == 3 + 1 + 7 + 1 + 1 and "Welch p" in found[0] and "Holm-adjusted over the two" in found[1]
    assert found[3] == "PROXY: the 7 tests below are one family, judged on Holm-adjusted p-values."
    assert all(f.startswith("PROXY") and "t-test" in f and "Holm-adjusted over 7 tests" in f for f in found[4:11])
    assert "even split" in found[11] and all(TOP[0] in f for f in (found[4], found[6]))
    assert "untrained models" in found[5] and "5×5 ACDA layers" in found[8]
    assert capsys.readouterr().out.startswith("# Figure 7")


def test_thirds_split_rows_by_their_centre():
    top, middle, bottom = scalemaps.third_masks(8)
    assert top.nonzero().flatten().tolist() == [0, 1, 2] and bottom.nonzero().flatten().tolist() == [5, 6, 7]
    assert middle.nonzero().flatten().tolist() == [3, 4]
    assert [m.nonzero().flatten().tolist() for m in scalemaps.third_masks(4)] == [[0], [1, 2], [3]]
    share = torch.arange(2 * 6 * 2, dtype=torch.float32).view(2, 6, 2)
    t = scalemaps.third_means(share)
    assert t.shape == (2, 3) and torch.equal(t[:, 0], share[:, :2].mean(dim=(1, 2)))
    assert torch.isnan(scalemaps.third_means(torch.ones(3, 2, 4))[:, 1]).all()  # 2 rows: no middle third


def test_correlations_and_test():
    x = np.arange(10.0)
    assert scalemaps.correlation(x, 2 * x + 1) == pytest.approx(1.0)
    row = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4.0])
    size = row + np.array([1, -1] * 5) * 0.1  # size = row + jitter; share follows only the jitter
    assert scalemaps.partial_correlation(size, np.array([1.0, -1.0] * 5), row) == pytest.approx(1.0)
    assert scalemaps.one_sample_p([0.0, 0.0]) == 1.0 and scalemaps.one_sample_p([1.0, 1.0]) == 0.0
    assert scalemaps.one_sample_p([1.0]) != scalemaps.one_sample_p([1.0])  # NaN: one seed
    assert scalemaps.one_sample_p([1.0, 1.1, 0.9, 1.2]) < 0.05


def _model(seed: int = 0, width: float = WIDTH):
    torch.manual_seed(seed)
    return build("crowd_adresnet_s", width_mult=width, generator=GENERATOR).eval()


def _checkpoint(path: Path, state: dict, prefix: str = "model.") -> Path:
    save_checkpoint({"epoch": 1, "model": {prefix + k: v for k, v in state.items()}}, path)
    return path


@pytest.fixture
def image(tmp_path) -> Path:
    """A 50×70 RGB PNG (not a multiple of the stride 16): a brighter bottom half."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 128, (3, 50, 70), dtype=torch.uint8, generator=g)
    x[:, 25:] += 100
    path = tmp_path / "crowd.png"
    with warnings.catch_warnings():  # torchvision ≥ 0.29 deprecates its encoders in favour of TorchCodec
        warnings.simplefilter("ignore", DeprecationWarning)
        write_png(x, str(path))
    return path


@pytest.mark.parametrize("prefix", ["model.", "module.model.", ""])
def test_checkpoint_and_image_end_to_end(tmp_path, image, prefix, capsys):
    """A WholeImage-wrapped (``model.``), DDP (``module.``) or bare state dict; a padded, cropped image."""
    model = _model()
    ckpt = _checkpoint(tmp_path / "best.pt", model.state_dict(), prefix)
    out = tmp_path / "out"
    assert figure7.main(["--checkpoint", str(ckpt), "--image", str(image), "--width-mult", str(WIDTH),
                         "--out", str(out), "--allow-dirty"]) == 0
    df = read_results(out / "figure7_image.csv")
    ours = df[df.row == "crowd_adresnet_s: crowd.png"]
    layers = [n for n, _ in scalemaps.multiscale_layers(model)]
    assert set(ours.setting) == {"7x7 layers (mean)", *layers} and (ours.kind == "exact").all()
    assert (ours.method == "measured").all() and ours.reproduced.notna().all()
    for setting in ours.setting.unique():
        rows = ours[(ours.setting == setting) & ours.metric.str.startswith("top third")]
        assert abs(rows.reproduced.sum() - 100) < 1e-4, setting
    published = df[df.row != "crowd_adresnet_s: crowd.png"]
    assert len(published) == 4 and (published.status == "not implemented").all()
    # the rows are those of the maps computed directly: image zero-padded to 64×80, maps cropped to the image
    _, x = scalemaps.read_image(image)
    maps = scalemaps.image_shares(model, x)
    share, stride = maps[TOP[1]]
    assert stride == 8 and share.shape == (3, 7, 9)  # ⌈50/8⌉ × ⌈70/8⌉
    torch.testing.assert_close(share.sum(0), torch.ones(7, 9))
    mean7 = np.mean([scalemaps.third_means(maps[n][0]).numpy() for n in TOP], axis=0)
    got = ours[ours.setting == "7x7 layers (mean)"].set_index("metric").reproduced
    assert got["7x7-scale share: bottom minus top third"] == pytest.approx(100 * (mean7[2, 2] - mean7[2, 0]), abs=1e-4)
    assert (out / "figure7_image.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figure7_image_alpha.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the paper's α heatmaps
    found = json.loads((out / "figure7_image.json").read_text(encoding="utf-8"))["findings"]
    assert len(found) == 1 and "crowd.png" in found[0] and "no significance test" in found[0]
    assert capsys.readouterr().out.startswith("# Figure 7 on one image")


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        figure7.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_checkpoint_and_image_errors(tmp_path, image, capsys):
    good = _checkpoint(tmp_path / "good.pt", _model().state_dict())
    args = ["--width-mult", str(WIDTH), "--out", str(tmp_path / "out"), "--allow-dirty"]
    assert "no checkpoint at" in _error(capsys, ["--checkpoint", str(tmp_path / "nope.pt"), "--image", str(image),
                                                 *args])
    assert "no image file at" in _error(capsys, ["--checkpoint", str(good), "--image", str(tmp_path / "no.png"),
                                                 *args])
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    assert "cannot read image" in _error(capsys, ["--checkpoint", str(good), "--image", str(junk), *args])
    assert "go together" in _error(capsys, ["--checkpoint", str(good), *args])
    assert "does not apply" in _error(capsys, ["--checkpoint", str(good), "--image", str(image), "--quick", *args])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    assert "not a checkpoint written by acda.train" in _error(capsys, ["--checkpoint", str(foreign), "--image",
                                                                       str(image), *args])
    state = _model().state_dict()
    missing = state.copy()
    missing.pop("backbone.stages.2.0.conv2.coef")
    err = _error(capsys, ["--checkpoint", str(_checkpoint(tmp_path / "m.pt", missing)), "--image", str(image), *args])
    assert "missing backbone.stages.2.0.conv2.coef" in err and "--width-mult" in err
    extra = {**state, "head.weight": torch.zeros(1)}
    err = _error(capsys, ["--checkpoint", str(_checkpoint(tmp_path / "x.pt", extra)), "--image", str(image), *args])
    assert "unexpected head.weight" in err
    err = _error(capsys, ["--checkpoint", str(good), "--image", str(image), "--out", str(tmp_path / "out"),
                          "--allow-dirty"])  # width 1.0 against a ×0.125 checkpoint
    assert "shape (checkpoint vs model)" in err
    err = _error(capsys, ["--checkpoint", str(good), "--image", str(image), "--model", "crowd_baseline", *args])
    assert "no ACDA layer with two or more basis scales" in err
    err = _error(capsys, ["--checkpoint", str(good), "--image", str(image), "--layer", "decoder", *args])
    assert "not a multi-scale ACDA layer" in err
    assert not (tmp_path / "out").exists()


def test_help():
    out = subprocess.run([sys.executable, "-m", "reproduce.figure7", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Figure 7" in out.stdout
    assert all(s in out.stdout for s in ("--quick", "--checkpoint", "--image", "--width-mult", "PROXY"))


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
