import numpy as np
import pytest

from fastmlp import data
from fastmlp.data import load_dataset
from fastmlp.datasets import DatasetSpec

from .helpers import (
    make_dataset,  # noqa: F401  (still imported from here by other test files)
    mnist_slice,
    write_dataset,
)


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist", dtype=np.float32, seed=0)


@pytest.fixture(scope="session")
def kernels_ready():
    """Every kernel compiled for both float types: the kernel-level tests call kernels directly,
    without the Workspace or FusedPass that makes them ready in a run (the in-process and CLI
    runs of the other tests rely on those, as a user's run does)."""
    from fastmlp import fused, jit, sparse
    for dtype in (np.float32, np.float64):
        for group in ("core", fused.GROUP, sparse.GROUP):
            jit.ready(dtype, group)


@pytest.fixture
def mnist_slice_dir(tmp_path, monkeypatch):
    """The directory of the dataset "mnist-slice", registered for this test (in this process
    only): MNIST's first 3,000 training and 500 test images, so 2,400 to train at the default
    split, epochs of milliseconds."""
    directory = tmp_path / "data"
    sha256 = write_dataset(directory, mnist_slice(3000, 500), gz=False)
    monkeypatch.setitem(data.DATASETS, "mnist-slice", DatasetSpec(sha256))
    return directory
