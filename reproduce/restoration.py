"""The restoration recipe shared by Tables 4, 5 and B (paper §4.3, A.6): the models as trained, the
metrics (``Restoration`` task spaces), training on the real datasets, and the real-image proxies.
Not a reproducer itself: ``reproduce.table4``, ``reproduce.table5`` and ``reproduce.tableB`` report on it.

- Models (``acda.models.restoration``): the §4.3 trunk with ACDA, with standard convolutions, and the
  KPN peer; each maps the degraded image at the clean image's size to the clean image.
- Metrics: super-resolution on BT.601 Y with ``scale`` pixels shaved, denoising on 8-bit sRGB; loss:
  pixel-wise MSE.
- Real data: ``train_real`` (``acda.train.fit``, resumable under ``--runs``; the last epoch's model is
  evaluated, no selection on the test set).
- Proxies (``PROXY``; ``acda.data.restoration_proxy``): scikit-image photographs with synthetic
  spatially varying degradations, reduced widths, several seeds; status "proxy", never compared with
  the paper.

In detail: docs/reproductions.md, section "reproduce.restoration".
"""
from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

import torch
from torch import nn

from acda.data import DatasetLayoutError
from acda.data.restoration import REALSR_LAYOUT
from acda.data.restoration_proxy import restoration_proxy
from acda.models import get_model
from acda.profile import count_flops, count_parameters
from acda.train import Restoration, TrainConfig, fit

from . import base
from .report import Result
from .stats import mean_std, seed_comparison

__all__ = ["PROXY", "METRICS", "MODEL_NOTE", "task_for", "build", "proxy_config", "proxy_datasets",
           "proxy_train_one", "proxy_recipe", "proxy_results", "input_scores", "reference_rows", "comparisons",
           "preview", "command_line", "run", "realsr_layout_note", "needs_data_rows",
           "train_real", "real_recipe", "trained_rows", "real_rows", "count_rows", "matched_budgets", "budget_text"]

METRICS = {"PSNR": ("val_psnr", "dB"), "SSIM": ("val_ssim", "")}
MODEL_NOTE = {
    "restoration_baseline": "the §4.3 trunk with standard k×k convolutions (acda.models.restoration)",
    "restoration_acda": "the §4.3 trunk with ACDA 7×7 layers, m = 6, 3 scales, paper generator",
    "restoration_kpn": "our KPN: the §4.3 trunk with standard convolutions predicting an l×l kernel per pixel, "
                       "applied to the input image (one kernel for the three channels); [25]'s own network is "
                       "not ours",
}

# full: the default proxies (minutes on 2 cores); quick: CI's (seconds). Sizes are multiples of 2, 3 and 4.
PROXY = {
    "full": {"crop": 48, "train": 384, "test": 24, "test_size": 96, "epochs": 8, "seeds": 5, "channels": 64,
             "width": 16, "batch_size": 16, "lr": 2e-3, "weight_decay": 0.0, "schedule": "cosine",
             "warmup_epochs": 1.0, "grad_clip": 1.0},
    "quick": {"crop": 24, "train": 128, "test": 8, "test_size": 36, "epochs": 4, "seeds": 5, "channels": 64,
              "width": 8, "batch_size": 8, "lr": 4e-3, "weight_decay": 0.0, "schedule": "cosine",
              "warmup_epochs": 1.0, "grad_clip": 1.0},
}


def task_for(task: str, scale: int = 1) -> Restoration:
    """The trainer task of ``task`` ("sr" or "denoise"): MSE loss; SR scored on Y with ``scale`` shaved,
    denoising on 8-bit sRGB."""
    if task == "sr":
        return Restoration(criterion="mse", space="y", shave=scale)
    if task == "denoise":
        return Restoration(criterion="mse", space="rgb8")
    raise ValueError(f"task must be 'sr' or 'denoise', got {task!r}")


