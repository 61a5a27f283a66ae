"""Crowd-counting data (§4.2, Table 3) on fixtures in the real ShanghaiTech A / UCF-QNRF file formats."""
import math

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torch.utils.data import DataLoader

from acda.data import DatasetLayoutError
from acda.data.crowd import (
    SHANGHAITECH_A_LAYOUT,
    UCF_QNRF_LAYOUT,
    CrowdDataset,
    density_map,
    gaussian_kernel1d,
    pad_to_multiple,
    read_qnrf_points,
    read_shanghaitech_points,
    scaled_size,
    shanghaitech_a,
    sum_pool,
    ucf_qnrf,
)
from acda.data.imagenet import ImageFileError
from tests.replicas import qnrf_mat, shanghaitech_mat


def _jpeg(path, w, h, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode == "L" else (h, w, 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path, quality=95)


# points near every border and corner, plus points outside the image (dropped)
SHT_POINTS = {
    1: ([[0.2, 0.3], [63.9, 47.9], [0.0, 47.5], [63.5, 0.0], [30.0, 20.0], [31.2, 20.7]],  # 64×48, all inside
        [[-0.5, 10.0], [64.0, 10.0], [10.0, 48.0], [10.0, -3.0]]),                          # outside
    2: ([[5.0, 5.0], [39.9, 29.9]], []),     # 40×30 greyscale
    10: ([], [[100.0, 100.0]]),              # 24×16, nothing inside
}
SHT_SIZES = {1: (64, 48), 2: (40, 30), 10: (24, 16)}


@pytest.fixture
def sht_root(tmp_path):
    for split in ("train_data", "test_data"):
        images, gt = tmp_path / "part_A_final" / split / "images", tmp_path / "part_A_final" / split / "ground_truth"
        images.mkdir(parents=True)
        gt.mkdir()
        for n, (inside, outside) in SHT_POINTS.items():
            _jpeg(images / f"IMG_{n}.jpg", *SHT_SIZES[n], mode="L" if n == 2 else "RGB", seed=n)
            shanghaitech_mat(gt / f"GT_IMG_{n}.mat", inside + outside)
    return tmp_path


@pytest.fixture
def qnrf_root(tmp_path):
    train = tmp_path / "UCF-QNRF_ECCV18" / "Train"
    train.mkdir(parents=True)
    (tmp_path / "UCF-QNRF_ECCV18" / "Test").mkdir()
    _jpeg(train / "img_0001.jpg", 2100, 40, seed=1)  # long side > 2048: resized to 2048×39
    qnrf_mat(train / "img_0001_ann.mat", [[0.0, 0.0], [2099.9, 39.9], [1050.0, 20.0], [2100.0, 5.0]])
    _jpeg(train / "img_0002.jpg", 50, 30, seed=2)    # small: never upscaled
    qnrf_mat(train / "img_0002_ann.mat", [[10.0, 10.0], [49.5, 29.5], [-1.0, 3.0]])
    return tmp_path


# ------------------------------------------------------------------------------------------------
# Annotation files
# ------------------------------------------------------------------------------------------------

def test_shanghaitech_mat_fixture_has_the_real_nesting(tmp_path):
    pts = [[1.5, 2.25], [3.0, 4.0]]
    shanghaitech_mat(tmp_path / "GT_IMG_1.mat", pts)
    mat = scipy.io.loadmat(tmp_path / "GT_IMG_1.mat")
    assert mat["image_info"].shape == (1, 1) and mat["image_info"].dtype == object
    assert mat["image_info"][0, 0].dtype.names == ("location", "number")
    np.testing.assert_array_equal(mat["image_info"][0, 0][0, 0][0], pts)
    np.testing.assert_array_equal(read_shanghaitech_points(tmp_path / "GT_IMG_1.mat"), pts)
    qnrf_mat(tmp_path / "a_ann.mat", pts)
    np.testing.assert_array_equal(read_qnrf_points(tmp_path / "a_ann.mat"), pts)
    shanghaitech_mat(tmp_path / "GT_IMG_2.mat", [])  # an image without people: (0, 2)
    assert read_shanghaitech_points(tmp_path / "GT_IMG_2.mat").shape == (0, 2)


# ------------------------------------------------------------------------------------------------
# Density maps
# ------------------------------------------------------------------------------------------------

def test_density_sums_to_the_count_inside_including_border_points():
    rng = np.random.default_rng(0)
    h, w = 37, 53
    pts = np.concatenate([rng.uniform(0, [w, h], (40, 2)),
                          [[0, 0], [w - 0.01, h - 0.01], [0, h - 0.5], [w - 0.5, 0], [0.5, 18.0]],  # corners, edge
                          [[-0.01, 5], [w, 5], [5, h], [5, -2], [-3, -3]]])  # outside: dropped
    for sigma, radius in [(4.0, None), (4.0, 7), (1.5, 2), (10.0, None)]:  # incl. kernels larger than the image
        d = density_map(pts, (h, w), sigma, radius)
        assert d.shape == (h, w) and d.dtype == torch.float32 and (d >= 0).all()
        assert d.double().sum().item() == pytest.approx(45, rel=1e-4)
    assert density_map(np.zeros((0, 2)), (5, 6)).abs().sum() == 0
    assert density_map(torch.tensor([[-1.0, 2.0]]), (5, 6)).abs().sum() == 0


def test_density_kernel_is_the_fixed_gaussian_on_the_points_pixel():
    g = gaussian_kernel1d(4.0)
    assert len(g) == 25 and g.sum() == pytest.approx(1.0) and g.argmax() == 12  # radius ⌈3σ⌉ = 12
    assert len(gaussian_kernel1d(4.0, 7)) == 15
    d = density_map([[20.7, 30.2]], (64, 48)).double()  # pixel (row 30, col 20), 12 px from every border
    expected = torch.zeros(64, 48, dtype=torch.float64)
    expected[18:43, 8:33] = torch.from_numpy(np.outer(g, g))
    torch.testing.assert_close(d, expected, atol=1e-7, rtol=1e-5)
    # cut by the corner: the part inside is the same Gaussian, rescaled to mass 1
    c = density_map([[0.5, 0.5]], (64, 48)).double()
    assert c.sum().item() == pytest.approx(1.0, rel=1e-6)
    torch.testing.assert_close(c[:13, :13] / c[0, 0], expected[30:43, 20:33] / expected[30, 20])


def test_density_window_is_the_same_map_cropped():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-2, [92, 72], (60, 2))
    full = density_map(pts, (70, 90))
    for window in [(0, 0, 70, 90), (5, 7, 20, 30), (50, 60, 20, 30), (0, 89, 70, 1)]:
        top, left, wh, ww = window
        torch.testing.assert_close(density_map(pts, (70, 90), window=window), full[top:top + wh, left:left + ww])
    with pytest.raises(ValueError, match="window"):
        density_map(pts, (70, 90), window=(60, 0, 20, 10))


