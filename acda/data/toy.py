"""Synthetic multi-scale pattern maps for the toy detection experiment (paper §3.3, Figure 6).

The paper places 25 "pre-defined multi-scale patterns" at scales 3×3, 5×5 and 7×7 on a 100×100
noisy map and asks a single 7×7 layer to output a binary map with 1 at each pattern's centre; it
does not define the patterns or the noise, so this module does:

- ``pattern_bank``: a 3×3 plus, a 5×5 cross (X) and a 7×7 framed dot, each of 0s and 1s, placed
  times ``amplitude`` with polarity ±1 (half bright, half dark per scale), so that no single fixed
  7×7 filter and threshold can detect them all while a per-pixel adaptive filter can;
- ``make_pattern_scene``: ``num_patterns`` non-overlapping patterns (25 = 9 × 3×3 + 8 × 5×5 +
  8 × 7×7), at least ``gap`` px apart, plus i.i.d. Gaussian noise (``noise_std``); the target is 1
  at each pattern centre, 0 elsewhere; ``render((dy, dx))`` re-renders the scene shifted by
  (dy, dx) toward the bottom-right (Fig. 6b).

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same scene.
See docs/toy.md for the pattern shapes, the argument against a fixed filter, the placement and the
shifted rendering.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["PATTERN_SIZES", "PATTERN_NAMES", "pattern_bank", "PatternMap", "PatternScene", "make_pattern_scene"]

PATTERN_SIZES = (3, 5, 7)
PATTERN_NAMES = {3: "plus", 5: "cross", 7: "framed dot"}
_MAX_TRIES = 10_000


def pattern_bank() -> dict[int, torch.Tensor]:
    """The three pre-defined patterns {size: (size, size) float32 tensor of 0/1} (docs/toy.md)."""
    plus = np.zeros((3, 3))
    plus[1, :] = plus[:, 1] = 1
    cross = np.zeros((5, 5))
    idx = np.arange(5)
    cross[idx, idx] = cross[idx, 4 - idx] = 1
    framed = np.zeros((7, 7))
    framed[0, :] = framed[-1, :] = framed[:, 0] = framed[:, -1] = framed[3, 3] = 1
    return {k: torch.from_numpy(p).float() for k, p in zip(PATTERN_SIZES, (plus, cross, framed))}


@dataclass(frozen=True)
class PatternMap:
    """One rendered view: ``image`` and ``target`` (1, 1, H, W); per visible pattern its ``centres``
    (P, 2) as (row, col) in this view, ``sizes`` (P,) and ``polarity`` (P,) ±1."""

    image: torch.Tensor
    target: torch.Tensor
    centres: torch.Tensor
    sizes: torch.Tensor
    polarity: torch.Tensor


@dataclass(frozen=True)
class PatternScene:
    """A scene on a canvas of (size + max_shift)² pixels; ``centres`` are canvas coordinates."""

    canvas: torch.Tensor
    centres: torch.Tensor
    sizes: torch.Tensor
    polarity: torch.Tensor
    size: int
    max_shift: int

    def render(self, shift: int | tuple[int, int] = 0) -> PatternMap:
        """The map with every pattern moved by ``shift`` = (dy, dx) toward the bottom-right."""
        dy, dx = (shift, shift) if isinstance(shift, int) else tuple(shift)
        for name, d in (("dy", dy), ("dx", dx)):
            if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= self.max_shift:
                raise ValueError(f"shift {name} must be an int in [0, max_shift={self.max_shift}], got {d!r}")
        top, left = self.max_shift - dy, self.max_shift - dx
        image = self.canvas[top:top + self.size, left:left + self.size]
        centres = self.centres - torch.tensor([top, left])
        inside = ((centres >= 0) & (centres < self.size)).all(dim=1)
        centres = centres[inside]
        target = torch.zeros(self.size, self.size)
        target[centres[:, 0], centres[:, 1]] = 1.0
        return PatternMap(image[None, None].clone(), target[None, None], centres,
                          self.sizes[inside], self.polarity[inside])


def make_pattern_scene(
    seed: int,
    *,
    size: int = 100,
    num_patterns: int = 25,
    amplitude: float = 3.0,
    noise_std: float = 0.3,
    max_shift: int = 20,
    gap: int = 1,
) -> PatternScene:
    """Draw one scene (paper §3.3, Fig. 6a): patterns, polarities, positions and noise from ``seed``.

    The defaults are those of ``reproduce.figure6``: patterns of amplitude 3 on noise of std 0.3.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    for name, value, low in (("size", size, max(PATTERN_SIZES)), ("num_patterns", num_patterns, 1),
                             ("max_shift", max_shift, 0), ("gap", gap, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    for name, value in (("amplitude", amplitude), ("noise_std", noise_std)):
        if not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    rng = np.random.default_rng(seed)
    # as equal in number as possible, placed largest first (rejection sampling fills the map more easily)
    sizes = np.sort(np.resize(np.array(PATTERN_SIZES), num_patterns))[::-1]
    polarity = np.empty(num_patterns, dtype=np.int64)
    for k in PATTERN_SIZES:  # half bright, half dark per scale (the odd one random), in random order
        block = np.resize(np.array([1, -1]) * rng.choice(np.array([1, -1])), int((sizes == k).sum()))
        rng.shuffle(block)
        polarity[sizes == k] = block
    bank = {k: p.numpy() for k, p in pattern_bank().items()}

    canvas = np.zeros((size + max_shift, size + max_shift))
    placed: list[tuple[int, int, int]] = []  # (row, col, radius) in map coordinates
    for k, sign in zip(sizes, polarity):
        r = int(k) // 2
        for _ in range(_MAX_TRIES):
            cy, cx = (int(v) for v in rng.integers(r, size - r, size=2))
            if all(abs(cy - y) > r + q + gap or abs(cx - x) > r + q + gap for y, x, q in placed):
                break
        else:
            raise ValueError(f"could not place num_patterns={num_patterns} patterns with gap={gap} on a "
                             f"{size}x{size} map; use fewer patterns or a larger size")
        placed.append((cy, cx, r))
        y0, x0 = max_shift + cy - r, max_shift + cx - r
        canvas[y0:y0 + k, x0:x0 + k] += sign * amplitude * bank[int(k)]
    canvas += noise_std * rng.standard_normal(canvas.shape)
    centres = torch.tensor([(max_shift + y, max_shift + x) for y, x, _ in placed], dtype=torch.long)
    return PatternScene(torch.from_numpy(canvas).float(), centres, torch.from_numpy(sizes.copy()).long(),
                        torch.from_numpy(polarity).long(), size, max_shift)
