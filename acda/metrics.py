"""Evaluation metrics: top-k error (Tables 1, 2), per-image counting and restoration metrics, and
the intra-image diversity of α (Appendix A.5).

Classification metrics return *counts* and the per-image metrics one float64 value per image, so
that distributed evaluation can sum them over processes before dividing (each sample counted once):

- counting (Table 3): ``density_count`` (a density map's sum) and ``count_errors`` (predicted minus
  true count per image), from which MAE = mean |e| and RMSE = sqrt(mean e²) (crowd-counting papers
  call the latter "MSE");
- restoration (Tables 4, 5): ``psnr_per_image`` and ``ssim_per_image`` on whatever channels the
  images have (RGB, grey, ...), and the papers' conventions built on them: ``psnr_y`` / ``ssim_y``
  (8-bit RGB → BT.601 Y, border shave; SR and Gaussian denoising) and ``blockwise_psnr_ssim``
  (SIDD: 8-bit sRGB, per 256×256 block, averaged over blocks).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .layers import ACDAConv2d
from .utils import check_choice

__all__ = ["topk_correct", "topk_hits", "topk_error", "density_count", "count_errors", "psnr_per_image", "ssim_per_image",
           "quantize_8bit", "Y_CONVENTIONS", "rgb_to_y", "psnr_y", "ssim_y", "RGB_SSIM", "ssim_volume",
           "blockwise_psnr_ssim",
           "intra_image_cosine_distance", "alpha_diversity"]


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, int]:
    """{k: number of samples whose target is among the k highest logits}; k > classes is clipped."""
    hits = topk_hits(logits, target, ks)
    return {k: int(hits[:, i].sum()) for i, k in enumerate(ks)}


def topk_hits(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> torch.Tensor:
    """(N, len(ks)) bool: whether each sample's target is among its k highest logits, per k in ``ks``.

    The per-sample form of ``topk_correct`` (same ranking, same clipping of k > classes): its
    column sums are ``topk_correct``'s counts.
    """
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (N, classes) and target (N,), got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    if not ks or any(not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be positive ints, got {ks!r}")
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top.eq(target[:, None])
    return torch.stack([hit[:, :k].any(dim=1) for k in ks], dim=1)


def topk_error(logits: torch.Tensor, target: torch.Tensor, k: int = 1) -> float:
    """Top-k error in percent (Table 1: top-1; Table 2: top-1 and top-5)."""
    if target.numel() == 0:
        raise ValueError("topk_error of an empty batch is undefined")
    return 100.0 * (1.0 - topk_correct(logits, target, (k,))[k] / target.numel())


def density_count(density: torch.Tensor) -> torch.Tensor:
    """Per-image count (N,) float64: the sum of each density map (N, ...) over all but the first dim."""
    if density.dim() < 1 or density.shape[0] == 0:
        raise ValueError(f"density must be a non-empty batch (N, ...), got shape {tuple(density.shape)}")
    return density.detach().double().reshape(density.shape[0], -1).sum(dim=1)


def count_errors(pred_density: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image count error (N,) float64: predicted count minus true count.

    ``pred_density``: (N, ...) density maps, whose sums are the predicted counts. ``target``: (N, ...)
    density maps (counts = sums; any spatial size) or (N,) true counts. MAE is ``errors.abs().mean()``,
    RMSE ``errors.square().mean().sqrt()``.
    """
    pred = density_count(pred_density)
    truth = target.detach().double() if target.dim() == 1 else density_count(target)
    if truth.shape != pred.shape:
        raise ValueError(f"target must give one count per image: {pred.shape[0]} predictions, target shape "
                         f"{tuple(target.shape)}")
    return pred - truth


def _check_images(pred: torch.Tensor, target: torch.Tensor, data_range: float) -> None:
    if pred.shape != target.shape or pred.dim() < 2 or pred.shape[0] == 0:
        raise ValueError(f"pred and target must be batches (N, ...) of the same shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}")


