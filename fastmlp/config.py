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


def dataset_for(config):
    """The dataset, dtype and train/validation split that `config` names."""
    return load_dataset(config.dataset, dtype=parse_dtype(config.dtype), seed=config.seed,
                        val_fraction=config.val_fraction, data_dir=config.data_dir)
