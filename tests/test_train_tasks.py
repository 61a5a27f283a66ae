"""fit's tasks (acda/train/tasks.py): classification, density counting and restoration.

For each task: the validation metrics equal a hand computation, training improves them, a run
stopped after epoch 1 and resumed equals the uninterrupted run bit for bit (with the task's
optimizer recipe: SGD + Nesterov, Adam, AdamW), best.pt holds the best epoch. Also early stopping
and the per-epoch overhead of a one-image, full-batch run. The data and models are tiny and shared
with the distributed test (tests/test_ddp.py).
"""
import csv
import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from acda.data import TensorImageDataset, TensorPairDataset
from acda.metrics import ssim_per_image
from acda.models import get_model
from acda.train import Classification, DensityCounting, Restoration, TrainConfig, evaluate, fit, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

VAL_SIZES = [(16, 16), (14, 18), (19, 13)]  # varying sizes: evaluated with eval_batch_size=1


def hflip_pair(x, y):
    """Joint random horizontal flip (draws from torch's global RNG, which resume must restore)."""
    if torch.rand(()) < 0.5:
        return x.flip(-1), y.flip(-1)
    return x, y


def _hflip(x):
    return x.flip(-1) if torch.rand(()) < 0.5 else x


def classification_data(n_train=32, n_val=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n_train + n_val, 3, 16, 16), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 4, (n_train + n_val,), generator=g)
    labels = images[:, 0, :8].float().mean(dim=(1, 2)).gt(127.5).long() + 2 * (labels[:] % 2)  # half learnable

    def to_float(x):
        return x.float().div(255).sub(0.5)

    def augment(x):
        return _hflip(to_float(x))

    return (TensorImageDataset(images[:n_train], labels[:n_train], augment),
            TensorImageDataset(images[n_train:], labels[n_train:], to_float))


def _blobs(h, w, g):
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    image, density = torch.zeros(h, w), torch.zeros(h, w)
    for _ in range(int(torch.randint(0, 5, (), generator=g))):
        cy, cx = 2 + torch.rand((), generator=g) * (h - 4), 2 + torch.rand((), generator=g) * (w - 4)
        blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.5 ** 2))
        image += blob
        density += blob / blob.sum()  # each blob adds exactly one to the count
    return (image + 0.05 * torch.randn(h, w, generator=g))[None], density[None]


def counting_data(n_train=24, n_val=7, seed=0, augment=True):
    """Images with 0-4 Gaussian blobs (plus noise) -> density maps whose sum is the number of blobs."""
    g = torch.Generator().manual_seed(seed)
    train = [_blobs(12, 12, g) for _ in range(n_train)]
    val = [_blobs(*VAL_SIZES[i % 3], g) for i in range(n_val)]
    return (TensorPairDataset(torch.stack([x for x, _ in train]), torch.stack([y for _, y in train]),
                              hflip_pair if augment else None),
            TensorPairDataset([x for x, _ in val], [y for _, y in val]))


def _clean(h, w, g):
    low = torch.rand(1, 3, 4, 4, generator=g)
    return nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[0]


def restoration_data(n_train=24, n_val=7, seed=0, noise=0.2, augment=True):
    """Smooth colour images in [0, 1] and their noisy versions (noisy -> clean)."""
    g = torch.Generator().manual_seed(seed)
    clean = [_clean(16, 16, g) for _ in range(n_train)] + [_clean(*VAL_SIZES[i % 3], g) for i in range(n_val)]
    noisy = [c + noise * torch.randn(c.shape, generator=g) for c in clean]
    return (TensorPairDataset(torch.stack(noisy[:n_train]), torch.stack(clean[:n_train]),
                              hflip_pair if augment else None),
            TensorPairDataset(noisy[n_train:], clean[n_train:]))


class Residual(nn.Module):
    def __init__(self, channels=3, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


def counting_model():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))


# task name: (data, model, task, recipe)
TASKS = {
    "classification": (classification_data, lambda: get_model("lenet", num_classes=4, image_size=16),
                       Classification(topk=(1, 3)),
                       dict(optimizer="sgd", nesterov=True, lr=0.05, batch_size=8, label_smoothing=0.1)),
    "counting": (counting_data, counting_model, DensityCounting(),
                 dict(optimizer="adam", lr=0.01, weight_decay=1e-4, batch_size=4, eval_batch_size=1)),
    "restoration": (restoration_data, Residual, Restoration(),
                    dict(optimizer="adamw", lr=0.01, weight_decay=0.01, betas=(0.8, 0.99), batch_size=4,
                         eval_batch_size=1)),
}


def task_config(name, out_dir=None, **kw):
    base = dict(epochs=3, seed=5, warmup_epochs=0.5, grad_clip=5.0, progress=False, device="cpu",
                out_dir=None if out_dir is None else str(out_dir))
    base.update(TASKS[name][3])
    base.update(kw)
    return TrainConfig(**base)


