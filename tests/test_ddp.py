"""The trainer's distributed path on CPU: torchrun, 2 processes, Gloo (acda/train.py).

What is compared with a 1-process run of the same recipe: the 2-process run splits each global
batch of 16 into two halves of 8 that together are exactly the 1-process batch (same
``DistributedSampler`` permutation for the same seed and epoch), and DDP averages the two
half-batch gradients, which equals the full-batch mean. LeNet has no BatchNorm and the data no
random augmentation, so the final weights agree up to float rounding (checked with allclose), and
the validation metrics, counted over an odd number of samples (33), agree exactly: every sample is
evaluated once, not padded to 34.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from acda.data import TensorImageDataset
from acda.models import get_model
from acda.train import TrainConfig, fit, load_checkpoint

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")
N_TRAIN, N_VAL = 64, 33

WORKER = textwrap.dedent("""
    import json, os, sys, torch
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {tests!r})
    from test_ddp import make_data, make_config
    from acda.models import get_model
    from acda.train import fit
    train, val = make_data()
    torch.manual_seed(0)
    metrics = fit(get_model("lenet"), train, val, make_config({out!r}))
    with open(os.path.join({out!r}, f"rank{{os.environ['RANK']}}.json"), "w") as f:
        json.dump({{"metrics": metrics, "world": os.environ["WORLD_SIZE"]}}, f)
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


@pytest.mark.slow
def test_two_process_gloo_equals_one_process(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(repo=str(REPO), tests=str(Path(__file__).parent), out=str(out)))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == ["2", "2"]
    assert ranks[0]["metrics"] == ranks[1]["metrics"]  # all-reduced: every rank reports the same
    ddp = ranks[0]["metrics"]
    assert ddp["val_samples"] == N_VAL  # unpadded evaluation: 33, not 34
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.csv", "rank0.json", "rank1.json"]
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2

    train, val = make_data()
    torch.manual_seed(0)
    single_model = get_model("lenet")
    single = fit(single_model, train, val, make_config(str(tmp_path / "single")))
    for k, v in single_model.state_dict().items():
        torch.testing.assert_close(ckpt["model"][k], v, rtol=1e-5, atol=1e-6)
    for key in ("val_top1_err", "val_top5_err", "val_samples", "train_top1_err"):
        assert ddp[key] == single[key], key
    assert ddp["val_loss"] == pytest.approx(single["val_loss"], rel=1e-5)
    assert ddp["train_loss"] == pytest.approx(single["train_loss"], rel=1e-5)
    # Evaluating the 2-process weights in one process gives the same counts.
    single_model.load_state_dict(ckpt["model"])
    re = fit(single_model, train, val, TrainConfig(epochs=1, lr=0.0, momentum=0.0, weight_decay=0.0,
                                                   batch_size=16, progress=False, device="cpu"))
    assert re["val_top1_err"] == ddp["val_top1_err"]
