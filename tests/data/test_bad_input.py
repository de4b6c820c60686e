"""Bad input through the real command line (issue "Reliability: bad input").

Every case runs `python -m fastmlp` in a subprocess and checks that the problem is refused
with exit status 2 (a bad file or flag named on the command line) or 1 (a failure while
running: data failing its checksum, divergence, a full disk) and ONE line on stderr that names
the problem (and the file, where there is one), no traceback, and that no output file appeared
or changed: each refused run is given --out/--save (or --plot, -o, ...) paths in a directory
that already holds an older model file, and the directory must be byte for byte as it was
afterwards.

Classes: IDX data files, training flags, output paths, model files. Cases already covered by
tests/test_cli.py (most flag values, --out in a missing directory or on a directory) and the
in-process unit tests of tests/test_idx.py and tests/test_data.py are not repeated here.

On the data files: load_dataset checks each file's SHA-256 against the registry in
fastmlp/data.py *before* it decodes the IDX header (idx.parse_idx: gunzip, checksum, decode),
and the image/label agreement only after all four checksums. So through the shipped registry,
any broken copy of MNIST is refused as a checksum mismatch (or as corrupt gzip, which comes
first). To reach the format and consistency checks through the real CLI, the "registered" runs
start the CLI behind a three-line launcher (run_cli(..., register=...) in tests/helpers.py)
that adds a small dataset made of MNIST slices to the registry, with the checksums of the files
as they are on disk; everything after that (parser, loading, error handling, exit status) is
the unchanged command line.
"""
import gzip
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import zipfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest

from fastmlp.data.load import FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from fastmlp.engine.model import MLP
from fastmlp.settings import TrainConfig
from fastmlp.training import checkpoint
from tests.helpers import MNIST_DIR, idx_bytes, run_cli, unidx, write_dataset

# The cheapest real run: one epoch of a tiny network in a few minibatches.
QUICK = ["--epochs", "1", "--layers", "8", "--batch-size", "4096", "--threads", "2", "--quiet"]

ERROR_LINE = re.compile(r"fastmlp( [a-z]+)?: error: ")


