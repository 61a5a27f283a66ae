"""CIFAR-10 / CIFAR-100 from the standard python pickle batches (paper §4.1, Table 1).

Our own reader (torchvision's ``CIFAR10(download=False)`` checks md5 sums, so it rejects test
fixtures in the exact format). Layout, under ``root`` (or ``root`` itself being the batch folder)::

    cifar-10-batches-py/data_batch_1 … data_batch_5, test_batch   keys b"data" (N, 3072) uint8, b"labels"
    cifar-100-python/train, test                                   keys b"data", b"fine_labels"

as extracted from ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``
(https://www.cs.toronto.edu/~kriz/cifar.html).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..utils import check_choice
from .layout import DatasetLayoutError, require_dir, require_file
from .tensors import TensorImageDataset, cifar_eval_transform, cifar_train_transform

__all__ = ["CIFAR_SPECS", "cifar", "load_cifar_arrays", "expected_layout"]

# name: (folder, train files, test files, label key, number of classes, mean, std)
CIFAR_SPECS = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10,
                (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100,
                 (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def expected_layout(dataset: str) -> str:
    folder, train, test, key, *_ = _spec(dataset)
    return (f"  <data-root>/{folder}/{{{', '.join(train + test)}}}\n"
            f"  (python pickle batches with keys b'data' (N, 3072) uint8 and b'{key}', "
            f"from https://www.cs.toronto.edu/~kriz/cifar.html)")


def _spec(dataset: str):
    check_choice("dataset", dataset, sorted(CIFAR_SPECS))
    return CIFAR_SPECS[dataset]


def _folder(root: Path, dataset: str) -> Path:
    folder = _spec(dataset)[0]
    if root.name == folder:
        return root
    return require_dir(root / folder, dataset, root, expected_layout(dataset))


def _read_batch(path: Path, key: str, dataset: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    layout = expected_layout(dataset)
    require_file(path, dataset, root, layout)
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as e:  # any unpickling failure means a malformed file
        raise DatasetLayoutError(dataset, root, f"{str(path)!r} is not a python pickle batch ({e})", layout) from None
    if not isinstance(batch, dict):
        raise DatasetLayoutError(dataset, root, f"{str(path)!r} holds a {type(batch).__name__}, not a dict", layout)
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or key not in batch:
        raise DatasetLayoutError(dataset, root, f"{str(path)!r} lacks key {'data' if 'data' not in batch else key!r}"
                                 f" (has {sorted(batch)})", layout)
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DatasetLayoutError(dataset, root, f"{str(path)!r}: data must be uint8 (N, 3072) with N labels, got "
                                 f"{data.dtype} {data.shape} and {len(labels)} labels", layout)
    return data, labels


def load_cifar_arrays(root: str | Path, dataset: str = "cifar10", train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one split."""
    folder, train_files, test_files, key, num_classes, *_ = _spec(dataset)
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(dataset, root, "the data root does not exist", expected_layout(dataset))
    base = _folder(root, dataset)
    parts = [_read_batch(base / name, key, dataset, root) for name in (train_files if train else test_files)]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DatasetLayoutError(dataset, root, f"labels must lie in [0, {num_classes}), got "
                                 f"[{labels.min()}, {labels.max()}]", expected_layout(dataset))
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def cifar(root: str | Path, dataset: str = "cifar10", train: bool = True, augment: bool | None = None) -> TensorImageDataset:
    """CIFAR split as a dataset of normalised float images; ``augment`` (default: ``train``) adds
    random-crop (pad 4) + horizontal-flip augmentation."""
    *_, num_classes, mean, std = _spec(dataset)
    images, labels = load_cifar_arrays(root, dataset, train)
    augment = train if augment is None else augment
    transform = cifar_train_transform(mean, std) if augment else cifar_eval_transform(mean, std)
    return TensorImageDataset(images, labels, transform, classes=[str(i) for i in range(num_classes)])
