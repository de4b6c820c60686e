import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from fastmlp.data import registry
from fastmlp.data.load import load_dataset
from fastmlp.data.registry import DatasetSpec

from .helpers import (
    make_dataset,  # noqa: F401  (still imported from here by other test files)
    mnist_slice,
    write_dataset,
)

ROOT = Path(__file__).resolve().parents[1]

# In CI the property tests draw the same examples every run, so that a landing is not decided
# by a draw; locally they draw new ones, and what they find is kept as an explicit example.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The suite's GEMM timings are taken under its own load and its data caches are its own: they go
# to a cache directory of the session (inherited by the commands it runs), never the user's.
_CACHE = tempfile.mkdtemp(prefix="fastmlp-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist", dtype=np.float32, seed=0)


def _every_kernel():
    """Every declared kernel (dispatcher, signature template, slp)."""
    from fastmlp.engine import augment, elastic, kernels  # noqa: F401  (importing declares them)
    from fastmlp.fastpath import csr, fused, prune, sparse, sparse_grad  # noqa: F401
    from fastmlp.runtime import jit
    return jit.declared()


def compile_share(part, parts):
    """Compile (into numba's on-disk cache) every `parts`-th kernel from `part`, for both float
    types. Split by kernel, not by float type: two processes saving entries of one kernel race
    on its cache index (numba reads, extends and rewrites it), and a lost race can point one
    float type's entry at the other's code."""
    from fastmlp.runtime import jit
    for dispatcher, template, slp in _every_kernel()[part::parts]:
        for code in ("f4", "f8"):
            jit.compile_kernel(dispatcher, template.replace("F", code), slp)


@pytest.fixture(scope="session", autouse=True)
def numba_cache_warm():
    """Fill numba's cache before any test runs, in one process per core: from a cold cache (a
    fresh CI machine) compiling every kernel for both float types took 129 s on one core, inside
    the first kernel test (2-core EPYC, `pytest --durations`); every test and CLI subprocess
    after loads from the cache. With a warm cache the two processes take a few seconds."""
    parts = max(1, min(2, os.cpu_count() or 1))
    procs = [subprocess.Popen([sys.executable, "-c", "from tests.conftest import "
                               f"compile_share; compile_share({part}, {parts})"],
                              cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for part in range(parts)]
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err


@pytest.fixture(scope="session")
def kernels_ready():
    """Every kernel ready for both float types: the kernel-level tests call kernels directly,
    without the Workspace or FusedPass that makes them ready in a run (the in-process and CLI
    runs of the other tests rely on those, as a user's run does)."""
    from fastmlp.runtime import jit
    _every_kernel()  # imports every module that declares kernels
    for dtype in (np.float32, np.float64):
        for group in jit.groups():
            jit.ready(dtype, group)


@pytest.fixture
def mnist_slice_dir(tmp_path, monkeypatch):
    """The directory of the dataset "mnist-slice", registered for this test (in this process
    only): MNIST's first 3,000 training and 500 test images, so 2,400 to train at the default
    split, epochs of milliseconds."""
    directory = tmp_path / "data"
    sha256 = write_dataset(directory, mnist_slice(3000, 500), gz=False)
    monkeypatch.setitem(registry.DATASETS, "mnist-slice", DatasetSpec(sha256))
    return directory
