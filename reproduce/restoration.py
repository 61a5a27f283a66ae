"""What Tables 4, 5 and B share (paper §4.3, A.6): each table is a ``RestorationTable`` declaration (its
real-data blocks, reference row, counted and not-implemented rows, proxy plan) and ``reproducer`` turns one into
the ``Reproducer`` the one runner consumes. Recipes: ``reproduce.recipes.restoration``.

- Metrics: super-resolution on Y, denoising on 8-bit sRGB, each in the convention of the source of the
  published numbers (``CONVENTION_NOTE``).
- Real data: ``train_real`` (resumable under ``--runs``; the last epoch's model is evaluated, no selection on
  the test set). Proxies: status "proxy", never compared with the paper.
- Findings are a function of the rows (``findings``): ``python -m reproduce verify`` recomputes them.

In detail: docs/reproductions.md, section "reproduce.restoration".
"""
from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from acda.data.layout import one_line
from acda.data.restoration import REALSR_LAYOUT, SIDD_LAYOUT, realsr, sidd
from acda.models import get_model
from acda.profile import count_flops, count_parameters
from acda.train import Restoration

from .engine import base, runners
from .engine.report import Result, missing, samples_of, values_of
from .engine.reproducer import Report, Reproducer
from .engine.stats import mean_std, seed_comparisons
from .recipes.restoration import RestorationProxy, RestorationReal, budget_text, matched_budgets

__all__ = ["METRICS", "MODEL_NOTE", "RealBlock", "ProxyPlan", "RestorationTable", "model_note", "proxy_results",
           "recipe_label", "input_scores", "reference_rows", "comparisons", "sweep_comparisons", "findings",
           "report_findings", "counted_results",
           "preview", "build_reports", "reproducer", "layout_note", "needs_data_rows", "train_real", "real_recipe",
           "trained_rows", "real_rows", "count_rows"]

Model = tuple[str, dict]  # (registered model, kwargs)
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
                  log=print) -> tuple[list[Result], dict, object]:
    """Seeded proxy rows of ``models`` (row → (registered model, kwargs)) trained with ``recipe``, and the
    degraded-input reference row named ``reference``; also the seed-0 state dicts of the rows in
    ``keep_state``, and the test set."""
    _, test_set = recipe.datasets()
    trained, states = runners.seed_runs(recipe, models, jobs=jobs, device=device, keep_state=keep_state,
                                        desc=f"proxy {setting}", log=log)
    results = []
    for row, (slug, kwargs) in models.items():
        for metric, (key, unit) in METRICS.items():
            results.append(Result(row, setting, metric, None, "trained", status="proxy", unit=unit,
                                  samples=[x[key] for x in trained[row]],
                                  note=f"PROXY, not the paper's data, never compared with the paper: "
                                       f"{model_note(slug, kwargs)}, bottleneck width W = {kwargs.get('width', recipe.width)}, "
                                       f"{recipe.parameters(slug, **kwargs):,} parameters; recipe "
                                       f"{recipe_label(recipe)} (Recipes); last epoch's model, mean over seeds"))
    results += reference_rows(reference, setting, input_scores(recipe.task(), test_set),
                              "PROXY reference: the degraded input itself, scored as the models are", status="proxy")
    return results, states, test_set


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


def needs_data_rows(row: str, setting: str, why: str, method: str = "trained") -> list[Result]:
    """PSNR/SSIM rows of ``row`` that need the dataset; ``method`` is how they would be obtained ("measured" for
    the input reference rows, Bicubic and the noisy input)."""
    return missing([row], [setting], METRICS, "needs data", why, method=method)


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


# ---------------------------------------------------------------------------------------------
# Declarations and the runner
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RealBlock:
    """One block of a table on a real dataset: its setting, scale, release and rows (``--train`` name →
    (row, model))."""

    setting: str
    rows: dict[str, tuple[str, Model]]
    scale: int = 1
    release: str = ""


