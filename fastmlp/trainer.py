"""Training: the epoch loop over forward -> backward -> update, evaluation, early stopping,
checkpoints, and the history."""
import dataclasses
import math
import signal
import threading
import time
from contextlib import contextmanager

import numpy as np

from . import augment, batches, checkpoint, fused, kernels, paths, sparse
from .backward import backward
from .data import load_dataset_for
from .early import EarlyStopping, check_divergence
from .errors import FastMLPError, OutOfMemory, TrainingInterrupted
from .forward import forward
from .jit import ready
from .kernels import xent_count
from .model import MLP
from .plan import check_fits, need_text, plan_for
from .result import EpochStats, TrainResult
from .schedule import Schedule
from .settings import IN_MEMORY, RunOptions, TrainConfig
from .threads import kernel_threads, thread_limits, threads_in_force
from .update import make_optimizer
from .workspace import EVAL_ROWS, Workspace


def evaluate(model, ws, x, y, first=None):
    """(accuracy, mean cross-entropy) of the model on x (N, n_in), y (N,), in chunks of ws.rows
    rows. With `first` (sparse.SparseRows), x is the row indices of its CSR copy of the inputs.
    The loss and the count come from one kernel that writes no gradient (xent_count): the deep
    run's validation pass (12,000 rows, sparse forward, 2 threads, 15 in turns in one locked
    command) took 23.6 ms at best with a count kernel and softmax_xent_backward, 20.8 ms so."""
    correct, loss_sum = 0, 0.0
    with kernel_threads(min(ws.rows, len(y))):
        for start in range(0, len(y), ws.rows):
            stop = min(start + ws.rows, len(y))
            chunk = ws.rows_view(stop - start)
            forward(model, chunk, x[start:stop], first=first)
            loss, hits = xent_count(chunk.logits, y[start:stop], chunk.loss_partial,
                                    chunk.count_partial)
            correct += hits
            loss_sum += loss
    return correct / len(y), loss_sum / len(y)


