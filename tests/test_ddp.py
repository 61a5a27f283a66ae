"""The trainer's distributed path on CPU: torchrun, 2 processes, Gloo (acda/train/), for every task.

What is compared with a 1-process run of the same recipe: the 2-process run splits each global
batch into two halves that together are exactly the 1-process batch (same ``DistributedSampler``
permutation for the same seed and epoch), and DDP averages the two half-batch gradients, which
equals the full-batch mean. The models have no BatchNorm and the data no random augmentation, so
the final weights agree up to float rounding (checked with allclose). The validation metrics are
counted over an odd number of samples (33 and 9), each evaluated once, not padded to an even
number; evaluating the 2-process weights in one process gives exactly the 2-process metrics
(per-sample values summed in sample order, whatever the number of processes). One launch runs all
tasks, and an early stop requested by one rank only, which must stop both.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_train_tasks import Residual, counting_data, counting_model, restoration_data

from acda.data import TensorImageDataset
from acda.models import get_model
from acda.train import Classification, DensityCounting, Restoration, TrainConfig, evaluate, fit, load_checkpoint

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")
N_TRAIN, N_VAL, N_VAL_DENSE = 64, 33, 9

WORKER = textwrap.dedent("""
    import dataclasses, json, os, sys, torch
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {tests!r})
    from test_ddp import CASES, make_data, make_config
    from acda.models import get_model
    from acda.train import fit
    rank = os.environ["RANK"]
    for name, (data, model, task, config) in CASES.items():
        train, val = data()
        torch.manual_seed(0)
        out = os.path.join({out!r}, name)
        metrics = fit(model(), train, val, config(out), task=task)
        with open(os.path.join(out, f"rank{{rank}}.json"), "w") as f:
            json.dump({{"metrics": metrics, "world": os.environ["WORLD_SIZE"]}}, f)
    # early stop asked by rank 1 only: both ranks must stop after epoch 1 (else they would deadlock)
    train, val = make_data()
    stopped = fit(get_model("lenet"), train, None, dataclasses.replace(make_config(None), epochs=3),
                  on_epoch_end=lambda epoch, row: rank == "1")
    with open(os.path.join({out!r}, f"stop{{rank}}.json"), "w") as f:
        json.dump(stopped["epoch"], f)
""")


def make_data():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (N_TRAIN + N_VAL, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (N_TRAIN + N_VAL,), generator=g)
    labels[:N_TRAIN] = images[:N_TRAIN, 0, :16].float().mean(dim=(1, 2)).gt(127.5).long()  # learnable
    to_float = lambda x: x.float().div(255).sub(0.5)  # noqa: E731  (deterministic, no augmentation)
    return (TensorImageDataset(images[:N_TRAIN], labels[:N_TRAIN], to_float),
            TensorImageDataset(images[N_TRAIN:], labels[N_TRAIN:], to_float))


def make_config(out_dir):
    return TrainConfig(epochs=2, lr=0.05, batch_size=16, seed=1, out_dir=out_dir, progress=False,
                       eval_batch_size=5, device="cpu")


def _dense_config(optimizer):
    def config(out_dir):
        return TrainConfig(epochs=2, lr=0.01, optimizer=optimizer, weight_decay=1e-4, batch_size=8, seed=1,
                           out_dir=out_dir, progress=False, eval_batch_size=1, device="cpu")
    return config


# name: (data, model, task, config(out_dir))
CASES = {
    "classification": (make_data, lambda: get_model("lenet"), Classification(), make_config),
    "counting": (lambda: counting_data(24, N_VAL_DENSE, augment=False), counting_model, DensityCounting(),
                 _dense_config("adam")),
    "restoration": (lambda: restoration_data(24, N_VAL_DENSE, augment=False), Residual, Restoration(),
                    _dense_config("adamw")),
}


@pytest.mark.slow
def test_two_process_gloo_equals_one_process(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(repo=str(REPO), tests=str(Path(__file__).parent), out=str(out)))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [json.loads((out / f"stop{r}.json").read_text()) for r in (0, 1)] == [1, 1]

    for name, (data, model, task, config) in CASES.items():
        run = out / name
        ranks = [json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1)]
        assert [r["world"] for r in ranks] == ["2", "2"]
        assert ranks[0]["metrics"] == ranks[1]["metrics"], name  # all-reduced: every rank reports the same
        ddp = ranks[0]["metrics"]
        assert ddp["val_samples"] == len(data()[1]) and len(data()[1]) % 2 == 1  # unpadded: 33 (9), not 34 (10)
        assert sorted(p.name for p in run.iterdir()) == ["best.pt", "checkpoint.pt", "metrics.csv", "rank0.json",
                                                         "rank1.json"]
        ckpt = load_checkpoint(run / "checkpoint.pt")
        assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2

        train, val = data()
        torch.manual_seed(0)
        single_model = model()
        single = fit(single_model, train, val, config(str(tmp_path / "single" / name)), task=task)
        for k, v in single_model.state_dict().items():
            torch.testing.assert_close(ckpt["model"][k], v, rtol=1e-5, atol=1e-6)
        assert ddp.keys() == single.keys()
        for key, value in ddp.items():
            if key in ("val_top1_err", "val_top5_err", "val_samples", "train_top1_err", "epoch"):
                assert value == single[key], (name, key)  # counts: exact
            else:
                rel = 1e-5 if name == "classification" else 1e-4  # classification: the original bound
                assert value == pytest.approx(single[key], rel=rel, abs=1e-6), (name, key)
        # The 2-process weights evaluated in one process give exactly the 2-process metrics.
        single_model.load_state_dict(ckpt["model"])
        again = evaluate(single_model, val, config(None), task=task)
        for key, value in again.items():
            if key == "val_loss":
                assert value == pytest.approx(ddp[key], rel=1e-6), name
            else:
                assert value == ddp[key], (name, key)
