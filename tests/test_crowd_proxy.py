"""The offline crowd-counting proxy: real LFW faces under a perspective scale gradient on real photographs."""
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from acda.data import CrowdDataset, crowd_proxy
from acda.data.crowd import read_qnrf_points
from acda.data.crowd_proxy import CROWD_BACKGROUNDS, FACE_SPLITS, crowd_proxy_preview
from acda.train.checkpoint import data_fingerprint

SMALL = dict(num_images=12, size=64, scale=(4.0, 14.0), count=(5, 30))


@pytest.fixture(scope="module")
def train():
    return crowd_proxy("train", **SMALL)


@pytest.fixture(scope="module")
def held_out():
    return crowd_proxy("test", **SMALL)


def _same(a, b):
    assert len(a) == len(b)
    for i in range(len(a)):
        assert torch.equal(a.raw_image(i), b.raw_image(i))
        assert torch.equal(a.points(i), b.points(i))
        assert torch.equal(a.sizes(i), b.sizes(i))
        assert torch.equal(a.face_ids(i), b.face_ids(i))
        assert a.background(i) == b.background(i)


def test_pure_function_of_its_arguments(train):
    np_state, torch_state = np.random.get_state()[1].copy(), torch.random.get_rng_state()
    again = crowd_proxy("train", **SMALL)
    assert np.array_equal(np.random.get_state()[1], np_state)  # no global generator at build time
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    _same(train, again)
    for i in range(len(train)):
        torch.manual_seed(i)
        a = train[i]
        torch.manual_seed(i)
        assert all(torch.equal(x, y) for x, y in zip(a, again[i]))
    assert train.fingerprint() == again.fingerprint()
    assert data_fingerprint(train) == data_fingerprint(again)
    # the first k images do not depend on num_images
    _same(crowd_proxy("train", **{**SMALL, "num_images": 5}), _Prefix(train, 5))
    other = crowd_proxy("train", **{**SMALL, "seed": 1})
    assert not torch.equal(other.raw_image(0), train.raw_image(0))
    assert other.fingerprint() != train.fingerprint()
    assert crowd_proxy("train", **SMALL, density_stride=2).fingerprint() != train.fingerprint()


class _Prefix:
    """The first ``n`` items of a proxy dataset, with its accessors."""

    def __init__(self, ds, n):
        self.ds, self.n = ds, n

    def __len__(self):
        return self.n

    def __getattr__(self, name):
        return getattr(self.ds, name)


def test_train_and_test_are_disjoint(train, held_out):
    faces = {s: set(torch.cat([d.face_ids(i) for i in range(len(d))]).tolist())
             for s, d in (("train", train), ("test", held_out))}
    assert faces["train"] <= set(FACE_SPLITS["train"]) and faces["test"] <= set(FACE_SPLITS["test"])
    assert not set(FACE_SPLITS["train"]) & set(FACE_SPLITS["test"])
    assert len(faces["train"]) > 20 and len(faces["test"]) > 10
    for d, side in ((train, "left"), (held_out, "right")):
        for i in range(len(d)):
            b = d.background(i)
            assert b["name"] in CROWD_BACKGROUNDS and (b["height"], b["width"]) == (64, 64)
            assert 0 <= b["top"] <= b["background_height"] - 64
            half = b["background_width"] // 2
            if side == "left":
                assert 0 <= b["left"] and b["left"] + 64 <= half
            else:
                assert half <= b["left"] and b["left"] + 64 <= b["background_width"]
    assert not torch.equal(train.raw_image(0), held_out.raw_image(0))


@pytest.mark.parametrize("stride", [1, 4])
def test_density_sums_to_the_count_and_points_lie_inside(stride):
    ds = crowd_proxy("test", **SMALL, density_stride=stride)
    assert ds.counts.tolist() == [ds.count(i) for i in range(len(ds))]
    assert ds.counts.min() >= 5 and ds.counts.max() <= 30 and len(set(ds.counts.tolist())) > 3
    for i in range(len(ds)):
        image, density = ds[i]
        assert density.sum().item() == pytest.approx(ds.count(i), rel=1e-4)
        p = ds.points(i)
        assert p.shape == (ds.count(i), 2) and p.dtype == torch.float64
        assert ((p >= 0) & (p < 64)).all()
        assert ds.sizes(i).shape == ds.visibility(i).shape == ds.face_ids(i).shape == (ds.count(i),)
        assert ((ds.visibility(i) >= 0) & (ds.visibility(i) <= 1)).all()


