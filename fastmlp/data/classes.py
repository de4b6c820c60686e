"""Classes from labels: the set of classes a dataset has (any integers, strings, or the names it
declares), each label mapped to its index 0..K-1 for the engine and back for output.

This is where labels enter: a label that is not one of the classes is refused here, in one line,
so that no kernel is ever given a label outside 0..K-1 (the kernels check too, as a last line).
"""
import numpy as np

from ..errors import DataError


def _plain(labels, where, error):
    """labels as a 1-D array of integers or strings: integral floats become integers (a CSV's
    "3.0"), anything else that is not an integer or a string is refused."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise error(f"{where}: labels must be one per sample (1-D), got shape {labels.shape}")
    kind = labels.dtype.kind
    if kind in "iub":
        return labels.astype(np.int64) if kind == "b" else labels
    if kind in "US":
        return labels.astype(str)
    if kind == "f":
        if not np.isfinite(labels).all():
            raise error(f"{where}: labels contain NaN or infinity")
        if (labels != np.round(labels)).any():
            bad = labels[labels != np.round(labels)][0]
            raise error(f"{where}: label {bad:g} is not an integer; classes are integers or "
                        "strings (a continuous target is regression, not classification)")
        return labels.astype(np.int64)
    if kind == "O":
        if all(isinstance(v, str) for v in labels):
            return labels.astype(str)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
            return labels.astype(np.int64)
        types = sorted({type(v).__name__ for v in labels})
        raise error(f"{where}: labels must be all integers or all strings, got {', '.join(types)}")
    raise error(f"{where}: labels of type {labels.dtype} are neither integers nor strings")


def classes_of(labels, where="labels", error=DataError):
    """(classes, indices): the classes of training labels, the distinct labels sorted
    (np.unique, as scikit-learn's classes_ are), and each label's index in them, int32."""
    labels = _plain(labels, where, error)
    if len(labels) == 0:
        raise error(f"{where}: no labels")
    classes = np.unique(labels)
    return classes, np.searchsorted(classes, labels).astype(np.int32)


def encode(labels, classes, where="labels", error=DataError):
    """Each label's index (int32) in `classes` (a dataset's or a model's); a label that is not one
    of them is refused in one line naming it."""
    labels = _plain(labels, where, error)
    classes = np.asarray(classes)
    if len(labels) == 0:
        return np.zeros(0, np.int32)
    if (labels.dtype.kind in "US") != (classes.dtype.kind in "US"):
        raise error(f"{where}: labels are {_kind(labels)}, the classes are {_kind(classes)} "
                    f"({_show(classes)})")
    order = np.argsort(classes, kind="stable")
    at = np.searchsorted(classes[order], labels)
    inside = at < len(classes)
    found = inside.copy()
    found[inside] = classes[order][at[inside]] == labels[inside]
    if not found.all():
        unknown = np.unique(labels[~found])
        raise error(f"{where}: label {unknown[0].item()!r} is not one of the {len(classes)} "
                    f"classes ({_show(classes)})"
                    + (f"; {len(unknown) - 1} other unknown labels" if len(unknown) > 1 else ""))
    return order[at].astype(np.int32)


def to_json(classes):
    """The classes as JSON values (ints or strings), for a saved model or a record."""
    return [v.item() if hasattr(v, "item") else v for v in np.asarray(classes)]


def from_json(values, n_classes):
    """Classes read back from a saved model: its list, or 0..n_classes-1 for files written before
    fastmlp recorded them (their classes were always the digits 0..9)."""
    if values is None:
        return np.arange(n_classes)
    return np.asarray(values)


def names(classes):
    """The classes as text, for reports and `fastmlp predict`."""
    return [str(c) for c in np.asarray(classes).tolist()]


def _kind(values):
    return "strings" if values.dtype.kind in "US" else "integers"


def _show(classes, most=10):
    shown = ", ".join(map(str, classes[:most].tolist()))
    return shown + (", ..." if len(classes) > most else "")
