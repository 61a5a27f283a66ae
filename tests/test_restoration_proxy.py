"""The offline restoration proxy: bundled photographs under spatially non-uniform blur and noise."""
import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from acda.data import RESTORATION_PHOTOS, RestorationProxy, restoration_proxy
from acda.data.restoration import augment_pair
from acda.data.restoration_proxy import (
    denoise_degrade,
    load_photo,
    nonuniform_blur,
    smooth_field,
    sr_degrade,
    sr_lowres,
)
from acda.train.checkpoint import data_fingerprint
from acda.utils import ArgumentTypeError, ArgumentValueError

SR = dict(num_images=8, size=24, scale=2)
DN = dict(num_images=8, size=24)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def sr_train():
    return restoration_proxy("sr", "train", **SR)


@pytest.fixture(scope="module")
def dn_train():
    return restoration_proxy("denoise", "train", **DN)


def _same(a, b):
    assert len(a) == len(b)
    assert torch.equal(a.degraded, b.degraded) and torch.equal(a.clean, b.clean)
    assert [a.source(i) for i in range(len(a))] == [b.source(i) for i in range(len(b))]


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["sr", "denoise"])
def test_deterministic_in_seed(task, sr_train, dn_train):
    built = sr_train if task == "sr" else dn_train
    kw = SR if task == "sr" else DN
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    again = restoration_proxy(task, "train", **kw)
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # no global generator at build time
    assert np.array_equal(np.random.get_state()[1], np_state)
    _same(built, again)
    assert data_fingerprint(built) == data_fingerprint(again) and built.fingerprint() == again.fingerprint()
    other = restoration_proxy(task, "train", **{**kw, "seed": 1})
    assert not torch.equal(built.degraded, other.degraded) and not torch.equal(built.clean, other.clean)
    assert built.fingerprint() != other.fingerprint()
    # the first k items do not depend on num_images
    short = restoration_proxy(task, "train", **{**kw, "num_images": 3})
    assert torch.equal(short.degraded, built.degraded[:3]) and torch.equal(short.clean, built.clean[:3])


@pytest.mark.parametrize("task", ["sr", "denoise"])
def test_items_shapes_dtypes_range(task):
    ds = restoration_proxy(task, "test", num_images=3, size=32, augment=False)
    assert isinstance(ds, RestorationProxy) and len(ds) == 3 and not ds.augment and ds.task == task
    assert ds.scale == (2 if task == "sr" else 1) and ds.config["task"] == task and ds.config["size"] == 32
    for i in range(len(ds)):
        degraded, clean = ds[i]
        for x in (degraded, clean):
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
            assert float(x.min()) >= 0 and float(x.max()) <= 1
            assert torch.equal(torch.round(x * 255) / 255, x)  # 8-bit values
        assert not torch.equal(degraded, clean)
        # the clean patch is the photograph's pixels at the window's centre
        src = ds.source(i)
        m = ds.config["margin"]
        photo = load_photo(src["photo"])
        ref = photo[:, src["top"] + m:src["top"] + m + 32, src["left"] + m:src["left"] + m + 32].to(torch.float32)
        assert torch.allclose(clean, ref, atol=1e-6)


def test_splits_hold_out_whole_photographs():
    assert not set(RESTORATION_PHOTOS["train"]) & set(RESTORATION_PHOTOS["test"])
    train = restoration_proxy("denoise", "train", num_images=12, size=16)
    test = restoration_proxy("denoise", "test", num_images=4, size=16)
    assert {train.photo(i) for i in range(len(train))} == set(RESTORATION_PHOTOS["train"])  # in rotation
    assert {test.photo(i) for i in range(len(test))} == set(RESTORATION_PHOTOS["test"])
    assert train.augment and not test.augment  # defaults
    assert not torch.equal(restoration_proxy("denoise", "test", num_images=1, size=16).clean,
                           restoration_proxy("denoise", "train", num_images=1, size=16, seed=0).clean)


def test_large_photographs_rescaled_and_8_bit():
    for name in RESTORATION_PHOTOS["train"] + RESTORATION_PHOTOS["test"]:
        p = load_photo(name)
        assert p.dtype == torch.float64 and p.shape[0] == 3 and min(p.shape[1:]) <= 512
        assert torch.equal(torch.round(p * 255) / 255, p)
    assert tuple(load_photo("retina").shape) == (3, 512, 512)
    assert tuple(load_photo("hubble_deep_field").shape) == (3, 512, 587)


