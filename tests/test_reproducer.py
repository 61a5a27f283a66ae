"""The declarations of every paper item and the one runner that consumes them."""
import math
from pathlib import Path

import pytest

from acda.data import DatasetLayoutError
from reproduce.catalogue import MODULES, entries, reproducers
from reproduce.engine.report import PUBLISHED_DIR, Result
from reproduce.engine.reproducer import Report, Reproducer, run


def test_every_module_declares_its_reproducer():
    for module, r in reproducers().items():
        assert r.table == module and (PUBLISHED_DIR / f"{module}.csv").is_file()
        assert r.items and all(ident and what for ident, what in r.items)
    assert [m for _, _, m in entries()].count("table2") == 2  # Table 2 and Appendix A.4's architectures
    assert {m for _, _, m in entries()} == set(MODULES)


def _declaration(build, **kwargs) -> Reproducer:
    return Reproducer("table6", [("T6", "test")], "a test table", {"threads": {}}, build, **kwargs)


def _report(value: float) -> list[Report]:
    return [Report("table6_test", "a test", [Result("Conv", "s", "Params", value, "counted")])]


def test_run_writes_each_report_and_its_figures(tmp_path):
    drawn = []
    reports = [Report(f"table6_{k}", "a test", [Result("Conv", "s", "Params", 1.0, "counted")],
                      figures=[lambda out, k=k: drawn.append((k, out))]) for k in ("a", "b")]
    assert run(_declaration(lambda args, parser: reports), ["--out", str(tmp_path), "--allow-dirty"]) == 0
    assert all((tmp_path / f"table6_{k}.{ext}").is_file() for k in "ab" for ext in ("csv", "json", "md"))
    assert drawn == [("a", Path(tmp_path)), ("b", Path(tmp_path))]


def test_run_exit_status(tmp_path, monkeypatch, capsys):
    argv = ["--out", str(tmp_path), "--allow-dirty", "--threads", "1"]
    assert run(_declaration(lambda args, parser: _report(math.nan)), argv) == 1

    def missing(args, parser):
        raise DatasetLayoutError("CIFAR-10", tmp_path, "no cifar-10-batches-py", "cifar-10-batches-py/data_batch_1")
    assert run(_declaration(missing), argv) == 2
    assert "no cifar-10-batches-py" in capsys.readouterr().err

    monkeypatch.setenv("RANK", "1")  # torchrun: only rank 0 writes
    assert run(_declaration(lambda args, parser: _report(2.0)), ["--out", str(tmp_path / "r1"), "--allow-dirty"]) == 0
    assert not (tmp_path / "r1").exists()


def test_build_receives_the_parser_and_the_overrides(tmp_path):
    seen = {}

    def build(args, parser, **overrides):
        seen.update(overrides, threads=args.threads)
        with pytest.raises(SystemExit):
            parser.error("refused")
        return []
    assert _declaration(build).main(["--threads", "2"], epochs=3) == 0
    assert seen == {"epochs": 3, "threads": 2}