def refused(proc, *words, status=2):
    """Assert `proc` failed with `status` and one stderr line containing every word; return
    the line."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.splitlines()  # also splits on the \r of a progress bar
    assert len(lines) == 1 and proc.stderr.endswith("\n"), proc.stderr
    line = lines[0]
    assert ERROR_LINE.match(line), line
    for word in words:
        assert str(word) in line, line
    return line


def snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir())}


class Outputs:
    """An output directory holding an older model file; a refused run must leave it as is."""

    def __init__(self, directory):
        directory.mkdir()
        self.dir = directory
        self.out, self.save = directory / "run.json", directory / "model.npz"
        self.plot = directory / "cm.png"
        self.save.write_bytes(b"an older model, to be left alone")
        self.before = snapshot(directory)

    @property
    def train(self):
        return ["--out", self.out, "--save", self.save]

    def assert_untouched(self):
        assert snapshot(self.dir) == self.before  # nothing new, nothing changed, no temp file


@pytest.fixture
def outputs(tmp_path):
    return Outputs(tmp_path / "outputs")


# --- data --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real():
    """The uncompressed bytes of the four shipped MNIST files."""
    return {f: gzip.decompress((MNIST_DIR / f"{f}.gz").read_bytes()) for f in FILES}


@pytest.fixture(scope="module")
def tiny(real):
    """A small valid dataset cut from MNIST: 300 training and 100 test images."""
    counts = {TRAIN_IMAGES: 300, TRAIN_LABELS: 300, TEST_IMAGES: 100, TEST_LABELS: 100}
    return {f: idx_bytes(unidx(real[f])[1][:n]) for f, n in counts.items()}


def copy_of_mnist(directory):
    directory.mkdir()
    for f in FILES:
        (directory / f"{f}.gz").write_bytes((MNIST_DIR / f"{f}.gz").read_bytes())
    return directory


def set_byte(data, offset, value):
    return data[:offset] + bytes([value]) + data[offset + 1:]


def fewer_labels(data):
    return idx_bytes(unidx(data)[1][:-1])


def label_ten(data):
    header, labels = unidx(data)
    return set_byte(data, header, 10)


def flat_images(data):
    images = unidx(data)[1]
    return idx_bytes(images.reshape(len(images), -1))


# (file broken, how, what the format/consistency check says)
BROKEN = {
    "empty": (TRAIN_IMAGES, lambda d: b"", "empty, no IDX header"),
    "truncated-header": (TRAIN_LABELS, lambda d: d[:6], "truncated header: rank 1 needs 8"),
    "truncated-body": (TEST_IMAGES, lambda d: d[:-100], "truncated body"),
    "wrong-magic": (TEST_LABELS, lambda d: b"\x89P" + d[2:], "not an IDX file"),
    "wrong-element-type": (TRAIN_IMAGES, lambda d: set_byte(d, 2, 0x0D),
                           "element type 0x0D (float32)"),
    "wrong-rank-in-header": (TEST_IMAGES, lambda d: set_byte(d, 3, 0), "rank 0, expected 1"),
    "images-of-rank-2": (TRAIN_IMAGES, flat_images, "images have rank 2, expected 3"),
    "count-mismatch": (TRAIN_LABELS, fewer_labels, "299 labels for the 300 images"),
    "label-outside-0-9": (TEST_LABELS, label_ten, "label 10 outside 0..9"),
}


# Through the shipped registry every breakage above is the same checksum mismatch, so one
# breakage per file (they are read in turn) is enough; the test below tries them all.
@pytest.mark.parametrize("case", ["empty", "count-mismatch", "truncated-body", "wrong-magic"])
def test_broken_mnist_copy_is_refused_naming_the_file(tmp_path, real, outputs, case):
    """Through the shipped registry: the checksum (checked first) or the format check."""
    name, breaker, says = BROKEN[case]
    data_dir = copy_of_mnist(tmp_path / "data")
    (data_dir / f"{name}.gz").unlink()
    (data_dir / name).write_bytes(breaker(real[name]))
    proc = run_cli("train", "--data-dir", data_dir, *QUICK, *outputs.train)
    line = refused(proc, f"{data_dir / name}: ", status=1)  # a failure while running
    assert "sha256" in line or says in line
    outputs.assert_untouched()


@pytest.mark.parametrize("case", BROKEN)
def test_broken_file_hits_the_format_check(tmp_path, tiny, outputs, case):
    """With the registry accepting the files' checksums, the format and consistency checks
    themselves must refuse them."""
    name, breaker, says = BROKEN[case]
    files = {**tiny, name: breaker(tiny[name])}
    data_dir = tmp_path / "data"
    sha256 = write_dataset(data_dir, files, gz=False)
    proc = run_cli("train", "--dataset", "tiny", "--data-dir", data_dir, *QUICK, *outputs.train,
                   register=["tiny", sha256])
    refused(proc, f"{data_dir / name}: ", says)
    outputs.assert_untouched()


def test_the_registered_tiny_dataset_itself_trains(tmp_path, tiny):
    """The control for the test above: unbroken, the same files and launcher work."""
    data_dir = tmp_path / "data"
    sha256 = write_dataset(data_dir, tiny, gz=False)
    out = tmp_path / "run.json"
    proc = run_cli("train", "--dataset", "tiny", "--data-dir", data_dir, *QUICK, "--out", out,
                   register=["tiny", sha256])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert len(json.loads(out.read_text())["history"]) == 1


def test_missing_file(tmp_path, outputs):
    data_dir = copy_of_mnist(tmp_path / "data")
    (data_dir / f"{TEST_LABELS}.gz").unlink()
    proc = run_cli("train", "--data-dir", data_dir, *QUICK, *outputs.train)
    refused(proc, "mnist: dataset files not found", f"looked in {data_dir / 'mnist'}, {data_dir};")
    outputs.assert_untouched()


def test_gzip_corruption(tmp_path, outputs):
    data_dir = copy_of_mnist(tmp_path / "data")
    path = data_dir / f"{TRAIN_LABELS}.gz"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(data)
    proc = run_cli("train", "--data-dir", data_dir, *QUICK, *outputs.train)
    refused(proc, f"{path}: corrupt gzip data", status=1)
    outputs.assert_untouched()


def test_checksum_mismatch_of_otherwise_valid_mnist(tmp_path, real, outputs):
    """One pixel changed, still a valid gzip-compressed IDX file: only the checksum can tell."""
    from fastmlp.data.load import DATASETS
    data_dir = copy_of_mnist(tmp_path / "data")
    path = data_dir / f"{TEST_IMAGES}.gz"
    pixel = 16 + 14 * 28 + 14  # the middle of the first image
    changed = set_byte(real[TEST_IMAGES], pixel, real[TEST_IMAGES][pixel] ^ 1)
    path.write_bytes(gzip.compress(changed, compresslevel=1))
    proc = run_cli("train", "--data-dir", data_dir, *QUICK, *outputs.train)
    refused(proc, f"{path}: sha256 of the uncompressed content is",
            hashlib.sha256(changed).hexdigest(), DATASETS["mnist"].sha256[TEST_IMAGES],
            status=1)
    outputs.assert_untouched()


# --- models --------------------------------------------------------------------------------------

def save_model(path, sizes=(784, 8, 10), dtype="float32"):
    model = MLP(sizes, dtype).initialize("he", np.random.default_rng(0))
    checkpoint.save(path, model, TrainConfig(layers=tuple(sizes[1:-1]), epochs=1, dtype=dtype),
                    [], {"name": "mnist", "sha256": {}})
    return path


def flip_in_params(data):
    """Flip 64 bytes in the middle of the stored weights (np.savez does not compress)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo("params.npy")
    middle = info.header_offset + info.file_size // 2
    data = bytearray(data)
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    return bytes(data)