def _sym(x, h, v, t):
    x = x.flip(-1) if h else x
    x = x.flip(-2) if v else x
    return x.transpose(-1, -2) if t else x


@pytest.mark.parametrize("task", ["sr", "denoise"])
def test_augment_keeps_pairs_aligned(task):
    plain = restoration_proxy(task, "train", num_images=2, size=16, augment=False)
    aug = restoration_proxy(task, "train", num_images=2, size=16, augment=True)
    seen = set()
    for _ in range(40):
        for i in range(2):
            d0, c0 = plain[i]
            d, c = aug[i]
            # the same symmetry of the square maps both images
            ops = [(h, v, t) for h in (0, 1) for v in (0, 1) for t in (0, 1)]
            found = [op for op in ops if torch.equal(_sym(d0, *op), d) and torch.equal(_sym(c0, *op), c)]
            assert found
            seen.add(found[0])
    assert len(seen) > 1
    assert all(t == 0 for _, _, t in seen) == (task == "denoise")  # transposes for SR only


def test_augment_pair_matches_dataset_draws():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = torch.rand(3, 10, 12, generator=g1), torch.rand(3, 10, 12, generator=g2)
    x1, y1 = augment_pair(a, 1 - a, (6, 5), generator=g1)
    x2, y2 = augment_pair(b, 1 - b, (6, 5), generator=g2)
    assert torch.equal(x1, x2) and torch.equal(y1, 1 - x1) and x1.shape in ((3, 6, 5), (3, 5, 6))


def test_invalid_arguments_name_the_argument():
    cases = [
        (dict(task="deblur"), ArgumentValueError, "task"),
        (dict(split="val"), ArgumentValueError, "split"),
        (dict(num_images=0), ArgumentValueError, "num_images"),
        (dict(num_images=2.0), ArgumentTypeError, "num_images"),
        (dict(size=0), ArgumentValueError, "size"),
        (dict(size=15), ArgumentValueError, "size"),  # not a multiple of scale 2
        (dict(size=400), ArgumentValueError, "size"),  # does not fit the test photographs
        (dict(scale=0), ArgumentValueError, "scale"),
        (dict(seed=-1), ArgumentValueError, "seed"),
        (dict(augment="yes"), ArgumentTypeError, "augment"),
        (dict(sigma=(2.0, 1.0)), ArgumentValueError, "sigma"),
        (dict(sigma=(-1.0, 1.0)), ArgumentValueError, "sigma"),
        (dict(noise=0.1), ArgumentTypeError, "noise"),
        (dict(gain=(0.01, 0.02)), ArgumentTypeError, "gain"),  # a denoising argument for SR
        (dict(task="denoise", gain=(0.0, 0.02)), ArgumentValueError, "gain"),
        (dict(task="denoise", read=(0.0, float("nan"))), ArgumentValueError, "read"),
    ]
    for kw, error, name in cases:
        args = {"task": "sr", "split": "test", "num_images": 1, "size": 16, **kw}
        with pytest.raises(error, match=name):
            restoration_proxy(**args)
    rng = np.random.default_rng(0)
    with pytest.raises(ArgumentValueError, match="hr"):
        sr_degrade(torch.rand(3, 15, 16, dtype=torch.float64), 2, rng)
    with pytest.raises(ArgumentTypeError, match="rng"):
        denoise_degrade(torch.rand(3, 8, 8, dtype=torch.float64), torch.Generator())
    with pytest.raises(ArgumentValueError, match="sigma_map"):
        nonuniform_blur(torch.rand(3, 8, 8), torch.ones(8, 9))


# ---------------------------------------------------------------------------------------------
# Degradations
# ---------------------------------------------------------------------------------------------

def test_smooth_field_spans_range_and_is_smooth():
    f = smooth_field((40, 60), np.random.default_rng(1), 0.5, 2.0)
    assert f.shape == (40, 60) and f.dtype == torch.float64
    assert abs(float(f.min()) - 0.5) < 1e-12 and abs(float(f.max()) - 2.0) < 1e-12
    assert float(f.diff(dim=0).abs().max()) < 0.2 and float(f.diff(dim=1).abs().max()) < 0.2
    assert torch.equal(f, smooth_field((40, 60), np.random.default_rng(1), 0.5, 2.0))
    assert torch.all(smooth_field((5, 7), np.random.default_rng(2), 0.3, 0.3) == 0.3)


