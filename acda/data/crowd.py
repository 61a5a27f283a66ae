"""Crowd counting: ShanghaiTech Parts A and B, UCF-QNRF with fixed-kernel density maps (paper §4.2, Table 3).

§4.2 trains on "groundtruth heatmaps of each object marked by a fixed-size Gaussian kernel" with an
MSE loss; kernel size, crop size and resize rule are not given, so ours are arguments. Layouts
(``root``: the folder holding ``part_A_final`` / ``part_B_final`` / ``UCF-QNRF_ECCV18``, or that folder itself)::

    part_{A,B}_final/{train_data,test_data}/images/IMG_<n>.jpg
    part_{A,B}_final/{train_data,test_data}/ground_truth/GT_IMG_<n>.mat    image_info{1}.location: (N, 2) (x, y)
    UCF-QNRF_ECCV18/{Train,Test}/img_<nnnn>.jpg
    UCF-QNRF_ECCV18/{Train,Test}/img_<nnnn>_ann.mat                    annPoints: (N, 2) (x, y)

Annotations are 0-based continuous (x, y); images whose long side exceeds ``max_size`` (QNRF: 2048)
are downscaled; ``density_map`` puts a σ = 4 px Gaussian (radius 12), renormalised inside the
image, on each point, so a map sums to the count; ``sum_pool`` by ``density_stride`` keeps it.
Items: ``(image (3, H, W) float32, ImageNet-normalised, density (1, H/s, W/s) float32)``; training
takes random ``crop_size`` crops and horizontal flips. Layout errors raise ``DatasetLayoutError``,
unreadable images ``ImageFileError``, both naming the file.

See docs/data.md for every convention (coordinates, resize, kernel, stride and padding, items,
augmentation, errors) and where each comes from.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.io
import scipy.ndimage
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from ..utils import check_choice, check_int, check_number, check_positive_int, pair
from .imagenet import MEAN, STD, ImageFileError, image_size, load_image
from .layout import DatasetLayoutError, check_count, require_dir

__all__ = ["CrowdDataset", "shanghaitech", "shanghaitech_a", "shanghaitech_b", "ucf_qnrf", "CROWD_DATASETS", "density_map", "gaussian_kernel1d",
           "sum_pool", "pad_to_multiple", "scaled_size", "read_shanghaitech_points", "read_qnrf_points",
           "SHANGHAITECH_A_LAYOUT", "SHANGHAITECH_B_LAYOUT", "UCF_QNRF_LAYOUT", "SIGMA", "QNRF_MAX_SIZE", "RELEASE_COUNTS"]

IntPairLike = int | Sequence[int]
SIGMA = 4.0
QNRF_MAX_SIZE = 2048
SHANGHAITECH_LAYOUT = (
    "  <data-root>/part_{part}_final/{{train_data,test_data}}/images/IMG_<n>.jpg\n"
    "  <data-root>/part_{part}_final/{{train_data,test_data}}/ground_truth/GT_IMG_<n>.mat   (MATLAB v5 file; "
    "image_info{{1}}.location: (N, 2) (x, y) head positions, i.e. mat['image_info'][0,0][0,0][0])\n"
    "  (<data-root> may also be part_{part}_final itself)")
SHANGHAITECH_A_LAYOUT = SHANGHAITECH_LAYOUT.format(part="A")
SHANGHAITECH_B_LAYOUT = SHANGHAITECH_LAYOUT.format(part="B")
# images per split as released: ShanghaiTech (Zhang et al., CVPR 2016, §5.1), UCF-QNRF (Idrees et al., ECCV 2018)
RELEASE_COUNTS = {"ShanghaiTech Part A": {"train": 300, "test": 182}, "ShanghaiTech Part B": {"train": 400, "test": 316},
                  "UCF-QNRF": {"train": 1201, "test": 334}}
UCF_QNRF_LAYOUT = (
    "  <data-root>/UCF-QNRF_ECCV18/{Train,Test}/img_<nnnn>.jpg\n"
    "  <data-root>/UCF-QNRF_ECCV18/{Train,Test}/img_<nnnn>_ann.mat   (MATLAB v5 file; variable annPoints: "
    "(N, 2) (x, y) head positions)\n"
    "  (<data-root> may also be UCF-QNRF_ECCV18 itself)")


# ---------------------------------------------------------------------------------------------
# Density maps
# ---------------------------------------------------------------------------------------------

def gaussian_kernel1d(sigma: float = SIGMA, radius: int | None = None) -> np.ndarray:
    """Sampled 1-D Gaussian on offsets -radius … radius (float64, sums to 1); ``radius=None``: ⌈3σ⌉."""
    check_number("sigma", sigma, positive=True)
    radius = math.ceil(3 * sigma) if radius is None else check_int("radius", radius, minimum=0)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _as_points(points: np.ndarray | torch.Tensor | Sequence) -> np.ndarray:
    pts = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64)
    if pts.size == 0:
        return np.zeros((0, 2))
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be an (N, 2) array of (x, y), got shape {pts.shape}")
    return pts


def _inside(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Mask of the points (x, y) inside an image of ``size`` (H, W): 0 ≤ x < W and 0 ≤ y < H."""
    h, w = size
    x, y = points[:, 0], points[:, 1]
    return (x >= 0) & (x < w) & (y >= 0) & (y < h)