def psnr_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR (N,) in dB, float64: ``10 log10(data_range² / MSE)`` with the MSE over all of an
    image's channels and pixels (no colour conversion, no border crop). Identical images give +inf."""
    _check_images(pred, target, data_range)
    diff = pred.detach().double() - target.detach().double()
    mse = diff.reshape(diff.shape[0], -1).square().mean(dim=1)
    return 10.0 * torch.log10(data_range ** 2 / mse)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, window: int = 11,
                   sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (N,) float64 of (N, C, H, W) images (Wang et al. 2004).

    Gaussian window ``window``×``window`` (σ = ``sigma``), K1 = 0.01, K2 = 0.03, statistics over the
    window's *valid* positions (no padding), averaged over positions and then channels. Equals
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range)``. Images must be at least ``window`` pixels
    on each side.
    """
    _check_images(pred, target, data_range)
    if pred.dim() != 4:
        raise ValueError(f"ssim_per_image needs (N, C, H, W) images, got shape {tuple(pred.shape)}")
    if window < 1 or window % 2 == 0 or not sigma > 0:
        raise ValueError(f"window must be a positive odd int and sigma positive, got {window!r}, {sigma!r}")
    n, c, h, w = pred.shape
    if min(h, w) < window:
        raise ValueError(f"ssim_per_image: images of {h}×{w} are smaller than the {window}×{window} window")
    g = _gaussian_window(window, sigma)
    kernel = (g[:, None] * g[None, :]).expand(c, 1, window, window).contiguous()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)

    x, y = pred.detach().double(), target.detach().double()
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean(dim=(2, 3)).mean(dim=1)


def _check_rgb(name: str, images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, 3, H, W) RGB batch, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be floating RGB in [0, 1], got dtype {images.dtype} "
                         f"(convert 8-bit images with x.double() / 255)")
    x = images.detach()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has non-finite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.0 or hi > 2.0:
        raise ValueError(f"{name} must be RGB in [0, 1] (overshoot is clamped), got values in [{lo:g}, {hi:g}]; "
                         f"0–255 images must be divided by 255")


def quantize_8bit(images: torch.Tensor) -> torch.Tensor:
    """8-bit values (same shape, float64 integers in 0..255) of float images in [0, 1]: clamp to [0, 1],
    then ``round(x · 255)`` (``torch.round``, half to even), as saving the output as uint8 does."""
    return (images.detach().double().clamp(0.0, 1.0) * 255.0).round()


Y_CONVENTIONS = ("basicsr", "realsr")


def rgb_to_y(images: torch.Tensor, convention: str = "basicsr") -> torch.Tensor:
    """ITU-R BT.601 luma (N, 1, H, W) float64 in [16, 235] of (N, 3, H, W) RGB in [0, 1].

    RGB is first rounded to 8 bits (``quantize_8bit``: clamp, ``round(x·255)/255``), then
    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (R, G, B in [0, 1]; MATLAB's ``rgb2ycbcr``).
    ``convention``: ``"basicsr"`` leaves Y unrounded (BasicSR's ``to_y_channel``); ``"realsr"`` rounds it
    half away from zero to an integer, as MATLAB's ``rgb2ycbcr`` of a uint8 image does (the RealSR
    evaluation, Test/Test.m). Values outside [-1, 2] raise ValueError.
    """
    _check_rgb("images", images)
    check_choice("convention", convention, Y_CONVENTIONS)
    q = quantize_8bit(images) / 255.0
    y = 16.0 + 65.481 * q[:, 0] + 128.553 * q[:, 1] + 24.966 * q[:, 2]
    if convention == "realsr":
        y = torch.floor(y + 0.5)  # Y >= 16: half away from zero
    return y.unsqueeze(1)


def _shaved_y(pred: torch.Tensor, target: torch.Tensor, shave: int, min_side: int = 1,
              convention: str = "basicsr") -> tuple:
    _check_rgb("pred", pred)
    _check_rgb("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if isinstance(shave, bool) or not isinstance(shave, int) or shave < 0:
        raise ValueError(f"shave must be a non-negative int, got {shave!r}")
    h, w = pred.shape[2:]
    if min(h, w) - 2 * shave < min_side:
        raise ValueError(f"shave={shave} is too large for {h}×{w} images: {min_side} pixel(s) per side must "
                         f"remain after removing {shave} from each border")
    y_pred, y_target = rgb_to_y(pred, convention), rgb_to_y(target, convention)
    crop = (slice(None), slice(None), slice(shave, h - shave), slice(shave, w - shave))
    return y_pred[crop], y_target[crop]


def psnr_y(pred: torch.Tensor, target: torch.Tensor, shave: int = 0, convention: str = "basicsr") -> torch.Tensor:
    """Per-image PSNR (N,) in dB on BT.601 Y, the restoration papers' convention.

    RGB (N, 3, H, W) in [0, 1] rounded to 8 bits, converted to Y in [16, 235] (``rgb_to_y`` under
    ``convention``: Y unrounded for "basicsr", rounded for "realsr"), ``shave`` pixels removed from each
    border (BasicSR: shave = scale; the RealSR evaluation: 0), then ``psnr_per_image`` with data_range
    255. Identical images give +inf.
    """
    y_pred, y_target = _shaved_y(pred, target, shave, convention=convention)
    return psnr_per_image(y_pred, y_target, data_range=255.0)


def ssim_y(pred: torch.Tensor, target: torch.Tensor, shave: int = 0, convention: str = "basicsr") -> torch.Tensor:
    """Per-image SSIM (N,) on BT.601 Y, the restoration papers' convention.

    Y as in ``psnr_y`` (``convention``, ``shave`` pixels off each border), then ``ssim_per_image`` with
    data_range 255: 11×11 Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03, population covariances, valid
    window positions only (Wang's ``ssim_index.m``; skimage's ``use_sample_covariance=False``). At
    least 11×11 pixels must remain after the shave.
    """
    y_pred, y_target = _shaved_y(pred, target, shave, min_side=11, convention=convention)
    return ssim_per_image(y_pred, y_target, data_range=255.0)


RGB_SSIM = ("per_channel", "matlab")


def ssim_volume(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (N,) float64 of (N, C, H, W) images as MATLAB's ``ssim`` scores an H×W×C array: one 3-D
    volume, a Gaussian of σ = ``sigma`` and 2⌈3σ⌉+1 taps along rows, columns *and* channels
    (``imgaussfilt3``), replicate padding, 'same' size, K1 = 0.01, K2 = 0.03, the mean over every voxel."""
    _check_images(pred, target, data_range)
    if pred.dim() != 4:
        raise ValueError(f"ssim_volume needs (N, C, H, W) images, got shape {tuple(pred.shape)}")
    radius = math.ceil(3 * sigma)
    g = _gaussian_window(2 * radius + 1, sigma)

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.pad(t[:, None], (radius,) * 6, mode="replicate")
        for dim in (2, 3, 4):
            shape = [1, 1, 1, 1, 1]
            shape[dim] = g.numel()
            t = F.conv3d(t, g.view(shape))
        return t[:, 0]

    x, y = pred.detach().double(), target.detach().double()
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(dim=1)


def blockwise_psnr_ssim(pred_blocks: torch.Tensor, target_blocks: torch.Tensor,
                        ssim: str = "per_channel") -> dict[str, torch.Tensor]:
    """SIDD-style scores of (B, 3, H, W) sRGB blocks in [0, 1] (SIDD: H = W = 256, 32 blocks per image).

    Each block is rounded to 8 bits (``quantize_8bit``) and scored on all 3 sRGB channels with
    data_range 255 (no colour conversion, no shave): PSNR from the MSE over the block's channels and
    pixels; SSIM ``"per_channel"``: ``ssim_per_image`` (Gaussian 11×11, σ = 1.5, valid positions; mean
    over positions, then channels), or ``"matlab"``: ``ssim_volume`` (MATLAB's ``ssim`` of the
    H×W×3 block, as the common SIDD evaluation scripts call it). Returns ``psnr_per_block`` and ``ssim_per_block`` (B,) float64, and ``psnr`` and ``ssim``: the
    unweighted means of the per-block scores over all B blocks (not PSNR of the pooled MSE). A block
    identical to its target has PSNR +inf, and so then has the mean.
    """
    _check_rgb("pred_blocks", pred_blocks)
    _check_rgb("target_blocks", target_blocks)
    if pred_blocks.shape != target_blocks.shape:
        raise ValueError(f"pred_blocks and target_blocks must have the same shape, got "
                         f"{tuple(pred_blocks.shape)} and {tuple(target_blocks.shape)}")
    if min(pred_blocks.shape[2:]) < 11:
        raise ValueError(f"pred_blocks: blocks of {tuple(pred_blocks.shape[2:])} are smaller than the 11×11 "
                         f"SSIM window")
    check_choice("ssim", ssim, RGB_SSIM)
    p, t = quantize_8bit(pred_blocks), quantize_8bit(target_blocks)
    psnr = psnr_per_image(p, t, data_range=255.0)
    scores = (ssim_per_image if ssim == "per_channel" else ssim_volume)(p, t, data_range=255.0)
    return {"psnr": psnr.mean(), "ssim": scores.mean(), "psnr_per_block": psnr, "ssim_per_block": scores}


def intra_image_cosine_distance(alpha: torch.Tensor, num_scales: int, mode: str = "per_scale",
                                eps: float = 1e-12) -> dict[str, torch.Tensor]:
    """Appendix A.5: average pairwise cosine distance of the basis coefficients α within an image.

    ``alpha``: (N, m, S·m', H', W') from ``AtomGenerator.coefficients`` (``ACDAConv2d.coefficients``
    flattened over its scale and basis dimensions). For image n, atom a and
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
    ``layer.coefficients``.
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
                alpha = layer.coefficients(inp)  # (N, m, S, m', H', W')
                for mode in modes:
                    out[mode][name] = intra_image_cosine_distance(alpha.flatten(2, 3), alpha.shape[2], mode)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return out
