"""A run in progress, one epoch at a time: the Trainer with its evaluation, early stopping, the
divergence rule and the history, resumable and checkpointable. `loop.train` runs a Session to
its end; `MLPClassifier.partial_fit` runs one epoch of one per call, so the two give the same
weights after the same epochs."""
import dataclasses
import time
from pathlib import Path

from ..engine.gemm import Gemm
from ..engine.workspace import EVAL_ROWS, Workspace
from ..errors import ChecksumMismatch, FastMLPError
from ..precisions import parameter_dtype
from ..runtime import blas
from ..runtime.versions import fastmlp_version
from ..settings import BY_NAME, FROM_FILE, IN_MEMORY
from . import checkpoint
from .plan import allocating, plan_for
from .result import EpochStats, TrainResult
from .stopping import EarlyStopping, check_divergence
from .trainer import make_trainer


def matching(config, dataset):
    """`config` as the run really happens on `dataset`: data given as arrays is recorded as
    such, data read from files by its path; data loaded by name must be the split the config
    names, and its scaling the config's."""
    path = None if dataset.source is None else dataset.source["path"]
    if path is not None:
        if config.data is None and config.dataset == BY_NAME["dataset"].default:
            config = dataclasses.replace(config, data=path, dataset=FROM_FILE)
        if config.data is None or Path(config.data).resolve() != Path(path):
            raise FastMLPError(f"the config names data {config.data or config.dataset!r}, the "
                               f"data given was read from {path}")
    elif dataset.directory is None:
        if config.dataset != IN_MEMORY or config.data is not None:
            config = dataclasses.replace(config, dataset=IN_MEMORY, data=None,
                                         label_column=None, image_size=None)
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
    if config.standardize != (dataset.scaler is not None):
        raise FastMLPError(f"the config {'asks' if config.standardize else 'does not ask'} for "
                           "standardized features, the data given "
                           f"{'is not' if config.standardize else 'is'} standardized")
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


def check_resumable(resume, dataset):
    """Refuse a checkpoint made by another fastmlp version or on other data than `dataset`."""
    made_by = resume.versions.get("fastmlp")
    if made_by is not None and made_by != fastmlp_version():
        raise FastMLPError(f"the checkpoint was written by fastmlp {made_by}, this is "
                           f"{fastmlp_version()}: a resumed run would mix two versions' numbers; "
                           "train it again")
    if resume.dataset.get("sha256") != dict(dataset.sha256):
        raise ChecksumMismatch("the checkpoint was trained on other data files than these "
                               f"({dataset.name} in {dataset.directory or dataset.source})")
    record = dataset.record()
    for key in ("seed", "val_fraction", "n_train", "n_val", "classes"):
        if resume.dataset.get(key) is not None and resume.dataset[key] != record[key]:
            raise FastMLPError(f"the checkpoint's data split has {key} "
                               f"{resume.dataset[key]!r}, this one {record[key]!r}")


def run_plan(config, dataset, options, resume=None):
    """plan_for the run; a resumed run sends its matmuls where the checkpointed run did (bit
    for bit, as long as its threads are the same too), unless options.blas says otherwise."""
    saved_gemm = None
    if resume is not None and options.blas == "auto":
        saved_gemm = gemm_from_state(resume.state.get("gemm"))
    return plan_for(config, dataset, options=options, gemm=saved_gemm)