def density_map(points: np.ndarray | torch.Tensor | Sequence, size: IntPairLike, sigma: float = SIGMA,
                radius: int | None = None, window: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Fixed-kernel density map (H, W) float32 of (x, y) ``points`` in an image of ``size`` (H, W).

    Each point inside the image puts a Gaussian (``gaussian_kernel1d(sigma, radius)`` ⊗ itself)
    centred on its pixel (⌊y⌋, ⌊x⌋), renormalised to sum to 1 over the image (docs/data.md);
    points outside are dropped, so the map sums to the number of points inside. The renormalised
    kernel of a point at (r, c) is u_r ⊗ v_c, where u_r is the 1-D kernel restricted to the image
    rows and divided by its sum Z_r (likewise v_c): the map is two zero-padded 1-D correlations of
    the point-count image weighted by 1/(Z_r·Z_c), computed in float64.

    ``window=(top, left, height, width)`` (inside the image) returns only that part of the same map,
    at a cost proportional to the window (training crops of large images).
    """
    h, w = pair(size, "size")
    g = gaussian_kernel1d(sigma, radius)
    r = len(g) // 2
    pts = _as_points(points)
    pts = pts[_inside(pts, (h, w))]
    rows, cols = np.floor(pts[:, 1]).astype(np.int64), np.floor(pts[:, 0]).astype(np.int64)
    if window is None:
        top, left, wh, ww = 0, 0, h, w
    else:
        top, left, wh, ww = (check_int(n, v) for n, v in zip(("top", "left", "height", "width"), window))
        if not (0 <= top and 0 <= left and 1 <= wh and 1 <= ww and top + wh <= h and left + ww <= w):
            raise ValueError(f"window {window} (top, left, height, width) must lie inside the image of size {(h, w)}")
    # the rows/columns whose points reach the window, and those points
    r0, r1, c0, c1 = max(0, top - r), min(h, top + wh + r), max(0, left - r), min(w, left + ww + r)
    keep = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
    rows, cols = rows[keep], cols[keep]
    z_rows = scipy.ndimage.correlate1d(np.ones(h), g, mode="constant")  # Z_r: kernel mass inside the image
    z_cols = scipy.ndimage.correlate1d(np.ones(w), g, mode="constant")
    counts = np.zeros((r1 - r0, c1 - c0))
    np.add.at(counts, (rows - r0, cols - c0), 1.0 / (z_rows[rows] * z_cols[cols]))
    d = scipy.ndimage.correlate1d(counts, g, axis=0, mode="constant")
    d = scipy.ndimage.correlate1d(d, g, axis=1, mode="constant")
    d = d[top - r0:top - r0 + wh, left - c0:left - c0 + ww]
    return torch.from_numpy(np.ascontiguousarray(d, dtype=np.float32))



def pad_to_multiple(x: torch.Tensor, multiple: int, value: float = 0.0) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (..., H, W) at the bottom and right to multiples of ``multiple``; returns ``(x, (pad_h, pad_w))``."""
    check_positive_int("multiple", multiple)
    ph, pw = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), value=value)
    return x, (ph, pw)


