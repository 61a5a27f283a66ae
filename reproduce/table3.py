"""Table 3: crowd counting, MAE/MSE on ShanghaiTech Part A and UCF-QNRF, and parameters (paper §4.2).

Parameter rows: counted from the registered crowd models at full width and compared with the counts
Table 3 prints. MAE/MSE rows (``--data-root DIR`` holding ``part_A_final`` and/or ``UCF-QNRF_ECCV18``):
each model of ``--train`` is trained by ``acda.train.fit`` and its last epoch evaluated on the whole
test images; without data, "needs data" with the layout. The other crowd counters: "not implemented".
The proxy (on unless ``--no-proxy``): Baseline vs Ad-ResNet-s at reduced width on ``acda.data.crowd_proxy``,
several seeds; ``--quick``: its CI size (``table3_quick``). Proxy rows are never compared with the paper.

The recipe and why (× 100 density maps, the authors' generator, pretraining), and the proxy's
configuration: docs/reproductions.md, section "reproduce.table3".

    python -m reproduce.table3 [--out results/]
    python -m reproduce.table3 --data-root DIR [--dataset shtech_a|ucf_qnrf|both] [--train MODEL ...] [--smoke N]
                               [--epochs N] [--seeds N] [--pretrained MODEL=CKPT ...] [--width-mult W]
    python -m reproduce.table3 --quick --threads 1 [--no-proxy] [--no-plots]
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from acda.data import DatasetLayoutError
from acda.data.crowd import (
    SHANGHAITECH_A_LAYOUT,
    UCF_QNRF_LAYOUT,
    CrowdDataset,
    shanghaitech_a,
    ucf_qnrf,
)
from acda.data.crowd_proxy import crowd_proxy_preview
from acda.data.layout import one_line
from acda.models.crowd import CrowdCounter
from acda.profile import count_parameters
from acda.train import load_checkpoint

from .engine import base, runners
from .engine.report import Result, load_published, missing, samples_of
from .engine.reproducer import Report, Reproducer
from .engine.stats import mean_std, seed_comparisons
from .parameter_studies import table3_parameter_study
from .recipes.crowd import ACDA_MODELS, Crowd, CrowdProxy, build

PARAMS_SETTING = "crowd model"
# Table 3's row → (registered model, the row's name in table3_parameter_study)
MODELS = {
    "Baseline": ("crowd_baseline", "Baseline"),
    "Ad-ResNet-s": ("crowd_adresnet_s", "Ad-ResNet-s"),
    "Ad-ResNet-m": ("crowd_adresnet_m", "Ad-ResNet-m"),
    "CondConv-s [40]": ("crowd_condconv_s", "CondConv-s"),
    "CondConv-l [40]": ("crowd_condconv_l", "CondConv-l"),
}
ROW_OF = {slug: row for row, (slug, _) in MODELS.items()}
DEFAULT_TRAIN = ("crowd_baseline", "crowd_adresnet_s", "crowd_adresnet_m")
OTHERS = ("MCNN [45]", "Switch-CNN [29]", "SCNet [38]", "ic-CNN [28]", "SANet [5]", "CL-CNN [14]", "PACNN [32]",
          "SFCN [35]", "CAN [21]", "Wan et al. [34]", "BL [22]")
OTHERS_WITH_PARAMS = ("SFCN [35]", "CAN [21]", "BL [22]")
METRICS = {"MAE": "val_mae", "MSE": "val_rmse"}


@dataclass(frozen=True)
class Dataset:
    key: str
    setting: str  # Table 3's column
    folder: str  # under --data-root
    layout: str
    load: object  # (root, split, **kwargs) -> CrowdDataset


DATASETS = {d.key: d for d in (
    Dataset("shtech_a", "SHTech-A", "part_A_final", SHANGHAITECH_A_LAYOUT, shanghaitech_a),
    Dataset("ucf_qnrf", "UCF-QNRF", "UCF-QNRF_ECCV18", UCF_QNRF_LAYOUT, ucf_qnrf),
)}

NOT_IMPLEMENTED = ("another crowd counter, with its own architecture, loss and training, whose numbers Table 3 "
                   "quotes from its paper; this suite implements only the models the ACDA paper builds and "
                   "trains itself (Baseline, Ad-ResNet-s/-m, CondConv-s/-l)")


# ---------------------------------------------------------------------------------------------
# Parameter rows
# ---------------------------------------------------------------------------------------------

def _meta(slug: str, **kwargs) -> CrowdCounter:
    with torch.device("meta"):  # no memory, no initialisation: counting only
        return build(slug, **kwargs)


def _grid_text(study: dict, name: str) -> str:
    c, points = study["closest"][name], study["grid"]["points"][name]
    gen = f"generator={c['generator']!r}, " if name.startswith("Ad-ResNet") else ""
    return (f"Closest decoder of the grid (transposed-conv kernel {study['grid']['decoder_kernel']} × first width "
            f"{study['grid']['decoder_width']} × output stride {study['grid']['output_stride']}"
            + (" × generator" if gen else "") + f", {points} points): {gen}kernel {c['decoder_kernel']}, width "
            f"{c['decoder_width']}, output stride {c['output_stride']}: {c['params']:,} ({c['delta_M']:+.3f}M); "
            "no single decoder fits all rows (findings).")


def parameter_note(row: str, model: CrowdCounter, study: dict) -> str:
    slug, name = MODELS[row]
    total, bb, dec = (count_parameters(m) for m in (model, model.backbone, model.decoder))
    printed = study["printed"][name]
    widths = "/".join(map(str, model.decoder.widths))
    text = (f"{slug}() at full width{', paper generator (A.3)' if slug in ACDA_MODELS else ''}, default decoder "
            f"({len(model.decoder.widths)} stride-2 {model.decoder.kernel_size}×{model.decoder.kernel_size} "
            f"transposed convs {widths} + BN + ReLU, 1×1 head, output stride {model.output_stride}): {total:,} = "
            f"backbone {bb:,} + decoder {dec:,}")
    implied = study["implied_decoder"][name]
    if slug in ACDA_MODELS:
        official = next(r for r in study["rows"] if r["row"] == name)["official"]["params"]
        text += (f"; with the authors' generator {official:,}. The printed {printed}M leaves {implied['paper']:,} "
                 f"for a decoder after our backbone ({implied['official']:,} with the authors' generator). ")
    else:
        text += f". The printed {printed}M leaves {implied['paper']:,} for a decoder after our backbone. "
    bd = study["baseline_difference"]
    if slug in ("crowd_baseline", "crowd_adresnet_s"):
        text += (f"Ad-ResNet-s − Baseline (the decoders cancel): printed +{bd['printed_M']:.2f}M, ours "
                 f"{bd['paper']['ours'] / 1e6:+.3f}M; the printed difference implies "
                 f"{bd['implied_generator_per_layer']:,.0f} generator parameters per ACDA layer, ours "
                 f"{bd['paper']['generator_per_layer']:,.0f} (A.3) / {bd['official']['generator_per_layer']:,.0f} "
                 f"(authors'), Table 2's printed Ad-ResNet-s {bd['imagenet_implied_generator_per_layer']:,.0f}. ")
    if slug == "crowd_baseline":
        text += (f"Each ACDA k×k layer is a standard 3×3 conv here: k×k convs (7×7, 5×5) would make the backbone "
                 f"alone {bd['same_kernel_backbone']:,}, above the printed total. ")
    if slug == "crowd_adresnet_m":
        imd = study["imagenet_difference"]
        text += (f"Printed crowd − Table 2 (ImageNet) counts plus the FC layer imply a decoder of "
                 f"{imd['Ad-ResNet-m']['implied_decoder']:,} here and {imd['Ad-ResNet-s']['implied_decoder']:,} "
                 f"for Ad-ResNet-s ({imd['Ad-ResNet-m']['implied_decoder'] / imd['Ad-ResNet-s']['implied_decoder']:.2f}"
                 f"×, as the backbones' output widths 1024 / 512). ")
    if slug in ("crowd_condconv_s", "crowd_condconv_l"):
        experts = 4 if slug.endswith("_s") else 8
        imagenet = study["printed_imagenet"][name]
        text += (f"EfficientNet-B0 with CondConv ({experts} experts, one routing per layer) in stages 5–7, Table "
                 f"2's CondConv-EfficientNet rule; the printed count is the official {experts}-expert release's "
                 f"{imagenet}M + {printed - imagenet:.1f}M. ")
    return text + _grid_text(study, name)


def parameter_results(study: dict | None = None) -> tuple[list[Result], list[str]]:
    """Counted Params rows of our five models, the not-implemented Params rows, and the findings."""
    study = table3_parameter_study() if study is None else study
    results, deltas, signs = [], [], []
    for row, (slug, name) in MODELS.items():
        model = _meta(slug)
        total = count_parameters(model)
        results.append(Result(row, PARAMS_SETTING, "Params", total / 1e6, "counted",
                              note=parameter_note(row, model, study)))
        signs.append(total / 1e6 - study["printed"][name])
        deltas.append(f"{row} {signs[-1]:+.3f}M")
    for row in OTHERS_WITH_PARAMS:
        results.append(Result(row, PARAMS_SETTING, "Params", None, "counted", status="not implemented",
                              note=f"not implemented: {NOT_IMPLEMENTED}."))
    larger = all(d > 0 for d in signs)
    findings = [f"Params at full width with the default decoder, ours − printed: {', '.join(deltas)}"
                + (": every model is larger than printed. " if larger else ". ") + "The decoder is not "
                "described beyond 'consecutive transposed convolution layers with batch normalization and "
                "ReLU'; the findings below say which decoders come closest and which differences no decoder "
                "can change."]
    return results, findings + list(study["findings"])


# ---------------------------------------------------------------------------------------------
# MAE / MSE rows
# ---------------------------------------------------------------------------------------------

def load_backbone(model: CrowdCounter, path: str | Path) -> int:
    """Load ``model.backbone`` from the ``model`` entry of an ``acda.train`` checkpoint (e.g. Table 2's
    ``best.pt`` of the ImageNet model with the same backbone); the classifier and any other extra
    entries are ignored. Every backbone tensor must be there with its shape. Returns how many loaded."""
    state = {k.removeprefix("module."): v for k, v in load_checkpoint(path)["model"].items()}
    own = model.backbone.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)} ≠ {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if missing or wrong:
        problems = ([f"{len(missing)} tensors missing, e.g. {missing[:3]}"] if missing else []) + (
            [f"{len(wrong)} of other shapes, e.g. {wrong[:3]}"] if wrong else [])
        raise ValueError(f"{str(path)!r} does not hold this model's backbone: {'; '.join(problems)}")
    model.backbone.load_state_dict({k: state[k] for k in own})
    return len(own)


def recipes(quick: bool, **overrides) -> dict[str, CrowdProxy]:
    """The recipes of the proxy report (``table3`` or ``table3_quick``), with ``overrides`` (tests)."""
    return {"proxy": CrowdProxy.of(quick).with_(**overrides)}


def real_recipe(args: argparse.Namespace) -> Crowd:
    """The ``Crowd`` recipe of the command line."""
    return Crowd.full().with_(epochs=args.epochs, batch_size=args.batch_size, crop_size=args.crop_size, lr=args.lr,
                              weight_decay=args.weight_decay, width_mult=args.width_mult,
                              density_scale=args.density_scale, generator=args.generator, amp=args.amp)


def init_text(args: argparse.Namespace, slug: str) -> str:
    return (f"backbone loaded from {args.pretrained[slug]}" if slug in args.pretrained else
            "backbone from scratch (the paper starts from ImageNet-trained networks)")


def run_tag(args: argparse.Namespace, slug: str) -> str:
    tag = slug + (f"_w{args.width_mult:g}" if args.width_mult != 1 else "")
    tag += f"_{args.generator}" if slug in ACDA_MODELS and args.generator != Crowd.generator else ""
    return tag + ("_pretrained" if slug in args.pretrained else "")


def train_one(args: argparse.Namespace, slug: str, train_set: CrowdDataset, test_set: CrowdDataset, seed: int,
              device: str, dataset: str, log=print) -> dict:
    recipe = real_recipe(args)

    def model() -> torch.nn.Module:
        net = recipe.build(slug)
        if slug in args.pretrained:
            load_backbone(net, args.pretrained[slug])
        return recipe.trainable(net)

    config = recipe.train_config(seed, device, num_workers=args.num_workers, progress=True)
    metrics = runners.train_real(model, train_set, test_set, config,
                                 runners.run_dir(args.runs, dataset, run_tag(args, slug), seed=seed), task=recipe.task())
    log(f"{dataset} {slug} seed {seed}: MAE {metrics['val_mae']:.2f}, MSE {metrics['val_rmse']:.2f}")
    return metrics


def trained_results(setting: str, slug: str, runs: list[dict], recipe: str, n_test: int,
                    width_mult: float = 1.0) -> list[Result]:
    """The MAE/MSE rows of ``slug`` trained on ``setting``, one sample per seed. At a reduced width the
    model is not the paper's: the rows are proxies (own setting, never compared) and the published
    rows say what is missing."""
    out = []
    for metric, key in METRICS.items():
        values = [m[key] for m in runs]
        note = (f"trained here: {recipe}; last epoch's model on the {n_test} whole test images (batch 1), mean "
                "over seeds")
        if width_mult != 1:
            out.append(Result(ROW_OF[slug], f"{setting}, width ×{width_mult:g}", metric, None, "trained",
                              status="proxy", unit="people", samples=values,
                              note=f"PROXY: a reduced-width model (channels × {width_mult:g}), not the paper's; "
                                   f"never compared with the paper. {note}"))
            out.append(Result(ROW_OF[slug], setting, metric, None, "trained", status="needs data",
                              note=f"only a reduced-width model (--width-mult {width_mult:g}) was trained in this "
                                   "run: see its proxy row; --width-mult 1 trains the paper's model"))
            continue
        tol = 2 * mean_std(values)[1] if len(values) > 1 else None
        out.append(Result(ROW_OF[slug], setting, metric, None, "trained", samples=values, tolerance=tol,
                          note=note + ("; tolerance = 2 × std over seeds" if tol else "")))
    return out


def needs_data(setting: str, slug: str, why: str) -> list[Result]:
    return missing([ROW_OF[slug]], [setting], METRICS, "needs data", why)


def layout_note(ds: Dataset, why: str = "") -> str:
    layout = one_line(ds.layout)
    return (f"needs data{': ' + why if why else ''}. Pass --data-root DIR with {layout}. --train picks the models "
            f"(default {' '.join(DEFAULT_TRAIN)}; the CondConv rows need crowd_condconv_s / crowd_condconv_l)")


def comparison_finding(setting: str, runs: dict[str, list[float]], width_mult: float = 1.0) -> str | None:
    """Baseline vs Ad-ResNet-s (and -m) MAE ({model: per seed}) when both were trained on ``setting``."""
    if "crowd_baseline" not in runs:
        return None
    parts = seed_comparisons([("Baseline", runs["crowd_baseline"], ROW_OF[slug], runs[slug], "MAE")
                              for slug in ACDA_MODELS if slug in runs], higher_is_better=False)
    if not parts:
        return None
    pub = load_published("table3").set_index(["row", "setting", "metric"])["published"]
    printed = "; ".join(f"{ROW_OF[slug]} {pub[(ROW_OF[slug], setting, 'MAE')]:g} vs Baseline "
                        f"{pub[('Baseline', setting, 'MAE')]:g}" for slug in ACDA_MODELS if slug in runs)
    where = f" at width ×{width_mult:g} (PROXY: not the paper's models)" if width_mult != 1 else ""
    return f"{setting}, trained here{where}: " + " ".join(parts) + f" Printed: {printed}."


def real_findings(rows: Iterable[Result] | pd.DataFrame) -> list[str]:
    """Baseline vs Ad-ResNet MAE on each dataset trained with seeds (at full or reduced width), from the rows."""
    samples, out = samples_of(rows), []
    for ds in DATASETS.values():
        settings = sorted({s for _, s, _ in samples if s == ds.setting or s.startswith(f"{ds.setting}, width ×")})
        for where in settings:
            width = 1.0 if where == ds.setting else float(where.rsplit("×", 1)[1])
            runs = {slug: samples[(row, where, "MAE")] for slug, row in ROW_OF.items() if (row, where, "MAE") in samples}
            finding = comparison_finding(ds.setting, runs, width)
            if finding:
                out.append(finding)
    if any(s.split(", width ×")[0] in {ds.setting for ds in DATASETS.values()} for _, s, _ in samples):
        out.append("Trained rows report the last epoch's model; fit also evaluates every epoch on the test "
                   "set (metrics.csv and best.pt in each run folder), but selecting an epoch on the test set "
                   "would not be a held-out result, so best.pt is not used here.")
    return out


def count_rows(args: argparse.Namespace, log=print) -> tuple[list[Result], str]:
    """MAE/MSE rows of our five models (trained, or needs data), and the device."""
    results: list[Result] = []
    device = "cpu"
    root = None if args.data_root is None else Path(args.data_root)
    wanted = tuple(DATASETS) if args.dataset == "both" else (args.dataset,)
    if root is not None:
        device, log = base.training_context(args.device, log)
    found = {k for k, ds in DATASETS.items()
             if root is not None and (root.name == ds.folder or (root / ds.folder).is_dir())}
    if root is not None and args.dataset == "both" and not found:
        raise DatasetLayoutError("Table 3 data", root, "neither part_A_final nor UCF-QNRF_ECCV18 is there",
                                 "\n".join(ds.layout for ds in DATASETS.values()))
    for ds in DATASETS.values():
        # an explicitly requested dataset is loaded even if absent: its loader names what is missing
        if root is None or ds.key not in wanted or (args.dataset == "both" and ds.key not in found):
            why = ("" if root is None else f"not requested (--dataset {args.dataset})" if ds.key not in wanted
                   else f"no {ds.folder} under {root}")
            for slug in ROW_OF:
                results += needs_data(ds.setting, slug, layout_note(ds, why))
            continue
        train_set = runners.smoke_subset(ds.load(root, "train", crop_size=args.crop_size), args.smoke)
        test_set = runners.smoke_subset(ds.load(root, "test", augment=False), args.smoke)
        runs: dict[str, list[dict]] = {}
        for slug in ROW_OF:
            if slug not in args.train:
                results += needs_data(ds.setting, slug, f"not trained in this run (add --train {slug})")
                continue
            runs[slug] = [train_one(args, slug, train_set, test_set, seed, device, ds.key, log)
                          for seed in range(args.seeds)]
            results += trained_results(ds.setting, slug, runs[slug], f"recipe real (Recipes), {init_text(args, slug)}",
                                       len(test_set), args.width_mult)
    return results, device


def other_results() -> list[Result]:
    """MAE/MSE rows of the crowd counters Table 3 quotes (their Params rows are in ``parameter_results``)."""
    return missing(OTHERS, [ds.setting for ds in DATASETS.values()], METRICS, "not implemented",
                   f"not implemented: {NOT_IMPLEMENTED}.")


# ---------------------------------------------------------------------------------------------
# Proxy rows (lfw faces on scikit-image photographs)
# ---------------------------------------------------------------------------------------------

TRIVIAL_ROW = "Train-mean count (reference)"


def trivial_errors(train_set, test_set) -> tuple[float, float, float]:
    """(training mean count, MAE, RMSE) of predicting that mean for every test image."""
    mean = sum(train_set.count(i) for i in range(len(train_set))) / len(train_set)
    err = [test_set.count(i) - mean for i in range(len(test_set))]
    return mean, sum(abs(e) for e in err) / len(err), math.sqrt(sum(e * e for e in err) / len(err))


MATCHED_ROW = "Baseline (matched budget)"


def proxy_models(recipe: CrowdProxy) -> dict[str, tuple[str, dict]]:
    """The proxy's rows → (registered model, kwargs): Baseline and Ad-ResNet-s at the recipe's width, and the
    Baseline widened to Ad-ResNet-s's parameter budget (its atom generators make it the larger at one width)."""
    matched = recipe.matched_width("crowd_baseline", "crowd_adresnet_s")
    return {"Baseline": ("crowd_baseline", {}), MATCHED_ROW: ("crowd_baseline", {"width_mult": matched}),
            "Ad-ResNet-s": ("crowd_adresnet_s", {})}


