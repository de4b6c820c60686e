"""Datasets: lookup order, loading and splitting, validation, downloading from file:// mirrors."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from fastmlp.data import load as data
from fastmlp.data.idx import read_idx
from fastmlp.data.load import (
    FILES,
    DatasetNotFound,
    DatasetSpec,
    candidate_dirs,
    download_dataset,
    find_dataset_dir,
    load_dataset,
)
from fastmlp.errors import DataError, FastMLPError
from tests.helpers import MNIST_DIR, write_dataset

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def tiny_arrays(n_train=50, n_test=10, side=4):
    rng = np.random.default_rng(7)
    return {
        data.TRAIN_IMAGES: rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        data.TRAIN_LABELS: rng.integers(0, 10, n_train, dtype=np.uint8),
        data.TEST_IMAGES: rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        data.TEST_LABELS: rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_tiny(directory: Path, arrays=None, gz=True) -> dict[str, str]:
    """Write the four IDX files of `arrays` (tiny_arrays() by default) into `directory`; return
    their uncompressed SHA-256s."""
    return write_dataset(directory, arrays or tiny_arrays(), gz=gz)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No dataset reachable except what a test puts in place: every search root is empty."""
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "SHIPPED_DATA", tmp_path / "repo-data")
    return tmp_path


@pytest.fixture
def register_tiny(monkeypatch, tmp_path):
    """Register a dataset "tiny" whose checksums are those of the files a test writes."""

    def register(digests, system_dirs=(), install_hint=""):
        spec = DatasetSpec(digests, system_dirs=tuple(system_dirs), install_hint=install_hint)
        monkeypatch.setitem(data.DATASETS, "tiny", spec)

    return register


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


# --- Registry ---


def test_registry_covers_the_four_files():
    for spec in data.DATASETS.values():
        assert set(spec.sha256) == set(FILES)
        assert spec.mirrors


def test_unknown_dataset_lists_known_names():
    with pytest.raises(FastMLPError, match="unknown dataset 'cifar'.*fashion-mnist, mnist"):
        load_dataset("cifar")


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_val_fraction_must_be_inside_zero_one(fraction):
    with pytest.raises(FastMLPError, match="val_fraction"):
        load_dataset("mnist", val_fraction=fraction)


def test_only_float32_and_float64():
    with pytest.raises(FastMLPError, match="float16"):
        load_dataset("mnist", dtype=np.float16)


# --- The shipped MNIST ---


