"""Figure 7 (paper §3.3, §4.2): which basis scale ACDA's per-pixel coefficients α weigh, as heatmaps.

The paper states (Fig. 7 caption) that ACDA adopts the 7×7 bases on large (near) objects and the 3×3
bases on small (far, dense) ones. Without a trained crowd model the default run is two PROXY
measurements over seeds: Figure 6's toy map with Figure 6's ACDA layer (rows ``ACDA / all seeds``) and
Table 3's crowd proxy with its Ad-ResNet-s (rows ``Ad-ResNet-s / crowd proxy``). Per pixel, each scale's
share of the effective coefficients' norm (``reproduce.scalemaps``); t-tests in the findings; heatmap
PNGs. ``--quick``: CI's configuration (``figure7_quick``). ``--checkpoint C --image I``: one image of a
trained crowd model instead (no training, no seeds): its share maps, and the α heatmaps per scale as the
paper draws them (``<name>_alpha.png``: each scale's per-pixel norm of α, one colour scale for all panels).

The share, the statistics, the PNGs and the configurations: docs/reproductions.md, section
"reproduce.figure7".

    python -m reproduce.figure7 [--quick] [--seeds 0 1 2] [--steps N] [--jobs J] [--out results/]
    python -m reproduce.figure7 --checkpoint C --image I [--model crowd_adresnet_s] [--width-mult W]
                                [--generator official|paper] [--layer NAME] [--name N] [--out DIR]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acda.data.toy import PATTERN_SIZES
from acda.generator import GENERATORS

from . import scalemaps
from .engine import base
from .engine.report import Result, load_published, samples_of
from .engine.reproducer import Report, Reproducer
from .engine.stats import holm, mean_std, welch
from .recipes.crowd import GENERATOR, CrowdProxy
from .recipes.toymap import KERNEL, ToyMap
from .toymap.experiment import SeedRun
from .toymap.plots import plot_scales

__all__ = ["FULL", "QUICK7", "build_results", "findings", "crowd_results", "crowd_structure", "crowd_findings",
           "report_findings", "image_results", "main"]

FULL = ToyMap.full().with_(plain_sgd=False)
QUICK7 = ToyMap.quick().with_(seeds=(0, 1, 2, 3, 4))
SETTING = "all seeds"
LARGE, SMALL = max(PATTERN_SIZES), min(PATTERN_SIZES)
SCALES = tuple(range(3, KERNEL + 1, 2))  # the bases' scales 3×3 … 7×7 (ACDAConv2d's default S = k // 2)


def _share(run: SeedRun, pattern: int, scale: int) -> float:
    """Mean share (%) of basis scale ``scale`` (0 = 3×3) at the centres of ``pattern``×``pattern`` patterns."""
    return 100 * float(run.scale_share[pattern][scale])


def build_results(runs: list[SeedRun]) -> list[Result]:
    """The claim rows (status ``proxy``), then every scale's share at every pattern size; one sample per seed."""
    claims = load_published("figure7").set_index(["row", "setting", "metric"])["note"]
    proxy = "A PROXY for Fig. 7's crowd-counting statement: Figure 6's toy map, not crowd images"
    results = []
    for scale, hi, lo in ((-1, LARGE, SMALL), (0, SMALL, LARGE)):
        k = SCALES[scale]
        metric = f"{k}x{k}-scale share: {hi}x{hi} minus {lo}x{lo} pattern centres"
        note = (f"{claims[('ACDA', SETTING, metric)]}. Ours: per seed, the {k}×{k} bases' share of the per-pixel "
                f"norm of β = Σ_a A_a·α_a, averaged over the {hi}×{hi} centres minus over the {lo}×{lo} centres, in "
                f"percentage points. {proxy}")
        results.append(Result("ACDA", SETTING, metric, None, "trained", note=note, unit="%", status="proxy",
                              samples=[_share(r, hi, scale) - _share(r, lo, scale) for r in runs]))
    for p in PATTERN_SIZES:
        for s, k in enumerate(SCALES):
            results.append(Result("ACDA", SETTING, f"{p}x{p} centres: {k}x{k}-scale share", None, "trained",
                                  note="share of the scale in the per-pixel norms of β (ACDAConv2d.scale_share), "
                                       "averaged over the centres of that pattern size", unit="%", status="proxy",
                                  samples=[_share(r, p, s) for r in runs]))
    for s, k in enumerate(SCALES):
        results.append(Result("ACDA", SETTING, f"all pixels: {k}x{k}-scale share", None, "trained", unit="%",
                              status="proxy", note="share of the scale in the per-pixel norms of β, averaged over "
                                                   "every pixel of the map", samples=[_overall(r, s) for r in runs]))
    return results