class Trainer:
    """Steps a model through epochs of one training split.

    At full batch without augmentation one epoch is one step on the split itself, read in
    place. Otherwise the order is reshuffled every epoch and each minibatch is gathered into the
    workspace by a kernel (which also shifts or transforms the images when augmenting); the
    last partial batch is used too. Dropout masks and augmentations come from counter-based
    random numbers keyed by the seed and the step count, so a run resumed from a checkpoint
    draws exactly what the uninterrupted run would have.

    affine: (rotate degrees, scale, shear degrees) of augment.gather_affine, or all zero.
    label_smoothing: the training loss's target is (1 - it) * onehot + it / classes (the
    fused pass has no smoothing: paths.choose then takes another path); evaluation is plain.
    ema > 0 keeps an exponential moving average of the weights in `self.averaged` (an MLP
    beside `model`), updated after every step; `evaluated` is the model evaluation uses.
    """

    def __init__(self, model, optimizer, schedule, x, y, batch_size, rng, *, dropout=0.0,
                 augment_shift=0, affine=(0.0, 0.0, 0.0), ema=0.0, seed=0, plain=False,
                 label_smoothing=0.0, path=None):
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.y, self.rng = y, rng
        n = len(y)
        self.batch_size = n if batch_size is None else min(batch_size, n)
        self.keep = 1.0 - dropout
        self.smoothing = float(label_smoothing)
        # The gather (batches.Gather) keeps the augmentation; the trainer only checks it.
        affine = tuple(map(float, affine)) if augment.affine_on(*affine) else None
        side = math.isqrt(x.shape[1])
        if (augment_shift or affine) and side ** 2 != x.shape[1]:
            raise FastMLPError(f"shift and affine augmentation need square images, but samples "
                               f"have {x.shape[1]} features")
        self.seed = seed
        self.ema = float(ema)
        self.averaged = None
        if self.ema:
            ready(model.dtype, "ema_update")
            self.averaged = MLP(model.sizes, model.dtype)
            np.copyto(self.averaged.params, model.params)
        self.in_place = self.batch_size == n and not augment_shift and not affine
        # The fastest exact path that serves (paths.py); `path` says which runs. The run's plan
        # has asked paths.choose already (`path`, its answer), unless plain.
        name, kept = path if path is not None and not plain else paths.choose(
            model.sizes, x, in_place=self.in_place, rows=self.batch_size, shift=augment_shift,
            affine=bool(affine), dropout=dropout, plain=plain, smoothing=self.smoothing)
        # The workspace first: it makes the core kernels ready (build's transpose is one).
        self.ws = Workspace(model, self.batch_size, gather=not self.in_place,
                            columns=None if kept is None else kept.size)
        self.path, self.fused, self.first, self.x_in, self.x_t = paths.build(
            name, kept, model, x, y, in_place=self.in_place)
        self.gather = batches.Gather(x, y, side, augment_shift, affine,
                                     None if self.first is None else self.first.kept, seed)
        self.order = np.arange(n, dtype=np.int64)
        # Per minibatch, made once: (its workspace rows, its view of the shuffled order, which
        # shuffles in place).
        self.minibatches = [(self.ws.rows_view(min(s + self.batch_size, n) - s),
                             self.order[s:s + self.batch_size])
                            for s in range(0, n, self.batch_size)]
        # Set (by a signal handler) to stop at the end of the current step; an epoch cut short
        # keeps its place and running sums so that it can be finished, also after a resume.
        self.stop_requested = False
        self.position, self.partial = 0, (0.0, 0)

    def step(self, ws, x, x_t, y):
        """One forward -> backward -> update; returns (loss, correct) of the pre-update model."""
        forward(self.model, ws, x, self.keep, self.seed, self.optimizer.steps, self.first)
        loss, correct = backward(self.model, ws, x_t, y, 1.0 / self.keep, self.first,
                                 self.smoothing)
        self.update()
        return loss, correct

    def update(self):
        """The optimizer's step, then the moving average's."""
        self.optimizer.step(self.model, self.schedule.lr(self.optimizer.steps))
        if self.averaged is not None:
            kernels.ema_update(self.averaged.params, self.model.params, self.ema,
                               self.optimizer.steps)

    @property
    def evaluated(self):
        """The model evaluation, early stopping and saving use: the averaged weights if any."""
        return self.model if self.averaged is None else self.averaged

    def epoch(self):
        """Train one epoch (or the rest of one cut short); returns (mean loss, accuracy) over
        its samples, or None when stop_requested cut it short."""
        if self.in_place:
            with kernel_threads(self.batch_size):
                if self.fused is not None:
                    loss, correct = self.fused.step(self.model)
                    self.update()
                else:
                    loss, correct = self.step(self.ws, self.x_in, self.x_t, self.y)
            return loss, correct / len(self.y)
        if self.position == 0 and len(self.minibatches) > 1:
            self.rng.shuffle(self.order)
        loss_sum, correct = self.partial
        first, steps = self.position, self.optimizer.steps
        with kernel_threads(self.batch_size):
            for b in range(first, len(self.minibatches)):
                ws, index = self.minibatches[b]
                self.gather(ws.x, ws.y, index, steps + b - first)
                loss, hits = self.step(ws, ws.x, ws.x.T, ws.y)
                loss_sum += loss * ws.rows
                correct += hits
                if self.stop_requested and b + 1 < len(self.minibatches):
                    self.position, self.partial = b + 1, (loss_sum, correct)
                    return None
        self.position, self.partial = 0, (0.0, 0)
        return loss_sum / len(self.y), correct / len(self.y)

    def evaluator(self, x, y, ws):
        """A function giving (accuracy, mean loss) of the model on the fixed data x, y: the
        fused pass's forward or the sparse forward where they serve this trainer, else
        `evaluate` in ws; of the averaged weights when there are."""
        if isinstance(self.first, sparse.SparseFirst):  # a CSR copy of x, every column
            first, rows = sparse.SparseRows(x), np.arange(len(y))
            return lambda: evaluate(self.evaluated, ws, rows, y, first)
        if self.fused is None:
            return lambda: evaluate(self.evaluated, ws, x, y)
        sweep = fused.FusedPass(self.model, x, y)
        return lambda: sweep.evaluate(self.evaluated)

    def state(self):
        """What a checkpoint needs to continue this trainer bit for bit: (JSON-able, arrays)."""
        return ({"optimizer_steps": self.optimizer.steps,
                 "rng": self.rng.bit_generator.state,
                 "position": self.position, "partial": list(self.partial)},
                {"order": self.order, **{f"opt_{k}": v for k, v in self.optimizer.state.items()},
                 **({} if self.averaged is None else {"trained_params": self.model.params})})

    def restore(self, state, arrays):
        self.optimizer.steps = state["optimizer_steps"]
        self.rng.bit_generator.state = state["rng"]
        self.position, self.partial = state["position"], tuple(state["partial"])
        self.order[...] = arrays["order"]
        for name, buffer in self.optimizer.state.items():
            buffer[...] = arrays[f"opt_{name}"]
        if self.averaged is not None:  # the checkpoint's model is the average
            np.copyto(self.averaged.params, self.model.params)
            np.copyto(self.model.params, arrays["trained_params"])


