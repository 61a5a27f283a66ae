"""Command-line pieces every reproducer shares."""
from __future__ import annotations

import argparse

__all__ = ["add_output_arguments"]


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out`` (where the CSV, JSON and Markdown go) and ``--allow-dirty``."""
    parser.add_argument("--out", default="results", help="output directory (default: results/)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="write the repository's results/ from a tree with uncommitted changes (refused "
                             "otherwise; the commit column then says '<sha>-dirty')")
