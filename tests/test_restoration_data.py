"""Restoration data (RealSR versions 1–3, SIDD sRGB) on replicas of the releases' file formats."""
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torch.utils.data import DataLoader

from acda.data import DatasetLayoutError
from acda.data.imagenet import ImageFileError
from acda.data.resize import imresize_bicubic
from acda.data.restoration import (
    REALSR_LAYOUT,
    SIDD_LAYOUT,
    PairedImageDataset,
    SIDDValidationBlocks,
    read_sidd_blocks,
    realsr,
    sidd,
)
from tests.replicas import realsr_release


def _coords(h, w, seed):
    """uint8 (h, w, 3) image whose R/G channels are the row/column (so a crop's position is readable)."""
    rng = np.random.default_rng(seed)
    a = np.empty((h, w, 3), dtype=np.uint8)
    a[..., 0] = np.arange(h)[:, None]
    a[..., 1] = np.arange(w)[None, :]
    a[..., 2] = rng.integers(0, 256, (h, w))
    return a


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)  # by suffix: .png / .PNG → PNG


# RealSR fixture: camera → (name, H, W) per image; LR = 255 - HR (so alignment is checkable pixel-wise)
REALSR_IMAGES = {"Canon": [("Canon_001", 20, 24), ("Canon_002", 18, 18), ("Canon_010", 16, 22)],
                 "Nikon": [("Nikon_003", 17, 21)]}


@pytest.fixture
def realsr_root(tmp_path):
    root = tmp_path / "RealSR(V3)"
    for camera, images in REALSR_IMAGES.items():
        for split in ("Train", "Test"):
            for scale in (2, 3, 4):
                for k, (name, h, w) in enumerate(images):
                    hr = _coords(h, w, seed=100 * scale + 10 * k + len(camera + split))
                    folder = root / camera / split / str(scale)
                    _png(folder / f"{name}_HR.png", hr)
                    _png(folder / f"{name}_LR{scale}.png", 255 - hr)
    return root


def _u8(x):
    return torch.round(x * 255).to(torch.uint8)


def _dihedral_inverses(x):
    """The 8 candidates for undoing hflip/vflip/transpose."""
    out = []
    for t in (False, True):
        y = x.transpose(-1, -2) if t else x
        for v in (False, True):
            for hf in (False, True):
                z = y.flip(-2) if v else y
                out.append(z.flip(-1) if hf else z)
    return out


def _locate(crop_hr, full_hr):
    """(top, left) of the window of ``full_hr`` that ``crop_hr`` is (up to a flip/transpose), else None."""
    for cand in _dihedral_inverses(_u8(crop_hr)):
        top, left = int(cand[0, 0, 0]), int(cand[1, 0, 0])
        ch, cw = cand.shape[-2:]
        window = _u8(full_hr)[:, top:top + ch, left:left + cw]
        if window.shape == cand.shape and torch.equal(window, cand):
            return top, left
    return None


# ---------------------------------------------------------------------------------------------
# RealSR
# ---------------------------------------------------------------------------------------------