def proxy_rows(recipe: CrowdProxy, device: str = "cpu", jobs: int = 1, log=print) -> tuple[list[Result], list]:
    """Seeded proxy rows of the models, the reference row, and the test set."""
    train_set, test_set = recipe.datasets()
    setting, models = recipe.setting(), proxy_models(recipe)
    counts = {row: recipe.parameters(slug, kwargs.get("width_mult")) for row, (slug, kwargs) in models.items()}
    trained, _ = runners.seed_runs(recipe, models, jobs=jobs, device=device, log=log)
    runs = {metric: {row: [m[key] for m in trained[row]] for row in models} for metric, key in METRICS.items()}
    results = []
    for row, (_, kwargs) in models.items():
        width = kwargs.get("width_mult", recipe.width_mult)
        for metric in METRICS:
            results.append(Result(row, setting, metric, None, "trained", status="proxy", unit="people",
                                  samples=runs[metric][row],
                                  note=("PROXY, not SHTech/UCF-QNRF: never compared with the paper. "
                                        + ("MSE is the root of the mean squared count error, as crowd papers "
                                           "compute it. " if metric == "MSE" else "")
                                        + f"Width ×{width:g}, {counts[row]:,} parameters. Last epoch's model on "
                                        f"the {len(test_set)} whole test images (held-out faces and backgrounds), "
                                        "mean over seeds; recipe proxy (Recipes)")))
    mean, mae, rmse = trivial_errors(train_set, test_set)
    test_mean = sum(test_set.count(i) for i in range(len(test_set))) / len(test_set)
    for metric, value in (("MAE", mae), ("MSE", rmse)):
        results.append(Result(TRIVIAL_ROW, setting, metric, value, "measured", status="proxy", unit="people",
                              note=f"PROXY reference: predict the training images' mean count ({mean:.2f}) for every "
                                   f"test image (test mean count {test_mean:.2f}); a model that learned to count "
                                   "is below this" + ("; MSE = root of the mean squared error" if metric == "MSE"
                                                      else "")))
    return results, test_set