@pytest.fixture(scope="module")
def models(tmp_path_factory, real):
    """A valid model and every broken variant, plus a small IDX file of MNIST test images and
    one of 20x20 images."""
    d = tmp_path_factory.mktemp("models")
    good = save_model(d / "good.npz")
    data = good.read_bytes()
    (d / "truncated.npz").write_bytes(data[:len(data) // 2])
    (d / "corrupted.npz").write_bytes(flip_in_params(data))
    np.savez(d / "not-a-model.npz", weights=np.zeros(3))
    with np.load(good) as npz:  # weights stored as float64, the metadata still says float32
        np.savez(d / "wrong-dtype.npz", params=npz["params"].astype(np.float64), meta=npz["meta"])
    save_model(d / "wrong-architecture.npz", sizes=(100, 8, 10))
    images = unidx(real[TEST_IMAGES])[1]
    (d / "three.idx").write_bytes(idx_bytes(images[:3]))
    (d / "twenty.idx").write_bytes(idx_bytes(np.ascontiguousarray(images[:3, 4:24, 4:24])))
    return d


def test_the_valid_model_predicts(models):
    """The control for the broken models: the unbroken one works."""
    proc = run_cli("predict", models / "good.npz", models / "three.idx")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert len(proc.stdout.splitlines()) == 3


MODEL_CASES = {  # what the one line must say beside the file's name
    "missing": "no such file",
    "truncated": "not a readable .npz model",
    "corrupted": "not a readable .npz model",
    "not-a-model": "not a fastmlp model",
    "wrong-dtype": "weights do not match the architecture 784-8-10 float32",
}


@pytest.mark.parametrize("command", ["evaluate", "predict", "resume"])
@pytest.mark.parametrize("case", MODEL_CASES)
def test_broken_model_file(models, outputs, command, case):
    model = models / f"{case}.npz"
    before = model.read_bytes() if model.exists() else None
    if command == "evaluate":
        proc = run_cli("evaluate", model, "--data-dir", MNIST_DIR, "--plot", outputs.plot)
    elif command == "predict":
        proc = run_cli("predict", model, models / "three.idx")
    else:
        proc = run_cli("train", "--resume", model, "--quiet", *outputs.train)
    refused(proc, f"{model}: ", MODEL_CASES[case])
    assert proc.stdout == ""
    outputs.assert_untouched()
    assert (model.read_bytes() if model.exists() else None) == before


def test_evaluate_with_a_model_whose_first_layer_does_not_match_the_images(models, outputs):
    model = models / "wrong-architecture.npz"
    proc = run_cli("evaluate", model, "--data-dir", MNIST_DIR, "--plot", outputs.plot)
    refused(proc, f"{model}: the model takes 100 features, mnist images have 784")
    assert proc.stdout == ""
    outputs.assert_untouched()


def test_predict_with_a_model_whose_first_layer_does_not_match_the_images(models):
    images = models / "three.idx"
    proc = run_cli("predict", models / "wrong-architecture.npz", images)
    refused(proc, f"{images}: 784 pixels per image, the model takes 100")
    assert proc.stdout == ""


def test_predict_with_images_of_the_wrong_size(models):
    images = models / "twenty.idx"
    proc = run_cli("predict", models / "good.npz", images)
    refused(proc, f"{images}: 400 pixels per image, the model takes 784")
    assert proc.stdout == ""


def test_evaluate_on_a_dataset_of_the_wrong_image_size(tmp_path, tiny, models, outputs):
    """A valid 20x20 dataset against a model of 28x28 MNIST. (It takes the name mnist in the
    registry: evaluate refuses datasets other than mnist and fashion-mnist.)"""
    files = {f: idx_bytes(np.ascontiguousarray(unidx(data)[1][:, 4:24, 4:24]))
             if unidx(data)[1].ndim == 3 else data for f, data in tiny.items()}
    data_dir = tmp_path / "data"
    sha256 = write_dataset(data_dir, files, gz=False)
    model = models / "good.npz"
    proc = run_cli("evaluate", model, "--data-dir", data_dir, "--plot", outputs.plot,
                   register=["mnist", sha256])
    refused(proc, f"{model}: the model takes 784 features, mnist images have 400")
    assert proc.stdout == ""
    outputs.assert_untouched()


def test_resume_from_a_final_model(models, outputs):
    model = models / "good.npz"
    before = model.read_bytes()
    proc = run_cli("train", "--resume", model, "--quiet", *outputs.train)
    refused(proc, f"{model}: a final model, not a resumable checkpoint")
    outputs.assert_untouched()
    assert model.read_bytes() == before


# --- flags (the values tests/test_cli.py does not already try) ---------------------------------

@pytest.mark.parametrize("flag, value", [
    ("--layers", "-3"),
    ("--layers", "1.5"),
    ("--lr", "inf"),
    ("--batch-size", "-1"),
    ("--batch-size", "1.5"),
    ("--val-fraction", "0"),
    ("--val-fraction", "1"),
    ("--val-fraction", "-0.2"),
    ("--optimizer", "rmsprop"),
    ("--threads", "-1"),
])
def test_bad_flag_value(outputs, flag, value):
    proc = run_cli("train", *QUICK, *outputs.train, flag, value)
    refused(proc, flag, value)
    outputs.assert_untouched()


@pytest.mark.parametrize("command", [["evaluate", "{model}", "--dataset"], ["download"]])
def test_unknown_dataset_in_the_other_commands(models, command):
    argv = [word.replace("{model}", str(models / "good.npz")) for word in command]
    refused(run_cli(*argv, "cifar"), "invalid choice: 'cifar'")


def test_batch_larger_than_the_training_set_is_full_batch(tmp_path):
    out = tmp_path / "run.json"
    proc = run_cli("train", "--epochs", "1", "--layers", "8", "--batch-size", "1000000",
                   "--quiet", "--out", out)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert json.loads(out.read_text())["config"]["batch_size"] == 1000000


def test_divergence_mid_run_leaves_existing_outputs_alone(outputs):
    outputs.out.write_text("an older run")
    outputs.before = snapshot(outputs.dir)
    proc = run_cli("train", *QUICK, "--lr", "1e30", *outputs.train)
    refused(proc, "training diverged at epoch 1", status=1)
    outputs.assert_untouched()


# --- outputs -------------------------------------------------------------------------------------

@contextmanager
def mounted_tmpfs(directory, options):
    """A tmpfs mounted on `directory` for the block; skips the test where mounting is not
    allowed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    directory.mkdir(exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


# Each command's output option, given FILE: the argv.
OUTPUT_OPTIONS = {
    "train --save": lambda models, file: ["train", *QUICK, "--save", file],
    "evaluate --plot": lambda models, file: ["evaluate", models / "good.npz", "--plot", file],
    "plot -o": lambda models, file: ["plot", models / "three.idx", "-o", file],
    "bench --json": lambda models, file: ["bench", "--repeats", "1", "--json", file],
}


@pytest.mark.parametrize("option", OUTPUT_OPTIONS)
@pytest.mark.parametrize("where", ["missing-directory", "a-directory", "unwritable-directory",
                                   "read-only-filesystem"])
def test_output_that_cannot_be_written_is_refused_before_the_run(tmp_path, models, option,
                                                                  where):
    directory = tmp_path / "outputs"
    directory.mkdir()
    with ExitStack() as stack:
        if where == "missing-directory":
            target = directory / "missing" / "f.out"
            says = f"directory {target.parent} does not exist"
        elif where == "a-directory":
            target, says = directory, f"{directory} is a directory"
        else:
            if where == "unwritable-directory":
                directory.chmod(0o500)
                stack.callback(directory.chmod, 0o700)
                if os.access(directory, os.W_OK):
                    pytest.skip("running as root, a 0o500 directory is writable anyway (the "
                                "read-only-filesystem case covers root)")
            else:
                stack.enter_context(mounted_tmpfs(directory, "ro,size=64k"))
            target, says = directory / "f.out", f"directory {directory} is not writable"
        before = snapshot(directory)
        proc = run_cli(*OUTPUT_OPTIONS[option](models, target))
        refused(proc, option.split()[1], says)
        assert snapshot(directory) == before


def fill(directory):
    """Fill the file system of `directory` to the last byte."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        block = b"\0" * 4096
        while True:
            os.write(fd, block)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.mark.parametrize("option", ["--out", "--save"])
def test_full_disk_leaves_the_existing_output_intact(tmp_path, option):
    with mounted_tmpfs(tmp_path / "small", "size=64k") as small:
        target = small / ("run.json" if option == "--out" else "model.npz")
        target.write_bytes(b"an older output")
        fill(small)
        before = snapshot(small)
        proc = run_cli("train", *QUICK, option, target)
        refused(proc, f"cannot write {target}: No space left on device", status=1)
        assert snapshot(small) == before  # the old file as it was, no temporary file left


def test_output_to_a_full_device(tmp_path):
    """/dev/full itself is never used here: run as root, the test would destroy it."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    device = tmp_path / "full"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # the same device as /dev/full
    proc = run_cli("train", *QUICK, "--out", device)
    try:
        refused(proc, str(device))
    finally:
        assert stat.S_ISCHR(device.lstat().st_mode), "the device was replaced by a file"


def test_existing_outputs_are_replaced_on_success(tmp_path):
    out, save = tmp_path / "run.json", tmp_path / "model.npz"
    out.write_text("an older run")
    save.write_bytes(b"an older model")
    proc = run_cli("train", *QUICK, "--out", out, "--save", save)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert len(json.loads(out.read_text())["history"]) == 1
    assert checkpoint.load(save).model.sizes == (784, 8, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "run.json"]
