"""Find, download and load datasets as float arrays split into train/val/test: the registered
ones by name (MNIST-style IDX files, checksummed), any other by path (source.py), and the exact
data a saved model was trained on, from its record.

The dataset abstraction itself (Dataset, Split, the seeded split) is in dataset.py."""

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..atomic import write_atomically
from ..errors import ChecksumMismatch, DataError, DownloadFailed, FastMLPError
from ..precisions import parameter_dtype
from ..runtime.store import cache_dir
from .dataset import Dataset, Split, assemble, check_dtype, split_rows
from .idx import parse_idx
from .idxcache import read_idx_cached
from .registry import (
    DATASETS,
    FILES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetSpec,
)
from .source import load_path

__all__ = ["Dataset", "Split", "DatasetSpec", "FILES", "split_rows", "load_dataset",
           "load_dataset_for", "load_recorded", "download_dataset", "find_dataset_dir"]

# The MNIST files fastmlp ships, package data beside this module (see shipped/README.md).
SHIPPED_DATA = Path(__file__).resolve().parent / "shipped"

_DOWNLOAD_TIMEOUT_S = 60


class DatasetNotFound(DataError):
    """No directory on the search path holds all four files of a dataset."""


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise FastMLPError(f"unknown dataset {name!r}; known datasets: {known}") from None


def candidate_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for dataset `name`, in order. An explicit data_dir is the only
    place searched: a mistyped --data-dir must fail, not quietly load other files."""
    spec = dataset_spec(name)
    if data_dir is not None:
        return [Path(data_dir) / name, Path(data_dir)]
    roots = []
    if os.environ.get("FASTMLP_DATA"):
        roots.append(Path(os.environ["FASTMLP_DATA"]))
    roots += [SHIPPED_DATA, cache_dir()]
    return [d for root in roots for d in (root / name, root)] + list(spec.system_dirs)


def find_dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The first directory in `candidate_dirs` that holds all four files, gzipped or raw."""
    searched = candidate_dirs(name, data_dir)
    for directory in searched:
        if all(_file_in(directory, f) for f in FILES):
            return directory
    gz_names = ", ".join(f + ".gz" for f in FILES)
    others = f"run `fastmlp download {name}`"
    hint = dataset_spec(name).install_hint
    if hint:
        others += f" or `{hint}`"
    raise DatasetNotFound(
        f"{name}: dataset files not found; looked in {', '.join(map(str, searched))}; "
        f"put {gz_names} in {cache_dir() / name}, or {others}"
    )


def _file_in(directory: Path, name: str) -> Path | None:
    # The raw file wins when both exist: it loads without decompressing.
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def download_dataset(
    name: str,
    dest_root: str | os.PathLike | None = None,
    mirrors: tuple[str, ...] | list[str] | None = None,
) -> Path:
    """Fetch the four .gz files into `<dest_root or cache_dir()>/<name>/`; return that directory.

    Mirrors are tried in order for each file; a file is written (atomically) only once the
    SHA-256 of its uncompressed content matches the registry.
    """
    spec = dataset_spec(name)
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    dest = Path(dest_root if dest_root is not None else cache_dir()) / name
    with _directory_kept_if_filled(dest):
        _download_files(spec, name, dest, mirrors)
    return dest


@contextmanager
def _directory_kept_if_filled(dest):
    """`dest` created with its missing parents; when what runs inside fails (or Ctrl-C stops
    it), those of them still empty are removed: a failed download leaves no empty folders."""
    made = [p for p in (dest, *dest.parents) if not p.exists()]  # the deepest first
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest}: {e.strerror or e}") from None
    try:
        yield
    except BaseException:
        for directory in made:
            try:
                directory.rmdir()
            except OSError:  # not empty (a file was written), or not ours to remove
                break
        raise


def _download_files(spec, name, dest, mirrors):
    import urllib.request  # only here: importing it would slow every other command's start-up
    from http.client import HTTPException

    for file in FILES:
        gz_name = file + ".gz"
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + gz_name
            try:
                with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                    data = response.read()
                parse_idx(data, url, expect_sha256=spec.sha256[file])
            except (OSError, HTTPException, ValueError, DataError) as e:
                failures.append(str(e) if isinstance(e, DataError) else f"{url}: {e}")
                continue
            write_atomically(dest / gz_name, data)
            break
        else:
            raise DownloadFailed(
                f"{name}: could not download {gz_name} ({'; '.join(failures) or 'no mirrors'}); "
                f"copy the four .gz files into {dest} by hand"
            )