def test_realsr_test_split_whole_images_paired(realsr_root):
    ds = realsr(realsr_root, split="test", scale=3)
    assert len(ds) == 4 and not ds.augment
    names = [hr.name for _, hr in ds.pairs]
    assert names == ["Canon_001_HR.png", "Canon_002_HR.png", "Canon_010_HR.png", "Nikon_003_HR.png"]
    assert [lr.name for lr, _ in ds.pairs] == [n.replace("_HR", "_LR3") for n in names]
    sizes = [(h // 4 * 4, w // 4 * 4) for imgs in REALSR_IMAGES.values() for _, h, w in imgs]  # Test.m's modcrop 4
    assert ds.upsample == 1  # LR at the HR size: versions 1 and 2
    for i, (lr, hr) in enumerate(ds):
        assert lr.dtype == hr.dtype == torch.float32
        assert lr.shape == hr.shape == (3, *sizes[i])
        assert 0 <= float(hr.min()) and float(hr.max()) <= 1
        torch.testing.assert_close(lr, 1 - hr, atol=1e-6, rtol=0)
        assert torch.equal(_u8(hr)[0], torch.arange(sizes[i][0], dtype=torch.uint8)[:, None].expand(sizes[i]))


def test_realsr_cameras_and_scale_folders(realsr_root):
    ds = realsr(realsr_root, split="train", scale=4, cameras=("Nikon",))
    assert len(ds) == 1 and ds.pairs[0][0].parent == realsr_root / "Nikon" / "Train" / "4"
    assert ds.pairs[0][0].name == "Nikon_003_LR4.png" and ds.augment
    assert len(realsr(realsr_root, scale=2, cameras="Canon")) == 3
    with pytest.raises(ValueError, match="scale"):
        realsr(realsr_root, scale=5)
    with pytest.raises(ValueError, match="cameras"):
        realsr(realsr_root, cameras=("Sony",))
    with pytest.raises(ValueError, match="split"):
        realsr(realsr_root, split="val")


def test_realsr_training_crops_aligned_and_deterministic(realsr_root):
    ds = realsr(realsr_root, split="train", scale=2, crop_size=8, generator=torch.Generator().manual_seed(0))
    full = realsr(realsr_root, split="train", scale=2, augment=False)
    positions = set()
    for _ in range(6):
        for i in range(len(ds)):
            lr, hr = ds[i]
            assert lr.shape == hr.shape == (3, 8, 8) and lr.dtype == torch.float32
            torch.testing.assert_close(lr, 1 - hr, atol=1e-6, rtol=0)   # same crop + transform on both
            pos = _locate(hr, full[i][1])
            assert pos is not None
            positions.add((i, pos))
    assert len(positions) > len(ds)  # crops vary
    # determinism: same seed, same items; global generator when none is given
    a = realsr(realsr_root, scale=2, crop_size=8, generator=torch.Generator().manual_seed(5))
    b = realsr(realsr_root, scale=2, crop_size=8, generator=torch.Generator().manual_seed(5))
    for i in range(len(a)):
        for x, y in zip(a[i], b[i]):
            assert torch.equal(x, y)
    c = realsr(realsr_root, scale=2, crop_size=(6, 10))
    torch.manual_seed(3)
    first = [c[i] for i in range(len(c))]
    torch.manual_seed(3)
    second = [c[i] for i in range(len(c))]
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(first, second))
    assert {tuple(x[0].shape) for x in first} <= {(3, 6, 10), (3, 10, 6)}  # rot90 transposes
    loader = DataLoader(realsr(realsr_root, scale=2, crop_size=8), batch_size=2)
    lr, hr = next(iter(loader))
    assert lr.shape == hr.shape == (2, 3, 8, 8)


def test_realsr_all_eight_symmetries_appear(realsr_root):
    ds = realsr(realsr_root, scale=2, cameras="Nikon", crop_size=15, generator=torch.Generator().manual_seed(1))
    full = realsr(realsr_root, scale=2, cameras="Nikon", augment=False)[0][1]
    seen = set()
    for _ in range(80):
        _, hr = ds[0]
        for k, cand in enumerate(_dihedral_inverses(_u8(hr))):
            top, left = int(cand[0, 0, 0]), int(cand[1, 0, 0])
            if torch.equal(_u8(full)[:, top:top + 15, left:left + 15], cand):
                seen.add(k)
                break
    assert seen == set(range(8))
    no_rot = realsr(realsr_root, scale=2, cameras="Nikon", crop_size=15, rot90=False,
                    generator=torch.Generator().manual_seed(1))
    for _ in range(20):
        _, hr = no_rot[0]
        cand = _u8(hr)
        # no transpose: row index varies along H (possibly flipped)
        assert torch.all(cand[0, :, 0].int().diff().abs() == 1) or hr.shape[-1] == 1


def test_realsr_crop_none_trains_on_whole_images(realsr_root):
    ds = realsr(realsr_root, scale=2, cameras="Nikon", generator=torch.Generator().manual_seed(0))
    lr, hr = ds[0]
    assert set(hr.shape[1:]) == {16, 20}
    torch.testing.assert_close(lr, 1 - hr, atol=1e-6, rtol=0)


def test_realsr_crop_larger_than_image(realsr_root):
    with pytest.raises(ValueError, match="Canon_002_LR2.png"):
        realsr(realsr_root, scale=2, crop_size=17)
    realsr(realsr_root, split="test", scale=2, crop_size=64)  # no crop for evaluation


def test_realsr_layout_errors(realsr_root, tmp_path):
    with pytest.raises(DatasetLayoutError) as e:
        realsr(tmp_path / "nope")
    assert "does not exist" in str(e.value) and REALSR_LAYOUT in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="Canon"):
        realsr(tmp_path / "empty")
    folder = realsr_root / "Canon" / "Train" / "3"
    (folder / "Canon_002_HR.png").unlink()
    with pytest.raises(DatasetLayoutError, match="Canon_002_LR3.png' has no HR image"):
        realsr(realsr_root, scale=3)
    folder = realsr_root / "Canon" / "Test" / "3"
    (folder / "Canon_010_LR3.png").unlink()
    with pytest.raises(DatasetLayoutError, match="Canon_010_HR.png' has no LR image"):
        realsr(realsr_root, split="test", scale=3)
    folder = realsr_root / "Nikon" / "Test" / "2"
    _png(folder / "Nikon_007_LR4.png", _coords(4, 4, 0))
    with pytest.raises(DatasetLayoutError, match="Nikon_007_LR4.png' is of scale 4"):
        realsr(realsr_root, split="test", scale=2)


