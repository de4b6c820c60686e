"""Training options beyond plain SGD: every optimizer learns, learning-rate schedules, dropout
and shift augmentation, and early stopping that keeps the best epoch's weights."""
import dataclasses

import numpy as np
import pytest

from fastmlp.engine.schedule import Schedule
from fastmlp.engine.workspace import Workspace
from fastmlp.errors import FastMLPError
from fastmlp.settings import TrainConfig
from fastmlp.training.loop import train
from fastmlp.training.trainer import make_trainer
from tests import naive
from tests.helpers import data32, make_dataset


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_every_optimizer_learns(optimizer):
    lr = 0.01 if optimizer.startswith("adam") else 0.2
    result = train(TrainConfig(layers=(32,), epochs=15, batch_size=50, lr=lr,
                               optimizer=optimizer, weight_decay=1e-4), data32())
    losses = [e.train_loss for e in result.history]
    assert losses[-1] < 0.5 * losses[0] and result.final.val_acc > 0.8


def test_schedules():
    s = Schedule("cosine", 1.0, epochs=10, steps_per_epoch=10, warmup_epochs=2)
    assert s.lr(0) == pytest.approx(1 / 20) and s.lr(19) == pytest.approx(1.0)
    assert s.lr(20) == pytest.approx(1.0) and s.lr(99) < 0.001
    assert all(s.lr(i) >= s.lr(i + 1) for i in range(20, 99))
    step = Schedule("step", 1.0, epochs=9, steps_per_epoch=5, step_epochs=3, gamma=0.5)
    assert [step.lr(e * 5) for e in (0, 2, 3, 6, 8)] == [1.0, 1.0, 0.5, 0.25, 0.25]
    assert Schedule("constant", 0.3, 5, 7).lr(34) == 0.3


def test_history_records_the_schedule():
    result = train(TrainConfig(layers=(8,), epochs=6, lr=0.1, schedule="step",
                               lr_step_epochs=2, lr_gamma=0.5), data32())
    assert [e.lr for e in result.history] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_dropout_and_augmentation_are_deterministic_and_change_training():
    data = make_dataset(n_features=784, dtype=np.float32)
    base = TrainConfig(layers=(32,), epochs=3, batch_size=100, lr=0.1)
    plain = train(base, data)
    regular = dataclasses.replace(base, dropout=0.3, augment_shift=2)
    a, b = train(regular, data), train(regular, data)
    np.testing.assert_array_equal(a.model.params, b.model.params)
    assert not np.array_equal(a.model.params, plain.model.params)
    assert train(dataclasses.replace(regular, seed=1), data).history[0].train_loss != \
        a.history[0].train_loss


def test_shift_augmentation_needs_square_images():
    with pytest.raises(FastMLPError, match="square"):
        train(TrainConfig(layers=(8,), epochs=1, batch_size=50, augment_shift=1), data32())


def test_early_stopping_restores_the_best_weights():
    data = data32()
    result = train(TrainConfig(layers=(16,), epochs=60, batch_size=20, lr=2.0, patience=3),
                   data)
    best = max(result.history, key=lambda e: e.val_acc)
    assert len(result.history) < 60  # a too-high rate stops improving; the run stops early
    assert result.best_epoch == best.epoch and result.final is best
    assert len(result.history) == best.epoch + 3
    from fastmlp.engine.inference import predict_proba
    val_acc = (predict_proba(result.model, data.val.x).argmax(axis=1) == data.val.y).mean()
    assert val_acc == best.val_acc  # the returned model is the best epoch's


def test_label_smoothing_trains_on_the_smoothed_loss_and_evaluates_plainly():
    """One full-batch step: the epoch's training loss is the smoothed cross-entropy of the
    initial weights (naive twin); validation is the plain cross-entropy of the trained ones."""
    data = make_dataset(n_features=784, dtype=np.float64)
    config = TrainConfig(layers=(12,), epochs=1, batch_size=None, dtype="float64",
                         label_smoothing=0.2)
    made = make_trainer(config, data, plain=True)
    x, y = data.train.x, data.train.y
    initial = [w.copy() for w in made.model.weights], [b.copy() for b in made.model.biases]
    loss, _ = made.epoch()
    assert loss == pytest.approx(naive.loss_of(*initial, x, y, 0.2), rel=1e-10)
    assert loss != pytest.approx(naive.loss_of(*initial, x, y), rel=1e-3)
    ws = Workspace(made.model, len(data.val.y), gather=False)
    val_loss = made.evaluator(data.val.x, data.val.y, ws)()[1]
    want = naive.loss_of(made.model.weights, made.model.biases, data.val.x, data.val.y)
    assert val_loss == pytest.approx(want, rel=1e-10)
