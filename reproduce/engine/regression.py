"""The one regression rule: a fresh run of a reproducer against its committed results CSV.

One rule per kind of number (``Result.kind``):

- ``exact`` (counted or analytic): every column except provenance equal, text for text, on any machine;
- ``seeded`` (trained; one value per seed in ``samples``): same fingerprint (``reproduce.provenance``):
  bit-identical; other fingerprint: Welch's t-test of the per-seed values, a row failing when
  p < ``FALSE_ALARM`` / k over the table's k seeded rows (Bonferroni); statuses and notes equal;
- ``timing``: never compared across runs; the fresh run must have measured them.

Findings (the JSON) are compared when every row is exact, or when no row is a timing and the
fingerprints are equal. ``compare_files`` also fails when the run ids of the new or of the committed
report's files differ or are missing (``run_id_problems``), and when a recipe's fingerprint differs from
the committed one (``recipe_problems``: a quiet recipe change).

The rule in detail: docs/regression.md, section "reproduce.regression".
"""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pandas as pd

from .report import PROVENANCE, SET_BY_REPRODUCER
from .stats import FALSE_ALARM, detectable_change, welch

__all__ = ["FALSE_ALARM", "welch", "detectable_change", "regress", "compare_files", "run_id_problems",
           "recipe_problems"]


def _read(table: pd.DataFrame | str | Path) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):  # as the report engine writes it, then read back as text
        table = io.StringIO(table.to_csv(index=False, float_format="%.10g"))
    return pd.read_csv(table, dtype=str, keep_default_na=False)


def _same_machine(new: pd.DataFrame, old: pd.DataFrame) -> bool:
    """Both runs carry one and the same fingerprint."""
    return set(new["fingerprint"]) == set(old["fingerprint"]) and old["fingerprint"].nunique() == 1


def _samples(text: str) -> list[float]:
    return [float(v) for v in text.split(";")] if text else []


def regress(new: pd.DataFrame | str | Path, committed: pd.DataFrame | str | Path,
            alpha: float = FALSE_ALARM) -> list[str]:
    """Problems of a fresh results CSV against the committed one (empty: the regression passes)."""
    new_df, old_df = _read(new), _read(committed)
    key = ["row", "setting", "metric"]
    for name, df in (("new", new_df), ("committed", old_df)):
        if df.duplicated(key).any():
            return [f"{name} results have duplicate (row, setting, metric) keys"]
    merged = old_df.merge(new_df, on=key, how="outer", suffixes=("_old", "_new"), indicator="presence")
    same_machine = _same_machine(new_df, old_df)
    compared = [c for c in old_df.columns if c not in key and c not in PROVENANCE]
    if set(compared) != {c for c in new_df.columns if c not in key and c not in PROVENANCE}:
        return [f"columns differ: committed {sorted(old_df.columns)} vs new {sorted(new_df.columns)}"]
    tests = max(1, int(((old_df["kind"] == "seeded") & (old_df["n"].replace("", "0").astype(float) > 1)).sum()))
    problems: list[str] = []
    for r in merged.to_dict("records"):
        label = f"{r['row']} / {r['setting']} / {r['metric']}"
        if r["presence"] != "both":
            problems.append(f"{label}: only in {'committed' if r['presence'] == 'left_only' else 'new'} results")
            continue
        kind = r["kind_old"]
        if r["kind_new"] != kind:
            problems.append(f"{label}: kind {r['kind_new']!r} != committed {kind!r}")
            continue
        if kind == "exact" or (kind == "seeded" and same_machine):
            columns = compared
        else:
            columns = ["table", "unit", "published", "note", "method", "kind"]
            if r["status_old"] in SET_BY_REPRODUCER or r["status_new"] in SET_BY_REPRODUCER:
                columns.append("status")
        for column in columns:
            if r[f"{column}_old"] != r[f"{column}_new"]:
                problems.append(f"{label}: {column} {r[f'{column}_new']!r} != committed {r[f'{column}_old']!r}"
                                + (" (same fingerprint: a seeded row must be bit-identical)"
                                   if kind == "seeded" and column in ("samples", "reproduced") else ""))
        if kind == "seeded" and not same_machine:
            problems += _welch_problem(label, _samples(r["samples_old"]), _samples(r["samples_new"]), alpha / tests)
        elif kind == "timing" and r["reproduced_old"] != "":
            value = float(r["reproduced_new"]) if r["reproduced_new"] else math.nan
            if not (math.isfinite(value) and value > 0):
                problems.append(f"{label}: timing not measured (reproduced {r['reproduced_new']!r})")
    return problems


