"""Figure 7's per-pixel scale shares on crowd models: which basis scale ACDA's coefficients weigh, where.

Shared by ``reproduce.figure7``'s crowd-proxy part (one seeded Ad-ResNet-s trained on the crowd proxy per
worker call, ``proxy_seed``) and its ``--checkpoint/--image`` mode (``load_crowd_model``, ``read_image``,
``image_shares``). Every multi-scale ACDA layer of a model (``multiscale_layers``: ``ACDAConv2d`` whose
coefficients α split into two or more basis scales) is hooked; its input gives ``ACDAConv2d.scale_share``:
per output pixel, each scale's share of the norm of the effective coefficients β = Σ_a A_a·α_a (the shares
sum to 1 at each pixel). Rows of a share map split into thirds by their centre (top: centre above 1/3 of
the height, bottom: below 2/3), the statistic of Figure 7's claim (near objects at the bottom of a crowd
photograph, far and dense ones at the top).

The worker functions are top-level functions of this module (``base.run_jobs`` spawns processes that import
them) and return plain picklable data (dicts, lists, floats, numpy arrays).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acda.data.crowd import pad_to_multiple
from acda.data.imagenet import MEAN, STD
from acda.layers import ACDAConv2d

from .engine import base
from .engine.runners import train
from .recipes.crowd import CrowdProxy, build

__all__ = ["SLUG", "THIRDS", "third_masks", "multiscale_layers", "default_layer", "kernel_of", "layer_shares", "third_means",
           "face_samples", "constant_mae", "evaluate_proxy", "proxy_seed", "run_task", "strip_prefixes", "load_crowd_model",
           "read_image", "image_shares", "correlation", "partial_correlation", "one_sample_p", "plot_shares"]

SLUG = "crowd_adresnet_s"
THIRDS = ("top", "middle", "bottom")


# ---------------------------------------------------------------- layers and share maps

def multiscale_layers(model: nn.Module) -> list[tuple[str, ACDAConv2d]]:
    """(name, layer) of every ``ACDAConv2d`` in ``model`` whose α has two or more basis scales, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ACDAConv2d) and m.coefficient_scales >= 2]


def kernel_of(scale: int) -> int:
    """Side of basis scale ``scale`` (0 → 3×3, 1 → 5×5, 2 → 7×7)."""
    return 2 * scale + 3


def default_layer(layers: Sequence[tuple[str, ACDAConv2d]]) -> str:
    """The layer drawn by default: the last of those with the most scales."""
    most = max(layer.coefficient_scales for _, layer in layers)
    return [n for n, layer in layers if layer.coefficient_scales == most][-1]


