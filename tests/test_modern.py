"""Beyond the documents: optimizers, dropout, augmentation, schedules, early stopping, models on
disk with bit-exact resume, the MLPClassifier API, and evaluate/predict/plot on the CLI."""
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from fastmlp import checkpoint
from fastmlp.classifier import MLPClassifier
from fastmlp.config import TrainConfig
from fastmlp.errors import FastMLPError
from fastmlp.schedule import Schedule
from fastmlp.trainer import train

from .conftest import make_dataset


def data32(**kwargs):
    return make_dataset(dtype=np.float32, **kwargs)


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
    with pytest.raises(FastMLPError):
        Schedule("cosine", 1.0, epochs=3, steps_per_epoch=1, warmup_epochs=3)


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
    from fastmlp.inference import predict_proba
    val_acc = (predict_proba(result.model, data.val.x).argmax(axis=1) == data.val.y).mean()
    assert val_acc == best.val_acc  # the returned model is the best epoch's


@pytest.mark.parametrize("settings", [
    dict(batch_size=64, optimizer="adamw", weight_decay=1e-3, dropout=0.2, augment_shift=1,
         schedule="cosine", warmup=1.0),
    dict(batch_size=None, optimizer="momentum", nesterov=True, patience=2),
])
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path, settings):
    data = make_dataset(n_features=784, dtype=np.float32)
    config = TrainConfig(layers=(16, 8), epochs=6, lr=0.05, **settings)
    whole = train(config, data)

    class Interrupt(Exception):
        pass

    def stop_after_3(stats):
        if stats.epoch == 3:
            raise Interrupt

    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(Interrupt):
        train(config, data, stop_after_3, save_path=ckpt, checkpoint_every=1)
    resumed = train(None, data, resume=checkpoint.load(ckpt))
    np.testing.assert_array_equal(resumed.model.params, whole.model.params)
    strip = [dataclasses.replace(e, seconds=0, samples_per_s=0) for e in whole.history]
    assert [dataclasses.replace(e, seconds=0, samples_per_s=0) for e in resumed.history] == strip


def test_save_load_gives_identical_predictions(tmp_path, mnist):
    clf = MLPClassifier((32,), epochs=2, batch_size=256, optimizer="adam", lr=1e-3)
    clf.fit_dataset(mnist)
    clf.save(tmp_path / "m.npz")
    loaded = MLPClassifier.load(tmp_path / "m.npz")
    x = mnist.test.x[:500]
    np.testing.assert_array_equal(loaded.predict_proba(x), clf.predict_proba(x))
    assert loaded.get_params() == clf.get_params()
    assert loaded.dataset_["sha256"] == dict(mnist.sha256)
    assert loaded.loss_curve_ == clf.loss_curve_ and loaded.n_iter_ == 2


def test_classifier_follows_scikit_learn_conventions():
    data = data32()
    clf = MLPClassifier((32,), epochs=30, batch_size=50, lr=0.5)
    assert clf.get_params()["hidden_layers"] == (32,) and not hasattr(clf, "model_")
    assert clf.fit(data.train.x, data.train.y) is clf
    assert len(clf.loss_curve_) == len(clf.validation_scores_) == clf.n_iter_ == 30
    proba = clf.predict_proba(data.test.x)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert (clf.predict(data.test.x) == proba.argmax(axis=1)).all()
    assert clf.score(data.test.x, data.test.y) > 0.8
    assert clf.set_params(lr=0.1) is clf and clf.lr == 0.1
    with pytest.raises(TypeError):
        MLPClassifier(learning_rate=0.1)
    with pytest.raises(FastMLPError, match="not fitted"):
        MLPClassifier().predict(data.test.x)


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable"), (b"PK\x03\x04 broken", "not a readable"),
])
def test_broken_model_files_are_refused(tmp_path, content, message):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(FastMLPError, match=message):
        checkpoint.load(path)