def _welch_problem(label: str, old: list[float], new: list[float], level: float) -> list[str]:
    if not old and not new:
        return []
    if len(old) < 2 or len(new) < 2:
        return [f"{label}: {len(old)} committed and {len(new)} new seed(s): at least 2 each are needed to "
                "compare across machines"]
    p = welch(old, new)
    if p >= level:
        return []
    mean_old, mean_new = sum(old) / len(old), sum(new) / len(new)
    return [f"{label}: mean over {len(new)} seeds {mean_new:.6g} vs committed {mean_old:.6g} over {len(old)}: "
            f"Welch p = {p:.2g} < {level:.2g} (false-alarm rate {FALSE_ALARM:g} over the table's seeded rows)"]


def run_id_problems(directory: str | Path, name: str) -> list[str]:
    """Problems of ``<directory>/<name>.{csv,json,md}`` as one report: each file present and carrying one
    run id, the same in all three (empty: consistent)."""
    directory = Path(directory)
    ids: dict[Path, str | None] = {}
    problems = []
    for suffix in (".csv", ".json", ".md"):
        path = directory / f"{name}{suffix}"
        if not path.is_file():
            problems.append(f"{path}: missing (a report is {name}.csv, .json and .md)")
            continue
        text = path.read_text(encoding="utf-8")
        if suffix == ".csv":
            values = set(_read(io.StringIO(text)).get("run_id", pd.Series([], dtype=str)))
            if len(values) > 1:
                problems.append(f"{path}: {len(values)} run ids {sorted(values)} in one file")
            ids[path] = values.pop() if len(values) == 1 else None
        elif suffix == ".json":
            ids[path] = json.loads(text).get("run_id")
        else:
            found = re.search(r"^Device: .* · run ([0-9a-f]+)$", text, re.MULTILINE)
            ids[path] = found.group(1) if found else None
    lacking = [str(p) for p, v in ids.items() if not v]
    if lacking:
        problems.append(f"no run id in {', '.join(lacking)}: written before run ids were recorded, or not by "
                        "reproduce.report.write_report; rerun the reproducer")
    present = {p: v for p, v in ids.items() if v}
    if len(set(present.values())) > 1:
        problems.append("run ids differ: " + ", ".join(f"{p} has {v}" for p, v in present.items())
                        + ": the files come from different runs (a run interrupted while writing them?); rerun "
                          "the reproducer")
    return problems


def recipe_problems(new: dict, committed: dict) -> list[str]:
    """A recipe added, removed or changed (its fingerprint) against the committed report: its numbers are then
    not comparable and the report must be regenerated."""
    problems = [f"recipe {label!r} {'is new' if label not in committed else 'is not in this run'}"
                for label in sorted(set(new) ^ set(committed))]
    for label in sorted(set(new) & set(committed)):
        a, b = new[label], committed[label]
        if a["fingerprint"] != b["fingerprint"]:
            changed = sorted(k for k in a["fields"].keys() | b["fields"].keys()
                             if a["fields"].get(k) != b["fields"].get(k))
            problems.append(f"recipe {label!r} changed (fingerprint {a['fingerprint']} != committed "
                            f"{b['fingerprint']}; fields {', '.join(changed) or 'none'}): regenerate the report")
    return problems


def compare_files(new_dir: str | Path, committed_dir: str | Path, name: str) -> list[str]:
    """``regress`` on ``<name>.csv`` plus the findings rule on ``<name>.json`` (module docstring), after
    ``run_id_problems`` of both reports."""
    new_dir, committed_dir = Path(new_dir), Path(committed_dir)
    problems = run_id_problems(new_dir, name) + run_id_problems(committed_dir, name)
    problems += regress(new_dir / f"{name}.csv", committed_dir / f"{name}.csv")
    new_df, old_df = _read(new_dir / f"{name}.csv"), _read(committed_dir / f"{name}.csv")
    new_meta = json.loads((new_dir / f"{name}.json").read_text(encoding="utf-8"))
    old_meta = json.loads((committed_dir / f"{name}.json").read_text(encoding="utf-8"))
    if new_meta["title"] != old_meta["title"]:
        problems.append(f"title {new_meta['title']!r} != committed {old_meta['title']!r}")
    problems += recipe_problems(new_meta.get("recipes", {}), old_meta.get("recipes", {}))
    kinds = set(old_df["kind"])
    if kinds == {"exact"} or ("timing" not in kinds and _same_machine(new_df, old_df)):
        for i, (a, b) in enumerate(zip(new_meta["findings"], old_meta["findings"], strict=False)):
            if a != b:
                problems.append(f"finding {i + 1}: {a!r} != committed {b!r}")
        if len(new_meta["findings"]) != len(old_meta["findings"]):
            problems.append(f"{len(new_meta['findings'])} findings != committed {len(old_meta['findings'])}")
    return problems
