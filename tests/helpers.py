"""What several test files share: the command line in a subprocess, IDX files and small datasets
on disk, and a small learnable problem in memory."""
import gzip
import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from fastmlp.data.load import SHIPPED_DATA, Dataset, Split

MNIST_DIR = SHIPPED_DATA / "mnist"

# --- the command line ------------------------------------------------------------------------

# Runs the unchanged CLI after adding one dataset to the registry: argv[1] is the JSON
# [name, {file: sha256}], the rest is the command line.
REGISTER_AND_RUN = """
import json, sys
from fastmlp.data import registry
name, sha256 = json.loads(sys.argv.pop(1))
registry.DATASETS[name] = registry.DatasetSpec(sha256=sha256)
from fastmlp.cli import main
sys.exit(main())
"""


def cli_argv(*args, register=None):
    """The argv of `python -m fastmlp ARGS`; `register` = (name, {file: sha256}) starts the CLI
    behind a launcher that adds that dataset to the registry first."""
    if register is None:
        command = [sys.executable, "-m", "fastmlp"]
    else:
        command = [sys.executable, "-c", REGISTER_AND_RUN, json.dumps(register)]
    return command + [str(a) for a in args]


def run_python(code):
    """`python -c code` in a fresh process at the top of the repository, run to its end; its
    exit status must be 0. Returns (stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def run_cli(*args, register=None, cwd=None, env=None, timeout=300):
    """The real command line in a subprocess, run to its end; text output captured."""
    return subprocess.run(cli_argv(*args, register=register), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def error_line(proc, *words, status=2):
    """Assert `proc` exited with `status` (2: a usage error; 1: a failure while running) and one
    line on stderr, a fastmlp error that contains every word; return that line."""
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("fastmlp") and "error" in line
    for word in words:
        assert word in line
    return line


def raises_one_line(call, start, *words):
    """Assert call() raises a FastMLPError of one line that starts with `start` and contains
    every word."""
    from fastmlp.errors import FastMLPError

    try:
        call()
    except FastMLPError as error:
        message = str(error)
    else:
        raise AssertionError(f"no FastMLPError from {call}")
    assert "\n" not in message and message.startswith(start), message
    for word in words:
        assert word in message, message


# --- IDX files and datasets on disk -----------------------------------------------------------

def idx_bytes(array, etype=0x08):
    """An IDX file holding `array`; `etype` is the element type byte of the header."""
    header = bytes([0, 0, etype, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def unidx(data):
    """(header length, array) of a valid IDX file."""
    rank = data[3]
    shape = struct.unpack(f">{rank}I", data[4:4 + 4 * rank])
    return 4 + 4 * rank, np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def write_dataset(directory, files, gz=True):
    """Write dataset files into `directory` (made if missing): {file name: content}, each
    content the bytes of the file or an array to store as IDX; with `gz`, gzip-compressed as
    NAME.gz. Returns the SHA-256s of the uncompressed contents, a registry entry that accepts
    the files as they are."""
    directory.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, content in files.items():
        if not isinstance(content, bytes):
            content = idx_bytes(content)
        path = directory / (name + ".gz" if gz else name)
        path.write_bytes(gzip.compress(content) if gz else content)
        digests[name] = hashlib.sha256(content).hexdigest()
    return digests


def mnist_slice(n_train, n_test):
    """The first n_train training and n_test test images of the shipped MNIST: {file name: IDX
    bytes}, a small real dataset for write_dataset."""
    from fastmlp.data.registry import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS

    counts = {TRAIN_IMAGES: n_train, TRAIN_LABELS: n_train, TEST_IMAGES: n_test,
              TEST_LABELS: n_test}
    return {f: idx_bytes(unidx(gzip.decompress((MNIST_DIR / f"{f}.gz").read_bytes()))[1][:n])
            for f, n in counts.items()}


# --- datasets in memory -----------------------------------------------------------------------

def make_dataset(n_train=600, n_val=200, n_test=200, n_features=20, dtype=np.float64,
                 seed=0):
    """A small learnable problem: labels from a random linear map of uniform [0, 1) inputs."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_features, 10))

    def split(n):
        x = rng.random((n, n_features))
        return Split(x=x.astype(dtype), y=(x @ w).argmax(axis=1).astype(np.int32))

    return Dataset(name="synthetic", directory=None, train=split(n_train), val=split(n_val),
                   test=split(n_test), sha256={})


def data32(**kwargs):
    """make_dataset in float32."""
    return make_dataset(dtype=np.float32, **kwargs)


def sparse_inputs(rng, rows, cols, density, dtype):
    """Inputs like MNIST's: mostly zeros, the rest in (0, 1]; row 0 is empty and row 1 has one
    nonzero, the edge cases of the kernels' pairwise loop."""
    x = np.where(rng.random((rows, cols)) < density, rng.integers(1, 256, (rows, cols)) / 255,
                 0).astype(dtype)
    x[0] = 0
    if rows > 1:
        x[1] = 0
        x[1, cols - 1] = 1
    return x


def sparse_dataset(dtype, n_features=64):
    """make_dataset's problem with 80% of the inputs zeroed, as sparse as MNIST: the fused pass
    serves it."""
    data = make_dataset(n_train=700, n_val=150, n_test=150, n_features=n_features, dtype=dtype)
    rng = np.random.default_rng(3)
    for split in (data.train, data.val, data.test):
        split.x[rng.random(split.x.shape) < 0.8] = 0
    return data