def sum_pool(density: torch.Tensor, stride: int) -> torch.Tensor:
    """Downsample a density map (..., H, W) by summing ``stride``×``stride`` blocks, after zero-padding
    to a multiple of ``stride``: (..., ⌈H/s⌉, ⌈W/s⌉), with the same total (the count) exactly."""
    check_positive_int("stride", stride)
    if stride == 1:
        return density
    density, _ = pad_to_multiple(density, stride)
    *lead, h, w = density.shape
    return density.reshape(*lead, h // stride, stride, w // stride, stride).sum(dim=(-3, -1))


def scaled_size(size: IntPairLike, max_size: int | None) -> tuple[int, int]:
    """(H, W) after the resize rule: downscale so the long side is ``max_size`` (aspect ratio kept,
    each side rounded, at least 1); unchanged if it already fits or ``max_size`` is None."""
    h, w = pair(size, "size")
    if max_size is None or max(h, w) <= check_positive_int("max_size", max_size):
        return h, w
    s = max_size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


# ---------------------------------------------------------------------------------------------
# Annotation files
# ---------------------------------------------------------------------------------------------

def _loadmat(path: Path, dataset: str, root: Path, layout: str) -> dict:
    try:
        return scipy.io.loadmat(str(path))
    except Exception as e:  # noqa: BLE001 -- MatReadError, ValueError, OSError, NotImplementedError (v7.3)
        raise DatasetLayoutError(dataset, root, f"cannot read annotation file {str(path)!r} "
                                 f"({type(e).__name__}: {e})", layout) from None


def _check_points(value, path: Path, what: str, dataset: str, root: Path, layout: str) -> np.ndarray:
    if np.iscomplexobj(value):  # casting would drop the imaginary parts without a word
        raise DatasetLayoutError(dataset, root, f"annotation file {str(path)!r}: {what} holds complex numbers; "
                                 "expected real (x, y) coordinates", layout)
    try:
        pts = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        pts = None
    if pts is None or (pts.size and (pts.ndim != 2 or pts.shape[1] != 2)):
        shape = getattr(pts, "shape", type(value).__name__)
        raise DatasetLayoutError(dataset, root, f"annotation file {str(path)!r}: {what} must be an (N, 2) numeric "
                                 f"array of (x, y), got {shape}", layout)
    pts = pts.reshape(-1, 2)
    if not np.isfinite(pts).all():
        raise DatasetLayoutError(dataset, root, f"annotation file {str(path)!r}: {what} has non-finite "
                                 "coordinates", layout)
    return pts


def read_shanghaitech_points(path: str | Path, root: str | Path | None = None) -> np.ndarray:
    """(N, 2) float64 (x, y) of a ShanghaiTech ``GT_IMG_<n>.mat``: ``mat['image_info'][0,0][0,0][0]``
    (``image_info{1}.location``; read by field name when the struct has one)."""
    path = Path(path)
    root, ds, layout = Path(root if root is not None else path.parent), "ShanghaiTech", SHANGHAITECH_LAYOUT.format(part="{A,B}")
    mat = _loadmat(path, ds, root, layout)
    try:
        record = mat["image_info"][0, 0]
        names = record.dtype.names or ()
        location = record["location"][0, 0] if "location" in names else record[0, 0][0]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetLayoutError(ds, root, f"annotation file {str(path)!r} lacks image_info{{1}}.location "
                                 f"({type(e).__name__}: {e}; variables {keys})", layout) from None
    return _check_points(location, path, "image_info{1}.location", ds, root, layout)


def read_qnrf_points(path: str | Path, root: str | Path | None = None) -> np.ndarray:
    """(N, 2) float64 (x, y) of a UCF-QNRF ``img_<nnnn>_ann.mat`` (variable ``annPoints``)."""
    path = Path(path)
    root, ds = Path(root if root is not None else path.parent), "UCF-QNRF"
    mat = _loadmat(path, ds, root, UCF_QNRF_LAYOUT)
    if "annPoints" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetLayoutError(ds, root, f"annotation file {str(path)!r} lacks variable 'annPoints' "
                                 f"(has {keys})", UCF_QNRF_LAYOUT)
    return _check_points(mat["annPoints"], path, "annPoints", ds, root, UCF_QNRF_LAYOUT)


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------

class CrowdDataset(Dataset):
    """Images with point annotations → ``(image (3, H, W), density (1, H/s, W/s))`` (docs/data.md).

    ``samples``: (image path, annotation path) pairs; ``read_points(annotation path)`` → (N, 2) (x, y).
    Annotations and image headers are read once, here (so a malformed ``.mat`` or an unreadable image
    header fails at construction, naming the file); images are decoded per item.

    - ``augment``: random ``crop_size`` crops + horizontal flips (training); else whole images.
    - ``crop_size``: int or (h, w), a multiple of ``pad_to``.
    - ``sigma``, ``radius``: the fixed Gaussian (``density_map``).
    - ``density_stride``: s, the network's output stride (targets sum-pooled s×s).
    - ``pad_to``: inputs padded to multiples of it (default s; a multiple of s).
    - ``max_size``: the resize rule's long-side limit (None: no resize).
    - ``normalize``: ImageNet mean/std normalisation (else [0, 1]).
    - ``root``: the dataset folder; ``fingerprint()`` names files relative to it.
    """

    def __init__(self, samples: Sequence[tuple[str | Path, str | Path]], read_points: Callable[[Path], np.ndarray],
                 *, augment: bool = False, crop_size: IntPairLike = 256, sigma: float = SIGMA,
                 radius: int | None = None, density_stride: int = 1, pad_to: int | None = None,
                 max_size: int | None = None, normalize: bool = True, root: str | Path | None = None) -> None:
        self.density_stride = check_positive_int("density_stride", density_stride)
        self.pad_to = density_stride if pad_to is None else check_positive_int("pad_to", pad_to)
        if self.pad_to % self.density_stride:
            raise ValueError(f"pad_to ({self.pad_to}) must be a multiple of density_stride ({self.density_stride})")
        self.crop_size = pair(crop_size, "crop_size")
        if any(c % self.pad_to for c in self.crop_size):
            raise ValueError(f"crop_size {self.crop_size} must be a multiple of pad_to ({self.pad_to})")
        gaussian_kernel1d(sigma, radius)  # checks sigma and radius
        self.sigma, self.radius = float(sigma), radius
        self.max_size = None if max_size is None else check_positive_int("max_size", max_size)
        self.augment, self.normalize = bool(augment), bool(normalize)
        self.root = None if root is None else Path(root)
        self.samples = [(Path(i), Path(a)) for i, a in samples]
        self._sizes: list[tuple[int, int]] = []
        self._points: list[np.ndarray] = []
        for image_path, ann_path in self.samples:
            h, w = image_size(image_path)
            size = scaled_size((h, w), self.max_size)
            pts = np.array(read_points(ann_path), dtype=np.float64).reshape(-1, 2)
            pts = pts * np.array([size[1] / w, size[0] / h])
            self._sizes.append(size)
            self._points.append(pts[_inside(pts, size)])

    def __len__(self) -> int:
        return len(self.samples)

    def image_size(self, index: int) -> tuple[int, int]:
        """(H, W) of item ``index``'s image after the resize rule, before any crop or padding."""
        return self._sizes[index]

    def points(self, index: int) -> torch.Tensor:
        """(N, 2) float64 (x, y) annotations of item ``index`` in its (resized) image, those outside dropped."""
        return torch.from_numpy(self._points[index].copy())

    def count(self, index: int) -> int:
        """The true count of item ``index``: its number of points inside the image."""
        return len(self._points[index])

    @property
    def counts(self) -> torch.Tensor:
        """True counts (N,) int64 of all items."""
        return torch.tensor([len(p) for p in self._points], dtype=torch.int64)

    def eval_padding(self, index: int) -> tuple[int, int]:
        """(pad bottom, pad right) that evaluation items add to the image: crop ``[..., :H, :W]`` back."""
        h, w = self._sizes[index]
        return -h % self.pad_to, -w % self.pad_to

    def fingerprint(self) -> str:
        """Identifies the data for ``acda.train`` resume: files (relative to the root), counts and the
        target settings (not the augmentation)."""
        def rel(p: Path) -> str:
            return str(p.relative_to(self.root)) if self.root is not None and p.is_relative_to(self.root) else str(p)
        files = ";".join(f"{rel(i)},{rel(a)},{len(p)}" for (i, a), p in zip(self.samples, self._points))
        return (f"sigma={self.sigma};radius={self.radius};stride={self.density_stride};max_size={self.max_size};"
                f"normalize={self.normalize};{files}")

    def load_image(self, index: int) -> torch.Tensor:
        """The (resized) RGB image of item ``index`` as float32 (3, H, W), in [0, 1] or normalised."""
        path = self.samples[index][0]
        img = load_image(str(path))
        h, w = self._sizes[index]
        if img.size != (w, h):
            try:
                img = img.resize((w, h), Image.BILINEAR)
            except Exception as e:  # noqa: BLE001 -- decoding errors surface here for lazy images
                raise ImageFileError(f"cannot read image {str(path)!r}: {type(e).__name__}: {e}", str(path)) from e
        x = TF.to_dtype(TF.pil_to_tensor(img), torch.float32, scale=True)
        return TF.normalize(x, list(MEAN), list(STD)) if self.normalize else x

    def density(self, index: int, window: tuple[int, int, int, int] | None = None) -> torch.Tensor:
        """Full-resolution density map (H, W) of item ``index`` (or of ``window``), not pooled or padded."""
        return density_map(self._points[index], self._sizes[index], self.sigma, self.radius, window)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.load_image(index)
        h, w = self._sizes[index]
        if self.augment:
            ch, cw = self.crop_size
            top = int(torch.randint(0, max(h - ch, 0) + 1, ()))
            left = int(torch.randint(0, max(w - cw, 0) + 1, ()))
            wh, ww = min(ch, h - top), min(cw, w - left)
            image = F.pad(image[:, top:top + wh, left:left + ww], (0, cw - ww, 0, ch - wh))
            density = F.pad(self.density(index, (top, left, wh, ww)), (0, cw - ww, 0, ch - wh))
            if bool(torch.rand(()) < 0.5):
                image, density = image.flip(-1), density.flip(-1)
        else:
            image, _ = pad_to_multiple(image, self.pad_to)
            density, _ = pad_to_multiple(self.density(index), self.pad_to)
        return image, sum_pool(density[None], self.density_stride)


# ---------------------------------------------------------------------------------------------
# The two datasets of Table 3
# ---------------------------------------------------------------------------------------------

def _natural_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def _files(folder: Path, suffix: str) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(suffix)), key=_natural_key)