def build(name, seed=0):
    torch.manual_seed(seed)
    return TASKS[name][1]()


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _log(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


# --------------------------------------------------------------------------- metrics by hand

def _outputs(model, val):
    model.eval()
    with torch.no_grad():
        return [(model(x[None])[0].double(), y) for x, y in (val[i] for i in range(len(val)))]


def test_classification_metrics_by_hand():
    train, val = classification_data()
    model = build("classification")
    cfg = task_config("classification", epochs=2, eval_batch_size=5)
    got = fit(model, train, val, cfg, task=TASKS["classification"][2])
    assert set(got) == {"epoch", "lr", "train_loss", "train_top1_err", "val_loss", "val_top1_err", "val_top3_err",
                        "val_samples"}
    model.eval()
    with torch.no_grad():
        logits = torch.stack([model(val[i][0][None])[0] for i in range(len(val))])
    labels = val.labels
    rank = (logits > logits.gather(1, labels[:, None])).sum(dim=1)  # classes scored above the target
    assert got["val_top1_err"] == pytest.approx(100 * (rank >= 1).double().mean().item(), abs=1e-9)
    assert got["val_top3_err"] == pytest.approx(100 * (rank >= 3).double().mean().item(), abs=1e-9)
    loss = nn.functional.cross_entropy(logits, labels, label_smoothing=0.1).item()
    assert got["val_loss"] == pytest.approx(loss, rel=1e-5)
    assert got["val_samples"] == len(val) == 13
    # evaluate() computes the very same row as the last epoch of fit
    assert evaluate(model, val, cfg, task=TASKS["classification"][2]) == {k: v for k, v in got.items()
                                                                           if k.startswith("val_")}


def test_counting_trains_and_metrics_by_hand():
    train, val = counting_data()
    model = build("counting")
    cfg = task_config("counting", epochs=8)
    before = evaluate(model, val, cfg, task=DensityCounting())
    got = fit(model, train, val, cfg, task=DensityCounting())
    assert got["val_mae"] < 0.5 * before["val_mae"], (before, got)
    errors = [(out.sum() - y.double().sum()).item() for out, y in _outputs(model, val)]
    assert got["val_mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-9)
    assert got["val_rmse"] == pytest.approx(math.sqrt(np.mean(np.square(errors))), rel=1e-9)
    assert got["val_rmse"] >= got["val_mae"] and got["val_samples"] == 7
    assert {"train_mae", "val_loss"} <= set(got)


def test_restoration_trains_and_metrics_by_hand():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    train, val = restoration_data()
    model = build("restoration")
    cfg = task_config("restoration", epochs=8)
    noisy_psnr = np.mean([peak_signal_noise_ratio(y.numpy(), x.clamp(0, 1).numpy(), data_range=1.0)
                          for x, y in (val[i] for i in range(len(val)))])
    got = fit(model, train, val, cfg, task=Restoration())
    assert got["val_psnr"] > noisy_psnr + 2.0, (noisy_psnr, got)
    outs = [(out.clamp(0, 1), y) for out, y in _outputs(model, val)]
    psnr = [peak_signal_noise_ratio(y.double().numpy(), out.numpy(), data_range=1.0) for out, y in outs]
    ssim = [structural_similarity(out.numpy(), y.double().numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, channel_axis=0) for out, y in outs]
    assert got["val_psnr"] == pytest.approx(np.mean(psnr), rel=1e-6)
    assert got["val_ssim"] == pytest.approx(np.mean(ssim), rel=1e-6)
    assert 0 < got["val_ssim"] < 1 and "train_psnr" in got


@pytest.mark.parametrize("space,shave", [("y", 2), ("rgb8", 0)])
def test_restoration_scores_in_the_papers_spaces(space, shave):
    """space='y' (Table 4: BT.601 Y, shave) and 'rgb8' (Table 5: 8-bit sRGB) score as acda.metrics does."""
    from acda.metrics import blockwise_psnr_ssim, psnr_y, ssim_y

    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 3, 24, 24, generator=g)
    output = target + 0.05 * torch.randn(3, 3, 24, 24, generator=g)
    values = Restoration(space=space, shave=shave).eval_values(output, target)
    clamped = output.clamp(0, 1)
    if space == "y":
        want = torch.stack([psnr_y(clamped, target, shave), ssim_y(clamped, target, shave)], dim=1)
    else:
        scores = blockwise_psnr_ssim(clamped, target)
        want = torch.stack([scores["psnr_per_block"], scores["ssim_per_block"]], dim=1)
    torch.testing.assert_close(values, want, rtol=0, atol=0)
    assert Restoration(space=space, shave=shave).train_sums(output, target)[0] == pytest.approx(
        want[:, 0].sum().item(), rel=1e-12)


@pytest.mark.parametrize("kwargs,match", [({"space": "lab"}, "space must be one of"),
                                          ({"space": "y", "shave": -1}, "shave must be a non-negative int"),
                                          ({"space": "y", "data_range": 255.0}, "data_range must be 1.0"),
                                          ({"shave": 2}, "shave applies to space='y' only")])
def test_restoration_refuses_bad_spaces(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Restoration(**kwargs)


def test_ssim_rejects_images_smaller_than_the_window():
    with pytest.raises(ValueError, match="smaller than the 11×11 window"):
        ssim_per_image(torch.zeros(1, 1, 8, 20), torch.zeros(1, 1, 8, 20))


# --------------------------------------------------------------------------- exact resume, best.pt

class Stop(Exception):
    pass


@pytest.mark.parametrize("name", list(TASKS))
def test_resume_is_bit_identical_and_best_checkpoint(tmp_path, name):
    data, _, task, _ = TASKS[name]
    train, val = data()
    snapshots = {}

    def keep(epoch, row):
        snapshots[epoch] = _weights(full_model)

    full_model = build(name)
    full = fit(full_model, train, val, task_config(name, tmp_path / "full"), task=task, on_epoch_end=keep)

    def crash(epoch, row):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        fit(build(name), train, val, task_config(name, tmp_path / "cut"), task=task, on_epoch_end=crash)
    resumed_model = build(name, seed=99)  # everything must come from the checkpoint
    resumed = fit(resumed_model, train, val, task_config(name, tmp_path / "cut", resume=True), task=task)
    assert resumed == full
    assert _same(_weights(resumed_model), _weights(full_model))
    assert _log(tmp_path / "cut" / "metrics.csv") == _log(tmp_path / "full" / "metrics.csv")

    ckpt = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    metric, sign = task.resolve(task_config(name)).best_metric, (-1 if task.higher_is_better else 1)
    values = [row[metric] for row in ckpt["history"]]
    best_epoch = 1 + min(range(len(values)), key=lambda i: (sign * values[i], i))
    assert ckpt["best"] == {"metric": metric, "value": values[best_epoch - 1], "epoch": best_epoch,
                            "higher_is_better": task.higher_is_better}
    best = load_checkpoint(tmp_path / "full" / "best.pt")
    assert best["epoch"] == best_epoch and best["metrics"][metric] == values[best_epoch - 1]
    assert _same(best["model"], snapshots[best_epoch])
    assert ckpt["task"] == task.resolve(task_config(name)).spec()
    assert list(load_checkpoint(tmp_path / "cut" / "best.pt")["model"]) == list(snapshots[1])


def test_early_stopping_hook(tmp_path):
    train, val = counting_data()
    seen = []

    def stop_at_2(epoch, row):
        seen.append(epoch)
        return epoch == 2

    got = fit(build("counting"), train, val, task_config("counting", tmp_path, epochs=5), task=DensityCounting(),
              on_epoch_end=stop_at_2)
    assert seen == [1, 2] and got["epoch"] == 2
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 2
    assert len(_log(tmp_path / "metrics.csv")) == 2


def test_tasks_refuse_label_smoothing_and_bad_options():
    with pytest.raises(ValueError, match="classification only"):
        fit(counting_model(), *counting_data(4, 1), task_config("counting", label_smoothing=0.1),
            task=DensityCounting())
    with pytest.raises(ValueError, match="criterion"):
        Restoration(criterion="huber")
    with pytest.raises(TypeError, match="task must be"):
        fit(counting_model(), *counting_data(4, 1), task_config("counting"), task="counting")
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lamb")
    with pytest.raises(ValueError, match="nesterov"):
        TrainConfig(optimizer="adam", nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        TrainConfig(optimizer="adam", betas=(0.9, 1.0))


def test_varying_sizes_need_eval_batch_size_1():
    train, val = restoration_data(4, 3)
    with pytest.raises(RuntimeError, match="eval_batch_size=1"):
        fit(Residual(), train, val, task_config("restoration", epochs=1, eval_batch_size=3), task=Restoration())


# --------------------------------------------------------------------------- per-epoch overhead

def test_per_epoch_overhead_of_a_one_image_run_is_small():
    """A single-image, full-batch, many-epoch run (no out_dir, no val set, no progress bar): fit's
    cost per epoch beyond the training step itself (forward, backward, optimizer and scheduler step,
    the same two parameter groups) stays well under a millisecond; asserted with slack for a loaded
    machine."""
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 16, 16, generator=g)
    noisy = clean + 0.1 * torch.randn(1, 3, 16, 16, generator=g)
    data, epochs = TensorPairDataset(noisy, clean), 200
    cfg = TrainConfig(epochs=epochs, lr=1e-3, optimizer="adam", weight_decay=0.0, batch_size=1,
                      schedule="constant", progress=False, device="cpu")

    def manual():
        model = Residual(width=4)
        params = list(model.parameters())
        opt = torch.optim.Adam([{"params": [p for p in params if p.ndim > 1]},
                                {"params": [p for p in params if p.ndim <= 1]}], lr=1e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        t = time.perf_counter()
        for _ in range(epochs):
            loss = nn.functional.l1_loss(model(noisy), clean)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss.item()
        return time.perf_counter() - t

    def through_fit():
        model = Residual(width=4)
        t = time.perf_counter()
        fit(model, data, None, cfg, task=Restoration(ssim=False))
        return time.perf_counter() - t

    overhead = min(through_fit() - manual() for _ in range(3)) / epochs
    print(f"fit overhead per epoch: {overhead * 1e3:.3f} ms")
    assert overhead < 2e-3
