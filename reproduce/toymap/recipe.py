"""Figure 6's configuration: everything that determines a run, the full run's and the quick (CI) one."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KERNEL", "RADIUS", "Config", "QUICK"]

KERNEL = 7
RADIUS = KERNEL // 2  # both layers' receptive field: the 7×7 window (Φ's 3×3 lies inside it)


@dataclass(frozen=True)
class Config:
    """Everything that determines a run (defaults: the committed full run)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    size: int = 100
    num_patterns: int = 25
    amplitude: float = 3.0
    noise_std: float = 0.3
    shift: int = 20
    lr: float = 0.01
    momentum: float = 0.9
    max_steps: int = 3000
    window: int = 100
    tol: float = 1e-3
    threshold: float = 0.5
    num_atoms: int = 1
    plain_sgd: bool = True  # repeat every seed with momentum 0 (plain SGD), for comparison

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be distinct non-negative ints, got {self.seeds!r}")
        if self.max_steps < 1 or self.window < 1:
            raise ValueError(f"steps and window must be >= 1, got {self.max_steps} and {self.window}")
        if not 0 < self.shift < self.size - 2 * RADIUS:
            raise ValueError(f"shift must be in (0, {self.size - 2 * RADIUS}), got {self.shift}")
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.tol <= 0:
            raise ValueError(f"need lr > 0, 0 <= momentum < 1, tol > 0; got {self.lr}, {self.momentum}, {self.tol}")


QUICK = Config(seeds=tuple(range(10)), size=64, num_patterns=12, shift=12, max_steps=1000, plain_sgd=False)