def proxy_config(quick: bool, **overrides) -> dict:
    """A copy of ``PROXY["quick"]`` or ``PROXY["full"]`` with ``overrides``."""
    return base.preset(PROXY, quick, **overrides)


_DATA: dict[str, tuple] = {}  # proxy datasets of this process, by configuration


def proxy_datasets(task: str, scale: int, cfg: dict):
    """(train, test) proxy datasets of ``task`` at ``scale`` (1 for denoising), cached per process."""
    key = repr((task, scale, cfg["crop"], cfg["train"], cfg["test"], cfg["test_size"]))
    if key not in _DATA:
        kwargs = {"scale": scale} if task == "sr" else {}
        _DATA[key] = (restoration_proxy(task, "train", cfg["train"], cfg["crop"], seed=0, **kwargs),
                      restoration_proxy(task, "test", cfg["test"], cfg["test_size"], seed=0, **kwargs))
    return _DATA[key]


def build(slug: str, cfg: dict, **kwargs) -> nn.Module:
    """The registered restoration model ``slug`` at the widths of ``cfg`` (``channels``, ``width``; ``kwargs``
    may set another ``width``)."""
    return get_model(slug, **{"channels": cfg["channels"], "width": cfg["width"], **kwargs})


def _count(slug: str, cfg: dict, **kwargs) -> int:
    with torch.device("meta"):  # no memory, no initialisation: counting only
        return count_parameters(build(slug, cfg, **kwargs))


def matched_budgets(models: dict[str, tuple[str, dict]], cfg: dict) -> dict[str, tuple[str, dict]]:
    """``models`` with the bottleneck width W of every non-ACDA model set so that its parameter count is the
    nearest to the ACDA model's at ``cfg``'s width (Baseline vs ACDA at matched parameter budgets): at
    reduced widths ACDA's atom generators (64 hidden channels, A.3) outweigh the k×k convolutions they
    replace, so the same W would give the baseline far fewer parameters."""
    target = _count("restoration_acda", cfg)
    out = {}
    for row, (slug, kwargs) in models.items():
        if slug != "restoration_acda" and "width" not in kwargs:
            width = min(range(1, 8 * cfg["width"] + 1), key=lambda w, s=slug, k=kwargs: (
                abs(_count(s, cfg, width=w, **k) - target), w))
            kwargs = {**kwargs, "width": width}
        out[row] = (slug, kwargs)
    return out


def budget_text(models: dict[str, tuple[str, dict]], cfg: dict) -> str:
    """"row W = …: n parameters" for each model, as trained."""
    return ", ".join(f"{row} (W = {kwargs.get('width', cfg['width'])}) {_count(slug, cfg, **kwargs):,}"
                     for row, (slug, kwargs) in models.items())


def _proxy_train_config(cfg: dict, seed: int, device: str) -> TrainConfig:
    return TrainConfig(epochs=cfg["epochs"], optimizer="adam", lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                       schedule=cfg["schedule"], warmup_epochs=cfg["warmup_epochs"], grad_clip=cfg["grad_clip"],
                       batch_size=cfg["batch_size"], drop_last=True, eval_batch_size=8, seed=seed, device=device,
                       progress=False)


def proxy_train_one(task: str, scale: int, slug: str, kwargs: dict, seed: int, cfg: dict, device: str = "cpu",
                    return_state: bool = False):
    """Train ``slug(**kwargs)`` on the ``task`` proxy with ``seed``; the last epoch's metrics (and, with
    ``return_state``, the model's state dict on the CPU). One CPU thread, so the numbers do not depend on
    the number of jobs."""
    train_set, test_set = proxy_datasets(task, scale, cfg)
    with base.threads(1):
        torch.manual_seed(seed)
        model = build(slug, cfg, **kwargs)
        metrics = fit(model, train_set, test_set, _proxy_train_config(cfg, seed, device), task=task_for(task, scale))
    if not return_state:
        return metrics
    return metrics, {k: v.detach().cpu() for k, v in model.state_dict().items()}


