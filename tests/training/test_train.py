"""Training end to end: determinism, float32 against float64, no allocation in the hot loop,
minibatch bookkeeping, divergence, and a short real-MNIST run."""
import dataclasses
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import fastmlp
from fastmlp import FastMLPError, TrainConfig, train
from fastmlp.engine.model import MLP
from fastmlp.fastpath import choose as paths
from fastmlp.settings import RunOptions
from fastmlp.training.trainer import make_trainer
from tests.helpers import make_dataset, run_python


def losses(result):
    return [e.train_loss for e in result.history]


@pytest.mark.parametrize("batch_size", [None, 64])
def test_same_seed_and_threads_give_identical_history(batch_size):
    data = make_dataset(dtype=np.float32)
    config = TrainConfig(layers=(16, 8), epochs=5, batch_size=batch_size, seed=3)
    options = RunOptions(threads=2)
    a, b = train(config, data, options=options), train(config, data, options=options)
    strip = [dataclasses.replace(e, seconds=0, samples_per_s=0) for e in a.history]
    assert strip == [dataclasses.replace(e, seconds=0, samples_per_s=0) for e in b.history]
    np.testing.assert_array_equal(a.model.params, b.model.params)


def test_different_seeds_differ():
    data = make_dataset(dtype=np.float32)
    a = train(TrainConfig(layers=(16,), epochs=2, seed=0), data)
    b = train(TrainConfig(layers=(16,), epochs=2, seed=1), data)
    assert losses(a) != losses(b)


@pytest.mark.parametrize("batch_size", [None, 100])
def test_float32_history_follows_float64(batch_size):
    config = TrainConfig(layers=(32, 16), epochs=15, batch_size=batch_size, lr=0.2)
    r32 = train(dataclasses.replace(config, dtype="float32"), make_dataset(dtype=np.float32))
    r64 = train(dataclasses.replace(config, dtype="float64"), make_dataset(dtype=np.float64))
    np.testing.assert_allclose(losses(r32), losses(r64), rtol=1e-4)
    acc32 = [e.val_acc for e in r32.history]
    acc64 = [e.val_acc for e in r64.history]
    # An accuracy may flip by a sample sitting on a decision boundary, no more.
    np.testing.assert_allclose(acc32, acc64, atol=2.5 / 200)
    np.testing.assert_allclose(r32.model.params, r64.model.params, rtol=1e-3, atol=1e-4)


def test_training_learns_the_synthetic_problem():
    result = train(TrainConfig(layers=(32,), epochs=30, batch_size=50, lr=0.5),
                   make_dataset(dtype=np.float32))
    assert losses(result)[-1] < 0.5 * losses(result)[0]
    assert result.final.val_acc > 0.8 and result.final.test_acc > 0.8


def kept_by_fastmlp(first, last):
    """The bytes allocated between two tracemalloc snapshots (of 64 frames) and still held, of
    what fastmlp's code allocated: a thread another test left running (a Dask heartbeat, say)
    allocates beside the loop in a whole-suite run."""
    ours = [tracemalloc.Filter(True, str(Path(fastmlp.__file__).parent / "*"), all_frames=True)]
    return sum(stat.size_diff for stat in
               last.filter_traces(ours).compare_to(first.filter_traces(ours), "filename"))


@pytest.mark.parametrize("batch_size, dark", [(None, 0), (128, 0), (None, 64), (128, 64)])
def test_the_hot_loop_allocates_no_array_memory(batch_size, dark, monkeypatch):
    """Steps after the first allocate nothing that scales with the batch: the smallest buffer
    a step could allocate here is 128 rows x 64 units x 4 bytes = 32 KiB. With `dark` input
    columns zero in every training image, the first layer's matmuls run on the kept columns
    (prune.py), whose weight copy once allocated a temporary every step (minibatches prune
    only from choose.PRUNE_MIN_ROWS rows: here from any size)."""
    monkeypatch.setattr(paths, "PRUNE_MIN_ROWS", 1)
    data = make_dataset(n_train=1024, n_features=784, dtype=np.float32)
    data.train.x[:, :dark] = 0
    trainer = make_trainer(TrainConfig(layers=(64, 32), batch_size=batch_size), data)
    assert ("pruned" in trainer.fastpath.description) == bool(dark), trainer.fastpath.description
    trainer.epoch()  # first calls: numba dispatch caches, workspace views
    tracemalloc.start(64)
    try:
        first = tracemalloc.take_snapshot()
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(10):
            trainer.epoch()
        _, peak = tracemalloc.get_traced_memory()
        last = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert peak - before < 8 * 1024, f"peak grew by {peak - before} bytes"
    kept = kept_by_fastmlp(first, last)
    assert kept < 2 * 1024, f"{kept} bytes stayed allocated"


def test_allocation_check_would_catch_an_allocation():
    """The tracemalloc measurement above sees numpy array allocations (so it can fail)."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        np.empty((128, 64), np.float32).fill(0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before >= 128 * 64 * 4


def test_the_kept_allocation_check_sees_what_fastmlp_allocates():
    """The snapshot comparison above counts an array fastmlp's code allocates and keeps."""
    from fastmlp.engine.elastic import smoothing

    tracemalloc.start(64)
    try:
        first = tracemalloc.take_snapshot()
        kept_array, _ = smoothing(4.0, 28)  # a (28, 28) float64 array: 6,272 bytes
        last = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    kept = kept_by_fastmlp(first, last)
    assert kept >= kept_array.nbytes