@contextmanager
def _allocating(config, dataset):
    """A MemoryError the plan did not foresee (other processes took the memory meanwhile)
    becomes one OutOfMemory line too."""
    try:
        yield
    except MemoryError:
        raise OutOfMemory(f"{need_text(plan_for(config, dataset))}; allocating it failed") \
            from None


def make_trainer(config, dataset, max_memory=None, plain=False, plan=None):
    """A freshly initialised model and its Trainer on dataset.train, as `config` says; refused
    with OutOfMemory before allocating when the run's plan (plan.py; `plan`, when the caller has
    made it already) needs more than the memory available or `max_memory` bytes. plain=True:
    the plain path (no fused pass or pruned columns). The trainer takes the path the plan
    chose."""
    plan = plan or plan_for(config, dataset)
    check_fits(plan, max_memory)
    with _allocating(config, dataset):
        return _make_trainer(config, dataset, plain, plan.path)


def _make_trainer(config, dataset, plain, path):
    x, y = dataset.train.x, dataset.train.y
    init_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(2)
    model = MLP([x.shape[1], *config.layers, dataset.n_classes], x.dtype)
    model.initialize(config.init, np.random.default_rng(init_seed))
    batch_size = min(config.batch_size or len(y), len(y))
    schedule = Schedule(config.schedule, config.lr, config.epochs, -(-len(y) // batch_size),
                        config.warmup, config.lr_step_epochs, config.lr_gamma)
    return Trainer(model, make_optimizer(config, model), schedule, x, y, config.batch_size,
                   np.random.default_rng(shuffle_seed), dropout=config.dropout,
                   augment_shift=config.augment_shift,
                   affine=(config.augment_rotate, config.augment_scale, config.augment_shear),
                   ema=config.ema, seed=config.seed, plain=plain,
                   label_smoothing=config.label_smoothing, path=path)


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
    if dataset.train.x.dtype.name != config.dtype:
        raise FastMLPError(f"dataset is {dataset.train.x.dtype}, config asks for "
                           f"{config.dtype}")
    return config


def train(config=None, dataset=None, on_epoch=None, *, options=None, save_path=None,
          checkpoint_every=0, resume=None, interrupt_path=None, max_memory=None,
          stop_after=None, handle_signals=True, plan=None):
    """Train an MLP as `config` says and return a TrainResult.

    dataset: from fastmlp.data.load_dataset (its test split may be None); loaded from config
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
    A diverging run (see `diverged`) stops with a FastMLPError. A run that would need more
    memory than is available or `max_memory` bytes is refused with OutOfMemory (plan.py);
    `plan` is plan_for(config, dataset) when the caller has made it already (on the deep run's
    inputs it scans them: 80 ms).
    """
    if config is None:
        config = resume.config if resume is not None else TrainConfig()
    options = RunOptions() if options is None else options
    if dataset is None:
        dataset = load_dataset_for(config, options.data_dir)
    config = _matching(config, dataset)
    train_split, val, test = dataset.train, dataset.val, dataset.test
    trainer = make_trainer(config, dataset, max_memory, plan=plan)
    model = trainer.evaluated  # evaluated, kept by early stopping, saved and returned
    eval_rows = max(len(val.y), 0 if test is None else len(test.y))
    with _allocating(config, dataset):
        # Forward only: evaluation's loss and count (xent_count) write no gradient.
        eval_ws = Workspace(model, min(EVAL_ROWS, eval_rows), backward=False, gather=False)
        validate = trainer.evaluator(val.x, val.y, eval_ws)
        early = EarlyStopping(model, config.early_stop, config.patience)
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
        np.copyto(trainer.model.params, resume.model.params)
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
                         "initial_loss": initial_loss},
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
            test_acc = evaluate(model, eval_ws, test.x, test.y)[0] if test_due else None
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
            np.copyto(model.params, early.best_params)
        best = history[early.best_epoch - 1] if config.patience else history[-1]
        if best.test_acc is None and test is not None:
            best.test_acc = evaluate(model, eval_ws, test.x, test.y)[0]
        wall = time.perf_counter() - started
    if save_path is not None and not rung:
        write(save_path)
    return TrainResult(config, model, history, len(train_split.y), wall,
                       sum(e.seconds for e in history), best.epoch, options, dataset.record(),
                       first_epoch - 1, in_force)