def proxy_recipe(cfg: dict) -> str:
    return (f"Adam lr {cfg['lr']:g} ({cfg['schedule']} after {cfg['warmup_epochs']:g} warmup epoch(s), gradient norm "
            f"clipped at {cfg['grad_clip']:g}), weight decay {cfg['weight_decay']:g}, batches of {cfg['batch_size']} "
            f"{cfg['crop']}×{cfg['crop']} patches + flips/transposes, {cfg['epochs']} epochs over {cfg['train']} "
            f"patches, pixel-wise MSE, C = {cfg['channels']} body channels, from scratch; last epoch's model on {cfg['test']} held-out {cfg['test_size']}×{cfg['test_size']} test "
            "patches")


def input_scores(task: Restoration, dataset) -> dict[str, list[float]]:
    """Per-image PSNR/SSIM of the degraded inputs themselves (bicubic / noisy reference), scored as the
    models are."""
    values = torch.cat([task.eval_values(x[None], y[None]) for x, y in (dataset[i] for i in range(len(dataset)))])
    return {"PSNR": values[:, 0].tolist(), "SSIM": values[:, 1].tolist()}


def reference_rows(row: str, setting: str, scores: dict[str, list[float]], note: str,
                   status: str | None = None) -> list[Result]:
    """Rows of a reference measured without training (bicubic / noisy input): the mean over test images."""
    out = []
    for metric, (_, unit) in METRICS.items():
        values = scores[metric]
        out.append(Result(row, setting, metric, sum(values) / len(values), "measured", status=status, unit=unit,
                          note=f"{note}; mean over {len(values)} test images"))
    return out


def proxy_results(task: str, scale: int, models: dict[str, tuple[str, dict]], cfg: dict, setting: str,
                  reference: str, jobs: int = 1, device: str = "cpu", keep_state: tuple[str, ...] = (),
                  log=print) -> tuple[list[Result], dict[str, dict[str, list[float]]], dict, object]:
    """Seeded proxy rows of ``models`` (row → (registered model, kwargs)) and the degraded-input reference
    row named ``reference``; also the per-row samples {row: {metric: [per seed]}}, the seed-0 state dicts of
    the rows in ``keep_state``, and the test set."""
    train_set, test_set = proxy_datasets(task, scale, cfg)
    widths = {row: kwargs.get("width", cfg["width"]) for row, (_, kwargs) in models.items()}
    counts = {row: _count(slug, cfg, **kwargs) for row, (slug, kwargs) in models.items()}
    jobs_list = [(task, scale, slug, kwargs, seed, cfg, device, seed == 0 and row in keep_state)
                 for row, (slug, kwargs) in models.items() for seed in range(cfg["seeds"])]
    done = base.run_jobs(proxy_train_one, jobs_list, jobs if device == "cpu" else 1, desc=f"proxy {setting}")
    runs: dict[str, dict[str, list[float]]] = {row: {m: [] for m in METRICS} for row in models}
    states = {}
    rows_of = [row for row in models for _ in range(cfg["seeds"])]
    for row, job, out in zip(rows_of, jobs_list, done, strict=True):
        metrics, state = out if job[-1] else (out, None)
        if state is not None:
            states[row] = state
        for metric, (key, _) in METRICS.items():
            runs[row][metric].append(metrics[key])
        log(f"{setting} {row} seed {job[4]}: PSNR {metrics['val_psnr']:.2f}, SSIM {metrics['val_ssim']:.4f}")
    recipe = proxy_recipe(cfg)
    results = []
    for row, (slug, _) in models.items():
        for metric, (_, unit) in METRICS.items():
            results.append(Result(row, setting, metric, None, "trained", status="proxy", unit=unit,
                                  samples=runs[row][metric],
                                  note=f"PROXY, not the paper's data, never compared with the paper: "
                                       f"{MODEL_NOTE[slug]}, bottleneck width W = {widths[row]}, "
                                       f"{counts[row]:,} parameters; {recipe}; mean over seeds"))
    results += reference_rows(reference, setting, input_scores(task_for(task, scale), test_set),
                              "PROXY reference: the degraded input itself, scored as the models are", status="proxy")
    return results, runs, states, test_set