def test_npz_that_is_not_a_model_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(FastMLPError, match="not a fastmlp model"):
        checkpoint.load(tmp_path / "other.npz")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastmlp", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A [64] model trained 3 epochs on MNIST through the CLI, with its run JSON."""
    folder = tmp_path_factory.mktemp("model")
    proc = run("train", "--layers", 64, "--epochs", 3, "--batch-size", 128, "--optimizer",
               "adam", "--lr", 0.002, "--quiet", "--save", folder / "m.npz", "--out",
               folder / "run.json")
    assert proc.returncode == 0, proc.stderr
    return folder


def test_cli_evaluate_prints_accuracy_per_class_and_confusion(saved_model):
    proc = run("evaluate", saved_model / "m.npz", "--plot", saved_model / "cm.png")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    summary = json.loads((saved_model / "run.json").read_text())["summary"]
    assert lines[0] == f"mnist test: accuracy {100 * summary['test_acc']:.2f}% on 10000 images"
    matrix = [list(map(int, line.split())) for line in lines[-10:]]
    assert sum(map(sum, matrix)) == 10000
    assert sum(matrix[k][k] for k in range(10)) == round(summary["test_acc"] * 10000)
    assert (saved_model / "cm.png").read_bytes().startswith(b"\x89PNG")


def test_cli_predict_reads_a_png_made_from_an_mnist_test_image(saved_model, tmp_path, mnist):
    pil = pytest.importorskip("PIL.Image")
    proc = run("predict", saved_model / "m.npz", "data/mnist/t10k-images-idx3-ubyte.gz")
    predicted = [int(line.split(": ")[1].split()[0]) for line in proc.stdout.splitlines()]
    assert len(predicted) == 10000
    # The first test images the model gets right, as pictures: a dark digit on white paper,
    # five times larger than MNIST's, must come back as the same class.
    right = [i for i in range(50) if predicted[i] == mnist.test.y[i]][:5]
    paths = []
    for i in right:
        pixels = (mnist.test.x[i].reshape(28, 28) * 255).astype(np.uint8)
        paths.append(tmp_path / f"digit{i}.png")
        pil.fromarray(255 - pixels).resize((140, 140)).save(paths[-1])
    proc = run("predict", saved_model / "m.npz", *paths)
    assert proc.returncode == 0, proc.stderr
    got = [int(line.split(": ")[1].split()[0]) for line in proc.stdout.splitlines()]
    assert got == [int(mnist.test.y[i]) for i in right]


def test_cli_plot_draws_the_curves(saved_model):
    proc = run("plot", saved_model / "run.json", "-o", saved_model / "curves.png")
    assert proc.returncode == 0, proc.stderr
    assert (saved_model / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_cli_resume_continues_a_checkpoint(tmp_path):
    common = ["--layers", 16, "--batch-size", 512, "--optimizer", "momentum", "--quiet"]
    whole = run("train", *common, "--epochs", 4, "--save", tmp_path / "whole.npz")
    part = run("train", *common, "--epochs", 2, "--save", tmp_path / "part.npz",
               "--checkpoint-every", 1)
    assert whole.returncode == part.returncode == 0
    more = run("train", "--resume", tmp_path / "part.npz", "--epochs", 4, "--quiet")
    assert more.returncode == 0, more.stderr
    refused = run("train", "--resume", tmp_path / "part.npz", "--lr", 0.5)
    assert refused.returncode == 2 and "--lr" in refused.stderr


@pytest.mark.parametrize("args, words", [
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--dropout", "1"], "--dropout"),
    (["--weight-decay", "-1"], "--weight-decay"),
    (["--schedule", "linear"], "--schedule"),
    (["--preset", "slow"], "--preset"),
    (["--checkpoint-every", "2"], "--save"),
    (["--resume", "/no/such.npz"], "no such file"),
])
def test_cli_refuses_bad_modern_flags(args, words):
    proc = run("train", "--epochs", 1, *args)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr
