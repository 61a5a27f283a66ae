"""The rows Tables 4, 5 and B share (paper §4.3, A.6): proxy rows and findings, rows trained on the real
datasets, reference and counted rows, and their command line. Not a reproducer itself: ``reproduce.table4``,
``reproduce.table5`` and ``reproduce.tableB`` report with it; their recipes are ``reproduce.recipes.restoration``.

- Metrics: super-resolution on BT.601 Y with ``scale`` pixels shaved, denoising on 8-bit sRGB.
- Real data: ``train_real`` (resumable under ``--runs``; the last epoch's model is evaluated, no selection on
  the test set). Proxies: status "proxy", never compared with the paper.

In detail: docs/reproductions.md, section "reproduce.restoration".
"""
from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

import torch

from acda.data import DatasetLayoutError
from acda.data.layout import one_line
from acda.data.restoration import REALSR_LAYOUT
from acda.models import get_model
from acda.profile import count_flops, count_parameters
from acda.train import Restoration

from .engine import base, runners
from .engine.report import Result, missing
from .engine.stats import mean_std, seed_comparisons
from .recipes.restoration import RestorationProxy, RestorationReal

__all__ = ["METRICS", "MODEL_NOTE", "model_note", "proxy_results", "recipe_label", "input_scores", "reference_rows", "comparisons",
           "preview", "command_line", "run", "realsr_layout_note", "needs_data_rows", "train_real", "real_recipe",
           "trained_rows", "real_rows", "count_rows"]

METRICS = {"PSNR": ("val_psnr", "dB"), "SSIM": ("val_ssim", "")}
CONVENTION_NOTE = {
    "realsr": "as the RealSR evaluation (its Test/Test.m and Cal_PSNRSSIM.m): Y of MATLAB's rgb2ycbcr on 8-bit "
              "RGB, rounded to integers, HR and LR cropped to a multiple of 4, no border shave, Wang's SSIM "
              "(Gaussian 11×11, σ 1.5, K 0.01/0.03, L 255, valid positions)",
    "basicsr": "as BasicSR: Y of 8-bit RGB, unrounded, {shave} px shaved at each border, the same SSIM",
    "matlab": "as the common SIDD evaluation scripts (e.g. MPRNet's evaluate_SIDD.m): MATLAB's psnr and ssim of "
              "each 8-bit sRGB block as one H×W×3 volume (3-D Gaussian σ 1.5 over rows, columns and channels, "
              "replicate padding), averaged over blocks",
    "per_channel": "per channel: PSNR over the 8-bit sRGB block, SSIM per channel (Gaussian 11×11, σ 1.5, valid "
                   "positions) averaged over channels, then over blocks",
}
MODEL_NOTE = {
    "restoration_baseline": "the §4.3 trunk with standard k×k convolutions (acda.models.restoration)",
    "restoration_acda": "the §4.3 trunk with ACDA {k}×{k} layers, m = {m}, {s} scale(s), paper generator",
    "restoration_kpn": "our KPN: the §4.3 trunk with standard convolutions predicting an l×l kernel per pixel, "
                       "applied to the input image (one kernel for the three channels); [25]'s own network is "
                       "not ours",
}

def scored_settings(setting: str, task: Restoration) -> list[tuple[str, str, str]]:
    """(setting, metrics key suffix, how it is scored) for each convention ``task`` scores: the primary one in
    ``setting`` itself, a secondary one (``Restoration.secondary``) in a setting of its own."""
    if task.convention is None:
        return [(setting, "", "")]
    out = [(setting, "", f"scored {CONVENTION_NOTE[task.convention].format(shave=task.shave)}")]
    if task.secondary is not None:
        convention, shave = task.secondary
        out.append((f"{setting}, {convention} convention", f"_{convention}",
                    f"scored {CONVENTION_NOTE[convention].format(shave=shave)}"))
    return out


def input_scores(task: Restoration, dataset) -> dict[str, list[float]]:
    """Per-image scores ({val_* key: values}) of the degraded inputs themselves (bicubic / noisy reference),
    scored as the models are."""
    values = torch.cat([task.eval_values(x[None], y[None]) for x, y in (dataset[i] for i in range(len(dataset)))])
    return {f"val_{column}": values[:, i].tolist() for i, column in enumerate(task.eval_columns)}


def reference_rows(row: str, setting: str, scores: dict[str, list[float]], note: str,
                   status: str | None = None, task: Restoration | None = None) -> list[Result]:
    """Rows of a reference measured without training (bicubic / noisy input): the mean over test images, in
    each convention ``task`` scores (``scored_settings``)."""
    out = []
    for where, suffix, how in scored_settings(setting, task) if task is not None else [(setting, "", "")]:
        for metric, (key, unit) in METRICS.items():
            values = scores[key + suffix]
            out.append(Result(row, where, metric, sum(values) / len(values), "measured", status=status, unit=unit,
                              note=f"{note}; mean over {len(values)} test images" + (f"; {how}" if how else "")))
    return out