def comparisons(runs: dict[str, dict[str, list[float]]], reference: str, others: tuple[str, ...], what: str,
                input_psnr: float | None = None) -> list[str]:
    """One finding per metric: each row of ``others`` against ``reference`` (Welch over seeds)."""
    out = []
    for metric, (_, unit) in METRICS.items():
        decimals = 2 if metric == "PSNR" else 4
        parts = [seed_comparison(reference, runs[reference][metric], row, runs[row][metric], metric,
                                 higher_is_better=True, decimals=decimals, unit=f" {unit}" if unit else "")
                 for row in others if row in runs]
        out.append(f"{what}: " + " ".join(parts))
    if input_psnr is not None:
        beat = {row: sum(v > input_psnr for v in r["PSNR"]) for row, r in runs.items()}
        out.append(f"{what}: PSNR above the degraded input's ({input_psnr:.2f} dB) on "
                   + ", ".join(f"{row} {n}/{len(runs[row]['PSNR'])}" for row, n in beat.items()) + " seeds.")
    return out


def preview(test_set, models: dict[str, tuple[str, dict]], states: dict[str, dict], cfg: dict, path: str | Path,
            title: str, indices: tuple[int, ...] = (0, 1), crop: int = 48) -> None:
    """A PNG of side-by-side crops (input, each model of ``states`` at seed 0, ground truth) of test images."""
    nets = {}
    for row, state in states.items():
        slug, kwargs = models[row]
        net = build(slug, cfg, **kwargs)
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
    })
    parser.add_argument("--epochs", type=int, default=1000, help="training epochs (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="crops per batch (default %(default)s)")
    parser.add_argument("--crop-size", type=int, default=crop, help="square training crop (default %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate, constant (default %(default)s)")
    parser.add_argument("--channels", type=int, default=None,
                        help="body channels C of the trained models (default: the model's, 256)")
    parser.add_argument("--width", type=int, default=None,
                        help="bottleneck width W of the trained models (default: the model's, 64)")
    parser.add_argument("--amp", action="store_true", help="mixed precision")
    parser.add_argument("--num-workers", type=int, default=4, help="DataLoader workers (default %(default)s)")
    parser.add_argument("--runs", default=f"checkpoints/{table}", help="checkpoints (resumable; default %(default)s)")
    parser.add_argument("--no-proxy", dest="proxy", action="store_false", help="skip the real-image proxy")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="no PNG of proxy crops")
    parser.set_defaults(proxy=True, plots=True)
    return parser


def run(parser: base.Parser, argv: list[str] | None, table: str, title: str, data_rows, counted_rows, proxy_rows) -> int:
    """Parse ``argv`` and write ``results/<table>[_quick]``: ``data_rows(args)`` → (rows, findings, device) on the
    real data (a layout error exits 2, naming the layout), ``counted_rows()`` → (rows, findings) without data,
    ``proxy_rows(args, name)`` → (rows, findings) unless ``--no-proxy``. Under ``torchrun`` only rank 0 writes."""
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "crop_size", "channels", "width"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not args.lr > 0 or args.num_workers < 0:
        parser.error("--lr must be positive and --num-workers non-negative")
    name = f"{table}_quick" if args.quick else table
    with base.threads(args.threads):
        try:
            results, data_findings, device = data_rows(args)
        except DatasetLayoutError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if not base.is_main_process():  # torchrun: only rank 0 writes the report
            return 0
        counted, findings = counted_rows()
        results, findings = results + counted, findings + data_findings
        if args.proxy:
            rows, proxy_findings = proxy_rows(args, name)
            results, findings = results + rows, findings + proxy_findings
    base.publish(table, results, args, name=name, title=title + (" — quick config" if args.quick else ""),
                 device=device, findings=findings)
    return 0 if not any(r.value is not None and math.isnan(r.value) for r in results) else 1