def test_perspective_scale_gradient():
    ds = crowd_proxy("train", num_images=30, size=96, seed=3)  # default scale (6, 24), jitter 0.1
    y = torch.cat([ds.points(i)[:, 1] for i in range(len(ds))])
    s = torch.cat([ds.sizes(i) for i in range(len(ds))]).double()
    top, bottom = s[y < 32], s[y >= 64]
    assert len(top) > 50 and len(bottom) > 10
    assert bottom.mean() > top.mean() + 8
    # linear in the row, within the jitter and the rounding of the size and of the corner
    expected = 6 + 18 * y / 96
    assert ((s - 0.5 <= expected * 1.1 + 0.2) & (s + 0.5 >= expected * 0.9 - 0.2)).all()
    # perspective placement: uniform on the ground plane, so more (small) faces at the top
    assert len(top) > 2 * len(bottom)
    flat = crowd_proxy("train", num_images=30, size=96, seed=3, placement="uniform")
    yf = torch.cat([flat.points(i)[:, 1] for i in range(len(flat))])
    assert 0.25 < (yf < 32).double().mean() < 0.42
    const = crowd_proxy("train", num_images=3, size=64, scale=10, scale_jitter=0.0)  # the no-perspective control
    assert all((const.sizes(i) == 10).all() for i in range(3))


def test_items_are_those_of_crowd_dataset(tmp_path, train):
    """The same image and points, written as files and read by ``CrowdDataset``, give the same items."""
    samples = []
    for i in range(3):
        Image.fromarray(train.raw_image(i).permute(1, 2, 0).numpy()).save(tmp_path / f"img_{i}.png")  # lossless
        scipy.io.savemat(tmp_path / f"img_{i}_ann.mat", {"annPoints": train.points(i).numpy()})
        samples.append((tmp_path / f"img_{i}.png", tmp_path / f"img_{i}_ann.mat"))
    for kw in (dict(augment=False, density_stride=4, pad_to=8), dict(augment=True, crop_size=32),
               dict(augment=False, normalize=False, sigma=2.0)):
        proxy = crowd_proxy("train", **{**SMALL, "num_images": 3}, **kw)
        real = CrowdDataset(samples, read_qnrf_points, **kw)
        assert proxy.counts.tolist() == real.counts.tolist()
        for i in range(3):
            assert proxy.image_size(i) == real.image_size(i) and proxy.eval_padding(i) == real.eval_padding(i)
            torch.manual_seed(i)
            a = proxy[i]
            torch.manual_seed(i)
            b = real[i]
            for x, y in zip(a, b):
                assert x.dtype == y.dtype == torch.float32 and x.shape == y.shape
                assert torch.equal(x, y)
    # default augmentation: the train split only, whole-image crops (flips)
    assert train.augment and not crowd_proxy("test", **{**SMALL, "num_images": 1}).augment
    image, density = train[0]
    assert image.shape == (3, 64, 64) and density.shape == (1, 64, 64)


def test_preview_data(train):
    items = crowd_proxy_preview(train, [0, 2])
    assert len(items) == 2 and items[1]["image"].shape == (64, 64, 3) and items[1]["image"].dtype == np.uint8
    assert np.array_equal(items[1]["points"], train.points(2).numpy()) and items[1]["count"] == train.count(2)
    assert len(crowd_proxy_preview(train)) == 6
    with pytest.raises(ValueError, match="index"):
        crowd_proxy_preview(train, [12])


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(split="val"), ValueError, "split"),
    (dict(num_images=-1), ValueError, "num_images"),
    (dict(num_images=2.0), TypeError, "num_images"),
    (dict(size=4), ValueError, "size"),
    (dict(size="big"), TypeError, "size"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(count=(9, 3)), ValueError, "count"),
    (dict(count=(-1, 3)), ValueError, "count"),
    (dict(scale=(0.5, 4)), ValueError, "scale"),
    (dict(scale=(6, 500)), ValueError, "scale"),
    (dict(scale=(6, float("nan"))), TypeError, "scale"),
    (dict(scale=(6, 8, 10)), TypeError, "scale"),
    (dict(scale_jitter=1.0), ValueError, "scale_jitter"),
    (dict(placement="random"), ValueError, "placement"),
    (dict(contrast=(1.4, 0.6)), ValueError, "contrast"),
    (dict(brightness=0.2), TypeError, "brightness"),
    (dict(tint=-0.1), ValueError, "tint"),
    (dict(backgrounds=("astronaut",)), ValueError, "backgrounds"),
    (dict(backgrounds="coffee"), TypeError, "backgrounds"),
    (dict(density_stride=0), ValueError, "density_stride"),
    (dict(pad_to=0), ValueError, "pad_to"),
    (dict(density_stride=4, pad_to=6), ValueError, "pad_to"),
    (dict(sigma=0), ValueError, "sigma"),
])
def test_arguments_are_checked_and_named(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        crowd_proxy(**{"num_images": 1, "size": 32, "scale": (3.0, 8.0), **kwargs})