def test_mnist_shapes_dtypes_and_layout(mnist):
    assert mnist.name == "mnist"
    assert mnist.directory == MNIST_DIR
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (48000, 12000, 10000)
    assert mnist.n_features == 784 and mnist.n_classes == 10
    assert mnist.sha256 == data.DATASETS["mnist"].sha256
    for split in (mnist.train, mnist.val, mnist.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int32
        assert split.x.shape == (len(split), 784) and split.y.shape == (len(split),)
        assert split.x.flags.c_contiguous and split.y.flags.c_contiguous
        assert split.x.min() == 0.0 and split.x.max() == 1.0
        assert set(np.unique(split.y)) == set(range(10))


def test_mnist_test_set_is_kept_in_file_order(mnist):
    images = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz").reshape(10000, 784)
    np.testing.assert_array_equal(mnist.test.x, images / np.float32(255))
    np.testing.assert_array_equal(mnist.test.y, read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz"))


def rows_with_labels(split) -> np.ndarray:
    """Each example as one sortable byte string: its pixels as uint8, then its label."""
    pixels = np.rint(split.x * 255).astype(np.uint8)
    rows = np.ascontiguousarray(np.column_stack([pixels, split.y.astype(np.uint8)]))
    return np.sort(rows.view(f"V{rows.shape[1]}").ravel())


def test_train_and_val_partition_the_training_file(mnist):
    images = read_idx(MNIST_DIR / "train-images-idx3-ubyte.gz").reshape(60000, 784)
    labels = read_idx(MNIST_DIR / "train-labels-idx1-ubyte.gz")
    whole = data.Split(x=images / 255.0, y=labels)
    together = data.Split(
        x=np.concatenate([mnist.train.x, mnist.val.x]),
        y=np.concatenate([mnist.train.y, mnist.val.y]),
    )
    np.testing.assert_array_equal(rows_with_labels(together), rows_with_labels(whole))
    # The documented rule: the first round(n * val_fraction) of the seeded permutation are val.
    order = np.random.default_rng(0).permutation(60000)
    np.testing.assert_array_equal(mnist.val.y, labels[order[:12000]])
    np.testing.assert_array_equal(mnist.train.x[:100], images[order[12000:12100]] / np.float32(255))


def test_split_is_deterministic_per_seed_and_differs_across_seeds(mnist):
    again = load_dataset("mnist", seed=0)
    other = load_dataset("mnist", seed=1)
    np.testing.assert_array_equal(again.train.x, mnist.train.x)
    np.testing.assert_array_equal(again.val.y, mnist.val.y)
    assert not np.array_equal(other.val.y, mnist.val.y)
    np.testing.assert_array_equal(other.test.x, mnist.test.x)


def test_float64_agrees_with_float32(mnist):
    wide = load_dataset("mnist", dtype=np.float64)
    for part in ("train", "val", "test"):
        narrow, wide_part = getattr(mnist, part), getattr(wide, part)
        assert wide_part.x.dtype == np.float64
        np.testing.assert_array_equal(narrow.x, wide_part.x.astype(np.float32))
        np.testing.assert_array_equal(narrow.y, wide_part.y)


def test_every_pixel_value_scales_the_same_in_both_precisions():
    values = np.arange(256, dtype=np.uint8)
    narrow = np.divide(values, 255, dtype=np.float32)
    wide = np.divide(values, 255, dtype=np.float64)
    np.testing.assert_array_equal(narrow, wide.astype(np.float32))


@pytest.mark.skipif(
    not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} missing: apt-get install dataset-fashion-mnist"
)
def test_fashion_mnist_loads_from_the_debian_package(isolated):
    fashion = load_dataset("fashion-mnist", val_fraction=0.1)
    assert fashion.directory == FASHION_DIR
    assert (len(fashion.train), len(fashion.val), len(fashion.test)) == (54000, 6000, 10000)
    assert fashion.n_features == 784
    assert 0.0 <= fashion.train.x.min() and fashion.train.x.max() <= 1.0


# --- Validation of what the files contain (a registered "tiny" dataset with matching checksums) ---


def test_tiny_dataset_loads_raw_and_gzip_identically(tmp_path, register_tiny):
    register_tiny(write_tiny(tmp_path / "gz", gz=True))
    write_tiny(tmp_path / "raw", gz=False)
    from_gz = load_dataset("tiny", data_dir=tmp_path / "gz", val_fraction=0.2)
    from_raw = load_dataset("tiny", data_dir=tmp_path / "raw", val_fraction=0.2)
    assert (len(from_gz.train), len(from_gz.val), len(from_gz.test)) == (40, 10, 10)
    assert from_gz.n_features == 16
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(from_gz, part).x, getattr(from_raw, part).x)
        np.testing.assert_array_equal(getattr(from_gz, part).y, getattr(from_raw, part).y)


def test_checksum_mismatch_is_refused(tmp_path, register_tiny):
    digests = write_tiny(tmp_path)
    register_tiny({**digests, data.TEST_LABELS: "f" * 64})
    with pytest.raises(DataError) as info:
        load_dataset("tiny", data_dir=tmp_path)
    assert str(info.value).startswith(f"{tmp_path}/t10k-labels-idx1-ubyte.gz: sha256 ")
    assert str(info.value).endswith(f"expected {'f' * 64} (corrupt file or a different dataset)")