def _base(root: Path, folder: str, dataset: str, layout: str) -> Path:
    if not root.is_dir():
        raise DatasetLayoutError(dataset, root, "the data root does not exist", layout)
    return root if root.name == folder else require_dir(root / folder, dataset, root, layout)


def _pair(images: list[Path], annotations: list[Path], image_to_ann: Callable[[Path], Path],
          ann_to_image: Callable[[Path], Path], dataset: str, root: Path, layout: str) -> list[tuple[Path, Path]]:
    for ann in annotations:
        if not ann_to_image(ann).is_file():
            raise DatasetLayoutError(dataset, root, f"annotation file {str(ann)!r} has no image: missing "
                                     f"{str(ann_to_image(ann))!r}", layout)
    pairs = []
    for image in images:
        ann = image_to_ann(image)
        if not ann.is_file():
            raise DatasetLayoutError(dataset, root, f"image {str(image)!r} has no annotation file: missing "
                                     f"{str(ann)!r}", layout)
        pairs.append((image, ann))
    return pairs


def _split(split: str, names: dict[str, str]) -> str:
    check_choice("split", split, names)
    return names[split]


def shanghaitech(root: str | Path, part: str = "A", split: str = "train", augment: bool | None = None,
                 **kwargs) -> CrowdDataset:
    """ShanghaiTech Part ``part`` ("A" or "B") ``split`` ("train" or "test"); ``augment`` defaults to
    ``split == "train"``; ``kwargs`` go to ``CrowdDataset`` (no resize by default: the images are at most
    1024 px). Warns when the split's image count is not the release's (``RELEASE_COUNTS``)."""
    check_choice("part", part, ("A", "B"))
    ds, layout, root = f"ShanghaiTech Part {part}", SHANGHAITECH_LAYOUT.format(part=part), Path(root)
    base = _base(root, f"part_{part}_final", ds, layout)
    folder = base / _split(split, {"train": "train_data", "test": "test_data"})
    images_dir = require_dir(folder / "images", ds, root, layout)
    gt_dir = require_dir(folder / "ground_truth", ds, root, layout)
    images, annotations = _files(images_dir, ".jpg"), _files(gt_dir, ".mat")
    if not images:
        raise DatasetLayoutError(ds, root, f"{str(images_dir)!r} has no .jpg images", layout)
    samples = _pair(images, annotations, lambda p: gt_dir / f"GT_{p.stem}.mat",
                    lambda p: images_dir / f"{p.stem.removeprefix('GT_')}.jpg", ds, root, layout)
    check_count(ds, images_dir, len(samples), RELEASE_COUNTS[ds][split])
    return CrowdDataset(samples, lambda p: read_shanghaitech_points(p, root), root=base,
                        augment=split == "train" if augment is None else augment, **kwargs)