def test_minibatches_cover_every_sample_and_reshuffle():
    data = make_dataset(n_train=600, dtype=np.float32)
    trainer = make_trainer(TrainConfig(layers=(8,), batch_size=256), data)
    assert [ws.rows for ws, _ in trainer.minibatches] == [256, 256, 88]  # partial one used
    trainer.epoch()
    first = trainer.order.copy()
    trainer.epoch()
    assert sorted(first) == list(range(600)) and not np.array_equal(first, trainer.order)
    # The batches' index lists are views of the order, so they follow its reshuffling.
    indices = np.concatenate([index for _, index in trainer.minibatches])
    np.testing.assert_array_equal(indices, trainer.order)


def test_batch_larger_than_the_training_set_is_full_batch():
    data = make_dataset(dtype=np.float32)
    full = train(TrainConfig(layers=(8,), epochs=3), data)
    clamped = train(TrainConfig(layers=(8,), epochs=3, batch_size=10**6), data)
    assert losses(full) == losses(clamped)


def test_full_batch_epoch_is_one_gradient_step():
    """At full batch one epoch must equal one plain gradient step on all training samples."""
    data = make_dataset(n_train=300, dtype=np.float64)
    result = train(TrainConfig(layers=(8,), epochs=1, dtype="float64", lr=0.3), data)
    model = MLP([20, 8, 10], np.float64)
    model.initialize("he", np.random.default_rng(np.random.SeedSequence(0).spawn(2)[0]))
    from fastmlp.engine.backward import backward
    from fastmlp.engine.forward import forward
    from fastmlp.engine.workspace import Workspace
    ws = Workspace(model, 300)
    forward(model, ws, data.train.x)
    backward(model, ws, data.train.x.T, data.train.y)
    np.testing.assert_allclose(result.model.params, model.params - 0.3 * model.grads,
                               rtol=1e-12)


def test_test_accuracy_every_k_epochs_and_at_the_end():
    result = train(TrainConfig(layers=(8,), epochs=7, eval_every=3),
                   make_dataset(dtype=np.float32))
    measured = [e.epoch for e in result.history if e.test_acc is not None]
    assert measured == [3, 6, 7]


def test_divergence_stops_with_a_clear_error():
    data = make_dataset(dtype=np.float32)
    data.train.x[:] *= 1e30
    # Epoch 1's loss is huge but finite, far above the untrained model's loss on the (unscaled)
    # validation split: the run stops there, as diverged.
    with pytest.raises(FastMLPError, match=r"diverged at epoch 1 \(loss is 9.*lower learning"):
        train(TrainConfig(layers=(8,), epochs=50), data)
    data.val.x[:] *= 1e30
    # Now the initial loss is as huge, so epoch 1 is within the limit; its gradient step
    # overflows the weights, so epoch 2's loss is not finite, and that is the epoch named.
    with pytest.raises(FastMLPError, match=r"diverged at epoch 2 \(loss is (nan|inf)"):
        train(TrainConfig(layers=(8,), epochs=50), data)


@pytest.mark.parametrize("field, value", [
    ("layers", ()), ("layers", (0,)), ("layers", (16, -1)), ("epochs", 0), ("lr", 0.0),
    ("lr", float("nan")), ("init", "zeros"), ("dtype", "float16"), ("batch_size", 0),
    ("val_fraction", 1.0), ("eval_every", -1)])
def test_invalid_config_is_refused(field, value):
    with pytest.raises(FastMLPError):
        TrainConfig(**{field: value})


def test_invalid_run_options_are_refused():
    with pytest.raises(FastMLPError):
        RunOptions(threads=0)


def test_short_real_mnist_run(mnist):
    """[128], minibatch 128, lr 0.1, 2 epochs. Measured on this protocol: validation accuracy
    92.6%, 93.2% and 92.9% for seeds 0, 1 and 2; a correct engine clears 91% with room."""
    result = train(TrainConfig(layers=(128,), batch_size=128, lr=0.1, epochs=2), mnist)
    assert result.final.val_acc > 0.91
    assert result.final.test_acc > 0.91
    assert result.history[1].train_loss < result.history[0].train_loss


def test_a_run_loads_only_its_own_optimizer_kernel():
    """Each update is a kernel group of its own (a cached kernel takes ~8 ms to load): a
    momentum run with a moving average readies momentum_update and ema_update, not the others.
    In a fresh process: the suite's kernel tests ready every group."""
    code = ("import numpy as np\nfrom fastmlp import TrainConfig, train\n"
            "from fastmlp.runtime import jit\n"
            "from tests.helpers import make_dataset\n"
            "train(TrainConfig(layers=(8,), epochs=1, batch_size=64, optimizer='momentum', "
            "ema=0.9), make_dataset(dtype=np.float32))\n"
            "print(sorted(g for g, _ in jit.readied() if g.endswith('_update')))\n")
    assert run_python(code)[0].strip() == "['ema_update', 'momentum_update']"
