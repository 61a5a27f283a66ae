"""Table 5: real-world denoising on SIDD, PSNR/SSIM and parameters (paper §4.3).

Parameter rows: counted from ``restoration_baseline()`` and ``restoration_acda()`` at their default
widths (the paper gives none; the notes name the widths whose counts come closest). With ``--data-root
DIR`` (SIDD-Medium sRGB + the validation blocks) both are trained (``reproduce.restoration``) and scored
per block as SIDD does; without it, "needs data" with the layout. The other denoisers and ACDA + VNet:
"not implemented". The proxy (on unless ``--no-proxy``): denoising photographs under spatially varying
Poisson–Gaussian noise, several seeds, never compared with the paper; ``--quick``: CI's configuration
(``table5_quick``).

Widths, scoring and the proxy: docs/reproductions.md, section "reproduce.table5".

    python -m reproduce.table5 [--out results/] [--jobs N]
    python -m reproduce.table5 --data-root DIR [--seeds N] [--epochs N] [--smoke N] ...
    python -m reproduce.table5 --quick [--no-plots]
"""
from __future__ import annotations

import sys

import torch

from acda.models.restoration import restoration_acda, restoration_baseline
from acda.profile import count_parameters

from . import restoration as rst
from .engine.report import Result
from .parameter_studies import table5_parameter_study
from .recipes.restoration import RestorationProxy

PARAMS_SETTING = "denoising model"
DATA_SETTING = "SIDD"
# Table 5's row → (factory, the key of table5_parameter_study)
MODELS = {
    "Baseline + MSE": (restoration_baseline, "baseline"),
    "ACDA + MSE": (restoration_acda, "acda"),
}
PEERS = {
    "DnCNN-B [42]": "another denoiser, with its own architecture and training, whose numbers Table 5 quotes from "
                    "its paper",
    "CBDNet [9]": "another denoiser, with its own architecture, noise model and training, whose numbers Table 5 "
                  "quotes from its paper",
    "VNet [41] with UNet": "VNet's variational denoising framework (a UNet denoiser plus a noise-estimation "
                           "network, trained with its variational loss), quoted from its paper",
    "ACDA + VNet": "ACDA inside VNet's variational denoising framework: this suite implements neither VNet's "
                   "noise-estimation network nor its variational loss",
}
PEERS_WITH_PARAMS = ("VNet [41] with UNet", "ACDA + VNet")
TRAINED = {"Baseline + MSE": ("restoration_baseline", {}), "ACDA + MSE": ("restoration_acda", {})}
NOISY_ROW = "Noisy input"


def _meta(factory):
    with torch.device("meta"):  # no memory, no initialisation: counting only
        return factory()


def parameter_results(study: dict | None = None) -> tuple[list[Result], list[str]]:
    """Counted Params rows of our two models, not-implemented Params rows of the others, and the findings."""
    study = table5_parameter_study() if study is None else study
    counts, results = {}, []
    for row, (factory, key) in MODELS.items():
        model = _meta(factory)
        counts[key] = total = count_parameters(model)
        c, w = study["closest"][key]
        near = next(r for r in study["rows"] if (r["channels"], r["width"]) == (c, w))
        printed = study["printed"][key]
        grid = ", ".join(f"({r['channels']}, {r['width']})" for r in study["rows"])
        note = (f"{factory.__name__}() at its default widths (C = {model.body[0].conv1.in_channels} body channels, "
                f"bottleneck width W = {model.body[0].conv1.out_channels}, {len(model.body)} bottlenecks): {total:,} "
                f"vs printed {printed / 1e6:.2f}M. The paper gives no widths; of the round (C, W) pairs "
                f"{grid}, the closest to "
                f"{printed / 1e6:.2f}M is C = {c}, W = {w}: {near[key]:,} ({(near[key] - printed) / 1e6:+.3f}M) "
                "(table5_parameter_study).")
        results.append(Result(row, PARAMS_SETTING, "Params", total / 1e6, "counted", note=note))
    for row in PEERS_WITH_PARAMS:
        results.append(Result(row, PARAMS_SETTING, "Params", None, "counted", status="not implemented",
                              note=f"not implemented: {PEERS[row]}."))
    pairs = [r for r in study["rows"] if r["acda_smaller"]]
    diffs = ", ".join(f"({r['channels']}, {r['width']}) {r['difference']:+,}" for r in study["rows"])
    findings = [
        f"Params at default widths: Baseline {counts['baseline']:,}, ACDA {counts['acda']:,} (printed 2.28M / "
        f"1.97M); ours ACDA − Baseline {(counts['acda'] - counts['baseline']) / 1e6:+.3f}M, printed "
        f"{-study['printed_difference'] / 1e6:+.2f}M.",
        f"Baseline − ACDA over the round (C, W) grid: {diffs}. ACDA is smaller, as the paper says, in "
        f"{len(pairs)} of {len(study['rows'])} pairs; in this grid the difference depends on W only (the body's "
        f"k×k layers), and no pair gives both printed counts: the closest to the baseline's 2.28M is C, W = "
        f"{tuple(study['closest']['baseline'])}, to ACDA's 1.97M C, W = {tuple(study['closest']['acda'])}.",
    ]
    return results, findings


def recipes(quick: bool, **overrides) -> dict[str, RestorationProxy]:
    """The recipes of the proxy report (``table5`` or ``table5_quick``)."""
    return {"proxy": RestorationProxy.of(quick).with_(**{"problem": "denoise", "scale": 1, **overrides})}


TABLE = rst.RestorationTable(
    name="table5", title="Table 5: SIDD denoising (PSNR/SSIM) and parameters", doc=__doc__, problem="denoise",
    crop=256, data_root_help="SIDD folder (layout in the 'needs data' notes)",
    blocks=(rst.RealBlock(DATA_SETTING, {row: (row, model) for row, model in TRAINED.items()}),),
    reference=NOISY_ROW, real_compare=("Baseline + MSE", ("ACDA + MSE",)),
    not_implemented={row: ((DATA_SETTING,), why) for row, why in PEERS.items()},
    extra=parameter_results,
    proxy=rst.ProxyPlan(
        models=TRAINED, reference=NOISY_ROW,
        setting="proxy{quick}: Poisson–Gaussian noise varying across skimage photos",
        block="Denoising proxy (NOT SIDD; matched parameter budgets)",
        compare=("Baseline + MSE", ("ACDA + MSE",)),
        budget="Denoising proxy models at matched parameter budgets (C {channels}; the baseline's W chosen for the "
               "count nearest ACDA's): {budgets}.",
        preview="Table 5 proxy (skimage photos, spatially varying Poisson–Gaussian noise; NOT SIDD): seed-0 models, "
                "centre crops",
        preview_rows=tuple(TRAINED)),
    recipes=recipes,
)


REPRODUCER = rst.reproducer(TABLE, [("T5", "SIDD denoising PSNR/SSIM (§4.3)")])
main = REPRODUCER.main


if __name__ == "__main__":
    sys.exit(main())