def proxy_findings(rows: Iterable[Result] | pd.DataFrame, recipe: CrowdProxy) -> list[str]:
    """The proxy's findings, computed from its rows: parameter counts, Baseline (both budgets) vs Ad-ResNet-s as
    one Holm family, and how many runs beat the train-mean reference."""
    train_set, test_set = recipe.datasets()
    setting, quick, samples = recipe.setting(), recipe.variant == "quick", samples_of(rows)
    models = proxy_models(recipe)
    counts = {row: recipe.parameters(slug, kwargs.get("width_mult")) for row, (slug, kwargs) in models.items()}
    runs = {metric: {row: samples[(row, setting, metric)] for row in models} for metric in METRICS}
    mean, mae, rmse = trivial_errors(train_set, test_set)
    test_mean = sum(test_set.count(i) for i in range(len(test_set))) / len(test_set)
    findings = ["Proxy parameter counts: " + ", ".join(f"{row} {n:,}" for row, n in counts.items())
                + " (Ad-ResNet-s's fixed 64-channel atom generators make it the larger model at one width; "
                f"'{MATCHED_ROW}' is the Baseline widened to its budget)."]
    what = (f"Proxy (NOT SHTech/UCF-QNRF; {recipe.size}×{recipe.size} lfw faces on skimage photos, test mean count "
            f"{test_mean:.2f}; MAE and MSE of one model are correlated, and the four tests are one Holm family)")
    findings.append(f"{what}: " + " ".join(seed_comparisons(
        [(base, runs[metric][base], "Ad-ResNet-s", runs[metric]["Ad-ResNet-s"], metric)
         for base in ("Baseline", MATCHED_ROW) for metric in METRICS], higher_is_better=False)))
    below = {row: sum(v < mae for v in runs["MAE"][row]) for row in models}
    counted = ", ".join(f"{row} on {n}/{recipe.seeds} seeds" for row, n in below.items())
    verdict = ("every model learned to count on the proxy" if all(n == recipe.seeds for n in below.values())
               else "not every run learned to count (a guard for CI, not a measurement)" if quick
               else "not every run learned to count")
    findings.append(f"Proxy reference: predicting the training mean count ({mean:.2f}) gives test MAE {mae:.2f}, "
                    f"MSE {rmse:.2f}; MAE below it: {counted}: {verdict}. The proxy says nothing about the paper's "
                    "numbers.")
    return findings


