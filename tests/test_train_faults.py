"""Faults injected into fit's files and inputs (acda/train/): each is refused with a clear error
naming the file, repaired on the next start, or warned about."""
import shutil

import pytest
import torch
from test_train_tasks import build, counting_data, restoration_data, task_config

from acda.train import CheckpointError, DensityCounting, Restoration, fit, load_checkpoint
from acda.train.checkpoint import payload_digest

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(out_dir, epochs=2, data=None, **kw):
    train, val = data or counting_data(8, 3)
    return fit(build("counting"), train, val, task_config("counting", out_dir, epochs=epochs, **kw),
               task=DensityCounting())


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2-epoch counting run's directory (copied by tests that damage it)."""
    out = tmp_path_factory.mktemp("finished")
    torch.set_num_threads(1)
    _run(out)
    return out


def _copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def _flip_a_weight_byte(path):
    weight = load_checkpoint(path)["model"]["0.weight"]
    data = bytearray(path.read_bytes())
    at = data.find(weight.numpy().tobytes())
    assert at > 0 and data.find(weight.numpy().tobytes(), at + 1) < 0  # stored once: the bytes of that weight
    data[at + 37] ^= 0x10
    path.write_bytes(bytes(data))


def _garbage(path):
    path.write_bytes(bytes(range(256)) * 4)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _foreign(path):
    torch.save({"a": 1}, path)


def _directory(path):
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage,match", [
    (_flip_a_weight_byte, "checksum mismatch"), (_garbage, "cannot be read"),
    (_truncate, "cannot be read"), (_foreign, "not a checkpoint written by acda.train"),
    (_directory, "not a regular file"),
])
def test_damaged_checkpoint_is_refused_naming_the_file(finished, tmp_path, damage, match):
    out = _copy(finished, tmp_path)
    damage(out / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=match) as err:
        load_checkpoint(out / "checkpoint.pt")
    assert str(out / "checkpoint.pt") in str(err.value)
    with pytest.raises(CheckpointError) as err:  # resume refuses it instead of starting afresh or crashing
        _run(out, resume=True)
    assert str(out / "checkpoint.pt") in str(err.value)


def test_checksum_covers_every_stored_weight(finished, tmp_path):
    out = _copy(finished, tmp_path)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["format"] == 2 and ckpt["checksum"] == payload_digest(ckpt)
    ckpt["model"]["2.bias"][0] = torch.nextafter(ckpt["model"]["2.bias"][0], torch.tensor(1.0))  # one ulp
    torch.save(ckpt, out / "checkpoint.pt")  # a valid torch file with a stale checksum
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(out / "checkpoint.pt")


def test_directory_in_place_of_checkpoint_fails_before_training(tmp_path):
    (tmp_path / "checkpoint.pt").mkdir()
    epochs = []
    with pytest.raises(CheckpointError, match="not a regular file") as err:
        fit(build("counting"), *counting_data(4, 1), task_config("counting", tmp_path),
            task=DensityCounting(), on_epoch_end=lambda e, r: epochs.append(e))
    assert str(tmp_path / "checkpoint.pt") in str(err.value) and not epochs


@pytest.mark.parametrize("cut", ["last row", "whole file"])
def test_lost_metrics_rows_are_restored_on_resume(finished, tmp_path, cut):
    """A SIGKILL between the checkpoint and metrics.csv writes of the last epoch: the row comes back."""
    out = _copy(finished, tmp_path)
    log = out / "metrics.csv"
    full = log.read_text()
    if cut == "last row":
        log.write_text("".join(full.splitlines(keepends=True)[:-1]))
    else:
        log.unlink()
    _run(out, resume=True)  # same epochs: nothing to train, the log is rebuilt from the checkpoint
    assert log.read_text() == full


def test_stale_temporary_files_are_removed_on_the_next_start(finished, tmp_path):
    out = _copy(finished, tmp_path)
    ours = [".checkpoint.pt.k2j_x9a1.tmp", ".metrics.csv.abc.tmp", ".best.pt.q0w9e8r7.tmp"]
    others = [".other.pt.abc.tmp", "checkpoint.pt.abc.tmp", ".checkpoint.pt.tmp", "notes.tmp"]
    for name in ours + others:
        (out / name).write_bytes(b"half a file")
    with pytest.warns(UserWarning, match="interrupted"):
        _run(out, epochs=3, resume=True)
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == sorted(others)


def test_resume_refuses_another_training_set_and_warns_on_threads(finished, tmp_path):
    out = _copy(finished, tmp_path)
    train, val = counting_data(8, 3)
    other_train, _ = counting_data(8, 3, seed=1)
    with pytest.raises(ValueError, match=r"the train set \(8 samples, tensors .*\) differs from the checkpoint's"):
        _run(out, epochs=3, resume=True, data=(other_train, val))
    _, other_val = counting_data(8, 5)
    with pytest.warns(UserWarning, match="val set"):
        _run(tmp_path / "copy2", epochs=2, data=(train, val))
        _run(tmp_path / "copy2", epochs=2, resume=True, data=(train, other_val))
    torch.set_num_threads(2)
    try:
        with pytest.warns(UserWarning, match="2 torch threads.*written with 1.*not be bit-identical"):
            _run(out, epochs=3, resume=True, data=(train, val))
    finally:
        torch.set_num_threads(1)