def test_sum_pool_preserves_the_count_and_pads_to_the_stride():
    d = density_map(np.random.default_rng(2).uniform(0, [45, 37], (30, 2)), (37, 45))
    for s in (1, 2, 4, 8, 16):
        p = sum_pool(d[None], s)
        assert p.shape == (1, math.ceil(37 / s), math.ceil(45 / s))
        assert p.double().sum().item() == pytest.approx(d.double().sum().item(), rel=1e-6)
    x, pad = pad_to_multiple(torch.ones(3, 37, 45), 16)
    assert x.shape == (3, 48, 48) and pad == (11, 3) and x.sum() == 3 * 37 * 45
    blocks = torch.arange(16.0).reshape(1, 4, 4)
    assert sum_pool(blocks, 2).tolist() == [[[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]]


# ------------------------------------------------------------------------------------------------
# ShanghaiTech Part A
# ------------------------------------------------------------------------------------------------

def test_shanghaitech_whole_image_items(sht_root):
    ds = shanghaitech_a(sht_root, "test", density_stride=4, pad_to=16, normalize=False)
    assert not ds.augment and len(ds) == 3
    assert [p.name for p, _ in ds.samples] == ["IMG_1.jpg", "IMG_2.jpg", "IMG_10.jpg"]  # natural order
    assert [a.name for _, a in ds.samples] == ["GT_IMG_1.mat", "GT_IMG_2.mat", "GT_IMG_10.mat"]
    assert ds.counts.tolist() == [6, 2, 0]
    for i, n in enumerate(SHT_POINTS):
        w, h = SHT_SIZES[n]
        image, density = ds[i]
        assert ds.image_size(i) == (h, w) and ds.count(i) == len(SHT_POINTS[n][0])
        np.testing.assert_array_equal(ds.points(i).numpy(), np.array(SHT_POINTS[n][0]).reshape(-1, 2))
        ph, pw = ds.eval_padding(i)
        assert (h + ph) % 16 == 0 and (w + pw) % 16 == 0 and ph < 16 and pw < 16
        assert image.shape == (3, h + ph, w + pw) and image.dtype == torch.float32
        assert density.shape == (1, (h + ph) // 4, (w + pw) // 4) and density.dtype == torch.float32
        assert density.double().sum().item() == pytest.approx(ds.count(i), rel=1e-4, abs=1e-6)
        assert 0 <= image.min() and image.max() <= 1
        assert image[:, h:].abs().sum() == 0 and image[:, :, w:].abs().sum() == 0  # zero padding
        reference = np.asarray(Image.open(ds.samples[i][0]).convert("RGB"), dtype=np.float32) / 255
        np.testing.assert_allclose(image[:, :h, :w].permute(1, 2, 0).numpy(), reference, atol=1e-6)
    grey = ds[1][0]  # greyscale JPEG → 3 equal channels
    assert Image.open(ds.samples[1][0]).mode == "L"
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_shanghaitech_root_may_be_part_A_final_and_normalisation(sht_root):
    a = shanghaitech_a(sht_root, "test")
    b = shanghaitech_a(sht_root / "part_A_final", "test")
    assert a.samples == b.samples and a.fingerprint() == b.fingerprint()
    assert shanghaitech_a(sht_root, "train").augment and not shanghaitech_a(sht_root, "train", augment=False).augment
    raw = shanghaitech_a(sht_root, "test", normalize=False)[0][0]
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(a[0][0], (raw - mean) / std)
    assert a.fingerprint() != shanghaitech_a(sht_root, "test", sigma=3.0).fingerprint()
    assert str(sht_root) not in a.fingerprint()  # paths relative to the root: the data may move


# ------------------------------------------------------------------------------------------------
# UCF-QNRF: the resize rule
# ------------------------------------------------------------------------------------------------

def test_scaled_size_rule():
    assert scaled_size((40, 2100), 2048) == (39, 2048)       # round(40 · 2048/2100) = round(39.01)
    assert scaled_size((3000, 1000), 2048) == (2048, 683)    # portrait: the long side is H
    assert scaled_size((2048, 100), 2048) == (2048, 100)     # fits: unchanged
    assert scaled_size((30, 50), 2048) == (30, 50)           # never upscaled
    assert scaled_size((5000, 5000), None) == (5000, 5000)


def test_qnrf_resizes_long_images_and_rescales_points(qnrf_root):
    ds = ucf_qnrf(qnrf_root, "train", augment=False, normalize=False)
    assert ds.max_size == 2048 and [p.name for p, _ in ds.samples] == ["img_0001.jpg", "img_0002.jpg"]
    assert ds.image_size(0) == (39, 2048) and ds.image_size(1) == (30, 50)
    sx, sy = 2048 / 2100, 39 / 40
    np.testing.assert_allclose(ds.points(0).numpy(), [[0, 0], [2099.9 * sx, 39.9 * sy], [1050 * sx, 20 * sy]])
    np.testing.assert_array_equal(ds.points(1).numpy(), [[10, 10], [49.5, 29.5]])  # unchanged, outside dropped
    assert ds.counts.tolist() == [3, 2]
    image, density = ds[0]
    assert image.shape == (3, 39, 2048) and density.shape == (1, 39, 2048)
    assert density.double().sum().item() == pytest.approx(3, rel=1e-4)
    reference = np.asarray(Image.open(ds.samples[0][0]).convert("RGB").resize((2048, 39), Image.BILINEAR))
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), reference / 255, atol=1e-6)
    full = ucf_qnrf(qnrf_root, "train", max_size=None)
    assert full.image_size(0) == (40, 2100) and full.counts.tolist() == [3, 2]  # 2100.0 is outside [0, 2100)
    assert ucf_qnrf(qnrf_root / "UCF-QNRF_ECCV18").samples == ds.samples


