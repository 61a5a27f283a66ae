"""Offline real-image restoration proxy: photographs degraded by spatially NON-uniform blur and noise.

No restoration dataset ships with the repository, so ``restoration_proxy`` builds a stand-in for
RealSR super-resolution and SIDD denoising (paper §4.3) from the colour photographs bundled in the
scikit-image wheel (``RESTORATION_PHOTOS``; whole photographs held out for test, no download).
What the paper's per-pixel filters are claimed to handle is a degradation that varies across the
image, so every degradation parameter is a smooth random map over the patch (``smooth_field``):

- ``nonuniform_blur``: Gaussian blur with a per-pixel σ;
- ``sr_degrade`` (task "sr"): blur → bicubic downsampling by ``scale`` → Gaussian noise → 8 bits
  → bicubic upsampling back to the HR size (as the RealSR loader serves every release) → 8 bits;
- ``denoise_degrade`` (task "denoise"): Poisson–Gaussian sensor noise with gain and read-noise maps.

Items: ``(degraded, clean)`` float32 (3, size, size) in [0, 1], as ``acda.data.restoration``;
the train split is augmented with ``augment_pair`` flips (and a transpose for "sr"). Item i is a
pure function of ``(seed, split, task, i)``; items are stored as uint8.

See docs/proxies.md for the photographs and their rescaling, the patch margins, the field and
degradation formulas, the order of the random draws and the augmentation.
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
from torch.utils.data import Dataset

from ..utils import (
    ArgumentTypeError,
    ArgumentValueError,
    check_choice,
    check_int,
    check_positive_int,
    check_tensor,
    is_int,
)
from .restoration import augment_pair

__all__ = ["RESTORATION_PHOTOS", "PHOTO_SHORT_SIDE", "SIGMA_STEP", "RestorationProxy", "restoration_proxy",
           "load_photo", "smooth_field", "nonuniform_blur", "sr_lowres", "sr_degrade", "denoise_degrade",
           "sr_margin"]

RESTORATION_PHOTOS = {"train": ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
                                "stereo_motorcycle"),
                      "test": ("chelsea", "coffee")}
PHOTO_SHORT_SIDE = 512
SIGMA_STEP = 0.4
SPLITS = ("train", "test")
TASKS = ("sr", "denoise")
DEGRADATION_DEFAULTS = {"sr": {"sigma": (0.4, 2.0), "noise": (0.0, 0.01)},
                        "denoise": {"gain": (0.005, 0.04), "read": (0.002, 0.02)}}
_WIDTH = (0.15, 0.5)


# ---------------------------------------------------------------------------------------------
# Argument helpers
# ---------------------------------------------------------------------------------------------

def _range(name: str, value: object, *, low: float = 0.0, open_low: bool = False) -> tuple[float, float]:
    """A (lo, hi) pair of finite numbers with low <= lo <= hi (low < lo with ``open_low``)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2 or \
            any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        raise ArgumentTypeError(f"{name} must be a pair (lo, hi) of numbers, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or lo < low or (open_low and lo <= low):
        cmp = ">" if open_low else ">="
        raise ArgumentValueError(f"{name} must be a pair (lo, hi) of finite numbers with lo <= hi and lo {cmp} {low}, "
                                 f"got {value!r}")
    return lo, hi


def _rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ArgumentTypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _image(name: str, value: object) -> torch.Tensor:
    x = check_tensor(name, value, 3, "(C, H, W)")
    if not x.is_floating_point():
        raise ArgumentTypeError(f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}")
    if 0 in x.shape:
        raise ArgumentValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    return x.to(torch.float64)


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8 bits (multiples of 1/255)."""
    return torch.round(x.clamp(0, 1) * 255) / 255


# ---------------------------------------------------------------------------------------------
# Photographs (cached per process; never modified)
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)  # the 8 photographs
def _photo(name: str) -> np.ndarray:
    """Bundled photograph ``name``: read-only (3, H, W) float64, 8-bit values, short side <= 512."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] < 3:
        raise AssertionError(f"skimage.data.{name}() is not an 8-bit colour image: {image.dtype} {image.shape}")
    t = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1).to(torch.float64) / 255
    h, w = t.shape[-2:]
    if min(h, w) > PHOTO_SHORT_SIDE:
        s = PHOTO_SHORT_SIDE / min(h, w)
        size = [max(PHOTO_SHORT_SIDE, round(v * s)) for v in (h, w)]
        t = _quantize(F.interpolate(t[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0])
    out = t.contiguous().numpy()
    out.setflags(write=False)
    return out


def load_photo(name: str) -> torch.Tensor:
    """A copy of photograph ``name`` of ``RESTORATION_PHOTOS`` as used here: (3, H, W) float64 in [0, 1]."""
    known = RESTORATION_PHOTOS["train"] + RESTORATION_PHOTOS["test"]
    check_choice("name", name, known)
    return torch.from_numpy(_photo(name).copy())


# ---------------------------------------------------------------------------------------------
# Degradations
# ---------------------------------------------------------------------------------------------

def smooth_field(shape: Sequence[int], rng: np.random.Generator, low: float, high: float) -> torch.Tensor:
    """A smooth random (H, W) float64 map spanning exactly [low, high]: a linear ramp in a random
    direction mixed with a Gaussian bump (docs/proxies.md). ``low == high`` gives a constant."""
    if isinstance(shape, str) or not isinstance(shape, Sequence) or len(shape) != 2 or not all(map(is_int, shape)):
        raise ArgumentTypeError(f"shape must be a pair (H, W) of ints, got {shape!r}")
    h, w = (check_positive_int("shape", v) for v in shape)
    low, high = _range("(low, high)", (low, high), low=-math.inf)
    rng = _rng(rng)
    theta = rng.uniform(0, 2 * math.pi)
    alpha = rng.uniform(0, 1)
    cu, cv = rng.uniform(-0.5, 0.5, 2)
    width = rng.uniform(*_WIDTH)
    n = max(h, w)
    u = ((np.arange(w) + 0.5 - w / 2) / n)[None, :]
    v = ((np.arange(h) + 0.5 - h / 2) / n)[:, None]

    def unit(a: np.ndarray) -> np.ndarray:
        span = a.max() - a.min()
        return (a - a.min()) / span if span > 1e-12 else np.zeros_like(a)

    ramp = unit(np.broadcast_to(u * math.cos(theta) + v * math.sin(theta), (h, w)))
    bump = np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * width ** 2))
    g = unit(alpha * ramp + (1 - alpha) * bump)
    return torch.from_numpy(low + (high - low) * g)