def load_tiny_with(tmp_path, register_tiny, file, array):
    """Load "tiny" with one file's content replaced; return the one-line DataError message."""
    register_tiny(write_tiny(tmp_path, {**tiny_arrays(), file: array}))
    with pytest.raises(DataError) as info:
        load_dataset("tiny", data_dir=tmp_path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_image_and_label_counts_must_agree(tmp_path, register_tiny):
    message = load_tiny_with(tmp_path, register_tiny, data.TRAIN_LABELS, np.zeros(49, np.uint8))
    assert message.startswith(f"{tmp_path}/train-labels-idx1-ubyte.gz: 49 labels for the 50 images")


def test_labels_must_be_digits(tmp_path, register_tiny):
    labels = np.zeros(10, np.uint8)
    labels[3] = 12
    message = load_tiny_with(tmp_path, register_tiny, data.TEST_LABELS, labels)
    assert message.startswith(f"{tmp_path}/t10k-labels-idx1-ubyte.gz: label 12 outside 0..9")


def test_images_must_have_rank_3(tmp_path, register_tiny):
    flat = np.zeros((50, 16), np.uint8)
    message = load_tiny_with(tmp_path, register_tiny, data.TRAIN_IMAGES, flat)
    assert message.startswith(f"{tmp_path}/train-images-idx3-ubyte.gz: images have rank 2")


def test_labels_must_have_rank_1(tmp_path, register_tiny):
    column = np.zeros((50, 1), np.uint8)
    message = load_tiny_with(tmp_path, register_tiny, data.TRAIN_LABELS, column)
    assert "labels have rank 2, expected 1" in message


def test_test_images_must_match_training_image_size(tmp_path, register_tiny):
    larger = np.zeros((10, 5, 5), np.uint8)
    message = load_tiny_with(tmp_path, register_tiny, data.TEST_IMAGES, larger)
    assert message.startswith(f"{tmp_path}/t10k-images-idx3-ubyte.gz: images are 5x5")


def test_val_fraction_that_empties_a_split(tmp_path, register_tiny):
    register_tiny(write_tiny(tmp_path))
    with pytest.raises(FastMLPError, match="empty split"):
        load_dataset("tiny", data_dir=tmp_path, val_fraction=0.001)


# --- Lookup order ---


def test_lookup_order(isolated, monkeypatch, register_tiny):
    system = isolated / "system"
    register_tiny({f: "" for f in FILES}, system_dirs=[system])
    explicit, env, repo = (isolated / d for d in ("explicit", "env", "repo-data"))
    cache = isolated / "cache" / "fastmlp"
    monkeypatch.setenv("FASTMLP_DATA", str(env))
    for root in (explicit, env, repo, cache):
        write_tiny(root / "tiny")
    write_tiny(system)

    assert find_dataset_dir("tiny", explicit) == explicit / "tiny"
    # Each root found in turn once the ones before it are gone.
    for root, next_found in ((env, repo / "tiny"), (repo, cache / "tiny"), (cache, system)):
        assert find_dataset_dir("tiny") == root / "tiny"
        shutil.rmtree(root)
        assert find_dataset_dir("tiny") == next_found
    # An explicit directory is the only place searched: without the files it is an error, not
    # a quiet fall-through to files the user did not point at.
    with pytest.raises(DatasetNotFound, match="empty"):
        find_dataset_dir("tiny", isolated / "empty")


def test_cache_dir_follows_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "fastmlp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "fastmlp"


def test_candidate_dirs_order(isolated, monkeypatch):
    monkeypatch.setenv("FASTMLP_DATA", "/env")
    cache = data.cache_dir()
    assert candidate_dirs("fashion-mnist", "/explicit") == [
        Path("/explicit/fashion-mnist"), Path("/explicit")]
    assert candidate_dirs("fashion-mnist") == [
        Path("/env/fashion-mnist"), Path("/env"),
        data.SHIPPED_DATA / "fashion-mnist", data.SHIPPED_DATA,
        cache / "fashion-mnist", cache,
        FASHION_DIR,
    ]


def test_dataset_named_subdirectory_beats_root(isolated, register_tiny):
    register_tiny({f: "" for f in FILES})
    write_tiny(isolated / "root")
    write_tiny(isolated / "root" / "tiny")
    assert find_dataset_dir("tiny", isolated / "root") == isolated / "root" / "tiny"


def test_incomplete_directory_does_not_qualify(isolated, register_tiny):
    register_tiny({f: "" for f in FILES})
    write_tiny(isolated / "partial")
    (isolated / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    write_tiny(isolated / "cache" / "fastmlp", gz=False)
    with pytest.raises(DatasetNotFound):
        find_dataset_dir("tiny", isolated / "partial")


def test_not_found_lists_the_places_and_the_remedies(isolated):
    with pytest.raises(DatasetNotFound) as info:
        find_dataset_dir("mnist", isolated / "explicit")
    message = str(info.value)
    assert "\n" not in message
    for place in candidate_dirs("mnist", isolated / "explicit"):
        assert str(place) in message
    assert str(isolated / "cache" / "fastmlp" / "mnist") in message
    assert "fastmlp download mnist" in message
    assert "apt-get" not in message


def test_not_found_for_fashion_mentions_apt(isolated, monkeypatch):
    spec = data.DATASETS["fashion-mnist"]
    moved = DatasetSpec(spec.sha256, (isolated / "nowhere",), install_hint=spec.install_hint)
    monkeypatch.setitem(data.DATASETS, "fashion-mnist", moved)
    with pytest.raises(DatasetNotFound, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


# --- Downloading, from file:// mirrors only ---


def mirror_url(directory: Path) -> str:
    return directory.as_uri() + "/"


def test_download_falls_back_to_the_next_mirror(tmp_path):
    mirrors = [mirror_url(tmp_path / "no-such-mirror"), mirror_url(MNIST_DIR)]
    dest = download_dataset("mnist", tmp_path / "dest", mirrors)
    assert dest == tmp_path / "dest" / "mnist"
    assert sorted(p.name for p in dest.iterdir()) == sorted(f + ".gz" for f in FILES)
    for f in FILES:
        assert (dest / (f + ".gz")).read_bytes() == (MNIST_DIR / (f + ".gz")).read_bytes()
    assert find_dataset_dir("mnist", tmp_path / "dest") == dest


def test_download_defaults_to_the_cache(isolated, register_tiny):
    register_tiny(write_tiny(isolated / "mirror"))
    dest = download_dataset("tiny", mirrors=[mirror_url(isolated / "mirror")])
    assert dest == isolated / "cache" / "fastmlp" / "tiny"
    assert load_dataset("tiny").directory == dest


def test_download_refuses_a_corrupt_file_and_leaves_nothing(tmp_path, register_tiny):
    register_tiny(write_tiny(tmp_path / "mirror"))
    bad = {**tiny_arrays(), data.TEST_LABELS: np.ones(10, np.uint8)}
    write_tiny(tmp_path / "mirror", bad)  # same names, different content: checksum fails
    with pytest.raises(DataError) as info:
        download_dataset("tiny", tmp_path / "dest", [mirror_url(tmp_path / "mirror")])
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "sha256" in message and "\n" not in message
    leftovers = sorted(p.name for p in (tmp_path / "dest" / "tiny").iterdir())
    # The three files before the corrupt one were verified and kept; no partial file anywhere.
    assert leftovers == sorted(f + ".gz" for f in FILES if f != data.TEST_LABELS)


def test_download_without_any_mirror_answering(tmp_path, register_tiny):
    register_tiny(write_tiny(tmp_path / "unused"))
    mirrors = [mirror_url(tmp_path / "a"), "notaurl"]
    with pytest.raises(DataError) as info:
        download_dataset("tiny", tmp_path / "dest", mirrors)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert f"copy the four .gz files into {tmp_path / 'dest' / 'tiny'} by hand" in message
    assert not (tmp_path / "dest").exists()  # no empty folders left behind
