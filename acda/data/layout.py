"""One clear error for a missing or malformed dataset root, naming the layout expected."""
from __future__ import annotations

import warnings
from pathlib import Path

__all__ = ["DatasetLayoutError", "require_dir", "require_file", "one_line", "check_count"]


class DatasetLayoutError(ValueError):
    """A dataset root is missing or does not have the expected layout.

    The message says what was wrong, under which root, and the full layout expected, so that a
    command line can print it instead of a stack trace.
    """

    def __init__(self, dataset: str, root: str | Path, problem: str, layout: str) -> None:
        self.dataset, self.root, self.problem, self.layout = dataset, str(root), problem, layout
        super().__init__(f"{dataset}: {problem} (data root {str(root)!r}).\nExpected layout:\n{layout}")


def require_dir(path: Path, dataset: str, root: str | Path, layout: str) -> Path:
    if not path.is_dir():
        raise DatasetLayoutError(dataset, root, f"missing directory {str(path)!r}", layout)
    return path


def require_file(path: Path, dataset: str, root: str | Path, layout: str) -> Path:
    if not path.is_file():
        raise DatasetLayoutError(dataset, root, f"missing file {str(path)!r}", layout)
    return path


def one_line(layout: str) -> str:
    """A multi-line layout description on one line (each line's runs of spaces collapsed, lines joined by
    "; "), for a report's note."""
    return "; ".join(" ".join(line.split()) for line in layout.splitlines())


def check_count(dataset: str, where: str | Path, found: int, documented: int, what: str = "images") -> None:
    """Warn, with both numbers, when a split holds a count other than its release documents (a partial
    download is common); the data is still used."""
    if found != documented:
        warnings.warn(f"{dataset}: {str(where)!r} holds {found} {what}; the release has {documented}: a partial "
                      "download?", stacklevel=3)
