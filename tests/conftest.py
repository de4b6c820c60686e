import numpy as np
import pytest

from fastmlp.data import load_dataset

from .helpers import make_dataset  # noqa: F401  (still imported from here by other test files)


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist", dtype=np.float32, seed=0)


@pytest.fixture(scope="session")
def kernels_ready():
    """Every kernel compiled for both float types: the kernel-level tests call kernels directly,
    without the Workspace or FusedPass that makes them ready in a run (the in-process and CLI
    runs of the other tests rely on those, as a user's run does)."""
    from fastmlp import fused, kernels
    for dtype in (np.float32, np.float64):
        for group in ("core", fused.GROUP):
            kernels.ready(dtype, group)