def findings(rows: Iterable[Result] | pd.DataFrame) -> list[str]:
    """The toy-map claims as measured statements, from the rows: mean ± std over seeds and Welch's p-value,
    Holm-adjusted over the two."""
    samples = samples_of(rows)

    def share(p: int, scale: int) -> list[float]:
        k = SCALES[scale]
        return samples[("ACDA", SETTING, f"{p}x{p} centres: {k}x{k}-scale share")]

    out = []
    shares = {scale: {p: share(p, scale) for p in (LARGE, SMALL)} for scale in (-1, 0)}
    n = len(shares[0][LARGE])
    raw = {scale: welch(at[LARGE], at[SMALL]) if n > 1 else float("nan") for scale, at in shares.items()}
    adjusted = dict(zip(raw, holm(list(raw.values())), strict=True)) if n > 1 else raw
    for scale in (-1, 0):
        k = SCALES[scale]
        at = shares[scale]
        (m_l, s_l), (m_s, s_s) = mean_std(at[LARGE]), mean_std(at[SMALL])
        p_value = adjusted[scale]
        favoured = LARGE if scale == -1 else SMALL
        holds = sum((a > b) == (favoured == LARGE) and a != b for a, b in zip(at[LARGE], at[SMALL], strict=True))
        out.append(
            f"The {k}×{k} bases hold {m_l:.1f} ± {s_l:.1f}% of the coefficient norm at {LARGE}×{LARGE} pattern "
            f"centres and {m_s:.1f} ± {s_s:.1f}% at {SMALL}×{SMALL} centres (mean ± std over {n} seeds; "
            f"Welch p = {raw[scale]:.2g}, Holm-adjusted over the two scales p = {p_value:.2g}); higher at {favoured}×{favoured} centres on {holds}/{n} seeds: "
            + ("consistent with" if holds == n and p_value < 0.05 else "not clear support for")
            + f" the paper's {'large' if favoured == LARGE else 'small'}-object claim (proxy: toy map)."
        )
    overall = [statistics.fmean(samples[("ACDA", SETTING, f"all pixels: {k}x{k}-scale share")]) for k in SCALES]
    out.append("Over all pixels, the 3×3 / 5×5 / 7×7 bases hold " + " / ".join(f"{v:.1f}" for v in overall)
               + "% of the coefficient norm (mean over seeds).")
    return out


def _overall(run: SeedRun, scale: int) -> float:
    norms = run.scale_norms
    return 100 * float((norms[scale] / norms.sum(dim=0).clamp_min(1e-12)).mean())



# ---------------------------------------------------------------- crowd proxy

CROWD_ROW, CROWD_SETTING = "Ad-ResNet-s", "crowd proxy"
UNTRAINED_ROW = "Ad-ResNet-s (untrained)"
PROXY_NOTE = ("A PROXY for Fig. 7's crowd-counting statement: Ad-ResNet-s trained on the crowd proxy (LFW faces "
              "pasted under a perspective scale gradient onto photographs), not the paper's crowd data")
ALPHA = 0.05


def _k(scale: int) -> str:
    k = scalemaps.kernel_of(scale)
    return f"{k}x{k}"


def _top_scales(run: dict) -> int:
    return max(layer["scales"] for layer in run["layers"])


def _thirds(run: dict, names: list[str]) -> np.ndarray:
    """(S, 3) share (%) per scale and third (top, middle, bottom), mean over the layers ``names``."""
    return 100 * np.mean([np.asarray(run["thirds"][n]) for n in names], axis=0)


