"""The reproducers' shared base (reproduce/base.py) and the layout rule that reproducers never import each other."""
import ast
from pathlib import Path

import pytest
import torch

from reproduce.catalogue import MODULES
from reproduce.engine import base, report
from reproduce.engine.report import Result

REPRODUCE = Path(base.__file__).resolve().parent


def test_parser_adds_only_the_named_shared_options():
    p = base.parser("doc", "tx", {"threads", "quick"})
    args = p.parse_args(["--threads", "2", "--quick", "--out", "/tmp/x"])
    assert args.threads == 2 and args.quick and args.out == "/tmp/x" and not args.allow_dirty
    assert not hasattr(args, "device") and not hasattr(args, "seeds") and not hasattr(args, "data_root")
    assert p.prog == "python -m reproduce.tx"
    assert not hasattr(base.parser("doc", "", report=False).parse_args([]), "out")
    with pytest.raises(ValueError, match="unknown shared options"):
        base.parser("doc", "tx", {"devices"})


def test_parser_overrides_and_seed_forms():
    p = base.parser("doc", "tx", {"device": {"default": "cpu"}, "seeds": {"nargs": "+", "default": None},
                                  "data_root": {"help": "where CIFAR is"}})
    args = p.parse_args(["--seeds", "3", "4", "--data-root", "d"])
    assert args.device == "cpu" and args.seeds == [3, 4] and args.data_root == "d"
    assert base.parser("doc", "tx", {"seeds"}).parse_args([]).seeds == 1


@pytest.mark.parametrize("options,argv,message", [
    ({"threads"}, ["--threads", "0"], "argument --threads: must be >= 1, got 0"),
    ({"seeds"}, ["--seeds", "0"], "argument --seeds: must be >= 1, got 0"),
    ({"jobs"}, ["--jobs", "x"], "argument --jobs: expected an integer, got 'x'"),
    ({"seeds": {"nargs": "+"}}, ["--seeds", "1", "1"], "distinct non-negative"),
    ({"device"}, ["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:i"),
])
def test_parser_rejects_bad_shared_values(options, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        base.parser("doc", "tx", options).parse_args(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_resolve_device(monkeypatch):
    assert base.resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert base.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="--device cuda:1 requested but CUDA is not available"):
        base.resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert base.resolve_device("auto") == torch.device("cuda")
    assert base.resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="only 1 CUDA device"):
        base.resolve_device("cuda:1")


def test_threads_sets_and_restores_also_on_error():
    before = torch.get_num_threads()
    with base.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), base.threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before
    with base.threads(None):
        assert torch.get_num_threads() == before


def test_run_jobs_in_process_keeps_order():
    assert base.run_jobs(pow, [(2, 3), (3, 2), (5, 0)], jobs=1) == [8, 9, 1]
    assert base.run_jobs(pow, [(2, 3)], jobs=4, in_process=True) == [8]


def test_publish_writes_the_report_and_prints_its_markdown(tmp_path, monkeypatch, capsys):
    (tmp_path / "tx.csv").write_text("row,setting,metric,unit,published,decimals,better,note\nA,s,FLOPs,M,10.0,1,,\n")
    monkeypatch.setattr(report, "PUBLISHED_DIR", tmp_path)
    args = base.parser("doc", "tx").parse_args(["--out", str(tmp_path / "out")])
    df = base.publish("tx", [Result("A", "s", "FLOPs", 10.0, "fvcore")], args, name="tx_x", title="Table X")
    assert df.status.tolist() == ["match"]
    printed = capsys.readouterr().out
    assert printed == (tmp_path / "out" / "tx_x.md").read_text(encoding="utf-8") + "\n"
    assert printed.startswith("# Table X")


def test_save_figure_writes_a_png_atomically(tmp_path):
    plt = base.pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    base.save_figure(fig, tmp_path / "sub" / "f.png")
    assert (tmp_path / "sub" / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.png"]  # no temporary file left
    assert not plt.get_fignums()  # closed


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved within ``reproduce``)."""
    package = ".".join(path.relative_to(REPRODUCE.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            where = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, (where, node.module)))
            names.add(module)
            names |= {f"{module}.{a.name}" for a in node.names}
    return names


def test_reproducers_never_import_each_other():
    reproducers = set(MODULES)
    for path in sorted(REPRODUCE.rglob("*.py")):
        own = path.relative_to(REPRODUCE).parts[0].removesuffix(".py")
        imported = {n.split(".")[1] for n in _imports(path) if n.startswith("reproduce.") and n.count(".") >= 1}
        assert not (imported & reproducers) - {own}, f"{path} imports {sorted((imported & reproducers) - {own})}"


def test_training_context_and_main_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert base.training_context("cpu") == ("cpu", print) and base.is_main_process()
    device, log = base.training_context("auto", log=print)
    assert device == ("cuda" if torch.cuda.is_available() else "cpu") and log is print
    monkeypatch.setenv("RANK", "1")  # a second rank (world size 1 here, so no process group is started)
    device, log = base.training_context("cpu")
    assert device == "cpu" and log is not print and log("not printed") is None
    assert not base.is_main_process()
