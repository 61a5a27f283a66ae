"""Tiny copies of public dataset releases in their exact on-disk layout, for the loaders' tests.

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

__all__ = ["REALSR_SCENES", "smooth_image", "realsr_release"]

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