def _claims(run: dict) -> tuple[float, float]:
    """(largest scale's share bottom − top, smallest scale's share top − bottom) in pp over the top layers."""
    t = _thirds(run, run["top_layers"])
    return float(t[-1, 2] - t[-1, 0]), float(t[0, 0] - t[0, 2])


def _groups(run: dict) -> dict[int, list[str]]:
    """{number of scales: layer names} for the layers with fewer scales than the top ones (at least 2)."""
    out: dict[int, list[str]] = {}
    for layer in run["layers"]:
        if layer["scales"] < _top_scales(run):
            out.setdefault(layer["scales"], []).append(layer["name"])
    return dict(sorted(out.items(), reverse=True))


def _face_r(run: dict, partial: bool) -> float:
    f = run["faces"]
    return (scalemaps.partial_correlation(f[:, 0], f[:, 2], f[:, 1]) if partial
            else scalemaps.correlation(f[:, 0], f[:, 2]))


def _verdict(mean: float, p: float, adjusted: float | None = None, family: int = 1) -> str:
    """Significance of a one-sample test at ``ALPHA``, judged on the Holm-``adjusted`` p of a ``family``."""
    if math.isnan(p):
        return "too few seeds for a test"
    judged = p if adjusted is None else adjusted
    where = "" if family == 1 else f"Holm-adjusted over {family} tests p = {judged:.2g}: "
    if judged >= ALPHA:
        return where + f"not significant at {ALPHA:g}"
    return where + f"significant at {ALPHA:g}, " + ("in the paper's direction" if mean > 0 else
                                                   "in the direction opposite to the paper's claim")


def _holm_verdicts(tests: list[tuple[float, float]]) -> list[str]:
    """``_verdict`` of each (mean, p) of a family reported together, on Holm-adjusted p-values."""
    valid = [i for i, (_, p) in enumerate(tests) if not math.isnan(p)]
    adjusted = dict(zip(valid, holm([tests[i][1] for i in valid]), strict=True))
    return [_verdict(m, p, adjusted.get(i), len(valid)) for i, (m, p) in enumerate(tests)]


def _layer_list(names: list[str]) -> str:
    return ", ".join(names)


