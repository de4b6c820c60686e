"""A run from start to end: the epoch loop around the Trainer, with evaluation, early stopping,
the divergence rule, checkpoints, resuming, Ctrl-C and the history it returns."""
import dataclasses
import signal
import threading
import time
from contextlib import contextmanager

import numpy as np

from ..data.load import load_dataset_for
from ..engine.gemm import Gemm
from ..engine.workspace import EVAL_ROWS, Workspace
from ..errors import FastMLPError, TrainingInterrupted
from ..precisions import parameter_dtype
from ..runtime import blas
from ..runtime.threads import thread_limits, threads_in_force
from ..settings import IN_MEMORY, RunOptions, TrainConfig
from . import checkpoint
from .plan import allocating, plan_for
from .result import EpochStats, TrainResult
from .stopping import EarlyStopping, check_divergence
from .trainer import make_trainer


@contextmanager
def _stop_on_signals(trainer, handle=True):
    """While training, SIGINT and SIGTERM ask the trainer to stop after the current step;
    a second SIGINT interrupts at once. Only the main thread can take signals; elsewhere (or
    when not `handle`) this does nothing."""
    if not handle or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if trainer.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        trainer.stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _matching(config, dataset):
    """`config` as the run really happens on `dataset`: data given as arrays is recorded as
    such; data loaded by name must be the split the config names."""
    if dataset.directory is None:
        if config.dataset != IN_MEMORY:
            config = dataclasses.replace(config, dataset=IN_MEMORY)
    elif dataset.name != config.dataset:
        raise FastMLPError(f"the config names dataset {config.dataset!r}, the data given is "
                           f"{dataset.name!r}")
    for name in ("seed", "val_fraction"):
        have = getattr(dataset, name)
        if have is not None and have != getattr(config, name):
            raise FastMLPError(f"the config asks for {name} {getattr(config, name)!r}, the "
                               f"data given was split with {have!r}")
    if dataset.train.x.dtype != parameter_dtype(config.dtype):
        raise FastMLPError(f"dataset is {dataset.train.x.dtype}, config asks for "
                           f"{config.dtype}")
    return config


def gemm_state(gemm):
    """A Gemm's choices as JSON (what a checkpoint keeps)."""
    return {"default": gemm.default,
            "choices": [[*product, backend] for product, backend in gemm.choices.items()]}


def gemm_from_state(state):
    """The Gemm of gemm_state's JSON, or None (a checkpoint of an older version keeps none)."""
    if not isinstance(state, dict):
        return None
    gemm = Gemm({tuple(c[:4]): c[4] for c in state.get("choices", [])},
                state.get("default", "openblas"))
    # A library this machine lacks: the run chooses anew (no longer bit for bit).
    return gemm if set(gemm.backends()) <= set(blas.available()) else None


