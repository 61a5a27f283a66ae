"""Offline real-image restoration proxy: photographs degraded by spatially NON-uniform blur and noise.

No restoration dataset ships with the repository, so ``restoration_proxy`` builds a stand-in for
RealSR super-resolution and SIDD denoising (paper §4.3) from the colour photographs bundled in the
scikit-image wheel (no download). What matters in those benchmarks, and what the paper's per-pixel
filters are claimed to handle, is that the degradation varies across the image (depth-dependent
defocus, lens falloff, signal-dependent sensor noise, exposure and gain that differ by region);
here every degradation parameter is a smooth random map over the patch. The items follow the
real-data conventions of ``acda.data.restoration``: ``(degraded, clean)`` float32 (3, size, size)
in [0, 1], equal sizes (for SR the LR image is upsampled back to the HR size, as RealSR V3 stores it).

Photographs. ``RESTORATION_PHOTOS``: train = astronaut, rocket, immunohistochemistry,
hubble_deep_field, retina, stereo_motorcycle (its left image); test = chelsea, coffee. Whole
photographs are held out: no test photograph contributes a training pixel. Each is read as RGB,
8 bits per channel, as float64 in [0, 1]; a photograph whose short side exceeds 512 px
(hubble_deep_field 872×1000 → 512×587, retina 1411×1411 → 512×512; H×W) is rescaled, aspect ratio
kept (long side rounded), so that its short side is 512, with bilinear interpolation with
antialiasing (``F.interpolate(..., mode="bilinear", antialias=True, align_corners=False)``), then
clamped and rounded back to 8 bits (clean targets are always multiples of 1/255, as decoded PNGs are).

Patches. Item i of a split comes from photograph ``photos[i % len(photos)]`` (in rotation, in the
order of ``RESTORATION_PHOTOS``; the photographs are of similar area, 0.18–0.37 Mpx after rescaling).
A window of side ``size + 2·margin`` is cut at a uniformly random integer position inside the
photograph, degraded as a whole, and both it and the degraded image are cropped to the central
``size``×``size`` patch: the blur and the resampling see real image context, not padding. The
margin is 0 for denoising (the noise is per pixel) and, for SR, ``scale·ceil(r/scale) + 4·scale``
with r = ``int(4·σ_max + 0.5)`` the blur radius (covers the blur, the bicubic downsampling support
of 2·scale HR px and the bicubic upsampling support of 2 LR px; a multiple of ``scale``, so the LR
pixel grid is aligned with the patch). 16 px for the default σ ≤ 2 at ×2.

Spatially varying fields (``smooth_field``). Over an H×W grid with pixel centres
u = (x + 0.5 - W/2)/L, v = (y + 0.5 - H/2)/L, L = max(H, W), draw (in this order) a direction
θ ~ U[0, 2π), a mixing weight α ~ U[0, 1], a bump centre (cu, cv) ~ U[-0.5, 0.5]² and a bump width
w ~ U[0.15, 0.5] (in units of L). g = α·ramp + (1 - α)·exp(-((u - cu)² + (v - cv)²)/(2w²)), where
ramp = u·cosθ + v·sinθ rescaled to [0, 1] over the grid; g is then rescaled to [0, 1] over the grid
(min → 0, max → 1) and the field is ``low + (high - low)·g``. So every field spans exactly [low, high]
over the window it is drawn for (a constant for low == high, where the draws are still made).

Degradations (pure functions of (C, H, W) float tensors in [0, 1], computed in float64; all random
numbers from a ``numpy.random.Generator``, in the order stated):

- ``nonuniform_blur(img, sigma_map)``: Gaussian blur whose σ (in pixels) varies per pixel. The
  image is blurred at the levels σ_k = σ_min + k·(σ_max - σ_min)/n, k = 0..n, n = ceil((σ_max -
  σ_min)/0.4) (one level when the map is constant; 5 levels for 0.4–2.0), each a separable sampled
  Gaussian exp(-j²/2σ²), |j| <= int(4σ + 0.5) (scipy's default truncation), normalised to sum 1
  (σ = 0: the identity), with reflect padding ("dcb|abcd": torch's ``reflect``, scipy's ``mirror``).
  A pixel of σ in [σ_k, σ_k+1] takes (1 - t)·B_k + t·B_k+1 of the two blurred images, with
  t = (σ² - σ_k²)/(σ_k+1² - σ_k²): linear interpolation whose weight gives the mixed kernel the
  variance σ² (exactly for continuous Gaussians; a pixel exactly at a level takes that level alone).
- ``sr_degrade(hr, scale, rng, sigma, noise)``: blur with a σ field in ``sigma`` (HR px; default
  0.4–2.0) → bicubic downsampling by ``scale`` (``F.interpolate(mode="bicubic", antialias=True,
  align_corners=False)``: Keys a = -0.5 with antialiasing, like MATLAB's ``imresize``) → additive
  Gaussian noise, i.i.d. per channel, with a std field in ``noise`` (intensity units on [0, 1];
  default 0–0.01) drawn on the LR grid → clamp and round to 8 bits (``sr_lowres`` returns this LR
  image) → bicubic upsampling back to the HR size (same call, a = -0.5) → clamp and round to 8 bits
  again (RealSR V3 stores the upsampled LR image as an 8-bit PNG). Draws: σ field, noise field, noise.
- ``denoise_degrade(clean, rng, gain, read)``: Poisson–Gaussian sensor noise with a photon gain
  field a(x, y) in ``gain`` (intensity per photo-electron, so 1/a electrons at white; default
  0.005–0.04, i.e. 25–200 e⁻) and a read-noise std field b(x, y) in ``read`` (intensity; default
  0.002–0.02): y = a·Poisson(x/a) + b·N(0, 1), exact Poisson sampling, so Var[y | x] = a·x + b²;
  clamp to [0, 1] and round to 8 bits. Applied to the stored (sRGB) values. Draws: a, b, Poisson, normal.

Determinism. Item i is drawn from ``numpy.random.default_rng([seed, split, task, i])`` alone (split
and task as indices into ``SPLITS`` and ``TASKS``; no global generator at build time), so the data
is a pure function of the arguments, train and test use different streams, and the first k items do
not depend on ``num_images``. Items are stored as uint8 (every stored value is a multiple of 1/255).

Items and augmentation: ``(degraded, clean)`` float32 (3, size, size) in [0, 1]. ``augment``
(default: the train split) applies ``acda.data.restoration.augment_pair`` with ``crop_size=None`` at
item time, from torch's global generator as the real loaders do: the same random horizontal and
vertical flips on both images and, for "sr" only, a random transpose (the real loaders' defaults:
RealSR with ``rot90``, SIDD flips only).
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
    direction mixed with a Gaussian bump (module docstring). ``low == high`` gives a constant."""
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
    pixel between the two nearest levels; σ = 0 is the identity; reflect padding (module docstring).
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
    float64 (C, H, W) in [0, 1], multiples of 1/255 (module docstring).
    """
    lr = sr_lowres(hr, scale, rng, sigma, noise)
    return _quantize(_resize(lr, tuple(hr.shape[-2:])))


def denoise_degrade(clean: torch.Tensor, rng: np.random.Generator, gain: Sequence[float] = (0.005, 0.04),
                    read: Sequence[float] = (0.002, 0.02)) -> torch.Tensor:
    """Poisson–Gaussian noise on (C, H, W) ``clean`` in [0, 1]: y = a·Poisson(x/a) + b·N(0, 1).

    a(x, y): smooth gain field in ``gain`` (intensity per photo-electron, lo > 0); b(x, y): smooth
    read-noise std field in ``read`` (intensity, lo >= 0); Var[y | x] = a·x + b². Clamped and rounded
    to 8 bits. Returns float64 (C, H, W) (module docstring).
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
    """Context margin (px, a multiple of ``scale``) cut around an SR patch (module docstring)."""
    return scale * math.ceil(_radius(sigma_max) / scale) + 4 * scale


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------

class RestorationProxy(Dataset):
    """Precomputed ``(degraded, clean)`` patches → float32 (3, size, size) in [0, 1] (module docstring).

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
    of ``split`` "train" or "test" (module docstring). ``scale``: SR factor (``size`` must be a
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
