import numpy as np
import pytest

from fastmlp.data import Dataset, Split, load_dataset


def make_dataset(n_train=600, n_val=200, n_test=200, n_features=20, dtype=np.float64, seed=0):
    """A small learnable problem: labels from a random linear map of uniform [0, 1) inputs."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_features, 10))

    def split(n):
        x = rng.random((n, n_features))
        return Split(x=x.astype(dtype), y=(x @ w).argmax(axis=1).astype(np.int32))

    return Dataset(name="synthetic", directory=None, train=split(n_train), val=split(n_val),
                   test=split(n_test), sha256={})


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist", dtype=np.float32, seed=0)
