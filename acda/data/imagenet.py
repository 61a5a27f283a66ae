"""ImageNet (ILSVRC-2012) with the standard transforms (paper §4.1).

Layout under ``root``: ``train/<wnid>/*.JPEG``; ``val/`` either sorted into the same class folders
(e.g. with the usual ``valprep.sh``) or flat as the official archive unpacks
(``ILSVRC2012_val_00000001.JPEG`` …), labelled by the devkit
(``ILSVRC2012_devkit_t12/data/meta.mat`` + ``ILSVRC2012_validation_ground_truth.txt``) or by Kaggle's
``LOC_val_solution.csv``. Kaggle's tree (``ILSVRC/Data/CLS-LOC/{train,val}``) is found too. Train:
RandomResizedCrop 224 + horizontal flip; eval: Resize 256 + CenterCrop 224; both normalised with the
ImageNet mean/std.

One class index for all splits: label i is the i-th of the *train* split's class folders (sorted
wnids), for the val split too, so that a val folder that lacks a class cannot shift the labels of
the classes after it. A split with a class folder that train lacks is an error naming both splits
and the classes; a val split that lacks some of train's classes is allowed (a warning names them):
its labels stay those of train. Without a train folder (evaluation-only data) a split indexes its
own folders; ``classes=`` fixes the index explicitly (e.g. the classes a checkpoint was trained on).

Images that cannot be decoded (e.g. a truncated JPEG) raise ``ImageFileError`` (an ``OSError``)
naming the file, instead of PIL's bare ``OSError: image file is truncated``.
"""
from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
import torch
from PIL import Image
from torchvision import datasets
from torchvision.transforms import v2

from ..utils import check_choice
from .layout import DatasetLayoutError, require_dir

__all__ = ["imagenet", "ImageNetFolder", "flat_val_labels", "ImageFileError", "load_image", "image_size", "class_folders",
           "train_transform", "eval_transform", "EXPECTED_LAYOUT", "MEAN", "STD"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
EXPECTED_LAYOUT = ("  <data-root>/train/<wnid>/*.JPEG   (e.g. train/n01440764/n01440764_10026.JPEG)\n"
                   "  <data-root>/val/<wnid>/*.JPEG     (validation images sorted into the same class folders), or\n"
                   "  <data-root>/val/ILSVRC2012_val_<8 digits>.JPEG flat, with <data-root>/ILSVRC2012_devkit_t12/"
                   "data/{meta.mat,ILSVRC2012_validation_ground_truth.txt} or <data-root>/LOC_val_solution.csv\n"
                   "  (Kaggle's <data-root>/ILSVRC/Data/CLS-LOC/{train,val} is found as well)")
DEVKIT = Path("ILSVRC2012_devkit_t12") / "data"
KAGGLE = Path("ILSVRC") / "Data" / "CLS-LOC"
SPLITS = ("train", "val")


def train_transform(size: int = 224) -> v2.Compose:
    return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(MEAN), list(STD))])


def eval_transform(size: int = 224, resize: int = 256) -> v2.Compose:
    return v2.Compose([v2.ToImage(), v2.Resize(resize, antialias=True), v2.CenterCrop(size),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(MEAN), list(STD))])


class ImageFileError(OSError):
    """An image file that cannot be read or decoded; the message and ``path`` name the file."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) from the image header (the pixels are not decoded), or ``ImageFileError`` naming the file."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception as e:  # noqa: BLE001 -- UnidentifiedImageError, OSError, DecompressionBombError
        raise ImageFileError(f"cannot read image {str(path)!r}: {type(e).__name__}: {e}", str(path)) from e
    return h, w


def load_image(path: str):
    """An image as 8-bit RGB (PIL), re-raising any failure with the file's path.

    8-bit files are converted as torchvision's default loader does. A 16-bit greyscale file (PIL modes
    ``I;16*``, or ``I`` with values up to 65535) is scaled to 8 bits (round(v / 257)) first: PIL's own
    conversion would clip every value above 255.
    """
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            img.load()
        if img.mode.startswith("I;16") or img.mode == "I":
            values = np.asarray(img, dtype=np.int64)
            if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
                raise ValueError(f"{img.mode} image with values outside 0..65535")
            img = Image.fromarray(np.round(values / 257.0).astype(np.uint8))
        return img.convert("RGB")
    except Exception as e:  # noqa: BLE001 -- OSError (truncated, unidentified), ValueError, DecompressionBombError
        raise ImageFileError(f"cannot read image {path!r}: {type(e).__name__}: {e}", path) from e


class ImageNetFolder(datasets.ImageFolder):
    """``ImageFolder`` with a given class index (``classes[i]`` has label i) and the path-naming loader; with
    ``labels`` (file name → wnid) the folder is flat and each image's class is looked up there."""

    def __init__(self, root: str | Path, classes: Sequence[str], transform=None, allow_empty: bool = False,
                 labels: dict[str, str] | None = None) -> None:
        self._class_index, self._labels = list(classes), labels
        super().__init__(str(root), transform=transform, loader=load_image, allow_empty=allow_empty)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        return list(self._class_index), {c: i for i, c in enumerate(self._class_index)}

    def make_dataset(self, directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
        if self._labels is None:
            return super().make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)
        return [(str(Path(directory) / name), class_to_idx[wnid]) for name, wnid in sorted(self._labels.items())]