@dataclass(frozen=True)
class ProxyPlan:
    """A table's proxy, never compared with the paper. Templates: ``setting`` (fields ``scale``, ``quick``),
    ``block`` (the findings' name of one setting; ``scale``, ``channels``, ``width``), ``budget`` (the parameter
    finding; ``channels``, ``width``, ``budgets``), ``preview`` (a PNG title at the largest scale; ``scale``).

    ``compare``: the reference row and the rows Welch-tested against it, Holm-corrected per metric over the
    table; ``sweep``: one finding per metric naming the reference ``label`` (Table B) instead of one per block.
    ``matched``: widths chosen for matched parameter budgets (``recipes.restoration.matched_budgets``)."""

    models: dict[str, Model]
    setting: str
    block: str
    reference: str
    compare: tuple[str, tuple[str, ...]]
    budget: str
    matched: bool = True
    quick_rows: tuple[str, ...] | None = None
    sweep: bool = False
    label: str = ""
    preview: str | None = None
    preview_rows: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestorationTable:
    """What one of Tables 4, 5, B reports, for ``run``: the real-data ``blocks`` (with the degraded input's
    ``reference`` row measured on the test set, listed without data when ``reference_published``), the rows
    compared on real data (``real_compare``), ``counted`` models (Params, GFLOPs/MP in ``count_setting``),
    ``not_implemented`` rows (row → (settings, why)), ``notes`` (findings that need no run), the ``proxy`` and its
    ``recipes(quick, **overrides)``; ``extra()`` → (rows, findings) is a table's own counted analysis."""

    name: str
    title: str
    doc: str
    problem: str
    crop: int
    data_root_help: str
    blocks: tuple[RealBlock, ...]
    proxy: ProxyPlan
    recipes: Callable[..., dict[str, RestorationProxy]]
    reference: str | None = None
    reference_published: bool = False
    real_compare: tuple[str, tuple[str, ...]] | None = None
    counted: dict[str, Model] = field(default_factory=dict)
    count_setting: str = ""
    not_implemented: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    extra: Callable[[], tuple[list[Result], list[str]]] | None = None
    releases: dict[str, str] = field(default_factory=dict)
    default_release: str = ""
    what: str = "model"

    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(sorted({b.scale for b in self.blocks}))

    @property
    def train_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for b in self.blocks for k in b.rows))

    @property
    def short(self) -> str:
        return self.title.split(":")[0]


def layout_note(problem: str, why: str = "") -> str:
    """The "needs data" note of a real-data row: why, and the layout ``--data-root`` must have."""
    layout = one_line(REALSR_LAYOUT if problem == "sr" else SIDD_LAYOUT)
    return f"needs data{': ' + why if why else ''}. Pass --data-root DIR with {layout}"


def _options(table: RestorationTable) -> dict[str, dict]:
    return {
        "device": {"help": "auto (default), cpu or cuda[:i] (training on --data-root only)"},
        "threads": {},
        "jobs": {"help": "proxy runs in this many worker processes, one CPU thread each (default: the CPU count); "
                         "the numbers do not depend on it"},
        "seeds": {"help": f"seeds per {table.what} trained with --data-root (default %(default)s)"},
        "quick": {"help": f"the small proxy configuration CI checks (written to {table.name}_quick)"},
        "data_root": {"help": table.data_root_help},
        "runs": {},
        "smoke": {},
    }


