"""Find, download and load MNIST-style datasets as float arrays split into train/val/test."""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_atomically
from ..errors import DataError, FastMLPError
from ..precisions import parameter_dtype
from ..runtime.store import cache_dir
from .idx import parse_idx
from .idxcache import read_idx_cached
from .registry import (
    DATASETS,
    FILES,
    N_CLASSES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetSpec,
)

# The MNIST files fastmlp ships, package data beside this module (see shipped/README.md).
SHIPPED_DATA = Path(__file__).resolve().parent / "shipped"

_DOWNLOAD_TIMEOUT_S = 60


class DatasetNotFound(DataError):
    """No directory on the search path holds all four files of a dataset."""


@dataclass(frozen=True, eq=False)
class Split:
    """One part of a dataset: images as rows of features in [0, 1], labels as class indices."""

    x: np.ndarray  # (n, n_features) float32 or float64, C-contiguous
    y: np.ndarray  # (n,) int32, C-contiguous

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split(x={self.x.dtype}{list(self.x.shape)}, y={self.y.dtype}{list(self.y.shape)})"


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    directory: Path | None  # where the four files were read from (None: arrays in memory)
    train: Split
    val: Split
    test: Split | None
    sha256: dict[str, str] = field(repr=False)  # file name -> SHA-256 of its uncompressed bytes
    # How train and val were split from the training file (None: given as separate arrays).
    seed: int | None = None
    val_fraction: float | None = None

    def record(self) -> dict:
        """What a saved model keeps of its data: enough to rebuild the exact split
        (load_recorded) and to refuse other files."""
        return {"name": self.name, "sha256": dict(self.sha256), "seed": self.seed,
                "val_fraction": self.val_fraction, "n_train": len(self.train),
                "n_val": len(self.val), "n_test": None if self.test is None else len(self.test)}

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]

    @property
    def n_classes(self) -> int:
        return N_CLASSES


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
    import urllib.request  # only here: importing it would slow every other command's start-up
    from http.client import HTTPException

    spec = dataset_spec(name)
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    dest = Path(dest_root if dest_root is not None else cache_dir()) / name
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest}: {e.strerror or e}") from None
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
            raise DataError(
                f"{name}: could not download {gz_name} ({'; '.join(failures) or 'no mirrors'}); "
                f"copy the four .gz files into {dest} by hand"
            )
    return dest


def load_dataset(
    name: str = "mnist",
    *,
    dtype=np.float32,
    seed: int = 0,
    val_fraction: float = 0.2,
    data_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Load dataset `name`, checksums verified, with a seeded train/validation split.

    Images become rows of `dtype` features in [0, 1]; labels become int32. The first
    round(n * val_fraction) images of a `seed`-determined permutation of the training set
    form the validation split; the test set is kept as shipped.
    """
    spec = dataset_spec(name)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise FastMLPError(f"dtype {dtype} not supported, use float32 or float64")
    directory = find_dataset_dir(name, data_dir)
    paths = {f: _file_in(directory, f) for f in FILES}
    arrays, digests = {}, {}
    for f, path in paths.items():
        arrays[f], digests[f] = read_idx_cached(path, spec.sha256[f], cache_dir())

    train_x, train_y = _checked_pair(arrays, paths, TRAIN_IMAGES, TRAIN_LABELS)
    test_x, test_y = _checked_pair(arrays, paths, TEST_IMAGES, TEST_LABELS)
    if test_x.shape[1:] != train_x.shape[1:]:
        raise DataError(
            f"{paths[TEST_IMAGES]}: images are {_dims(test_x)}, but the training images in "
            f"{paths[TRAIN_IMAGES]} are {_dims(train_x)}"
        )

    n = len(train_y)
    train_rows, val_rows = split_rows(n, seed, val_fraction)
    return Dataset(
        name=name,
        directory=directory,
        train=_split(train_x, train_y, train_rows, dtype),
        val=_split(train_x, train_y, val_rows, dtype),
        test=_split(test_x, test_y, None, dtype),
        sha256=digests,
        seed=seed,
        val_fraction=val_fraction,
    )


def split_rows(n: int, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) of n samples: the first round(n * val_fraction) of a
    `seed`-determined permutation are the validation rows."""
    n_val = round(n * val_fraction)
    if not 0 < n_val < n:
        raise FastMLPError(
            f"val_fraction {val_fraction} leaves an empty split of the {n} training images"
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def load_dataset_for(config, data_dir: str | os.PathLike | None = None) -> Dataset:
    """The dataset, dtype and train/validation split that a TrainConfig names."""
    return load_dataset(config.dataset, dtype=parameter_dtype(config.dtype), seed=config.seed,
                        val_fraction=config.val_fraction, data_dir=data_dir)


def load_recorded(record: dict, *, dtype, data_dir: str | os.PathLike | None = None) -> Dataset:
    """The exact data a model was trained on, from its saved record (Dataset.record()): the
    same files (checksums) split with the same seed and validation fraction."""
    name = record.get("name")
    if name not in DATASETS or record.get("seed") is None or not record.get("val_fraction"):
        raise FastMLPError(f"the model was trained on {name!r} data that fastmlp cannot load "
                           f"again by name; pass --dataset")
    dataset = load_dataset(name, dtype=dtype, seed=record["seed"],
                           val_fraction=record["val_fraction"], data_dir=data_dir)
    if record.get("sha256") and record["sha256"] != dataset.sha256:
        raise DataError(f"{name} in {dataset.directory}: other files than the model was "
                        f"trained on (checksums differ)")
    sizes = (len(dataset.train), len(dataset.val))
    if record.get("n_train") is not None and sizes != (record["n_train"], record["n_val"]):
        raise DataError(f"{name}: the split has {sizes[0]} training / {sizes[1]} validation "
                        f"images, the model was trained on {record['n_train']} / "
                        f"{record['n_val']}")
    return dataset


def _checked_pair(arrays, paths, images_name, labels_name) -> tuple[np.ndarray, np.ndarray]:
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
    if labels.size and labels.max() >= N_CLASSES:
        raise DataError(
            f"{paths[labels_name]}: label {labels.max()} outside 0..{N_CLASSES - 1}"
        )
    return images, labels


def _dims(images: np.ndarray) -> str:
    return "x".join(map(str, images.shape[1:]))


def _split(images: np.ndarray, labels: np.ndarray, rows: np.ndarray | None, dtype) -> Split:
    flat = images.reshape(len(images), -1)
    if rows is not None:
        # Gather the uint8 rows first: a quarter of the bytes of gathering floats.
        flat, labels = flat[rows], labels[rows]
    # Dividing with dtype= converts each uint8 straight to dtype: no float64 temporary.
    x = np.divide(flat, 255, dtype=dtype)
    return Split(x=x, y=labels.astype(np.int32))
