"""Table B: ablation on the number of atoms m and of Fourier-Bessel scales S, RealSR Final ×3 (Appendix A.6).

Two sweeps of the ACDA restoration network: m ∈ {3, 5, …, 15} atoms at S = 3, and S ∈ {1, …, 5} scales
at m = 6. With ``--data-root`` (RealSR, ×3) each configuration is trained (``reproduce.restoration``);
without it the rows say "needs data". Params/GFLOPs are counted without data; the paper's
inconsistencies are flagged in the notes. The proxy (on unless ``--no-proxy``): the same sweeps on Table
4's ×3 proxy, each configuration Welch-tested against m = 6, S = 3, never compared with the paper;
``--quick``: CI's configuration (``tableB_quick``).

Kernel sizes, metrics and the flagged entries: docs/reproductions.md, section "reproduce.tableB".

    python -m reproduce.tableB [--out results/] [--jobs N]
    python -m reproduce.tableB --data-root DIR [--train m=3 S=2 ...] [--smoke N]
    python -m reproduce.tableB --quick
"""
from __future__ import annotations

import sys

from . import restoration as rst
from .recipes.restoration import RestorationProxy

SCALE = 3
SETTING = "RealSR Final ×3"
DEFAULT_M, DEFAULT_S = 6, 3


def config(m: int = DEFAULT_M, s: int = DEFAULT_S) -> tuple[str, dict]:
    """The registered model and its arguments for m atoms and S scales."""
    return "restoration_acda", {"num_atoms": m, "num_scales": s, "kernel_size": 2 * s + 1}


SWEEP = {**{f"m = {m}": config(m=m) for m in (3, 5, 7, 9, 11, 13, 15)},
         **{f"S = {s}": config(s=s) for s in (1, 2, 3, 4, 5)}}
REFERENCE_ROW = "S = 3"  # m = 6, S = 3: the text's choice, our reference
QUICK_ROWS = ("m = 3", "S = 3")
# twelve configurations: fewer seeds and a shorter schedule than Table 4's proxy, the same data and widths
PROXY_OVERRIDES = {"full": {"seeds": 3, "train": 256, "epochs": 6}, "quick": {"seeds": 3}}


def recipes(quick: bool, **overrides) -> dict[str, RestorationProxy]:
    """The recipes of the proxy report (``tableB`` or ``tableB_quick``): Table 4's ×3 proxy, fewer seeds."""
    preset = PROXY_OVERRIDES["quick" if quick else "full"]
    return {f"proxy ×{SCALE}": RestorationProxy.of(quick).with_(**{"scale": SCALE, **preset, **overrides})}


TABLE = rst.RestorationTable(
    name="tableB", title="Table B: ablation on atoms m and scales S (RealSR Final ×3)", doc=__doc__, problem="sr",
    crop=129, data_root_help="RealSR folder holding Canon/ and Nikon/ (×3 is used)", what="configuration",
    blocks=(rst.RealBlock(SETTING, {row: (row, model) for row, model in SWEEP.items()}, scale=SCALE),),
    counted=SWEEP, count_setting="SR model, ×3 ablation",
    proxy=rst.ProxyPlan(
        models=SWEEP, quick_rows=QUICK_ROWS, matched=False, reference="Bicubic",
        setting="proxy ×{scale}{quick}: non-uniform blur + bicubic on skimage photos",
        block="Proxy ×{scale} sweep (NOT RealSR; C {channels}, W {width}), each configuration against m = 6, S = 3",
        compare=(REFERENCE_ROW, ()), sweep=True, label=f"{REFERENCE_ROW} (m = 6)",
        budget="Parameters of the proxy configurations: {budgets}."),
    recipes=recipes,
)


REPRODUCER = rst.reproducer(TABLE, [("TB", "Ablation on the number of atoms m and scales S (Appendix A.6)")])
main = REPRODUCER.main


if __name__ == "__main__":
    sys.exit(main())