def model_note(slug: str, kwargs: dict) -> str:
    """What ``slug(**kwargs)`` is, in words (for ACDA: its kernel size, atoms and scales)."""
    k, m, s = kwargs.get("kernel_size", 7), kwargs.get("num_atoms", 6), kwargs.get("num_scales", 3)
    return MODEL_NOTE[slug].format(k=k, m=m, s=s)


def proxy_results(recipe: RestorationProxy, models: dict[str, tuple[str, dict]], setting: str, reference: str,
                  jobs: int = 1, device: str = "cpu", keep_state: tuple[str, ...] = (),
                  log=print) -> tuple[list[Result], dict[str, dict[str, list[float]]], dict, object]:
    """Seeded proxy rows of ``models`` (row → (registered model, kwargs)) trained with ``recipe``, and the
    degraded-input reference row named ``reference``; also the per-row samples {row: {metric: [per seed]}},
    the seed-0 state dicts of the rows in ``keep_state``, and the test set."""
    _, test_set = recipe.datasets()
    trained, states = runners.seed_runs(recipe, models, jobs=jobs, device=device, keep_state=keep_state,
                                        desc=f"proxy {setting}", log=log)
    runs = {row: {m: [x[key] for x in trained[row]] for m, (key, _) in METRICS.items()} for row in models}
    results = []
    for row, (slug, kwargs) in models.items():
        for metric, (_, unit) in METRICS.items():
            results.append(Result(row, setting, metric, None, "trained", status="proxy", unit=unit,
                                  samples=runs[row][metric],
                                  note=f"PROXY, not the paper's data, never compared with the paper: "
                                       f"{model_note(slug, kwargs)}, bottleneck width W = {kwargs.get('width', recipe.width)}, "
                                       f"{recipe.parameters(slug, **kwargs):,} parameters; recipe "
                                       f"{recipe_label(recipe)} (Recipes); last epoch's model, mean over seeds"))
    results += reference_rows(reference, setting, input_scores(recipe.task(), test_set),
                              "PROXY reference: the degraded input itself, scored as the models are", status="proxy")
    return results, runs, states, test_set


def recipe_label(recipe: RestorationProxy) -> str:
    """The label of a proxy recipe in a report's Recipes section."""
    return f"proxy ×{recipe.scale}" if recipe.problem == "sr" else "proxy"


def comparisons(blocks: dict[str, dict[str, dict[str, list[float]]]], reference: str, others: tuple[str, ...],
                input_psnr: dict[str, float] | None = None) -> list[str]:
    """One finding per metric and block (what → {row: {metric: [per seed]}}): each row of ``others`` against
    ``reference``, Welch over seeds, Holm-corrected over every test of the metric in ``blocks``; and, given the
    degraded input's PSNR of each block, how many seeds beat it."""
    out = []
    for metric, (_, unit) in METRICS.items():
        tests = [(reference, runs[reference][metric], row, runs[row][metric], metric)
                 for runs in blocks.values() for row in others if row in runs]
        sentences = iter(seed_comparisons(tests, higher_is_better=True, decimals=2 if metric == "PSNR" else 4,
                                          unit=f" {unit}" if unit else ""))
        for what, runs in blocks.items():
            out.append(f"{what}: " + " ".join(next(sentences) for row in others if row in runs))
    for what, psnr in (input_psnr or {}).items():
        runs = blocks[what]
        beat = {row: sum(v > psnr for v in r["PSNR"]) for row, r in runs.items()}
        out.append(f"{what}: PSNR above the degraded input's ({psnr:.2f} dB) on "
                   + ", ".join(f"{row} {n}/{len(runs[row]['PSNR'])}" for row, n in beat.items()) + " seeds.")
    return out