def crowd_results(runs: list[dict], cfg: CrowdProxy) -> list[Result]:
    """The crowd-proxy rows (``Ad-ResNet-s / crowd proxy``), one sample per seed: the two claim rows (status
    ``proxy``), the share of each scale per third, the smaller layers' difference, the face-size
    correlations and the test MAE."""
    claims = load_published("figure7").set_index(["row", "setting", "metric"])["note"]
    first = runs[0]
    s_top = _top_scales(first)
    big, small = _k(s_top - 1), _k(0)
    top_names = first["top_layers"]
    where = (f"in Ad-ResNet-s's {big.replace('x', '×')} ACDA layers ({_layer_list(top_names)}), averaged over the {cfg.test} "
             f"whole {cfg.size}×{cfg.size} test images and those layers")
    results = []
    for metric, idx, desc in (
        (f"{big}-scale share: bottom minus top third", 0,
         f"the {big.replace('x', '×')} bases' share of the per-pixel norm of β = Σ_a A_a·α_a in the bottom (near, "
         "large faces) third of the rows minus in the top (far, small dense faces) third"),
        (f"{small}-scale share: top minus bottom third", 1,
         f"the {small.replace('x', '×')} bases' share of the per-pixel norm of β = Σ_a A_a·α_a in the top (far, "
         "small dense faces) third of the rows minus in the bottom (near, large faces) third"),
    ):
        claim = claims.get((CROWD_ROW, CROWD_SETTING, metric), "")
        note = (f"{claim}. " if claim else "") + (f"Ours: per seed, {desc}, {where}, in percentage points. "
                                                  f"{PROXY_NOTE}")
        results.append(Result(CROWD_ROW, CROWD_SETTING, metric, None, "trained", note=note, unit="%",
                              status="proxy", samples=[_claims(r)[idx] for r in runs]))
        results.append(Result(UNTRAINED_ROW, CROWD_SETTING, metric, None, "measured", unit="%", status="proxy",
                              note=f"the control: the same models at their initialisation (before training), "
                                   f"measured as above. {PROXY_NOTE}",
                              samples=[_claims(r["untrained"])[idx] for r in runs]))
    for t, third in enumerate(scalemaps.THIRDS):
        for s in range(s_top):
            results.append(Result(
                CROWD_ROW, CROWD_SETTING, f"{third} third: {_k(s)}-scale share", None, "trained", unit="%", status="proxy",
                note=f"share of the scale in the per-pixel norms of β (ACDAConv2d.scale_share) over the rows of that "
                     f"third, {where}. {PROXY_NOTE}",
                samples=[float(_thirds(r, top_names)[s, t]) for r in runs]))
    for scales, names in _groups(first).items():
        k = _k(scales - 1)
        results.append(Result(
            CROWD_ROW, CROWD_SETTING, f"{_k(scales - 1)} layers: {k}-scale share: bottom minus top third", None,
            "trained", unit="%", status="proxy",
            note=f"the same difference for the {k.replace('x', '×')} bases in the {k.replace('x', '×')} ACDA layers "
                 f"({_layer_list(names)}; {scales} scales, so the smaller scale's share moves by the opposite "
                 f"amount), averaged over the test images and those layers. {PROXY_NOTE}",
            samples=[float(_thirds(r, names)[-1, 2] - _thirds(r, names)[-1, 0]) for r in runs]))
    face_note = (f"over all annotated faces of the {cfg.test} test images: the face's side (px) against the "
                 f"{big.replace('x', '×')} bases' share at the share-map pixel holding its centre, averaged over the "
                 f"{big.replace('x', '×')} layers")
    results.append(Result(CROWD_ROW, CROWD_SETTING, f"Pearson r: face side vs {big}-scale share at its centre", None,
                          "trained", status="proxy", note=f"Pearson's r {face_note}. {PROXY_NOTE}",
                          samples=[_face_r(r, False) for r in runs]))
    results.append(Result(CROWD_ROW, CROWD_SETTING, f"partial r given the row: face side vs {big}-scale share", None,
                          "trained", status="proxy", note=f"Pearson's r of the residuals after a least-squares line in the face's "
                                          f"centre row, {face_note} (the perspective ties size to row; the ±10% "
                                          f"per-face size jitter is what is left). {PROXY_NOTE}",
                          samples=[_face_r(r, True) for r in runs]))
    results.append(Result(CROWD_ROW, CROWD_SETTING, "test MAE", None, "trained", unit="faces", status="proxy",
                          note=f"mean absolute count error on the proxy's test split after training ({cfg.count[0]}"
                               f"–{cfg.count[1]} faces per image), as Table 3's proxy row. {PROXY_NOTE}",
                          samples=[float(r["metrics"]["val_mae"]) for r in runs]))
    return results


def crowd_structure(recipe: CrowdProxy) -> dict:
    """What the crowd findings cite besides the rows: the model's multi-scale ACDA layers (name, scales), those
    with the most scales, the number of annotated test faces and the constant predictor's test MAE."""
    layers = scalemaps.multiscale_layers(recipe.build(scalemaps.SLUG))
    most = max(layer.coefficient_scales for _, layer in layers)
    train_set, test_set = recipe.datasets()
    return {"layers": [{"name": n, "scales": layer.coefficient_scales} for n, layer in layers],
            "top_layers": [n for n, layer in layers if layer.coefficient_scales == most],
            "faces": sum(len(test_set.points(i)) for i in range(len(test_set))),
            "constant_mae": scalemaps.constant_mae(train_set, test_set)}


