"""The sparse first layer for minibatches (fastmlp/sparse_batch.py): its kernels against their
numpy twins (shifts, empty rows, rows shifted off the image) at any thread count, and whole
minibatch training runs through it against the plain path."""
import dataclasses

import numpy as np
import pytest

from fastmlp import paths, sparse_batch
from fastmlp.model import MLP
from fastmlp.settings import TrainConfig
from fastmlp.threads import thread_limits
from fastmlp.trainer import make_trainer

from . import naive
from .helpers import make_dataset, sparse_inputs

# Kernels are called directly here, without the SparseBatch that makes them ready in a run.
pytestmark = pytest.mark.usefixtures("kernels_ready")

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
SIDE = 8


def layer(x, rows, shift, width, seed=0):
    """(SparseBatch over x, a model whose first layer is `width` wide with random weights)."""
    model = MLP([x.shape[1], width, 3], x.dtype)
    model.weights[0][...] = np.random.default_rng(seed).normal(size=model.weights[0].shape)
    return sparse_batch.SparseBatch(x, rows, SIDE, shift), model


def picked(x, rows, seed):
    """A shuffled index list of `rows` rows of x that starts with its empty row 0 and its
    one-pixel row 1 (at the image's last pixel: any shift right or down drops it)."""
    rest = np.random.default_rng(seed).permutation(np.arange(2, len(x)))[:rows - 2]
    return np.concatenate([[0, 1], rest]).astype(np.int64)


CASES = [(np.float32, 0, 64), (np.float64, 0, 128), (np.float32, 1, 128), (np.float64, 2, 64)]


@pytest.mark.parametrize("dtype, shift, width", CASES)
def test_batch_matmul_and_weight_grad_match_their_numpy_twins(dtype, shift, width):
    rng = np.random.default_rng(shift)
    x = sparse_inputs(rng, 40, SIDE * SIDE, 0.3, dtype)
    index = picked(x, 17, shift)
    first, model = layer(x, 17, shift, width)
    y = np.arange(40, dtype=np.int32)
    yb = np.empty(17, np.int32)
    first.gather(yb, y, index, 99)
    np.testing.assert_array_equal(yb, y[index])
    z = np.zeros((17, width), dtype)
    first.matmul(model, None, z)
    want = naive.batch_matmul(x, index, model.weights[0], SIDE, shift, 99)
    np.testing.assert_allclose(z, want, **TOL[dtype])
    dz = rng.normal(size=(17, width)).astype(dtype)
    model.dweights[0][...] = np.nan  # every entry must be written
    first.weight_grad(model, None, dz)
    want = naive.batch_weight_grad(x, index, dz, SIDE, shift, 99)
    np.testing.assert_allclose(model.dweights[0], want, **TOL[dtype])
    dark = ~want.any(axis=1)  # pixels no row of the minibatch lights: exactly zero
    assert dark.any() and not model.dweights[0][dark].any()


def test_remap_tables_move_pixels_as_gather_rows_shifts_images():
    tables = sparse_batch.remap_tables(SIDE, 2)
    image = np.arange(1, SIDE * SIDE + 1, dtype=np.float64)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            table = tables[(dy + 2) * 5 + dx + 2]
            moved = np.zeros(SIDE * SIDE)
            moved[table[table >= 0]] = image[table >= 0]
            want = naive.translate(image.reshape(SIDE, SIDE), dy, dx).ravel()
            np.testing.assert_array_equal(moved, want)


def test_kernels_are_the_same_at_any_thread_count():
    rng = np.random.default_rng(5)
    x = sparse_inputs(rng, 500, SIDE * SIDE, 0.2, np.float32)
    index = rng.permutation(500)[:300].astype(np.int64)
    dz = rng.normal(size=(300, 128)).astype(np.float32)
    results = []
    for threads in (1, 2):
        with thread_limits(threads):
            first, model = layer(x, 300, 1, 128)
            first.gather(np.empty(300, np.int32), np.zeros(500, np.int32), index, 7)
            z = np.empty((300, 128), np.float32)
            first.matmul(model, None, z)
            first.weight_grad(model, None, dz)
            results.append((z, model.dweights[0].copy()))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_applies_to_wide_first_layers_small_batches_and_sparse_inputs_only():
    x = sparse_inputs(np.random.default_rng(0), 50, 20, 0.2, np.float32)
    for width in (256, 512):
        assert sparse_batch.applies([20, width, 10], x, 128)
    assert not sparse_batch.applies([20, 128, 10], x, 128)
    assert not sparse_batch.applies([20, 320 - 32, 10], x, 128)
    assert not sparse_batch.applies([20, 256, 10], x, 1024)
    assert not sparse_batch.applies([20, 256], x, 128)
    assert not sparse_batch.applies([20, 256, 10], np.ones_like(x), 128)


@pytest.fixture
def narrow_layers_take_the_path(monkeypatch):
    """First layers of 64 lanes take the path here (sparse_batch.MIN_WIDTH), so that whole runs
    are checked on small layers."""
    monkeypatch.setattr(sparse_batch, "MIN_WIDTH", 64)


def sparse_images(dtype):
    """make_dataset's problem on 8 x 8 images, 80% of the pixels zero and the left border
    dark, so that shifts move lit pixels both into and off the image."""
    data = make_dataset(n_train=300, n_val=60, n_test=60, n_features=SIDE * SIDE, dtype=dtype)
    rng = np.random.default_rng(3)
    for split in (data.train, data.val, data.test):
        split.x[rng.random(split.x.shape) < 0.8] = 0
        split.x.reshape(-1, SIDE, SIDE)[:, :, 0] = 0
    return data


SETTINGS = [dict(), dict(optimizer="momentum", weight_decay=1e-3),
            dict(optimizer="adam", lr=1e-2, weight_decay=1e-3), dict(dropout=0.2),
            dict(augment_shift=1), dict(augment_shift=2, optimizer="adam", lr=1e-2)]


@pytest.mark.usefixtures("narrow_layers_take_the_path")
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_sparse_minibatches_follow_the_plain_path_in_float64(settings):
    """20 steps of batch 64 (300 rows: the last batch of each epoch has 44): every parameter
    within 1e-9 relative."""
    data = sparse_images(np.float64)
    config = TrainConfig(**{"layers": (64, 8), "batch_size": 64, "dtype": "float64",
                            "seed": 2, "lr": 0.2, **settings})
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    assert fast.path == "sparse minibatch" and plain.path == "plain"
    while fast.optimizer.steps < 20:
        np.testing.assert_allclose(fast.epoch(), plain.epoch(), rtol=1e-9)
    scale = np.abs(plain.model.params).max()
    np.testing.assert_allclose(fast.model.params, plain.model.params, rtol=1e-9,
                               atol=1e-9 * scale)


@pytest.mark.usefixtures("narrow_layers_take_the_path")
def test_which_minibatches_take_the_path(monkeypatch):
    data = sparse_images(np.float32)
    config = TrainConfig(layers=(64, 8), batch_size=64, dtype="float32")
    assert make_trainer(config, data).path == "sparse minibatch"
    for other in (dict(layers=(48, 8)), dict(augment_rotate=10.0), dict(batch_size=None)):
        assert make_trainer(dataclasses.replace(config, **other), data).path != \
            "sparse minibatch"
    monkeypatch.setattr(paths, "PRUNE_MIN_ROWS", 64)
    assert make_trainer(config, data).path != "sparse minibatch"
