"""Image restoration data: RealSR (versions 1–3) super-resolution and SIDD sRGB denoising (paper §4.3).

Layouts (``root``: the folder holding ``Canon``/``Nikon`` for RealSR; for SIDD the folder holding
``SIDD_Medium_Srgb`` and the two validation ``.mat`` files)::

    <root>/{Canon,Nikon}/{Train,Test}/{2,3,4}/<Name>_<id>_HR.png + <Name>_<id>_LR<s>.png   (RealSR)
    <root>/SIDD_Medium_Srgb/Data/<scene>/<i>_NOISY_SRGB_<nnn>.PNG + <i>_GT_SRGB_<nnn>.PNG   (<nnn>: 010, 011)
    <root>/ValidationNoisyBlocksSrgb.mat, ValidationGtBlocksSrgb.mat    uint8 (40, 32, 256, 256, 3) each

RealSR versions 1 and 2 store LR at the HR size, version 3 at HR/s (upscaled here with MATLAB's
bicubic, ``acda.data.resize``; the RealSR README: "HR and LR have different resolution"). Items: ``(degraded, clean)`` float32 (3, H, W) in [0, 1]; training (``augment``) takes
the same random ``crop_size`` crop and flips of both images (RealSR also a random transpose,
``rot90``); evaluation uses whole images. Layout errors raise ``DatasetLayoutError`` naming the
file or the expected layout, unreadable images ``ImageFileError``.

See docs/data.md for the pairing rules, SIDD's captures and validation blocks, the augmentation and
the errors.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from ..utils import check_choice, pair
from .imagenet import ImageFileError, image_size, load_image
from .layout import DatasetLayoutError, check_count, require_dir, require_file
from .resize import imresize_bicubic, modcrop

__all__ = ["PairedImageDataset", "augment_pair", "SIDDValidationBlocks", "realsr", "sidd", "read_sidd_blocks",
           "REALSR_LAYOUT", "SIDD_LAYOUT", "REALSR_CAMERAS", "REALSR_SCALES", "REALSR_MODCROP", "SIDD_CROP_SIZE"]

REALSR_CAMERAS = ("Canon", "Nikon")
REALSR_SCALES = (2, 3, 4)
REALSR_MODCROP = 4  # the RealSR evaluation (Test/Test.m) crops HR and LR to a multiple of 4
SIDD_CROP_SIZE = 256
REALSR_LAYOUT = (
    "  <data-root>/{Canon,Nikon}/{Train,Test}/{2,3,4}/<Name>_<id>_HR.png    (e.g. Canon/Train/2/Canon_001_HR.png)\n"
    "  <data-root>/{Canon,Nikon}/{Train,Test}/{2,3,4}/<Name>_<id>_LR<s>.png (e.g. Canon/Train/2/Canon_001_LR2.png;\n"
    "   version 3: LR at HR/s, upscaled here with MATLAB's bicubic; versions 1 and 2: LR at the HR size)")
SIDD_LAYOUT = (
    "  <data-root>/SIDD_Medium_Srgb/Data/<scene>/<nnnn>_NOISY_SRGB_010.PNG + <nnnn>_GT_SRGB_010.PNG   (and/or _011;\n"
    "      <nnnn>: the scene instance, the folder name's first field; names without it are read too), or\n"
    "  <data-root>/SIDD_Small_sRGB_Only/Data/<scene>/NOISY_SRGB_010.PNG + GT_SRGB_010.PNG   (SIDD-Small)\n"
    "  <data-root>/ValidationNoisyBlocksSrgb.mat   (MATLAB v5; variable ValidationNoisyBlocksSrgb: uint8 "
    "(40, 32, 256, 256, 3))\n"
    "  <data-root>/ValidationGtBlocksSrgb.mat      (MATLAB v5; variable ValidationGtBlocksSrgb: uint8 "
    "(40, 32, 256, 256, 3))")


def _to_tensor(path: Path) -> torch.Tensor:
    img = load_image(str(path))  # RGB, ImageFileError naming the file
    try:
        x = TF.pil_to_tensor(img)
    except Exception as e:  # noqa: BLE001 -- decoding errors of lazily loaded images surface here
        raise ImageFileError(f"cannot read image {str(path)!r}: {type(e).__name__}: {e}", str(path)) from e
    return TF.to_dtype(x, torch.float32, scale=True)


def _rand(n: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(0, n, (), generator=generator))


def augment_pair(degraded: torch.Tensor, clean: torch.Tensor, crop_size: tuple[int, int] | None,
                 rot90: bool = True, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training augmentation of an aligned pair of (C, H, W) images (docs/data.md).

    A random ``crop_size`` (H, W) crop at the same position in both (None: no crop; the images must
    be at least that large), then horizontal and vertical flips, each with probability 1/2, and,
    with ``rot90``, a transpose with probability 1/2 — the same on both. Random numbers, in this
    order (top, left, hflip, vflip[, transpose]), come from ``generator`` (None: torch's global one).
    Returns contiguous tensors.
    """
    g = generator
    if crop_size is not None:
        (ch, cw), (h, w) = crop_size, degraded.shape[-2:]
        top, left = _rand(h - ch + 1, g), _rand(w - cw + 1, g)
        degraded = degraded[..., top:top + ch, left:left + cw]
        clean = clean[..., top:top + ch, left:left + cw]
    hflip, vflip = _rand(2, g), _rand(2, g)
    transpose = _rand(2, g) if rot90 else 0
    if hflip:
        degraded, clean = degraded.flip(-1), clean.flip(-1)
    if vflip:
        degraded, clean = degraded.flip(-2), clean.flip(-2)
    if transpose:
        degraded, clean = degraded.transpose(-1, -2), clean.transpose(-1, -2)
    return degraded.contiguous(), clean.contiguous()


