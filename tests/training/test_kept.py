"""A run's last write failing (a full disk) does not lose the trained model: it is written
elsewhere and the one line says where; a resume with nothing left to train says so."""
import signal

import numpy as np
import pytest

from fastmlp.atomic import write_atomically
from fastmlp.cli import main
from fastmlp.errors import OutputFailed, TrainingInterrupted
from fastmlp.settings import TrainConfig
from fastmlp.training import checkpoint, loop
from fastmlp.training.loop import train
from tests.helpers import make_dataset

DATA = make_dataset(n_train=60, n_val=20, n_test=20, n_features=16, dtype=np.float32)
CONFIG = TrainConfig(layers=(4,), epochs=2, batch_size=16, optimizer="momentum")


@pytest.fixture
def full(tmp_path, monkeypatch):
    """Directories whose writes fail as on a full disk: `full.add(directory)`; the temporary
    directory is tmp_path/"tmp"."""
    broken = set()

    def write(path, data):
        if path.parent.resolve() in broken:
            raise OutputFailed(f"cannot write {path}: No space left on device")
        write_atomically(path, data)

    monkeypatch.setattr(checkpoint, "write_atomically", write)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(loop.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.chdir(tmp_path / "tmp")
    monkeypatch.setenv("HOME", str(tmp_path / "tmp"))
    return broken


def test_a_failed_final_save_keeps_the_model_elsewhere(tmp_path, full):
    (tmp_path / "disk").mkdir()
    full.add((tmp_path / "disk").resolve())
    with pytest.raises(OutputFailed) as caught:
        train(CONFIG, DATA, save_path=tmp_path / "disk" / "m.npz")
    message, kept = str(caught.value), caught.value.kept
    assert "\n" not in message and "No space left on device" in message
    assert f"the model after epoch 2 was written to {kept} instead" in message
    assert kept.parent == tmp_path / "tmp" and not (tmp_path / "disk" / "m.npz").exists()
    whole = train(CONFIG, DATA)
    np.testing.assert_array_equal(checkpoint.load(kept).model.params, whole.model.params)


def test_a_failed_checkpoint_mid_run_says_how_to_resume_from_where_it_went(tmp_path, full):
    (tmp_path / "disk").mkdir()
    full.add((tmp_path / "disk").resolve())
    with pytest.raises(OutputFailed) as caught:
        train(TrainConfig(**{**CONFIG.__dict__, "epochs": 3}), DATA,
              save_path=tmp_path / "disk" / "m.npz", checkpoint_every=1)
    kept = caught.value.kept
    assert str(caught.value).endswith(f"after epoch 1 was written to {kept} instead (move it "
                                      "where it belongs); training stopped there: resume "
                                      f"with: fastmlp train --resume {kept}")
    assert len(train(None, DATA, resume=checkpoint.load(kept)).history) == 3


def test_when_every_place_fails_the_earlier_checkpoint_is_named(tmp_path, full):
    path = tmp_path / "m.npz"
    train(CONFIG, DATA, save_path=path)
    before = path.read_bytes()
    full.update({tmp_path.resolve(), (tmp_path / "tmp").resolve()})
    with pytest.raises(OutputFailed, match=f"writing it elsewhere failed too; {path} still "
                                           "holds the checkpoint written before"):
        train(TrainConfig(**{**CONFIG.__dict__, "epochs": 3}), DATA,
              resume=checkpoint.load(path), save_path=path)
    assert path.read_bytes() == before


def test_an_interrupt_whose_checkpoint_cannot_be_written_resumes_from_where_it_went(
        tmp_path, full):
    (tmp_path / "disk").mkdir()
    full.add((tmp_path / "disk").resolve())

    def interrupt(stats):  # Ctrl-C after the first epoch, taken by train's handler
        signal.raise_signal(signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as caught:
        train(CONFIG, DATA, interrupt, save_path=tmp_path / "disk" / "m.npz")
    assert caught.value.path.parent == tmp_path / "tmp"
    assert f"resume with: fastmlp train --resume {caught.value.path}" in str(caught.value)
    assert len(checkpoint.load(caught.value.path).history) == 1


@pytest.mark.parametrize("epochs, words", [
    ([], "already has 2 epochs and the run asks for 2; pass --epochs 3 or more"),
    (["--epochs", "1"], "already has 2 epochs and the run asks for 1; pass --epochs 3"),
])
def test_a_resume_with_nothing_left_to_train_is_refused(tmp_path, capsys, epochs, words):
    path = tmp_path / "m.npz"
    train(CONFIG, DATA, save_path=path)
    before = path.read_bytes()
    assert main(["train", "--resume", str(path), "--quiet", *epochs]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: nothing to train: the checkpoint {words}" in err
    assert path.read_bytes() == before


def test_a_resume_of_a_run_that_stopped_early_is_refused(tmp_path, capsys):
    path = tmp_path / "m.npz"
    config = TrainConfig(**{**CONFIG.__dict__, "epochs": 30, "patience": 1, "lr": 1e-6})
    result = train(config, DATA, save_path=path)
    assert len(result.history) < 30
    assert main(["train", "--resume", str(path), "--quiet"]) == 2
    assert "nothing to train: the run stopped early" in capsys.readouterr().err