# ------------------------------------------------------------------------------------------------
# Training crops and flips
# ------------------------------------------------------------------------------------------------

def _locate(crop, full):
    """(top, left, flipped) where the (unpadded) crop occurs in the full image, found by search."""
    h, w = crop.shape[-2:]
    for flipped in (False, True):
        c = crop.flip(-1) if flipped else crop
        for top in range(full.shape[-2] - h + 1):
            for left in range(full.shape[-1] - w + 1):
                if torch.equal(full[:, top:top + h, left:left + w], c):
                    return top, left, flipped
    raise AssertionError("crop not found in the image")


def test_random_crops_and_flips_keep_image_and_density_aligned(sht_root):
    ds = shanghaitech_a(sht_root, "train", crop_size=(16, 24), normalize=False)  # image 0 is 48×64
    full_image, full_density = ds.load_image(0), ds.density(0)
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        image, density = ds[0]
        assert image.shape == (3, 16, 24) and density.shape == (1, 16, 24)
        top, left, flipped = _locate(image, full_image)
        seen.add(flipped)
        window = full_density[top:top + 16, left:left + 24]
        torch.testing.assert_close(density[0], window.flip(-1) if flipped else window)
    assert seen == {False, True}


def test_a_single_point_moves_with_the_flip(tmp_path):
    split = tmp_path / "UCF-QNRF_ECCV18" / "Train"
    split.mkdir(parents=True)
    _jpeg(split / "img_0001.jpg", 32, 32, seed=3)
    qnrf_mat(split / "img_0001_ann.mat", [[6.5, 12.5]])  # pixel (row 12, col 6)
    ds = ucf_qnrf(tmp_path, "train", crop_size=32, normalize=False, sigma=1.0)  # crop = whole image
    full = ds.load_image(0)
    columns = set()
    for seed in range(8):
        torch.manual_seed(seed)
        image, density = ds[0]
        row, col = divmod(int(density.argmax()), 32)
        assert row == 12 and col in (6, 25)
        assert torch.equal(image, full.flip(-1) if col == 25 else full)
        columns.add(col)
    assert columns == {6, 25}


