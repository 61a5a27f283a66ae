"""Figure 6 reproducer (reproduce/figure6/): metrics, the reduced CI run, determinism, regression."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from acda.data.toy import make_pattern_scene
from reproduce import figure6
from reproduce.engine.regression import compare_files
from reproduce.engine.report import read_results
from reproduce.recipes.toymap import ToyMap
from reproduce.toymap.metrics import (
    SHIFT_BOUND,
    evaluate,
    find_centres,
    match_centres,
    mean_share_at_centres,
    scale_norms,
    shift_error,
)
from reproduce.toymap.training import build_layers, least_squares_conv, train

RESULTS = Path(__file__).resolve().parent.parent / "results"
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_match_centres_counts_hits_misses_and_false_alarms():
    true = torch.tensor([[10, 10], [20, 20], [30, 30]])
    found = torch.tensor([[10, 10], [21, 19], [50, 50], [20, 21]])  # exact, 1 px off, false, duplicate
    assert match_centres(found, true) == (1, 2)
    assert match_centres(torch.empty(0, 2, dtype=torch.long), true) == (3, 0)
    assert match_centres(found, true, tolerance=0) == (2, 3)


def test_find_centres_keeps_local_maxima_above_threshold():
    y = torch.zeros(20, 20)
    y[5, 5], y[5, 6] = 0.9, 0.7  # one peak, its neighbour suppressed
    y[15, 15] = 0.4  # below threshold
    y[10, 2] = 0.6
    assert find_centres(y, 0.5).tolist() == [[5, 5], [10, 2]]


def test_shift_error_is_zero_for_trained_layers_and_detects_a_wrong_shift():
    scene = make_pattern_scene(0, amplitude=3.0, noise_std=0.3)
    original, shifted = scene.render(0), scene.render(20)
    torch.manual_seed(0)
    for layer in build_layers(original.image, 1, torch.device("cpu")):
        with torch.no_grad():
            y, ys = layer(original.image), layer(shifted.image)
        assert shift_error(y, ys, 20) < SHIFT_BOUND
        assert shift_error(y, ys, 19) > 1e-2  # the metric would see a misaligned output
        assert shift_error(y, y, 20) > 1e-2


def test_same_initial_scale_and_least_squares_is_the_conv_optimum():
    data = make_pattern_scene(1, amplitude=3.0, noise_std=0.3).render(0)
    torch.manual_seed(1)
    conv, acda = build_layers(data.image, 1, torch.device("cpu"))
    with torch.no_grad():
        assert conv.bias.item() == acda.bias.item() == 0
        torch.testing.assert_close(acda(data.image).std(), conv(data.image).std())
        best = evaluate(least_squares_conv(data.image, data.target), data, 0.5)
        for _ in range(3):
            other = nn.Conv2d(1, 1, 7, padding=3)
            other.weight.mul_(0.1)
            assert best.mse <= evaluate(other, data, 0.5).mse
        assert best.mse <= evaluate(conv, data, 0.5).mse


def test_train_stops_at_convergence_or_cap():
    data = make_pattern_scene(2, amplitude=3.0, noise_std=0.3).render(0)
    cfg = ToyMap(seeds=(2,), max_steps=5000, window=50, tol=1e-2)
    torch.manual_seed(2)
    conv, _ = build_layers(data.image, 1, torch.device("cpu"))
    log = train(conv, data, cfg, "test", progress=False)
    assert log.converged and log.steps % 50 == 0 and log.steps < 5000
    assert abs(log.losses[-1] - log.losses[-51]) < 1e-2 * log.losses[-51]
    capped = train(conv, data, ToyMap(seeds=(2,), max_steps=7, tol=1e-12), "test", progress=False)
    assert not capped.converged and capped.steps == 7 and len(capped.losses) == 8


def test_scale_norms_shape_and_effective_coefficients():
    data = make_pattern_scene(0).render(0)
    torch.manual_seed(0)
    _, acda = build_layers(data.image, 1, torch.device("cpu"))
    norms = scale_norms(acda, data.image)
    assert norms.shape == (3, 100, 100) and (norms >= 0).all()
    with torch.no_grad():
        alpha = acda.generator.coefficients(data.image, (100, 100))[0, 0]  # m = 1
    torch.testing.assert_close(norms[2], acda.coef.abs().item() * alpha[12:18].norm(dim=0))
    shares = mean_share_at_centres(norms, data)
    for share in shares.values():
        torch.testing.assert_close(share.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("kwargs", [{"seeds": ()}, {"seeds": (1, 1)}, {"max_steps": 0}, {"momentum": 1.0},
                                    {"shift": 0}, {"lr": -1.0}])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        ToyMap(**kwargs)


def test_cli_help_and_bad_arguments():
    out = subprocess.run([sys.executable, "-m", "reproduce.figure6", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--quick" in out.stdout and "--seeds" in out.stdout
    out = subprocess.run([sys.executable, "-m", "reproduce.figure6", "--steps", "0"], capture_output=True, text=True)
    assert out.returncode == 2 and "steps" in out.stderr


@pytest.mark.slow
def test_deterministic_and_independent_of_jobs(tmp_path, capsys):
    tiny = ["--seeds", "3", "4", "--steps", "30"]
    assert figure6.main(tiny + ["--jobs", "1", "--out", str(tmp_path / "a")]) == 0
    assert figure6.main(tiny + ["--jobs", "1", "--out", str(tmp_path / "b"), "--no-plots"]) == 0
    assert figure6.main(tiny + ["--jobs", "2", "--out", str(tmp_path / "c"), "--no-plots"]) == 0
    first = (tmp_path / "a" / "figure6.csv").read_bytes()
    assert first == (tmp_path / "b" / "figure6.csv").read_bytes()
    assert first == (tmp_path / "c" / "figure6.csv").read_bytes()
    for png in ("figure6.png", "figure6_scales.png"):
        assert (tmp_path / "a" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(plain SGD)" in first.decode()  # the momentum-0 comparison runs are part of a default run
    assert capsys.readouterr().out.startswith("# Figure 6")


@pytest.mark.slow
def test_quick_run_on_another_kernel_path_passes_the_regression(tmp_path):
    """The CI run (10 seeds) on "another CPU", played on this one: AVX2 kernels in ATen, MKL and oneDNN.
    ACDA beats Conv on every seed, both outputs shift exactly, and the regression against the committed
    results/figure6_quick.* passes (Welch test when the fingerprint differs, bit-identity when not)."""
    env = {**os.environ, **AVX2}
    out = subprocess.run([sys.executable, "-m", "reproduce.figure6", "--quick", "--no-plots", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    df = read_results(tmp_path / "figure6_quick.csv")
    assert set(df.isa) == {"AVX2 (MKL_ENABLE_INSTRUCTIONS=AVX2, ONEDNN_MAX_CPU_ISA=AVX2)"}
    samples = {(r.row, r.metric): [float(v) for v in r.samples.split(";")] for r in df.itertuples()}
    for a, c in zip(samples[("ACDA", "MSE")], samples[("Conv", "MSE")], strict=True):
        assert a < c
    for a, c in zip(samples[("ACDA", "centre error")], samples[("Conv", "centre error")], strict=True):
        assert a < c
    assert samples[("Conv", "shift error within rounding")] == samples[("ACDA", "shift error within rounding")] == [1.0] * 10
    problems = compare_files(tmp_path, RESULTS, "figure6_quick")
    assert problems == [], "\n".join(problems)