def test_realsr_size_mismatch_names_lr(realsr_root):
    folder = realsr_root / "Canon" / "Train" / "4"
    _png(folder / "Canon_002_LR4.png", _coords(9, 9, 0))  # a V2-style downscaled LR
    with pytest.raises(DatasetLayoutError) as e:
        realsr(realsr_root, scale=4)
    msg = str(e.value)
    assert "Canon_002_LR4.png" in msg and "same size" in msg and REALSR_LAYOUT in msg


def test_realsr_corrupt_png_names_file(realsr_root):
    bad = realsr_root / "Nikon" / "Test" / "4" / "Nikon_003_HR.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ImageFileError, match="Nikon_003_HR.png") as e:
        realsr(realsr_root, split="test", scale=4)
    assert e.value.path == str(bad)
    # truncated: the header reads, decoding fails when the item is loaded
    trunc = realsr_root / "Nikon" / "Test" / "3" / "Nikon_003_LR3.png"
    data = trunc.read_bytes()
    trunc.write_bytes(data[:len(data) // 2])
    ds = realsr(realsr_root, split="test", scale=3, cameras="Nikon")
    with pytest.raises(ImageFileError, match="Nikon_003_LR3.png"):
        ds[0]


# ---------------------------------------------------------------------------------------------
# SIDD
# ---------------------------------------------------------------------------------------------

# SIDD-Medium sRGB as released (its _ReadMe_sRGB.txt): Data/<instance>_<scene>_<phone>_<ISO>_<shutter>_<temperature>_
# <brightness>/ holding <instance>_NOISY_SRGB_<nnn>.PNG and <instance>_GT_SRGB_<nnn>.PNG, nnn = 010 and 011 (here some
# scenes keep one pair); 8-bit RGB PNGs. ``prefixed=False``: a re-packaging without the <instance>_ prefix.
SIDD_SCENES = {"0001_001_S6_00100_00060_3200_L": ("010", "011"), "0002_001_S6_00100_00020_3200_N": ("010",),
               "0010_001_S6_00800_00350_3200_H": ("011",)}


def _sidd_name(scene: str, kind: str, n: str, prefixed: bool = True) -> str:
    return f"{scene[:4]}_{kind}_SRGB_{n}.PNG" if prefixed else f"{kind}_SRGB_{n}.PNG"


def _sidd_tree(root, prefixed: bool = True):
    for k, (scene, numbers) in enumerate(SIDD_SCENES.items()):
        for n in numbers:
            gt = _coords(20 + k, 24, seed=k)
            folder = root / "SIDD_Medium_Srgb" / "Data" / scene
            _png(folder / _sidd_name(scene, "GT", n, prefixed), gt)
            _png(folder / _sidd_name(scene, "NOISY", n, prefixed), 255 - gt)


@pytest.fixture
def sidd_root(tmp_path):
    root = tmp_path / "SIDD"
    _sidd_tree(root)
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    scipy.io.savemat(root / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(root / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": 255 - noisy})
    return root


def test_sidd_pairs_without_the_instance_prefix_and_warns_on_a_partial_release(tmp_path):
    prefixed, bare = tmp_path / "prefixed", tmp_path / "bare"
    _sidd_tree(prefixed)
    _sidd_tree(bare, prefixed=False)
    with pytest.warns(UserWarning, match=r"SIDD \(SIDD_Medium_Srgb.*holds 4 noisy/ground-truth pairs; the release has 320"):
        a = sidd(prefixed, crop_size=None, augment=False)
    with pytest.warns(UserWarning, match="partial download"):
        b = sidd(bare, crop_size=None, augment=False)
    assert [q.name for _, q in b.pairs] == ["GT_SRGB_010.PNG", "GT_SRGB_011.PNG", "GT_SRGB_010.PNG", "GT_SRGB_011.PNG"]
    for i in range(len(a)):
        torch.testing.assert_close(a[i], b[i])


def test_sidd_train_pairs_and_crops(sidd_root):
    ds = sidd(sidd_root, crop_size=8, generator=torch.Generator().manual_seed(0))
    assert isinstance(ds, PairedImageDataset) and ds.augment and not ds.rot90
    assert [(p.parent.name[:4], p.name, q.name) for p, q in ds.pairs] == [
        ("0001", "0001_NOISY_SRGB_010.PNG", "0001_GT_SRGB_010.PNG"),
        ("0001", "0001_NOISY_SRGB_011.PNG", "0001_GT_SRGB_011.PNG"),
        ("0002", "0002_NOISY_SRGB_010.PNG", "0002_GT_SRGB_010.PNG"),
        ("0010", "0010_NOISY_SRGB_011.PNG", "0010_GT_SRGB_011.PNG")]
    full = sidd(sidd_root, crop_size=None, augment=False)
    for i in range(len(ds)):
        noisy, gt = ds[i]
        assert noisy.shape == gt.shape == (3, 8, 8) and noisy.dtype == torch.float32
        torch.testing.assert_close(noisy, 1 - gt, atol=1e-6, rtol=0)
        assert _locate(gt, full[i][1]) is not None
        assert torch.all(_u8(gt)[0, :, 0].int().diff().abs() == 1)  # flips only: rows stay along H
    a = sidd(sidd_root, crop_size=8, generator=torch.Generator().manual_seed(9))
    b = sidd(sidd_root, crop_size=8, generator=torch.Generator().manual_seed(9))
    assert all(torch.equal(a[i][1], b[i][1]) for i in range(len(a)))
    # the root may be SIDD_Medium_Srgb itself
    assert len(sidd(sidd_root / "SIDD_Medium_Srgb", crop_size=8)) == 4


def test_sidd_val_blocks_image_major(sidd_root):
    ds = sidd(sidd_root, split="val")
    assert isinstance(ds, SIDDValidationBlocks) and len(ds) == 6
    noisy = scipy.io.loadmat(sidd_root / "ValidationNoisyBlocksSrgb.mat")["ValidationNoisyBlocksSrgb"]
    for idx in range(6):
        n, g = ds[idx]
        assert n.shape == g.shape == (3, 16, 16) and n.dtype == torch.float32
        i, j = divmod(idx, 3)
        expected = torch.from_numpy(noisy[i, j]).permute(2, 0, 1).float() / 255
        assert torch.equal(n, expected)
        torch.testing.assert_close(g, 1 - n, atol=1e-6, rtol=0)
    assert torch.equal(ds[-1][0], ds[5][0])
    with pytest.raises(IndexError):
        ds[6]
    n, g = next(iter(DataLoader(ds, batch_size=4)))
    assert n.shape == (4, 3, 16, 16)


def test_sidd_val_errors(sidd_root):
    noisy = sidd_root / "ValidationNoisyBlocksSrgb.mat"
    gt = sidd_root / "ValidationGtBlocksSrgb.mat"
    gt.write_bytes(b"garbage, not a MATLAB file" * 10)
    with pytest.raises(DatasetLayoutError, match="ValidationGtBlocksSrgb.mat"):
        sidd(sidd_root, split="val")
    scipy.io.savemat(gt, {"ValidationGtBlocksSrgb": np.zeros((2, 3, 16, 16, 3), dtype=np.float64)})
    with pytest.raises(DatasetLayoutError, match="uint8"):
        sidd(sidd_root, split="val")
    scipy.io.savemat(gt, {"ValidationGtBlocksSrgb": np.zeros((2, 3, 16, 16), dtype=np.uint8)})
    with pytest.raises(DatasetLayoutError, match="ValidationGtBlocksSrgb.mat"):
        sidd(sidd_root, split="val")
    scipy.io.savemat(gt, {"Wrong": np.zeros((2, 3, 16, 16, 3), dtype=np.uint8)})
    with pytest.raises(DatasetLayoutError, match="lacks variable 'ValidationGtBlocksSrgb'"):
        sidd(sidd_root, split="val")
    scipy.io.savemat(gt, {"ValidationGtBlocksSrgb": np.zeros((2, 3, 8, 8, 3), dtype=np.uint8)})
    with pytest.raises(DatasetLayoutError, match="has blocks"):
        sidd(sidd_root, split="val")
    assert read_sidd_blocks(gt, "ValidationGtBlocksSrgb").shape == (2, 3, 8, 8, 3)
    noisy.unlink()
    with pytest.raises(DatasetLayoutError) as e:
        sidd(sidd_root, split="val")
    assert "ValidationNoisyBlocksSrgb.mat" in str(e.value) and SIDD_LAYOUT in str(e.value)


def test_sidd_train_errors(sidd_root, tmp_path):
    with pytest.raises(DatasetLayoutError) as e:
        sidd(tmp_path / "missing")
    assert SIDD_LAYOUT in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="SIDD_Medium_Srgb"):
        sidd(tmp_path / "empty")
    with pytest.raises(ValueError, match="split"):
        sidd(sidd_root, split="test")
    with pytest.raises(ValueError, match="crop_size"):
        sidd(sidd_root, crop_size=21)
    data = sidd_root / "SIDD_Medium_Srgb" / "Data"
    scene = data / "0002_001_S6_00100_00020_3200_N"
    _png(scene / "0002_GT_SRGB_010.PNG", _coords(5, 5, 0))
    with pytest.raises(DatasetLayoutError, match="0002_NOISY_SRGB_010.PNG.*same size"):
        sidd(sidd_root, crop_size=4)
    (scene / "0002_GT_SRGB_010.PNG").unlink()
    with pytest.raises(DatasetLayoutError, match="0002_NOISY_SRGB_010.PNG' has no ground truth: missing "
                                                 ".*0002_GT_SRGB_010.PNG'"):
        sidd(sidd_root)
    (scene / "0002_NOISY_SRGB_010.PNG").unlink()
    (data / "0010_001_S6_00800_00350_3200_H" / "0010_NOISY_SRGB_011.PNG").unlink()
    with pytest.raises(DatasetLayoutError, match="0010_GT_SRGB_011.PNG' has no noisy image: missing "
                                                 ".*0010_NOISY_SRGB_011.PNG'"):
        sidd(sidd_root)
    bad = data / "0001_001_S6_00100_00060_3200_L" / "0001_GT_SRGB_011.PNG"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (data / "0010_001_S6_00800_00350_3200_H" / "0010_GT_SRGB_011.PNG").unlink()
    with pytest.raises(ImageFileError, match="0001_GT_SRGB_011.PNG"):
        sidd(sidd_root, crop_size=4)


def test_16_bit_greyscale_png_is_scaled_not_saturated(tmp_path):
    """PIL's own conversion clips a 16-bit greyscale PNG at 255 (a mid-grey image read as white)."""
    from PIL import Image

    from acda.data.imagenet import load_image

    values = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(load_image(str(path)))
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    np.testing.assert_array_equal(rgb[..., 0], np.round(values / 257.0).astype(np.uint8))
    assert abs(rgb.mean() / 255 - 0.5) < 0.01


@pytest.mark.parametrize("version", [1, 2, 3])
def test_realsr_every_release(tmp_path, version):
    """Versions 1/2 (LR at the HR size) and 3 (LR at HR/s, upscaled with MATLAB's bicubic), both cameras, every
    scale: items of the HR size cropped to LR × s and then to a multiple of 4."""
    root = realsr_release(tmp_path / f"RealSR_V{version}", version)
    for scale in (2, 3, 4):
        ds = realsr(root, split="test", scale=scale)
        assert ds.upsample == (scale if version == 3 else 1) and len(ds) == 3
        for (lr_path, hr_path), (lr, hr) in zip(ds.pairs, ds, strict=True):
            hr_file = _u8_file(hr_path)
            h, w = hr_file.shape[-2:]
            if version == 3:
                h, w = h // scale * scale, w // scale * scale
            h, w = h // 4 * 4, w // 4 * 4
            assert lr.shape == hr.shape == (3, h, w) and lr.dtype == torch.float32
            assert torch.equal(_u8(hr), hr_file[:, :h, :w])
            lr_file = _u8_file(lr_path).double()
            want = lr_file if version < 3 else imresize_bicubic(lr_file, scale).round().clamp(0, 255)
            assert torch.equal(_u8(lr), want[:, :h, :w].to(torch.uint8))


def test_realsr_v3_lr_of_the_wrong_size_names_the_file(tmp_path):
    root = realsr_release(tmp_path / "RealSR_V3", 3)
    bad = root / "Nikon" / "Test" / "3" / "Nikon_001_LR3.png"
    Image.open(bad).resize((5, 5)).save(bad)
    with pytest.raises(DatasetLayoutError, match=r"Nikon_001_LR3.png' is 5×5 .* must be 1/3 of it \(14×12\)"):
        realsr(root, split="test", scale=3)


def _u8_file(path):
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).contiguous()


@pytest.mark.parametrize("release,pairs", [("medium", 4), ("small", 2)])
def test_sidd_medium_and_small_releases(tmp_path, release, pairs):
    """SIDD-Medium (prefixed names, two captures per scene) and SIDD-Small (one unprefixed pair per scene): the
    training pairs match noisy to ground truth of the same scene and number; the count warning names the release."""
    from tests.replicas import sidd_release

    root = sidd_release(tmp_path / release, release)
    folder = {"medium": "SIDD_Medium_Srgb", "small": "SIDD_Small_sRGB_Only"}[release]
    with pytest.warns(UserWarning, match=rf"SIDD \({folder}.*holds {pairs} noisy/ground-truth pairs; the release has"):
        ds = sidd(root, "train", crop_size=16)
    assert len(ds) == pairs
    for noisy, gt in ds.pairs:
        assert noisy.parent == gt.parent and noisy.name.replace("NOISY", "GT") == gt.name
    noisy, gt = ds[0]
    assert noisy.shape == gt.shape == (3, 16, 16)
    val = sidd(root, "val")
    assert len(val) == 6 and val[5][0].shape == (3, 16, 16)