def preview(test_set, models: dict[str, tuple[str, dict]], states: dict[str, dict], recipe: RestorationProxy,
            path: str | Path,
            title: str, indices: tuple[int, ...] = (0, 1), crop: int = 48) -> None:
    """A PNG of side-by-side crops (input, each model of ``states`` at seed 0, ground truth) of test images."""
    nets = {}
    for row, state in states.items():
        slug, kwargs = models[row]
        net = recipe.build(slug, **kwargs)
        net.load_state_dict(state)
        nets[row] = net.eval()
    plt = base.pyplot()
    columns = ["input"] + list(nets) + ["ground truth"]
    indices = tuple(i for i in indices if i < len(test_set))
    fig, axes = plt.subplots(len(indices), len(columns), figsize=(2.2 * len(columns), 2.4 * len(indices)),
                             squeeze=False)
    for r, i in enumerate(indices):
        x, y = test_set[i]
        with torch.no_grad(), base.threads(1):
            images = [x] + [net(x[None])[0].clamp(0, 1) for net in nets.values()] + [y]
        h, w = y.shape[-2:]
        top, left = (h - min(crop, h)) // 2, (w - min(crop, w)) // 2
        for c, (name, image) in enumerate(zip(columns, images, strict=True)):
            ax = axes[r][c]
            ax.imshow(image[:, top:top + crop, left:left + crop].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    base.save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------

def command_line(doc: str, table: str, data_root_help: str, *, crop: int, what: str = "model") -> base.Parser:
    """The command line of ``reproduce.<table>`` (Tables 4, 5, B): the shared options, then the real-data
    training options; the reproducer adds its own to the result."""
    parser = base.parser(doc, table, {
        "device": {"help": "auto (default), cpu or cuda[:i] (training on --data-root only)"},
        "threads": {},
        "jobs": {"help": "proxy runs in this many worker processes, one CPU thread each (default: the CPU count); "
                         "the numbers do not depend on it"},
        "seeds": {"help": f"seeds per {what} trained with --data-root (default %(default)s)"},
        "quick": {"help": f"the small proxy configuration CI checks (written to {table}_quick)"},
        "data_root": {"help": data_root_help},
        "runs": {},
    })
    parser.add_argument("--epochs", type=base.positive_int, default=RestorationReal.epochs, help="training epochs (default %(default)s)")
    parser.add_argument("--batch-size", type=base.positive_int, default=RestorationReal.batch_size,
                        help="crops per batch (default %(default)s)")
    parser.add_argument("--crop-size", type=base.positive_int, default=crop, help="square training crop (default %(default)s)")
    parser.add_argument("--lr", type=base.positive_float, default=RestorationReal.lr,
                        help="Adam learning rate, constant (default %(default)s)")
    parser.add_argument("--channels", type=base.positive_int, default=None,
                        help="body channels C of the trained models (default: the model's, 256)")
    parser.add_argument("--width", type=base.positive_int, default=None,
                        help="bottleneck width W of the trained models (default: the model's, 64)")
    parser.add_argument("--amp", action="store_true", help="mixed precision")
    parser.add_argument("--num-workers", type=base.non_negative_int, default=4, help="DataLoader workers (default %(default)s)")
    parser.add_argument("--no-proxy", dest="proxy", action="store_false", help="skip the real-image proxy")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="no PNG of proxy crops")
    parser.set_defaults(proxy=True, plots=True)
    return parser


def run(parser: base.Parser, argv: list[str] | None, table: str, title: str, data_rows, counted_rows, proxy_rows) -> int:
    """Parse ``argv`` and write ``results/<table>[_quick]``: ``data_rows(args)`` → (rows, findings, device, recipes)
    on the real data (a layout error exits 2, naming the layout), ``counted_rows()`` → (rows, findings) without
    data, ``proxy_rows(args, name)`` → (rows, findings, recipes) unless ``--no-proxy``. Under ``torchrun`` only
    rank 0 writes."""
    args = parser.parse_args(argv)
    name = f"{table}_quick" if args.quick else table
    with base.threads(args.threads):
        try:
            results, data_findings, device, recipes = data_rows(args)
        except DatasetLayoutError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if not base.is_main_process():  # torchrun: only rank 0 writes the report
            return 0
        counted, findings = counted_rows()
        results, findings = results + counted, findings + data_findings
        if args.proxy:
            rows, proxy_findings, proxy_recipes = proxy_rows(args, name)
            results, findings, recipes = results + rows, findings + proxy_findings, {**recipes, **proxy_recipes}
    base.publish(table, results, args, name=name, title=title + (" — quick config" if args.quick else ""),
                 device=device, findings=findings, recipes=recipes)
    return 0 if not any(r.value is not None and math.isnan(r.value) for r in results) else 1


def real_recipe(args: argparse.Namespace, problem: str, scale: int = 1) -> RestorationReal:
    """The ``Restoration`` recipe of the command line for ``problem`` at ``scale``."""
    return RestorationReal.full().with_(
        problem=problem, scale=scale, epochs=args.epochs, batch_size=args.batch_size, crop_size=args.crop_size,
        lr=args.lr, channels=args.channels, width=args.width, amp=args.amp)


