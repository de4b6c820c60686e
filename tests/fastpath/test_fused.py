"""The fused pass (fastmlp/fused.py) against its numpy twins, at any thread count, and whole
training runs through it against the plain BLAS path."""
import numpy as np
import pytest

from fastmlp.engine.model import MLP
from fastmlp.engine.workspace import Workspace
from fastmlp.fastpath import fused
from fastmlp.fastpath.fused import BLOCK_ROWS
from fastmlp.runtime.threads import thread_limits
from fastmlp.settings import TrainConfig
from fastmlp.training import plan
from fastmlp.training.trainer import make_trainer
from tests import naive
from tests.helpers import sparse_dataset, sparse_inputs

# Kernels are called directly here, without the Workspace that makes them ready in a run.
pytestmark = pytest.mark.usefixtures("kernels_ready")

TOL = {np.float32: dict(rtol=2e-4, atol=1e-6), np.float64: dict(rtol=1e-11, atol=1e-14)}


def case(rng, rows, n_in, hidden, classes, dtype):
    x = sparse_inputs(rng, rows, n_in, 0.2, dtype)
    y = rng.integers(0, classes, rows).astype(np.int32)
    w1, w2 = (rng.normal(size=s).astype(dtype) for s in ((n_in, hidden), (hidden, classes)))
    b1, b2 = (rng.normal(size=s).astype(dtype) for s in (hidden, classes))
    return x, y, w1, b1, w2, b2


def sweep(x, y, w1, b1, w2, b2):
    """A FusedPass step and evaluation: (dw1, db1, dw2, db2, summed loss, correct)."""
    model = MLP([len(w1), len(b1), len(b2)], x.dtype)
    for view, value in zip([*model.weights, *model.biases], (w1, w2, b1, b2)):
        view[...] = value
    sweep = fused.FusedPass(model, x, y)
    loss, correct = sweep.step(model)
    assert sweep.evaluate(model) == (correct / len(y), loss)
    return (*(g.copy() for g in (model.dweights[0], model.dbiases[0], model.dweights[1],
                                 model.dbiases[1])), loss * len(y), correct)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, n_in, hidden, classes",
                         [(1, 5, 1, 2), (7, 30, 10, 10), (2 * BLOCK_ROWS + 3, 50, 16, 3)])
def test_fused_step_matches_its_numpy_twin(rows, n_in, hidden, classes, dtype):
    args = case(np.random.default_rng(rows), rows, n_in, hidden, classes, dtype)
    x, y, *params = args
    expected = naive.fused_step(x.astype(np.float64), y, *(p.astype(np.float64) for p in params))
    got = sweep(*args)
    for a, b in zip(got[:5], expected[:5]):
        np.testing.assert_allclose(a, b, **TOL[dtype])
    assert got[5] == expected[5]


@pytest.mark.parametrize("bad", [-1, 3, 16, 1 << 20])
def test_the_fused_pass_refuses_a_label_out_of_range(bad):
    """The sweep indexes its 16 register lanes by label: one outside 0..classes-1 raises before
    any row is swept, in training and in evaluation."""
    x, y, *params = case(np.random.default_rng(2), BLOCK_ROWS + 9, 30, 10, 3, np.float32)
    y[-1] = bad
    model = MLP([30, 10, 3], np.float32)
    sweep = fused.FusedPass(model, x, y)
    with pytest.raises(IndexError, match="outside 0..K-1"):
        sweep.step(model)
    with pytest.raises(IndexError, match="outside 0..K-1"):
        sweep.evaluate(model)


def test_fused_step_is_the_same_at_any_thread_count():
    args = case(np.random.default_rng(5), 3 * BLOCK_ROWS + 1, 40, 10, 10, np.float32)
    results = []
    for threads in (1, 2):
        with thread_limits(threads):
            results.append(sweep(*args))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


SETTINGS = [dict(), dict(weight_decay=0.01), dict(optimizer="momentum", weight_decay=1e-3),
            dict(optimizer="adam", lr=1e-2), dict(init="uniform")]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_fused_training_follows_the_plain_path_in_float64(settings):
    """20 full-batch steps: every parameter within 1e-9 relative of the BLAS path's."""
    data = sparse_dataset(np.float64)
    config = TrainConfig(layers=(10,), batch_size=None, dtype="float64", seed=1,
                         **{"lr": 0.5, **settings})
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    assert fast.fastpath.description == "fused pass" and plain.fastpath.description == "plain"
    for _ in range(20):
        got, want = fast.epoch(), plain.epoch()
        np.testing.assert_allclose(got, want, rtol=1e-9)
    scale = np.abs(plain.model.params).max()
    np.testing.assert_allclose(fast.model.params, plain.model.params, rtol=1e-9,
                               atol=1e-9 * scale)
    ws = Workspace(plain.model, 150, gather=False)
    np.testing.assert_allclose(fast.evaluator(data.val.x, data.val.y, ws)(),
                               plain.evaluator(data.val.x, data.val.y, ws)(), rtol=1e-9)


def test_fused_pass_serves_only_narrow_single_layers_on_sparse_inputs():
    x = sparse_dataset(np.float32).train.x
    assert fused.applies((64, 10, 10), x) and fused.applies((64, 16, 10), x)
    assert not fused.applies((64, 17, 10), x)
    assert not fused.applies((64, 10, 10, 10), x)
    assert not fused.applies((64, 10, 10), np.ones_like(x))


def test_label_smoothing_takes_the_path_with_a_smoothed_loss():
    """The fused pass's loss is plain cross-entropy: with label smoothing the trainer and the
    memory plan both take another path, the same one."""
    data = sparse_dataset(np.float32)
    config = TrainConfig(layers=(10,), batch_size=None, label_smoothing=0.1)
    made = make_trainer(config, data)
    assert made.fastpath.name != "fused" and made.fastpath.description != "fused pass"
    assert "sparse inputs" not in plan.plan_for(config, data).memory
