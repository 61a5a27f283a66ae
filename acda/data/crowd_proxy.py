"""Offline crowd-counting proxy: real faces pasted under a perspective scale gradient onto real photographs.

No crowd dataset ships with the repository, so ``crowd_proxy`` builds a labelled stand-in for
ShanghaiTech / UCF-QNRF (paper §4.2) from data bundled in the scikit-image wheel (no download): the
100 faces of ``skimage.data.lfw_subset()`` (0–69 train, 70–99 test) pasted onto the photographs of
``CROWD_BACKGROUNDS`` (train crops from their left halves, test crops from the right halves), with
a face size that grows linearly from the top row to the bottom row (``scale``, default 6 → 24 px)
and, by default, rows drawn uniformly on the ground plane — the per-pixel receptive fields the
paper claims for counting have to follow the object size.

Items, targets and augmentation are those of ``acda.data.crowd.CrowdDataset`` (which
``CrowdProxy`` subclasses): ``(image (3, H, W) float32, density (1, H/s, W/s) float32)``, one
point at the centre of each pasted face, inside the image, so a map sums to the count. Image i of
a split is a pure function of ``(seed, split, i)``; images are stored as uint8.

See docs/proxies.md for the objects, backgrounds, perspective, pasting (mask, contrast, colour,
occlusion), annotations and determinism.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ..utils import check_choice, check_int, check_positive_int, pair
from .crowd import SIGMA, CrowdDataset
from .imagenet import MEAN, STD

__all__ = ["CROWD_BACKGROUNDS", "FACE_SPLITS", "CrowdProxy", "crowd_proxy", "crowd_proxy_preview"]

CROWD_BACKGROUNDS = ("brick", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
                     "immunohistochemistry", "moon", "page", "retina", "rocket")
FACE_SPLITS = {"train": range(0, 70), "test": range(70, 100)}  # indices into skimage.data.lfw_subset()
SPLITS = ("train", "test")
PLACEMENTS = ("perspective", "uniform")
MIN_SIZE = 2
_MASK_AXES, _MASK_SOFT = (0.45, 0.5), 0.25
_CAST = (0.6, 1.4)


# ---------------------------------------------------------------------------------------------
# Sources (cached per process; never modified)
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _faces() -> np.ndarray:
    """The 100 LFW faces, (100, 25, 25) float32 in [0, 1]."""
    import skimage.data
    from skimage.util import img_as_float32

    faces = img_as_float32(skimage.data.lfw_subset()[:100])
    faces.setflags(write=False)
    return faces


@functools.lru_cache(maxsize=32)
def _background(name: str, short_side: int) -> np.ndarray:
    """Bundled photograph ``name`` as (H, W, 3) float32 in [0, 1], short side ``short_side``."""
    import skimage.data
    from skimage.util import img_as_float32

    image = img_as_float32(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    t = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)[None]
    scale = short_side / min(t.shape[-2:])
    size = [max(short_side, round(s * scale)) for s in t.shape[-2:]]
    out = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    out = out.clamp(0, 1).permute(1, 2, 0).contiguous().numpy()
    out.setflags(write=False)
    return out


def _is_grey(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))


def _mask(s: int) -> np.ndarray:
    """Soft elliptical alpha mask (s, s) float32 (docs/proxies.md)."""
    c = (np.arange(s, dtype=np.float32) + 0.5) / s - 0.5  # pixel centres in (-0.5, 0.5)
    r = np.sqrt((c[None, :] / _MASK_AXES[0]) ** 2 + (c[:, None] / (_MASK_AXES[1])) ** 2)
    return np.clip((1 - r) / _MASK_SOFT, 0, 1).astype(np.float32)


class _FaceBank:
    """The split's faces resized to each side length s on demand, with their masks."""

    def __init__(self, faces: np.ndarray) -> None:
        self.faces = torch.from_numpy(np.ascontiguousarray(faces))[:, None]
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __getitem__(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        if s not in self._cache:
            resized = F.interpolate(self.faces, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
            self._cache[s] = (resized[:, 0].clamp(0, 1).numpy(), _mask(s))
        return self._cache[s]


# ---------------------------------------------------------------------------------------------
# Rendering one image
# ---------------------------------------------------------------------------------------------

def _rows(rng: np.random.Generator, n: int, h: int, top: float, bottom: float, placement: str) -> np.ndarray:
    """n continuous centre rows in [0, h): uniform, or with density ∝ 1/s(y)² (s linear from top to bottom)."""
    u = rng.random(n)
    if placement == "uniform" or top == bottom:
        return u * h
    a, b = top, (bottom - top) / h
    total = 1 / a - 1 / bottom  # ∫_0^h dy / (a + b y)² · b
    return np.clip((1 / (1 / a - u * total) - a) / b, 0, np.nextafter(h, 0))


def _corner(centre: np.ndarray, s: np.ndarray, extent: int) -> np.ndarray:
    """Integer top-left corners nearest to ``centre - s/2`` whose square centre lies in [0, extent)."""
    lo, hi = np.ceil(-s / 2), np.ceil(extent - s / 2) - 1
    return np.clip(np.floor(centre - s / 2 + 0.5), lo, hi).astype(np.int64)


def _render(rng: np.random.Generator, cfg: dict, bank: _FaceBank, face_ids: np.ndarray, short_side: int) -> dict:
    h, w = cfg["size"]
    # background crop in this split's half
    name = cfg["backgrounds"][int(rng.integers(len(cfg["backgrounds"])))]
    bg = _background(name, short_side)
    bh, bw = bg.shape[:2]
    half = bw // 2
    c0, c1 = (0, half) if cfg["split"] == "train" else (half, bw)
    top = int(rng.integers(0, bh - h + 1))
    left = int(rng.integers(c0, c1 - w + 1))
    flip = bool(rng.random() < 0.5)
    canvas = bg[top:top + h, left:left + w]
    canvas = np.array(canvas[:, ::-1] if flip else canvas, dtype=np.float32)
    grey = _is_grey(canvas)
    cast = np.ones(3) if grey else np.clip(canvas.reshape(-1, 3).mean(0) / max(canvas.mean(), 1e-6), *_CAST)

    # objects
    lo, hi = cfg["count"]
    n = int(rng.integers(lo, hi + 1))
    s_top, s_bottom = cfg["scale"]
    rows = _rows(rng, n, h, s_top, s_bottom, cfg["placement"])
    cols = rng.random(n) * w
    jitter = cfg["scale_jitter"]
    sizes = (s_top + (s_bottom - s_top) * rows / h) * rng.uniform(1 - jitter, 1 + jitter, n)
    sizes = np.maximum(np.rint(sizes), MIN_SIZE).astype(np.int64)
    y0, x0 = _corner(rows, sizes, h), _corner(cols, sizes, w)
    which = rng.integers(len(face_ids), size=n)
    mirror = rng.random(n) < 0.5
    contrast = rng.uniform(*cfg["contrast"], n)
    brightness = rng.uniform(*cfg["brightness"], n)
    gains = (rng.uniform(1 - cfg["tint"], 1 + cfg["tint"], (n, 3)) * cast).astype(np.float32)
    order = np.argsort(y0 + sizes / 2, kind="stable")  # far (top) to near (bottom)

    owner = np.full((h, w), -1, dtype=np.int64)
    covered = np.zeros(n)
    for k in order:
        s = int(sizes[k])
        faces, mask = bank[s]
        f = faces[which[k]]
        if mirror[k]:
            f, mask = f[:, ::-1], mask[:, ::-1]
        mu = f.mean()
        f = np.clip(mu + contrast[k] * (f - mu) + brightness[k], 0, 1)
        patch = f[..., None] if grey else np.clip(f[..., None] * gains[k], 0, 1)
        ya, yb, xa, xb = y0[k], y0[k] + s, x0[k], x0[k] + s
        cya, cyb, cxa, cxb = max(ya, 0), min(yb, h), max(xa, 0), min(xb, w)
        sl = (slice(cya - ya, cyb - ya), slice(cxa - xa, cxb - xa))
        alpha = mask[sl][..., None]
        region = canvas[cya:cyb, cxa:cxb]
        region += alpha * (patch[sl] - region)
        owner[cya:cyb, cxa:cxb][mask[sl] > 0.5] = k
        covered[k] = (mask > 0.5).sum()
    seen = np.bincount(owner.ravel() + 1, minlength=n + 1)[1:]
    image = np.rint(canvas * 255).clip(0, 255).astype(np.uint8).transpose(2, 0, 1)
    return {"image": image, "points": np.stack([x0 + sizes / 2, y0 + sizes / 2], axis=1).astype(np.float64),
            "sizes": sizes, "faces": np.asarray(face_ids)[which], "visible": seen / np.maximum(covered, 1),
            "background": {"name": name, "top": top, "left": left, "height": h, "width": w, "flip": flip,
                           "background_height": bh, "background_width": bw}}


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------

class CrowdProxy(CrowdDataset):
    """Rendered proxy images with point annotations; items, targets and augmentation of ``CrowdDataset``.

    Built by ``crowd_proxy`` (docs/proxies.md). Per item, besides ``points``/``count``/``counts``/
    ``image_size``/``eval_padding``: ``sizes(i)`` (side length of each pasted face, in the order of
    ``points(i)``), ``face_ids(i)`` (indices into ``skimage.data.lfw_subset()``), ``visibility(i)``
    (visible fraction of each face's mask core after occlusion and border cuts), ``background(i)``
    (which photograph and crop) and ``raw_image(i)`` (uint8 (3, H, W), not normalised).
    """

    def __init__(self, records: Sequence[dict], config: dict, *, augment: bool = False,
                 crop_size: int | Sequence[int] | None = None, sigma: float = SIGMA, radius: int | None = None,
                 density_stride: int = 1, pad_to: int | None = None, normalize: bool = True) -> None:
        size = tuple(config["size"])
        if crop_size is None:  # the whole image, rounded up to the input padding
            p = check_positive_int("density_stride", density_stride) if pad_to is None else \
                check_positive_int("pad_to", pad_to)
            crop_size = tuple(-(-v // p) * p for v in size)
        super().__init__([], _no_files, augment=augment, crop_size=crop_size, sigma=sigma, radius=radius,
                         density_stride=density_stride, pad_to=pad_to, max_size=None, normalize=normalize)
        self.config = dict(config)
        self._images = torch.from_numpy(np.stack([r["image"] for r in records])) if records else \
            torch.zeros((0, 3, *size), dtype=torch.uint8)
        self._points = [r["points"] for r in records]
        self._sizes = [size] * len(records)
        self._objects = [{k: r[k] for k in ("sizes", "faces", "visible")} for r in records]
        self._backgrounds = [dict(r["background"]) for r in records]
        self._digest: str | None = None

    def __len__(self) -> int:
        return len(self._points)

    def raw_image(self, index: int) -> torch.Tensor:
        """Item ``index``'s image as rendered: uint8 (3, H, W)."""
        return self._images[index].clone()

    def load_image(self, index: int) -> torch.Tensor:
        x = TF.to_dtype(self._images[index], torch.float32, scale=True)
        return TF.normalize(x, list(MEAN), list(STD)) if self.normalize else x

    def sizes(self, index: int) -> torch.Tensor:
        """(N,) int64 side length in pixels of each pasted face of item ``index`` (order of ``points``)."""
        return torch.from_numpy(self._objects[index]["sizes"].copy())

    def face_ids(self, index: int) -> torch.Tensor:
        """(N,) int64 index into ``skimage.data.lfw_subset()`` of each pasted face of item ``index``."""
        return torch.from_numpy(self._objects[index]["faces"].astype(np.int64))

    def visibility(self, index: int) -> torch.Tensor:
        """(N,) float64: the fraction of each face's mask core (alpha > 1/2) left visible in the image."""
        return torch.from_numpy(self._objects[index]["visible"].copy())

    def background(self, index: int) -> dict:
        """Photograph ``name`` and crop ``top, left, height, width, flip`` of item ``index``, in the
        rescaled photograph of ``background_height × background_width`` pixels."""
        return dict(self._backgrounds[index])

    def fingerprint(self) -> str:
        """Generator arguments, target settings and a SHA-256 of the rendered images and points."""
        if self._digest is None:
            h = hashlib.sha256(self._images.numpy().tobytes())
            for p in self._points:
                h.update(np.ascontiguousarray(p).tobytes())
            self._digest = h.hexdigest()
        args = json.dumps(self.config, sort_keys=True)
        return (f"crowd_proxy{args};sigma={self.sigma};radius={self.radius};stride={self.density_stride};"
                f"normalize={self.normalize};sha256={self._digest}")


def _no_files(path):  # CrowdProxy has no annotation files
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Arguments and the factory
# ---------------------------------------------------------------------------------------------

def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _range(name: str, value: object, low: float | None = None) -> tuple[float, float]:
    """A (lo, hi) pair of finite numbers with lo <= hi (and lo >= low)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (lo, hi) of numbers, got {value!r}")
    lo, hi = (_number(name, v) for v in value)
    if lo > hi or (low is not None and lo < low):
        bound = "" if low is None else f", lo >= {low}"
        raise ValueError(f"{name} must be a pair (lo, hi) with lo <= hi{bound}, got {value!r}")
    return lo, hi


def crowd_proxy(split: str = "train", num_images: int = 200, size: int | Sequence[int] = 128, seed: int = 0, *,
                count: int | Sequence[int] = (10, 60), scale: Sequence[float] = (6.0, 24.0),
                scale_jitter: float = 0.1, placement: str = "perspective",
                contrast: Sequence[float] = (0.6, 1.4), brightness: Sequence[float] = (-0.2, 0.2),
                tint: float = 0.15, backgrounds: Sequence[str] = CROWD_BACKGROUNDS,
                density_stride: int = 1, sigma: float = SIGMA, radius: int | None = None, pad_to: int | None = None,
                augment: bool | None = None, crop_size: int | Sequence[int] | None = None,
                normalize: bool = True) -> CrowdProxy:
    """``num_images`` proxy crowd images of ``size`` (H, W) for ``split`` "train" or "test" (docs/proxies.md).

    ``count``: objects per image, (lo, hi) inclusive or an int. ``scale``: (top, bottom) face side in
    pixels at the top and bottom rows (one number: the same size everywhere, a no-perspective
    control; top > bottom is allowed); ``scale_jitter``: relative per-face size jitter in [0, 1);
    ``placement``: "perspective" (rows ∝ 1/s², uniform on the ground) or "uniform". ``contrast``,
    ``brightness``: ranges of the per-face grey-level jitter; ``tint``: per-channel colour jitter on
    colour backgrounds. ``backgrounds``: names from ``CROWD_BACKGROUNDS``. The remaining arguments
    are ``CrowdDataset``'s; ``augment`` defaults to ``split == "train"`` and ``crop_size`` to the
    whole image (rounded up to ``pad_to``). Same arguments, same data.
    """
    check_choice("split", split, SPLITS)
    check_int("num_images", num_images, minimum=0)
    size = pair(size, "size", minimum=8)
    check_int("seed", seed, minimum=0)
    count = pair(count, "count", minimum=0)
    if count[0] > count[1]:
        raise ValueError(f"count must be (lo, hi) with lo <= hi, got {count!r}")
    if isinstance(scale, int | float):
        scale = (scale, scale)
    if isinstance(scale, str) or not isinstance(scale, Sequence) or len(scale) != 2:
        raise TypeError(f"scale must be a number or a pair (top, bottom) of numbers, got {scale!r}")
    scale = tuple(_number("scale", v) for v in scale)
    if min(scale) < 1:
        raise ValueError(f"scale must be >= 1 pixel, got {scale!r}")
    if max(scale) > 2 * min(size):
        raise ValueError(f"scale {scale} must not exceed twice the image side {min(size)}")
    scale_jitter = _number("scale_jitter", scale_jitter)
    if not 0 <= scale_jitter < 1:
        raise ValueError(f"scale_jitter must be in [0, 1), got {scale_jitter!r}")
    check_choice("placement", placement, PLACEMENTS)
    contrast = _range("contrast", contrast, low=0.0)
    brightness = _range("brightness", brightness)
    tint = _number("tint", tint)
    if not 0 <= tint < 1:
        raise ValueError(f"tint must be in [0, 1), got {tint!r}")
    if isinstance(backgrounds, str) or not isinstance(backgrounds, Sequence) or not backgrounds:
        raise TypeError(f"backgrounds must be a non-empty sequence of names from {CROWD_BACKGROUNDS}, "
                        f"got {backgrounds!r}")
    unknown = [b for b in backgrounds if b not in CROWD_BACKGROUNDS]
    if unknown:
        raise ValueError(f"backgrounds: unknown {unknown}; choose from {CROWD_BACKGROUNDS}")
    check_positive_int("density_stride", density_stride)
    if pad_to is not None:
        check_positive_int("pad_to", pad_to)

    config = {"split": split, "num_images": num_images, "size": list(size), "seed": seed, "count": list(count),
              "scale": list(scale), "scale_jitter": scale_jitter, "placement": placement,
              "contrast": list(contrast), "brightness": list(brightness), "tint": tint,
              "backgrounds": list(backgrounds)}
    face_ids = np.asarray(FACE_SPLITS[split])
    bank = _FaceBank(_faces()[face_ids])
    short_side = 2 * max(size)
    split_code = SPLITS.index(split)
    records = [_render(np.random.default_rng([seed, split_code, i]), config, bank, face_ids, short_side)
               for i in range(num_images)]
    return CrowdProxy(records, config, augment=split == "train" if augment is None else bool(augment),
                      crop_size=crop_size, sigma=sigma, radius=radius, density_stride=density_stride,
                      pad_to=pad_to, normalize=normalize)


def crowd_proxy_preview(dataset: CrowdProxy, indices: Sequence[int] | None = None) -> list[dict]:
    """Plot-ready data of a few items (default the first 6): per item ``image`` (H, W, 3) uint8 numpy,
    ``points`` (N, 2) (x, y), ``sizes`` (N,) and ``count``. For a preview figure outside ``acda``
    (with ``imshow``'s pixel-centred axes, plot a point at (x - 0.5, y - 0.5))."""
    if indices is None:
        indices = range(min(6, len(dataset)))
    out = []
    for i in indices:
        check_int("index", i, minimum=0, maximum=len(dataset) - 1)
        out.append({"image": dataset.raw_image(i).permute(1, 2, 0).numpy(), "points": dataset.points(i).numpy(),
                    "sizes": dataset.sizes(i).numpy(), "count": dataset.count(i)})
    return out
