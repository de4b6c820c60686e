"""`fastmlp plot` on every file fastmlp writes a run's history in (train --out JSON and CSV, a
saved model, a grid's record, an experiments report of one run), and hostile histories refused
in one line with nothing written."""
import json

import numpy as np
import pytest

from fastmlp.cli import main
from fastmlp.settings import TrainConfig
from fastmlp.training.loop import train
from tests.helpers import make_dataset

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(folder, the run's JSON document) of a tiny two-epoch run saved in every format."""
    folder = tmp_path_factory.mktemp("run")
    data = make_dataset(n_train=60, n_val=20, n_test=20, n_features=16, dtype=np.float32)
    result = train(TrainConfig(layers=(4,), epochs=2, batch_size=16), data,
                   save_path=folder / "model.npz")
    document = result.to_dict()
    (folder / "run.json").write_text(json.dumps(document))
    (folder / "run.csv").write_text(result.to_csv())
    (folder / "record.json").write_text(json.dumps({"format": 2, "status": "ok",
                                                    "result": document}))
    (folder / "report.json").write_text(json.dumps({"runs": [{"experiment": "e", "seed": 0,
                                                              **document}]}))
    return folder, document


def plot(capsys, source, out):
    try:
        status = main(["plot", str(source), "-o", str(out)])
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("name", ["run.json", "run.csv", "model.npz", "record.json",
                                  "report.json"])
def test_every_format_fastmlp_writes_is_plotted(run, tmp_path, capsys, name):
    status, err = plot(capsys, run[0] / name, tmp_path / "curves.png")
    assert status == 0, err
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def document_with(edit):
    def make(run):
        document = json.loads(json.dumps(run))
        edit(document)
        return json.dumps(document)
    return make


def entry(**changes):
    return document_with(lambda d: d["history"][1].update(changes))


CSV_HEADER = "epoch,lr,train_loss,train_acc,val_loss,val_acc,test_acc,seconds,samples_per_s\n"

CASES = {  # name: (the file's text from the run's document, suffix, what the line says)
    "missing-key": (document_with(lambda d: d["history"][0].pop("train_loss")), ".json",
                    "history entry 1 lacks train_loss"),
    "text-value": (entry(val_acc="high"), ".json", "history entry 2: val_acc must be a number"),
    "bool-value": (entry(train_loss=True), ".json", "train_loss must be a number"),
    "nan-loss": (entry(train_loss=float("nan")), ".json", "train_loss is nan"),
    "infinite-lr": (entry(lr=float("inf")), ".json", "lr is inf, which cannot be drawn"),
    "accuracy-150": (entry(train_acc=1.5), ".json", "train_acc must be in [0, 1]"),
    "epochs-out-of-order": (entry(epoch=7), ".json", "history entry 2 has epoch 7"),
    "history-empty": (document_with(lambda d: d.update(history=[])), ".json",
                      "no epochs to plot"),
    "history-a-dict": (document_with(lambda d: d.update(history={"1": 0})), ".json",
                       "history must be a list"),
    "entry-a-number": (document_with(lambda d: d["history"].__setitem__(0, 3)), ".json",
                       "history entry 1 must be an object"),
    "no-history": (document_with(lambda d: d.pop("history")), ".json",
                   "not a run written by fastmlp"),
    "newer-schema": (document_with(lambda d: d.update(schema=9)), ".json", "upgrade fastmlp"),
    "other-format": (document_with(lambda d: d.update(format="tensorboard")), ".json",
                     "'tensorboard'"),
    "not-json": (lambda run: "epoch 1: loss 0.3", ".json", "not JSON"),
    "deeply-nested": (lambda run: "[" * 100000, ".json", "not JSON"),
    "a-list": (lambda run: "[1, 2]", ".json", "not a run written by fastmlp"),
    "leaderboard": (lambda run: json.dumps({"leaderboard": []}), ".json", "a sweep leaderboard"),
    "report-of-two": (lambda run: json.dumps({"runs": [run, run]}), ".json",
                      "a report of 2 runs"),
    "binary": (lambda run: "\udcff\udcfe", ".json", "not JSON"),
    "csv-other-header": (lambda run: "a,b\n1,2\n", ".csv", "not a train --out CSV"),
    "csv-text-cell": (lambda run: CSV_HEADER + "1,0.1,x,0.5,0.5,0.5,,1,1\n", ".csv",
                      "row 1: train_loss is 'x', not a number"),
    "csv-short-row": (lambda run: CSV_HEADER + "1,0.1,0.3\n", ".csv", "row 1 has too few"),
    "csv-nul": (lambda run: CSV_HEADER + "1,0.1\0,0.3\n", ".csv", "lr is '0.1\\x00', not a"),
    "csv-binary": (lambda run: "\udcff\udcfe", ".csv", "not a text file"),
    "csv-empty": (lambda run: CSV_HEADER, ".csv", "no epochs to plot"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_history_is_refused_in_one_line(run, tmp_path, capsys, case):
    make, suffix, words = CASES[case]
    source = tmp_path / f"{case}{suffix}"
    source.write_bytes(make(run[1]).encode(errors="surrogateescape"))
    out = tmp_path / "curves.png"
    status, err = plot(capsys, source, out)
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"fastmlp: error: {source}: ") and words in err, err
    assert not out.exists()


def test_a_refused_history_leaves_an_existing_picture_alone(run, tmp_path, capsys):
    out = tmp_path / "curves.png"
    out.write_bytes(b"before")
    source = tmp_path / "bad.json"
    source.write_text("{}")
    assert plot(capsys, source, out)[0] == 2
    assert out.read_bytes() == b"before"


def test_a_model_file_that_is_not_one_is_refused_as_a_model(tmp_path, capsys):
    source = tmp_path / "a.npy"
    np.save(source, np.zeros(3))
    status, err = plot(capsys, source, tmp_path / "curves.png")
    assert status == 2 and "an .npy array, not an .npz" in err, err
