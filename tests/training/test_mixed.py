"""Mixed precision through a whole run: it trains, resumes bit for bit at the same libraries
and threads, saves and loads (the bfloat16 weights made again from the float ones), plans its
memory and takes the plain path; MLPClassifier takes the dtype too."""
import numpy as np
import pytest

from fastmlp.classifier import MLPClassifier
from fastmlp.settings import RunOptions, TrainConfig
from fastmlp.training import checkpoint
from fastmlp.training.loop import train
from fastmlp.training.plan import plan_for
from tests import naive
from tests.helpers import data32, sparse_dataset

MIXED = dict(dtype="mixed_bfloat16", layers=(24, 12), epochs=3, batch_size=64, lr=0.1,
             optimizer="momentum", ema=0.9, seed=4)
ONE_THREAD = RunOptions(threads=1, blas="openblas")


def test_a_mixed_run_learns_and_keeps_float_weights_with_their_bfloat16_copy():
    data = data32(n_features=40)
    result = train(TrainConfig(**MIXED), data, options=ONE_THREAD)
    history = result.history
    assert history[-1].train_loss < history[0].train_loss
    assert result.model.params.dtype == np.float32 and result.model.mixed
    np.testing.assert_array_equal(result.model.params16, naive.to_bfloat16(result.model.params))


def test_a_mixed_run_resumes_bit_for_bit(tmp_path):
    data = data32(n_features=40)
    whole = train(TrainConfig(**MIXED), data, options=ONE_THREAD)
    path = tmp_path / "rung.npz"
    train(TrainConfig(**MIXED), data, options=ONE_THREAD, save_path=path, stop_after=2)
    resumed = train(None, data, options=ONE_THREAD, resume=checkpoint.load(path))
    np.testing.assert_array_equal(resumed.model.params, whole.model.params)
    assert [e.val_loss for e in resumed.history] == [e.val_loss for e in whole.history]


def test_a_saved_mixed_model_loads_with_its_bfloat16_weights(tmp_path):
    data = data32(n_features=40)
    clf = MLPClassifier(**{**MIXED, "threads": 1, "blas": "openblas"}).fit(data.train.x,
                                                                            data.train.y)
    clf.save(tmp_path / "m.npz")
    loaded = MLPClassifier.load(tmp_path / "m.npz")
    assert loaded.model_.mixed and loaded.dtype == "mixed_bfloat16"
    np.testing.assert_array_equal(loaded.model_.params16, clf.model_.params16)
    np.testing.assert_array_equal(loaded.predict_proba(data.test.x),
                                  clf.predict_proba(data.test.x))


def test_mixed_precision_takes_the_plain_path_and_plans_its_bfloat16_buffers():
    """The fast paths' kernels are float: a run that would take the fused pass in float32
    takes the plain path, with bfloat16 copies of its inputs, weights and operands."""
    data = sparse_dataset(np.float32)  # sparse enough for the fused pass in float32
    config = TrainConfig(layers=(10,), epochs=1, dtype="mixed_bfloat16")
    plan = plan_for(config, data, options=ONE_THREAD)
    assert plan.fastpath.name == "plain" and plan.operand == "bfloat16"
    n_in = data.train.x.shape[1]
    rows = len(data.train.y) + len(data.val.y) + (0 if data.test is None else len(data.test.y))
    assert plan.memory["bfloat16 inputs"] == 2 * rows * n_in
    assert plan.memory["bfloat16 weights"] == plan.memory["parameters"] // 2
    assert "transposed inputs" not in plan.memory
    float_plan = plan_for(TrainConfig(layers=(10,), epochs=1), data, options=ONE_THREAD)
    assert float_plan.fastpath.name == "fused"


@pytest.mark.parametrize("batch_size", [None, 100])
def test_the_mixed_plan_is_what_a_mixed_run_allocates(batch_size):
    import tracemalloc

    data = data32(n_train=3000, n_val=1000, n_test=1000, n_features=196)
    config = TrainConfig(layers=(256, 128), epochs=1, dtype="mixed_bfloat16",
                         batch_size=batch_size)
    planned = plan_for(config, data, options=ONE_THREAD)
    train(config, data, options=ONE_THREAD)  # untraced: kernel loading allocates too
    tracemalloc.start()
    try:
        train(config, data, options=ONE_THREAD)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = planned.total - planned.memory["data"]
    assert abs(peak - expected) <= 0.1 * expected, (peak, planned.memory)
