"""The sparse first layer (fastmlp/sparse.py, sparse_grad.py): its forward and weight-gradient
kernels against their numpy twins at any thread count, and whole full-batch training runs
through them against the plain path."""
import numpy as np
import pytest

from fastmlp import csr, paths, sparse, sparse_grad
from fastmlp.data import Dataset, Split
from fastmlp.model import MLP
from fastmlp.settings import TrainConfig
from fastmlp.threads import thread_limits
from fastmlp.trainer import make_trainer
from fastmlp.workspace import Workspace

from . import naive
from .helpers import sparse_dataset, sparse_inputs

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
    # Columns left out (sparse.py's dense ones): the last one too, and none of them nonzero.
    skip = np.array([0, cols - 1]) if cols > 1 else np.array([0])
    for got, want in zip(csr.to_csr(x, skip=skip), naive.to_csr(x, skip)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rows, cols", [(1, 5), (9, 70), (300, 784)])
def test_strip_splits_match_their_numpy_twin(rows, cols):
    x = sparse_inputs(np.random.default_rng(rows), rows, cols, 0.2, np.float32)
    indptr, cs, _ = csr.to_csr(x)
    np.testing.assert_array_equal(sparse_grad.strip_splits(indptr, cs, cols),
                                  naive.strip_splits(x, sparse_grad.STRIPS))


def forward_chunk(x, start, stop, seed=0, dense=()):
    """(x[start:stop] @ W through SparseRows, its columns `dense` dense, W) for random weights
    W of a WIDTH-wide layer."""
    model = MLP([x.shape[1], sparse.WIDTH, 3], x.dtype)
    model.weights[0][...] = np.random.default_rng(seed).normal(size=model.weights[0].shape)
    z = np.full((stop - start, sparse.WIDTH), np.nan, x.dtype)  # every entry must be written
    sparse.SparseRows(x, dense).matmul(model, np.arange(len(x))[start:stop], z)
    return z, model.weights[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("start, stop", [(0, 1), (0, 9), (3, 9)])  # row 0 empty, row 1 one pixel
@pytest.mark.parametrize("dense", [(), (0, 7, 39)])  # none; some, the last column among them
def test_sparse_rows_forward_matches_numpy(start, stop, dtype, dense):
    x = sparse_inputs(np.random.default_rng(stop), 12, 40, 0.2, dtype)
    z, w = forward_chunk(x, start, stop, dense=dense)
    np.testing.assert_allclose(z, naive.csr_matmul(x[start:stop], w), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("add", [False, True])
def test_csr_matmul_matches_its_numpy_twin(dtype, add):
    rng = np.random.default_rng(4)
    x = sparse_inputs(rng, 70, 40, 0.2, dtype)  # 70 rows: more than one sub-block
    w = rng.normal(size=(40, sparse.WIDTH)).astype(dtype)
    z0 = rng.normal(size=(70, sparse.WIDTH)).astype(dtype)
    wc = csr.aligned_zeros(w.size, dtype)
    sparse.chunked_weights(wc, w)
    z = z0.copy()
    sparse.csr_matmul(z.reshape(-1), *csr.to_csr(x), wc, add)
    np.testing.assert_allclose(z, naive.csr_matmul(x, w, z0 if add else None), **TOL[dtype])


def test_dense_columns_are_the_densest_in_multiples_of_16():
    rows = 100
    lit = np.zeros(70, np.int64)
    lit[:40] = np.arange(40)  # below DENSE_MIN_SHARE * rows = 35: 0-34; 35-39 at or above
    lit[40:] = 90  # 30 more at or above: 35 columns qualify, 32 are taken
    lit[45] = 95
    got = sparse.dense_columns(lit, rows)
    assert got.size == 32 and np.all(np.diff(got) > 0)
    # The densest first: 45 (95 nonzeros), the other 29 of 40-69 (90), then 39 and 38.
    np.testing.assert_array_equal(got, [38, 39, *range(40, 70)])
    assert sparse.dense_columns(np.full(70, 34), rows).size == 0


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
    sparse.SparseFirst(model, np.arange(x.shape[1]), x).weight_grad(model, None, dz)
    return model.dweights[0]


def random_deltas(rng, rows, dtype):
    """dZ1 as the ReLU leaves it: about half of its entries exactly zero."""
    dz = rng.normal(size=(rows, sparse.WIDTH))
    return np.where(rng.random(dz.shape) < 0.5, 0, dz).astype(dtype)


def with_dense_columns(rng, x, columns):
    """x with `columns` lit in ~90% of the rows: SparseFirst multiplies them by BLAS."""
    x = x.copy()
    x[:, columns] = np.where(rng.random((len(x), len(columns))) < 0.9, 0.5, 0).astype(x.dtype)
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 3, 300])  # fewer rows than blocks; several sub-blocks
@pytest.mark.parametrize("dense", [0, 16])
def test_csr_weight_grad_matches_its_numpy_twin(rows, dtype, dense):
    rng = np.random.default_rng(rows)
    x = sparse_inputs(rng, rows, 40, 0.2, dtype)
    if dense and rows > 1:
        x = with_dense_columns(rng, x, np.arange(3, 40, 2)[:dense])
        assert sparse.SparseFirst(MLP([40, sparse.WIDTH, 3], dtype), None, x).n_dense == dense
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


def dark_sparse_dataset(dtype, dense=16):
    """sparse_dataset with its first 20 of 64 pixels dark in every training image (not in
    validation), so that the pruned columns the sparse forward sits on are in use, and `dense`
    of the others lit in ~90% of the images (training and validation), which BLAS multiplies."""
    data = sparse_dataset(dtype)
    data.train.x[:, :20] = 0
    rng = np.random.default_rng(5)
    for split in (data.train, data.val):
        split.x[...] = with_dense_columns(rng, split.x, np.arange(30, 30 + dense))
    return data


SETTINGS = [dict(), dict(weight_decay=0.01), dict(optimizer="momentum", weight_decay=1e-3),
            dict(optimizer="adam", lr=1e-2, weight_decay=1e-3), dict(dropout=0.2)]


def follows_the_plain_path(data, config, steps=20, dense=None):
    """`steps` full-batch steps and the validation pass of the sparse forward (with `dense`
    columns by BLAS) and the plain path agree to 1e-9 relative, every parameter."""
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    assert fast.path.startswith("sparse first layer") and plain.path == "plain"
    assert dense is None or fast.first.n_dense == dense
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
    follows_the_plain_path(dark_sparse_dataset(np.float64), config, dense=16)


def test_sparse_training_without_dense_columns_follows_the_plain_path():
    config = TrainConfig(layers=(sparse.WIDTH, 8), batch_size=None, dtype="float64", seed=2,
                         lr=0.2)
    follows_the_plain_path(dark_sparse_dataset(np.float64, dense=0), config, dense=0)


def test_sparse_training_follows_the_plain_path_on_an_mnist_slice(mnist):
    """MNIST's own sparsity (dark pixels, ~19% lit), 1,000 images, float64."""
    def part(split, n):
        return Split(x=split.x[:n].astype(np.float64), y=split.y[:n].copy())
    data = Dataset(name="slice", directory=None, train=part(mnist.train, 1000),
                   val=part(mnist.val, 300), test=None, sha256={})
    # The center's pixels, lit in over DENSE_MIN_SHARE of the images, go to BLAS.
    dense = sparse.dense_columns(np.count_nonzero(data.train.x, axis=0), 1000).size
    assert dense >= 128
    follows_the_plain_path(data, TrainConfig(layers=(sparse.WIDTH, 16), batch_size=None,
                                             dtype="float64", seed=1, lr=0.1), dense=dense)


def test_minibatches_do_not_take_the_sparse_path(monkeypatch):
    config = TrainConfig(layers=(sparse.WIDTH, 8), batch_size=64, dtype="float32")
    data = dark_sparse_dataset(np.float32)
    assert make_trainer(config, data).path.startswith("plain")  # under paths.PRUNE_MIN_ROWS
    monkeypatch.setattr(paths, "PRUNE_MIN_ROWS", 1)
    assert make_trainer(config, data).path.startswith("pruned")
