"""Every setting of a run, declared once: name, default, constraint and help text.

The table is the single source of truth (as scikit-learn's `_parameter_constraints`): the
command-line flags, `TrainConfig` and its checks, the experiments grid loader and
`MLPClassifier.get_params`/`set_params` are all derived from it.

Two scopes, kept apart on purpose:
- "config": what decides a run's numbers (architecture, init, optimizer, schedule,
  regularisation, seed, dataset, validation fraction, dtype). It is what `TrainConfig` holds
  and what is recorded, saved, compared and resumed.
- "run": where and how it runs (threads, data directory). `RunOptions` holds them; they are
  recorded beside a run (--out's "run") but not saved with a model, and never change what the
  run is: the kernels give the same bits at any thread count, BLAS may round the last bits
  differently at another thread count (so a bit-exact comparison keeps the threads).

This module imports only the name registries below it (datasets, inits, dtypes, schedules,
optimizers), so the command line can check a whole run before numba is imported.
"""
import math
import numbers
from dataclasses import dataclass, field, fields, make_dataclass

from .data.registry import DATASETS
from .engine.model import INITS
from .engine.optim import OPTIMIZERS
from .engine.schedule import SCHEDULES
from .errors import FastMLPError
from .precisions import DTYPES
from .runtime.blas import BACKENDS

# A dataset given as arrays (MLPClassifier.fit, or fastmlp.train with a Dataset built in
# memory) rather than loaded by name.
IN_MEMORY = "arrays"


class Invalid(ValueError):
    """What is wrong with one value, as a phrase: "must be >= 1, got 0". Whoever knows where the
    value came from (a flag, a grid entry, a keyword) puts the place in front."""


# ---------------------------------------------------------------------------- constraints


class Constraint:
    """The values a setting takes. `check` takes a typed value (Python, TOML or JSON) and returns
    it normalised or raises Invalid; `parse` reads one command-line word; `format` writes the
    value back as command-line words (parse(format(v)) == v)."""
    metavar = None
    nargs = None

    def check(self, value):
        raise NotImplementedError

    def parse(self, text):
        return self.check(text)

    def format(self, value):
        return [str(value)]


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _interval_text(low, high, closed):
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    return f"in {left}{low:g}, {high:g}{right}"


@dataclass(frozen=True)
class Integer(Constraint):
    low: int
    high: int | None = None
    optional: str | None = None  # what None means, when None is allowed ("every core")

    def check(self, value):
        if value is None and self.optional:
            return None
        if not _is_int(value):
            raise Invalid(f"must be an integer, got {value!r}")
        if value < self.low or (self.high is not None and value > self.high):
            bound = (f">= {self.low}" if self.high is None
                     else f"in [{self.low}, {self.high}]")
            raise Invalid(f"must be an integer {bound}, got {value}")
        return int(value)

    def parse(self, text):
        try:
            value = int(text)
        except ValueError:
            raise Invalid(f"expected an integer, got {text!r}") from None
        return self.check(value)


@dataclass(frozen=True)
class Real(Constraint):
    """A finite number in an interval; `closed` says which ends belong to it."""
    low: float
    high: float = math.inf
    closed: str = "both"  # both | left | right | neither

    def check(self, value):
        if not (_is_int(value) or isinstance(value, numbers.Real)) or isinstance(value, bool):
            raise Invalid(f"must be a number, got {value!r}")
        given, value = value, float(value)
        above = value > self.low or (value == self.low and self.closed in ("both", "left"))
        below = value < self.high or (value == self.high and self.closed in ("both", "right"))
        if not (math.isfinite(value) and above and below):
            bound = (f"> {self.low:g}" if self.closed in ("right", "neither") else
                     f">= {self.low:g}") if self.high == math.inf else \
                _interval_text(self.low, self.high, self.closed)
            raise Invalid(f"must be a finite number {bound}, got {given!r}")
        return value

    def parse(self, text):
        try:
            value = float(text)
        except ValueError:
            raise Invalid(f"expected a number, got {text!r}") from None
        return self.check(value)

    def format(self, value):
        return [repr(value)]  # the shortest text that reads back as the same float


@dataclass(frozen=True)
class Options(Constraint):
    """One of a registry's names. `choices` is the registry itself (a dict or tuple), read when
    checking, so a dataset registered later is known; `extra` names are accepted but not
    offered on the command line."""
    choices: object
    extra: tuple = ()

    def names(self):
        return tuple(self.choices)

    def check(self, value):
        if not isinstance(value, str) or (value not in self.choices and value not in self.extra):
            raise Invalid(f"must be one of {', '.join(self.names())}, got {value!r}")
        return value


