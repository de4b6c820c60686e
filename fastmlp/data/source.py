"""Datasets named by a path (`fastmlp train --data PATH`, a grid's `data = "PATH"`): which kind it
is, read by its loader (npz.py, tabular.py, folders.py, IDX files), checksummed, then split and
scaled by dataset.assemble like every other dataset. `inspect` sizes one without reading it, so
that a dataset larger than memory is refused before it is loaded."""
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import folders, idxfiles, npz, tabular
from .dataset import assemble
from .idx import read_idx_sha256

KINDS = ("npz", "table", "folder", "idx")
WHAT = ("--data takes an .npz file, a CSV or TSV file, a folder with one subfolder of pictures "
        "per class, or a folder of IDX files")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Raw:
    """A dataset as its files hold it, before the split and the scaling."""
    x: np.ndarray  # (n, n_features) numbers; uint8 for pictures
    labels: np.ndarray  # (n,)
    test: tuple | None  # (x, labels)
    declared: np.ndarray | None  # class names the file declares (labels index them)
    sha256: dict  # file name -> SHA-256
    image_shape: tuple | None  # (rows, cols) of pictures
    reading: dict  # how it was read, as a saved model records it


def kind_of(path):
    """"npz", "table", "folder" or "idx"; anything else is one DataError line."""
    path = Path(path)
    if path.is_dir():
        if idxfiles.roles(path) is not None:
            return "idx"
        if folders.class_folders(path):
            return "folder"
        raise DataError(f"{path}: a folder with neither IDX files nor class subfolders; {WHAT}")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in tabular.SUFFIXES:
        return "table"
    raise DataError(f"{path}: not a dataset fastmlp reads ({suffix or 'no suffix'}); {WHAT}")


def fingerprint(path):
    """The SHA-256 of a dataset's bytes: of the file, or of every file below a folder (with
    its relative name), in name order. What a grid keys a run on, and what a record keeps."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    try:
        for file in files:
            if file is not path:
                digest.update(str(file.relative_to(path)).encode() + b"\0")
            with open(file, "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    return digest.hexdigest()


def _size(image_size, path):
    return tuple(image_size) if image_size else folders.first_size(path)


def read(path, label_column=None, image_size=None):
    """The Raw dataset at `path`, of any kind."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "npz":
        a = npz.read_npz(path)
        test = None if a.x_test is None else (a.x_test, a.y_test)
        return Raw(a.x_train, a.y_train, test, a.class_names, {path.name: fingerprint(path)},
                   a.image_shape, {"kind": kind})
    if kind == "table":
        t = tabular.read_table(path, label_column)
        return Raw(t.x, t.labels, None, None, {path.name: fingerprint(path)}, None,
                   {"kind": kind, "label_column": t.label if t.header else t.label_index,
                    "header": t.header, "columns": t.columns})
    if kind == "folder":
        size = _size(image_size, path)
        splits = {name: folders.read_split(folder, size)
                  for name, folder in folders.layout(path).items()}
        train, test = splits["train"], splits.get("test")
        return Raw(train.x, train.labels, None if test is None else (test.x, test.labels),
                   None, {path.name + "/": fingerprint(path)}, (size[1], size[0]),
                   {"kind": kind, "image_size": list(size)})
    files = idxfiles.roles(path)
    arrays, digests = {}, {}
    for role, file in files.items():
        arrays[role], digests[file.name] = read_idx_sha256(file)
    images, labels = arrays["train images"], arrays["train labels"]
    _check_idx(files, images, labels, "train")
    test = None
    if "test images" in arrays:
        _check_idx(files, arrays["test images"], arrays["test labels"], "test")
        if arrays["test images"].shape[1:] != images.shape[1:]:
            raise DataError(f"{files['test images']}: images of {arrays['test images'].shape[1:]}"
                            f", the training images are {images.shape[1:]}")
        test = (arrays["test images"].reshape(len(arrays["test images"]), -1),
                arrays["test labels"])
    shape = tuple(images.shape[1:]) if images.ndim == 3 else None
    return Raw(images.reshape(len(images), -1), labels, test, None, digests, shape,
               {"kind": kind})


def _check_idx(files, images, labels, split):
    image_file, label_file = files[f"{split} images"], files[f"{split} labels"]
    if images.ndim < 2:
        raise DataError(f"{image_file}: rank {images.ndim}, expected one image per row")
    if labels.ndim != 1:
        raise DataError(f"{label_file}: labels have rank {labels.ndim}, expected 1")
    if len(labels) != len(images):
        raise DataError(f"{label_file}: {len(labels)} labels for the {len(images)} images in "
                        f"{image_file}")


def load_path(path, *, dtype, seed, val_fraction, label_column=None, image_size=None,
              standardize=False, classes=None, scaler=None):
    """The Dataset at `path` (any kind), split by seed and val_fraction; `classes` and `scaler`
    are a saved model's, to evaluate it on these files as it was trained."""
    path = Path(path)
    raw = read(path, label_column, image_size)
    if len(raw.labels) == 0:
        raise DataError(f"{path}: no samples")
    source = {"path": str(path.resolve()), **raw.reading}
    return assemble(path.name, raw.x, raw.labels, raw.test, dtype=dtype, seed=seed,
                    val_fraction=val_fraction, declared=raw.declared, classes=classes,
                    standardize=standardize, scaler=scaler, where=str(path),
                    sha256=raw.sha256, source=source, image_shape=raw.image_shape)


def inspect(path, label_column=None, image_size=None):
    """(training samples, test samples, features, classes or None) of the dataset at `path`,
    from its headers, line counts or file counts, without loading it."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "npz":
        found = npz.shapes(path)
        if "x_train" not in found:
            return None
        shape = found["x_train"][0]
        test = found.get("x_test", ((0,), None))[0][0]
        names = found.get("class_names", ((None,), None))[0][0]
        return shape[0], test, int(np.prod(shape[1:])), names
    if kind == "table":
        rows, columns = tabular.count_rows(path)
        return rows, 0, max(1, columns - 1), None
    if kind == "folder":
        counts, features = folders.count(path, _size(image_size, path))
        classes = len(folders.class_folders(folders.layout(path)["train"]))
        return counts["train"], counts.get("test", 0), features, classes
    files = idxfiles.roles(path)
    train = idxfiles.header_shape(files["train images"])
    test = idxfiles.header_shape(files["test images"])[0] if "test images" in files else 0
    return train[0], test, int(np.prod(train[1:])), None
