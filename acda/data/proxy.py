"""Real-image proxy for CIFAR-style classification: 32×32 patches of scikit-image's bundled images.

Used where CIFAR is not on disk (Table 1 proxy, A.5 proxy). Ten classes, one per photograph or
texture that ships inside the scikit-image wheel (no download): each class is "which image did
this 32×32 patch come from". Images are converted to grey (so colour alone cannot separate the
classes), rescaled so that the shorter side is 256 pixels and divided into 64×64 blocks on a
checkerboard: a patch is a random 32×32 crop inside one block, even blocks (i + j even) give
training patches and odd blocks test patches, so training and test pixels never overlap.
Patches are replicated to 3 channels to keep Table 1's RGB LeNet unchanged. The dataset depends
only on its own ``seed``; model seeds vary separately.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .tensors import TensorImageDataset, cifar_eval_transform, cifar_train_transform

__all__ = ["PROXY_IMAGES", "texture_patches", "texture_proxy"]

PROXY_IMAGES = ("astronaut", "brick", "camera", "cell", "coffee", "coins", "grass", "gravel", "moon", "rocket")
BLOCK, SHORT_SIDE = 64, 256


def _grey_image(name: str) -> torch.Tensor:
    """A bundled scikit-image picture as a (H, W) float tensor in [0, 1], short side SHORT_SIDE."""
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    image = img_as_float(getattr(skimage.data, name)())
    if image.ndim == 3:
        image = rgb2gray(image[..., :3])
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    scale = SHORT_SIDE / min(t.shape[-2:])
    size = [round(s * scale) for s in t.shape[-2:]]
    return F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)[0, 0].clamp(0, 1)


def texture_patches(per_class: int, train: bool, patch: int = 32, seed: int = 0,
                    images: tuple[str, ...] = PROXY_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` patches of every image: (N, 3, patch, patch) uint8 and labels (N,)."""
    if not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive int, got {per_class!r}")
    if not 1 <= patch <= BLOCK:
        raise ValueError(f"patch must be in [1, {BLOCK}], got {patch!r}")
    gen = torch.Generator().manual_seed(seed * 2 + int(train))
    out, labels = [], []
    for label, name in enumerate(images):
        image = _grey_image(name)
        rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
        blocks = [(i, j) for i in range(rows) for j in range(cols) if (i + j) % 2 == (0 if train else 1)]
        pick = torch.randint(len(blocks), (per_class,), generator=gen)
        offsets = torch.randint(BLOCK - patch + 1, (per_class, 2), generator=gen)
        for b, (dy, dx) in zip(pick.tolist(), offsets.tolist()):
            i, j = blocks[b]
            y, x = i * BLOCK + dy, j * BLOCK + dx
            out.append(image[y:y + patch, x:x + patch])
        labels += [label] * per_class
    patches = (torch.stack(out) * 255).round().to(torch.uint8)[:, None].expand(-1, 3, -1, -1).contiguous()
    return patches, torch.tensor(labels)


def texture_proxy(per_class_train: int = 200, per_class_test: int = 100, seed: int = 0,
                  augment: bool = True, patch: int = 32) -> tuple[TensorImageDataset, TensorImageDataset]:
    """(train, test) datasets with Table 1's CIFAR recipe (crop + flip augmentation, normalisation)
    of ``patch``×``patch`` patches."""
    train_x, train_y = texture_patches(per_class_train, True, patch=patch, seed=seed)
    test_x, test_y = texture_patches(per_class_test, False, patch=patch, seed=seed)
    mean = (train_x.float() / 255).mean().item()
    std = (train_x.float() / 255).std().item()
    mean3, std3 = (mean,) * 3, (std,) * 3
    train_t = cifar_train_transform(mean3, std3, size=patch, padding=patch // 8) if augment else cifar_eval_transform(mean3, std3)
    return (TensorImageDataset(train_x, train_y, train_t, classes=PROXY_IMAGES),
            TensorImageDataset(test_x, test_y, cifar_eval_transform(mean3, std3), classes=PROXY_IMAGES))
