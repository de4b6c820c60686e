"""What `fastmlp predict` classifies, read as the model was trained: pictures (MNIST's way for a
model of 28 x 28 digits, resized to the model's size for one trained on a folder of pictures),
IDX files of images, the samples of an .npz (x_test, else x_train), the rows of a CSV/TSV file
(its label column left out), a folder of pictures or of IDX files."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import folders, idxfiles, npz, tabular
from .idx import read_idx
from .images import read_inputs


@dataclass(frozen=True)
class Inputs:
    rows: np.ndarray  # (n, n_features): uint8 pictures, or numbers as given
    names: list  # what each row is called in the output
    problems: list  # why row i holds nothing to classify, or None


def _samples(rows, path):
    rows = rows.reshape(len(rows), -1)
    return Inputs(rows, [f"{path}[{i}]" for i in range(len(rows))], [None] * len(rows))


def _picture(path, size, digits):
    if size is None:  # the MNIST conversion (an IDX file as it is)
        images, names, problems = read_inputs(path)
        return Inputs(images, names, problems if digits else [None] * len(names))
    return Inputs(folders.convert(path, size)[None, :], [str(path)], [None])


def read_for(path, n_features, size=None, label_column=None, digits=True):
    """The Inputs at `path` for a model of n_features inputs; size: (width, height) of the
    pictures a folder-trained model takes (None: MNIST's conversion). digits: whether the model
    was trained on a registered MNIST-style dataset, whose pictures are checked for a digit to
    classify (images.problem); pictures for other models are classified whatever they hold."""
    path = Path(path)
    if path.exists() and not (path.is_dir() or path.is_file()):  # reading might never end
        raise DataError(f"{path}: not a regular file or folder (a device or a pipe); give "
                        "pictures, IDX, .npz or CSV files, or folders of them")
    if path.is_dir():
        files = idxfiles.roles(path)
        if files is not None:
            which = files.get("test images", files["train images"])
            return _samples(read_idx(which), which)
        pictures = folders.pictures_in(path)
        if not pictures:
            raise DataError(f"{path}: a folder with no PNG or JPEG pictures and no IDX files")
        parts = [_picture(p, size, digits) for p in pictures]
        return Inputs(np.concatenate([p.rows for p in parts]),
                      [n for p in parts for n in p.names],
                      [q for p in parts for q in p.problems])
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = npz.read_npz(path)
        x = arrays.x_train if arrays.x_test is None else arrays.x_test
        return _samples(x, f"{path}:{'x_train' if arrays.x_test is None else 'x_test'}")
    if suffix in tabular.SUFFIXES:
        return _samples(tabular.read_features(path, n_features, label_column), path)
    return _picture(path, size, digits)