def table_findings(rows: Iterable[Result] | pd.DataFrame, proxy: CrowdProxy | None, quick: bool) -> list[str]:
    """The report's findings, computed from its rows: the parameter analysis, the real-data comparisons, the
    proxy's (``proxy``: its recipe; None without a proxy)."""
    out = parameter_results()[1] + real_findings(rows)
    if proxy is not None:
        out += proxy_findings(rows, proxy)
        if quick:
            out.append("--quick: a small configuration for CI; the full proxy is `python -m reproduce.table3` "
                       "(results/table3.md).")
    return out


def counted_rows() -> list[Result]:
    """The rows obtained without data, recomputed (``python -m reproduce verify``)."""
    return parameter_results()[0] + other_results()


def report_findings(rows: pd.DataFrame, quick: bool) -> list[str]:
    """Every finding of a committed report, recomputed from its rows (``python -m reproduce verify``)."""
    return table_findings(rows, recipes(quick)["proxy"] if (rows["status"] == "proxy").any() else None, quick)


def proxy_preview(test_set, path: str | Path, count: int = 4) -> None:
    """A PNG of the first ``count`` proxy test images with their annotated points."""
    items = crowd_proxy_preview(test_set, range(min(count, len(test_set))))
    plt = base.pyplot()
    fig, axes = plt.subplots(1, len(items), figsize=(3 * len(items), 3.2), squeeze=False)
    for ax, item in zip(axes[0], items, strict=True):
        ax.imshow(item["image"])
        if len(item["points"]):
            ax.scatter(item["points"][:, 0] - 0.5, item["points"][:, 1] - 0.5, s=6, c="red")
        ax.set_title(f"count {item['count']}", fontsize=9)
        ax.axis("off")
    fig.suptitle("Table 3 proxy: test images (held-out faces and backgrounds) and their points", fontsize=9)
    fig.tight_layout()
    base.save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def _pretrained(items: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    out = {}
    for item in items:
        slug, sep, path = item.partition("=")
        if not sep or slug not in ROW_OF or not path:
            parser.error(f"--pretrained takes MODEL=CHECKPOINT with MODEL one of {sorted(ROW_OF)}, got {item!r}")
        out[slug] = path
    return out


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("shtech_a", "ucf_qnrf", "both"), default="both",
                        help="dataset(s) to train on (default: both, each one found under --data-root)")
    parser.add_argument("--train", nargs="+", choices=sorted(ROW_OF), default=list(DEFAULT_TRAIN),
                        help="models to train with --data-root (default: %(default)s)")
    base.recipe_options(parser, Crowd.full(), {
        "epochs": "training epochs", "batch_size": "crops per batch", "crop_size": "square training crop",
        "lr": "Adam learning rate", "weight_decay": "L2 weight decay"})
    parser.add_argument("--width-mult", type=base.positive_float, default=1.0,
                        help="channel multiplier of the trained models (default 1: the paper's; Params rows are "
                             "always counted at full width)")
    parser.add_argument("--density-scale", type=base.positive_float, default=Crowd.density_scale,
                        help="the network learns this × the density map (default %(default)s; see the module help)")
    parser.add_argument("--generator", choices=("paper", "official"), default=Crowd.generator,
                        help="atom generator of the trained Ad-ResNets (default: %(default)s, see the module help)")
    parser.add_argument("--pretrained", nargs="+", default=[], metavar="MODEL=CKPT",
                        help="initialise MODEL's backbone from an acda.train checkpoint, e.g. "
                             "crowd_adresnet_s=checkpoints/table2/adresnet_s/seed0/best.pt")
    parser.add_argument("--amp", action="store_true", help="mixed precision")
    parser.add_argument("--num-workers", type=base.non_negative_int, default=4, help="DataLoader workers (default %(default)s)")
    parser.add_argument("--no-proxy", dest="proxy", action="store_false", help="skip the real-image proxy")
    parser.add_argument("--proxy", dest="proxy", action="store_true", help="run the proxy (default)")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="no proxy preview PNG")
    parser.set_defaults(proxy=True, plots=True)


