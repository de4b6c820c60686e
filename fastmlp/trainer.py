"""Training: the epoch loop over forward -> backward -> update, evaluation, and the history."""
import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .backward import backward
from .config import TrainConfig, dataset_for
from .errors import FastMLPError
from .forward import forward
from .kernels import count_correct, gather_rows, transpose
from .model import MLP, parse_dtype
from .threads import kernel_threads, thread_limits
from .update import SGD
from .workspace import Workspace

# Evaluation runs in chunks of this many rows: MNIST's validation and test sets each fit in one.
EVAL_ROWS = 16384


@dataclass
class EpochStats:
    epoch: int
    train_loss: float  # mean over the epoch's samples, each taken before its step's update
    train_acc: float  # likewise; at full batch exactly the accuracy of the pre-step model
    val_acc: float
    test_acc: float | None  # measured at eval_every epochs and at the last one
    seconds: float  # training steps only, evaluation excluded
    samples_per_s: float


@dataclass
class TrainResult:
    config: TrainConfig
    model: MLP = field(repr=False)
    history: list
    n_train: int  # samples per epoch
    wall_seconds: float  # the whole fit: training and evaluation, data loading excluded
    train_seconds: float  # training steps only

    @property
    def final(self):
        return self.history[-1]

    @property
    def samples_per_s(self):
        return len(self.history) * self.n_train / self.train_seconds

    def to_dict(self):
        return {
            "config": dataclasses.asdict(self.config),
            "model": repr(self.model),
            "summary": {
                "train_loss": self.final.train_loss,
                "train_acc": self.final.train_acc,
                "val_acc": self.final.val_acc,
                "test_acc": self.final.test_acc,
                "epochs": len(self.history),
                "wall_seconds": self.wall_seconds,
                "train_seconds": self.train_seconds,
                "samples_per_s": self.samples_per_s,
            },
            "history": [dataclasses.asdict(e) for e in self.history],
        }


def evaluate(model, ws, x, y):
    """Accuracy of the model on x (N, n_in), y (N,), in chunks of ws.rows rows."""
    correct = 0
    with kernel_threads(min(ws.rows, len(y))):
        for start in range(0, len(y), ws.rows):
            stop = min(start + ws.rows, len(y))
            chunk = ws.rows_view(stop - start)
            forward(model, chunk, x[start:stop])
            correct += count_correct(chunk.logits, y[start:stop], chunk.count_partial)
    return correct / len(y)


class Trainer:
    """Steps a model through epochs of one training split.

    At full batch (batch_size None or >= the split) one epoch is one step on the split itself,
    read in place. Otherwise the order is reshuffled every epoch, each minibatch is gathered into
    the workspace by a kernel, and the last partial batch is used too.
    """

    def __init__(self, model, optimizer, x, y, batch_size, rng):
        self.model, self.optimizer, self.x, self.y, self.rng = model, optimizer, x, y, rng
        n = len(y)
        self.batch_size = n if batch_size is None else min(batch_size, n)
        self.full_batch = self.batch_size == n
        self.ws = Workspace(model, self.batch_size, gather=not self.full_batch)
        # Full batch reads the same inputs every step, so a contiguous transposed copy (one more
        # copy of the training set) pays for itself in the first layer's weight gradient.
        self.x_t = None
        if self.full_batch:
            self.x_t = np.empty(x.shape[::-1], x.dtype)  # (n_in, N)
            transpose(self.x_t, x)
        self.order = np.arange(n, dtype=np.int64)
        self.bounds = [(s, min(s + self.batch_size, n)) for s in range(0, n, self.batch_size)]

    def step(self, ws, x, x_t, y):
        """One forward -> backward -> update; returns (loss, correct) of the pre-update model."""
        forward(self.model, ws, x)
        correct = count_correct(ws.logits, y, ws.count_partial)
        loss = backward(self.model, ws, x_t, y)
        self.optimizer.step(self.model)
        return loss, correct

    def epoch(self):
        """Train one epoch; returns (mean loss, accuracy) over its samples."""
        if self.full_batch:
            with kernel_threads(self.batch_size):
                loss, correct = self.step(self.ws, self.x, self.x_t, self.y)
            return loss, correct / len(self.y)
        self.rng.shuffle(self.order)
        loss_sum, correct = 0.0, 0
        with kernel_threads(self.batch_size):
            for start, stop in self.bounds:
                ws = self.ws.rows_view(stop - start)
                gather_rows(ws.x, ws.y, self.x, self.y, self.order[start:stop])
                loss, hits = self.step(ws, ws.x, ws.x.T, ws.y)
                loss_sum += loss * (stop - start)
                correct += hits
        return loss_sum / len(self.y), correct / len(self.y)


def train(config=TrainConfig(), dataset=None, on_epoch=None):
    """Train an MLP as `config` says and return a TrainResult.

    `dataset` (from fastmlp.data.load_dataset) is loaded from config when omitted; on_epoch, if
    given, is called with each EpochStats as it is made (the CLI's progress bar uses it).
    """
    dtype = parse_dtype(config.dtype)
    if dataset is None:
        dataset = dataset_for(config)
    train_split, val, test = dataset.train, dataset.val, dataset.test
    if train_split.x.dtype != dtype:
        raise FastMLPError(f"dataset is {train_split.x.dtype}, config asks for {config.dtype}")
    init_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(2)
    model = MLP([train_split.x.shape[1], *config.layers, dataset.n_classes], dtype)
    model.initialize(config.init, np.random.default_rng(init_seed))
    trainer = Trainer(model, SGD(config.lr), train_split.x, train_split.y, config.batch_size,
                      np.random.default_rng(shuffle_seed))
    eval_ws = Workspace(model, min(EVAL_ROWS, max(len(val.y), len(test.y))), backward=False,
                        gather=False)

    history = []
    # Overflow shows up as a non-finite loss, which ends the run with a clear message; numpy's
    # warnings from inside the matmuls would only repeat it less clearly.
    with thread_limits(config.threads), np.errstate(over="ignore", invalid="ignore"):
        started = time.perf_counter()
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            loss, train_acc = trainer.epoch()
            seconds = time.perf_counter() - t0
            if not math.isfinite(loss):
                raise FastMLPError(f"training diverged at epoch {epoch} (loss is {loss}); "
                                   f"try a lower learning rate than {config.lr}")
            val_acc = evaluate(model, eval_ws, val.x, val.y)
            test_due = epoch == config.epochs or (config.eval_every and
                                                  epoch % config.eval_every == 0)
            test_acc = evaluate(model, eval_ws, test.x, test.y) if test_due else None
            stats = EpochStats(epoch, loss, train_acc, val_acc, test_acc, seconds,
                               len(train_split.y) / seconds)
            history.append(stats)
            if on_epoch is not None:
                on_epoch(stats)
        wall = time.perf_counter() - started
    return TrainResult(config, model, history, len(train_split.y), wall,
                       sum(e.seconds for e in history))