def test_images_smaller_than_the_crop_are_padded(sht_root):
    ds = shanghaitech_a(sht_root, "train", crop_size=64, density_stride=8, normalize=False)
    batch = next(iter(DataLoader(ds, batch_size=3)))  # fixed-size crops: the default collation stacks them
    assert batch[0].shape == (3, 3, 64, 64) and batch[1].shape == (3, 1, 8, 8)
    torch.manual_seed(0)
    image, density = ds[1]  # 30×40 grey image in a 64×64 crop: all of it, and all its points
    assert density.double().sum().item() == pytest.approx(2, rel=1e-4)
    rows, cols = image.abs().sum(0).nonzero().unbind(1)
    assert rows.max() - rows.min() < 30 and cols.max() - cols.min() < 40
    with pytest.raises(ValueError, match="crop_size"):
        shanghaitech_a(sht_root, "train", crop_size=100, pad_to=16)
    with pytest.raises(ValueError, match="pad_to"):
        shanghaitech_a(sht_root, "train", density_stride=8, pad_to=12)
    with pytest.raises(ValueError, match="split"):
        shanghaitech_a(sht_root, "val")


# ------------------------------------------------------------------------------------------------
# Errors name what is wrong
# ------------------------------------------------------------------------------------------------

def _raises(exc, *fragments):
    def check(fn, *args, **kwargs):
        with pytest.raises(exc) as info:
            fn(*args, **kwargs)
        for f in fragments:
            assert str(f) in str(info.value), (f, str(info.value))
        return info.value
    return check


