"""CSV and TSV files: one sample per row, numeric features and one label column.

The label column is `label_column` (a header name, or a 0-based index, negative from the end),
else the column named "label", else the last. A header is recognised when its first row has a
cell that is not a number where the second row has one. The file is parsed once by numpy's C
parser (np.loadtxt, the label column through a converter that numbers the labels); only when
that fails is it scanned again with the csv module, to say in one line which line and column is
wrong: a ragged row, a missing or non-numeric cell, NaN or infinity.
"""
import csv
import itertools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

TAB_SUFFIXES = (".tsv", ".tab")
SUFFIXES = (".csv", ".tsv", ".tab", ".txt")
DEFAULT_LABEL = "label"


@dataclass(frozen=True)
class Table:
    x: np.ndarray  # (n, n_features) float64
    labels: np.ndarray  # (n,) int64 when every label is an integer, else strings
    columns: list  # the feature columns' names (from the header, or "column N")
    label: str  # the label column's name
    label_index: int  # and its index (0-based)
    header: bool


def delimiter_of(path, first_line):
    """Tab for .tsv/.tab files (or a first line with tabs and no commas), a semicolon for a
    first line with semicolons and no commas, else a comma."""
    if Path(path).suffix.lower() in TAB_SUFFIXES:
        return "\t"
    for other in ("\t", ";"):
        if other in first_line and "," not in first_line:
            return other
    return ","


def _number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _open(path):
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def _rows(path, delimiter):
    """(line number, stripped cells) of every non-blank row, read lazily."""
    with _open(path) as f:
        for number, row in enumerate(csv.reader(f, delimiter=delimiter), 1):
            if any(cell.strip() for cell in row):
                yield number, [cell.strip() for cell in row]


def _start(path):
    """(delimiter, the first two non-blank rows)."""
    try:
        with _open(path) as f:
            first = next((line for line in f if line.strip()), None)
        if first is None:
            raise DataError(f"{path}: empty file, no rows")
        delimiter = delimiter_of(path, first)
        head = [row for _, row in itertools.islice(_rows(path, delimiter), 2)]
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); is it a CSV file?") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    return delimiter, head


def _has_header(head, label_column):
    first = head[0]
    if isinstance(label_column, str) and label_column in first:
        return True
    if len(head) == 1:
        return not all(_number(c) for c in first)
    return any(not _number(a) and _number(b) for a, b in zip(first, head[1]))


def _label_index(label_column, names, header, path):
    n = len(names)
    if label_column is None:
        lowered = [name.lower() for name in names] if header else []
        return lowered.index(DEFAULT_LABEL) if DEFAULT_LABEL in lowered else n - 1
    if isinstance(label_column, str) and not label_column.lstrip("-").isdigit():
        if not header:
            raise DataError(f"{path}: no header row, so no column named {label_column!r}; give "
                            "the label column's index (0-based)")
        if label_column not in names:
            raise DataError(f"{path}: no column named {label_column!r}; the columns are "
                            f"{', '.join(names[:12])}{', ...' if n > 12 else ''}")
        return names.index(label_column)
    index = int(label_column)
    if not -n <= index < n:
        raise DataError(f"{path}: label column {index} is out of range for {n} columns")
    return index % n


def _diagnose(path, delimiter, header, names, label):
    """Scan the rows for the first problem np.loadtxt met, and raise it as one line."""
    width = len(names)
    rows = _rows(path, delimiter)
    if header:
        next(rows)
    for number, row in rows:
        if len(row) != width:
            raise DataError(f"{path}: line {number} has {len(row)} columns, the "
                            f"{'header' if header else 'first row'} has {width} (ragged rows)")
        for j, cell in enumerate(row):
            if j == label:
                if not cell:
                    raise DataError(f"{path}: line {number}: empty label")
            elif not _number(cell):
                what = "an empty cell" if not cell else f"{cell!r} is not a number"
                raise DataError(f"{path}: line {number}, column {names[j]!r}: {what}; "
                                "features must be numeric")
            elif not math.isfinite(float(cell)):
                raise DataError(f"{path}: line {number}, column {names[j]!r}: {cell} is not "
                                "finite (NaN or infinity); fastmlp needs finite features")


