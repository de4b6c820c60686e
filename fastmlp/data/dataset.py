"""The dataset abstraction: a Dataset's train / validation / test splits of float features and
class indices, its classes, and how it was made (checksums, the seeded split, the reading of its
files, the standardisation). `assemble` makes one from any loader's raw arrays, so that every
kind of data is split, scaled and checked the same way."""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, FastMLPError
from .classes import classes_of, encode, to_json
from .scaling import Standardizer, to_float


@dataclass(frozen=True, eq=False)
class Split:
    """One part of a dataset: rows of features as floats, labels as class indices 0..K-1."""

    x: np.ndarray  # (n, n_features) float32 or float64, C-contiguous
    y: np.ndarray  # (n,) int32, C-contiguous

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split(x={self.x.dtype}{list(self.x.shape)}, y={self.y.dtype}{list(self.y.shape)})"


@dataclass(frozen=True, eq=False)
class Dataset:
    """Splits of one dataset and what made them. `classes[k]` is the class that index k stands
    for (an integer, or a name such as Fashion-MNIST's "Dress"); every split's labels are checked
    to be in 0..K-1 when the Dataset is made, so no kernel is given another."""

    name: str
    directory: Path | None  # where a registered dataset's files were read from (None: not one)
    train: Split
    val: Split
    test: Split | None
    sha256: dict[str, str] = field(repr=False)  # file name -> SHA-256 of its (uncompressed) bytes
    # How train and val were split from the training file (None: given as separate arrays).
    seed: int | None = None
    val_fraction: float | None = None
    classes: np.ndarray | None = field(default=None, repr=False)  # None: 0..the largest label
    # A dataset read from a path (data/source.py): {"kind", "path", and how it was read}.
    source: dict | None = None
    scaler: Standardizer | None = field(default=None, repr=False)  # fitted on the train split
    image_shape: tuple | None = None  # (rows, cols) of each sample when it is a picture

    def __post_init__(self):
        splits = [s for s in (self.train, self.val, self.test) if s is not None]
        if self.classes is None:
            top = max((int(s.y.max()) for s in splits if len(s)), default=0)
            object.__setattr__(self, "classes", np.arange(top + 1))
        k = len(self.classes)
        for name, s in zip(("train", "val", "test"), (self.train, self.val, self.test)):
            if s is not None and len(s) and (s.y.min() < 0 or s.y.max() >= k):
                raise DataError(f"{self.name}: {name} labels must be class indices in "
                                f"0..{k - 1}, got {int(s.y.min())}..{int(s.y.max())}")

    def record(self) -> dict:
        """What a saved model keeps of its data: enough to rebuild the exact split
        (load.load_recorded) and to refuse other files."""
        return {"name": self.name, "sha256": dict(self.sha256), "seed": self.seed,
                "val_fraction": self.val_fraction, "n_train": len(self.train),
                "n_val": len(self.val), "n_test": None if self.test is None else len(self.test),
                "classes": to_json(self.classes), "source": self.source,
                "image_shape": None if self.image_shape is None else list(self.image_shape)}

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def split_rows(n: int, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) of n samples: the first round(n * val_fraction) of a
    `seed`-determined permutation are the validation rows."""
    n_val = round(n * val_fraction)
    if not 0 < n_val < n:
        raise FastMLPError(
            f"val_fraction {val_fraction} leaves an empty split of the {n} training samples"
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise FastMLPError(f"dtype {dtype} not supported, use float32 or float64")
    return dtype


def named(labels, names, where):
    """Labels that index `names` (a dataset's declared class names) as those names; an index
    out of range, or a label that is no index, is refused."""
    if np.asarray(labels).dtype.kind not in "iub":
        raise DataError(f"{where}: with class names declared, the labels must be integer "
                        f"indices into them, got {np.asarray(labels).dtype}")
    return names[encode(labels, np.arange(len(names)), where)]


def assemble(name, x, labels, test=None, *, dtype, seed, val_fraction, declared=None,
             classes=None, standardize=False, scaler=None, where=None, **about):
    """A Dataset from raw arrays: x (n, n_features) of numbers (uint8 pictures are scaled to
    [0, 1], other numbers kept as given), labels (n,) of any classes, test (x, labels) or None.

    The classes are those of the training labels (the whole training file, validation rows
    included, so that a rare class does not depend on the seed), or the names `declared`, or a
    model's `classes`; a test label outside them is refused. The validation rows are split off by
    `seed` (split_rows). With `standardize`, the features are standardised with the training
    rows' statistics (or with a model's `scaler`). `about`: the Dataset's other fields
    (directory, sha256, source, image_shape); `where` names the data in messages (its path;
    default: its name)."""
    dtype = check_dtype(dtype)
    place = where or name
    where = f"{place}: training labels"
    if declared is not None:  # the labels index the names: the names are the classes
        declared = np.asarray(declared)
        labels = named(labels, declared, where)
        test = None if test is None else (test[0], named(test[1], declared,
                                                         f"{place}: test labels"))
    if classes is None and declared is not None:
        classes = declared
    if classes is None:
        classes, y = classes_of(labels, where=where)
        if len(classes) < 2:
            raise DataError(f"{where} hold one class ({classes[0].item()!r}); a classifier "
                            "needs at least 2")
    else:
        y = encode(labels, classes, where)
    train_rows, val_rows = split_rows(len(y), seed, val_fraction)
    # Gather the raw rows first: for pictures, a quarter of the bytes of gathering floats.
    train = Split(to_float(x[train_rows], dtype, place), y[train_rows])
    val = Split(to_float(x[val_rows], dtype, place), y[val_rows])
    test_split = None
    if test is not None:
        test_split = Split(to_float(test[0], dtype, place),
                           encode(test[1], classes, f"{place}: test labels"))
    if standardize:
        scaler = scaler or Standardizer.fit(train.x)
        for split in (train, val, test_split):
            if split is not None:
                scaler.apply(split.x)
    else:
        scaler = None
    about.setdefault("sha256", {})
    return Dataset(name=name, directory=about.pop("directory", None), train=train, val=val,
                   test=test_split, seed=seed, val_fraction=val_fraction, classes=classes,
                   scaler=scaler, **about)
