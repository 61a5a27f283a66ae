"""The one diff engine for every table: published rows + reproduced values → results/<name>.{csv,md}.

A reproducer builds ``Result`` objects (one per published cell it addresses, plus any extra rows of
its own), and calls ``write_report``. The engine joins them with ``reproduce/published/<table>.csv``,
computes delta and status, and writes both files atomically (temporary file, then rename).

Statuses:

- ``match``: within half a unit of the last printed digit;
- ``within tolerance``: within the tolerance the reproducer justified (``Result.tolerance``);
- ``better`` / ``worse``: outside tolerance, in the metric's good / bad direction;
- ``mismatch``: outside tolerance, for a metric with no good direction (e.g. a count);
- set by the reproducer, with a note saying why: ``erratum`` (the paper's number is internally
  inconsistent), ``needs data`` (the note gives the path and format expected), ``not implemented``,
  ``proxy`` (measured on a stand-in task, never compared with the paper), ``reproduced here``
  (the paper prints no number for it).
"""
from __future__ import annotations

import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

__all__ = [
    "Result",
    "STATUSES",
    "PUBLISHED_DIR",
    "load_published",
    "build_table",
    "write_report",
    "compare_with_committed",
    "status_for",
]

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
REPO_ROOT = Path(__file__).resolve().parent.parent
STATUSES = (
    "match", "within tolerance", "better", "worse", "mismatch",
    "erratum", "needs data", "not implemented", "proxy", "reproduced here",
)
SET_BY_REPRODUCER = ("erratum", "needs data", "not implemented", "proxy", "reproduced here")
COLUMNS = [
    "table", "row", "setting", "metric", "unit", "published", "reproduced", "delta", "rel_delta",
    "tolerance", "status", "note", "method", "device", "torch", "commit",
]
PROVENANCE = ["device", "torch", "commit"]
METHODS = ("analytic", "fvcore", "measured", "trained", "counted")


@dataclass
class Result:
    """One reproduced cell. ``value`` is in the published row's unit (or ``unit`` for new rows)."""

    row: str
    setting: str
    metric: str
    value: float | None
    method: str
    note: str = ""
    status: str | None = None
    tolerance: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.status is not None and self.status not in SET_BY_REPRODUCER:
            raise ValueError(
                f"a reproducer may only set status to one of {SET_BY_REPRODUCER}, got {self.status!r}"
            )
        if self.value is None and self.status is None:
            raise ValueError(f"{self.key}: a missing value needs a status saying why")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.row, self.setting, self.metric)


def load_published(table: str) -> pd.DataFrame:
    """The paper's printed numbers for ``table`` (see ``published/README.md`` for the format)."""
    path = PUBLISHED_DIR / f"{table}.csv"
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
    """Status of a reproduced value against a printed one (see module docstring)."""
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


def _git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, text=True, capture_output=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def build_table(table: str, results: Iterable[Result], device: str) -> pd.DataFrame:
    """Join ``results`` with the published rows of ``table``; every published row appears once."""
    published = load_published(table)
    results = list(results)
    by_key: dict[tuple[str, str, str], Result] = {}
    for r in results:
        if r.key in by_key:
            raise ValueError(f"{table}: two results for {r.key}")
        by_key[r.key] = r
    provenance = {"device": device, "torch": torch.__version__, "commit": _git_commit()}
    rows = []
    for p in published.itertuples(index=False):
        r = by_key.pop((p.row, p.setting, p.metric), None)
        pub = float(p.published) if not pd.isna(p.published) else math.nan
        if r is None:
            r = Result(p.row, p.setting, p.metric, None, "analytic", status="not implemented",
                       note="no reproducer addresses this row yet")
        rows.append(_row(table, r, pub, int(p.decimals) if not pd.isna(p.decimals) else 0,
                         p.better, p.unit, provenance))
    for r in by_key.values():  # rows of our own (e.g. proxies, extra configurations)
        rows.append(_row(table, r, math.nan, 0, "", r.unit, provenance))
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(table, r: Result, published, decimals, better, unit, provenance) -> dict:
    value = math.nan if r.value is None else float(r.value)
    delta = value - published
    if r.status is not None:
        status = r.status
    elif math.isnan(published):
        status = "reproduced here"
    else:
        status = status_for(published, value, decimals, r.tolerance, better)
    return {
        "table": table, "row": r.row, "setting": r.setting, "metric": r.metric, "unit": unit,
        "published": published, "reproduced": value, "delta": delta,
        "rel_delta": delta / published if published not in (0.0,) and not math.isnan(published) else math.nan,
        "tolerance": math.nan if r.tolerance is None else r.tolerance,
        "status": status, "note": r.note, "method": r.method, **provenance,
    }


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(value: float, decimals: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.{decimals}f}"