def _widths(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in ("channels", "width") if getattr(args, k) is not None}


def real_recipe(args: argparse.Namespace) -> str:
    widths = _widths(args)
    return (f"Adam lr {args.lr:g} (constant), batches of {args.batch_size} random {args.crop_size}×{args.crop_size} "
            f"crops + flips, {args.epochs} epochs, pixel-wise MSE"
            + (f", {', '.join(f'{k} {v}' for k, v in widths.items())}" if widths else ", default widths (C 256, W 64)"))


def train_real(slug: str, kwargs: dict, train_set, test_set, task: Restoration, args: argparse.Namespace, seed: int,
               device: str, run_dir: str | Path) -> dict:
    """Train ``slug(**kwargs)`` on a real dataset with ``acda.train.fit`` (resumable in ``run_dir``); the last
    epoch's metrics on the whole test images."""
    config = TrainConfig(epochs=args.epochs, optimizer="adam", lr=args.lr, weight_decay=0.0, schedule="constant",
                         batch_size=args.batch_size, drop_last=True, eval_batch_size=1, num_workers=args.num_workers,
                         seed=seed, amp=args.amp, device=device, out_dir=str(run_dir), resume=True)
    torch.manual_seed(seed)
    model = get_model(slug, **_widths(args), **kwargs)
    return fit(model, train_set, test_set, config, task=task)


def trained_rows(row: str, setting: str, runs: list[dict], recipe: str, n_test: int, slug: str) -> list[Result]:
    """PSNR/SSIM rows of one model trained on a real dataset, one sample per seed."""
    out = []
    for metric, (key, unit) in METRICS.items():
        values = [m[key] for m in runs]
        tol = 2 * mean_std(values)[1] if len(values) > 1 else None
        out.append(Result(row, setting, metric, None, "trained", samples=values, tolerance=tol, unit=unit,
                          note=f"trained here: {MODEL_NOTE[slug]}; {recipe}; last epoch's model on the {n_test} test "
                               "images, mean over seeds" + ("; tolerance = 2 × std over seeds" if tol else "")))
    return out


def realsr_layout_note(why: str = "") -> str:
    """The "needs data" note of a RealSR row: why, and the layout ``--data-root`` must have."""
    layout = "; ".join(" ".join(line.split()) for line in REALSR_LAYOUT.splitlines())
    return f"needs data{': ' + why if why else ''}. Pass --data-root DIR with {layout}"


def needs_data_rows(row: str, setting: str, why: str, method: str = "trained") -> list[Result]:
    """PSNR/SSIM rows of ``row`` that need the dataset; ``method`` is how they would be obtained ("measured" for
    the input reference rows, Bicubic and the noisy input)."""
    return [Result(row, setting, metric, None, method, status="needs data", note=why) for metric in METRICS]


def real_rows(models: dict[str, tuple[str, dict]], wanted: set[str], train_set, test_set, task: Restoration,
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
            metrics = train_real(slug, kwargs, train_set, test_set, task, args, seed, device,
                                 Path(runs_dir) / tag / f"seed{seed}")
            log(f"{setting} {row} seed {seed}: PSNR {metrics['val_psnr']:.2f}, SSIM {metrics['val_ssim']:.4f}")
            runs[row].append(metrics)
        results += trained_rows(row, setting, runs[row], real_recipe(args), len(test_set), slug)
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
    note = f"{MODEL_NOTE[slug]}, default widths (C 256, W 64), counted here"
    return [Result(row, setting, "Params", params / 1e6, "counted", unit="M", note=note),
            Result(row, setting, "GFLOPs/MP", flops / 1e9, "counted", unit="GFLOPs",
                   note=f"{note}; multiply-adds per megapixel of output (acda.profile.count_flops at a "
                        f"3×{size}×{size} input × 10⁶/{size}²)")]
