"""Pruned input columns (fastmlp/prune.py): which columns are kept, the column gather against
gather_rows, and whole training runs through pruned matmuls against the plain path."""
import numpy as np
import pytest

from fastmlp.engine import kernels
from fastmlp.fastpath import choose as paths
from fastmlp.fastpath import prune
from fastmlp.settings import TrainConfig
from fastmlp.training import plan
from fastmlp.training.trainer import make_trainer
from tests import naive
from tests.helpers import make_dataset

# Kernels are called directly here, without the Workspace that makes them ready in a run.
pytestmark = pytest.mark.usefixtures("kernels_ready")

SIDE = 8


@pytest.fixture(autouse=True)
def minibatches_prune(monkeypatch):
    """Minibatches of any size take the pruned path here (choose.PRUNE_MIN_ROWS), so that the
    column gather and the pruned minibatch steps are checked on small data."""
    monkeypatch.setattr(paths, "PRUNE_MIN_ROWS", 1)


def images_dark_at_left(dtype, dark=3):
    """make_dataset's problem on 8 x 8 images whose `dark` leftmost pixel columns are zero in
    every training image (but not in validation and test)."""
    data = make_dataset(n_train=500, n_val=100, n_test=100, n_features=SIDE * SIDE, dtype=dtype)
    data.train.x.reshape(-1, SIDE, SIDE)[:, :, :dark] = 0
    return data


def test_kept_columns_are_the_lit_ones_padded_to_a_multiple():
    x = images_dark_at_left(np.float32).train.x
    kept = prune.kept_columns(x)
    lit = np.flatnonzero(x.any(axis=0))
    assert len(kept) % prune.PAD_TO == 0 and len(kept) < x.shape[1]
    assert set(lit) <= set(kept) and len(kept) - len(lit) < prune.PAD_TO
    assert np.all(np.diff(kept) > 0)
    assert prune.kept_columns(np.ones((3, 40))) is None


@pytest.mark.parametrize("shift", [1, 2])
def test_kept_columns_cover_every_pixel_a_shift_can_light(shift):
    x = images_dark_at_left(np.float64, dark=4).train.x
    lit = x.any(axis=0).reshape(SIDE, SIDE).astype(float)
    reach = sum(naive.translate(lit, dy, dx) for dy in range(-shift, shift + 1)
                for dx in range(-shift, shift + 1))
    kept = prune.kept_columns(x, shift, SIDE)
    assert set(np.flatnonzero(reach.ravel())) <= set(kept)
    assert len(kept) - np.count_nonzero(reach) < prune.PAD_TO


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shift", [0, 2])
def test_gather_columns_is_gather_rows_at_the_kept_columns(shift, dtype):
    rng = np.random.default_rng(shift)
    x = rng.random((50, SIDE * SIDE)).astype(dtype)
    y = rng.integers(0, 10, 50).astype(np.int32)
    index = rng.permutation(50)[:17].astype(np.int64)
    columns = np.sort(rng.choice(SIDE * SIDE, 32, replace=False)).astype(np.int64)
    xb, yb = np.empty((17, SIDE * SIDE), dtype), np.empty(17, np.int32)
    kernels.gather_rows(xb, yb, x, y, index, SIDE, shift, 99)
    xk, yk = np.empty((17, 32), dtype), np.empty(17, np.int32)
    prune.gather_columns(xk, yk, x, y, index, columns, SIDE, shift, 99)
    np.testing.assert_array_equal(xk, xb[:, columns])
    np.testing.assert_array_equal(yk, yb)
    twin = naive.gather_rows(x, y, index, SIDE, shift, 99)[0]
    np.testing.assert_array_equal(xk, twin[:, columns])


@pytest.mark.parametrize("threshold, prunes", [(65, False), (64, True)])
def test_minibatches_prune_from_prune_min_rows(monkeypatch, threshold, prunes):
    """A 64-row minibatch prunes at a threshold of 64 rows, not 65; full batch prunes either
    way; the memory plan counts kept columns exactly when the trainer prunes."""
    data = images_dark_at_left(np.float32)
    monkeypatch.setattr(paths, "PRUNE_MIN_ROWS", threshold)
    for batch_size in (64, None):
        config = TrainConfig(layers=(12, 8), batch_size=batch_size, dtype="float32")
        made = make_trainer(config, data)
        pruned = batch_size is None or prunes
        assert made.fastpath.description.startswith("pruned columns") == pruned
        assert plan.plan_for(config, data).fastpath.n_kept == (made.fastpath.n_kept if pruned
                                                               else 0)


SETTINGS = [dict(), dict(weight_decay=0.01), dict(optimizer="momentum", weight_decay=1e-3),
            dict(optimizer="adam", lr=1e-2, weight_decay=1e-3),
            dict(batch_size=64), dict(batch_size=64, augment_shift=1, weight_decay=1e-3),
            dict(batch_size=100, dropout=0.2, optimizer="adam", lr=1e-2)]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_pruned_training_follows_the_plain_path_in_float64(settings):
    """20 steps: every parameter, the pruned weights included, within 1e-9 relative."""
    data = images_dark_at_left(np.float64)
    config = TrainConfig(**{"layers": (12, 8), "batch_size": None, "dtype": "float64",
                            "seed": 2, "lr": 0.2, **settings})
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    assert fast.fastpath.name == "pruned" and plain.fastpath.name == "plain"
    start = fast.model.weights[0].copy()
    steps = 0
    while steps < 20:
        got, want = fast.epoch(), plain.epoch()
        np.testing.assert_allclose(got, want, rtol=1e-9)
        steps = fast.optimizer.steps
    scale = np.abs(plain.model.params).max()
    np.testing.assert_allclose(fast.model.params, plain.model.params, rtol=1e-9,
                               atol=1e-9 * scale)
    pruned = np.setdiff1d(np.arange(SIDE * SIDE), fast.fastpath.kept)
    moved = not np.array_equal(fast.model.weights[0][pruned], start[pruned])
    assert moved == bool(config.weight_decay)  # decay moves pruned weights, plain SGD not