def crowd_findings(rows: Iterable[Result] | pd.DataFrame, structure: dict) -> list[str]:
    """The crowd-proxy claims as measured statements, from the rows: mean ± std over seeds and one-sample t-tests,
    one Holm family over every test reported (the claims, each smaller layer group, the face correlations, the
    control). ``structure``: ``crowd_structure`` of the recipe."""
    samples = samples_of(rows, CROWD_SETTING)
    s_top = _top_scales(structure)
    top_names = structure["top_layers"]
    claim_metrics = (f"{_k(s_top - 1)}-scale share: bottom minus top third", f"{_k(0)}-scale share: top minus bottom third")
    mae = samples[(CROWD_ROW, "test MAE")]
    n = len(mae)
    names = {0: "top (far)", 2: "bottom (near)"}

    def third(t: int, scale: int) -> list[float]:
        return samples[(CROWD_ROW, f"{scalemaps.THIRDS[t]} third: {_k(scale)}-scale share")]

    tests, texts = [], []
    for idx, (scale, hi, lo) in enumerate(((s_top - 1, 2, 0), (0, 0, 2))):
        k = _k(scale).replace("x", "×")
        diffs = samples[(CROWD_ROW, claim_metrics[idx])]
        (m_hi, s_hi), (m_lo, s_lo), (m_d, s_d) = mean_std(third(hi, scale)), mean_std(third(lo, scale)), mean_std(diffs)
        p = scalemaps.one_sample_p(diffs)
        tests.append((m_d, p))
        texts.append((
            f"PROXY (crowd proxy, not the paper's crowd data): in Ad-ResNet-s's {_k(s_top - 1).replace('x', '×')} "
            f"ACDA layers ({_layer_list(top_names)}) the {k} bases hold {m_hi:.2f} ± {s_hi:.2f}% of the "
            f"coefficient norm in the {names[hi]} third of the test images and {m_lo:.2f} ± {s_lo:.2f}% in the "
            f"{names[lo]} third: difference {m_d:+.2f} ± {s_d:.2f} percentage points (mean ± std over {n} seeds; "
            f"one-sample t-test of the per-seed differences against 0: p = {p:.2g}), positive on "
            f"{sum(d > 0 for d in diffs)}/{n} seeds: ",
            f" (the paper: {'large' if idx == 0 else 'small'} bases {'near' if idx == 0 else 'far, on dense objects'})."))
        control = samples[(UNTRAINED_ROW, claim_metrics[idx])]
        (m_c, s_c), p_c = mean_std(control), scalemaps.one_sample_p([a - b for a, b in zip(diffs, control, strict=True)])
        tests.append((m_d - m_c, p_c))
        texts.append((f"PROXY control: the same difference for the {k} bases in the untrained models (the same "
                      f"initialisations) is {m_c:+.2f} ± {s_c:.2f} points; trained minus untrained, paired by seed: "
                      f"{m_d - m_c:+.2f} points (t-test against 0: p = {p_c:.2g}): ", " (positive = training moved "
                      "the share the paper's way)."))
    for scales, group in _groups(structure).items():
        k = _k(scales - 1).replace("x", "×")
        diffs = samples[(CROWD_ROW, f"{_k(scales - 1)} layers: {_k(scales - 1)}-scale share: bottom minus top third")]
        (m, s), p = mean_std(diffs), scalemaps.one_sample_p(diffs)
        tests.append((m, p))
        texts.append((f"PROXY: in the {k} ACDA layers ({_layer_list(group)}) the {k} bases' share, bottom (near) "
                      f"minus top (far) third, is {m:+.2f} ± {s:.2f} points (mean ± std over {n} seeds; t-test "
                      f"against 0: p = {p:.2g}), positive on {sum(d > 0 for d in diffs)}/{n} seeds: ",
                      " (the paper: large bases near)."))
    big = _k(s_top - 1)
    for partial in (False, True):
        rs = samples[(CROWD_ROW, f"partial r given the row: face side vs {big}-scale share" if partial else
                      f"Pearson r: face side vs {big}-scale share at its centre")]
        (m, s), p = mean_std(rs), scalemaps.one_sample_p(rs)
        tests.append((m, p))
        texts.append((f"PROXY: over the {structure['faces']} annotated test faces, "
                      + ("the partial r (given the face's row) " if partial else "Pearson's r ")
                      + f"between a face's side and the {big.replace('x', '×')} share at its centre is "
                      f"{m:+.3f} ± {s:.3f} (mean ± std over {n} seeds; t-test against 0: p = {p:.2g}): ",
                      " (positive = larger faces get more of the large bases)." if not partial else
                      " (size beyond what the row predicts)."))
    out = [f"PROXY: the {len(tests)} tests below are one family, judged on Holm-adjusted p-values."]
    out += [head + verdict + tail for (head, tail), verdict in zip(texts, _holm_verdicts(tests), strict=True)]
    means = [statistics.fmean(third(t, sc)) for t in range(len(scalemaps.THIRDS)) for sc in range(s_top)]
    lo, hi = min(means), max(means)
    out.append(f"PROXY: every scale's mean share in every third lies within {lo:.2f}–{hi:.2f}% (means over {n} seeds; "
               f"an even split is {100 / s_top:.2f}%)"
               + (": the coefficient norm is spread almost evenly over the scales everywhere, so the differences "
                  "above, significant or not, are small next to the contrast Fig. 7 draws." if hi - lo < 2 else "."))
    m, s = mean_std(mae)
    const = structure["constant_mae"]
    beat = sum(v < const for v in mae)
    out.append(f"The proxy models count with a test MAE of {m:.2f} ± {s:.2f} faces (mean ± std over {n} seeds); "
               f"predicting the train split's mean count for every test image scores {const:.2f}, beaten on "
               f"{beat}/{n} seeds: "
               + ("the models learned to count, so the shares above are those of working counters." if beat == n else
                  "the models do not reliably count better than that constant, so the shares above are those of "
                  "barely trained counters (read them with that in mind)."))
    return out


