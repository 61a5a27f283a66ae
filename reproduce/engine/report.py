"""The one diff engine for every table: published rows + reproduced values → results/<name>.{csv,md,json}.

A reproducer builds ``Result`` objects (one per published cell it addresses, plus any extra rows of
its own), and calls ``write_report``. The engine joins them with ``reproduce/published/<table>.csv``,
computes delta and status, and writes three files, each atomically: the CSV (every number, with
provenance), the JSON (title and findings) and the Markdown, rendered from those two alone
(``render``) so it can be regenerated and compared byte for byte. All three carry the same run id.

Statuses: ``match``, ``within tolerance``, ``better`` / ``worse``, ``mismatch`` (computed); ``erratum``,
``consistent``, ``claim holds`` / ``claim fails`` (a claim printed without a number, tested against the
threshold the note states), ``needs data``, ``not implemented``, ``proxy``, ``reproduced here`` (set by the
reproducer, with a note). Kinds of number (``Result.kind``): ``exact``, ``seeded``, ``timing``, each with
its own regression rule (``reproduce.regression``).

Each status and kind, and the run id: docs/regression.md, section "reproduce.report".
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from acda.utils import atomic_write_many, check_choice

from .provenance import check_clean, fingerprint
from .stats import CHECKED_TABLES, FALSE_ALARM, FALSE_ALARM_RUN, detectable_change

__all__ = [
    "Result",
    "STATUSES",
    "KINDS",
    "PUBLISHED_DIR",
    "load_published",
    "build_table",
    "write_report",
    "read_results",
    "render",
    "status_for",
    "run_id",
    "recipe_record",
    "missing",
    "samples_of",
    "values_of",
]

PUBLISHED_DIR = Path(__file__).resolve().parent.parent / "published"
STATUSES = (
    "match", "within tolerance", "better", "worse", "mismatch",
    "erratum", "consistent", "claim holds", "claim fails", "needs data", "not implemented", "proxy", "reproduced here",
)
SET_BY_REPRODUCER = ("erratum", "consistent", "claim holds", "claim fails", "needs data", "not implemented", "proxy",
                     "reproduced here")
KINDS = ("exact", "seeded", "timing")
PROVENANCE = ["device", "isa", "torch", "mkl", "onednn", "fingerprint", "commit", "run_id"]
COLUMNS = [
    "table", "row", "setting", "metric", "unit", "published", "reproduced", "std", "n", "delta", "rel_delta",
    "tolerance", "detectable", "status", "note", "method", "kind", "samples", *PROVENANCE,
]
METHODS = ("analytic", "fvcore", "counted", "measured", "trained", "timed")


@dataclass
class Result:
    """One reproduced cell. ``value`` is in the published row's unit (or ``unit`` for new rows).

    ``samples``: one value per seed (a trained or seed-dependent number); the row's value is their
    mean and must not be given separately. With ``method="timed"`` they are per-round measurements
    instead, and ``value`` (e.g. their median) is given.
    """

    row: str
    setting: str
    metric: str
    value: float | None
    method: str
    note: str = ""
    status: str | None = None
    tolerance: float | None = None
    unit: str = ""
    samples: Sequence[float] | None = None

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        if self.status is not None and self.status not in SET_BY_REPRODUCER:
            raise ValueError(
                f"a reproducer may only set status to one of {SET_BY_REPRODUCER}, got {self.status!r}"
            )
        if self.samples is not None:
            self.samples = tuple(float(v) for v in self.samples)
            if not self.samples:
                raise ValueError(f"{self.key}: samples must hold at least one value")
            if self.method != "timed":
                mean = statistics.fmean(self.samples)
                if self.value is not None and self.value != mean:
                    raise ValueError(f"{self.key}: a seeded row's value is the mean of its samples; pass value=None")
                self.value = mean
        if self.value is None and self.status is None:
            raise ValueError(f"{self.key}: a missing value needs a status saying why")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.row, self.setting, self.metric)

    @property
    def kind(self) -> str:
        if self.method == "timed":
            return "timing"
        return "seeded" if self.samples is not None else "exact"


def missing(rows: Iterable[str], settings: Iterable[str], metrics: Iterable[str], status: str, note: str,
            method: str = "trained") -> list[Result]:
    """Rows without a value: each (row, setting, metric) of the product, in that order, with ``status``
    ("needs data", "not implemented") and the ``note`` saying why."""
    settings, metrics = list(settings), list(metrics)
    return [Result(row, setting, metric, None, method, status=status, note=note)
            for row in rows for setting in settings for metric in metrics]


Key = tuple[str, str, str]


def samples_of(rows: Iterable[Result] | pd.DataFrame, setting: str | None = None) -> dict:
    """(row, setting, metric) → per-seed samples of each seeded row, from ``Result`` objects or a report read
    back with ``read_results`` (its samples are written exactly, so both give the same floats); with
    ``setting``, (row, metric) → samples of that setting's rows only."""
    if isinstance(rows, pd.DataFrame):
        found = {(r.row, r.setting, r.metric): [float(v) for v in r.samples.split(";")]
                 for r in rows.itertuples(index=False) if r.samples}
    else:
        found = {r.key: list(r.samples) for r in rows if r.samples is not None}
    if setting is None:
        return found
    return {(row, metric): v for (row, where, metric), v in found.items() if where == setting}


