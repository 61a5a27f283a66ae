"""Figure 6's metrics: detected centres, the shift error of the translation test, and the scales ACDA uses."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from acda import ACDAConv2d
from acda.data.toy import PATTERN_SIZES, PatternMap

from ..recipes.toymap import RADIUS

if TYPE_CHECKING:
    from .training import TrainLog

__all__ = ["SHIFT_BOUND", "Outcome", "find_centres", "match_centres", "evaluate", "shift_error", "scale_norms",
           "mean_share_at_centres"]

SHIFT_BOUND = 1e-5  # "exactly shifted": equal up to float32 rounding


@dataclass
class Outcome:
    """One layer on one seed: metrics and the outputs drawn in the figure."""

    mse: float
    pixel_error: float
    missed: int
    false: int
    centre_error: float
    output: torch.Tensor
    shifted_output: torch.Tensor | None = None
    shift_error: float | None = None
    log: TrainLog | None = None


def find_centres(output: torch.Tensor, threshold: float) -> torch.Tensor:
    """Local maxima (3×3 non-maximum suppression) above ``threshold``: (K, 2) (row, col)."""
    y = output.reshape(1, 1, *output.shape[-2:])
    peaks = (y == F.max_pool2d(y, 3, stride=1, padding=1)) & (y > threshold)
    return peaks[0, 0].nonzero()


def match_centres(found: torch.Tensor, true: torch.Tensor, tolerance: int = 1) -> tuple[int, int]:
    """(missed, false): greedy one-to-one matching within ``tolerance`` pixels (Chebyshev)."""
    used = torch.zeros(len(found), dtype=torch.bool)
    missed = 0
    for centre in true:
        dist = (found - centre).abs().amax(dim=1) if len(found) else torch.empty(0)
        candidates = ((dist <= tolerance) & ~used).nonzero()[:, 0]
        if len(candidates):
            used[candidates[dist[candidates].argmin()]] = True
        else:
            missed += 1
    return missed, int((~used).sum())


def evaluate(layer: nn.Module, data: PatternMap, threshold: float) -> Outcome:
    with torch.no_grad():
        y = layer(data.image)
    target = data.target.to(y.device)
    missed, false = match_centres(find_centres(y.cpu(), threshold), data.centres)
    return Outcome(
        mse=F.mse_loss(y, target).item(),
        pixel_error=((y > threshold) != (target > 0.5)).double().mean().item(),
        missed=missed, false=false, centre_error=(missed + false) / len(data.centres),
        output=y[0, 0].cpu(),
    )


def shift_error(output: torch.Tensor, shifted_output: torch.Tensor, shift: int) -> float:
    """max |shifted[i + s, j + s] − output[i, j]| over pixels whose window is inside both maps."""
    size = output.shape[-1]
    inner = slice(RADIUS, size - shift - RADIUS)
    moved = slice(RADIUS + shift, size - RADIUS)
    return (shifted_output[..., moved, moved] - output[..., inner, inner]).abs().max().item()


def scale_norms(layer: ACDAConv2d, image: torch.Tensor) -> torch.Tensor:
    """(S, H, W): per-pixel norm of the effective coefficients β_ij = Σ_a A_a α_ij,a on each scale
    (``ACDAConv2d.scale_norms`` of the one image)."""
    with torch.no_grad():
        return layer.scale_norms(image)[0].cpu()


def mean_share_at_centres(norms: torch.Tensor, data: PatternMap) -> dict[int, torch.Tensor]:
    """{pattern size: (S,) mean over that size's centres of each scale's share of the norms}."""
    share = norms / norms.sum(dim=0, keepdim=True).clamp_min(1e-12)
    return {k: share[:, data.centres[data.sizes == k, 0], data.centres[data.sizes == k, 1]].mean(dim=1)
            for k in PATTERN_SIZES}