def test_resume_refuses_another_task_or_optimizer(finished, tmp_path):
    out = _copy(finished, tmp_path)
    with pytest.raises(ValueError, match="task"):
        fit(build("counting"), *counting_data(8, 3), task_config("counting", out, epochs=3, resume=True),
            task=DensityCounting(criterion="l1"))
    with pytest.raises(ValueError, match="config.optimizer"):
        _run(out, epochs=3, resume=True, optimizer="adamw")


def test_format1_checkpoint_loads_with_a_warning_and_resumes(tmp_path):
    """A checkpoint from before checksums, fingerprints and tasks (SGD classification defaults)."""
    train, val = restoration_data(8, 3)
    cfg = task_config("restoration", tmp_path, epochs=1)
    fit(build("restoration"), train, val, cfg, task=Restoration())
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    for key in ("checksum", "data", "threads", "best", "kind"):
        del ckpt[key]
    ckpt["format"] = 1
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.warns(UserWarning, match="before checksums"):
        assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    with pytest.warns(UserWarning, match="no data fingerprint"), pytest.warns(UserWarning, match="before checksums"):
        got = fit(build("restoration"), train, val, task_config("restoration", tmp_path, epochs=2, resume=True),
                  task=Restoration())
    assert got["epoch"] == 2 and load_checkpoint(tmp_path / "checkpoint.pt")["format"] == 2


def test_fresh_run_without_val_set_removes_an_old_best(finished, tmp_path):
    out = _copy(finished, tmp_path)
    assert (out / "best.pt").is_file()
    train, _ = counting_data(8, 3)
    fit(build("counting"), train, None, task_config("counting", out, epochs=1), task=DensityCounting())
    assert not (out / "best.pt").exists() and load_checkpoint(out / "checkpoint.pt")["best"] is None


def test_fingerprint_of_an_image_folder_covers_files_and_labels_not_the_root(tmp_path):
    from PIL import Image

    from acda.data.imagenet import imagenet
    from acda.train import data_fingerprint

    for wnid in ("n01", "n02"):
        (tmp_path / "a" / "train" / wnid).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "a" / "train" / wnid / f"{wnid}_0.JPEG")
    first = data_fingerprint(imagenet(tmp_path / "a", "train"))
    assert first["covers"] == "file list and labels" and first["len"] == 2
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert data_fingerprint(imagenet(tmp_path / "b", "train")) == first  # moved: same data
    (tmp_path / "b" / "train" / "n02" / "n02_0.JPEG").rename(tmp_path / "b" / "train" / "n02" / "n02_1.JPEG")
    assert data_fingerprint(imagenet(tmp_path / "b", "train"))["sha256"] != first["sha256"]


def test_checkpoint_with_an_impossible_epoch_is_refused(tmp_path):
    """A checksum-valid checkpoint whose epoch is not the count of its history rows (e.g. -1) is refused, named."""
    import dataclasses

    from torch.utils.data import TensorDataset

    from acda.train import TrainConfig
    from acda.train.checkpoint import save_checkpoint
    from acda.train.loop import CHECKPOINT

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(8, 3), torch.randint(0, 2, (8,)))
    config = TrainConfig(epochs=2, lr=0.1, batch_size=4, out_dir=str(tmp_path), progress=False)
    fit(torch.nn.Linear(3, 2), data, None, config)
    ckpt = load_checkpoint(tmp_path / CHECKPOINT)
    for epoch in (-1, 0, 3, 1.0):
        save_checkpoint({**ckpt, "epoch": epoch}, tmp_path / CHECKPOINT)
        with pytest.raises(CheckpointError, match=rf"{CHECKPOINT}.*records epoch {epoch!r} and 2 epochs"):
            fit(torch.nn.Linear(3, 2), data, None, dataclasses.replace(config, resume=True, epochs=4))


def test_failed_checkpoint_write_names_the_file(tmp_path, monkeypatch):
    from acda.train import checkpoint as ckpt_module

    def full_disk(obj, f):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_module.torch, "save", full_disk)
    target = tmp_path / "checkpoint.pt"
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt.*could not be written \(OSError: .*No space left"):
        ckpt_module.save_checkpoint({"epoch": 1}, target)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_atomic_write_gives_the_mode_open_would(tmp_path):
    import os
    import stat

    from acda.utils import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", "x")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
        os.chmod(tmp_path / "a.txt", 0o600)
        atomic_write(tmp_path / "a.txt", "y")  # replacing keeps the file's mode
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o600
        os.umask(0o077)
        atomic_write(tmp_path / "b.txt", b"z")
        assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_nan_in_validation_data_is_refused_naming_the_sample():
    from torch.utils.data import TensorDataset

    from acda.train import TrainConfig, evaluate

    torch.manual_seed(0)
    x = torch.randn(6, 3)
    x[4, 1] = float("nan")
    val = TensorDataset(x, torch.randint(0, 2, (6,)))
    config = TrainConfig(epochs=1, lr=0.1, batch_size=2, eval_batch_size=4, progress=False)
    with pytest.raises(RuntimeError, match=r"non-finite validation loss nan: validation samples \[4\] contain NaN"):
        evaluate(torch.nn.Linear(3, 2), val, config)
    train = TensorDataset(torch.randn(4, 3), torch.randint(0, 2, (4,)))
    with pytest.raises(RuntimeError, match=r"validation samples \[4\]"):
        fit(torch.nn.Linear(3, 2), train, val, config)
