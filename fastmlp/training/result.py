"""What a run gives: one EpochStats per epoch and the TrainResult, with the JSON (--out) and CSV
views of it."""
import csv
import dataclasses
import io
from dataclasses import dataclass, field

from ..engine.model import MLP
from ..runtime.versions import versions
from ..settings import RunOptions, TrainConfig

# What `fastmlp train --out` writes: its format's name and schema version (raised when a key
# changes meaning or goes away; readers refuse a schema they do not know).
RUN_FORMAT = "fastmlp-run"
RUN_SCHEMA = 1

# The accuracies of an EpochStats, in the words reports and figures use.
METRIC_WORDS = {"val_acc": "validation", "test_acc": "test", "train_acc": "train"}


@dataclass
class EpochStats:
    epoch: int
    lr: float  # the learning rate of the epoch's last step
    train_loss: float  # mean over the epoch's samples, each taken before its step's update
    train_acc: float  # likewise; at full batch exactly the accuracy of the pre-step model
    val_loss: float
    val_acc: float
    test_acc: float | None  # measured at eval_every epochs and for the returned model
    seconds: float  # training steps only, evaluation excluded
    samples_per_s: float


@dataclass
class TrainResult:
    config: TrainConfig
    model: MLP = field(repr=False)
    history: list
    n_train: int  # samples per epoch
    wall_seconds: float  # this process's fit: training and evaluation, data loading excluded
    train_seconds: float  # training steps only, over the whole run (resumed epochs included)
    best_epoch: int  # the epoch whose weights `model` holds (the last unless early stopping)
    options: RunOptions = field(default_factory=RunOptions)
    dataset: dict = field(default_factory=dict)  # Dataset.record(): files and exact split
    resumed_epochs: int = 0  # epochs already done when this process resumed the run
    effective_threads: dict = field(default_factory=dict)  # threads.threads_in_force()

    @property
    def final(self):
        """The record of the epoch whose weights the model holds."""
        return self.history[self.best_epoch - 1]

    @property
    def samples_per_s(self):
        return len(self.history) * self.n_train / self.train_seconds

    def to_dict(self):
        return {
            "format": RUN_FORMAT,
            "schema": RUN_SCHEMA,
            "versions": versions(),
            "config": dataclasses.asdict(self.config),
            "run": {**dataclasses.asdict(self.options),
                    "effective_threads": self.effective_threads},
            "dataset": self.dataset,
            "model": repr(self.model),
            "summary": {
                "train_loss": self.final.train_loss,
                "train_acc": self.final.train_acc,
                "val_acc": self.final.val_acc,
                "test_acc": self.final.test_acc,
                "best_epoch": self.best_epoch,
                "epochs": len(self.history),
                "resumed_epochs": self.resumed_epochs,
                "wall_seconds": self.wall_seconds,
                "train_seconds": self.train_seconds,
                "samples_per_s": self.samples_per_s,
            },
            "history": [dataclasses.asdict(e) for e in self.history],
        }

    def to_csv(self):
        """The per-epoch history as CSV text: a header, then one row per epoch."""
        buffer = io.StringIO()
        names = [f.name for f in dataclasses.fields(EpochStats)]
        writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(dataclasses.asdict(e) for e in self.history)
        return buffer.getvalue()
