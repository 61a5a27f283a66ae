"""In-memory datasets (uint8 images with labels; input/target tensor pairs) and the CIFAR-style
transforms shared by CIFAR and the proxies."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

__all__ = ["TensorImageDataset", "TensorPairDataset", "cifar_train_transform", "cifar_eval_transform"]


class TensorImageDataset(Dataset):
    """Images (N, C, H, W) uint8 and integer labels (N,), each item ``(transform(image), label)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | Sequence[int],
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 classes: Sequence[str] | None = None) -> None:
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        self.images, self.labels, self.transform = images, labels, transform
        self.classes = list(classes) if classes is not None else sorted({int(x) for x in labels})

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


class TensorPairDataset(Dataset):
    """Input/target tensor pairs for dense tasks (density maps, restoration), item ``(input, target)``.

    ``inputs``/``targets``: one tensor (N, ...) each, or two equally long sequences of tensors (images
    of varying size; evaluate those with batch size 1). ``transform(input, target)`` -> ``(input,
    target)``, if given, is applied jointly (e.g. the same random crop or flip to both).
    """

    def __init__(self, inputs: torch.Tensor | Sequence[torch.Tensor], targets: torch.Tensor | Sequence[torch.Tensor],
                 transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> None:
        if isinstance(inputs, torch.Tensor) != isinstance(targets, torch.Tensor):
            raise TypeError("inputs and targets must both be tensors or both sequences of tensors")
        if not isinstance(inputs, torch.Tensor):
            inputs, targets = list(inputs), list(targets)
            if not all(isinstance(t, torch.Tensor) for t in inputs + targets):
                raise TypeError("inputs and targets must be tensors or sequences of tensors")
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs, self.targets, self.transform = inputs, targets, transform

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.inputs[index], self.targets[index]
        if self.transform is not None:
            x, y = self.transform(x, y)
        return x, y


def _normalize(mean: Sequence[float], std: Sequence[float]) -> list:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def cifar_train_transform(mean: Sequence[float], std: Sequence[float], size: int = 32,
                          padding: int = 4) -> v2.Compose:
    """Standard CIFAR augmentation: random crop with 4-pixel zero padding, horizontal flip."""
    return v2.Compose([v2.RandomCrop(size, padding=padding), v2.RandomHorizontalFlip(),
                       *_normalize(mean, std)])


def cifar_eval_transform(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    return v2.Compose(_normalize(mean, std))
