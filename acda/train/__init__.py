"""The one trainer for every training reproducer (Tables 1, 2, proxies; counting and restoration).

``fit(model, train_set, val_set, config, task=None, on_epoch_end=None)`` trains ``model`` and
returns the final epoch's metrics; ``evaluate(model, dataset, config, task=task)`` gives the
validation metrics alone.

Tasks (``acda.train.tasks``) say what is optimised and measured:

- ``Classification(topk=None, label_smoothing=None)`` (the default; unset options come from
  ``config.topk`` / ``config.label_smoothing``, so ``fit(model, train, val, config)`` is unchanged):
  cross-entropy; columns ``train_loss``, ``train_top1_err``, ``val_loss``, ``val_top{k}_err``,
  ``val_samples``; best checkpoint by the first top-k error (lower is better).
- ``DensityCounting(criterion="mse")``: the model outputs density maps of the target's shape, the
  count is a map's sum; ``train_mae``, ``val_mae``, ``val_rmse`` (sqrt of the mean squared count
  error, crowd papers' "MSE"); best by ``val_mae``.
- ``Restoration(criterion="l1", data_range=1.0, ssim=True, clamp=True)``: image to image;
  ``train_psnr``, ``val_psnr``, ``val_ssim`` per image over all channels, averaged; best by
  ``val_psnr`` (higher is better).

Each task turns validation batches into per-sample values (top-k hits, count errors, PSNR/SSIM);
the trainer sums them exactly across processes (see Distributed). Per-image metrics live in
``acda.metrics`` (``count_errors``, ``psnr_per_image``, ``ssim_per_image``). Density maps and
restoration images of varying size need ``config.eval_batch_size=1`` (and ``batch_size`` = the
number of processes for training, or crops of one size); ``acda.data.TensorPairDataset`` holds
such input/target pairs in memory.

Recipe (``TrainConfig``): ``optimizer`` "sgd" (``momentum``, ``nesterov``), "adam" or "adamw"
(``betas``); weight decay on weights only, never on biases and other 1-D parameters; a
per-iteration cosine, step (``milestones``, ``gamma``) or constant schedule after
``warmup_epochs`` of linear warmup; optional label smoothing (classification), AMP (float16 +
GradScaler on CUDA, bfloat16 on CPU) and gradient-norm clipping. With ``config.out_dir`` it writes,
every epoch and atomically (temporary file + ``os.replace``), in this order:

- ``best.pt`` when the task's best metric improves (format-2 checkpoint with ``model``,
  ``epoch``, ``metrics``; the checkpoint's ``best`` entry records metric, value and epoch; no
  best.pt without a val set);
- ``checkpoint.pt``: model, optimizer, scheduler, AMP scaler, every process's RNG states (torch,
  CUDA, numpy, python, the DataLoader's generator), the metrics history, the epoch, the task, the
  data fingerprints and the torch thread count, with a SHA-256 checksum;
- ``metrics.csv``: one row per epoch.

Early stopping: ``on_epoch_end(epoch, row)`` runs after that epoch's files are written; returning
True stops training there (under ``torchrun``, if any process's hook does). A later
``resume=True`` continues to ``config.epochs``. Nothing per epoch is rebuilt (loaders, optimizer);
without ``out_dir``, validation or progress bar an epoch costs its training steps plus well under
a millisecond (``tests/test_train_tasks.py`` measures it).

Exact resume: ``config.resume=True`` continues from ``checkpoint.pt`` (a fresh start if there is
none). The data order is a pure function of (seed, epoch) — ``DistributedSampler`` with
``set_epoch``, also for one process — and everything else that is random is restored from the
checkpoint, so on CPU a run killed after epoch e (even with SIGKILL) and resumed ends
bit-identical to an uninterrupted one (``tests/test_train.py``). Checkpoints load with
``weights_only=True``.

Faults handled (``tests/test_train_faults.py``):

- corrupted checkpoints: ``load_checkpoint`` verifies the checksum and raises ``CheckpointError``
  naming the file for a flipped byte, garbage, a truncated file, a foreign ``.pt``, or a directory in
  its place (format-1 checkpoints, written before checksums, load with a warning);
- a changed recipe (``RECIPE_FIELDS``), task or training set is refused on resume; the training
  set is identified by ``data_fingerprint`` (tensor bytes of in-memory datasets, the file list and
  labels of an ``ImageFolder``, a dataset's own ``fingerprint()``; never its transforms); a changed
  validation set or torch thread count only warns (the latter: not bit-identical);
- a kill between the writes of an epoch: every start from a checkpoint rewrites ``metrics.csv``
  from the checkpoint's history; ``best.pt`` is never behind the checkpoint;
- a kill during a write leaves ``.<name>.<random>.tmp``: removed (our three names only) on the
  next start in that ``out_dir``.

Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1) the trainer initialises the process
group (NCCL on CUDA, Gloo on CPU), wraps the model in ``DistributedDataParallel`` and splits the
*global* ``batch_size`` evenly over processes. Evaluation gives each process the unpadded strided
share ``val[rank::world]``; per-sample values are placed at their global index in a zero table
that is all-reduced (one non-zero term per entry, so exact) and summed in index order, so every
validation sample is counted exactly once and the validation metrics of given weights do not depend
on the number of processes (the loss is a sum of per-batch means, exact only up to rounding).
Only rank 0 writes files.
"""
from .checkpoint import CheckpointError, data_fingerprint, load_checkpoint
from .config import OPTIMIZERS, RECIPE_FIELDS, SCHEDULES, TrainConfig
from .loop import BEST, CHECKPOINT, METRICS_LOG, DistContext, distributed_context, evaluate, fit
from .tasks import Classification, DensityCounting, Restoration, Task

__all__ = ["TrainConfig", "fit", "evaluate", "load_checkpoint", "distributed_context", "DistContext",
           "CHECKPOINT", "METRICS_LOG", "BEST", "CheckpointError", "data_fingerprint", "Task", "Classification",
           "DensityCounting", "Restoration", "OPTIMIZERS", "SCHEDULES", "RECIPE_FIELDS"]
