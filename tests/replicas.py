"""Tiny copies of public dataset releases in their exact on-disk layout, for the loaders' tests.

CIFAR (https://www.cs.toronto.edu/~kriz/cifar.html, "python version"): ``cifar-10-batches-py/data_batch_1`` … ``_5``
and ``test_batch``, each a protocol-2 pickle of a dict with bytes keys ``b"data"`` (uint8 (N, 3072): the R, G, B
32×32 planes row-major), ``b"labels"`` (list of int), ``b"batch_label"``, ``b"filenames"``; CIFAR-100:
``cifar-100-python/train`` and ``test`` with ``b"fine_labels"`` and ``b"coarse_labels"``.

ShanghaiTech (Zhang et al., CVPR 2016, §5.1; the released archive ShanghaiTech_Crowd_Counting_Dataset):
``part_A_final`` and ``part_B_final``, each ``{train_data,test_data}/images/IMG_<n>.jpg`` (n from 1) and
``ground_truth/GT_IMG_<n>.mat``, a MATLAB v5 file whose ``image_info`` is a 1×1 cell holding a 1×1 struct with
``location`` ((N, 2) x, y in pixels) and ``number``, as MCNN's and CSRNet's preparation scripts read it
(``image_info{1}.location``). Part A: 300 train / 182 test images of varied sizes, some greyscale; Part B: 400 /
316, all 768×1024 RGB (here fewer and smaller). UCF-QNRF (Idrees et al., ECCV 2018):
``UCF-QNRF_ECCV18/{Train,Test}/img_<nnnn>.jpg`` with ``img_<nnnn>_ann.mat`` holding ``annPoints`` ((N, 2) x, y).

ImageNet (ILSVRC-2012): ``train/<wnid>/<wnid>_<n>.JPEG``; the validation archive
(ILSVRC2012_img_val.tar) unpacks flat, ``ILSVRC2012_val_<8 digits>.JPEG``, labelled by the development kit
(ILSVRC2012_devkit_t12.tar.gz: ``data/meta.mat``, a struct array ``synsets`` with fields ILSVRC2012_ID,
WNID, words, gloss, num_children, children, wordnet_height, num_train_images, the 1000 classes being the
leaves (num_children 0) with IDs 1–1000; ``data/ILSVRC2012_validation_ground_truth.txt``, one ID per
image in file order), as torchvision's ``datasets.ImageNet`` parses them; or Kaggle's ImageNet Object
Localization release: ``ILSVRC/Data/CLS-LOC/{train,val}`` and ``LOC_val_solution.csv`` (``ImageId,
PredictionString``, the string's first token the wnid). Many users sort val into class folders
(``valprep.sh``).

SIDD (Abdelhamed et al., CVPR 2018; https://www.eecs.yorku.ca/~kamel/sidd/dataset.php): SIDD-Medium sRGB
(its _ReadMe_sRGB.txt: "320 image pairs ... 160 scene instances, two images from each", folders
``<instance>_<scene>_<phone>_<ISO>_<shutter>_<temperature>_<brightness>``, e.g. 0052_002_S6_01600_01000_5500_N,
files ``0001_NOISY_SRGB_010.PNG`` / ``0001_GT_SRGB_010.PNG`` and ``_011``) under ``SIDD_Medium_Srgb/Data``;
SIDD-Small sRGB (160 pairs, one per scene instance, ``NOISY_SRGB_010.PNG`` / ``GT_SRGB_010.PNG``) under
``SIDD_Small_sRGB_Only/Data``; the validation blocks ``ValidationNoisyBlocksSrgb.mat`` /
``ValidationGtBlocksSrgb.mat`` (MATLAB v5, uint8 (40, 32, 256, 256, 3); here fewer, smaller blocks).

RealSR (Cai et al., ICCV 2019; https://github.com/csjcai/RealSR, README.md):
- cameras ``Canon`` and ``Nikon``, splits ``Train`` and ``Test``, one folder per scale ``2``, ``3``, ``4``:
  ``<Camera>/<Split>/<s>/<Camera>_<nnn>_HR.png`` with ``<Camera>_<nnn>_LR<s>.png`` (8-bit RGB PNG);
- "Version 1: 234 scenes ... (HR have the same resolution as LR)", "Version 2: More than 500 scenes
  ... (HR have the same resolution as LR)", "Version 3: ... (HR and LR have different resolution)":
  LR at HR/s;
- the evaluation (Test/Test.m) pairs files in sorted order (HR, then LR) and crops both to a multiple of 4.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["cifar_batch", "cifar_release", "qnrf_release", "shanghaitech_release", "shanghaitech_mat", "qnrf_mat", "REALSR_SCENES", "IMAGENET_WNIDS", "SIDD_SCENES", "smooth_image", "realsr_release", "imagenet_release",
           "sidd_release"]

SIDD_SCENES = ("0001_001_S6_00100_00060_3200_L", "0052_002_S6_01600_01000_5500_N")
IMAGENET_WNIDS = ("n01440764", "n01443537", "n01484850")  # the first three of the 1000 (sorted) classes
# camera → [(scene number, HR height, HR width)]: sides not multiples of 2, 3 or 4, so every crop rule shows
REALSR_SCENES = {"Canon": [(1, 38, 45), (2, 41, 50)], "Nikon": [(1, 37, 43)]}


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random uint8 (h, w, 3) image (bicubic-enlarged noise): downscaling keeps its content."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def realsr_release(root: str | Path, version: int) -> Path:
    """RealSR version ``version`` (1, 2 or 3) under ``root``: every camera, split and scale. Versions 1/2 store
    LR at the HR size (bicubic down and up again), version 3 at ⌊HR/s⌋ (PIL's bicubic down)."""
    if version not in (1, 2, 3):
        raise ValueError(f"RealSR has versions 1, 2 and 3, got {version!r}")
    root = Path(root)
    for camera, scenes in REALSR_SCENES.items():
        for split in ("Train", "Test"):
            for scale in (2, 3, 4):
                folder = root / camera / split / str(scale)
                folder.mkdir(parents=True, exist_ok=True)
                for n, h, w in scenes:
                    hr = smooth_image(h, w, seed=1000 * len(camera) + 100 * len(split) + 10 * scale + n)
                    lr = Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC)
                    if version < 3:
                        lr = lr.resize((w, h), Image.BICUBIC)
                    Image.fromarray(hr).save(folder / f"{camera}_{n:03d}_HR.png")
                    lr.save(folder / f"{camera}_{n:03d}_LR{scale}.png")
    return root