def to_markdown(df: pd.DataFrame, title: str, findings: Sequence[str] = ()) -> str:
    notes: list[str] = []
    body = []
    for r in df.itertuples(index=False):
        marker = ""
        if r.note:
            if r.note not in notes:
                notes.append(r.note)
            marker = f"[{notes.index(r.note) + 1}]"
        decimals = _decimals_of(r.published)
        body.append({
            "row": r.row, "setting": r.setting, "metric": f"{r.metric} ({r.unit})" if r.unit else r.metric,
            "published": _fmt(r.published, decimals), "reproduced": _fmt(r.reproduced, max(decimals, 2)),
            "delta": _fmt(r.delta, max(decimals, 2)),
            "rel": "" if math.isnan(r.rel_delta) else f"{100 * r.rel_delta:+.1f}%",
            "tol": _fmt(r.tolerance, max(decimals, 2)), "status": r.status, "method": r.method, "note": marker,
        })
    first = df.iloc[0] if len(df) else None
    lines = [f"# {title}", ""]
    if first is not None:
        lines += [f"Device: {first.device} · torch {first.torch} · commit {first.commit}", ""]
    lines += [pd.DataFrame(body).to_markdown(index=False, disable_numparse=True), ""]
    if notes:
        lines += ["## Notes", ""] + [f"{i}. {n}" for i, n in enumerate(notes, 1)] + [""]
    if findings:
        lines += ["## Findings", ""] + [f"- {f}" for f in findings] + [""]
    return "\n".join(lines)


def _decimals_of(value: float) -> int:
    if value is None or math.isnan(value):
        return 2
    text = f"{value:.6f}".rstrip("0")
    return max(1, len(text.split(".")[1])) if "." in text else 1


def write_report(
    table: str,
    results: Iterable[Result],
    *,
    out_dir: str | Path = "results",
    name: str | None = None,
    title: str | None = None,
    device: str = "cpu",
    findings: Sequence[str] = (),
) -> pd.DataFrame:
    """Write ``<out_dir>/<name>.csv`` and ``.md`` (``name`` defaults to ``table``) atomically."""
    df = build_table(table, results, device_name(device))
    name = name or table
    out = Path(out_dir)
    _atomic_write(out / f"{name}.csv", df.to_csv(index=False, float_format="%.10g"))
    md = to_markdown(df, title or name, findings)
    _atomic_write(out / f"{name}.md", md)
    return df


def compare_with_committed(new: pd.DataFrame | str | Path, committed: str | Path,
                           rtol: float = 0.0, atol: float = 0.0) -> list[str]:
    """Differences in ``reproduced`` and ``status`` between a fresh run and a committed CSV.

    Provenance columns (device, torch version, commit) are ignored. Returns human-readable lines;
    empty when they agree within ``rtol``/``atol``.
    """
    new_df = new if isinstance(new, pd.DataFrame) else pd.read_csv(new, keep_default_na=False, na_values={"reproduced": [""]})
    old_df = pd.read_csv(committed, keep_default_na=False, na_values={"reproduced": [""]})
    key = ["row", "setting", "metric"]
    merged = old_df.merge(new_df, on=key, how="outer", suffixes=("_old", "_new"), indicator="presence")
    problems = []
    for r in merged.itertuples(index=False):
        label = f"{r.row} / {r.setting} / {r.metric}"
        if r.presence != "both":
            problems.append(f"{label}: only in {'committed' if r.presence == 'left_only' else 'new'} results")
            continue
        old, new_v = float(r.reproduced_old), float(r.reproduced_new)
        if math.isnan(old) != math.isnan(new_v) or (
            not math.isnan(old) and abs(new_v - old) > atol + rtol * abs(old)
        ):
            problems.append(f"{label}: reproduced {new_v!r} != committed {old!r}")
        if r.status_old != r.status_new:
            problems.append(f"{label}: status {r.status_new!r} != committed {r.status_old!r}")
    return problems