def layer_shares(model: nn.Module, x: torch.Tensor, layers: Sequence[tuple[str, ACDAConv2d]],
                 size: tuple[int, int] | None = None, alpha: bool = False) -> dict[str, tuple[torch.Tensor, int]]:
    """{name: (share (S, h, w), stride)} for one image ``x`` (1, 3, H, W) run through ``model``.

    The share map is ``scale_share`` of the layer's input (captured by a forward pre-hook), cropped to the
    pixels over the image when ``x`` was padded from ``size`` = (h₀, w₀) (bottom/right); ``stride`` is the
    layer's output stride with respect to ``x``. With ``alpha``: the raw map the paper draws instead, each
    scale's per-pixel norm of α over atoms and basis elements (``scale_norms(effective=False)``).
    """
    store: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def capture(module: ACDAConv2d, inputs: tuple) -> None:
            maps = module.scale_norms(inputs[0], effective=False) if alpha else module.scale_share(inputs[0])
            store[name] = maps[0].float().cpu()
        return capture

    handles = [layer.register_forward_pre_hook(hook(name)) for name, layer in layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    h0, w0 = size or tuple(x.shape[-2:])
    out = {}
    for name, _ in layers:
        share = store[name]
        stride = x.shape[-2] // share.shape[-2]
        out[name] = (share[:, :-(-h0 // stride), :-(-w0 // stride)].contiguous(), stride)
    return out


def third_masks(h: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean (h,) masks of the rows in the top, middle and bottom third of ``h`` rows, by row centre."""
    centre6 = 3 * (2 * torch.arange(h) + 1)  # 6h × the row centre's fraction of the height
    return centre6 < 2 * h, (centre6 >= 2 * h) & (centre6 <= 4 * h), centre6 > 4 * h


def third_means(share: torch.Tensor) -> torch.Tensor:
    """(S, 3): each scale's mean share over the rows of the top, middle and bottom third (by row centre:
    (i + ½)/H < ⅓ is top, > ⅔ is bottom, the rest middle); NaN for an empty third (fewer than 3 rows)."""
    masks = third_masks(share.shape[-2])
    return torch.stack([share[:, m].mean(dim=(1, 2)) if m.any() else torch.full(share.shape[:1], math.nan)
                        for m in masks], dim=1)


def face_samples(maps: dict[str, tuple[torch.Tensor, int]], names: Sequence[str], points: torch.Tensor,
                 sizes: torch.Tensor) -> np.ndarray:
    """(N, 4) per annotated face: side, centre row y, share of the largest and of the smallest scale at the
    share-map pixel holding the centre, averaged over the layers ``names``."""
    large, small = np.zeros(len(points)), np.zeros(len(points))
    for name in names:
        share, stride = maps[name]
        rows = (points[:, 1] // stride).long().clamp(0, share.shape[-2] - 1)
        cols = (points[:, 0] // stride).long().clamp(0, share.shape[-1] - 1)
        large += share[-1, rows, cols].double().numpy()
        small += share[0, rows, cols].double().numpy()
    return np.stack([sizes.double().numpy(), points[:, 1].double().numpy(), large / len(names), small / len(names)],
                    axis=1)


# ---------------------------------------------------------------- the crowd proxy (worker calls)

def constant_mae(train_set, test_set) -> float:
    """Test MAE of predicting every image's count as the train split's mean count (what a model that did not
    learn to count scores)."""
    return float((test_set.counts.double() - train_set.counts.double().mean()).abs().mean())


def evaluate_proxy(model: nn.Module, test_set, example: int = 0) -> dict:
    """Share statistics of ``model``'s multi-scale ACDA layers over the whole ``test_set`` (eval mode, whole
    images, one CPU thread): per layer the (S, 3) third means averaged over images, per face the samples of
    ``face_samples`` over the layers with the most scales, and item ``example``'s maps for the figure."""
    layers = multiscale_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no ACDA layer with two or more basis scales")
    most = max(layer.coefficient_scales for _, layer in layers)
    top_layers = [n for n, layer in layers if layer.coefficient_scales == most]
    stride = model.stride
    sums = {n: torch.zeros(layer.coefficient_scales, 3, dtype=torch.float64) for n, layer in layers}
    faces, maps_example = [], None
    model.eval()
    with base.threads(1):
        for i in range(len(test_set)):
            image, _ = test_set[i]
            h, w = image.shape[-2:]
            x, _ = pad_to_multiple(image[None], stride)
            maps = layer_shares(model, x, layers, (h, w))
            for n, _ in layers:
                sums[n] += third_means(maps[n][0]).double()
            faces.append(face_samples(maps, top_layers, test_set.points(i), test_set.sizes(i)))
            if i == example:
                maps_example = {n: (share.numpy(), s) for n, (share, s) in maps.items()}
    return {
        "layers": [{"name": n, "scales": layer.coefficient_scales, "kernel": layer.kernel_size[0]}
                   for n, layer in layers],
        "top_layers": top_layers,
        "thirds": {n: (v / len(test_set)).tolist() for n, v in sums.items()},
        "faces": np.concatenate(faces) if faces else np.zeros((0, 4)),
        "example": {"index": example, "image": test_set.raw_image(example).numpy(),
                    "points": test_set.points(example).numpy(), "sizes": test_set.sizes(example).numpy(),
                    "maps": maps_example},
    }


def proxy_seed(seed: int, recipe: CrowdProxy, device: str = "cpu") -> dict:
    """Train ``crowd_adresnet_s`` with ``recipe`` and ``seed`` (``engine.runners.train``, one CPU thread) and
    measure its scale shares on the proxy's test split (``evaluate_proxy``, on the CPU); the same shares of the
    model at its initialisation go under ``"untrained"`` (the control)."""
    metrics, state = train(recipe, SLUG, {}, seed, device, keep_state=True)
    train_set, test_set = recipe.datasets()
    torch.manual_seed(seed)
    model = recipe.build(SLUG)  # the same initialisation as the trained model's: the untrained control
    untrained = evaluate_proxy(model, test_set)
    model.load_state_dict(state)
    return {"seed": seed, "metrics": dict(metrics), "constant_mae": constant_mae(train_set, test_set),
            **evaluate_proxy(model, test_set),
            "untrained": {k: untrained[k] for k in ("layers", "top_layers", "thirds", "faces")}}


def run_task(kind: str, seed: int, cfg, device: str):
    """One worker call of Figure 7: ``"toy"`` → Figure 6's toy-map seed (``run_seed_single_threaded``, no
    progress bar), ``"proxy"`` → ``proxy_seed``. One pool for both parts balances the load."""
    if kind == "toy":
        from .toymap.experiment import run_seed_single_threaded

        return run_seed_single_threaded(seed, cfg, device, False)
    if kind == "proxy":
        return proxy_seed(seed, cfg, device)
    raise ValueError(f"unknown task kind {kind!r}")


# ---------------------------------------------------------------- statistics

def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r (NaN with fewer than 3 values or no spread)."""
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def partial_correlation(a: np.ndarray, b: np.ndarray, given: np.ndarray) -> float:
    """Pearson's r of ``a`` and ``b`` after removing from each its least-squares line in ``given``."""
    if len(a) < 4 or np.std(given) == 0:
        return math.nan
    design = np.stack([np.ones_like(given), given], axis=1)
    residual = [v - design @ np.linalg.lstsq(design, v, rcond=None)[0] for v in (a, b)]
    return correlation(*residual)


def one_sample_p(values: Sequence[float]) -> float:
    """Two-sided p-value of the one-sample t-test that the mean of ``values`` is 0 (NaN for fewer than 2;
    with no spread: 1 if all are 0, else 0)."""
    from scipy import stats

    values = [float(v) for v in values]
    if len(values) < 2 or any(math.isnan(v) for v in values):
        return math.nan
    if max(values) == min(values):
        return 1.0 if values[0] == 0 else 0.0
    return float(stats.ttest_1samp(values, 0.0).pvalue)


# ---------------------------------------------------------------- --checkpoint / --image

def strip_prefixes(state: dict) -> dict:
    """Keys without a leading ``module.`` (DistributedDataParallel) and then ``model.`` (``WholeImage``)."""
    return {k.removeprefix("module.").removeprefix("model."): v for k, v in state.items()}


def load_crowd_model(path: str | Path, slug: str, *, width_mult: float, generator: str) -> nn.Module:
    """``slug`` built with ``width_mult`` / ``generator``, loaded from the ``model`` entry of the ``acda.train``
    checkpoint at ``path``. ValueError naming the missing, unexpected or mis-shaped entries when they differ."""
    from acda.train import load_checkpoint

    model = build(slug, width_mult=width_mult, generator=generator)
    if not multiscale_layers(model):
        raise ValueError(f"model {slug!r} has no ACDA layer with two or more basis scales: nothing to draw")
    state = strip_prefixes(load_checkpoint(path)["model"])
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        def some(items: list[str]) -> str:
            return ", ".join(items[:5]) + (f" … ({len(items)} in all)" if len(items) > 5 else "")
        parts = ([f"missing {some(missing)}"] if missing else []) + \
                ([f"unexpected {some(unexpected)}"] if unexpected else []) + \
                ([f"shape (checkpoint vs model) {some(wrong)}"] if wrong else [])
        raise ValueError(f"checkpoint {str(path)!r} does not fit {slug} (width ×{width_mult:g}, {generator} "
                         f"generator): {'; '.join(parts)}; check --model, --width-mult and --generator")
    model.load_state_dict(state)
    return model.eval()


def read_image(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 RGB (3, H, W), float32 (3, H, W) normalised with the ImageNet mean/std as the crowd loaders do).
    FileNotFoundError when nothing is there, ValueError when torchvision cannot decode it."""
    from torchvision.io import ImageReadMode, decode_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {str(path)!r}")
    try:
        with warnings.catch_warnings():  # torchvision ≥ 0.29 deprecates its decoders in favour of TorchCodec
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchvision\.")
            raw = decode_image(str(path), mode=ImageReadMode.RGB)
    except Exception as e:  # noqa: BLE001 -- any decoding failure means an unreadable image
        raise ValueError(f"cannot read image {str(path)!r}: {type(e).__name__}: {e}") from e
    x = raw.float().div(255)
    return raw, (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


def image_shares(model: nn.Module, image: torch.Tensor, device: str = "cpu",
                 alpha: bool = False) -> dict[str, tuple[torch.Tensor, int]]:
    """``layer_shares`` of every multi-scale ACDA layer for one normalised image (3, H, W), zero-padded
    (bottom/right) to the model's stride as ``recipes.crowd.WholeImage`` does; maps cropped to the image."""
    h, w = image.shape[-2:]
    x, _ = pad_to_multiple(image[None].to(device), model.stride)
    model = model.to(device).eval()
    return layer_shares(model, x, multiscale_layers(model), (h, w), alpha=alpha)


# ---------------------------------------------------------------- figure

def plot_shares(image: np.ndarray, share: np.ndarray, stride: int, path: str | Path, title: str,
                points: np.ndarray | None = None, sizes: np.ndarray | None = None, alpha: bool = False) -> None:
    """The image (uint8 (3, H, W)) and one heatmap per scale of ``share`` (S, h, w), each share pixel drawn over
    its ``stride``×``stride`` block of the image (nearest), lighter = higher, on one fixed 0–1 colour scale; dashed lines
    at the share map's thirds; annotated faces (centres ``points`` (x, y), sides ``sizes``) as circles on the image.
    With ``alpha``, ``share`` holds the per-scale norms of α (Figure 7's heatmaps), on one colour scale from 0 to
    their maximum over every panel."""
    plt = base.pyplot()
    from matplotlib.patches import Circle

    h, w = image.shape[-2:]
    up = torch.as_tensor(share).repeat_interleave(stride, -2).repeat_interleave(stride, -1)[:, :h, :w].numpy()
    if up.shape[-2:] != (h, w):
        up = F.pad(torch.as_tensor(up), (0, w - up.shape[-1], 0, h - up.shape[-2]), value=math.nan).numpy()
    lo, hi = 0.0, (float(np.nanmax(share)) or 1.0) if alpha else 1.0  # shares of S scales sum to 1 at every pixel
    n = share.shape[0]
    fig, axes = plt.subplots(1, n + 1, figsize=(3.9 * (n + 1) + 0.8, 4.4), constrained_layout=True)
    axes[0].imshow(np.transpose(image, (1, 2, 0)), interpolation="nearest")
    axes[0].set_title("input" + (f" ({len(points)} annotated faces)" if points is not None else ""), fontsize=10)
    if points is not None:
        for (x, y), s in zip(points, sizes):
            axes[0].add_patch(Circle((x, y), s / 2, fill=False, edgecolor="cyan", linewidth=0.6))
    thirds = third_means(torch.as_tensor(share)).numpy()
    for s, ax in enumerate(axes[1:]):
        im = ax.imshow(up[s], cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
        k = kernel_of(s)
        ax.set_title(f"{k}×{k} bases: ‖α‖\n(top / middle / bottom third: " + " / ".join(f"{v:.3g}" for v in thirds[s])
                     + ")" if alpha else f"{k}×{k} bases: share of ‖β‖\n(top / middle / bottom third: "
                     + " / ".join(f"{100 * v:.1f}" for v in thirds[s]) + "%)", fontsize=9)
    top, _, bottom = third_masks(share.shape[-2])
    bounds = (int(top.sum()) * stride, (share.shape[-2] - int(bottom.sum())) * stride)  # the thirds' edges
    for ax in axes:
        for y in bounds:
            ax.axhline(y - 0.5, color="white" if ax is not axes[0] else "yellow", linestyle="--", linewidth=0.7)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[1:], shrink=0.85,
                 label="‖α‖ per pixel (one colour scale for all panels)" if alpha else
                 f"share of the coefficient norm, 0–1 (lighter = higher; an even split is 1/{n})")
    fig.suptitle(title, fontsize=10)
    base.save_figure(fig, path)
