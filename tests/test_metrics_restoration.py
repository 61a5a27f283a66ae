"""Restoration metrics in the papers' conventions (``acda.metrics``: ``rgb_to_y``, ``psnr_y``, ``ssim_y``,
``blockwise_psnr_ssim``), cross-checked against scikit-image on Y computed independently here."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from acda.metrics import blockwise_psnr_ssim, psnr_y, quantize_8bit, rgb_to_y, ssim_y


def _np_y(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) float RGB in [0, 1] -> BT.601 Y (H, W), typed from the definition."""
    q = np.round(np.clip(rgb, 0.0, 1.0) * 255.0) / 255.0
    return 16.0 + 65.481 * q[0] + 128.553 * q[1] + 24.966 * q[2]


def _sk_ssim(a: np.ndarray, b: np.ndarray, **kw) -> float:
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, **kw)


def _pair(n=2, h=24, w=30, noise=0.08):
    target = torch.rand(n, 3, h, w, dtype=torch.float64)
    pred = target + noise * torch.randn_like(target)  # overshoots [0, 1]: clamped before rounding
    return pred, target


def test_rgb_to_y_matches_formula_and_range():
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    y = rgb_to_y(x)
    assert y.shape == (2, 1, 5, 7) and y.dtype == torch.float64
    for i in range(2):
        np.testing.assert_allclose(y[i, 0].numpy(), _np_y(x[i].numpy()), rtol=0, atol=1e-12)
    assert float(rgb_to_y(torch.zeros(1, 3, 2, 2)).max()) == pytest.approx(16.0, abs=1e-12)
    assert float(rgb_to_y(torch.ones(1, 3, 2, 2)).min()) == pytest.approx(235.0, abs=1e-12)
    assert float(y.min()) >= 16.0 and float(y.max()) <= 235.0


@pytest.mark.parametrize("shave", [0, 2, 4])
def test_psnr_ssim_y_match_skimage(shave):
    pred, target = _pair()
    got_psnr, got_ssim = psnr_y(pred, target, shave=shave), ssim_y(pred, target, shave=shave)
    assert got_psnr.shape == got_ssim.shape == (2,)
    for i in range(2):
        yp, yt = _np_y(pred[i].numpy()), _np_y(target[i].numpy())
        if shave:
            yp, yt = yp[shave:-shave, shave:-shave], yt[shave:-shave, shave:-shave]
        assert abs(float(got_psnr[i]) - peak_signal_noise_ratio(yt, yp, data_range=255)) < 1e-10
        assert abs(float(got_ssim[i]) - _sk_ssim(yt, yp)) < 1e-10


def test_blockwise_matches_skimage_and_averages_blocks():
    pred, target = _pair(n=3, h=32, w=32, noise=0.05)
    out = blockwise_psnr_ssim(pred, target)
    sk_psnr, sk_ssim = [], []
    for i in range(3):
        p = np.round(np.clip(pred[i].numpy(), 0, 1) * 255).transpose(1, 2, 0)
        t = np.round(np.clip(target[i].numpy(), 0, 1) * 255).transpose(1, 2, 0)
        sk_psnr.append(peak_signal_noise_ratio(t, p, data_range=255))
        sk_ssim.append(_sk_ssim(t, p, channel_axis=-1))
    np.testing.assert_allclose(out["psnr_per_block"].numpy(), sk_psnr, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["ssim_per_block"].numpy(), sk_ssim, rtol=0, atol=1e-10)
    assert abs(float(out["psnr"]) - np.mean(sk_psnr)) < 1e-10  # mean of per-block PSNR, not pooled MSE
    assert abs(float(out["ssim"]) - np.mean(sk_ssim)) < 1e-10


