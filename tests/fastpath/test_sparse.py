"""The sparse first layer (fastmlp/sparse.py, sparse_grad.py): its forward and weight-gradient
kernels against their numpy twins at any thread count, and whole full-batch training runs
through them against the plain path."""
import numpy as np
import pytest

from fastmlp.data.load import Dataset, Split
from fastmlp.engine.model import MLP
from fastmlp.engine.workspace import Workspace
from fastmlp.fastpath import choose as paths
from fastmlp.fastpath import csr, sparse, sparse_grad
from fastmlp.runtime.threads import thread_limits
from fastmlp.settings import TrainConfig
from fastmlp.training.trainer import make_trainer
from tests import naive
from tests.helpers import sparse_dataset, sparse_inputs

# Kernels are called directly here, without the SparseRows that makes them ready in a run.
pytestmark = pytest.mark.usefixtures("kernels_ready")

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, cols", [(1, 5), (9, 70), (300, 784)])
def test_to_csr_matches_its_numpy_twin(rows, cols, dtype):
    x = sparse_inputs(np.random.default_rng(rows), rows, cols, 0.2, dtype)
    for got, want in zip(csr.to_csr(x), naive.to_csr(x)):
        np.testing.assert_array_equal(got, want)
    indptr, cols_, vals = csr.to_csr(x)
    assert (indptr.dtype, cols_.dtype, vals.dtype) == (np.int64, np.uint16, x.dtype)
    # A strided view (not C-contiguous) gives what its copy gives.
    for got, want in zip(csr.to_csr(x[:, ::2]), naive.to_csr(x[:, ::2])):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rows, cols", [(1, 5), (9, 70), (300, 784)])
def test_strip_splits_match_their_numpy_twin(rows, cols):
    x = sparse_inputs(np.random.default_rng(rows), rows, cols, 0.2, np.float32)
    indptr, cs, _ = csr.to_csr(x)
    np.testing.assert_array_equal(sparse_grad.strip_splits(indptr, cs, cols),
                                  naive.strip_splits(x, sparse_grad.STRIPS))


def forward_chunk(x, start, stop, seed=0):
    """(x[start:stop] @ W through SparseRows, W) for random weights W of a WIDTH-wide layer."""
    model = MLP([x.shape[1], sparse.WIDTH, 3], x.dtype)
    model.weights[0][...] = np.random.default_rng(seed).normal(size=model.weights[0].shape)
    z = np.zeros((stop - start, sparse.WIDTH), x.dtype)
    sparse.SparseRows(x).matmul(model, np.arange(len(x))[start:stop], z)
    return z, model.weights[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("start, stop", [(0, 1), (0, 9), (3, 9)])  # row 0 empty, row 1 one pixel
def test_csr_matmul_matches_its_numpy_twin(start, stop, dtype):
    x = sparse_inputs(np.random.default_rng(stop), 12, 40, 0.2, dtype)
    z, w = forward_chunk(x, start, stop)
    np.testing.assert_allclose(z, naive.csr_matmul(x[start:stop], w), **TOL[dtype])


def test_csr_matmul_is_the_same_at_any_thread_count():
    x = sparse_inputs(np.random.default_rng(1), 3000, 30, 0.2, np.float32)
    results = []
    for threads in (1, 2):
        with thread_limits(threads):
            results.append(forward_chunk(x, 0, len(x))[0])
    np.testing.assert_array_equal(*results)


def weight_grad(x, dz):
    """x^T @ dz through SparseFirst (sparse_grad.py's kernels)."""
    model = MLP([x.shape[1], sparse.WIDTH, 3], x.dtype)
    model.dweights[0][...] = np.nan  # every entry must be written
    sparse.SparseFirst(model, x).weight_grad(model, None, dz)
    return model.dweights[0]


def random_deltas(rng, rows, dtype):
    """dZ1 as the ReLU leaves it: about half of its entries exactly zero."""
    dz = rng.normal(size=(rows, sparse.WIDTH))
    return np.where(rng.random(dz.shape) < 0.5, 0, dz).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 3, 300])  # fewer rows than blocks; several sub-blocks