def train(config=None, dataset=None, on_epoch=None, *, options=None, save_path=None,
          checkpoint_every=0, resume=None, interrupt_path=None, max_memory=None,
          stop_after=None, handle_signals=True, plan=None):
    """Train an MLP as `config` says and return a TrainResult.

    dataset: from fastmlp.load_dataset (its test split may be None); loaded from config
    when omitted. options: RunOptions (threads, data directory). on_epoch: called
    with each EpochStats as it is made (the CLI's progress bar). save_path: where the model is
    written at the end, and every `checkpoint_every` epochs as a resumable checkpoint.
    resume: a checkpoint.Checkpoint to continue from; config defaults to its config (a changed
    number of epochs is the only change of config that makes sense).
    stop_after: end after this epoch, before config.epochs (a rung of successive halving), with
    the learning-rate schedule of config.epochs all the same, so that the run resumed from the
    checkpoint then written to save_path (its last weights, whatever the early stopping kept)
    ends bit for bit as one run straight through; the test accuracy is measured after that
    checkpoint is written, as a straight run measures it only at its end.
    SIGINT/SIGTERM stop training after the current step with TrainingInterrupted, having
    written a resumable checkpoint to interrupt_path (default: save_path) when there is one
    (unless handle_signals is False: a grid's loop handles them itself).
    A diverging run (stopping.diverged) stops with a FastMLPError. A run that would need more
    memory than is available or `max_memory` bytes is refused with OutOfMemory (plan.py);
    `plan` is plan_for(config, dataset) when the caller has made it already (choosing the fast
    path scans the inputs).
    """
    if config is None:
        config = resume.config if resume is not None else TrainConfig()
    options = RunOptions() if options is None else options
    if dataset is None:
        dataset = load_dataset_for(config, options.data_dir)
    config = _matching(config, dataset)
    train_split, val, test = dataset.train, dataset.val, dataset.test
    # A resumed run sends its matmuls where the checkpointed run did (bit for bit, as long as
    # its threads are the same too), unless told otherwise.
    saved_gemm = None
    if resume is not None and options.blas == "auto":
        saved_gemm = gemm_from_state(resume.state.get("gemm"))
    plan = plan or plan_for(config, dataset, options=options, gemm=saved_gemm)
    trainer = make_trainer(config, dataset, max_memory, plan=plan)
    model = trainer.evaluated  # evaluated, kept by early stopping, saved and returned
    eval_rows = max(len(val.y), 0 if test is None else len(test.y))
    with allocating(plan):
        # Forward only: evaluation's loss and count (xent_count) write no gradient.
        eval_ws = Workspace(model, min(EVAL_ROWS, eval_rows), backward=False, gather=False)
        validate = trainer.evaluator(val.x, val.y, eval_ws)
        early = EarlyStopping(model, config.early_stop, config.patience)
    tested = []  # the test split's evaluator, made when first needed

    def test_accuracy():
        if not tested:
            with allocating(plan):
                tested.append(trainer.evaluator(test.x, test.y, eval_ws, plain=True))
        return tested[0]()[0]
    history, first_epoch, initial_loss = [], 1, None
    if resume is not None:
        if resume.dataset.get("sha256") != dict(dataset.sha256):
            raise FastMLPError("the checkpoint was trained on other data files than these "
                               f"({dataset.name} in {dataset.directory})")
        record = dataset.record()
        for key in ("seed", "val_fraction", "n_train", "n_val"):
            if resume.dataset.get(key) is not None and resume.dataset[key] != record[key]:
                raise FastMLPError(f"the checkpoint's data split has {key} "
                                   f"{resume.dataset[key]!r}, this one {record[key]!r}")
        trainer.load(resume.model.params)
        trainer.restore(resume.state["trainer"], resume.arrays)
        early.restore(resume.state["early"], resume.arrays)
        history = [EpochStats(**e) for e in resume.history]
        first_epoch = len(history) + 1
        # Checkpoints from before the rule kept no initial loss: their first epoch's stands in.
        initial_loss = resume.state.get("initial_loss", history[0].train_loss if history
                                        else None)

    def write(path):
        trainer_state, arrays = trainer.state()
        checkpoint.save(path, model, config, [dataclasses.asdict(e) for e in history],
                        dataset.record(),
                        {"trainer": trainer_state, "early": early.state(),
                         "initial_loss": initial_loss, "gemm": gemm_state(trainer.gemm)},
                        {**arrays, **early.arrays()})

    # Overflow shows up as a non-finite loss, which ends the run with a clear message; numpy's
    # warnings from inside the matmuls would only repeat it less clearly.
    def stop(epoch):
        path = interrupt_path or save_path
        where = f"during epoch {epoch}" if trainer.position else f"after epoch {epoch}"
        if path is None:
            raise TrainingInterrupted(f"interrupted {where}; nothing saved (no --save path)")
        write(path)
        raise TrainingInterrupted(f"interrupted {where}; checkpoint written to {path}; "
                                  f"resume with: fastmlp train --resume {path}", path)

    with thread_limits(options.threads), np.errstate(over="ignore", invalid="ignore"), \
            _stop_on_signals(trainer, handle_signals):
        in_force = threads_in_force()
        started = time.perf_counter()
        if initial_loss is None:
            initial_loss = validate()[1]
        last = config.epochs if stop_after is None else min(stop_after, config.epochs)
        for epoch in range(first_epoch, last + 1):
            t0 = time.perf_counter()
            done = trainer.epoch()
            if done is None:
                stop(epoch)
            loss, train_acc = done
            seconds = time.perf_counter() - t0
            check_divergence(epoch, loss, initial_loss, dataset.n_classes, config.lr)
            val_acc, val_loss = validate()
            test_due = (test is not None and config.eval_every
                        and epoch % config.eval_every == 0)
            test_acc = test_accuracy() if test_due else None
            stats = EpochStats(epoch, trainer.schedule.lr(trainer.optimizer.steps - 1), loss,
                               train_acc, val_loss, val_acc, test_acc, seconds,
                               len(train_split.y) / seconds)
            history.append(stats)
            early.update(model, stats)
            if save_path is not None and checkpoint_every and epoch % checkpoint_every == 0:
                write(save_path)
            if on_epoch is not None:
                on_epoch(stats)
            if early.stop:
                break
            if trainer.stop_requested and epoch < last:
                stop(epoch)
        rung = last < config.epochs and save_path is not None
        if rung:
            write(save_path)
        if config.patience:
            model.load(early.best_params)
        best = history[early.best_epoch - 1] if config.patience else history[-1]
        if best.test_acc is None and test is not None:
            best.test_acc = test_accuracy()
        wall = time.perf_counter() - started
    if save_path is not None and not rung:
        write(save_path)
    return TrainResult(config, model, history, len(train_split.y), wall,
                       sum(e.seconds for e in history), best.epoch, options, dataset.record(),
                       first_epoch - 1, in_force)
