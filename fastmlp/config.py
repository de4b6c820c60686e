"""What defines a training run, and the dataset it trains on.

Kept apart from the engine so that the command line can validate a run and start loading its
data before numba and the kernels are imported.
"""
import math
from dataclasses import dataclass

import numpy as np

from .data import load_dataset
from .errors import FastMLPError
from .model import INITS, parse_dtype
from .schedule import SCHEDULES

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. The defaults are the source documents' deepest
    experiment: [128, 64, 32], He init, full-batch gradient descent, lr 0.1, 400 epochs."""
    layers: tuple = (128, 64, 32)
    init: str = "he"
    epochs: int = 400
    batch_size: int | None = None  # None: full batch, one step per epoch
    lr: float = 0.1
    dtype: str = "float32"
    seed: int = 0
    threads: int | None = None  # None: every core
    dataset: str = "mnist"
    val_fraction: float = 0.2
    eval_every: int = 0  # test accuracy every K epochs as well as at the end; 0: at the end
    data_dir: str | None = None
    # Beyond the documents: optimizers, regularisation, schedules, early stopping.
    optimizer: str = "sgd"  # sgd | momentum | adam | adamw
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    dropout: float = 0.0  # probability of dropping a hidden unit while training
    augment_shift: int = 0  # shift each training image by up to K pixels
    schedule: str = "constant"  # constant | step | cosine
    warmup: float = 0.0  # epochs of linear learning-rate warm-up
    lr_step_epochs: int = 0  # step schedule: epochs between decays (0: a third of the run)
    lr_gamma: float = 0.1  # step schedule: decay factor
    patience: int = 0  # early stopping: epochs without improvement (0: off)
    early_stop: str = "val_acc"  # val_acc | val_loss

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise FastMLPError("at least one hidden layer is needed, e.g. --layers 128")
        if any(not isinstance(h, (int, np.integer)) or h < 1 for h in self.layers):
            raise FastMLPError(f"hidden layer sizes must be positive integers, got "
                               f"{list(self.layers)}")
        if self.init not in INITS:
            raise FastMLPError(f"unknown init {self.init!r}; choose one of {', '.join(INITS)}")
        if self.epochs < 1:
            raise FastMLPError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise FastMLPError(f"batch size must be >= 1 or full, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise FastMLPError(f"learning rate must be a finite number > 0, got {self.lr}")
        parse_dtype(self.dtype)
        if self.threads is not None and self.threads < 1:
            raise FastMLPError(f"threads must be >= 1, got {self.threads}")
        if not 0 < self.val_fraction < 1:
            raise FastMLPError(f"val fraction must be in (0, 1), got {self.val_fraction}")
        if self.eval_every < 0:
            raise FastMLPError(f"eval-every must be >= 0, got {self.eval_every}")
        if self.optimizer not in OPTIMIZERS:
            raise FastMLPError(f"unknown optimizer {self.optimizer!r}; choose one of "
                               f"{', '.join(OPTIMIZERS)}")
        if not 0 <= self.dropout < 1:
            raise FastMLPError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.augment_shift < 0:
            raise FastMLPError(f"augment shift must be >= 0 pixels, got {self.augment_shift}")
        if self.schedule not in SCHEDULES:
            raise FastMLPError(f"unknown schedule {self.schedule!r}; choose one of "
                               f"{', '.join(SCHEDULES)}")
        if self.patience < 0:
            raise FastMLPError(f"patience must be >= 0, got {self.patience}")
        if self.early_stop not in ("val_acc", "val_loss"):
            raise FastMLPError(f"early stopping watches val_acc or val_loss, not "
                               f"{self.early_stop!r}")
        # Optimizer hyperparameters and the warm-up are checked where they are used
        # (update.py, schedule.py), with the same one-line errors.


def dataset_for(config):
    """The dataset, dtype and train/validation split that `config` names."""
    return load_dataset(config.dataset, dtype=parse_dtype(config.dtype), seed=config.seed,
                        val_fraction=config.val_fraction, data_dir=config.data_dir)
