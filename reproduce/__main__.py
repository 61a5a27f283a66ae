"""Index of every table and figure of the paper and the module that reproduces it.

    python -m reproduce            # list
    python -m reproduce.table6     # run one (each module has --help)
    python -m reproduce verify     # check every committed report (reproduce.verify)
"""
from __future__ import annotations

import sys

from .catalogue import entries
from .engine import base


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["verify"]:
        from .verify import main as verify

        return verify(argv[1:])
    base.parser(__doc__, "", report=False).parse_args(argv)
    items = entries()
    width = max(len(e[0]) for e in items)
    for ident, what, module in items:
        print(f"{ident:<{width}}  {'python -m reproduce.' + module:<32}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