def build_reports(args: argparse.Namespace, parser: argparse.ArgumentParser,
          proxy_overrides: dict | None = None) -> list[Report]:
    """The report: Params rows, MAE/MSE rows (trained with ``--data-root``, else "needs data"), not-implemented
    rows and the proxy's (``proxy_overrides``, tests: its settings), with the proxy's preview figure."""
    args.pretrained = _pretrained(args.pretrained, parser)
    counts, device = count_rows(args)
    if not base.is_main_process():
        return []
    params, _ = parameter_results()
    results = params + counts + other_results()
    name = "table3_quick" if args.quick else "table3"
    figures, used = [], {}
    if args.data_root is not None and any(r.samples for r in counts):
        used["real"] = real_recipe(args)
    if args.proxy:
        recipe = used["proxy"] = recipes(args.quick, **(proxy_overrides or {}))["proxy"]
        rows, test_set = proxy_rows(recipe, "cpu" if args.device == "auto" else args.device, args.jobs)
        results += rows
        if args.plots:
            figures.append(lambda out: proxy_preview(test_set, Path(out, f"{name}_proxy.png")))
    title = "Table 3: crowd counting (MAE/MSE) and parameters" + (" — quick config" if args.quick else "")
    return [Report(name, title, results, table_findings(results, used.get("proxy"), args.quick), used, device,
                   figures)]


REPRODUCER = Reproducer(
    "table3", [("T3", "Crowd counting MAE/MSE, ShanghaiTech-A and UCF-QNRF (§4.2)")], __doc__, {
        "device": {"help": "auto (default), cpu or cuda[:i] (training only)"},
        "threads": {},
        "jobs": {"help": "proxy runs in this many worker processes, one CPU thread each (default: the CPU count); "
                         "the numbers do not depend on it"},
        "seeds": {"help": "seeds per model trained with --data-root (default %(default)s; the proxy's are fixed by "
                          "its configuration)"},
        "quick": {"help": "the small proxy configuration CI checks (written to table3_quick)"},
        "data_root": {"help": "folder holding part_A_final/ and/or UCF-QNRF_ECCV18/ (layouts in the 'needs data' "
                              "notes)"},
        "runs": {},
        "smoke": {},
    }, build_reports, _arguments, recipes=recipes, report_findings=report_findings, counted_rows=counted_rows)
main = REPRODUCER.main


if __name__ == "__main__":
    sys.exit(main())