def shanghaitech_a(root: str | Path, split: str = "train", augment: bool | None = None, **kwargs) -> CrowdDataset:
    """ShanghaiTech Part A (``shanghaitech``): the crowded part, Table 3's SHTech-A."""
    return shanghaitech(root, "A", split, augment, **kwargs)


def shanghaitech_b(root: str | Path, split: str = "train", augment: bool | None = None, **kwargs) -> CrowdDataset:
    """ShanghaiTech Part B (``shanghaitech``): the sparser street scenes, 768×1024 images."""
    return shanghaitech(root, "B", split, augment, **kwargs)


def ucf_qnrf(root: str | Path, split: str = "train", augment: bool | None = None, max_size: int | None = QNRF_MAX_SIZE,
             **kwargs) -> CrowdDataset:
    """UCF-QNRF ``split`` ("train" or "test"), images resized to a long side ≤ ``max_size`` (2048);
    ``augment`` defaults to ``split == "train"``; ``kwargs`` go to ``CrowdDataset``."""
    ds, layout, root = "UCF-QNRF", UCF_QNRF_LAYOUT, Path(root)
    base = _base(root, "UCF-QNRF_ECCV18", ds, layout)
    folder = base / _split(split, {"train": "Train", "test": "Test"})
    require_dir(folder, ds, root, layout)
    images, annotations = _files(folder, ".jpg"), _files(folder, "_ann.mat")
    if not images:
        raise DatasetLayoutError(ds, root, f"{str(folder)!r} has no .jpg images", layout)
    samples = _pair(images, annotations, lambda p: p.with_name(f"{p.stem}_ann.mat"),
                    lambda p: p.with_name(f"{p.name[:-len('_ann.mat')]}.jpg"), ds, root, layout)
    check_count(ds, folder, len(samples), RELEASE_COUNTS[ds][split])
    return CrowdDataset(samples, lambda p: read_qnrf_points(p, root), root=base, max_size=max_size,
                        augment=split == "train" if augment is None else augment, **kwargs)


CROWD_DATASETS: dict[str, Callable[..., CrowdDataset]] = {"shtech_a": shanghaitech_a, "shtech_b": shanghaitech_b,
                                                           "ucf_qnrf": ucf_qnrf}
