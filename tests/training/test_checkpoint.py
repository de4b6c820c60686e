"""Models on disk: an interrupted run resumed from its checkpoint ends bit for bit as the
uninterrupted one, a saved model loads with identical predictions, and broken files are
refused."""
import dataclasses

import numpy as np
import pytest

from fastmlp.classifier import MLPClassifier
from fastmlp.errors import FastMLPError
from fastmlp.settings import TrainConfig
from fastmlp.training import checkpoint
from fastmlp.training.loop import train
from tests.helpers import make_dataset


@pytest.mark.parametrize("settings", [
    dict(batch_size=64, optimizer="adamw", weight_decay=1e-3, dropout=0.2, augment_shift=1,
         schedule="cosine", warmup=1.0, label_smoothing=0.1),
    dict(batch_size=64, optimizer="momentum", augment_rotate=10.0, augment_scale=0.1,
         augment_shear=5.0, augment_shift=1, ema=0.9, patience=3),
    dict(batch_size=None, optimizer="momentum", nesterov=True, patience=2),
    dict(batch_size=64, augment_elastic=34.0, augment_elastic_sigma=3.0, augment_rotate=5.0),
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


def test_a_resumed_run_sends_its_matmuls_where_the_checkpointed_run_did(tmp_path, monkeypatch,
                                                                      mnist_slice_dir, capsys):
    """`fastmlp train --resume` with --blas auto takes the checkpoint's GEMM choices instead of
    timing the libraries again: a machine where timing picks another library than the
    checkpointed run used (MKL on a Xeon, after `--blas openblas`) resumed off by the last bits.
    Choosing anew is made to fail here, so the check holds on any machine."""
    from fastmlp.cli import main
    from fastmlp.engine import gemm

    part = tmp_path / "part.npz"
    words = ["--dataset", "mnist-slice", "--data-dir", mnist_slice_dir, "--layers", "16",
             "--batch-size", "128", "--quiet", "--threads", "1"]
    assert main(["train", *words, "--epochs", "1", "--blas", "openblas", "--save", part]) == 0

    def choose_again(*args, **kwargs):
        raise AssertionError("the resumed run timed the libraries again")
    monkeypatch.setattr(gemm, "choose", choose_again)
    resume = ["train", "--resume", part, "--epochs", "2", "--threads", "1", "--data-dir",
              mnist_slice_dir, "--quiet", "--blas", "auto"]
    assert main([*resume, "--dry-run"]) == 0  # its plan is the resumed run's too
    assert "or a resumed run's" in capsys.readouterr().out
    assert main(resume) == 0
    assert len(checkpoint.load(part).history) == 2