@pytest.mark.parametrize("sigma", [0.7, 1.6])
def test_constant_sigma_is_plain_gaussian_blur(sigma):
    img = torch.rand(3, 30, 34, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = nonuniform_blur(img, torch.full((30, 34), sigma, dtype=torch.float64))
    ref = np.stack([scipy.ndimage.gaussian_filter(c, sigma, mode="mirror") for c in img.numpy()])
    assert np.allclose(out.numpy(), ref, atol=1e-10)
    assert torch.equal(nonuniform_blur(img, torch.zeros(30, 34, dtype=torch.float64)), img)  # σ = 0: identity


def test_blur_varies_per_pixel():
    img = torch.rand(3, 32, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sigma = torch.zeros(32, 64, dtype=torch.float64)
    sigma[:, 32:] = 2.0
    out = nonuniform_blur(img, sigma)
    assert torch.allclose(out[..., :32], img[..., :32], atol=1e-12)  # σ = 0 there: untouched
    ref = np.stack([scipy.ndimage.gaussian_filter(c, 2.0, mode="mirror") for c in img.numpy()])
    assert np.allclose(out[..., 32:].numpy(), ref[..., 32:], atol=1e-10)  # σ = 2: a level, exactly
    assert float(out[..., 32:].std()) < 0.3 * float(img[..., 32:].std())
    # between levels: the variance-matched mixture of the two neighbouring blurs
    mid = nonuniform_blur(img, torch.linspace(0, 2, 64, dtype=torch.float64).expand(32, 64))
    sd = img[..., 8:24, :].diff(dim=-1).std(dim=(0, 1))
    sm = mid[..., 8:24, :].diff(dim=-1).std(dim=(0, 1))
    assert float(sm[:8].mean() / sd[:8].mean()) > 0.7 and float(sm[-8:].mean() / sd[-8:].mean()) < 0.2


def test_sr_degrade_sizes_and_8_bit_lowres():
    hr = load_photo("chelsea")[:, 100:164, 200:264]
    lr = sr_lowres(hr, 4, np.random.default_rng(5))
    assert lr.shape == (3, 16, 16) and torch.equal(torch.round(lr * 255) / 255, lr)
    out = sr_degrade(hr, 4, np.random.default_rng(5))
    assert out.shape == hr.shape and out.dtype == torch.float64
    up = F.interpolate(lr[None], size=(64, 64), mode="bicubic", antialias=True, align_corners=False)[0]
    assert torch.equal(out, torch.round(up.clamp(0, 1) * 255) / 255)  # upsampled from the 8-bit LR
    assert torch.equal(torch.round(out * 255) / 255, out)
    flat = torch.full((3, 24, 24), 100 / 255, dtype=torch.float64)
    assert torch.equal(sr_degrade(flat, 2, np.random.default_rng(0), noise=(0.0, 0.0)), flat)  # constant stays
    # sr blurs: high frequencies are lost
    assert float(out.diff(dim=-1).abs().mean()) < 0.8 * float(hr.diff(dim=-1).abs().mean())


def test_denoise_noise_is_signal_dependent():
    a, b = 0.002, 0.01
    rng = np.random.default_rng(0)
    var = {}
    for level in (0.2, 0.8):
        x = torch.full((3, 128, 128), level, dtype=torch.float64)
        y = denoise_degrade(x, rng, gain=(a, a), read=(b, b))
        assert torch.equal(torch.round(y * 255) / 255, y)  # 8-bit values
        assert abs(float(y.mean()) - level) < 0.005
        var[level] = float(y.var())
        expected = a * level + b ** 2 + 1 / (12 * 255 ** 2)  # + the 8-bit rounding
        assert abs(var[level] / expected - 1) < 0.1
    assert var[0.8] > 2.5 * var[0.2]
    # with varying fields, pixels of the same intensity get noise of different strength
    y = denoise_degrade(torch.full((3, 96, 96), 0.5, dtype=torch.float64), np.random.default_rng(1),
                        gain=(0.001, 0.03), read=(0.0, 0.0))
    sd = (y - 0.5).pow(2).mean(0).unfold(0, 16, 16).unfold(1, 16, 16).mean((-1, -2)).sqrt()
    assert float(sd.max() / sd.min()) > 2
