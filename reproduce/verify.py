"""Verify the committed results without re-running any training: ``python -m reproduce verify``.

For every report in ``results/`` (a CSV + JSON + Markdown written by ``write_report``): the three files
carry one run id and it is the hash of their content (a hand edit of a value, a note or a finding breaks
it); the Markdown is the rendering of the CSV and JSON; every row's arithmetic holds (a seeded row's mean,
std and n from its samples, delta, status from the printed number, decimals and tolerance); the
published column equals ``reproduce/published/`` and each published CSV its checksum in
``published/SHA256SUMS`` (a typo fix is a deliberate, visible change); and each recorded recipe's
fingerprint equals the one its reproducer uses now (a recipe changed without regenerating fails, naming
the fields); and where the reproducer can recompute them in seconds (its ``report_findings(rows, quick)`` and
``counted_rows()``; Tables 2 and 6's ``build_results``), the findings equal those its rows give and every counted
row equals a fresh count.
Exits 1 with one line per problem.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import statistics
import sys
from pathlib import Path

from .catalogue import reproducers
from .engine import base
from .engine.regression import recipe_problems, run_id_problems
from .engine.report import (
    PUBLISHED_DIR,
    SET_BY_REPRODUCER,
    load_published,
    read_results,
    recipe_record,
    render,
    run_id,
    status_for,
)
from .engine.reproducer import Reproducer

__all__ = ["CHECKSUMS", "verify", "checksums", "findings_problems", "counted_problems", "main"]

RESULTS = Path(__file__).resolve().parent.parent / "results"
CHECKSUMS = "SHA256SUMS"


def checksums(published: Path = PUBLISHED_DIR) -> str:
    """The ``SHA256SUMS`` text of the published CSVs (``sha256sum`` format, sorted by name)."""
    return "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
                   for p in sorted(published.glob("*.csv")))


def _content_id(directory: Path, name: str) -> str:
    """The run id the report's content hashes to (CSV with its run ids blanked, JSON without its run id)."""
    csv = (directory / f"{name}.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header, rows = csv[0], csv[1:]
    if not header.rstrip("\r\n").endswith(",run_id"):
        raise ValueError("the CSV's last column is not run_id")
    blank = "".join(line[:line.rstrip("\r\n").rfind(",") + 1] + line[len(line.rstrip("\r\n")):] for line in rows)
    meta = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
    meta.pop("run_id", None)
    return run_id(header + blank, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")


def _row_problems(r, published: dict) -> list[str]:
    where = f"{r.row} / {r.setting} / {r.metric}"
    out = []
    samples = [float(v) for v in r.samples.split(";")] if r.samples else []
    if r.kind == "seeded":
        if not math.isclose(r.reproduced, statistics.fmean(samples), rel_tol=1e-9, abs_tol=1e-12):  # 10 digits
            out.append(f"{where}: reproduced {r.reproduced!r} is not the mean of its samples")
        if len(samples) > 1 and not math.isclose(r.std, statistics.stdev(samples), rel_tol=1e-6, abs_tol=1e-12):
            out.append(f"{where}: std {r.std!r} is not the std of its samples")
        if r.n != len(samples):
            out.append(f"{where}: n {r.n!r} but {len(samples)} samples")
    key = (r.row, r.setting, r.metric)
    pub = published.get(key)
    if pub is None:
        if not math.isnan(r.published):
            out.append(f"{where}: published {r.published!r} but the row is not in reproduce/published/")
        return out
    value = float(pub["published"]) if not math.isnan(pub["published"]) else math.nan
    if not (value == r.published or (math.isnan(value) and math.isnan(r.published))):
        out.append(f"{where}: published {r.published!r} != reproduce/published/ {value!r}")
    if r.status == "proxy":
        if not math.isnan(r.delta):
            out.append(f"{where}: a proxy row has a delta against the paper")
    elif not math.isnan(value) and not math.isnan(r.reproduced):
        written = 1e-9 * (abs(r.reproduced) + abs(value)) + 1e-12  # the CSV holds 10 significant digits
        if not math.isclose(r.delta, r.reproduced - value, rel_tol=0, abs_tol=written):
            out.append(f"{where}: delta {r.delta!r} != reproduced − published")
        if r.status not in SET_BY_REPRODUCER:
            tol = None if math.isnan(r.tolerance) else r.tolerance
            decimals = 0 if math.isnan(pub["decimals"]) else int(pub["decimals"])
            want = status_for(value, r.reproduced, decimals, tol, pub["better"])
            if r.status != want:
                out.append(f"{where}: status {r.status!r}, the numbers give {want!r}")
    return out


def verify(results: Path = RESULTS, published_dir: Path = PUBLISHED_DIR) -> list[str]:
    """Every problem of the committed reports under ``results`` (module docstring), one line each."""
    problems = []
    sums = published_dir / CHECKSUMS
    if not sums.is_file() or sums.read_text(encoding="utf-8") != checksums(published_dir):
        problems.append(f"{sums}: the published CSVs differ from their checksums (a deliberate change: "
                        "`python -m reproduce verify --update-checksums`)")
    for json_path in sorted(results.glob("*.json")):
        name = json_path.stem
        problems += [f"{name}: {p}" for p in run_id_problems(results, name)]
        if not (results / f"{name}.csv").is_file():
            continue
        try:
            if _content_id(results, name) != json.loads(json_path.read_text(encoding="utf-8")).get("run_id"):
                problems.append(f"{name}: the run id is not the hash of the report's content (edited by hand?)")
            if render(name, results) != (results / f"{name}.md").read_text(encoding="utf-8"):
                problems.append(f"{name}: the Markdown is not the rendering of the CSV and JSON")
        except (OSError, ValueError, KeyError) as e:
            problems.append(f"{name}: unreadable ({type(e).__name__}: {e})")
            continue
        df = read_results(results / f"{name}.csv")
        table = df["table"].iloc[0] if len(df) else name
        pub_path = published_dir / f"{table}.csv"
        published = ({(p.row, p.setting, p.metric): p._asdict()
                      for p in load_published(table, published_dir).itertuples(index=False)}
                     if pub_path.is_file() else {})
        for r in df.itertuples(index=False):
            problems += [f"{name}: {p}" for p in _row_problems(r, published)]
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        reproducer = reproducers().get(name.removesuffix("_quick")) or reproducers().get(table)
        if reproducer is not None:
            problems += [f"{name}: {p}" for p in _declared_problems(reproducer, name, df, meta)]
    return problems


def _declared_problems(reproducer: Reproducer, name: str, df, meta: dict) -> list[str]:
    """What the reproducer's declaration recomputes for report ``name``: the whole counted report, the recipes'
    fingerprints, the findings, the counted rows."""
    out, quick = [], name.endswith("_quick")
    if name in reproducer.counted_reports:
        rows, found = _counted_report(reproducer.table, name)
        out += counted_problems(rows, df) + findings_problems(found, meta["findings"])
    if name.removesuffix("_quick") != reproducer.table:  # a variant (a5_imagenet, …) has no recipes or findings to recompute
        return out
    if reproducer.recipes is not None:
        current = {label: recipe_record(rec) for label, rec in reproducer.recipes(quick).items()}
        out += recipe_problems(current, meta.get("recipes", {}))
    if reproducer.report_findings is not None:
        try:
            out += findings_problems(reproducer.report_findings(df, quick), meta["findings"])
        except (KeyError, ValueError, IndexError) as e:  # a row a finding cites is missing or malformed
            out.append(f"the findings cannot be recomputed from the rows ({type(e).__name__}: {e})")
    if reproducer.counted_rows is not None:
        out += counted_problems(_counted_rows(reproducer.table), df)
    return out


@functools.cache
def _counted_report(table: str, name: str) -> tuple[list, list[str]]:
    """A counted report's rows and findings, computed once per process (they depend on the code only)."""
    return reproducers()[table].counted_reports[name]()


@functools.cache
def _counted_rows(table: str) -> list:
    return reproducers()[table].counted_rows()


def findings_problems(want: list[str], have: list[str]) -> list[str]:
    """The findings a report holds (``have``) against those its rows give (``want``), one line per difference."""
    out = [f"finding {i + 1} is not what its rows give: {h[:120]!r} (the rows give {w[:120]!r})"
           for i, (w, h) in enumerate(zip(want, have)) if w != h]
    if len(want) != len(have):
        out.append(f"{len(have)} findings, the rows give {len(want)}")
    return out


def counted_problems(fresh: list, df) -> list[str]:
    """Each freshly counted row (``Result``) against the report's row of the same key: value (to the 10
    significant digits a CSV holds), status where the reproducer sets one, and note."""
    rows = {(r.row, r.setting, r.metric): r for r in df.itertuples(index=False)}
    out = []
    for r in fresh:
        where, got = " / ".join(r.key), rows.get(r.key)
        if got is None:
            out.append(f"{where}: counted now but not in the report")
            continue
        value = math.nan if r.value is None else float(f"{r.value:.10g}")
        if not (value == got.reproduced or (math.isnan(value) and math.isnan(got.reproduced))):
            out.append(f"{where}: the report says {got.reproduced!r}, counted now {value!r}")
        elif (r.status or got.status) != got.status or not got.note.endswith(r.note):  # the paper's note leads
            out.append(f"{where}: status or note differ from a fresh count")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base.parser(__doc__, "verify", report=False)
    parser.add_argument("--results", default=str(RESULTS), help="the reports' folder (default: results/)")
    parser.add_argument("--update-checksums", action="store_true",
                        help="rewrite reproduce/published/SHA256SUMS after a deliberate change of a published CSV")
    args = parser.parse_args(argv)
    if args.update_checksums:
        (PUBLISHED_DIR / CHECKSUMS).write_text(checksums(), encoding="utf-8")
    problems = verify(Path(args.results))
    for p in problems:
        print(p)
    print(f"verify: {len(problems)} problem(s) in {len(list(Path(args.results).glob('*.json')))} reports",
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