def train_real(slug: str, kwargs: dict, train_set, test_set, recipe: RestorationReal, args: argparse.Namespace,
               seed: int, device: str, where: str | Path) -> dict:
    """Train ``slug(**kwargs)`` on a real dataset with ``recipe`` (resumable in ``where``); the last epoch's
    metrics on the whole test images."""
    config = recipe.train_config(seed, device, num_workers=args.num_workers, progress=True)
    return runners.train_real(lambda: recipe.build(slug, **kwargs), train_set, test_set, config, where,
                              task=recipe.task())


def trained_rows(row: str, setting: str, runs: list[dict], recipe: str, n_test: int, slug: str,
                 kwargs: dict, task: Restoration) -> list[Result]:
    """PSNR/SSIM rows of one model trained on a real dataset, one sample per seed, in each convention ``task``
    scores (``scored_settings``)."""
    out = []
    for where, suffix, how in scored_settings(setting, task):
        for metric, (key, unit) in METRICS.items():
            values = [m[key + suffix] for m in runs]
            tol = 2 * mean_std(values)[1] if len(values) > 1 else None
            out.append(Result(row, where, metric, None, "trained", samples=values, tolerance=tol, unit=unit,
                              note=f"trained here: {model_note(slug, kwargs)}; {recipe}; last epoch's model on the "
                                   f"{n_test} test images, mean over seeds" + (f"; {how}" if how else "")
                                   + ("; tolerance = 2 × std over seeds" if tol else "")))
    return out


def realsr_layout_note(why: str = "") -> str:
    """The "needs data" note of a RealSR row: why, and the layout ``--data-root`` must have."""
    layout = one_line(REALSR_LAYOUT)
    return f"needs data{': ' + why if why else ''}. Pass --data-root DIR with {layout}"


def needs_data_rows(row: str, setting: str, why: str, method: str = "trained") -> list[Result]:
    """PSNR/SSIM rows of ``row`` that need the dataset; ``method`` is how they would be obtained ("measured" for
    the input reference rows, Bicubic and the noisy input)."""
    return missing([row], [setting], METRICS, "needs data", why, method=method)


def real_rows(models: dict[str, tuple[str, dict]], wanted: set[str], train_set, test_set, recipe: RestorationReal,
              setting: str, args: argparse.Namespace, device: str, runs_dir: str | Path,
              log=print) -> tuple[list[Result], dict[str, dict[str, list[float]]]]:
    """Rows of ``models`` on one real dataset: trained for each row in ``wanted`` (``args.seeds`` seeds,
    checkpoints in ``runs_dir/<model>/seed<k>``), "needs data" (not trained in this run) for the others;
    and the trained rows' samples {row: {metric: [per seed]}}, as ``proxy_results`` gives them."""
    results, runs = [], {}
    for row, (slug, kwargs) in models.items():
        tag = slug + "".join(f"_{k}{v}" for k, v in sorted(kwargs.items()))
        if row not in wanted:
            results += needs_data_rows(row, setting, f"not trained in this run (add it to --train: {tag})")
            continue
        runs[row] = []
        for seed in range(args.seeds):
            metrics = train_real(slug, kwargs, train_set, test_set, recipe, args, seed, device,
                                 runners.run_dir(runs_dir, tag, seed=seed))
            log(f"{setting} {row} seed {seed}: PSNR {metrics['val_psnr']:.2f}, SSIM {metrics['val_ssim']:.4f}")
            runs[row].append(metrics)
        results += trained_rows(row, setting, runs[row], "recipe real (Recipes)", len(test_set), slug, kwargs,
                                recipe.task())
    return results, {row: {m: [x[key] for x in v] for m, (key, _) in METRICS.items()} for row, v in runs.items()}


@functools.cache
def _counts(slug: str, kwargs: tuple, size: int) -> tuple[int, float]:
    model = get_model(slug, **dict(kwargs))
    return count_parameters(model), count_flops(model, torch.zeros(1, 3, size, size)).total * 1e6 / size ** 2


def count_rows(row: str, slug: str, kwargs: dict, setting: str, size: int = 64) -> list[Result]:
    """Params and GFLOPs per megapixel (one multiply-add = 1 FLOP) of ``slug(**kwargs)`` at its default widths:
    counted at a 3×``size``×``size`` input and scaled by 10⁶ / size², exact for these fully convolutional
    networks at any size divisible by 4 (every layer's output grows with the pixel count)."""
    params, flops = _counts(slug, tuple(sorted(kwargs.items())), size)
    note = f"{model_note(slug, kwargs)}, default widths (C 256, W 64), counted here"
    return [Result(row, setting, "Params", params / 1e6, "counted", unit="M", note=note),
            Result(row, setting, "GFLOPs/MP", flops / 1e9, "counted", unit="GFLOPs",
                   note=f"{note}; multiply-adds per megapixel of output (acda.profile.count_flops at a "
                        f"3×{size}×{size} input × 10⁶/{size}²)")]
