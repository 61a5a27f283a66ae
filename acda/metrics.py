"""Evaluation metrics: top-k error (Tables 1, 2) and the intra-image diversity of α (Appendix A.5).

Counting (MAE/RMSE, Table 3) and restoration (PSNR/SSIM on Y, Tables 4, 5) metrics belong here
too when those reproducers arrive. Classification metrics return *counts* so that distributed
evaluation can sum them over processes before dividing (each sample counted once).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .layers import ACDAConv2d

__all__ = ["topk_correct", "topk_error", "intra_image_cosine_distance", "alpha_diversity"]


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, int]:
    """{k: number of samples whose target is among the k highest logits}; k > classes is clipped."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (N, classes) and target (N,), got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    if not ks or any(not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be positive ints, got {ks!r}")
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top.eq(target[:, None])
    return {k: int(hit[:, :k].any(dim=1).sum()) for k in ks}


def topk_error(logits: torch.Tensor, target: torch.Tensor, k: int = 1) -> float:
    """Top-k error in percent (Table 1: top-1; Table 2: top-1 and top-5)."""
    if target.numel() == 0:
        raise ValueError("topk_error of an empty batch is undefined")
    return 100.0 * (1.0 - topk_correct(logits, target, (k,))[k] / target.numel())


def intra_image_cosine_distance(alpha: torch.Tensor, num_scales: int, mode: str = "per_scale",
                                eps: float = 1e-12) -> dict[str, torch.Tensor]:
    """Appendix A.5: average pairwise cosine distance of the basis coefficients α within an image.

    ``alpha``: (N, m, S·m', H', W') from ``AtomGenerator.coefficients``. For image n, atom a and
    scale s, take the α vectors v_p ∈ R^{m'} (the m' coefficients of scale s) at all P = H'·W'
    positions; their distances are ``1 − cos(v_p, v_q)`` over the P·(P−1)/2 unordered pairs p < q.

    - ``mode="per_scale"`` (our reading of "averaged across scales"): distances per scale, then
      averaged over the S scales and the m atoms;
    - ``mode="mean_alpha"``: α first averaged over the S scales (one m'-vector per atom), then
      distances averaged over atoms.

    Returns ``image_mean`` (N,): each image's average distance, and ``pair_sum``, ``pair_sq_sum``,
    ``pair_count`` (scalars, float64) over every (image, atom, scale, pair), from which the
    pair-level mean and standard deviation follow.
    """
    if alpha.dim() != 5:
        raise ValueError(f"alpha must be (N, m, S·m', H', W'), got shape {tuple(alpha.shape)}")
    if mode not in ("per_scale", "mean_alpha"):
        raise ValueError(f"mode must be 'per_scale' or 'mean_alpha', got {mode!r}")
    n, m, sb, h, w = alpha.shape
    if num_scales < 1 or sb % num_scales:
        raise ValueError(f"alpha's {sb} coefficients do not split into num_scales={num_scales} scales")
    p = h * w
    if p < 2:
        raise ValueError(f"need at least two positions for pairwise distances, got H'×W' = {h}×{w}")
    v = alpha.detach().double().reshape(n, m, num_scales, sb // num_scales, p)
    if mode == "mean_alpha":
        v = v.mean(dim=2, keepdim=True)
    v = v / v.norm(dim=3, keepdim=True).clamp_min(eps)
    v = v.reshape(n, -1, sb // num_scales, p)  # (N, groups, m', P) unit vectors (zero vectors stay 0)
    # Closed forms over ordered pairs p ≠ q, O(P·m'^2) instead of the P×P Gram matrix G:
    # Σ G_pq = |Σ_p v_p|² − Σ_p |v_p|²,  Σ G_pq² = |V Vᵀ|_F² − Σ_p |v_p|⁴  (V: m' × P).
    sq_norm = (v * v).sum(dim=2)                                    # (N, groups, P)
    s1 = (v.sum(dim=3) ** 2).sum(dim=2) - sq_norm.sum(dim=2)
    s2 = (v @ v.transpose(2, 3)).pow(2).sum(dim=(2, 3)) - (sq_norm ** 2).sum(dim=2)
    ordered = p * (p - 1)
    total = ordered - s1                                            # Σ_{p≠q} (1 − G_pq)
    total_sq = ordered - 2 * s1 + s2                                # Σ_{p≠q} (1 − G_pq)²
    image_mean = (total / ordered).mean(dim=1)
    pair_sum, pair_sq = total.sum() / 2, total_sq.sum() / 2
    count = torch.tensor(float(n * v.shape[1] * ordered // 2), dtype=torch.float64)
    return {"image_mean": image_mean, "pair_sum": pair_sum, "pair_sq_sum": pair_sq, "pair_count": count}


def alpha_diversity(model: torch.nn.Module, x: torch.Tensor,
                    modes: Sequence[str] = ("per_scale",)) -> dict[str, dict[str, dict]]:
    """Appendix A.5 metric for every ``ACDAConv2d`` in ``model`` on the batch ``x``.

    Runs ``model(x)`` once in eval mode, takes each ACDA layer's input, and returns
    {mode: {layer name: ``intra_image_cosine_distance`` of its α}} with α from
    ``layer.generator.coefficients``.
    """
    layers = {name: m for name, m in model.named_modules() if isinstance(m, ACDAConv2d)}
    if not layers:
        raise ValueError("model has no ACDAConv2d layers: the A.5 metric needs generated atoms")
    inputs: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda mod, args, name=name: inputs.__setitem__(name, args[0]))
               for name, m in layers.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
            out: dict[str, dict[str, dict]] = {mode: {} for mode in modes}
            for name, layer in layers.items():
                inp = inputs[name]
                alpha = layer.generator.coefficients(inp, layer.output_size(tuple(inp.shape[-2:])))
                scales = layer.generator.num_basis_elements // layer.num_bases
                for mode in modes:
                    out[mode][name] = intra_image_cosine_distance(alpha, scales, mode)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return out
