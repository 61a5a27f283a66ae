"""Figure 6 (paper §3.3): toy multi-scale pattern detection, the translation test, and the scales used.

A 7×7 ``nn.Conv2d`` and a 7×7 ``ACDAConv2d`` (one atom, 3 scales) start from the same output scale and
are trained by SGD (lr 0.01, MSE, "till converge") to mark the centres of 3×3 / 5×5 / 7×7 patterns on a
noisy map (``acda.data.toy``). Reported over seeds (one CPU thread per seed, ``--jobs`` processes):
detection errors, with the least-squares Conv as reference; the translation test of Fig. 6b; each
basis scale's share at the pattern centres. Momentum 0.9 is our choice (the paper does not say); the
default run repeats every seed with plain SGD. ``--quick``: the CI configuration (``figure6_quick``).
The experiment lives in ``reproduce.toymap`` (shared with Figure 7); here: ``rows``, ``findings``, ``cli``.

Data, layers, training, metrics and modules in detail: docs/reproductions.md, section "reproduce.figure6".

    python -m reproduce.figure6 [--seeds 0 1 2 3 4] [--steps N] [--quick] [--device cpu] [--out results/]
"""
from __future__ import annotations

from .cli import REPRODUCER, main

__all__ = ["REPRODUCER", "main"]
