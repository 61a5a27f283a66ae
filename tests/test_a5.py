"""Appendix A.5 reproducer and its metric (acda.metrics.intra_image_cosine_distance)."""
import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from acda.metrics import alpha_diversity, intra_image_cosine_distance
from acda.models import get_model, list_models
from reproduce import a5
from reproduce.engine.regression import compare_files
from reproduce.engine.report import read_results
from tests.replicas import imagenet_release

RESULTS = Path(__file__).resolve().parent.parent / "results"


def _brute_force(alpha, scales):
    n, m, sb, h, w = alpha.shape
    v = alpha.reshape(n, m, scales, sb // scales, h * w)
    per_image, pairs = [], []
    for i in range(n):
        d = [1 - F.cosine_similarity(v[i, a, s, :, p], v[i, a, s, :, q], dim=0).item()
             for a in range(m) for s in range(scales) for p, q in itertools.combinations(range(h * w), 2)]
        per_image.append(sum(d) / len(d))
        pairs += d
    return per_image, pairs


def test_cosine_distance_matches_brute_force():
    alpha = torch.randn(2, 3, 12, 3, 4, dtype=torch.float64)
    r = intra_image_cosine_distance(alpha, num_scales=2)
    per_image, pairs = _brute_force(alpha, 2)
    torch.testing.assert_close(r["image_mean"], torch.tensor(per_image, dtype=torch.float64))
    mean = sum(pairs) / len(pairs)
    assert r["pair_count"].item() == len(pairs)
    assert (r["pair_sum"] / r["pair_count"]).item() == pytest.approx(mean)
    assert (r["pair_sq_sum"] / r["pair_count"]).item() == pytest.approx(sum(d * d for d in pairs) / len(pairs))


def test_cosine_distance_limits_and_modes():
    same = torch.randn(1, 2, 6, 1, 1).expand(1, 2, 6, 4, 4)
    assert intra_image_cosine_distance(same, 1)["image_mean"].item() == pytest.approx(0.0, abs=1e-12)
    opposite = torch.zeros(1, 1, 6, 1, 2)
    opposite[0, 0, 0, 0, 0], opposite[0, 0, 0, 0, 1] = 1.0, -1.0
    assert intra_image_cosine_distance(opposite, 1)["image_mean"].item() == pytest.approx(2.0)
    alpha = torch.randn(1, 2, 12, 3, 3)
    mean_alpha = intra_image_cosine_distance(alpha, 2, mode="mean_alpha")["image_mean"]
    expected = intra_image_cosine_distance(alpha.view(1, 2, 2, 6, 3, 3).mean(2), 1)["image_mean"]
    torch.testing.assert_close(mean_alpha, expected)
    with pytest.raises(ValueError, match="num_scales"):
        intra_image_cosine_distance(alpha, 5)
    with pytest.raises(ValueError, match="mode"):
        intra_image_cosine_distance(alpha, 2, mode="max")


def test_alpha_diversity_reads_every_acda_layer():
    model = get_model("lenet_acda")
    r = alpha_diversity(model, torch.randn(2, 3, 32, 32))["per_scale"]
    assert list(r) == ["features.0", "features.3"] and r["features.0"]["image_mean"].shape == (2,)
    assert r["features.0"]["pair_count"].item() == 2 * 6 * 2 * (28 * 28) * (28 * 28 - 1) / 2  # m=6, S=2
    with pytest.raises(ValueError, match="no ACDAConv2d"):
        alpha_diversity(get_model("lenet"), torch.randn(1, 3, 32, 32))


def test_paper_protocol_needs_both_arguments(tmp_path):
    with pytest.raises(SystemExit):
        a5.main(["--data-root", str(tmp_path)])


@pytest.mark.slow
def test_quick_proxy_matches_committed_results(tmp_path, capsys):
    assert a5.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    assert "PROXY" in capsys.readouterr().out
    df = read_results(tmp_path / "a5_quick.csv")
    paper = df[df.row == "Ad-ResNet (trained)"]
    assert (paper.status == "needs data").all() and len(paper) == 2
    proxy = df[df.row != "Ad-ResNet (trained)"]
    assert (proxy.status == "proxy").all() and (proxy.kind == "seeded").all() and (proxy.n >= 10).all()
    values = proxy[proxy.metric.str.contains("osine")].reproduced
    assert ((values >= 0) & (values <= 2)).all()
    problems = compare_files(tmp_path, RESULTS, "a5_quick")
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("val", ["folders", "devkit"])
def test_paper_protocol_runs_on_an_imagenet_folder(tmp_path, val):
    """The protocol on the ImageNet release replica fills every "needs data" row of the committed report."""
    if "adresnet_s" not in list_models():
        pytest.skip("adresnet_s is not registered")
    root = imagenet_release(tmp_path / "imagenet", val)
    torch.save({"model": get_model("adresnet_s").state_dict()}, tmp_path / "ckpt.pt")
    threads = torch.get_num_threads()
    assert a5.main(["--checkpoint", str(tmp_path / "ckpt.pt"), "--data-root", str(root), "--device", "cpu",
                    "--num-workers", "0", "--threads", "1", "--limit", "2", "--out", str(tmp_path)]) == 0
    assert torch.get_num_threads() == threads
    df = read_results(tmp_path / "a5_imagenet.csv")
    row = df[(df.metric == "Cosine distance mean")].iloc[0]
    assert row.status in ("match", "mismatch") and 0 <= row.reproduced <= 2
    assert "2 ImageNet val images" in row.note
    waiting = read_results(RESULTS / "a5.csv").query("status == 'needs data'")
    filled = {(r.row, r.setting, r.metric) for r in df.itertuples() if r.reproduced == r.reproduced}
    assert len(waiting) and {(r.row, r.setting, r.metric) for r in waiting.itertuples()} <= filled