class Session:
    """The run of `config` on `dataset`, stepped by `epoch()`. resume: a checkpoint.Checkpoint
    to continue; initial: an MLP whose weights replace the initial ones (a warm start)."""

    def __init__(self, config, dataset, options, max_memory=None, resume=None, plan=None,
                 initial=None):
        self.config = config = matching(config, dataset)
        self.dataset, self.options = dataset, options
        self.plan = plan or run_plan(config, dataset, options, resume)
        self.trainer = trainer = make_trainer(config, dataset, max_memory, plan=self.plan)
        self.model = model = trainer.evaluated  # evaluated, kept by early stopping, saved
        val, test = dataset.val, dataset.test
        eval_rows = max(len(val.y), 0 if test is None else len(test.y))
        with allocating(self.plan):
            # Forward only: evaluation's loss and count (xent_count) write no gradient.
            self.eval_ws = Workspace(model, min(EVAL_ROWS, eval_rows), backward=False,
                                     gather=False)
            self.validate = trainer.evaluator(val.x, val.y, self.eval_ws)
            self.early = EarlyStopping(model, config.early_stop, config.patience)
        self.tested = None  # the test split's evaluator, made when first needed
        self.history, self.initial_loss = [], None
        if initial is not None:
            trainer.load(initial.params)
            if trainer.averaged is not None:
                trainer.averaged.load(initial.params)
        if resume is not None:
            check_resumable(resume, dataset)
            trainer.load(resume.model.params)
            trainer.restore(resume.state["trainer"], resume.arrays)
            self.early.restore(resume.state["early"], resume.arrays)
            self.history = [EpochStats(**e) for e in resume.history]
            # Checkpoints from before the rule kept no initial loss: their first epoch's.
            self.initial_loss = resume.state.get(
                "initial_loss", self.history[0].train_loss if self.history else None)
        self.resumed_epochs = len(self.history)

    @property
    def epochs_done(self):
        return len(self.history)

    def start(self):
        """The untrained model's validation loss, which the divergence rule measures against
        (measured once, before the first epoch)."""
        if self.initial_loss is None:
            self.initial_loss = self.validate()[1]

    def epoch(self):
        """Train the next epoch and validate: its EpochStats, or None when a stop was requested
        (a signal) before the epoch's end. Diverged when the loss says so."""
        self.start()
        number = len(self.history) + 1
        t0 = time.perf_counter()
        done = self.trainer.epoch()
        if done is None:
            return None
        loss, train_acc = done
        seconds = time.perf_counter() - t0
        scaled = self.dataset.scaler is not None
        check_divergence(number, loss, self.initial_loss, self.dataset.n_classes,
                         self.config.lr, None if scaled else self.dataset.train.x)
        val_acc, val_loss = self.validate()
        test = self.dataset.test
        every = self.config.eval_every
        test_due = test is not None and every and number % every == 0
        test_acc = self.test_accuracy() if test_due else None
        trainer = self.trainer
        stats = EpochStats(number, trainer.schedule.lr(trainer.optimizer.steps - 1), loss,
                           train_acc, val_loss, val_acc, test_acc, seconds,
                           len(self.dataset.train.y) / seconds)
        self.history.append(stats)
        self.early.update(self.model, stats)
        return stats

    def test_accuracy(self):
        """The evaluated model's accuracy on the test split, the plain way (no path copies the
        test split, which is evaluated seldom)."""
        if self.tested is None:
            test = self.dataset.test
            with allocating(self.plan):
                self.tested = self.trainer.evaluator(test.x, test.y, self.eval_ws, plain=True)
        return self.tested()[0]

    def write(self, path):
        """A resumable checkpoint of the run as it stands."""
        trainer_state, arrays = self.trainer.state()
        checkpoint.save(path, self.model, self.config,
                        [dataclasses.asdict(e) for e in self.history], self.dataset.record(),
                        {"trainer": trainer_state, "early": self.early.state(),
                         "initial_loss": self.initial_loss,
                         "gemm": gemm_state(self.trainer.gemm)},
                        {**arrays, **self.early.arrays()}, scaler=self.dataset.scaler)

    def finish(self, started, effective_threads):
        """Restore early stopping's best weights, measure the test accuracy the result reports,
        and return the TrainResult (its wall time counted from perf_counter() `started`)."""
        config, history = self.config, self.history
        if config.patience:
            self.model.load(self.early.best_params)
        best = history[self.early.best_epoch - 1] if config.patience else history[-1]
        if best.test_acc is None and self.dataset.test is not None:
            best.test_acc = self.test_accuracy()
        wall_seconds = time.perf_counter() - started
        train_seconds = sum(e.seconds for e in history)
        return TrainResult(config, self.model, history, len(self.dataset.train.y), wall_seconds,
                           train_seconds, best.epoch, self.options, self.dataset.record(),
                           self.resumed_epochs, effective_threads)
