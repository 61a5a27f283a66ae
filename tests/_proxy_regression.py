"""Shared CI check for proxy reproducers: a fresh quick run vs the committed quick CSV.

Tolerance, from the seed spread committed beside each value (rows ``<metric><std_suffix>``): on
the same CPU with one thread the run is bit-identical; on another CPU, float rounding makes
training diverge like a change of seed, so a mean over n seeds moves by about sqrt(2/n)·σ (the
difference of two independent n-seed means) and a sample std by about σ/sqrt(n − 1). We allow
three times that. Rows without a seed spread (e.g. a ratio of means) get ``other_atol``.
"""
import math

import pandas as pd


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values={"reproduced": [""]})


def compare_proxy(new_csv, committed_csv, std_suffix: str, seeds: int,
                  other_atol: dict[str, float] | None = None) -> list[str]:
    new, old = _read(new_csv), _read(committed_csv)
    key = ["row", "setting", "metric"]
    merged = old.merge(new, on=key, how="outer", suffixes=("_old", "_new"), indicator="presence")
    std = {(r.row, r.setting, r.metric[: -len(std_suffix)]): r.reproduced
           for r in old.itertuples() if r.metric.endswith(std_suffix)}
    problems = []
    for r in merged.itertuples():
        label = f"{r.row} / {r.setting} / {r.metric}"
        if r.presence != "both":
            problems.append(f"{label}: only in {'committed' if r.presence == 'left_only' else 'new'} results")
            continue
        if r.status_old != r.status_new:
            problems.append(f"{label}: status {r.status_new!r} != committed {r.status_old!r}")
        a, b = float(r.reproduced_old), float(r.reproduced_new)
        if math.isnan(a) or math.isnan(b):
            if math.isnan(a) != math.isnan(b):
                problems.append(f"{label}: reproduced {b!r} != committed {a!r}")
            continue
        if r.metric.endswith(std_suffix):
            atol = 3 * a / math.sqrt(seeds - 1)
        elif (r.row, r.setting, r.metric) in std:
            atol = 3 * math.sqrt(2 / seeds) * std[(r.row, r.setting, r.metric)]
        else:
            atol = (other_atol or {})[r.metric]
        if abs(a - b) > atol + 1e-9:
            problems.append(f"{label}: reproduced {b:.4f} vs committed {a:.4f}, beyond tolerance {atol:.4f}")
    return problems