def test_identical_images():
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    assert torch.isinf(psnr_y(x, x)).all() and (psnr_y(x, x) > 0).all()
    torch.testing.assert_close(ssim_y(x, x), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12)
    out = blockwise_psnr_ssim(x, x)
    assert math.isinf(float(out["psnr"])) and float(out["ssim"]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_constant_y_offset(k):
    # adding k to every 8-bit R, G, B value shifts Y by exactly d = k (65.481 + 128.553 + 24.966) / 255
    base = torch.randint(0, 256 - k, (2, 3, 16, 16)).double()
    target, pred = base / 255, (base + k) / 255
    d = k * 219.0 / 255.0
    diff = rgb_to_y(pred) - rgb_to_y(target)
    torch.testing.assert_close(diff, torch.full_like(diff, d), rtol=0, atol=1e-10)
    expected = 20 * math.log10(255 / d)
    torch.testing.assert_close(psnr_y(pred, target), torch.full((2,), expected, dtype=torch.float64),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("s", [1, 3])
def test_shave_removes_exactly_s_pixels_per_side(s):
    target = torch.rand(1, 3, 20, 24, dtype=torch.float64)
    inner = torch.zeros(20, 24, dtype=torch.bool)
    inner[s:-s, s:-s] = True
    for side in range(4):  # perturb one border strip of width s only
        ring = torch.zeros(20, 24, dtype=torch.bool)
        ring[[slice(0, s), slice(20 - s, 20), slice(None), slice(None)][side],
             [slice(None), slice(None), slice(0, s), slice(24 - s, 24)][side]] = True
        pred = torch.where(ring, 1.0 - target, target)
        assert torch.isinf(psnr_y(pred, target, shave=s)).all()
        assert torch.isfinite(psnr_y(pred, target, shave=s - 1)).all()
    # the shaved score is the score of the (H-2s)×(W-2s) interior
    pred = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    crop = (slice(None), slice(None), slice(s, 20 - s), slice(s, 24 - s))
    torch.testing.assert_close(psnr_y(pred, target, shave=s), psnr_y(pred[crop], target[crop]), rtol=0, atol=0)
    torch.testing.assert_close(ssim_y(pred, target, shave=s), ssim_y(pred[crop], target[crop]), rtol=0, atol=0)


def test_8bit_rounding_is_applied():
    levels = torch.randint(0, 256, (2, 3, 16, 16)).double()
    target = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    exact = levels / 255
    jitter = (torch.rand_like(exact) - 0.5) * 0.98 / 255  # |jitter| < 0.49/255: same 8-bit values
    jittered = exact + jitter
    torch.testing.assert_close(quantize_8bit(jittered), levels, rtol=0, atol=0)
    assert torch.equal(psnr_y(jittered, target), psnr_y(exact, target))
    assert torch.equal(ssim_y(jittered, target), ssim_y(exact, target))
    assert torch.isinf(psnr_y(jittered, exact)).all()
    a, b = blockwise_psnr_ssim(jittered, target), blockwise_psnr_ssim(exact, target)
    assert torch.equal(a["psnr_per_block"], b["psnr_per_block"]) and torch.equal(a["ssim"], b["ssim"])
    # overshoot is clamped before rounding
    assert torch.equal(psnr_y((exact - 0.5).clamp(0, 1) + 0, target), psnr_y(exact - 0.5, target))


def test_errors_name_the_argument():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="pred"):
        psnr_y(torch.rand(1, 1, 16, 16), x)
    with pytest.raises(ValueError, match="target"):
        ssim_y(x, torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        psnr_y(x, torch.rand(1, 3, 16, 17))
    with pytest.raises(ValueError, match="pred.*0, 1"):
        psnr_y(x * 255, x)
    with pytest.raises(ValueError, match="target.*dtype"):
        psnr_y(x, (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="non-finite"):
        psnr_y(x, x.masked_fill(x > 0.5, float("nan")))
    with pytest.raises(ValueError, match="images"):
        rgb_to_y(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="shave=8"):
        psnr_y(x, x, shave=8)
    psnr_y(x, x, shave=7)
    with pytest.raises(ValueError, match="shave=3"):
        ssim_y(x, x, shave=3)  # 10×10 left, under the 11×11 window
    ssim_y(x, x, shave=2)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="shave"):
            psnr_y(x, x, shave=bad)
    with pytest.raises(ValueError, match="pred_blocks"):
        blockwise_psnr_ssim(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="target_blocks"):
        blockwise_psnr_ssim(x, torch.rand(1, 1, 16, 16))


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_realsr_convention_matches_an_independent_implementation_on_photographs(name):
    """The RealSR evaluation (Test/Test.m, Cal_PSNRSSIM.m): Y of MATLAB's rgb2ycbcr on uint8 (rounded), no
    shave, Wang's SSIM; against scikit-image's rgb2ycbcr, rounded here, and its PSNR/SSIM, on scikit-image's
    bundled photographs and a noisy copy. BasicSR's convention (Y unrounded) differs measurably."""
    from skimage import color, data

    clean = getattr(data, name)()[:96, :120]
    noisy = np.clip(clean.astype(float) + np.random.default_rng(0).normal(0, 10, clean.shape), 0, 255)
    noisy = noisy.round().astype(np.uint8)
    as_torch = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    y = lambda a: np.floor(color.rgb2ycbcr(a)[..., 0] + 0.5)  # noqa: E731 -- MATLAB's uint8 rounding (Y ≥ 16)
    got = psnr_y(as_torch(noisy), as_torch(clean), convention="realsr").item()
    assert got == pytest.approx(peak_signal_noise_ratio(y(clean), y(noisy), data_range=255), abs=1e-9)
    got = ssim_y(as_torch(noisy), as_torch(clean), convention="realsr").item()
    assert got == pytest.approx(_sk_ssim(y(clean), y(noisy)), abs=1e-9)
    basicsr = psnr_y(as_torch(noisy), as_torch(clean)).item()
    assert basicsr != pytest.approx(psnr_y(as_torch(noisy), as_torch(clean), convention="realsr").item(), abs=1e-3)
    assert rgb_to_y(as_torch(clean), "realsr").eq(rgb_to_y(as_torch(clean), "realsr").round()).all()
    with pytest.raises(ValueError, match="convention"):
        psnr_y(as_torch(noisy), as_torch(clean), convention="matlab")


def test_restoration_task_scores_a_second_convention_beside_the_first():
    from acda.train import Restoration
    from acda.train.tasks import task_from_spec

    task = Restoration(criterion="mse", space="y", convention="realsr", secondary=("basicsr", 2))
    assert task.eval_columns == ("psnr", "ssim", "psnr_basicsr", "ssim_basicsr")
    pred, target = _pair(n=3, h=20, w=20)
    pred = pred.clamp(0, 1)
    row = task.eval_row(task.eval_values(pred, target).sum(0).tolist(), 3)
    assert row["val_psnr"] == pytest.approx(psnr_y(pred, target, 0, "realsr").mean().item())
    assert row["val_ssim_basicsr"] == pytest.approx(ssim_y(pred, target, 2).mean().item())
    assert task_from_spec(task.spec()) == task
    old = {k: v for k, v in Restoration(criterion="mse", space="y", shave=2).spec().items()
           if k not in ("convention", "secondary")}  # a checkpoint written before conventions existed
    assert task_from_spec(old) == Restoration(criterion="mse", space="y", shave=2)
    with pytest.raises(ValueError, match="secondary"):
        Restoration(space="rgb", secondary=("basicsr", 2))


def test_matlab_volume_ssim_matches_scipys_gaussian_filter_on_a_photograph():
    """MATLAB's ssim of an H×W×3 array (imgaussfilt3: σ 1.5, 11 taps per axis, replicate padding, 'same'),
    against scipy.ndimage.gaussian_filter (mode 'nearest' = replicate, radius 5), on a bundled photograph."""
    from scipy import ndimage
    from skimage import data

    from acda.metrics import ssim_volume

    clean = data.astronaut()[100:164, 150:230].astype(float)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 20, clean.shape), 0, 255).round()
    f = lambda x: ndimage.gaussian_filter(x, 1.5, mode="nearest", truncate=5 / 1.5)  # noqa: E731
    mx, my = f(noisy), f(clean)
    sxx, syy, sxy = f(noisy ** 2) - mx ** 2, f(clean ** 2) - my ** 2, f(noisy * clean) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    want = (((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))).mean()
    as_torch = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731
    assert ssim_volume(as_torch(noisy), as_torch(clean), 255.0).item() == pytest.approx(want, abs=1e-12)
    blocks = blockwise_psnr_ssim(as_torch(noisy) / 255, as_torch(clean) / 255, ssim="matlab")
    per_channel = blockwise_psnr_ssim(as_torch(noisy) / 255, as_torch(clean) / 255)
    assert blocks["ssim"].item() == pytest.approx(want, abs=1e-12) and blocks["psnr"] == per_channel["psnr"]
    assert blocks["ssim"] > per_channel["ssim"] + 0.05  # the volume SSIM scores noise far higher
    with pytest.raises(ValueError, match="ssim"):
        blockwise_psnr_ssim(as_torch(noisy) / 255, as_torch(clean) / 255, ssim="volume")
