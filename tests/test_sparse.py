"""The sparse first layer (fastmlp/sparse.py) against its numpy twins, at any thread count, and
whole training runs through it against the plain BLAS path."""
import numpy as np
import pytest

from fastmlp import sparse
from fastmlp.model import MLP
from fastmlp.settings import TrainConfig
from fastmlp.threads import thread_limits
from fastmlp.trainer import make_trainer

from . import naive
from .helpers import sparse_dataset, sparse_inputs

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def first_layer(x, w, dz):
    """SparseFirstLayer's (x @ w, x^T @ dz)."""
    model = MLP([x.shape[1], w.shape[1], 10], x.dtype)
    model.weights[0][...] = w
    layer = sparse.SparseFirstLayer(model, x)
    z = np.empty((len(x), w.shape[1]), x.dtype)
    layer.matmul(model, None, z)
    layer.weight_grad(model, None, dz)
    return z, model.dweights[0].copy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, width", [(1, 16), (9, 32), (sparse.BLOCK_ROWS + 5, 48)])
def test_sparse_first_layer_matches_its_numpy_twins(rows, width, dtype):
    rng = np.random.default_rng(rows)
    x = sparse_inputs(rng, rows, 70, 0.2, dtype)
    w, dz = rng.normal(size=(70, width)).astype(dtype), rng.normal(size=(rows, width)).astype(dtype)
    z, dw = first_layer(x, w, dz)
    f8 = np.float64
    for got, want in ((z, naive.csr_matmul(x.astype(f8), w.astype(f8))),
                      (dw, naive.csr_weight_grad(x.astype(f8), dz.astype(f8)))):
        # Sums of up to thousands of terms: float32 is held to its rounding of the largest.
        np.testing.assert_allclose(got, want, rtol=TOL[dtype],
                                   atol=TOL[dtype] * np.abs(want).max())


def test_sparse_first_layer_is_the_same_at_any_thread_count():
    rng = np.random.default_rng(0)
    x = sparse_inputs(rng, 2 * sparse.BLOCK_ROWS + 7, 50, 0.2, np.float32)
    w, dz = rng.normal(size=(50, 32)).astype(np.float32), rng.normal(size=(len(x), 32))
    results = []
    for threads in (1, 2):
        with thread_limits(threads):
            results.append(first_layer(x, w, dz.astype(np.float32)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("settings", [dict(), dict(optimizer="adam", lr=1e-2, weight_decay=1e-3),
                                      dict(dropout=0.2, optimizer="momentum")],
                         ids=lambda s: "-".join(map(str, s.values())) or "sgd")
def test_sparse_training_follows_the_plain_path_in_float64(settings):
    """20 full-batch steps: every parameter within 1e-9 relative of the BLAS path's."""
    data = sparse_dataset(np.float64)
    config = TrainConfig(**{"layers": (32, 16), "batch_size": None, "dtype": "float64",
                            "seed": 4, "lr": 0.3, **settings})
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    assert fast.path == "sparse first layer" and plain.path == "plain"
    for _ in range(20):
        np.testing.assert_allclose(fast.epoch(), plain.epoch(), rtol=1e-9)
    scale = np.abs(plain.model.params).max()
    np.testing.assert_allclose(fast.model.params, plain.model.params, rtol=1e-9,
                               atol=1e-9 * scale)
