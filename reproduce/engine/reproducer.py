"""A paper table or figure as a declaration, and the one runner that consumes it.

A reproducer module declares ``REPRODUCER = Reproducer(...)``: the paper items it covers, its command line
(shared options by name plus its own), the function that builds its reports from the parsed arguments, and what
``python -m reproduce verify`` may recompute from a committed report (recipes, findings, counted rows). ``run``
does the rest the same way for every table: parse, threads, a dataset-layout error as exit status 2 naming the
layout, only rank 0 writes under ``torchrun``, publish each report and draw its figures, exit 1 on a NaN.
Adding a table is adding such a declaration and listing its module in ``reproduce.catalogue``.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acda.data import DatasetLayoutError

from . import base
from .report import Result

__all__ = ["Report", "Reproducer", "run"]


@dataclass(frozen=True)
class Report:
    """One report of a run: ``<out>/<name>.{csv,json,md}``, then each of ``figures`` called with ``<out>``."""

    name: str
    title: str
    results: Sequence[Result]
    findings: Sequence[str] = ()
    recipes: Mapping[str, Any] | None = None
    device: str = "cpu"
    figures: Sequence[Callable[[Path], None]] = ()


@dataclass(frozen=True)
class Reproducer:
    """What ``python -m reproduce.<table>`` reports and how (module docstring).

    Args:
        table: the published CSV (``reproduce/published/<table>.csv``) and the report family's name.
        items: (paper item, what it reports) for each item the module reproduces, e.g. ("T2", "ImageNet …").
        doc: the command's description (the module docstring).
        options: the shared options of ``base.OPTIONS`` it takes, each with argparse overrides.
        build: ``build(args, parser, **overrides)`` → the reports to write (none on a rank other than 0);
            it may call ``parser.error``; ``overrides`` are the tests' changes to a proxy recipe.
        arguments: adds the reproducer's own options to the parser.
        recipes: ``recipes(quick)`` → {label: recipe} its committed reports were trained with.
        report_findings: ``report_findings(rows, quick)`` → the findings a report's rows give.
        counted_rows: ``counted_rows()`` → the rows counted without data, recomputed by ``verify``.
        counted_reports: report name → a function giving that whole report's rows and findings (counted only).
    """

    table: str
    items: Sequence[tuple[str, str]]
    doc: str | None
    options: Mapping[str, Mapping[str, Any]]
    build: Callable[..., Sequence[Report]]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    recipes: Callable[[bool], Mapping[str, Any]] | None = None
    report_findings: Callable[[Any, bool], list[str]] | None = None
    counted_rows: Callable[[], list[Result]] | None = None
    counted_reports: Mapping[str, Callable[[], tuple[list[Result], list[str]]]] = field(default_factory=dict)

    def parser(self) -> base.Parser:
        """The command line: the shared options, then the reproducer's own."""
        parser = base.parser(self.doc, self.table, self.options)
        if self.arguments is not None:
            self.arguments(parser)
        return parser

    def main(self, argv: list[str] | None = None, **overrides: Any) -> int:
        """``python -m reproduce.<table>``: ``run(self, argv, **overrides)``."""
        return run(self, argv, **overrides)


def run(reproducer: Reproducer, argv: list[str] | None = None, **overrides: Any) -> int:
    """Parse ``argv``, build the reports (under ``--threads``), write each and draw its figures. Exit status: 2
    on a dataset-layout error (the message names the layout), 1 when a written value is NaN, else 0."""
    parser = reproducer.parser()
    args = parser.parse_args(argv)
    with base.threads(getattr(args, "threads", None)):
        try:
            reports = reproducer.build(args, parser, **overrides)
        except DatasetLayoutError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if not reports or not base.is_main_process():  # torchrun: only rank 0 writes
            return 0
        for report in reports:
            base.publish(reproducer.table, report.results, args, name=report.name, title=report.title,
                         device=report.device, findings=report.findings, recipes=report.recipes)
            for figure in report.figures:
                figure(Path(args.out))
    nan = any(r.value is not None and math.isnan(r.value) for report in reports for r in report.results)
    return 1 if nan else 0