def report_findings(rows: pd.DataFrame, quick: bool) -> list[str]:
    """Every finding of a committed proxy report, recomputed from its rows (``python -m reproduce verify``)."""
    return findings(rows) + crowd_findings(rows, crowd_structure(recipes(quick)["crowd proxy"]))


# ---------------------------------------------------------------- one image of a checkpoint

def image_results(maps: dict[str, tuple[torch.Tensor, int]], slug: str, image_name: str) -> tuple[list[Result],
                                                                                                    list[str]]:
    """Rows and findings of one measured image (no seeds): per multi-scale layer and for the mean over the
    layers with the most scales, the thirds rows; every published row marked as not measured here."""
    row = f"{slug}: {image_name}"
    most = max(share.shape[0] for share, _ in maps.values())
    top = [n for n, (share, _) in maps.items() if share.shape[0] == most]
    per = {n: 100 * scalemaps.third_means(share).double().numpy() for n, (share, _) in maps.items()}
    groups = [(f"{_k(most - 1)} layers (mean)", np.mean([per[n] for n in top], axis=0), top)]
    groups += [(n, per[n], [n]) for n in maps]
    results, findings_ = [], []
    note = ("measured on one image (no seeds): each scale's share of the per-pixel norm of β = Σ_a A_a·α_a "
            "(ACDAConv2d.scale_share) over the rows of each third of the share map")
    for setting, t, names in groups:
        scales = t.shape[0]
        big, small = _k(scales - 1), _k(0)
        where = f"layers {_layer_list(names)}"
        results.append(Result(row, setting, f"{big}-scale share: bottom minus top third", float(t[-1, 2] - t[-1, 0]),
                              "measured", unit="%", note=f"{note}; {where}"))
        if scales > 2:
            results.append(Result(row, setting, f"{small}-scale share: top minus bottom third",
                                  float(t[0, 0] - t[0, 2]), "measured", unit="%", note=f"{note}; {where}"))
        for i, third in enumerate(scalemaps.THIRDS):
            for s in range(scales):
                results.append(Result(row, setting, f"{third} third: {_k(s)}-scale share", float(t[s, i]), "measured",
                                      unit="%", note=f"{note}; {where}"))
    t = groups[0][1]
    findings_.append(
        f"On {image_name}, in {slug}'s {_k(most - 1).replace('x', '×')} ACDA layers ({_layer_list(top)}), the "
        f"{_k(most - 1).replace('x', '×')} bases hold {t[-1, 2]:.2f}% of the coefficient norm in the bottom third and "
        f"{t[-1, 0]:.2f}% in the top third ({t[-1, 2] - t[-1, 0]:+.2f} pp); the 3×3 bases {t[0, 0]:.2f}% in the top and "
        f"{t[0, 2]:.2f}% in the bottom third ({t[0, 0] - t[0, 2]:+.2f} pp). One image, no seeds: no significance test.")
    for p in load_published("figure7").itertuples(index=False):
        results.append(Result(p.row, p.setting, p.metric, None, "measured", status="not implemented",
                              note="not measured by --checkpoint/--image (one image of a given model); "
                                   "python -m reproduce.figure7 measures it"))
    return results, findings_


