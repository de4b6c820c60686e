import numpy as np
import pytest

from fastmlp.data import load_dataset

from .helpers import make_dataset  # noqa: F401  (still imported from here by other test files)


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist", dtype=np.float32, seed=0)
