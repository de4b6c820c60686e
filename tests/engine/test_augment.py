"""Affine augmentation (fastmlp/augment.py) against its numpy twin, its geometry, its
independence of the thread count, no pruning under it; and the moving average of the weights
(kernels.ema_update) against its twin and in training."""
import numba
import numpy as np
import pytest

from fastmlp.engine import augment, kernels
from fastmlp.engine.bfloat16 import NONE_1D, NONE_2D
from fastmlp.settings import TrainConfig
from fastmlp.training.loop import train
from fastmlp.training.trainer import make_trainer
from tests import naive
from tests.helpers import make_dataset

# Kernels are called directly here, without the Workspace that makes them ready in a run.
pytestmark = pytest.mark.usefixtures("kernels_ready")

DTYPES = [np.float32, np.float64]


def gather(x, y, index, side, *args):
    xb = np.full((len(index), side * side), np.nan, x.dtype)
    yb = np.empty(len(index), np.int32)
    augment.gather_affine(xb, NONE_2D, yb, x, y, index, side, *args)
    return xb, yb


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side, args", [(28, (15.0, 0.1, 10.0, 2.0, 7)), (9, (180.0, 0.5, 45.0,
                                         3.0, 8)), (5, (0.0, 0.2, 0.0, 0.0, 9)),
                                        (1, (30.0, 0.0, 0.0, 1.0, 10))])
def test_gather_affine_matches_naive(dtype, side, args):
    rng = np.random.default_rng(side)
    x = rng.random((40, side * side)).astype(dtype)
    y = rng.integers(0, 10, 40).astype(np.int32)
    index = rng.integers(0, 40, 33).astype(np.int64)
    xb, yb = gather(x, y, index, side, *args)
    want_x, want_y = naive.affine_gather(x, y, index, side, *args)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(xb, want_x, rtol=tol, atol=tol)
    np.testing.assert_array_equal(yb, want_y)


def test_gather_affine_without_a_transform_is_the_plain_gather():
    rng = np.random.default_rng(0)
    x = rng.random((20, 49)).astype(np.float32)
    index = rng.permutation(20).astype(np.int64)
    xb, _ = gather(x, np.zeros(20, np.int32), index, 7, 0.0, 0.0, 0.0, 0.0, 3)
    np.testing.assert_array_equal(xb, x[index])


def test_rotation_keeps_a_centred_blob_centred_and_its_mass():
    """A Gaussian blob at the centre, rotated up to 30 degrees: its mass and centroid stay (to
    the bilinear sampling's error); scaled by up to 20%, its mass changes by s^2."""
    side = 31
    r, c = np.mgrid[0:side, 0:side] - side // 2
    blob = np.exp(-(r ** 2 + (c / 2.0) ** 2) / 16.0).ravel()[None]
    index = np.zeros(200, np.int64)
    rotated, _ = gather(blob, np.zeros(1, np.int32), index, side, 30.0, 0.0, 0.0, 0.0, 11)
    mass = rotated.sum(axis=1)
    np.testing.assert_allclose(mass, blob.sum(), rtol=0.02)
    centroid = rotated.reshape(-1, side, side).sum(axis=2) @ r[:, 0] / mass
    assert np.abs(centroid).max() < 0.05
    assert not np.allclose(rotated, blob)  # it did rotate: the elongated blob turned
    scaled, _ = gather(blob, np.zeros(1, np.int32), index, side, 0.0, 0.2, 0.0, 0.0, 12)
    s = 1 + 0.2 * (2 * naive.uniform(12, np.arange(5 * 200)).reshape(-1, 5)[:, 1] - 1)
    np.testing.assert_allclose(scaled.sum(axis=1), s ** 2 * blob.sum(), rtol=0.02)


def test_gather_affine_does_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    x = rng.random((300, 784)).astype(np.float32)
    index = rng.permutation(300).astype(np.int64)
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            results.append(gather(x, np.zeros(300, np.int32), index, 28, 12.0, 0.1, 8.0, 2.0,
                                  99)[0])
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(results[0], results[1])


AFFINE = dict(batch_size=50, augment_rotate=20.0, augment_scale=0.2, augment_shear=10.0,
              augment_shift=1)


def test_affine_augmentation_prunes_nothing_and_stays_exact():
    """Pixels dark in every training image light up under the affine maps, so no column is
    pruned: the fast path is the plain path, bit for bit."""
    side = 8
    data = make_dataset(n_train=300, n_val=50, n_test=50, n_features=side * side)
    data.train.x.reshape(-1, side, side)[:, :, :2] = 0
    config = TrainConfig(layers=(12,), epochs=2, dtype="float64", seed=1, lr=0.1, **AFFINE)
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    assert fast.fastpath.name == plain.fastpath.name == "plain"
    assert fast.fastpath.first is None
    fast.epoch()
    plain.epoch()
    np.testing.assert_array_equal(fast.model.params, plain.model.params)
    lit = fast.ws.x.reshape(-1, side, side)[:, :, :2]
    assert (lit != 0).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_ema_update_matches_naive(dtype):
    rng = np.random.default_rng(3)
    ema, params = rng.random(1000).astype(dtype), rng.random(1000).astype(dtype)
    for step, decay in [(1, 0.999), (500, 0.9), (10**6, 0.999)]:
        want = naive.ema_update(ema.astype(np.float64), params, decay, step)
        got = ema.copy()
        kernels.ema_update(got, NONE_1D, params, decay, step)
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_training_with_ema_averages_every_step_and_evaluates_the_average():
    """Full batch: one step per epoch, so the twin can follow the average step by step; the
    run's validation figures and its returned model are the averaged weights'."""
    data = make_dataset(n_train=300, n_val=100, n_test=100, n_features=16)
    config = TrainConfig(layers=(8,), epochs=4, lr=0.5, ema=0.8, dtype="float64")
    trainer = make_trainer(config, data)
    twin = trainer.model.params.astype(np.float64)
    for step in range(1, 5):
        trainer.epoch()
        twin = naive.ema_update(twin, trainer.model.params, 0.8, step)
        np.testing.assert_allclose(trainer.averaged.params, twin, rtol=1e-12)
    assert not np.allclose(trainer.averaged.params, trainer.model.params)
    result = train(config, data)
    np.testing.assert_array_equal(result.model.params, trainer.averaged.params)
    model = result.model
    np.testing.assert_allclose(result.history[-1].val_loss,
                               naive.loss_of(model.weights, model.biases, data.val.x, data.val.y),
                               rtol=1e-10)