def _arguments(table: RestorationTable, parser: argparse.ArgumentParser) -> None:
    """The real-data training options, and ``--scale``/``--release`` where the table has several, ``--train``."""
    base.recipe_options(parser, RestorationReal.full().with_(crop_size=table.crop), {
        "epochs": "training epochs", "batch_size": "crops per batch", "crop_size": "square training crop",
        "lr": "Adam learning rate, constant"})
    parser.add_argument("--channels", type=base.positive_int, default=None,
                        help="body channels C of the trained models (default: the model's, 256)")
    parser.add_argument("--width", type=base.positive_int, default=None,
                        help="bottleneck width W of the trained models (default: the model's, 64)")
    parser.add_argument("--amp", action="store_true", help="mixed precision")
    parser.add_argument("--num-workers", type=base.non_negative_int, default=4,
                        help="DataLoader workers (default %(default)s)")
    parser.add_argument("--no-proxy", dest="proxy", action="store_false", help="skip the real-image proxy")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="no PNG of proxy crops")
    if len(table.scales) > 1:
        parser.add_argument("--scale", type=int, nargs="+", choices=table.scales, default=list(table.scales),
                            help="scales to train with --data-root (default: %(default)s)")
    if table.releases:
        parser.add_argument("--release", choices=tuple(table.releases), default=table.default_release,
                            help=f"which block of {table.short} the --data-root data fills (default: %(default)s)")
    parser.add_argument("--train", nargs="+", choices=table.train_names, default=list(table.train_names),
                        metavar="NAME", help=f"{table.what}s to train with --data-root (default: all): "
                                             + ", ".join(map(repr, table.train_names)))
    parser.set_defaults(proxy=True, plots=True)


def build_reports(table: RestorationTable, args: argparse.Namespace, parser: argparse.ArgumentParser,
                  proxy_overrides: dict | None = None) -> list[Report]:
    """``results/<table>[_quick]``: the real-data rows, the table's own counted rows, not-implemented and counted
    rows, the proxy's rows unless ``--no-proxy`` (``proxy_overrides``, tests: fields of its recipes), and the
    findings."""
    name = f"{table.name}_quick" if args.quick else table.name
    results, device, recipes = real_results(table, args)
    if not base.is_main_process():
        return []
    extra, notes = table.extra() if table.extra is not None else ([], [])
    results += extra + counted_results(table)
    used = table.recipes(args.quick, **(proxy_overrides or {})) if args.proxy else {}
    figures = []
    if used:
        rows, figures = proxy_results_of(table, args, used, name)
        results += rows
    found = [*notes, *table.notes, *findings(table, results, used, args.quick)]
    return [Report(name, table.title + (" — quick config" if args.quick else ""), results, found,
                   {**recipes, **used}, device, figures)]


def reproducer(table: RestorationTable, items: Sequence[tuple[str, str]]) -> Reproducer:
    """The declaration ``reproduce.<table>`` runs, for the paper ``items`` it covers."""
    return Reproducer(table.name, items, table.doc, _options(table), functools.partial(build_reports, table),
                      functools.partial(_arguments, table), recipes=table.recipes,
                      report_findings=functools.partial(report_findings, table),
                      counted_rows=functools.partial(counted_results, table, extra=True))


def counted_results(table: RestorationTable, extra: bool = False) -> list[Result]:
    """The rows obtained without data: (with ``extra``, the table's own analysis first) not-implemented rows, then
    Params and GFLOPs/MP of ``table.counted``."""
    out = table.extra()[0] if extra and table.extra is not None else []
    out += [r for row, (settings, why) in table.not_implemented.items()
           for r in missing([row], settings, METRICS, "not implemented", f"not implemented: {why}.")]
    return out + [r for row, (slug, kwargs) in table.counted.items()
                  for r in count_rows(row, slug, kwargs, table.count_setting)]


def _load(problem: str, root: str, split: str, scale: int, crop_size: int | None = None):
    if problem == "sr":
        return realsr(root, split, scale, crop_size=crop_size) if crop_size else realsr(root, split, scale)
    return sidd(root, split, crop_size=crop_size) if crop_size else sidd(root, split)


def _reference_note(problem: str, test_set) -> str:
    if problem == "denoise":
        return "measured here: the noisy validation blocks against ground truth"
    lr = ("the stored LR images (versions 1/2: at the HR size)" if test_set.upsample == 1 else
          "the LR images (version 3: HR/s) upscaled with MATLAB's bicubic (acda.data.resize)")
    return f"measured here: {lr} against HR"