def test_missing_or_malformed_roots_name_the_layout(tmp_path, sht_root):
    layout = _raises(DatasetLayoutError, "Expected layout", "part_A_final/{train_data,test_data}/images/IMG_<n>.jpg")
    layout(shanghaitech_a, tmp_path / "nowhere")
    e = layout(shanghaitech_a, sht_root / "part_A_final" / "test_data")  # a folder, but not the layout
    assert "part_A_final" in e.problem
    (sht_root / "part_A_final" / "test_data" / "ground_truth").rename(sht_root / "gt")
    _raises(DatasetLayoutError, "ground_truth", "Expected layout")(shanghaitech_a, sht_root, "test")
    qnrf = _raises(DatasetLayoutError, "UCF-QNRF_ECCV18/{Train,Test}/img_<nnnn>_ann.mat")
    qnrf(ucf_qnrf, tmp_path / "nowhere")
    qnrf(ucf_qnrf, sht_root)
    (tmp_path / "UCF-QNRF_ECCV18" / "Train").mkdir(parents=True)
    qnrf(ucf_qnrf, tmp_path, "test")                   # no Test folder
    _raises(DatasetLayoutError, "has no .jpg images")(ucf_qnrf, tmp_path, "train")
    assert "annPoints" in UCF_QNRF_LAYOUT and "image_info" in SHANGHAITECH_A_LAYOUT


def test_unpaired_files_are_named(sht_root, qnrf_root):
    images = sht_root / "part_A_final" / "train_data" / "images"
    gt = sht_root / "part_A_final" / "train_data" / "ground_truth"
    (gt / "GT_IMG_2.mat").unlink()
    _raises(DatasetLayoutError, str(images / "IMG_2.jpg"), str(gt / "GT_IMG_2.mat"))(shanghaitech_a, sht_root)
    shanghaitech_mat(gt / "GT_IMG_2.mat", [[1, 1]])
    shanghaitech_mat(gt / "GT_IMG_7.mat", [[1, 1]])
    _raises(DatasetLayoutError, str(gt / "GT_IMG_7.mat"), str(images / "IMG_7.jpg"))(shanghaitech_a, sht_root)
    train = qnrf_root / "UCF-QNRF_ECCV18" / "Train"
    qnrf_mat(train / "img_0009_ann.mat", [[1, 1]])
    _raises(DatasetLayoutError, str(train / "img_0009_ann.mat"), str(train / "img_0009.jpg"))(ucf_qnrf, qnrf_root)
    (train / "img_0009_ann.mat").rename(train / "img_0009.jpg.bak")
    (train / "img_0002_ann.mat").unlink()
    _raises(DatasetLayoutError, str(train / "img_0002.jpg"), str(train / "img_0002_ann.mat"))(ucf_qnrf, qnrf_root)


