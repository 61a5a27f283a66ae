"""Figure 6's toy recipe (§3.3): everything that determines a run of the pattern-map experiment."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from .base import Recipe, doc

__all__ = ["KERNEL", "RADIUS", "ToyMap"]

KERNEL = 7
RADIUS = KERNEL // 2  # both layers' receptive field: the 7×7 window (Φ's 3×3 lies inside it)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToyMap(Recipe):
    """Full-batch SGD of one Conv and one ACDA layer on a map of multi-scale patterns (defaults: the full run)."""

    PRESETS: ClassVar = {
        "full": {},
        "quick": {"seeds": tuple(range(10)), "size": 64, "num_patterns": 12, "shift": 12, "max_steps": 1000,
                  "plain_sgd": False},
    }
    seeds: tuple[int, ...] = doc("seeds", (0, 1, 2, 3, 4))
    size: int = doc("map side (px)", 100)
    num_patterns: int = doc("patterns", 25)
    amplitude: float = doc("pattern amplitude", 3.0)
    noise_std: float = doc("noise std", 0.3)
    shift: int = doc("translation test shift (px)", 20)
    lr: float = doc("learning rate", 0.01)
    momentum: float = doc("momentum", 0.9)
    max_steps: int = doc("step cap per layer", 3000)
    window: int = doc("convergence window (steps)", 100)
    tol: float = doc("convergence tolerance", 1e-3)
    threshold: float = doc("detection threshold", 0.5)
    num_atoms: int = doc("atoms", 1)
    plain_sgd: bool = doc("every seed repeated with plain SGD", True)

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be distinct non-negative ints, got {self.seeds!r}")
        if self.max_steps < 1 or self.window < 1:
            raise ValueError(f"steps and window must be >= 1, got {self.max_steps} and {self.window}")
        if not 0 < self.shift < self.size - 2 * RADIUS:
            raise ValueError(f"shift must be in (0, {self.size - 2 * RADIUS}), got {self.shift}")
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.tol <= 0:
            raise ValueError(f"need lr > 0, 0 <= momentum < 1, tol > 0; got {self.lr}, {self.momentum}, {self.tol}")