def _typed(found, path, column):
    """The distinct label cells as classes: integers when every one is a number ("3", "3.0"),
    refused when a number is not an integer (a continuous target is regression), else
    strings."""
    if not all(_number(cell) for cell in found):
        return found
    values = found.astype(np.float64)
    fractional = values[~np.isfinite(values) | (values != np.round(values))]
    if len(fractional):
        raise DataError(f"{path}: label column {column!r} holds {fractional[0]:g}, which is not "
                        "an integer; classes are integers or strings (a continuous target is "
                        "regression, not classification)")
    return values.astype(np.int64)


def read_table(path, label_column=None):
    """A Table from the CSV/TSV file at `path`; every problem is one DataError line."""
    path = Path(path)
    delimiter, head = _start(path)
    header = _has_header(head, label_column)
    width = len(head[0])
    names = head[0] if header else [f"column {j}" for j in range(width)]
    if width < 2:
        raise DataError(f"{path}: one column; a sample needs features and a label")
    label = _label_index(label_column, names, header, path)
    codes = {}

    def number_label(cell):
        cell = cell.strip()
        if not cell:
            raise ValueError("empty label")
        return codes.setdefault(cell, len(codes))

    data = None
    try:
        with warnings.catch_warnings():  # a header and no rows is said below, in one line
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(path, delimiter=delimiter, skiprows=int(header),
                              dtype=np.float64, converters={label: number_label},
                              quotechar='"', comments=None, ndmin=2, encoding="utf-8-sig")
    except (ValueError, csv.Error):
        pass
    if data is None:
        _diagnose(path, delimiter, header, names, label)
        raise DataError(f"{path}: not a readable table of numbers")
    if len(data) == 0:
        raise DataError(f"{path}: a header and no rows of data")
    features = [j for j in range(width) if j != label]
    x = np.ascontiguousarray(data[:, features])
    if not np.isfinite(x).all():
        _diagnose(path, delimiter, header, names, label)
    labels = _typed(np.array(list(codes)), path, names[label])[data[:, label].astype(np.int64)]
    return Table(x, labels, [names[j] for j in features], names[label], label, header)


def read_features(path, n_features, label_column=None):
    """(rows (n, n_features) float64, whether a header was skipped) of a CSV/TSV file to classify:
    all its columns when it has n_features, or all but the label column (label_column, else
    "label", else the last) when it has one more, as a training file has."""
    path = Path(path)
    delimiter, head = _start(path)
    width = len(head[0])
    if width == n_features + 1:
        return read_table(path, label_column).x
    if width != n_features:
        raise DataError(f"{path}: {width} columns, the model takes {n_features} features (and "
                        "a file may add one label column)")
    header = not all(_number(c) for c in head[0])
    names = head[0] if header else [f"column {j}" for j in range(width)]
    data = None
    try:
        data = np.loadtxt(path, delimiter=delimiter, skiprows=int(header), dtype=np.float64,
                          quotechar='"', comments=None, ndmin=2, encoding="utf-8-sig")
    except (ValueError, csv.Error):
        pass
    if data is None or not np.isfinite(data).all():
        _diagnose(path, delimiter, header, names, None)
        raise DataError(f"{path}: not a readable table of numbers")
    if len(data) == 0:
        raise DataError(f"{path}: no rows of data")
    return data


def count_rows(path):
    """(rows, columns) of a CSV file, counted without parsing it (the memory plan before
    loading): the lines that are not blank, and the first line's cells."""
    rows, columns = 0, 0
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    if rows == 0:
                        first = line.decode("utf-8-sig", "replace")
                        columns = first.count(delimiter_of(path, first)) + 1
                    rows += 1
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    return rows, columns