def real_results(table: RestorationTable, args: argparse.Namespace,
                 log: Callable[[str], None] = print) -> tuple[list[Result], str, dict]:
    """The real-data rows of every block (trained for the blocks a ``--data-root`` run names, "needs data"
    elsewhere), the device and the recipes used."""
    results, device, recipes = [], "cpu", {}
    if args.data_root is not None:
        device, log = base.training_context(args.device, log)
    release, scales = getattr(args, "release", ""), getattr(args, "scale", table.scales)
    trained = [b for b in table.blocks if b.release == release and b.scale in scales]
    for block in table.blocks:
        if args.data_root is None or block not in trained:
            why = "" if args.data_root is None else "this run trains " + ", ".join(b.setting for b in trained)
            note = layout_note(table.problem, why) + (f" (--release names {table.short}'s block)"
                                                      if table.releases else "")
            if table.reference is not None and table.reference_published:
                results += needs_data_rows(table.reference, block.setting, note, method="measured")
            results += [r for row, _ in block.rows.values() for r in needs_data_rows(row, block.setting, note)]
            continue
        recipe = real_recipe(args, table.problem, block.scale)
        recipes["real" + (f" ×{block.scale}" if len(table.scales) > 1 else "")] = recipe
        train_set = runners.smoke_subset(_load(table.problem, args.data_root, "train", block.scale, args.crop_size),
                                         args.smoke)
        full_test = _load(table.problem, args.data_root, "val" if table.problem == "denoise" else "test", block.scale)
        test_set = runners.smoke_subset(full_test, args.smoke)
        if table.reference is not None:
            results += reference_rows(table.reference, block.setting, input_scores(recipe.task(), test_set),
                                      _reference_note(table.problem, full_test), task=recipe.task())
        parts = ([block.release] if table.releases else []) + ([f"x{block.scale}"] if len(table.scales) > 1 else [])
        results += real_rows(block, set(args.train), train_set, test_set, recipe, args, device,
                             Path(args.runs, *parts), log)
    return results, device, recipes


def real_rows(block: RealBlock, wanted: set[str], train_set, test_set, recipe: RestorationReal,
              args: argparse.Namespace, device: str, runs_dir: str | Path,
              log: Callable[[str], None] = print) -> list[Result]:
    """Rows of ``block`` on one real dataset: trained for each ``--train`` name in ``wanted`` (``args.seeds``
    seeds, checkpoints in ``runs_dir/<model>/seed<k>``), "needs data" (not trained in this run) for the others."""
    results = []
    for key, (row, (slug, kwargs)) in block.rows.items():
        if key not in wanted:
            results += needs_data_rows(row, block.setting, f"not trained in this run (add {key!r} to --train)")
            continue
        tag = slug + "".join(f"_{k}{v}" for k, v in sorted(kwargs.items()))
        runs = []
        for seed in range(args.seeds):
            metrics = train_real(slug, kwargs, train_set, test_set, recipe, args, seed, device,
                                 runners.run_dir(runs_dir, tag, seed=seed))
            log(f"{block.setting} {row} seed {seed}: PSNR {metrics['val_psnr']:.2f}, SSIM {metrics['val_ssim']:.4f}")
            runs.append(metrics)
        results += trained_rows(row, block.setting, runs, "recipe real (Recipes)", len(test_set), slug, kwargs,
                                recipe.task())
    return results


def proxy_models(table: RestorationTable, recipe: RestorationProxy, quick: bool) -> dict[str, Model]:
    """The proxy's models (the quick rows under ``quick``), at matched budgets where the plan says so."""
    plan = table.proxy
    models = plan.models if not quick or plan.quick_rows is None else {r: plan.models[r] for r in plan.quick_rows}
    return matched_budgets(models, recipe) if plan.matched else models


def _proxy_setting(plan: ProxyPlan, recipe: RestorationProxy, quick: bool) -> str:
    return plan.setting.format(scale=recipe.scale, quick=" (quick)" if quick else "")


