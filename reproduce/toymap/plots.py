"""Figure 6's figures: the paper's Fig. 6 layout, and the per-pixel scale shares (cf. Fig. 7)."""
from __future__ import annotations

from pathlib import Path

from acda.data.toy import PATTERN_NAMES, PATTERN_SIZES

from ..engine import base
from .experiment import SeedRun

__all__ = ["plot_figure6", "plot_scales"]


def plot_figure6(run: SeedRun, path: Path) -> None:
    """Paper Fig. 6 layout: input, target, Conv output, ACDA output; original row, shifted row."""
    fig, axes = base.pyplot().subplots(2, 4, figsize=(13, 7.2), constrained_layout=True)
    rows = ((run.original, run.conv.output, run.acda.output, "original"),
            (run.shifted, run.conv.shifted_output, run.acda.shifted_output, "shifted by (20, 20)"))
    for r, (data, conv, acda, label) in enumerate(rows):
        panels = (
            (data.image, f"input ({label})", None),
            (data.target, "ground truth", (0, 1)),
            (conv, f"Conv: MSE {run.conv.mse:.1e}, centre error {100 * run.conv.centre_error:.0f}%\n"
             f"(max output {conv.max():.2f})" if r == 0 else
             f"Conv, shifted input\n(shift error {run.conv.shift_error:.0e}, max output {conv.max():.2f})", (0, 1)),
            (acda, f"ACDA: MSE {run.acda.mse:.1e}, centre error {100 * run.acda.centre_error:.0f}%\n"
             f"(max output {acda.max():.2f})" if r == 0 else
             f"ACDA, shifted input\n(shift error {run.acda.shift_error:.0e}, max output {acda.max():.2f})", (0, 1)),
        )
        for ax, (img, title, lim) in zip(axes[r], panels):
            img = img.detach().cpu().reshape(img.shape[-2:]).numpy()
            kw = {"vmin": lim[0], "vmax": lim[1]} if lim else {}
            ax.imshow(img, cmap="gray", interpolation="nearest", **kw)
            ax.set_title(title, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Toy pattern detection (seed {run.seed}); outputs clipped to [0, 1]", fontsize=11)
    base.save_figure(fig, path)


def plot_scales(run: SeedRun, path: Path) -> None:
    """Per-pixel share of each basis scale in ACDA's coefficients, pattern centres marked (cf. paper Fig. 7)."""
    plt = base.pyplot()
    norms = run.scale_norms
    share = norms / norms.sum(dim=0, keepdim=True).clamp_min(1e-12)
    markers = {3: ("o", "tab:cyan"), 5: ("s", "tab:green"), 7: ("D", "tab:red")}

    def mark(ax, size: float) -> None:
        for k in PATTERN_SIZES:
            c = run.original.centres[run.original.sizes == k].numpy()
            ax.scatter(c[:, 1], c[:, 0], s=size, marker=markers[k][0], facecolors="none",
                       edgecolors=markers[k][1], linewidths=1.1, label=f"{k}×{k} {PATTERN_NAMES[k]} centre")

    fig, axes = plt.subplots(1, 4, figsize=(17, 5.2), constrained_layout=True)
    axes[0].imshow(run.original.image[0, 0].cpu().numpy(), cmap="gray", interpolation="nearest")
    axes[0].set_title("input", fontsize=10)
    mark(axes[0], 40)
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=3, fontsize=8, frameon=False)
    for s, ax in enumerate(axes[1:]):
        im = ax.imshow(share[s].numpy(), cmap="magma", vmin=0, vmax=0.8, interpolation="nearest")
        mark(ax, 40)
        k = 2 * s + 3
        at = {p: 100 * run.scale_share[p][s].item() for p in PATTERN_SIZES}
        ax.set_title(f"{k}×{k} bases: share of ‖β‖\n(mean at 3×3 / 5×5 / 7×7 centres: "
                     f"{at[3]:.0f} / {at[5]:.0f} / {at[7]:.0f}%)", fontsize=9)
    fig.colorbar(im, ax=axes[1:], shrink=0.85, label="share of the coefficient norm (lighter = higher)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"ACDA: how much each basis scale weighs in each pixel's filter (seed {run.seed})", fontsize=11)
    base.save_figure(fig, path)