def test_csr_weight_grad_matches_its_numpy_twin(rows, dtype):
    rng = np.random.default_rng(rows)
    x = sparse_inputs(rng, rows, 40, 0.2, dtype)
    dz = random_deltas(rng, rows, dtype)
    np.testing.assert_allclose(weight_grad(x, dz), naive.csr_weight_grad(x, dz), **TOL[dtype])


def test_csr_weight_grad_is_the_same_at_any_thread_count():
    rng = np.random.default_rng(2)
    x = sparse_inputs(rng, 3000, 30, 0.2, np.float32)
    dz = random_deltas(rng, 3000, np.float32)
    results = []
    for threads in (1, 2):
        with thread_limits(threads):
            results.append(weight_grad(x, dz).copy())
    np.testing.assert_array_equal(*results)


def test_applies_to_128_wide_first_layers_on_sparse_inputs_only():
    x = sparse_inputs(np.random.default_rng(0), 50, 20, 0.2, np.float32)
    assert sparse.applies([20, 128, 16, 10], x)
    assert not sparse.applies([20, 64, 10], x)
    assert not sparse.applies([20, 128, 10], np.ones_like(x))


def dark_sparse_dataset(dtype):
    """sparse_dataset with its first 20 of 64 pixels dark in every training image (not in
    validation), so that the pruned columns the sparse forward sits on are in use."""
    data = sparse_dataset(dtype)
    data.train.x[:, :20] = 0
    return data


SETTINGS = [dict(), dict(weight_decay=0.01), dict(optimizer="momentum", weight_decay=1e-3),
            dict(optimizer="adam", lr=1e-2, weight_decay=1e-3), dict(dropout=0.2)]


def follows_the_plain_path(data, config, steps=20):
    """`steps` full-batch steps and the validation pass of the sparse forward and the plain
    path agree to 1e-9 relative, every parameter."""
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    assert fast.fastpath.name == "sparse" and plain.fastpath.name == "plain"
    for _ in range(steps):
        np.testing.assert_allclose(fast.epoch(), plain.epoch(), rtol=1e-9)
    scale = np.abs(plain.model.params).max()
    np.testing.assert_allclose(fast.model.params, plain.model.params, rtol=1e-9,
                               atol=1e-9 * scale)
    ws = Workspace(plain.model, len(data.val.y), gather=False)
    np.testing.assert_allclose(fast.evaluator(data.val.x, data.val.y, ws)(),
                               plain.evaluator(data.val.x, data.val.y, ws)(), rtol=1e-9)


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_sparse_training_follows_the_plain_path_in_float64(settings):
    config = TrainConfig(**{"layers": (sparse.WIDTH, 8), "batch_size": None,
                            "dtype": "float64", "seed": 2, "lr": 0.2, **settings})
    follows_the_plain_path(dark_sparse_dataset(np.float64), config)


def test_sparse_training_follows_the_plain_path_on_an_mnist_slice(mnist):
    """MNIST's own sparsity (dark pixels, ~19% lit), 1,000 images, float64."""
    def part(split, n):
        return Split(x=split.x[:n].astype(np.float64), y=split.y[:n].copy())
    data = Dataset(name="slice", directory=None, train=part(mnist.train, 1000),
                   val=part(mnist.val, 300), test=None, sha256={})
    follows_the_plain_path(data, TrainConfig(layers=(sparse.WIDTH, 16), batch_size=None,
                                             dtype="float64", seed=1, lr=0.1))


def test_minibatches_do_not_take_the_sparse_path(monkeypatch):
    config = TrainConfig(layers=(sparse.WIDTH, 8), batch_size=64, dtype="float32")
    data = dark_sparse_dataset(np.float32)
    assert make_trainer(config, data).fastpath.name == "plain"  # under choose.PRUNE_MIN_ROWS
    monkeypatch.setattr(paths, "PRUNE_MIN_ROWS", 1)
    assert make_trainer(config, data).fastpath.name == "pruned"
