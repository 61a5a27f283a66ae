"""Figure 6 (paper §3.3): toy multi-scale pattern detection, the translation test, and the scales used.

Data (``acda.data.toy``, where the shapes, the polarity, the noise and the shifted re-rendering are
defined): one 100×100 map per seed with 25 patterns at 3×3 / 5×5 / 7×7 (plus, cross, framed dot;
half bright, half dark; amplitude 3) on Gaussian noise (std 0.3); target 1 at each pattern centre.

- Layers: ``nn.Conv2d(1, 1, 7, padding=3)`` and ``ACDAConv2d(1, 1, 7, padding=3, num_atoms=1)``
  with the paper generator (Appendix A.3: 1×1 conv 1→64, ReLU, 3×3 conv → m·S·m' = 18) and S = 3
  scales of m' = 6 Fourier-Bessel bases. m = 1: with one input and one output channel the m atoms
  collapse into one filter per pixel, K_ij = Σ_a A_a·D_ij,a = Σ_b (Σ_a A_a α_ij,a,b)·ψ_b, so m = 6
  spans the same per-pixel filters at six times the generator cost.
- Same initial scale: default initialisation, both biases set to 0, and ACDA's coefficient A
  rescaled so that its output on the training map has the standard deviation of the Conv's output.
- Training: SGD, learning rate 0.01, mean squared error (paper §3.3), full batch (the one map), with
  momentum 0.9 (the paper does not say; ``--momentum 0`` is plain SGD, and the default run repeats
  every seed with plain SGD for comparison). "Till converge": stop after step t, a multiple
  of the window (100), when the loss changed by less than tol = 1e-3 relative to its value one
  window earlier, or at the step cap (3000; ``--steps``). Steps taken and convergence are reported.
- Detection metrics on the training map: final MSE; pixel error = fraction of pixels misclassified
  after thresholding the output at 0.5; centre error = (missed + false centres) / number of patterns
  (so it can exceed 100%), where the detected centres are the local maxima of the output (3×3
  non-maximum suppression) above 0.5, matched one-to-one to true centres within one pixel
  (Chebyshev). Also the least-squares Conv (the exact minimiser of the same MSE over all 7×7
  filters and biases): the Conv's error is not an optimisation failure.
- Translation test (Fig. 6b): both trained layers on the map re-rendered with every pattern moved
  20 px toward the bottom-right; the shift error is max |y_shifted[i + 20, j + 20] − y[i, j]| over
  the original pixels whose 7×7 window lies inside both maps (rows and columns 3 … 76).
- Scales (Fig. 7's idea): per pixel, the norm of ACDA's effective basis coefficients
  β_ij = Σ_a A_a α_ij,a on each scale (``ACDAConv2d.scale_norms``: the 3×3, 5×5, 7×7 slices of ``ACDAConv2d.coefficients``),
  each scale's share of the three norms, and its mean at the centres of each pattern size.

Each run (seed) uses one CPU thread, in ``--jobs`` worker processes, so the numbers do not depend on
the core count; a run is deterministic for its seed. ``--quick``: seeds 0–9 on a 64×64 map with 12 patterns (shift 12), cap 1000, no
plain-SGD runs, written as ``figure6_quick.*`` (the CI configuration).

Every number is reported over seeds (``samples`` in the CSV: one value per seed, the row's value is
their mean), so that the regression can compare runs across machines (``reproduce.regression``).

    python -m reproduce.figure6 [--seeds 0 1 2 3 4] [--steps N] [--quick] [--device cpu] [--out results/]

Modules: ``reproduce.toymap`` (shared with Figure 7): ``recipe`` (the configuration), ``training`` (the
two layers, their training loop and the least-squares Conv), ``metrics`` (detection, shift and scale
metrics), ``experiment`` (one seed, all seeds), ``plots``; here: ``rows`` (the report's rows),
``findings`` (the report's findings), ``cli``.
"""
from __future__ import annotations

from .cli import main

__all__ = ["main"]
