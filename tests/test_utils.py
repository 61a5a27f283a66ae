"""acda.utils: the one home of the argument checks, convolution arithmetic and atomic writes."""
import pytest
import torch
from torch import nn

import acda.utils as acda_utils
from acda.utils import (
    atomic_write,
    check_int,
    check_positive_int,
    conv_output_size,
    is_int,
    pair,
    resolve_padding,
    window_center,
)


def test_is_int_excludes_bool():
    assert is_int(3) and is_int(0) and is_int(-2)
    assert not any(is_int(v) for v in (True, False, 3.0, "3", None))


def test_checks_name_the_argument():
    assert check_positive_int("width", 4) == 4 and check_int("seed", 0, minimum=0) == 0
    with pytest.raises(TypeError, match="width must be an int, got bool"):
        check_positive_int("width", True)
    with pytest.raises(ValueError, match="width must be a positive integer, got 0"):
        check_positive_int("width", 0)
    with pytest.raises(ValueError, match="shift must be <= 3, got 4"):
        check_int("shift", 4, minimum=0, maximum=3)


def test_pair_and_padding_follow_nn_conv2d():
    assert pair(3, "k") == (3, 3) and pair((1, 2), "k") == (1, 2) and pair(0, "p", minimum=0) == (0, 0)
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        pair((1, True), "stride")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        pair(0, "stride")
    assert resolve_padding("same", (5, 3), (1, 1), (2, 1)) == (4, 1)
    assert resolve_padding("valid", (3, 3), (2, 2), (1, 1)) == (0, 0)
    with pytest.raises(ValueError, match="strided"):
        resolve_padding("same", (3, 3), (2, 1), (1, 1))


@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (5, 2, 0, 1), ((3, 5), (2, 1), (1, 2), (2, 1)), (1, 3, 0, 1)])
def test_conv_output_size_is_nn_conv2d(k, s, p, d):
    conv = nn.Conv2d(1, 1, k, s, p, d)
    out = conv(torch.zeros(1, 1, 11, 9)).shape[-2:]
    assert conv_output_size((11, 9), conv.kernel_size, conv.stride, conv.padding, conv.dilation) == tuple(out)


def test_window_center():
    assert window_center((3, 3), (1, 1), (1, 1)) == (0, 0)  # "same" padding: centred on the pixel
    assert window_center((3, 3), (0, 0), (1, 1)) == (1, 1)
    assert window_center((5, 3), (0, 1), (2, 1)) == (4, 0)


def test_atomic_write_text_bytes_and_writer(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write(path, "héllo\n")
    assert path.read_bytes() == "héllo\n".encode()
    atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    atomic_write(tmp_path / "t.pt", lambda tmp: torch.save({"a": 1}, tmp))
    assert torch.load(tmp_path / "t.pt") == {"a": 1}

    def fails(tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fails)
    assert path.read_bytes() == b"\x00\x01"  # the old file is intact, no temporary left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "x.csv"
    target.write_text("old")
    monkeypatch.setattr(acda_utils.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError, match="disk"):
        atomic_write(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_check_choice_names_the_argument_and_the_choices():
    from acda.utils import ArgumentValueError, check_choice

    assert check_choice("mode", "b", ("a", "b")) == "b"
    with pytest.raises(ArgumentValueError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        check_choice("mode", "c", ("a", "b"))


def test_atomic_write_many_renames_only_once_every_file_is_written(tmp_path):
    from acda.utils import atomic_write_many

    a, b = tmp_path / "r.csv", tmp_path / "r.json"
    atomic_write_many({a: "1", b: "1"})
    with pytest.raises(TypeError):
        atomic_write_many({a: "2", b: 2})  # the second cannot be written: nothing is replaced
    assert a.read_text() == b.read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json"]
    atomic_write_many({a: "3", b: b"3"})
    assert a.read_text() == b.read_text() == "3"