def load_dataset(
    name: str = "mnist",
    *,
    dtype=np.float32,
    seed: int = 0,
    val_fraction: float = 0.2,
    data_dir: str | os.PathLike | None = None,
    standardize: bool = False,
    scaler=None,
) -> Dataset:
    """Load registered dataset `name`, checksums verified, with a seeded train/validation split.

    Images become rows of `dtype` features in [0, 1] (standardised with the training split's
    statistics when `standardize`, or with a saved model's `scaler`); labels become the indices
    of the dataset's classes (its registry entry names them: MNIST's digits, Fashion-MNIST's
    "T-shirt/top" ... "Ankle boot"). The first round(n * val_fraction) images of a
    `seed`-determined permutation of the training set form the validation split; the test set
    is kept as shipped.
    """
    spec = dataset_spec(name)
    dtype = check_dtype(dtype)
    directory = find_dataset_dir(name, data_dir)
    paths = {f: _file_in(directory, f) for f in FILES}
    arrays, digests = {}, {}
    for f, path in paths.items():
        arrays[f], digests[f] = read_idx_cached(path, spec.sha256[f], cache_dir())

    k = len(spec.classes)
    train_x, train_y = _checked_pair(arrays, paths, TRAIN_IMAGES, TRAIN_LABELS, k)
    test_x, test_y = _checked_pair(arrays, paths, TEST_IMAGES, TEST_LABELS, k)
    if test_x.shape[1:] != train_x.shape[1:]:
        raise DataError(
            f"{paths[TEST_IMAGES]}: images are {_dims(test_x)}, but the training images in "
            f"{paths[TRAIN_IMAGES]} are {_dims(train_x)}"
        )
    flat = train_x.reshape(len(train_x), -1)
    return assemble(name, flat, train_y, (test_x.reshape(len(test_x), -1), test_y),
                    dtype=dtype, seed=seed, val_fraction=val_fraction, declared=spec.classes,
                    standardize=standardize, scaler=scaler, directory=directory,
                    sha256=digests, image_shape=tuple(train_x.shape[1:]))


def load_dataset_for(config, data_dir: str | os.PathLike | None = None) -> Dataset:
    """The dataset, dtype, train/validation split and scaling that a TrainConfig names: a
    registered dataset by name, or the files at config.data."""
    dtype = parameter_dtype(config.dtype)
    if config.data is not None:
        return load_path(config.data, dtype=dtype, seed=config.seed,
                         val_fraction=config.val_fraction, label_column=config.label_column,
                         image_size=config.image_size, standardize=config.standardize)
    return load_dataset(config.dataset, dtype=dtype, seed=config.seed,
                        val_fraction=config.val_fraction, data_dir=data_dir,
                        standardize=config.standardize)


def load_recorded(record: dict, *, dtype, data_dir: str | os.PathLike | None = None,
                  scaler=None) -> Dataset:
    """The exact data a model was trained on, from its saved record (Dataset.record()): the
    same files (checksums) split with the same seed and validation fraction, its labels mapped
    to the model's classes and standardised with the model's `scaler` if it has one."""
    name, source = record.get("name"), record.get("source")
    if record.get("seed") is None or not record.get("val_fraction") or (
            source is None and name not in DATASETS):
        raise FastMLPError(f"the model was trained on {name!r} data that fastmlp cannot load "
                           f"again by name; pass --dataset or --data")
    if source is not None:
        dataset = load_path(source["path"], dtype=dtype, seed=record["seed"],
                            val_fraction=record["val_fraction"],
                            label_column=source.get("label_column"),
                            image_size=source.get("image_size"),
                            standardize=scaler is not None, scaler=scaler,
                            classes=_recorded_classes(record))
        where = source["path"]
    else:
        dataset = load_dataset(name, dtype=dtype, seed=record["seed"],
                               val_fraction=record["val_fraction"], data_dir=data_dir,
                               standardize=scaler is not None, scaler=scaler)
        where = f"{name} in {dataset.directory}"
    if record.get("sha256") and record["sha256"] != dataset.sha256:
        raise ChecksumMismatch(f"{where}: other files than the model was trained on "
                               f"(checksums differ)")
    sizes = (len(dataset.train), len(dataset.val))
    if record.get("n_train") is not None and sizes != (record["n_train"], record["n_val"]):
        raise DataError(f"{name}: the split has {sizes[0]} training / {sizes[1]} validation "
                        f"samples, the model was trained on {record['n_train']} / "
                        f"{record['n_val']}")
    return dataset


def _recorded_classes(record):
    classes = record.get("classes")
    return None if classes is None else np.asarray(classes)


def _checked_pair(arrays, paths, images_name, labels_name, n_classes):
    images, labels = arrays[images_name], arrays[labels_name]
    if images.ndim != 3:
        raise DataError(
            f"{paths[images_name]}: images have rank {images.ndim}, expected 3 (count, rows, cols)"
        )
    if labels.ndim != 1:
        raise DataError(f"{paths[labels_name]}: labels have rank {labels.ndim}, expected 1")
    if len(labels) != len(images):
        raise DataError(
            f"{paths[labels_name]}: {len(labels)} labels for the {len(images)} images in "
            f"{paths[images_name]}"
        )
    if labels.size and labels.max() >= n_classes:
        raise DataError(
            f"{paths[labels_name]}: label {labels.max()} outside 0..{n_classes - 1}"
        )
    return images, labels


def _dims(images: np.ndarray) -> str:
    return "x".join(map(str, images.shape[1:]))