class PairedImageDataset(Dataset):
    """Aligned ``(degraded, clean)`` image pairs → float32 (3, H, W) in [0, 1] (docs/data.md).

    ``pairs``: (degraded path, clean path). With ``upsample`` s > 1 a degraded image of h×w pairs with a
    clean one of at least (h·s)×(w·s) (its bottom/right cropped to that, MATLAB's ``modcrop``) and is
    upscaled by s with MATLAB's bicubic (``acda.data.resize``, rounded to 8 bits as MATLAB's ``imresize``
    of a uint8 image); else both must have the same size. ``crop_multiple``: both then cropped to a
    multiple of it. Size errors: ``DatasetLayoutError`` naming the degraded file; images smaller than
    ``crop_size`` when augmenting: ``ValueError``. ``augment``: random aligned crops + flips (+ transposes
    with ``rot90``); ``generator``: the source of random numbers (None: global).
    """

    def __init__(self, pairs: Sequence[tuple[str | Path, str | Path]], *, crop_size: int | Sequence[int] | None = None,
                 augment: bool = False, rot90: bool = True, generator: torch.Generator | None = None,
                 root: str | Path | None = None, dataset: str = "paired images", layout: str = "",
                 upsample: int = 1, crop_multiple: int = 1) -> None:
        self.crop_size = None if crop_size is None else pair(crop_size, "crop_size")
        self.augment, self.rot90, self.generator = bool(augment), bool(rot90), generator
        self.upsample, self.crop_multiple = upsample, crop_multiple
        self.root = None if root is None else Path(root)
        self.pairs = [(Path(a), Path(b)) for a, b in pairs]
        self.sizes: list[tuple[int, int]] = []
        for degraded, clean in self.pairs:
            sd, sc = image_size(degraded), image_size(clean)
            s = upsample
            if (s == 1 and sd != sc) or (s > 1 and (sd[0] != sc[0] // s or sd[1] != sc[1] // s)):
                want = "the same size" if s == 1 else f"1/{s} of it ({sc[1] // s}×{sc[0] // s})"
                raise DatasetLayoutError(dataset, root if root is not None else degraded.parent,
                                         f"image {str(degraded)!r} is {sd[1]}×{sd[0]} (W×H) but its pair "
                                         f"{str(clean)!r} is {sc[1]}×{sc[0]}; it must be {want}", layout)
            size = tuple(v * s // crop_multiple * crop_multiple for v in sd)
            if min(size) < 1:
                raise DatasetLayoutError(dataset, root if root is not None else degraded.parent,
                                         f"image {str(degraded)!r} is smaller than {crop_multiple} pixels", layout)
            if self.augment and self.crop_size is not None and (size[0] < self.crop_size[0] or size[1] < self.crop_size[1]):
                raise ValueError(f"crop_size {self.crop_size} is larger than image {str(degraded)!r} "
                                 f"({size[0]}×{size[1]}, H×W, as used)")
            self.sizes.append(size)

    def __len__(self) -> int:
        return len(self.pairs)

    def fingerprint(self) -> str:
        """Identifies the data for ``acda.train`` resume: files (relative to the root) and sizes."""
        def rel(p: Path) -> str:
            return str(p.relative_to(self.root)) if self.root is not None and p.is_relative_to(self.root) else str(p)
        return ";".join(f"{rel(a)},{rel(b)},{h}x{w}" for (a, b), (h, w) in zip(self.pairs, self.sizes))

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        degraded_path, clean_path = self.pairs[index]
        degraded, clean = _to_tensor(degraded_path), _to_tensor(clean_path)
        s = self.upsample
        if s > 1:
            clean = clean[..., :degraded.shape[-2] * s, :degraded.shape[-1] * s]
            degraded = (imresize_bicubic((degraded * 255).round(), s).round().clamp(0, 255) / 255).float()
        if degraded.shape != clean.shape:  # the header lied (or the file changed since construction)
            raise ImageFileError(f"image {str(degraded_path)!r} decodes to {tuple(degraded.shape)} but "
                                 f"{str(clean_path)!r} to {tuple(clean.shape)}", str(degraded_path))
        return modcrop(degraded, self.crop_multiple), modcrop(clean, self.crop_multiple)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        degraded, clean = self._load(index)
        if not self.augment:
            return degraded, clean
        return augment_pair(degraded, clean, self.crop_size, rot90=self.rot90, generator=self.generator)


# ---------------------------------------------------------------------------------------------
# RealSR (V3)
# ---------------------------------------------------------------------------------------------

def _natural_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


_REALSR_FILE = re.compile(r"^(?P<name>.+)_(?:HR|LR(?P<scale>\d+))\.png$", re.IGNORECASE)


def _split(split: str, names: dict[str, str]) -> str:
    check_choice("split", split, names)
    return names[split]


def realsr(root: str | Path, split: str = "train", scale: int = 4, cameras: Sequence[str] = REALSR_CAMERAS,
           crop_size: int | Sequence[int] | None = None, augment: bool | None = None, rot90: bool = True,
           generator: torch.Generator | None = None) -> PairedImageDataset:
    """RealSR ``split`` ("train" or "test") at ``scale`` (2, 3 or 4) of ``cameras``, any release.

    Versions 1 and 2 store LR at the HR size; version 3 at HR/scale, read here upscaled by MATLAB's
    bicubic (HR cropped to LR × scale). Items ``(lr, hr)`` float32 (3, H, W) in [0, 1] of the HR size,
    both cropped to a multiple of 4 (``modcrop(·, 4)`` of the RealSR evaluation, Test/Test.m).
    ``augment`` (default ``split == "train"``): random aligned ``crop_size`` crops (None: whole images)
    + flips/rot90, the same on both; else whole images. Files are ordered by camera, then by natural
    name order. ``dataset.upsample`` tells the release: 1 (V1/V2) or ``scale`` (V3).
    """
    ds, layout, root = "RealSR", REALSR_LAYOUT, Path(root)
    folder_name = _split(split, {"train": "Train", "test": "Test"})
    check_choice("scale", scale, REALSR_SCALES)
    if isinstance(cameras, str):
        cameras = (cameras,)
    if not cameras or any(c not in REALSR_CAMERAS for c in cameras):
        raise ValueError(f"cameras must be a non-empty subset of {REALSR_CAMERAS}, got {cameras!r}")
    if not root.is_dir():
        raise DatasetLayoutError(ds, root, "the data root does not exist", layout)
    samples: list[tuple[Path, Path]] = []
    for camera in cameras:
        folder = require_dir(root / camera / folder_name / str(scale), ds, root, layout)
        hrs: dict[str, Path] = {}
        lrs: dict[str, Path] = {}
        for p in sorted(folder.iterdir(), key=_natural_key):
            m = _REALSR_FILE.match(p.name)
            if not p.is_file() or m is None:
                continue
            if m["scale"] is None:
                hrs[m["name"]] = p
            elif int(m["scale"]) != scale:
                raise DatasetLayoutError(ds, root, f"LR image {str(p)!r} is of scale {m['scale']}, in the folder "
                                         f"of scale {scale}", layout)
            else:
                lrs[m["name"]] = p
        for name, lr in lrs.items():
            if name not in hrs:
                raise DatasetLayoutError(ds, root, f"LR image {str(lr)!r} has no HR image: missing "
                                         f"{str(folder / f'{name}_HR.png')!r}", layout)
        for name, hr in hrs.items():
            if name not in lrs:
                raise DatasetLayoutError(ds, root, f"HR image {str(hr)!r} has no LR image: missing "
                                         f"{str(folder / f'{name}_LR{scale}.png')!r}", layout)
            samples.append((lrs[name], hr))
        if not hrs:
            raise DatasetLayoutError(ds, root, f"{str(folder)!r} has no <Name>_<id>_HR.png images", layout)
    lr, hr = samples[0]
    upsample = 1 if image_size(lr) == image_size(hr) else scale  # V1/V2: the same size; V3: HR / scale
    return PairedImageDataset(samples, crop_size=crop_size, augment=split == "train" if augment is None else augment,
                              rot90=rot90, generator=generator, root=root, dataset=ds, layout=layout,
                              upsample=upsample, crop_multiple=REALSR_MODCROP)


# ---------------------------------------------------------------------------------------------
# SIDD
# ---------------------------------------------------------------------------------------------

# SIDD-Medium sRGB (its _ReadMe_sRGB.txt): 160 scene-instance folders <instance>_<scene>_<phone>_<ISO>_<shutter>_
# <temperature>_<brightness>, each with two noisy/ground-truth pairs, files <instance>_NOISY_SRGB_<nnn>.PNG and
# <instance>_GT_SRGB_<nnn>.PNG (e.g. 0001_NOISY_SRGB_010.PNG); some re-packagings drop the <instance>_ prefix.
_SIDD_FILE = re.compile(r"^(?:(?P<prefix>\d+)_)?(?P<kind>NOISY|GT)_SRGB_(?P<n>\d+)\.PNG$", re.IGNORECASE)
SIDD_RELEASES = {"SIDD_Medium_Srgb": 320, "SIDD_Small_sRGB_Only": 160}  # folder → pairs (160 scene instances)


def read_sidd_blocks(path: str | Path, key: str, root: str | Path | None = None) -> np.ndarray:
    """The uint8 (N, B, H, W, 3) array ``key`` of a SIDD validation ``.mat`` (MATLAB v5), or
    ``DatasetLayoutError`` naming the file."""
    path = Path(path)
    root = Path(root if root is not None else path.parent)
    try:
        mat = scipy.io.loadmat(str(path), variable_names=[key])
    except Exception as e:  # noqa: BLE001 -- MatReadError, ValueError, OSError, NotImplementedError (v7.3)
        raise DatasetLayoutError("SIDD", root, f"cannot read {str(path)!r} ({type(e).__name__}: {e})",
                                 SIDD_LAYOUT) from None
    if key not in mat:
        raise DatasetLayoutError("SIDD", root, f"{str(path)!r} lacks variable {key!r}", SIDD_LAYOUT)
    a = mat[key]
    if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 5 or a.shape[-1] != 3 or 0 in a.shape:
        desc = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise DatasetLayoutError("SIDD", root, f"{str(path)!r}: {key} must be a non-empty uint8 array of shape "
                                 f"(images, blocks, H, W, 3), got {desc}", SIDD_LAYOUT)
    return a


class SIDDValidationBlocks(Dataset):
    """SIDD sRGB validation blocks: item ``i`` = ``(noisy, gt)`` float32 (3, H, W) in [0, 1] of block
    ``(i // B, i % B)`` of the (N, B, H, W, 3) uint8 arrays (image-major; officially 40 × 32, 256×256)."""

    def __init__(self, noisy: np.ndarray, gt: np.ndarray) -> None:
        if noisy.shape != gt.shape:
            raise ValueError(f"noisy blocks {noisy.shape} and ground-truth blocks {gt.shape} differ in shape")
        self.noisy, self.gt = noisy, gt
        self.images, self.blocks = noisy.shape[:2]

    def __len__(self) -> int:
        return self.images * self.blocks

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} blocks")
        i, j = divmod(index % len(self), self.blocks)

        def block(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a[i, j])).permute(2, 0, 1).to(torch.float32).div_(255)
        return block(self.noisy), block(self.gt)

    def fingerprint(self) -> str:
        return f"sidd-val;{self.noisy.shape}"


def _sidd_scene_pairs(scene: Path, ds: str, root: Path, layout: str) -> list[tuple[Path, Path]]:
    """(noisy, ground truth) files of one SIDD-Medium scene folder, paired on (prefix, number), by number."""
    files: dict[str, dict[tuple[str, str], Path]] = {"NOISY": {}, "GT": {}}
    for p in scene.iterdir():
        if (m := _SIDD_FILE.match(p.name)) and p.is_file():
            files[m["kind"].upper()][m["prefix"] or "", m["n"]] = p
    noisy, gt = files["NOISY"], files["GT"]

    def partner(p: Path, kind: str) -> str:
        return str(p.with_name(re.sub(r"(NOISY|GT)_SRGB", f"{kind}_SRGB", p.name, count=1, flags=re.IGNORECASE)))

    for key, p in gt.items():
        if key not in noisy:
            raise DatasetLayoutError(ds, root, f"ground truth {str(p)!r} has no noisy image: missing "
                                     f"{partner(p, 'NOISY')!r}", layout)
    for key in sorted(noisy, key=lambda k: (k[1], k[0])):
        if key not in gt:
            raise DatasetLayoutError(ds, root, f"noisy image {str(noisy[key])!r} has no ground truth: missing "
                                     f"{partner(noisy[key], 'GT')!r}", layout)
    return [(noisy[key], gt[key]) for key in sorted(noisy, key=lambda k: (k[1], k[0]))]


def sidd(root: str | Path, split: str = "train", crop_size: int | Sequence[int] | None = SIDD_CROP_SIZE,
         augment: bool | None = None, rot90: bool = False,
         generator: torch.Generator | None = None) -> PairedImageDataset | SIDDValidationBlocks:
    """SIDD sRGB ``split``: "train" (SIDD-Medium pairs, or SIDD-Small's when only it is there;
    ``PairedImageDataset``) or "val" (the validation blocks, ``SIDDValidationBlocks``). Items ``(noisy, gt)``
    float32 (3, H, W) in [0, 1].

    Training (``augment`` default ``split == "train"``): random aligned ``crop_size`` crops (our
    default 256; None: whole images) + horizontal/vertical flips (``rot90=True`` adds transposes).
    Scenes in sorted order, then ``_010`` before ``_011``. ``crop_size``/``augment`` are ignored for "val".
    """
    ds, layout, root = "SIDD", SIDD_LAYOUT, Path(root)
    _split(split, {"train": "train", "val": "val"})
    if not root.is_dir():
        raise DatasetLayoutError(ds, root, "the data root does not exist", layout)
    if split == "val":
        files = [(require_file(root / f"Validation{k}BlocksSrgb.mat", ds, root, layout), f"Validation{k}BlocksSrgb")
                 for k in ("Noisy", "Gt")]
        noisy, gt = (read_sidd_blocks(p, key, root) for p, key in files)
        if noisy.shape != gt.shape:
            raise DatasetLayoutError(ds, root, f"{str(files[0][0])!r} has blocks {noisy.shape} but "
                                     f"{str(files[1][0])!r} has {gt.shape}", layout)
        return SIDDValidationBlocks(noisy, gt)
    release = next((name for name in SIDD_RELEASES if root.name == name or (root / name).is_dir()),
                   "SIDD_Medium_Srgb")
    base = root if root.name == release else require_dir(root / release, ds, root, layout)
    data = require_dir(base / "Data", ds, root, layout)
    samples: list[tuple[Path, Path]] = []
    for scene in sorted(p for p in data.iterdir() if p.is_dir()):
        samples += _sidd_scene_pairs(scene, ds, root, layout)
    if not samples:
        raise DatasetLayoutError(ds, root, f"{str(data)!r} has no <scene>/<nnnn>_NOISY_SRGB_<nnn>.PNG images", layout)
    check_count(f"SIDD ({release}, 160 scene instances)", data, len(samples), SIDD_RELEASES[release],
                "noisy/ground-truth pairs")
    return PairedImageDataset(samples, crop_size=crop_size, augment=split == "train" if augment is None else augment,
                              rot90=rot90, generator=generator, root=base, dataset=ds, layout=layout)
