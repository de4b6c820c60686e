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
from dataclasses import dataclass, field, fields, make_dataclass

from .constraints import (  # noqa: F401  (the constraints are named from here too)
    BatchSize,
    Constraint,
    Flag,
    ImageSize,
    Integer,
    Invalid,
    LabelColumn,
    Layers,
    Options,
    PathText,
    Real,
    Text,
)
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
# The dataset of a run whose `data` names its files (a path) rather than a registered name.
FROM_FILE = "file"


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


# Bounds no sensible run reaches, so that a typo is refused in one line rather than run for
# years (epochs, patience) or as noise (a shift that moves an image out of its frame; the
# trainer also refuses a shift of half the images' side or more, once it knows the side).
MAX_EPOCHS = 1_000_000
MAX_SHIFT = 64

SETTINGS = (
    Setting("layers", (128, 64, 32), Layers(), "hidden layer sizes"),
    Setting("init", "he", Options(INITS),
            "weight initialisation (uniform is the documents' [-0.5, 0.5] baseline)"),
    Setting("epochs", 400, Integer(1, MAX_EPOCHS), "passes over the training split"),
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
    Setting("augment_shift", 0, Integer(0, MAX_SHIFT), "shift each training image by up to K "
            "pixels, less than half its side (with affine or elastic augmentation: by a uniform "
            "real amount in [-K, K], bilinear)"),
    Setting("augment_rotate", 0.0, Real(0, 180), "affine augmentation: rotate each training "
            "image by a uniform angle in [-DEG, DEG] degrees"),
    Setting("augment_scale", 0.0, Real(0, 1, closed="left"), "affine augmentation: scale each "
            "training image by a uniform factor in [1 - F, 1 + F]"),
    Setting("augment_shear", 0.0, Real(0, 60), "affine augmentation: shear each training "
            "image by a uniform angle in [-DEG, DEG] degrees"),
    Setting("augment_elastic", 0.0, Real(0, 100), "elastic distortions (Simard et al. 2003): "
            "displace each training image's pixels by a random field smoothed by a Gaussian of "
            "--augment-elastic-sigma pixels, scaled by ALPHA (34 at sigma 4: about 1.4 px RMS; "
            "0: off)"),
    Setting("augment_elastic_sigma", 4.0, Real(0.5, 10), "elastic distortions: the standard "
            "deviation, in pixels, of the Gaussian that smooths the displacement field"),
    Setting("ema", 0.0, Real(0, 1, closed="left"), "decay of an exponential moving average of "
            "the weights, which evaluation, early stopping and the saved model use (0: off)"),
    Setting("schedule", "constant", Options(SCHEDULES), "learning-rate schedule"),
    Setting("warmup", 0.0, Real(0), "epochs of linear learning-rate warm-up (fewer than "
            "--epochs)"),
    Setting("lr_step_epochs", 0, Integer(0, MAX_EPOCHS),
            "step schedule: decay every N epochs (0: every third of the run)"),
    Setting("lr_gamma", 0.1, Real(0, 1, closed="neither"), "step schedule: decay factor"),
    Setting("patience", 0, Integer(0, MAX_EPOCHS), "early stopping after N epochs without "
            "improvement; the best weights are restored (0: off)"),
    Setting("early_stop", "val_acc", Options(("val_acc", "val_loss")),
            "what early stopping watches"),
    Setting("seed", 0, Integer(0, 2**63 - 1), "seeds the validation split, the "
            "initialisation, the shuffling, dropout and augmentation"),
    Setting("dataset", "mnist", Options(DATASETS, extra=(IN_MEMORY, FROM_FILE)),
            "a registered dataset, by name (--data reads any other)"),
    Setting("data", None, PathText(optional="--dataset, by name"),
            "a dataset's files: an .npz (x_train, y_train, optional x_test, y_test, "
            "class_names), a CSV or TSV file (numeric features, a label column), a folder with "
            "one subfolder of PNG/JPEG pictures per class (or train/ and test/ folders of "
            "them), or a folder of IDX files; the classes come from the training labels"),
    Setting("label_column", None, LabelColumn(optional="the column named label, else the last"),
            "CSV/TSV data: the column holding the labels, by header name or 0-based index"),
    Setting("image_size", None, ImageSize(optional="the first picture's size"),
            "picture folders: the size every picture is resized to, N or WxH pixels"),
    Setting("standardize", False, Flag(), "standardise every feature with the training "
            "split's mean and standard deviation, kept with the model (default: pictures "
            "scaled to [0, 1], other numbers as given)"),
    Setting("val_fraction", 0.2, Real(0, 1, closed="neither"),
            "share of the training samples held out for validation"),
    Setting("dtype", "float32", Options(DTYPES), "floating-point precision: float32, float64, "
            "or mixed_bfloat16 (float32 parameters and kernels, bfloat16 matmul operands "
            "summed in float32: fast on CPUs with bfloat16 units)"),
    Setting("eval_every", 0, Integer(0, MAX_EPOCHS),
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
    if self.data is not None:
        if self.dataset not in (BY_NAME["dataset"].default, FROM_FILE):
            raise FastMLPError(f"give data (files) or dataset (a name), not both: got dataset "
                               f"{self.dataset!r} and data {self.data!r}")
        object.__setattr__(self, "dataset", FROM_FILE)
    else:
        if self.dataset == FROM_FILE:
            raise FastMLPError(f"dataset {FROM_FILE!r} needs data, the path of its files")
        for name in ("label_column", "image_size"):
            if getattr(self, name) is not None:
                raise FastMLPError(f"{name} applies to data read from files (data), not to "
                                   f"the registered dataset {self.dataset!r}")


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
    """Whether `config` transforms its training images (shifts, affine or elastic
    augmentation)."""
    return bool(config.augment_shift or config.augment_rotate or config.augment_scale
                or config.augment_shear or config.augment_elastic)


def to_flags(config, settings=CONFIG_SETTINGS):
    """Command-line words that give `config` (or RunOptions, with RUN_SETTINGS) to `fastmlp
    train` (defaults left out)."""
    words = []
    for s in settings:
        value = getattr(config, s.name)
        if value == s.default:
            continue
        if isinstance(s.constraint, Flag):
            words.append(s.flag if value else "--no-" + s.flag[2:])
        else:
            words += [s.flag, *s.constraint.format(value)]
    return words