def _radius(sigma: float) -> int:
    return int(4 * sigma + 0.5)


def _kernel(sigma: float, radius: int) -> torch.Tensor:
    """Sampled Gaussian of ``sigma`` normalised to sum 1, zero-padded to 2·radius + 1 taps (σ = 0: delta)."""
    k = torch.zeros(2 * radius + 1, dtype=torch.float64)
    r = _radius(sigma)
    if sigma == 0 or r == 0:
        k[radius] = 1
        return k
    j = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-j ** 2 / (2 * sigma ** 2))
    k[radius - r:radius + r + 1] = g / g.sum()
    return k


def nonuniform_blur(img: torch.Tensor, sigma_map: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of (C, H, W) ``img`` with per-pixel σ ``sigma_map`` (H, W) in pixels, >= 0.

    Blurs at levels σ_min..σ_max in steps of at most ``SIGMA_STEP`` and interpolates linearly per
    pixel between the two nearest levels; σ = 0 is the identity; reflect padding (docs/proxies.md).
    Returns float64 (C, H, W).
    """
    x = _image("img", img)
    s = check_tensor("sigma_map", sigma_map, 2, "(H, W)").to(torch.float64)
    c, h, w = x.shape
    if tuple(s.shape) != (h, w):
        raise ArgumentValueError(f"sigma_map must have the image's shape {(h, w)}, got {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()) or float(s.min()) < 0:
        raise ArgumentValueError("sigma_map must be finite and >= 0")
    lo, hi = float(s.min()), float(s.max())
    radius = _radius(hi)
    if radius == 0:
        return x.clone()
    if radius >= min(h, w):
        raise ArgumentValueError(f"sigma_map: σ = {hi:g} needs a blur radius of {radius} px (reflect padding), "
                                 f"which must be smaller than the image ({h}×{w})")
    n = math.ceil((hi - lo) / SIGMA_STEP - 1e-9) if hi > lo else 0
    levels = [lo + (hi - lo) * k / n for k in range(n + 1)] if n else [lo]
    kernels = torch.stack([_kernel(sigma, radius) for sigma in levels])  # (L, 2r + 1)
    big = len(levels)
    taps = kernels.repeat(c, 1)  # channel-major: (C·L, 2r + 1)
    xp = F.pad(x[None], (radius,) * 4, mode="reflect")
    rows = F.conv2d(xp, taps.view(c * big, 1, 1, -1), groups=c)  # (1, C·L, H + 2r, W)
    blurred = F.conv2d(rows, taps.view(c * big, 1, -1, 1), groups=c * big).view(c, big, h, w)
    if big == 1:
        return blurred[:, 0].contiguous()
    idx = ((s - lo) / (hi - lo) * n).floor().clamp(0, n - 1).long()  # the level just below σ
    var = torch.tensor(levels, dtype=torch.float64) ** 2
    v0, v1 = var[idx], var[idx + 1]
    t = ((s ** 2 - v0) / (v1 - v0)).clamp(0, 1)[None]  # weight matching the variance σ²
    idx = idx.expand(c, 1, h, w)
    lower, upper = blurred.gather(1, idx)[:, 0], blurred.gather(1, idx + 1)[:, 0]
    return lower + t * (upper - lower)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0]


def _check_scale(hr: torch.Tensor, scale: int) -> tuple[int, int]:
    check_positive_int("scale", scale)
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ArgumentValueError(f"hr: height and width must be multiples of scale={scale}, got {h}×{w}")
    return h, w


def sr_lowres(hr: torch.Tensor, scale: int, rng: np.random.Generator, sigma: Sequence[float] = (0.4, 2.0),
              noise: Sequence[float] = (0.0, 0.01)) -> torch.Tensor:
    """The 8-bit LR image of ``sr_degrade`` before upsampling: float64 (C, H/scale, W/scale), values k/255."""
    x = _image("hr", hr)
    h, w = _check_scale(x, scale)
    sigma, noise = _range("sigma", sigma), _range("noise", noise)
    rng = _rng(rng)
    blurred = nonuniform_blur(x, smooth_field((h, w), rng, *sigma))
    lr = _resize(blurred, (h // scale, w // scale))
    std = smooth_field(lr.shape[-2:], rng, *noise)
    lr = lr + std * torch.from_numpy(rng.standard_normal(tuple(lr.shape)))
    return _quantize(lr)


def sr_degrade(hr: torch.Tensor, scale: int, rng: np.random.Generator, sigma: Sequence[float] = (0.4, 2.0),
               noise: Sequence[float] = (0.0, 0.01)) -> torch.Tensor:
    """RealSR-like degradation of (C, H, W) ``hr`` in [0, 1] (H, W multiples of ``scale``).

    Non-uniform blur (σ field in ``sigma``, HR pixels) → bicubic ×1/scale → Gaussian noise (std
    field in ``noise``, intensity units) → 8 bits (``sr_lowres``) → bicubic ×scale → 8 bits. Returns
    float64 (C, H, W) in [0, 1], multiples of 1/255 (docs/proxies.md).
    """
    lr = sr_lowres(hr, scale, rng, sigma, noise)
    return _quantize(_resize(lr, tuple(hr.shape[-2:])))


def denoise_degrade(clean: torch.Tensor, rng: np.random.Generator, gain: Sequence[float] = (0.005, 0.04),
                    read: Sequence[float] = (0.002, 0.02)) -> torch.Tensor:
    """Poisson–Gaussian noise on (C, H, W) ``clean`` in [0, 1]: y = a·Poisson(x/a) + b·N(0, 1).

    a(x, y): smooth gain field in ``gain`` (intensity per photo-electron, lo > 0); b(x, y): smooth
    read-noise std field in ``read`` (intensity, lo >= 0); Var[y | x] = a·x + b². Clamped and rounded
    to 8 bits. Returns float64 (C, H, W) (docs/proxies.md).
    """
    x = _image("clean", clean)
    gain, read = _range("gain", gain, open_low=True), _range("read", read)
    rng = _rng(rng)
    h, w = x.shape[-2:]
    a = smooth_field((h, w), rng, *gain).numpy()
    b = smooth_field((h, w), rng, *read).numpy()
    photons = rng.poisson(np.clip(x.numpy(), 0, None) / a)
    y = a * photons + b * rng.standard_normal(tuple(x.shape))
    return _quantize(torch.from_numpy(y))


def sr_margin(scale: int, sigma_max: float) -> int:
    """Context margin (px, a multiple of ``scale``) cut around an SR patch (docs/proxies.md)."""
    return scale * math.ceil(_radius(sigma_max) / scale) + 4 * scale


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------

class RestorationProxy(Dataset):
    """Precomputed ``(degraded, clean)`` patches → float32 (3, size, size) in [0, 1] (docs/proxies.md).

    Built by ``restoration_proxy``. ``task`` ("sr" or "denoise"), ``scale`` (1 for "denoise"),
    ``config`` (the settings), ``augment``; per item ``photo(i)`` (source photograph) and
    ``source(i)`` (photograph and window position in it).
    """

    def __init__(self, degraded: torch.Tensor, clean: torch.Tensor, sources: Sequence[dict], config: dict,
                 *, augment: bool = False) -> None:
        if degraded.shape != clean.shape or degraded.dtype != torch.uint8 or clean.dtype != torch.uint8 or \
                len(sources) != len(clean):
            raise ArgumentValueError("degraded and clean must be uint8 (N, 3, H, W) of the same shape, "
                                     "with one source per item")
        self.degraded, self.clean = degraded, clean
        self.config = dict(config)
        self.task, self.scale = self.config["task"], self.config["scale"]
        self.augment = bool(augment)
        self.rot90 = self.task == "sr"
        self._sources = [dict(s) for s in sources]
        self._digest: str | None = None

    def __len__(self) -> int:
        return len(self._sources)

    def photo(self, index: int) -> str:
        """Name of the ``skimage.data`` photograph item ``index`` was cut from."""
        return self._sources[index]["photo"]

    def source(self, index: int) -> dict:
        """``photo``, and ``top``, ``left``, ``window`` of the degraded window (patch + margins) in the
        photograph as loaded (``load_photo``); the patch is the window's central ``size``×``size``."""
        return dict(self._sources[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        degraded = self.degraded[index].to(torch.float32) / 255
        clean = self.clean[index].to(torch.float32) / 255
        if not self.augment:
            return degraded, clean
        return augment_pair(degraded, clean, None, rot90=self.rot90)

    def fingerprint(self) -> str:
        """Generator arguments and a SHA-256 of the stored patches (not the augmentation)."""
        if self._digest is None:
            h = hashlib.sha256(self.degraded.numpy().tobytes())
            h.update(self.clean.numpy().tobytes())
            self._digest = h.hexdigest()
        args = json.dumps({k: v for k, v in self.config.items() if k != "augment"}, sort_keys=True)
        return f"restoration_proxy{args};sha256={self._digest}"


def _u8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255).to(torch.uint8)


def restoration_proxy(task: str, split: str, num_images: int, size: int, *, scale: int = 2, seed: int = 0,
                      augment: bool | None = None, **degradation_kwargs) -> RestorationProxy:
    """``num_images`` ``size``×``size`` patch pairs of ``task`` "sr" or "denoise" from the photographs
    of ``split`` "train" or "test" (docs/proxies.md). ``scale``: SR factor (``size`` must be a
    multiple of it; ignored for "denoise"). ``degradation_kwargs``: "sr": ``sigma``, ``noise``
    (``sr_degrade``); "denoise": ``gain``, ``read`` (``denoise_degrade``), each a (lo, hi) range.
    ``augment`` defaults to ``split == "train"``. Same arguments, same data.
    """
    check_choice("task", task, TASKS)
    check_choice("split", split, SPLITS)
    check_positive_int("num_images", num_images)
    check_positive_int("size", size)
    check_positive_int("scale", scale)
    check_int("seed", seed, minimum=0)
    if augment is not None and not isinstance(augment, bool):
        raise ArgumentTypeError(f"augment must be a bool or None, got {type(augment).__name__} {augment!r}")
    defaults = DEGRADATION_DEFAULTS[task]
    unknown = sorted(set(degradation_kwargs) - set(defaults))
    if unknown:
        raise ArgumentTypeError(f"unexpected degradation argument(s) {unknown} for task {task!r}; "
                                f"accepted: {tuple(defaults)}")
    params = {k: degradation_kwargs.get(k, v) for k, v in defaults.items()}
    if task == "sr":
        params = {"sigma": _range("sigma", params["sigma"]), "noise": _range("noise", params["noise"])}
        if size % scale:
            raise ArgumentValueError(f"size must be a multiple of scale={scale} for task 'sr', got {size}")
        margin = sr_margin(scale, params["sigma"][1])
    else:
        params = {"gain": _range("gain", params["gain"], open_low=True), "read": _range("read", params["read"])}
        scale, margin = 1, 0
    photos = RESTORATION_PHOTOS[split]
    window = size + 2 * margin
    smallest = min(min(_photo(p).shape[1:]) for p in photos)
    if window > smallest:
        raise ArgumentValueError(f"size must be at most {smallest - 2 * margin} for task {task!r} on split {split!r} "
                                 f"(size + 2·margin {margin} must fit in its smallest photograph, short side "
                                 f"{smallest}), got {size}")
    augment = split == "train" if augment is None else augment
    config = {"task": task, "split": split, "num_images": num_images, "size": size, "scale": scale, "seed": seed,
              "margin": margin, "photos": list(photos), **{k: list(v) for k, v in params.items()},
              "augment": augment}

    codes = (SPLITS.index(split), TASKS.index(task))
    degraded = torch.empty((num_images, 3, size, size), dtype=torch.uint8)
    clean = torch.empty_like(degraded)
    sources = []
    inner = slice(margin, margin + size)
    for i in range(num_images):
        rng = np.random.default_rng([seed, *codes, i])
        name = photos[i % len(photos)]
        image = _photo(name)
        top = int(rng.integers(0, image.shape[1] - window + 1))
        left = int(rng.integers(0, image.shape[2] - window + 1))
        x = torch.from_numpy(image[:, top:top + window, left:left + window].copy())
        y = sr_degrade(x, scale, rng, **params) if task == "sr" else denoise_degrade(x, rng, **params)
        clean[i] = _u8(x[:, inner, inner])
        degraded[i] = _u8(y[:, inner, inner])
        sources.append({"photo": name, "top": top, "left": left, "window": window})
    return RestorationProxy(degraded, clean, sources, config, augment=augment)