def imagenet_release(root: str | Path, val: str) -> Path:
    """ImageNet under ``root`` with its validation split as ``val``: "folders" (sorted into class folders),
    "devkit" (flat + the development kit) or "kaggle" (Kaggle's tree + LOC_val_solution.csv). Two training
    images per class; validation image k (1-based) is of class (k − 1) mod 3, in a shuffled order of IDs."""
    import scipy.io

    root = Path(root)
    base = root / "ILSVRC" / "Data" / "CLS-LOC" if val == "kaggle" else root
    for c, wnid in enumerate(IMAGENET_WNIDS):
        for n in range(2):
            path = base / "train" / wnid / f"{wnid}_{n + 1}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(smooth_image(24 + 4 * c, 30, seed=10 * c + n)).save(path, "JPEG")
    labels = [IMAGENET_WNIDS[(k - 1) % 3] for k in range(1, 7)]
    for k, wnid in enumerate(labels, 1):
        folder = base / "val" / (wnid if val == "folders" else "")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_image(28, 26, seed=100 + k)).save(folder / f"ILSVRC2012_val_{k:08d}.JPEG", "JPEG")
    if val == "devkit":
        data = root / "ILSVRC2012_devkit_t12" / "data"
        data.mkdir(parents=True)
        ids = {wnid: i for i, wnid in zip((3, 1, 2), IMAGENET_WNIDS, strict=True)}  # IDs need not follow the wnids
        fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children", "wordnet_height",
                  "num_train_images"]
        synsets = np.array([(i, w, w, "", 0, np.zeros((1, 0)), 0, 2) for w, i in ids.items()]
                           + [(1001, "n00001740", "entity", "", 3, np.array([[1, 2, 3]]), 3, 0)],
                           dtype=[(f, object) for f in fields])
        scipy.io.savemat(data / "meta.mat", {"synsets": synsets.reshape(-1, 1)})
        (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{ids[w]}\n" for w in labels))
    elif val == "kaggle":
        rows = "".join(f"ILSVRC2012_val_{k:08d},{w} 1 2 20 20 {w} 3 4 10 10 \n" for k, w in enumerate(labels, 1))
        (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + rows)
    elif val != "folders":
        raise ValueError(f"val must be 'folders', 'devkit' or 'kaggle', got {val!r}")
    return root


def sidd_release(root: str | Path, release: str, blocks: tuple[int, int, int] = (2, 3, 16)) -> Path:
    """SIDD under ``root``: ``release`` "medium" (prefixed names, captures _010 and _011), "small" (one unprefixed
    pair per scene), and the validation blocks (``blocks`` = images, blocks per image, side)."""
    import scipy.io

    root = Path(root)
    folder = {"medium": "SIDD_Medium_Srgb", "small": "SIDD_Small_sRGB_Only"}[release]
    for k, scene in enumerate(SIDD_SCENES):
        data = root / folder / "Data" / scene
        data.mkdir(parents=True)
        for n in ("010", "011") if release == "medium" else ("010",):
            prefix = f"{scene[:4]}_" if release == "medium" else ""
            gt = smooth_image(32, 40, seed=10 * k + int(n))
            noisy = np.clip(gt.astype(int) + np.random.default_rng(k).integers(-20, 21, gt.shape), 0, 255)
            Image.fromarray(gt).save(data / f"{prefix}GT_SRGB_{n}.PNG")
            Image.fromarray(noisy.astype(np.uint8)).save(data / f"{prefix}NOISY_SRGB_{n}.PNG")
    images, per_image, side = blocks
    gt = np.stack([np.stack([smooth_image(side, side, seed=100 + 10 * i + b) for b in range(per_image)])
                   for i in range(images)])
    noisy = np.clip(gt.astype(int) + np.random.default_rng(5).integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    scipy.io.savemat(root / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(root / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": gt})
    return root


def cifar_batch(path: str | Path, n: int, label_key: str, num_classes: int, seed: int) -> dict:
    """One CIFAR python batch of ``n`` random images (``label_key``: "labels" or "fine_labels"); returns its dict."""
    import pickle

    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"replica", label_key.encode(): rng.integers(0, num_classes, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    if label_key == "fine_labels":
        batch[b"coarse_labels"] = [label // 5 for label in batch[b"fine_labels"]]
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return batch


def cifar_release(root: str | Path, dataset: str, per_batch: int = 4, test: int = 7) -> Path:
    """CIFAR-10 (``dataset`` "cifar10": five data batches and the test batch) or CIFAR-100 ("cifar100": train and
    test) under ``root``, ``per_batch`` training images per file and ``test`` test images."""
    root = Path(root)
    if dataset == "cifar10":
        folder, files, key, classes = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels", 10
        files.append("test_batch")
    elif dataset == "cifar100":
        folder, files, key, classes = root / "cifar-100-python", ["train", "test"], "fine_labels", 100
    else:
        raise ValueError(f"dataset must be 'cifar10' or 'cifar100', got {dataset!r}")
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(files):
        cifar_batch(folder / name, test if name.startswith("test") else per_batch, key, classes, seed=i)
    return root


def qnrf_release(root: str | Path, images: int = 2, size: tuple[int, int] = (40, 56)) -> Path:
    """UCF-QNRF_ECCV18 under ``root``: ``images`` per split of (H, W) ``size``, a few heads each."""
    root = Path(root)
    for split in ("Train", "Test"):
        folder = root / "UCF-QNRF_ECCV18" / split
        folder.mkdir(parents=True)
        for n in range(1, images + 1):
            h, w = size
            Image.fromarray(smooth_image(h, w, seed=50 + n)).save(folder / f"img_{n:04d}.jpg", quality=95)
            qnrf_mat(folder / f"img_{n:04d}_ann.mat", [[w / 3, h / 3], [w / 2, h / 2 + n], [w - 2.5, h - 2.5]][:n + 1])
    return root


def shanghaitech_release(root: str | Path, part: str, images: int = 2, size: tuple[int, int] = (48, 64)) -> Path:
    """ShanghaiTech part ``part`` ("A" or "B") under ``root``: ``images`` per split, (H, W) ``size`` (Part A's
    second image greyscale, as some of Part A's are), a few heads each."""
    root = Path(root)
    for split in ("train_data", "test_data"):
        image_dir, gt_dir = root / f"part_{part}_final" / split / "images", root / f"part_{part}_final" / split / "ground_truth"
        image_dir.mkdir(parents=True)
        gt_dir.mkdir()
        for n in range(1, images + 1):
            h, w = size
            pixels = smooth_image(h, w, seed=n)
            image = Image.fromarray(pixels).convert("L") if part == "A" and n == 2 else Image.fromarray(pixels)
            image.save(image_dir / f"IMG_{n}.jpg", quality=95)
            shanghaitech_mat(gt_dir / f"GT_IMG_{n}.mat", [[w / 4, h / 4], [w / 2 + n, h / 2], [w - 1.5, h - 1.5]][:n + 1])
    return root


def shanghaitech_mat(path: str | Path, points) -> None:
    """``GT_IMG_<n>.mat``: the 1×1 cell ``image_info`` holding a 1×1 struct with ``location`` and ``number``."""
    import scipy.io

    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1) if len(points) else np.zeros((0, 2))
    record = np.zeros((1, 1), dtype=[("location", "O"), ("number", "O")])
    record[0, 0]["location"] = points
    record[0, 0]["number"] = np.array([[float(len(points))]])
    info = np.empty((1, 1), dtype=object)
    info[0, 0] = record
    scipy.io.savemat(path, {"image_info": info})


def qnrf_mat(path: str | Path, points) -> None:
    """``img_<nnnn>_ann.mat`` with ``annPoints`` (N, 2)."""
    import scipy.io

    scipy.io.savemat(path, {"annPoints": np.asarray(points, dtype=np.float64).reshape(-1, 2)})
