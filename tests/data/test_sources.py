"""Datasets read from a path (data/source.py and its loaders): CSV/TSV, .npz, folders of
pictures and folders of IDX files, each checked whole: classes from the training labels, the
seeded split, the scaling, the checksums, the sizes read without loading, and every bad file
refused in one DataError line that names it."""
import gzip
import hashlib

import numpy as np
import pytest

from fastmlp.data import classes as classes_module
from fastmlp.data import source
from fastmlp.data.dataset import Dataset, Split
from fastmlp.data.load import load_dataset_for
from fastmlp.errors import DataError
from fastmlp.settings import TrainConfig
from tests.helpers import idx_bytes, raises_one_line

LOAD = dict(dtype=np.float32, seed=0, val_fraction=0.25)


def write_csv(path, rows, header=None, delimiter=","):
    lines = ([delimiter.join(header)] if header else []) + [
        delimiter.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.array([[0, 0], [4, 0], [0, 4]], float)[y] + rng.normal(size=(n, 2))
    return x, y


# --- CSV / TSV --------------------------------------------------------------------------------

def test_a_csv_with_string_labels_and_a_header(tmp_path):
    x, y = blobs()
    names = np.array(["cat", "dog", "emu"])[y]
    path = write_csv(tmp_path / "pets.csv", [[*row, label] for row, label in zip(x, names)],
                     ["a", "b", "label"])
    data = source.load_path(path, **LOAD)
    assert data.classes.tolist() == ["cat", "dog", "emu"] and data.n_classes == 3
    assert data.n_features == 2 and (len(data.train), len(data.val)) == (90, 30)
    assert data.test is None and data.name == "pets.csv"
    assert data.source["kind"] == "table" and data.source["label_column"] == "label"
    assert data.sha256 == {"pets.csv": hashlib.sha256(path.read_bytes()).hexdigest()}
    # Features as given (not scaled), labels mapped back to the strings they were.
    together = np.concatenate([data.train.x, data.val.x])
    assert together.min() < -1 and together.max() > 4
    order = np.random.default_rng(0).permutation(120)
    np.testing.assert_allclose(data.val.x, x[order[:30]], rtol=1e-6)
    assert (data.classes[data.val.y] == names[order[:30]]).all()


def test_a_label_column_by_name_or_index_and_a_tsv_without_header(tmp_path):
    x, y = blobs()
    rows = [[label, *row] for row, label in zip(x, y + 7)]
    tsv = write_csv(tmp_path / "data.tsv", rows, delimiter="\t")
    data = source.load_path(tsv, label_column=0, **LOAD)
    assert data.classes.tolist() == [7, 8, 9] and data.n_features == 2
    assert data.source["label_column"] == 0 and not data.source["header"]
    named = write_csv(tmp_path / "named.csv", rows, ["species", "a", "b"])
    assert source.load_path(named, label_column="species", **LOAD).classes.tolist() == [7, 8, 9]
    # By default the last column: here a feature, so 120 distinct "classes" of floats refused.
    with pytest.raises(DataError, match="not an integer"):
        source.load_path(named, **LOAD)


@pytest.mark.parametrize("text, words", [
    ("", ["empty file"]),
    ("\n\n", ["empty file"]),
    ("a,b,label\n", ["a header and no rows"]),
    ("a,b,label\n1,2,x\n3,4\n", ["line 3 has 2 columns", "ragged"]),
    ("a,b,label\n1,2,x\n3,4,y,5\n", ["line 3 has 4 columns"]),
    ("a,b,label\n1,abc,x\n", ["line 2, column 'b'", "'abc' is not a number"]),
    ("a,b,label\n1,,x\n", ["line 2, column 'b'", "an empty cell"]),
    ("a,b,label\n1,nan,x\n2,3,y\n", ["line 2, column 'b'", "not finite"]),
    ("a,b,label\n1,inf,x\n2,3,y\n", ["not finite"]),
    ("a,b,label\n1,2,\n3,4,y\n", ["line 2: empty label"]),
    ("x\n1\n2\n", ["one column"]),
    ("a,b,label\n1,2,0.5\n3,4,1\n5,6,1\n7,8,1\n", ["label column 'label' holds 0.5",
                                                    "not an integer"]),
    ("a,b,label\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n", ["hold one class ('x')", "at least 2"]),
    ("a,b,label\r\n1,2,x\r\n3,4,y\r\n5,6\r\n", ["line 4 has 2 columns"]),
])
def test_bad_csv_files_are_one_line(tmp_path, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    raises_one_line(lambda: source.load_path(path, **LOAD), str(path), *words)


def test_a_csv_that_is_not_text_and_a_missing_label_column(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    raises_one_line(lambda: source.load_path(path, **LOAD), str(path), "not UTF-8")
    good = write_csv(tmp_path / "good.csv", [[1, 2, 0], [3, 4, 1]] * 5, ["a", "b", "label"])
    raises_one_line(lambda: source.load_path(good, label_column="nope", **LOAD), str(good),
                    "no column named 'nope'", "a, b, label")
    raises_one_line(lambda: source.load_path(good, label_column=5, **LOAD), str(good),
                    "out of range")


# --- .npz -------------------------------------------------------------------------------------

def test_an_npz_with_a_test_split_and_class_names(tmp_path):
    x, y = blobs()
    path = tmp_path / "blobs.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:20], y_test=y[:20],
             class_names=np.array(["zero", "one", "two"]))
    data = source.load_path(path, **LOAD)
    assert data.classes.tolist() == ["zero", "one", "two"]
    assert len(data.test) == 20 and (data.test.y == y[:20]).all()
    np.testing.assert_allclose(data.test.x, x[:20], rtol=1e-6)


def test_npz_pictures_are_scaled_and_keep_their_shape(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (60, 6, 6), dtype=np.uint8)
    path = tmp_path / "pics.npz"
    np.savez(path, x_train=images, y_train=np.array(list("ab") * 30))
    data = source.load_path(path, **LOAD)
    assert data.n_features == 36 and data.image_shape == (6, 6)
    assert 0 <= data.train.x.min() and data.train.x.max() <= 1
    assert data.classes.tolist() == ["a", "b"]


@pytest.mark.parametrize("arrays, words", [
    ({"x_train": np.zeros((4, 2))}, ["no y_train array"]),
    ({"x_train": np.zeros(4), "y_train": np.zeros(4)}, ["one sample per row"]),
    ({"x_train": np.zeros((4, 2)), "y_train": np.zeros(3)}, ["3 labels in y_train for 4"]),
    ({"x_train": np.zeros((4, 2)), "y_train": np.zeros(4), "x_test": np.zeros((2, 2))},
     ["x_test and y_test go together"]),
    ({"x_train": np.zeros((4, 2)), "y_train": np.zeros(4), "x_test": np.zeros((2, 3)),
      "y_test": np.zeros(2)}, ["x_test has 3 features", "x_train 2"]),
    ({"x_train": np.array([["a", "b"]] * 4), "y_train": np.zeros(4)}, ["must be numeric"]),
    ({"x_train": np.zeros((4, 2)), "y_train": np.array([{}] * 4, dtype=object)},
     ["Python objects"]),
    ({"x_train": np.zeros((4, 2)), "y_train": np.arange(4), "x_test": np.zeros((2, 2)),
      "y_test": np.array([0, 9])}, ["test labels", "label 9 is not one of the 4 classes"]),
    ({"x_train": np.zeros((4, 2)), "y_train": np.arange(4), "weights": np.zeros(3)},
     ["unknown array 'weights'"]),
    ({"x_train": np.zeros((4, 2)), "y_train": np.array([0, 1, 2, 5]),
      "class_names": np.array(["a", "b", "c"])}, ["label 5 is not one of the 3 classes"]),
    ({"x_train": np.zeros((4, 2)), "y_train": np.array(list("abab")),
      "class_names": np.array(["a", "b"])}, ["must be integer indices into them"]),
])
def test_bad_npz_files_are_one_line(tmp_path, arrays, words):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    raises_one_line(lambda: source.load_path(path, **LOAD), "", *words)


def test_a_file_that_is_not_an_npz(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_bytes(b"not a zip file at all")
    raises_one_line(lambda: source.load_path(path, **LOAD), str(path), "not a readable .npz")


# --- folders of pictures ----------------------------------------------------------------------

def picture_folder(root, counts, size=(10, 12), with_test=False):
    """Class folders of gray pictures: "dark", "light" and "stripes", easy to tell apart."""
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    splits = {"train": counts, "test": 3} if with_test else {"": counts}
    for split, count in splits.items():
        for name in ("dark", "light", "stripes"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                a = np.full(size[::-1], 40 if name == "dark" else 210, np.uint8)
                if name == "stripes":
                    a[::2] = 0
                a = np.clip(a + rng.integers(0, 20, a.shape), 0, 255).astype(np.uint8)
                image.fromarray(a).save(folder / f"{i:03d}.png")
    (root / "README.txt").write_text("not a picture, not a class")
    return root


def test_a_folder_of_pictures_one_subfolder_per_class(tmp_path):
    root = picture_folder(tmp_path / "pics", 8)
    data = source.load_path(root, **LOAD)
    assert data.classes.tolist() == ["dark", "light", "stripes"]
    assert data.n_features == 120 and data.image_shape == (12, 10)
    assert (len(data.train), len(data.val), data.test) == (18, 6, None)
    assert 0 <= data.train.x.min() and data.train.x.max() <= 1
    assert list(data.sha256) == ["pics/"] and data.source["image_size"] == [10, 12]
    smaller = source.load_path(root, image_size=(5, 4), **LOAD)
    assert smaller.n_features == 20 and smaller.image_shape == (4, 5)


def test_a_folder_with_train_and_test_folders(tmp_path):
    root = picture_folder(tmp_path / "pics", 6, with_test=True)
    data = source.load_path(root, **LOAD)
    assert len(data.test) == 9 and sorted(set(data.test.y.tolist())) == [0, 1, 2]


def test_bad_picture_folders_are_one_line(tmp_path):
    root = picture_folder(tmp_path / "pics", 4)
    (root / "empty-class").mkdir()
    raises_one_line(lambda: source.load_path(root, **LOAD), str(root / "empty-class"),
                    "no PNG or JPEG pictures")
    (root / "empty-class").rmdir()
    (root / "dark" / "broken.png").write_bytes(b"\x89PNG but not really")
    raises_one_line(lambda: source.load_path(root, **LOAD), str(root / "dark" / "broken.png"),
                    "not a readable image")
    empty = tmp_path / "nothing"
    empty.mkdir()
    raises_one_line(lambda: source.load_path(empty, **LOAD), str(empty),
                    "neither IDX files nor class subfolders")


# --- folders of IDX files ---------------------------------------------------------------------

def idx_folder(root, n_classes=26, first=1, per_class=12):
    """An EMNIST-letters-like folder: labels first..first+n_classes-1, 8 x 8 images."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", n_classes * per_class), ("test", n_classes * 2)):
        labels = (np.arange(n) % n_classes + first).astype(np.uint8)
        images = rng.integers(0, 256, (n, 8, 8), dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            (root / f"emnist-letters-{split}-{kind}-ubyte.gz").write_bytes(
                gzip.compress(idx_bytes(array)))
    return root


def test_an_idx_folder_of_any_number_of_classes(tmp_path):
    data = source.load_path(idx_folder(tmp_path / "letters"), **LOAD)
    assert data.classes.tolist() == list(range(1, 27)) and data.n_classes == 26
    assert data.n_features == 64 and len(data.test) == 52 and data.image_shape == (8, 8)
    assert len(data.sha256) == 4


def test_an_idx_folder_with_two_datasets_in_it_is_refused(tmp_path):
    root = idx_folder(tmp_path / "letters")
    (root / "emnist-digits-train-images-idx3-ubyte.gz").write_bytes(b"")
    raises_one_line(lambda: source.load_path(root, **LOAD), str(root),
                    "several files for the train images")


# --- classes, the split and the config ----------------------------------------------------------

def test_a_test_label_outside_the_training_classes_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((10, 2)), y_train=np.array(list("ab") * 5),
             x_test=np.zeros((2, 2)), y_test=np.array(["a", "zebra"]))
    raises_one_line(lambda: source.load_path(path, **LOAD), f"{path}: test labels",
                    "'zebra' is not one of the 2 classes (a, b)")


def test_a_rare_class_in_the_validation_rows_is_still_a_class(tmp_path):
    """The classes come from the whole training file, so whether a rare class falls in the
    validation rows (which the seed decides) cannot make it unknown."""
    x, y = blobs(40)
    y[7] = 9  # one sample of class 9
    path = tmp_path / "rare.npz"
    np.savez(path, x_train=x, y_train=y)
    for seed in range(5):
        data = source.load_path(path, dtype=np.float32, seed=seed, val_fraction=0.25)
        assert data.classes.tolist() == [0, 1, 2, 9]


def test_standardize_uses_the_training_rows_statistics(tmp_path):
    x, y = blobs()
    x = x * [100, 0.01] + [5000, -3]
    path = tmp_path / "scaled.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    data = load_dataset_for(TrainConfig(data=str(path), standardize=True, val_fraction=0.25,
                                        dtype="float64"))
    np.testing.assert_allclose(data.train.x.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(data.train.x.std(axis=0), 1, rtol=1e-9)
    np.testing.assert_allclose(data.test.x, (x[:10] - data.scaler.mean) / data.scaler.scale)
    assert data.val.x.std() > 0.5  # the validation rows scaled with the training statistics


def test_inspect_sizes_every_kind_without_loading(tmp_path):
    x, y = blobs()
    csv = write_csv(tmp_path / "d.csv", [[*r, c] for r, c in zip(x, y)], ["a", "b", "label"])
    assert source.inspect(csv)[:3] == (121, 0, 2)  # lines, not parsed: the header counts
    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=np.zeros((50, 4, 4), np.uint8), y_train=np.zeros(50), x_test=np.zeros(
        (7, 4, 4), np.uint8), y_test=np.zeros(7), class_names=np.array(["a", "b", "c"]))
    assert source.inspect(npz) == (50, 7, 16, 3)
    assert source.inspect(idx_folder(tmp_path / "idx")) == (312, 52, 64, None)
    assert source.inspect(picture_folder(tmp_path / "pics", 4)) == (12, 0, 120, 3)


def test_the_fingerprint_follows_the_content_not_the_name(tmp_path):
    a = write_csv(tmp_path / "a.csv", [[1, 2, 0]])
    b = write_csv(tmp_path / "b.csv", [[1, 2, 0]])
    assert source.fingerprint(a) == source.fingerprint(b)
    b.write_text("1,2,1\n")
    assert source.fingerprint(a) != source.fingerprint(b)


def test_every_dataset_checks_its_labels_when_it_is_made():
    """The boundary: a Dataset whose labels are not indices 0..K-1 of its classes cannot be
    made, so no kernel is ever handed one."""
    x = np.zeros((4, 2), np.float32)
    ok = Split(x, np.array([0, 1, 1, 0], np.int32))
    bad = Split(x, np.array([0, 1, 7, 0], np.int32))
    with pytest.raises(DataError, match="val labels must be class indices in 0..1"):
        Dataset("d", None, ok, bad, None, {}, classes=np.array(["a", "b"]))
    with pytest.raises(DataError, match="train labels"):
        Dataset("d", None, Split(x, np.array([0, -1, 1, 0], np.int32)), ok, None, {},
                classes=np.array([3, 4]))


@pytest.mark.parametrize("labels, expected", [
    (np.array([3, 1, 3, 2]), [1, 2, 3]),
    (np.array(["b", "a", "b"]), ["a", "b"]),
    (np.array([1.0, 0.0, 1.0]), [0, 1]),
    (np.array([True, False]), [0, 1]),
    (np.array([-5, 1000]), [-5, 1000]),
])
def test_classes_are_the_sorted_distinct_labels(labels, expected):
    classes, indices = classes_module.classes_of(labels)
    assert classes.tolist() == expected
    assert (classes[indices] == np.asarray(labels).astype(classes.dtype)).all()


@pytest.mark.parametrize("labels, words", [
    (np.array([0.5, 1.0]), "not an integer"),
    (np.array([np.nan, 1.0]), "NaN"),
    (np.array([1, "a"], dtype=object), "all integers or all strings"),
    (np.zeros((2, 2)), "1-D"),
])
def test_labels_that_are_no_classes_are_refused(labels, words):
    with pytest.raises(DataError, match=words):
        classes_module.classes_of(labels)
