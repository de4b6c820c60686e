"""Arrays given to the Python API (MLPClassifier.fit, predict, score) checked into features and
labels, with scikit-learn's conventions: a ValueError (fastmlp's InputError) for a wrong shape,
NaN or infinity, no samples or no features, complex numbers or a continuous target, a TypeError
(InputTypeError) for sparse matrices and objects that are not numbers, in the words scikit-learn
uses, so that code and tests written for scikit-learn estimators recognise them."""
import warnings

import numpy as np

from ..errors import InputError, InputTypeError
from .classes import classes_of, encode
from .scaling import to_float


def _conversion_warning():
    """scikit-learn's DataConversionWarning when it is installed, else a UserWarning."""
    try:
        from sklearn.exceptions import DataConversionWarning
        return DataConversionWarning
    except ImportError:
        return UserWarning


def _is_sparse(a):
    return type(a).__module__.startswith("scipy.sparse")


def _array(a, name):
    """a (an array, a list of rows, a DataFrame) as a numpy array, or one line: lists of rows
    of different lengths are no array."""
    try:
        return np.asarray(a)
    except (ValueError, TypeError) as e:
        raise InputError(f"{name} cannot be made an array ({str(e).splitlines()[0]}); pass a "
                         "numpy array, or lists of rows of equal length") from None


def features(X, dtype, name="MLPClassifier", n_features=None):
    """X as a C-contiguous float array (n, n_features) of `dtype` (uint8 pictures scaled to
    [0, 1]); with n_features, the count the fitted model expects. The result may be X itself
    when it already is such an array: never write into it."""
    if X is None:
        raise InputError("Expected 2D array, got None instead")
    if _is_sparse(X):
        raise InputTypeError(f"{name} does not take sparse input: pass a dense array "
                             "(X.toarray())")
    x = _array(X, "X")
    if x.ndim != 2:
        raise InputError(f"Expected 2D array, got {x.ndim}D array instead (shape {x.shape}). "
                         "Reshape your data either using array.reshape(-1, 1) if your data has "
                         "a single feature or array.reshape(1, -1) if it contains a single "
                         "sample.")
    if x.shape[0] == 0:
        raise InputError(f"Found array with 0 sample(s) (shape={x.shape}) while a minimum of 1 "
                         "is required")
    if x.shape[1] == 0:
        raise InputError(f"Found array with 0 feature(s) (shape={x.shape}) while a minimum of "
                         "1 is required.")
    if n_features is not None and x.shape[1] != n_features:
        raise InputError(f"X has {x.shape[1]} features, but {name} is expecting {n_features} "
                         "features as input")
    if x.dtype.kind == "O":
        try:
            x = x.astype(np.float64)
        except TypeError as e:
            raise InputTypeError(f"X must hold numbers: {e}") from None
        except ValueError as e:
            raise InputError(f"X must hold numbers: {e}") from None
    return to_float(x, dtype, "X", InputError)


def labels(y, n_samples):
    """y as a 1-D array of n_samples labels (a column vector is flattened, with scikit-learn's
    DataConversionWarning)."""
    if y is None:
        raise InputError("MLPClassifier requires y to be passed, but the target y is None")
    if _is_sparse(y):
        raise InputTypeError("MLPClassifier does not take a sparse y")
    y = _array(y, "y")
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change "
                      "the shape of y to (n_samples, ), for example using ravel().",
                      _conversion_warning(), stacklevel=3)
        y = y[:, 0]
    if y.ndim != 1:
        hint = (": one-hot rows? pass Y.argmax(axis=1)" if y.ndim == 2 and y.size and
                np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all() else "")
        raise InputError(f"y should be a 1d array, got an array of shape {y.shape} instead "
                         f"(MLPClassifier predicts one class per sample{hint})")
    if len(y) != n_samples:
        raise InputError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{n_samples}, {len(y)}]")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise InputError("Input y contains NaN or infinity")
    if y.dtype.kind == "f" and (y != np.round(y)).any():
        raise InputError("Unknown label type: continuous. MLPClassifier classifies: y must hold "
                         "integers or strings")
    return y


def fit_classes(y, classes=None):
    """(classes, indices) of training labels: the distinct labels, or `classes` given (as
    partial_fit's first call may give them)."""
    if classes is None:
        classes, indices = classes_of(y, where="y", error=InputError)
    else:
        classes = np.unique(np.asarray(classes))
        indices = encode(y, classes, "y", InputError)
    if len(classes) < 2:
        raise InputError(f"y has {len(classes)} class ({classes[0].item()!r}); a classifier "
                         "needs at least 2 classes")
    return classes, indices


def label_indices(y, classes, where="y"):
    """Each label's index in a fitted model's classes; an unknown label is an InputError."""
    return encode(y, classes, where, InputError)


def comparable(y, classes):
    """Checked labels y (`labels`) that can be compared with a model's classes: strings with
    strings, numbers with numbers (scikit-learn refuses a mix too)."""
    if (y.dtype.kind in "US") != (np.asarray(classes).dtype.kind in "US") and len(y):
        raise InputError(f"y holds {_kind(y)}, the model's classes are "
                         f"{_kind(np.asarray(classes))} ({', '.join(map(str, classes[:5]))}"
                         f"{', ...' if len(classes) > 5 else ''})")
    return y


def _kind(values):
    return "strings" if values.dtype.kind in "US" else "numbers"