def proxy_results_of(table: RestorationTable, args: argparse.Namespace, used: dict[str, RestorationProxy],
                     name: str, log: Callable[[str], None] = print) -> tuple[list[Result], list[Callable[[Path], None]]]:
    """The proxy's seeded rows for each recipe of ``used`` and (unless ``--no-plots``) the figure of seed-0 crops
    at the largest scale, ``<out>/<name>_proxy.png``."""
    plan, results, figures = table.proxy, [], []
    models = proxy_models(table, next(iter(used.values())), args.quick)
    largest = max(r.scale for r in used.values())
    for recipe in used.values():
        show = plan.preview is not None and args.plots and recipe.scale == largest
        rows, states, test_set = proxy_results(recipe, models, _proxy_setting(plan, recipe, args.quick),
                                                  plan.reference, jobs=args.jobs,
                                                  keep_state=plan.preview_rows if show else (), log=log)
        results += rows
        if show:
            figures.append(lambda out, test_set=test_set, states=states, recipe=recipe: preview(
                test_set, models, states, recipe, Path(out) / f"{name}_proxy.png",
                plan.preview.format(scale=recipe.scale)))
    return results, figures


def findings(table: RestorationTable, rows: Iterable[Result] | pd.DataFrame, used: dict[str, RestorationProxy],
             quick: bool) -> list[str]:
    """The findings computed from the rows (``Result`` objects or a report read back): real-data comparisons of
    each block trained with several seeds, then the proxy's parameter budgets and comparisons (``used``: its
    recipes, none without a proxy)."""
    samples, values = samples_of(rows), values_of(rows)

    def runs(setting: str, names: Iterable[str]) -> dict[str, dict[str, list[float]]]:
        return {row: {m: samples[(row, setting, m)] for m in METRICS} for row in names
                if all((row, setting, m) in samples for m in METRICS)}

    out = []
    if table.real_compare is not None:
        reference, others = table.real_compare
        for block in table.blocks:
            trained = runs(block.setting, (row for row, _ in block.rows.values()))
            present = tuple(o for o in others if o in trained)
            if reference in trained and present and len(trained[reference]["PSNR"]) > 1:
                out += comparisons({block.setting: trained}, reference, present)
    if not used:
        return out
    plan, first = table.proxy, next(iter(used.values()))
    models = proxy_models(table, first, quick)
    budget = plan.budget.format(channels=first.channels, width=first.width, budgets=budget_text(models, first))
    blocks, inputs = {}, {}
    for recipe in used.values():
        setting = _proxy_setting(plan, recipe, quick)
        what = plan.block.format(scale=recipe.scale, channels=recipe.channels, width=recipe.width)
        blocks[what] = runs(setting, models)
        inputs[what] = values[(plan.reference, setting, "PSNR")]
    reference, others = plan.compare
    if plan.sweep:
        return out + sweep_comparisons(blocks, reference, plan.label) + [budget]
    return out + [budget] + comparisons(blocks, reference, others, input_psnr=inputs)


def report_findings(table: RestorationTable, rows: pd.DataFrame, quick: bool) -> list[str]:
    """Every finding of a committed report, recomputed from its rows (for ``python -m reproduce verify``): the
    table's own analysis, its notes and ``findings`` with the current recipes (the proxy's if it has rows)."""
    used = table.recipes(quick) if (rows["status"] == "proxy").any() else {}
    notes = table.extra()[1] if table.extra is not None else []
    return [*notes, *table.notes, *findings(table, rows, used, quick)]


def sweep_comparisons(blocks: dict[str, dict[str, dict[str, list[float]]]], reference: str,
                      label: str) -> list[str]:
    """One finding per metric and block: every other row against ``reference`` (named ``label``), Welch over
    seeds, Holm-corrected over the block's tests of that metric."""
    out = []
    for what, runs in blocks.items():
        for metric in METRICS:
            parts = seed_comparisons([(label, runs[reference][metric], row, runs[row][metric], metric)
                                      for row in runs if row != reference], higher_is_better=True,
                                     decimals=2 if metric == "PSNR" else 4)
            out.append(f"{what}: " + " ".join(parts))
    return out
