"""Every reproducer, in the paper's order: ``python -m reproduce`` lists them, ``verify`` and the results index
read their declarations (``engine.reproducer.Reproducer``). A new table is a module declaring ``REPRODUCER``,
listed here."""
from __future__ import annotations

import functools
import importlib

from .engine.reproducer import Reproducer

__all__ = ["MODULES", "reproducers", "entries"]

MODULES = ("table1", "table2", "table3", "table4", "table5", "table6", "table7", "tableB", "figure6", "figure7",
           "sec32", "a5")


@functools.cache
def reproducers() -> dict[str, Reproducer]:
    """module name under ``reproduce/`` → its declaration (the module's ``REPRODUCER``)."""
    return {module: importlib.import_module(f"reproduce.{module}").REPRODUCER for module in MODULES}


def entries() -> list[tuple[str, str, str]]:
    """(paper item, what the paper reports, module) for every item, in ``MODULES`` order."""
    return [(ident, what, module) for module, r in reproducers().items() for ident, what in r.items]
