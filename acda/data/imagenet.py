"""ImageNet (ILSVRC-2012) in the ``ImageFolder`` layout, with the standard transforms (paper §4.1).

Layout under ``root``: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (the validation images
sorted into class folders, e.g. with the usual ``valprep.sh``). Train: RandomResizedCrop 224 +
horizontal flip; eval: Resize 256 + CenterCrop 224; both normalised with the ImageNet mean/std.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision import datasets
from torchvision.transforms import v2

from .layout import DatasetLayoutError, require_dir

__all__ = ["imagenet", "train_transform", "eval_transform", "EXPECTED_LAYOUT", "MEAN", "STD"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
EXPECTED_LAYOUT = ("  <data-root>/train/<wnid>/*.JPEG   (e.g. train/n01440764/n01440764_10026.JPEG)\n"
                   "  <data-root>/val/<wnid>/*.JPEG     (validation images sorted into the same class folders)")
SPLITS = ("train", "val")


def train_transform(size: int = 224) -> v2.Compose:
    return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(MEAN), list(STD))])


def eval_transform(size: int = 224, resize: int = 256) -> v2.Compose:
    return v2.Compose([v2.ToImage(), v2.Resize(resize, antialias=True), v2.CenterCrop(size),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(MEAN), list(STD))])


def imagenet(root: str | Path, split: str = "train", transform=None) -> datasets.ImageFolder:
    """``ImageFolder`` over ``root/split`` (default transform: the standard one for the split)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError("ImageNet", root, "the data root does not exist", EXPECTED_LAYOUT)
    folder = require_dir(root / split, "ImageNet", root, EXPECTED_LAYOUT)
    if not any(p.is_dir() for p in folder.iterdir()):
        raise DatasetLayoutError("ImageNet", root, f"{str(folder)!r} has no class folders", EXPECTED_LAYOUT)
    if transform is None:
        transform = train_transform() if split == "train" else eval_transform()
    try:
        return datasets.ImageFolder(str(folder), transform=transform)
    except (FileNotFoundError, RuntimeError) as e:  # ImageFolder: a class folder without images
        raise DatasetLayoutError("ImageNet", root, f"{str(folder)!r}: {e}", EXPECTED_LAYOUT) from None