def flat_val_labels(root: Path, folder: Path) -> dict[str, str]:
    """File name → wnid of the flat validation images in ``folder``, from the devkit or ``LOC_val_solution.csv``
    under ``root``; ``DatasetLayoutError`` naming what is missing (an image without a label, or neither file)."""
    devkit, kaggle = root / DEVKIT, root / "LOC_val_solution.csv"
    if (devkit / "meta.mat").is_file() and (devkit / "ILSVRC2012_validation_ground_truth.txt").is_file():
        synsets = scipy.io.loadmat(str(devkit / "meta.mat"), squeeze_me=True)["synsets"]
        wnid_of = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
        ids = (devkit / "ILSVRC2012_validation_ground_truth.txt").read_text().split()
        labels = {f"ILSVRC2012_val_{i:08d}.JPEG": wnid_of[int(v)] for i, v in enumerate(ids, 1)}
    elif kaggle.is_file():
        with kaggle.open(newline="") as f:
            labels = {row["ImageId"] + ".JPEG": row["PredictionString"].split()[0] for row in csv.DictReader(f)}
    else:
        raise DatasetLayoutError("ImageNet", root, f"{str(folder)!r} holds images but no class folders, and neither "
                                 f"{str(devkit)!r} (meta.mat + ILSVRC2012_validation_ground_truth.txt) nor "
                                 f"{str(kaggle)!r} labels them", EXPECTED_LAYOUT)
    files = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    unlabelled = [name for name in files if name not in labels]
    if unlabelled:
        raise DatasetLayoutError("ImageNet", root, f"{len(unlabelled)} images in {str(folder)!r} have no label, e.g. "
                                 f"{_short(unlabelled, 3)}", EXPECTED_LAYOUT)
    return {name: labels[name] for name in files}


def class_folders(folder: Path) -> list[str]:
    """The sorted names of the class folders (sub-directories) of a split folder."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def _short(names: Sequence[str], n: int = 10) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def imagenet(root: str | Path, split: str = "train", transform=None,
             classes: Sequence[str] | None = None) -> ImageNetFolder:
    """``ImageFolder`` over ``root/split`` (default transform: the standard one for the split), with
    the train split's class index (module docstring) unless ``classes`` is given."""
    check_choice("split", split, SPLITS)
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError("ImageNet", root, "the data root does not exist", EXPECTED_LAYOUT)
    tree = KAGGLE if not (root / split).is_dir() and (root / KAGGLE / split).is_dir() else Path()
    folder = require_dir(root / tree / split, "ImageNet", root, EXPECTED_LAYOUT)
    own, labels = class_folders(folder), None
    if not own and split == "val" and any(p.is_file() for p in folder.iterdir()):
        labels = flat_val_labels(root, folder)
        own = sorted(set(labels.values()))
    if not own:
        raise DatasetLayoutError("ImageNet", root, f"{str(folder)!r} has no class folders", EXPECTED_LAYOUT)
    train = root / tree / "train"
    if classes is not None:
        classes, reference = list(classes), "the given classes"
    elif split != "train" and train.is_dir() and class_folders(train):
        classes, reference = class_folders(train), "train"
    else:
        classes, reference = own, split
    extra = sorted(set(own) - set(classes))
    if extra:
        raise DatasetLayoutError("ImageNet", root, f"split {split!r} has class folders that {reference!r} lacks: "
                                 f"{_short(extra)}; the labels of both must come from one class index",
                                 EXPECTED_LAYOUT)
    if transform is None:
        transform = train_transform() if split == "train" else eval_transform()
    try:
        ds = ImageNetFolder(folder, classes, transform, allow_empty=reference != split, labels=labels)
    except (FileNotFoundError, RuntimeError) as e:  # ImageFolder: a class folder without images
        raise DatasetLayoutError("ImageNet", root, f"{str(folder)!r}: {e}", EXPECTED_LAYOUT) from None
    if reference != split:
        present = {t for _, t in ds.samples}
        missing = [c for i, c in enumerate(classes) if i not in present]
        if len(missing) == len(classes):
            raise DatasetLayoutError("ImageNet", root, f"{str(folder)!r} has no images", EXPECTED_LAYOUT)
        if missing:
            warnings.warn(f"ImageNet: split {split!r} has no images of {len(missing)} of {reference!r}'s "
                          f"{len(classes)} classes ({_short(missing)}); its labels follow {reference!r}'s class "
                          "index", stacklevel=2)
    return ds