def values_of(rows: Iterable[Result] | pd.DataFrame) -> dict[Key, float]:
    """(row, setting, metric) → value of each row that has one (``Result.value`` or a report's ``reproduced``)."""
    if isinstance(rows, pd.DataFrame):
        return {(r.row, r.setting, r.metric): r.reproduced for r in rows.itertuples(index=False)
                if not math.isnan(r.reproduced)}
    return {r.key: r.value for r in rows if r.value is not None}


def load_published(table: str, directory: str | Path | None = None) -> pd.DataFrame:
    """The paper's printed numbers for ``table`` in ``directory`` (default ``PUBLISHED_DIR``; see
    ``published/README.md`` for the format)."""
    path = Path(PUBLISHED_DIR if directory is None else directory) / f"{table}.csv"
    if not path.exists():
        raise FileNotFoundError(f"no published numbers for {table!r}: expected {path}")
    df = pd.read_csv(path, dtype={"row": str, "setting": str, "metric": str, "unit": str,
                                  "better": str, "note": str}, keep_default_na=False,
                     na_values={"published": [""], "decimals": [""]})
    missing = {"row", "setting", "metric", "unit", "published", "decimals", "better"} - set(df.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    if df.duplicated(["row", "setting", "metric"]).any():
        raise ValueError(f"{path} has duplicate (row, setting, metric) keys")
    return df


def status_for(published: float, reproduced: float, decimals: int, tolerance: float | None,
               better: str) -> str:
    """Status of a reproduced value against a printed one (docs/regression.md, section "reproduce.report")."""
    delta = reproduced - published
    half_unit = 0.5 * 10.0 ** (-int(decimals))
    if abs(delta) <= half_unit * (1 + 1e-9):
        return "match"
    if tolerance is not None and abs(delta) <= tolerance:
        return "within tolerance"
    if better == "higher":
        return "better" if delta > 0 else "worse"
    if better == "lower":
        return "better" if delta < 0 else "worse"
    return "mismatch"


def build_table(table: str, results: Iterable[Result], provenance: dict[str, str]) -> pd.DataFrame:
    """Join ``results`` with the published rows of ``table``; every published row appears once.

    ``provenance`` fills the columns ``PROVENANCE`` (``reproduce.provenance.fingerprint`` plus ``commit``;
    ``run_id`` is left empty when not given: ``write_report`` sets it).
    """
    provenance = {"run_id": "", **provenance}
    published = load_published(table)
    results = list(results)
    by_key: dict[tuple[str, str, str], Result] = {}
    for r in results:
        if r.key in by_key:
            raise ValueError(f"{table}: two results for {r.key}")
        by_key[r.key] = r
    tested = sum(r.kind == "seeded" and len(r.samples) > 1 for r in results)  # rows one regression tests
    rows = []
    for p in published.itertuples(index=False):
        r = by_key.pop((p.row, p.setting, p.metric), None)
        pub = float(p.published) if not pd.isna(p.published) else math.nan
        if r is None:
            r = Result(p.row, p.setting, p.metric, None, "analytic", status="not implemented",
                       note="no reproducer addresses this row yet")
        if p.note and p.note not in r.note:  # how the paper printed it (e.g. a derived number) travels along
            r = replace(r, note=f"Paper: {p.note}. {r.note}".strip())
        rows.append(_row(table, r, pub, int(p.decimals) if not pd.isna(p.decimals) else 0,
                         p.better, p.unit, provenance, tested))
    for r in by_key.values():  # rows of our own (e.g. proxies, extra configurations)
        rows.append(_row(table, r, math.nan, 0, "", r.unit, provenance, tested))
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(table, r: Result, published, decimals, better, unit, provenance, tested: int) -> dict:
    value = math.nan if r.value is None else float(r.value)
    delta = math.nan if r.status == "proxy" else value - published  # a proxy is never compared with the paper
    if r.status is not None:
        status = r.status
    elif math.isnan(published):
        status = "reproduced here"
    else:
        status = status_for(published, value, decimals, r.tolerance, better)
    samples = r.samples or ()
    n = len(samples) if samples else math.nan
    std = statistics.stdev(samples) if len(samples) > 1 else math.nan
    detectable = (detectable_change(std, len(samples), tested) if r.kind == "seeded" and len(samples) > 1
                  else math.nan)
    return {
        "table": table, "row": r.row, "setting": r.setting, "metric": r.metric, "unit": unit,
        "published": published, "reproduced": value, "std": std, "n": n, "delta": delta,
        "rel_delta": delta / published if published not in (0.0,) and not math.isnan(published) else math.nan,
        "tolerance": math.nan if r.tolerance is None else r.tolerance, "detectable": detectable,
        "status": status, "note": r.note, "method": r.method, "kind": r.kind,
        "samples": ";".join(float.__repr__(v) for v in samples), **provenance,
    }


def read_results(path: str | Path) -> pd.DataFrame:
    """A results CSV as written: numeric columns as floats (empty = NaN), text columns as str."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("published", "reproduced", "std", "n", "delta", "rel_delta", "tolerance", "detectable"):
        if column in df:
            df[column] = [float(v) if v else math.nan for v in df[column]]
    return df


def _fmt(value: float, decimals: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.{decimals}f}"


def _decimals_of(value: float) -> int:
    if value is None or math.isnan(value):
        return 2
    text = f"{value:.6f}".rstrip("0")
    return max(1, len(text.split(".")[1])) if "." in text else 1


def _significant(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def to_markdown(df: pd.DataFrame, title: str, findings: Sequence[str] = (),
                recipes: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The report's Markdown: a pure function of the CSV (as ``read_results`` returns it), the title,
    the findings and the recipes (``recipe_record``)."""
    notes: list[str] = []
    seeded = (df["kind"] == "seeded").any()
    body = []
    for r in df.itertuples(index=False):
        marker = ""
        if r.note:
            if r.note not in notes:
                notes.append(r.note)
            marker = f"[{notes.index(r.note) + 1}]"
        decimals = _decimals_of(r.published)
        shown = max(decimals, 2)
        row = {
            "row": r.row, "setting": r.setting, "metric": f"{r.metric} ({r.unit})" if r.unit else r.metric,
            "published": _fmt(r.published, decimals), "reproduced": _fmt(r.reproduced, shown),
        }
        if seeded:
            row["± std"] = _fmt(r.std, shown) if r.kind == "seeded" else ""
            row["n"] = "" if math.isnan(r.n) or r.kind != "seeded" else f"{int(r.n)}"
            row["detectable"] = _fmt(r.detectable, shown)
        row.update({
            "delta": _fmt(r.delta, shown),
            "rel": "" if math.isnan(r.rel_delta) else f"{100 * r.rel_delta:+.1f}%",
            "tol": _fmt(r.tolerance, shown), "status": r.status, "kind": r.kind, "method": r.method, "note": marker,
        })
        body.append(row)
    first = df.iloc[0] if len(df) else None
    lines = [f"# {title}", ""]
    if first is not None:
        run = f" · run {first.run_id}" if getattr(first, "run_id", "") else ""
        lines += [f"Device: {first.device} · ISA {first.isa} · torch {first.torch} (MKL {first.mkl}, oneDNN "
                  f"{first.onednn}) · commit {first.commit} · fingerprint {first.fingerprint}{run}", ""]
    lines += [pd.DataFrame(body).to_markdown(index=False, disable_numparse=True), ""]
    if seeded:
        lines += ["'reproduced' of a seeded row is the mean over its n seeds, '± std' their sample standard "
                  "deviation, 'detectable' the smallest shift of the mean that the cross-machine regression "
                  f"detects with 80% power (Welch test at {FALSE_ALARM:g} over the table's seeded rows, "
                  f"Bonferroni-corrected: {FALSE_ALARM_RUN:g} over the {CHECKED_TABLES} tables one CI run re-checks; "
                  "power simulated for Welch's test).", ""]
    if notes:
        lines += ["## Notes", ""] + [f"{i}. {n}" for i, n in enumerate(notes, 1)] + [""]
    if findings:
        lines += ["## Findings", ""] + [f"- {f}" for f in findings] + [""]
    if recipes:
        lines += ["## Recipes", ""] + [f"- {label} ({r['recipe']}, fingerprint {r['fingerprint']}): {r['describe']}"
                                       for label, r in recipes.items()] + [""]
    per_seed = [r for r in df.itertuples(index=False) if r.kind == "seeded" and r.samples]
    if per_seed:
        lines += ["## Per-seed values", ""]
        lines += [f"- {r.row} / {r.setting} / {r.metric}: "
                  + ", ".join(_significant(float(v)) for v in r.samples.split(";")) for r in per_seed]
        lines += [""]
    return "\n".join(lines)


def render(name: str, out_dir: str | Path = "results") -> str:
    """The Markdown of ``<out_dir>/<name>``, regenerated from its CSV and JSON."""
    out = Path(out_dir)
    meta = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    return to_markdown(read_results(out / f"{name}.csv"), meta["title"], meta["findings"], meta.get("recipes"))


def recipe_record(recipe: Any) -> dict[str, Any]:
    """What a report records of a recipe (``reproduce.recipes``): its family, fingerprint, description and
    fields."""
    return {"recipe": type(recipe).__name__, "fingerprint": recipe.fingerprint(), "describe": recipe.describe(),
            "fields": recipe.fields()}


def write_report(
    table: str,
    results: Iterable[Result],
    *,
    out_dir: str | Path = "results",
    name: str | None = None,
    title: str | None = None,
    device: str = "cpu",
    findings: Sequence[str] = (),
    recipes: Mapping[str, Any] | None = None,
    allow_dirty: bool = False,
) -> pd.DataFrame:
    """Write ``<out_dir>/<name>.csv``, ``.json`` and ``.md`` (``name`` defaults to ``table``), each atomically,
    all three with one run id (``run_id``; docs/regression.md, section "reproduce.report"). ``recipes``
    (label → recipe) are recorded in the JSON and the Markdown (``recipe_record``).

    Refuses to write the repository's ``results/`` from a dirty tree unless ``allow_dirty``
    (``reproduce.provenance.check_clean``). Returns the table as read back from the CSV.
    """
    out = Path(out_dir)
    provenance = {**fingerprint(device), "commit": check_clean(out, allow_dirty)}
    df = build_table(table, results, provenance)
    name = name or table
    meta = {"title": title or name, "findings": list(findings)}
    if recipes:
        meta["recipes"] = {label: recipe_record(r) for label, r in recipes.items()}
    df["run_id"] = run_id(_csv(df), _json(meta))
    csv = _csv(df)
    markdown = to_markdown(read_results(io.StringIO(csv)), meta["title"], meta["findings"], meta.get("recipes"))
    atomic_write_many({out / f"{name}.csv": csv,
                       out / f"{name}.json": _json({**meta, "run_id": df["run_id"].iloc[0] if len(df) else ""}),
                       out / f"{name}.md": markdown})  # the three as one set: no report of two runs
    return read_results(out / f"{name}.csv")


def run_id(*contents: str) -> str:
    """The run id of a report: 12 hex digits of the SHA-256 of its contents (CSV with an empty run id, JSON
    without one)."""
    h = hashlib.sha256()
    for text in contents:
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:12]


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.10g")


def _json(meta: dict) -> str:
    return json.dumps(meta, indent=1, ensure_ascii=False) + "\n"
