"""The one trainer for every training reproducer (Tables 1, 2, proxies; counting and restoration).

``fit(model, train_set, val_set, config, task=None, on_epoch_end=None)`` trains ``model`` and
returns the final epoch's metrics; ``evaluate(model, dataset, config, task=task)`` gives the
validation metrics alone.

- ``TrainConfig``: the recipe (optimizer, schedule with warmup, weight decay on weights only,
  label smoothing, AMP, gradient clipping, seed, ``out_dir``, ``resume``).
- Tasks (``acda.train.tasks``): ``Classification`` (the default), ``DensityCounting`` and
  ``Restoration`` say what is optimised, measured and used to pick ``best.pt``.
- With ``config.out_dir``: ``best.pt``, ``checkpoint.pt`` (checksummed; exact, bit-identical resume
  on CPU) and ``metrics.csv``, written atomically every epoch; ``load_checkpoint`` raises
  ``CheckpointError`` for a damaged file.
- Under ``torchrun``: ``DistributedDataParallel``, exact validation metrics whatever the number
  of processes; only rank 0 writes files.

See docs/training.md for the metrics of each task, the recipe, the files and their order, early
stopping, exact resume, the faults handled and the distributed evaluation.
"""
from .checkpoint import CheckpointError, data_fingerprint, load_checkpoint
from .config import OPTIMIZERS, RECIPE_FIELDS, SCHEDULES, TrainConfig
from .loop import BEST, CHECKPOINT, METRICS_LOG, DistContext, distributed_context, evaluate, fit
from .tasks import Classification, DensityCounting, Restoration, Task

__all__ = ["TrainConfig", "fit", "evaluate", "load_checkpoint", "distributed_context", "DistContext",
           "CHECKPOINT", "METRICS_LOG", "BEST", "CheckpointError", "data_fingerprint", "Task", "Classification",
           "DensityCounting", "Restoration", "OPTIMIZERS", "SCHEDULES", "RECIPE_FIELDS"]