def _image_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Report:
    """``--checkpoint``/``--image``: one image of a trained crowd model, its rows and its two PNG figures."""
    name = args.name or "figure7_image"
    for option in ("quick", "seeds", "steps"):
        if getattr(args, option) not in (None, False):
            parser.error(f"--{option} does not apply to --checkpoint/--image (one image, no training)")
    if not args.checkpoint or not args.image:
        parser.error("--checkpoint and --image go together")
    if not Path(args.checkpoint).exists():
        parser.error(f"no checkpoint at {args.checkpoint!r}")
    if not Path(args.image).is_file():
        parser.error(f"no image file at {args.image!r}")
    device = str(base.resolve_device(args.device))
    try:
        raw, image = scalemaps.read_image(args.image)
        model = scalemaps.load_crowd_model(args.checkpoint, args.model, width_mult=args.width_mult,
                                           generator=args.generator)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError; unknown --model too
        parser.error(str(e))
    layers = [n for n, _ in scalemaps.multiscale_layers(model)]
    layer = args.layer or scalemaps.default_layer(scalemaps.multiscale_layers(model))
    if layer not in layers:
        parser.error(f"--layer {layer!r} is not a multi-scale ACDA layer of {args.model}; choose from {layers}")
    maps = scalemaps.image_shares(model, image, device)
    norms, norm_stride = scalemaps.image_shares(model, image, device, alpha=True)[layer]
    share, stride = maps[layer]
    image_name, ckpt = Path(args.image).name, Path(args.checkpoint).name
    results, found = image_results(maps, args.model, image_name)
    figures = [
        lambda out: scalemaps.plot_shares(raw.numpy(), share.numpy(), stride, Path(out, f"{name}.png"),
                                          f"{args.model} ({ckpt}) on {image_name}: per-pixel share of each basis "
                                          f"scale in {layer}"),
        lambda out: scalemaps.plot_shares(raw.numpy(), norms.numpy(), norm_stride, Path(out, f"{name}_alpha.png"),
                                          f"{args.model} ({ckpt}) on {image_name}: basis coefficient α heatmaps per "
                                          f"scale in {layer} (as Figure 7 draws them)", alpha=True)]
    return Report(name, f"Figure 7 on one image: basis-scale shares of {args.model} ({ckpt}, width "
                        f"×{args.width_mult:g}, {args.generator} generator) on {image_name}", results, found,
                  device=device, figures=figures)


# ---------------------------------------------------------------- command line

def recipes(quick: bool, toy_overrides: dict | None = None, **proxy_overrides) -> dict:
    """The recipes of the report (``figure7`` or ``figure7_quick``): the toy map's (with ``toy_overrides``) and
    the crowd proxy's (with ``proxy_overrides``, tests), trained on the same seeds."""
    toy = (QUICK7 if quick else FULL).with_(**(toy_overrides or {}))
    return {"toy map": toy, "crowd proxy": CrowdProxy.of(quick).with_(seeds=len(toy.seeds), **proxy_overrides)}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=None,
                        help=f"toy map: step cap per layer (default {FULL.max_steps}; quick: {QUICK7.max_steps})")
    parser.add_argument("--name", default=None,
                        help="output name (default figure7, figure7_quick with --quick, figure7_image with --image)")
    image = parser.add_argument_group("one image of a trained crowd model (instead of the proxies)")
    image.add_argument("--checkpoint", default=None, help="acda.train checkpoint of a crowd model")
    image.add_argument("--image", default=None, help="image file (any format torchvision.io.decode_image reads)")
    image.add_argument("--model", default=scalemaps.SLUG, help="registered crowd model (default %(default)s)")
    image.add_argument("--width-mult", type=float, default=1.0, help="its width multiplier (default %(default)s)")
    image.add_argument("--generator", choices=GENERATORS, default=GENERATOR,
                       help="its atom generator (default %(default)s, as Table 3 trains)")
    image.add_argument("--layer", default=None,
                       help="multi-scale ACDA layer drawn in the PNG (default: the last with the most scales)")