def test_corrupt_or_malformed_files_are_named(sht_root, qnrf_root):
    gt = sht_root / "part_A_final" / "test_data" / "ground_truth"
    images = sht_root / "part_A_final" / "test_data" / "images"
    (gt / "GT_IMG_2.mat").write_bytes(b"MATLAB? no, garbage" * 20)
    _raises(DatasetLayoutError, str(gt / "GT_IMG_2.mat"), "Expected layout")(shanghaitech_a, sht_root, "test")
    scipy.io.savemat(gt / "GT_IMG_2.mat", {"points": np.zeros((3, 2))})  # wrong variable
    _raises(DatasetLayoutError, str(gt / "GT_IMG_2.mat"), "image_info")(shanghaitech_a, sht_root, "test")
    shanghaitech_mat(gt / "GT_IMG_2.mat", [[1.0, 2.0, 3.0]])
    _raises(DatasetLayoutError, str(gt / "GT_IMG_2.mat"), "(N, 2)")(shanghaitech_a, sht_root, "test")
    shanghaitech_mat(gt / "GT_IMG_2.mat", [[1.0, float("nan")]])
    _raises(DatasetLayoutError, str(gt / "GT_IMG_2.mat"), "non-finite")(shanghaitech_a, sht_root, "test")
    shanghaitech_mat(gt / "GT_IMG_2.mat", [[1.0, 2.0]])
    (images / "IMG_10.jpg").write_bytes(b"not a jpeg")  # unreadable header: at construction
    e = _raises(ImageFileError, str(images / "IMG_10.jpg"))(shanghaitech_a, sht_root, "test")
    assert e.path == str(images / "IMG_10.jpg")
    _jpeg(images / "IMG_10.jpg", 24, 16)
    data = (images / "IMG_1.jpg").read_bytes()
    (images / "IMG_1.jpg").write_bytes(data[: len(data) // 2])  # truncated: fails when decoded
    ds = shanghaitech_a(sht_root, "test")
    _raises(ImageFileError, str(images / "IMG_1.jpg"))(ds.__getitem__, 0)
    train = qnrf_root / "UCF-QNRF_ECCV18" / "Train"
    scipy.io.savemat(train / "img_0002_ann.mat", {"points": np.zeros((3, 2))})
    _raises(DatasetLayoutError, str(train / "img_0002_ann.mat"), "annPoints")(ucf_qnrf, qnrf_root)


def test_dataset_arguments_are_checked(sht_root):
    with pytest.raises(ValueError, match="sigma"):
        shanghaitech_a(sht_root, "test", sigma=0)
    with pytest.raises(ValueError, match="radius"):
        shanghaitech_a(sht_root, "test", radius=-1)
    with pytest.raises(ValueError, match="density_stride"):
        CrowdDataset([], read_qnrf_points, density_stride=0)
    assert len(CrowdDataset([], read_qnrf_points)) == 0


def test_complex_annotation_points_are_refused(tmp_path):
    import scipy.io

    from acda.data import DatasetLayoutError
    from acda.data.crowd import read_qnrf_points

    path = tmp_path / "img_0001_ann.mat"
    scipy.io.savemat(path, {"annPoints": np.array([[1.0 + 2j, 3.0], [4.0, 5.0]])})
    with pytest.raises(DatasetLayoutError, match=r"img_0001_ann\.mat.*complex"):
        read_qnrf_points(path)


@pytest.mark.parametrize("part", ["A", "B"])
def test_shanghaitech_parts_load_as_released_and_warn_on_a_partial_release(tmp_path, part):
    from acda.data.crowd import RELEASE_COUNTS, shanghaitech, shanghaitech_b
    from tests.replicas import shanghaitech_release

    root = shanghaitech_release(tmp_path, part)
    documented = RELEASE_COUNTS[f"ShanghaiTech Part {part}"]["test"]
    with pytest.warns(UserWarning, match=rf"ShanghaiTech Part {part}: .* holds 2 images; the release has {documented}"):
        ds = shanghaitech(root, part, "test", normalize=False)
    assert len(ds) == 2 and [ds.count(i) for i in range(2)] == [2, 3]
    image, density = ds[1]
    assert image.shape == (3, 48, 64) and density.sum().item() == pytest.approx(3, abs=1e-4)
    if part == "B":
        with pytest.warns(UserWarning):
            assert len(shanghaitech_b(root / "part_B_final", "train")) == 2  # the part folder itself as root
    with pytest.raises(DatasetLayoutError, match=rf"part_{'B' if part == 'A' else 'A'}_final"):
        shanghaitech(root, "B" if part == "A" else "A", "test")
    with pytest.raises(ValueError, match="part"):
        shanghaitech(root, "C", "test")
