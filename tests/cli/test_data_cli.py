"""Any dataset through the real command line: `--data PATH` for train, evaluate and predict, and
`data = "PATH"` in grids and sweeps, for every kind of file; bad files refused in one line
with exit status 2 and nothing written; data larger than memory refused with the memory plan's
line (exit 1) before it is loaded; and the versions every output carries."""
import gzip
import io
import json
import zipfile

import numpy as np
import pytest

from fastmlp.runtime.versions import fastmlp_version
from fastmlp.training import checkpoint
from tests.helpers import error_line, idx_bytes, run_cli

FAST = ["--layers", "16", "--batch-size", "32", "--optimizer", "adam", "--lr", "0.01",
        "--quiet"]


def blobs(n=240, seed=0, features=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = rng.normal(scale=3, size=(3, features))
    return centers[y] + rng.normal(size=(n, features)), y


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A CSV of string classes, an .npz with a test split and class names, a folder of
    pictures and a folder of IDX files of 26 classes."""
    d = tmp_path_factory.mktemp("data")
    x, y = blobs()
    names = np.array(["setosa", "versicolor", "virginica"])
    (d / "iris.csv").write_text("a,b,c,d,species\n" + "".join(
        ",".join(f"{v:.5f}" for v in row) + f",{names[c]}\n" for row, c in zip(x, y)))
    np.savez(d / "blobs.npz", x_train=x, y_train=y, x_test=x[:40], y_test=y[:40],
             class_names=np.array(["zero", "one", "two"]))
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for name, level in (("dark", 30), ("light", 220)):
        (d / "pics" / name).mkdir(parents=True)
        for i in range(12):
            a = np.clip(level + rng.integers(-20, 20, (9, 7)), 0, 255).astype(np.uint8)
            image.fromarray(a).save(d / "pics" / name / f"{i}.png")
    (d / "letters").mkdir()
    for split, n in (("train", 26 * 20), ("test", 26 * 4)):
        labels = (np.arange(n) % 26 + 1).astype(np.uint8)
        images = np.zeros((n, 6, 6), np.uint8)
        images.reshape(n, -1)[np.arange(n), labels] = 255
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            (d / "letters" / f"emnist-letters-{split}-{kind}-ubyte.gz").write_bytes(
                gzip.compress(idx_bytes(array)))
    return d


@pytest.mark.parametrize("kind, path, classes, test", [
    ("csv", "iris.csv", ["setosa", "versicolor", "virginica"], False),
    ("npz", "blobs.npz", ["zero", "one", "two"], True),
    ("folder", "pics", ["dark", "light"], False),
    ("idx", "letters", list(range(1, 27)), True),
])
def test_train_evaluate_predict_every_kind(files, tmp_path, kind, path, classes, test):
    model, out = tmp_path / "m.npz", tmp_path / "run.json"
    proc = run_cli("train", "--data", files / path, *FAST, "--epochs", 25, "--save", model,
                   "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert ("test n/a" in proc.stdout) != test
    run = json.loads(out.read_text())
    assert run["dataset"]["classes"] == classes and run["config"]["dataset"] == "file"
    assert run["config"]["data"] == str(files / path)
    assert run["summary"]["val_acc"] > 0.9
    split = "test" if test else "val"
    proc = run_cli("evaluate", model, "--split", split)
    assert proc.returncode == 0, proc.stderr
    assert f"{path} {split}: accuracy" in proc.stdout
    assert all(f"{c:>5}" in proc.stdout for c in map(str, classes))
    inputs = {"csv": files / "iris.csv", "npz": files / "blobs.npz",
              "folder": files / "pics" / "light", "idx": files / "letters"}[kind]
    proc = run_cli("predict", model, inputs, "--json")
    assert proc.returncode == 0, proc.stderr
    predicted = json.loads(proc.stdout)
    assert {p["class"] for p in predicted} <= set(classes)
    if kind == "folder":
        assert {p["class"] for p in predicted} == {"light"}
    assert all(len(p["probabilities"]) == len(classes) for p in predicted)


def test_fashion_mnist_says_dress_not_3(tmp_path):
    from tests.cli.test_settings_cli import FASHION_DIR

    if not FASHION_DIR.is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    model = tmp_path / "m.npz"
    proc = run_cli("train", "--dataset", "fashion-mnist", "--layers", 16, "--epochs", 1,
                   "--batch-size", 512, "--quiet", "--save", model)
    assert proc.returncode == 0, proc.stderr
    report = run_cli("evaluate", model).stdout
    assert "      Dress  " in report and "Ankle boot  " in report
    proc = run_cli("predict", model, FASHION_DIR / "t10k-images-idx3-ubyte.gz", "--json")
    predicted = json.loads(proc.stdout)
    names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"}
    assert len(predicted) == 10000 and {p["class"] for p in predicted} <= names
    assert sum(p["class"] == "Dress" for p in predicted) > 100


def test_the_standardisation_is_saved_and_applied_by_evaluate_and_predict(files, tmp_path):
    model = tmp_path / "m.npz"
    x, y = blobs()
    scaled = tmp_path / "scaled.csv"
    scaled.write_text("".join(",".join(f"{v * 1000 + 9000:.3f}" for v in row) + f",{c}\n"
                              for row, c in zip(x, y)))
    proc = run_cli("train", "--data", scaled, "--standardize", *FAST, "--epochs", 20,
                   "--save", model)
    assert proc.returncode == 0, proc.stderr
    saved = checkpoint.load(model)
    assert saved.scaler is not None and saved.scaler.mean.min() > 5000
    report = run_cli("evaluate", model, "--split", "val").stdout
    assert float(report.split("accuracy ")[1].split("%")[0]) > 90
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(",".join(f"{v * 1000 + 9000:.3f}" for v in row) + "\n"
                            for row in x[:20]))
    proc = run_cli("predict", model, rows, "--json")
    assert proc.returncode == 0, proc.stderr
    right = [p["class"] == c for p, c in zip(json.loads(proc.stdout), y[:20])]
    assert sum(right) >= 18


def test_evaluate_on_other_files_maps_their_labels_to_the_models_classes(files, tmp_path):
    model = tmp_path / "m.npz"
    assert run_cli("train", "--data", files / "iris.csv", *FAST, "--epochs", 20, "--save",
                   model).returncode == 0
    more = tmp_path / "more.csv"
    lines = (files / "iris.csv").read_text().splitlines()
    more.write_text("\n".join([lines[0], *lines[1:30]]) + "\n")
    proc = run_cli("evaluate", model, "--data", more, "--split", "val")
    assert proc.returncode == 0, proc.stderr
    assert "more.csv val: accuracy" in proc.stdout
    proc = run_cli("evaluate", model, "--data", more)
    error_line(proc, "more.csv: no test split", "--split val")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("\n".join([lines[0], *lines[1:30], "1,2,3,4,rose"]) + "\n")
    error_line(run_cli("evaluate", model, "--data", unknown, "--split", "val"),
               "'rose' is not one of the 3 classes")


def test_predict_prints_nothing_when_one_of_its_inputs_is_bad(files, tmp_path):
    model = tmp_path / "m.npz"
    assert run_cli("train", "--data", files / "iris.csv", *FAST, "--epochs", 2, "--save",
                   model).returncode == 0
    wide = tmp_path / "wide.csv"
    wide.write_text("1,2,3,4,5,6,7\n")
    proc = run_cli("predict", model, files / "iris.csv", wide)
    line = error_line(proc, "wide.csv: 7 columns, the model takes 4 features")
    assert proc.stdout == "" and "Traceback" not in line


BAD_FILES = {
    "ragged.csv": ("a,b,label\n1,2,x\n3,4\n", "line 3 has 2 columns"),
    "letters.csv": ("a,b,label\n1,two,x\n3,4,y\n", "'two' is not a number"),
    "nan.csv": ("a,b,label\n1,nan,x\n3,4,y\n", "not finite"),
    "empty.csv": ("", "empty file"),
    "header-only.csv": ("a,b,label\n", "a header and no rows"),
    "data.parquet": ("PAR1", "not a dataset fastmlp reads"),
    "fake.npz": ("not a zip", "not a readable .npz"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_data_file_is_one_line_exit_2_and_nothing_written(tmp_path, name):
    text, says = BAD_FILES[name]
    (tmp_path / name).write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("train", "--data", tmp_path / name, *FAST, "--epochs", 1, "--out",
                   out / "run.json", "--save", out / "m.npz")
    line = error_line(proc, says)
    assert str(tmp_path / name) in line and "Traceback" not in proc.stderr
    assert list(out.iterdir()) == []


def test_missing_data_and_settings_that_need_data(tmp_path):
    error_line(run_cli("train", "--data", tmp_path / "nope.csv", "--epochs", 1),
               "nope.csv: no such file or folder")
    error_line(run_cli("train", "--image-size", "28", "--epochs", 1),
               "image_size applies to data read from files")
    error_line(run_cli("train", "--image-size", "0x3", "--epochs", 1), "--image-size")
    error_line(run_cli("train", "--data", tmp_path, "--dataset", "fashion-mnist"),
               "give data (files) or dataset (a name), not both")


def huge_npz(path):
    """An .npz whose headers declare 100 million 784-pixel images and hold none of them."""
    def header(shape):
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False,
                                                      "shape": shape})
        return buffer.getvalue()

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header((10**8, 784)))
        archive.writestr("y_train.npy", header((10**8,)))
    return path


def test_data_larger_than_memory_is_refused_before_it_is_loaded(tmp_path):
    data = huge_npz(tmp_path / "huge.npz")
    proc = run_cli("train", "--data", data, "--epochs", 1, "--out", tmp_path / "run.json")
    line = error_line(proc, "[128, 64, 32] needs", "GiB", "data 292.4", "available", status=1)
    assert "Traceback" not in line and not (tmp_path / "run.json").exists()
    proc = run_cli("train", "--data", data, "--epochs", 1, "--dry-run")
    assert proc.returncode == 1 and "784 -> 128 -> 64 -> 32" in proc.stdout
    assert "total" in proc.stdout and "needs" in proc.stderr


def test_a_grid_and_a_sweep_read_data_relative_to_their_file(files, tmp_path):
    (tmp_path / "grid").mkdir()
    (tmp_path / "grid" / "iris.csv").write_bytes((files / "iris.csv").read_bytes())
    grid = tmp_path / "grid" / "grid.toml"
    grid.write_text('seeds = 1\n[defaults]\ndata = "iris.csv"\nepochs = 3\nbatch_size = 32\n'
                    'init = "he"\n[[experiment]]\nname = "small"\nlayers = [8]\n'
                    '[[experiment]]\nname = "std"\nlayers = [8]\nstandardize = true\n')
    out = tmp_path / "out"
    proc = run_cli("experiments", grid, "--workers", 0, "--out-dir", out, "--quiet",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "0 test samples" in proc.stdout and "| small |" in proc.stdout
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert len(records) == 2
    assert {r["result"]["dataset"]["classes"][0] for r in records} == {"setosa"}
    assert all(r["versions"]["fastmlp"] == fastmlp_version() for r in records)
    # Read back by the same command; other bytes in the file are another run.
    proc = run_cli("experiments", grid, "--workers", 0, "--out-dir", out, "--quiet")
    assert "2 of 2 runs read back" in proc.stderr
    with open(tmp_path / "grid" / "iris.csv", "a") as f:
        f.write("1,2,3,4,setosa\n")
    proc = run_cli("experiments", grid, "--workers", 0, "--out-dir", out, "--quiet")
    assert proc.returncode == 0 and "read back" not in proc.stderr
    sweep = tmp_path / "grid" / "sweep.toml"
    sweep.write_text('seeds = 1\n[fixed]\ndata = "iris.csv"\nepochs = 2\nbatch_size = 32\n'
                     '[space]\nlayers = [[4], [8]]\n')
    proc = run_cli("sweep", sweep, "--workers", 0, "--out-dir", tmp_path / "sweep", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "layers=[8]" in proc.stdout
    (tmp_path / "grid" / "iris.csv").unlink()
    error_line(run_cli("sweep", sweep, "--workers", 0, "--out-dir", tmp_path / "s2"),
               "iris.csv: no such file or folder")


def test_a_record_of_another_fastmlp_version_is_run_again(files, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'seeds = 1\n[[experiment]]\nname = "one"\ndata = "{files / "iris.csv"}"'
                    '\nlayers = [4]\ninit = "he"\nepochs = 1\nbatch_size = 64\n')
    out = tmp_path / "out"
    assert run_cli("experiments", grid, "--workers", 0, "--out-dir", out,
                   "--quiet").returncode == 0
    path, = (out / "runs").glob("*.json")
    record = json.loads(path.read_text())
    record["versions"]["fastmlp"] = "0.0.1"
    path.write_text(json.dumps(record))
    proc = run_cli("experiments", grid, "--workers", 0, "--out-dir", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "not read back but run again (made by fastmlp 0.0.1, this is" in proc.stderr
    assert json.loads(path.read_text())["versions"]["fastmlp"] == fastmlp_version()


def test_outputs_carry_their_schema_and_the_versions(files, tmp_path):
    model, out = tmp_path / "m.npz", tmp_path / "run.json"
    proc = run_cli("train", "--data", files / "iris.csv", *FAST, "--epochs", 2, "--save",
                   model, "--out", out, "--checkpoint-every", 1)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(out.read_text())
    assert (run["format"], run["schema"]) == ("fastmlp-run", 1)
    assert set(run["versions"]) >= {"fastmlp", "python", "numpy", "numba"}
    assert run_cli("plot", out, "-o", tmp_path / "curves.png").returncode == 0
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**run, "schema": 99}))
    error_line(run_cli("plot", newer, "-o", tmp_path / "no.png"), "schema 99", "upgrade")
    saved = checkpoint.load(model)
    assert saved.versions["fastmlp"] == fastmlp_version()
    # A checkpoint of another fastmlp version is not resumed: its numbers would be mixed.
    with np.load(model) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta["versions"]["fastmlp"] = "0.0.1"
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    error_line(run_cli("train", "--resume", tmp_path / "old.npz", "--epochs", 3),
               "written by fastmlp 0.0.1", "train it again")