def build_reports(args: argparse.Namespace, parser: argparse.ArgumentParser,
                  proxy_overrides: dict | None = None) -> list[Report]:
    """The toy map and the crowd proxy over seeds (``proxy_overrides``, tests: settings of the crowd proxy), or
    one image of a trained model (``--checkpoint``/``--image``)."""
    if args.checkpoint or args.image:
        return [_image_report(args, parser)]
    overrides = {}
    if args.seeds is not None:
        overrides["seeds"] = tuple(args.seeds)
    if args.steps is not None:
        overrides["max_steps"] = args.steps
    try:
        used = recipes(args.quick, overrides, **(proxy_overrides or {}))
        cfg, pcfg = used["toy map"], used["crowd proxy"]
    except ValueError as e:
        parser.error(str(e))
    name = args.name or ("figure7_quick" if args.quick else "figure7")
    device = str(base.resolve_device(args.device))
    # one pool for both parts, the longer proxy runs first; each run on one CPU thread (scalemaps.run_task)
    tasks = [("proxy", seed, pcfg, device) for seed in cfg.seeds] + [("toy", seed, cfg, device) for seed in cfg.seeds]
    done = base.run_jobs(scalemaps.run_task, tasks, args.jobs, desc="runs", in_process=device != "cpu")
    crowd, runs = done[:len(cfg.seeds)], done[len(cfg.seeds):]
    results = build_results(runs) + crowd_results(crowd, pcfg)
    example = crowd[0]["example"]
    layer = [layer["name"] for layer in crowd[0]["layers"] if layer["name"] in crowd[0]["top_layers"]][-1]
    share, stride = example["maps"][layer]
    figures = [
        lambda out: plot_scales(runs[0], Path(out, f"{name}.png")),
        lambda out: scalemaps.plot_shares(
            example["image"], share, stride, Path(out, f"{name}_crowd.png"),
            f"PROXY: Ad-ResNet-s on crowd-proxy test image {example['index']} (seed {crowd[0]['seed']}): per-pixel "
            f"share of each basis scale in {layer}; circles: annotated faces", example["points"], example["sizes"])]
    return [Report(name, f"Figure 7 (proxy): basis-scale shares of ACDA's coefficients on Figure 6's toy map "
                         f"({len(cfg.seeds)} seeds, {cfg.size}×{cfg.size} map, cap {cfg.max_steps} steps) and in "
                         f"Ad-ResNet-s trained on the crowd proxy ({len(crowd)} seeds, {pcfg.size}×{pcfg.size} "
                         f"images, {pcfg.train}/{pcfg.test} train/test, {pcfg.epochs} epochs); one CPU "
                         "thread per run", results, findings(results) + crowd_findings(results, crowd_structure(pcfg)),
                   used, device, figures)]


REPRODUCER = Reproducer(
    "figure7", [("Fig 7", "Scale-preference heatmaps of the basis coefficients (§4.2)")], __doc__, {
        "device": {"default": "cpu", "help": "device (default: cpu)"},
        "threads": {"help": "torch CPU threads for --checkpoint/--image (default: torch's)"},
        "seeds": {"nargs": "+", "default": None, "type": base.non_negative_int,
                  "help": f"seeds of both parts (default {' '.join(map(str, FULL.seeds))}; quick: "
                          f"{' '.join(map(str, QUICK7.seeds))})"},
        "jobs": {},
        "quick": {"help": f"Figure 6's quick configuration ({QUICK7.size}×{QUICK7.size} map, step cap "
                          f"{QUICK7.max_steps}) and the quick crowd proxy on {len(QUICK7.seeds)} seeds, written as "
                          "figure7_quick.* (CI)"},
    },
    build_reports, _arguments, recipes=recipes, report_findings=report_findings)
main = REPRODUCER.main


if __name__ == "__main__":
    sys.exit(main())