@dataclass(frozen=True)
class Flag(Constraint):
    def check(self, value):
        if not isinstance(value, bool):
            raise Invalid(f"must be true or false, got {value!r}")
        return value

    def format(self, value):
        return []  # a boolean flag is --name or --no-name, without a value


@dataclass(frozen=True)
class Layers(Constraint):
    """Hidden layer sizes: one or more positive integers."""
    metavar = "N"
    nargs = "+"

    def check(self, value):
        if (isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or not value
                or not all(_is_int(h) and h >= 1 for h in value)):
            raise Invalid(f"must be one or more positive integers, got {_plain(value)!r}")
        return tuple(int(h) for h in value)

    def parse(self, text):
        return Integer(1).parse(text)  # argparse collects the words into a list

    def format(self, value):
        return [str(h) for h in value]


@dataclass(frozen=True)
class BatchSize(Constraint):
    """A number of samples per step, or "full" (None): the whole training split, one step per
    epoch. A batch larger than the training split is full batch."""
    metavar = "full|N"

    def check(self, value):
        if value is None or value == "full":
            return None
        if not _is_int(value) or value < 1:
            raise Invalid(f'must be "full" or an integer >= 1, got {value!r}')
        return int(value)

    def parse(self, text):
        return None if text == "full" else Integer(1).parse(text)

    def format(self, value):
        return ["full" if value is None else str(value)]


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string, or None when `optional` says what None means."""
    optional: str | None = None

    def check(self, value):
        if value is None and self.optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise Invalid(f"must be a non-empty string, got {value!r}")
        return value


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    constraint: Constraint
    help: str
    scope: str = "config"  # "config": decides the numbers; "run": where and how it runs

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


SETTINGS = (
    Setting("layers", (128, 64, 32), Layers(), "hidden layer sizes"),
    Setting("init", "he", Options(INITS),
            "weight initialisation (uniform is the documents' [-0.5, 0.5] baseline)"),
    Setting("epochs", 400, Integer(1), "passes over the training split"),
    Setting("batch_size", None, BatchSize(),
            "full: one gradient step per epoch over all training images; N: minibatches of N, "
            "reshuffled every epoch (N larger than the training split means full batch)"),
    Setting("lr", 0.1, Real(0, closed="neither"), "learning rate"),
    Setting("optimizer", "sgd", Options(OPTIMIZERS), "the update rule"),
    Setting("momentum", 0.9, Real(0, 1, closed="left"), "momentum's beta"),
    Setting("nesterov", False, Flag(), "Nesterov momentum (optimizer momentum only)"),
    Setting("beta1", 0.9, Real(0, 1, closed="left"), "Adam's first-moment decay"),
    Setting("beta2", 0.999, Real(0, 1, closed="left"), "Adam's second-moment decay"),
    Setting("eps", 1e-8, Real(0, closed="neither"), "Adam's denominator term"),
    Setting("weight_decay", 0.0, Real(0), "L2 penalty (sgd, momentum, adam) or decoupled "
            "decay (adamw)"),
    Setting("dropout", 0.0, Real(0, 1, closed="left"),
            "probability of dropping a hidden unit while training (inverted dropout)"),
    Setting("label_smoothing", 0.0, Real(0, 1, closed="left"), "train against the target "
            "(1 - EPS) * onehot(label) + EPS / classes; evaluation stays plain cross-entropy"),
    Setting("augment_shift", 0, Integer(0), "shift each training image by up to K pixels "
            "(with affine augmentation: by a uniform real amount in [-K, K], bilinear)"),
    Setting("augment_rotate", 0.0, Real(0, 180), "affine augmentation: rotate each training "
            "image by a uniform angle in [-DEG, DEG] degrees"),
    Setting("augment_scale", 0.0, Real(0, 1, closed="left"), "affine augmentation: scale each "
            "training image by a uniform factor in [1 - F, 1 + F]"),
    Setting("augment_shear", 0.0, Real(0, 60), "affine augmentation: shear each training "
            "image by a uniform angle in [-DEG, DEG] degrees"),
    Setting("ema", 0.0, Real(0, 1, closed="left"), "decay of an exponential moving average of "
            "the weights, which evaluation, early stopping and the saved model use (0: off)"),
    Setting("schedule", "constant", Options(SCHEDULES), "learning-rate schedule"),
    Setting("warmup", 0.0, Real(0), "epochs of linear learning-rate warm-up (fewer than "
            "--epochs)"),
    Setting("lr_step_epochs", 0, Integer(0),
            "step schedule: decay every N epochs (0: every third of the run)"),
    Setting("lr_gamma", 0.1, Real(0, 1, closed="neither"), "step schedule: decay factor"),
    Setting("patience", 0, Integer(0), "early stopping after N epochs without improvement; "
            "the best weights are restored (0: off)"),
    Setting("early_stop", "val_acc", Options(("val_acc", "val_loss")),
            "what early stopping watches"),
    Setting("seed", 0, Integer(0, 2**63 - 1), "seeds the validation split, the "
            "initialisation, the shuffling, dropout and augmentation"),
    Setting("dataset", "mnist", Options(DATASETS, extra=(IN_MEMORY,)), "the dataset"),
    Setting("val_fraction", 0.2, Real(0, 1, closed="neither"),
            "share of the training images held out for validation"),
    Setting("dtype", "float32", Options(DTYPES), "floating-point precision: float32, float64, "
            "or mixed_bfloat16 (float32 parameters and kernels, bfloat16 matmul operands "
            "summed in float32: fast on CPUs with bfloat16 units)"),
    Setting("eval_every", 0, Integer(0),
            "also measure test accuracy every K epochs (0: only at the end)"),
    Setting("threads", None, Integer(1, optional="every core"), "BLAS and numba threads",
            scope="run"),
    Setting("blas", "auto", Options(("auto", *BACKENDS)), "the GEMM library of the matmuls: "
            "auto times openblas and mkl (when installed: pip install 'fastmlp[mkl]') on each "
            "of the run's matmuls on this machine and keeps the faster, once per machine",
            scope="run"),
    Setting("data_dir", None, Text(optional="the usual lookup"),
            "directory holding the dataset's four IDX files (or a <dataset>/ folder with "
            "them); default: $FASTMLP_DATA, the MNIST files fastmlp ships, the user cache, then "
            "system directories", scope="run"),
)
BY_NAME = {s.name: s for s in SETTINGS}
CONFIG_SETTINGS = tuple(s for s in SETTINGS if s.scope == "config")
RUN_SETTINGS = tuple(s for s in SETTINGS if s.scope == "run")


def check(name, value):
    """`value` checked and normalised for setting `name`; a FastMLPError names the setting."""
    try:
        return BY_NAME[name].constraint.check(value)
    except Invalid as e:
        raise FastMLPError(f"{name} {e}") from None


def _check_fields(self):
    for f in fields(self):
        object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))


def _check_config(self):
    _check_fields(self)
    # What one value cannot say alone.
    if self.warmup >= self.epochs:
        raise FastMLPError(f"warmup must be shorter than the run ({self.epochs} epochs), got "
                           f"{self.warmup:g}")
    if self.nesterov and self.optimizer != "momentum":
        raise FastMLPError(f"nesterov needs optimizer momentum, got optimizer "
                           f"{self.optimizer!r}")


def _make(name, settings, post_init, doc):
    return make_dataclass(
        name, [(s.name, object, field(default=s.default)) for s in settings], frozen=True,
        namespace={"__post_init__": post_init, "__doc__": doc, "__module__": __name__})


TrainConfig = _make("TrainConfig", CONFIG_SETTINGS, _check_config, """\
What decides a run's numbers: every "config" setting of the table, checked on construction
(a FastMLPError names the first bad setting). The defaults are the source documents' deepest
experiment: [128, 64, 32], He init, full-batch gradient descent, lr 0.1, 400 epochs.""")

RunOptions = _make("RunOptions", RUN_SETTINGS, _check_fields, """\
Where and how a run runs (threads, data directory): recorded beside it, never saved with it.""")


def augmented(config):
    """Whether `config` transforms its training images (shifts or affine augmentation)."""
    return bool(config.augment_shift or config.augment_rotate or config.augment_scale
                or config.augment_shear)


def to_flags(config):
    """Command-line words that give `config` to `fastmlp train` (defaults left out)."""
    words = []
    for s in CONFIG_SETTINGS:
        value = getattr(config, s.name)
        if value == s.default:
            continue
        if isinstance(s.constraint, Flag):
            words.append(s.flag if value else "--no-" + s.flag[2:])
        else:
            words += [s.flag, *s.constraint.format(value)]
    return words
