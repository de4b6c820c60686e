"""NumPy .npz files: `x_train`, `y_train`, optionally `x_test` and `y_test` (both or neither) and
`class_names` (then the labels are integer indices into it). Features are any numeric array
with one sample per row (more dimensions are flattened: images of (n, 28, 28) become rows of
784); labels are integers or strings. Read without pickle: a file holding Python objects is
refused, as it could run code."""
import zipfile
from dataclasses import dataclass

import numpy as np

from ..errors import DataError

REQUIRED = ("x_train", "y_train")
OPTIONAL = ("x_test", "y_test", "class_names")


@dataclass(frozen=True)
class Arrays:
    x_train: np.ndarray  # (n, ...) numeric
    y_train: np.ndarray  # (n,)
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: np.ndarray | None  # (K,) strings
    image_shape: tuple | None  # (rows, cols) of 2-D samples, for shift augmentation's check


def _open(path):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz file ({' '.join(str(e).split())})") \
            from None


def _array(npz, path, name):
    try:
        return npz[name]
    except ValueError as e:  # an object array: loading it would need pickle
        raise DataError(f"{path}: {name} holds Python objects, which fastmlp does not unpickle; "
                        f"save plain numeric or string arrays ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{path}: {name} is unreadable ({e})") from None


def _features(x, path, name):
    if x.ndim < 2:
        raise DataError(f"{path}: {name} must have one sample per row (2-D or more), got "
                        f"shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: {name} must be numeric, got {x.dtype}")
    return x.reshape(len(x), -1)


def _labels(y, x, path, name):
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{path}: {name} must be one label per sample (1-D), got shape "
                        f"{y.shape}")
    if len(y) != len(x):
        raise DataError(f"{path}: {len(y)} labels in {name} for {len(x)} samples")
    return y


def read_npz(path):
    """The arrays of the .npz file at `path`, checked; every problem is one DataError line."""
    with _open(path) as npz:
        if not hasattr(npz, "files"):
            raise DataError(f"{path}: a single .npy array, not an .npz file of named arrays")
        missing = [name for name in REQUIRED if name not in npz.files]
        if missing:
            raise DataError(f"{path}: no {missing[0]} array; an .npz dataset holds x_train and "
                            f"y_train (and optionally x_test, y_test, class_names); it has "
                            f"{', '.join(npz.files) or 'nothing'}")
        unknown = sorted(set(npz.files) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise DataError(f"{path}: unknown array {unknown[0]!r}; known: "
                            f"{', '.join(REQUIRED + OPTIONAL)}")
        if ("x_test" in npz.files) != ("y_test" in npz.files):
            raise DataError(f"{path}: x_test and y_test go together; it has only one of them")
        raw = {name: _array(npz, path, name) for name in npz.files}
    x_train = raw["x_train"]
    shape = tuple(x_train.shape[1:]) if x_train.ndim == 3 else None
    x = _features(x_train, path, "x_train")
    if len(x) == 0:
        raise DataError(f"{path}: x_train has no samples")
    y = _labels(raw["y_train"], x, path, "y_train")
    x_test = y_test = None
    if "x_test" in raw:
        x_test = _features(raw["x_test"], path, "x_test")
        if x_test.shape[1] != x.shape[1]:
            raise DataError(f"{path}: x_test has {x_test.shape[1]} features per sample, x_train "
                            f"{x.shape[1]}")
        y_test = _labels(raw["y_test"], x_test, path, "y_test")
    names = raw.get("class_names")
    if names is not None:
        if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
            raise DataError(f"{path}: class_names must be a non-empty 1-D array of strings, got "
                            f"{names.dtype} of shape {names.shape}")
        names = names.astype(str)
    return Arrays(x, y, x_test, y_test, names, shape)


def shapes(path):
    """{name: (shape, dtype)} of the arrays in the .npz file, read from their headers without
    loading them (the memory plan before loading)."""
    found = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
                found[info.filename[:-4]] = (shape, dtype)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz file ({' '.join(str(e).split())})") \
            from None
    return found
