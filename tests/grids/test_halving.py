"""Successive halving in `fastmlp sweep`: the [halving] table's rungs and one-line errors, and a
tiny halving sweep through the real command line: the points each rung keeps, a winner that
ends bit for bit as a straight run, a rerun that reads every rung back, and a lost final
record run again from its rung's checkpoint with the same history."""
import dataclasses
import json

import pytest

from fastmlp.cli import main
from fastmlp.grids.halving import Halving
from fastmlp.grids.records import run_key
from fastmlp.grids.runs import Job, run_job
from fastmlp.grids.sweep import load_sweep
from fastmlp.settings import RunOptions
from tests.helpers import raises_one_line

TIMINGS = ("seconds", "samples_per_s")

# Four points, two seeds, rungs at 1, 2 and 4 epochs (eta 2): 4 -> 2 -> 1 points, on 3,000
# MNIST images (2,400 to train: epochs of a few ms). Momentum and minibatches (so the
# optimizer's buffers, the shuffle's RNG and the step count must all come back from the
# checkpoints) and a cosine schedule (so a rung must use the 4-epoch schedule).
SPEC = """\
seeds = 2
[fixed]
dataset = "mnist-slice"
layers = [8]
epochs = 4
batch_size = 500
optimizer = "momentum"
schedule = "cosine"
init = "he"
[space]
lr = [0.02, 0.05, 0.1, 0.2]
[halving]
min_epochs = 1
eta = 2
"""

ON_MNIST = SPEC.replace('dataset = "mnist-slice"\n', "")  # loading it needs no registration


def write(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("table, rungs", [
    ("min_epochs = 1\neta = 2", (1, 2, 4)),
    ("min_epochs = 1", (1, 3, 4)),  # eta 3 by default; the last rung is the epochs
    ("rungs = [3]\neta = 4", (3, 4)),
])
def test_rungs_grow_by_eta_up_to_the_epochs(tmp_path, table, rungs):
    spec = ON_MNIST.split("[halving]")[0] + "[halving]\n" + table + "\n"
    halving = load_sweep(write(tmp_path, spec)).halving
    assert halving.rungs == rungs
    assert [halving.keep(n) for n in (1, 2, 3, 4, 7)] == [
        max(1, -(-n // halving.eta)) for n in (1, 2, 3, 4, 7)]


@pytest.mark.parametrize("edit, words", [
    (lambda s: s.replace("lr = [", "epochs = [2, 4]\nlr = [").replace("epochs = 4\n", ""),
     ["epochs", "not swept"]),
    (lambda s: s.replace("init = \"he\"", "init = \"he\"\npatience = 2"), ["patience"]),
    (lambda s: s.replace("min_epochs = 1", "min_epochs = 1\nrungs = [2]"), ["one of the two"]),
    (lambda s: s.replace("min_epochs = 1", ""), ["one of the two"]),
    (lambda s: s.replace("min_epochs = 1", "rungs = [2, 1]"), ["increase"]),
    (lambda s: s.replace("min_epochs = 1", "rungs = [4]"), ["rungs", "< epochs"]),
    (lambda s: s.replace("eta = 2", "eta = 1"), ["eta", ">= 2"]),
    (lambda s: s.replace("eta = 2", "factor = 2"), ["unknown key 'factor'"]),
])
def test_halving_errors_are_one_line_naming_the_file(tmp_path, edit, words):
    path = write(tmp_path, edit(ON_MNIST))
    raises_one_line(lambda: load_sweep(path), f"{path}: [halving]", *words)


def test_keep_is_the_ceiling_of_a_fraction_and_never_zero():
    assert [Halving((1, 2), 3).keep(n) for n in (1, 3, 4, 9, 10)] == [1, 1, 2, 3, 4]


def numbers(history):
    return [{k: v for k, v in e.items() if k not in TIMINGS} for e in history]


def sweep_cli(capsys, spec, out, data_dir):
    """The command line in this process (its imports and kernels already loaded): (exit
    status, stdout, stderr)."""
    status = main(["sweep", spec, "--workers", 0, "--threads", 1, "--quiet", "--out-dir", out,
                   "--data-dir", data_dir])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def records_by_key(out):
    return {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


def test_a_halving_sweep_keeps_the_best_resumes_bit_for_bit_and_is_read_back(
        tmp_path, capsys, mnist_slice_dir):
    data_dir = mnist_slice_dir
    spec, out = write(tmp_path, SPEC), tmp_path / "out"
    status, stdout, stderr = sweep_cli(capsys, spec, out, data_dir)
    assert status == 0, stderr
    board = json.loads((out / "leaderboard.json").read_text())["leaderboard"]
    assert [r["epochs"] for r in board] == [4, 2, 1, 1]  # further first, whatever the score
    assert [r["rank"] for r in board] == [1, 2, 3, 4]
    found = records_by_key(out)
    assert len(found) == 8 + 4 + 2 and all(r["status"] == "ok" for r in found.values())
    # The two that went on were the best two by the mean validation accuracy at epoch 1.
    at_one = {}
    for r in found.values():
        if r["key"].endswith("-e1"):
            at_one.setdefault(r["experiment"], []).append(r["result"]["summary"]["val_acc"])
    means = sorted(at_one, key=lambda p: -sum(at_one[p]) / 2)
    assert {r["point"] for r in board[:2]} == set(means[:2])
    # The winner's runs end as straight 4-epoch runs, under a straight run's key.
    sweep = load_sweep(spec)
    winner = next(p for p in sweep.points if p.name == board[0]["point"])
    for seed in (0, 1):
        config = dataclasses.replace(winner.config, seed=seed)
        key = run_key(config)
        record = found[key]
        assert record["rung"] == {"epochs": 4, "resumed_from": 2}
        straight = run_job(Job(winner.name, seed, config, key),
                           RunOptions(threads=1, data_dir=str(data_dir)))
        assert numbers(record["result"]["history"]) == numbers(straight["result"]["history"])
        assert record["result"]["summary"]["test_acc"] == \
            straight["result"]["summary"]["test_acc"]
        assert (out / "checkpoints" / f"{key}-e2.npz").is_file()
    # The same command again reads every rung back; a lost final record is run again from its
    # rung's checkpoint, with the same history.
    lost = run_key(config)
    (out / "runs" / f"{lost}.json").unlink()
    status, again, stderr = sweep_cli(capsys, spec, out, data_dir)
    assert status == 0, stderr
    assert "8 of 8 runs read back" in stderr and "4 of 4 runs read back" in stderr
    assert "1 of 2 runs read back" in stderr
    redone = records_by_key(out)[lost]
    assert redone["rung"] == {"epochs": 4, "resumed_from": 2}
    assert numbers(redone["result"]["history"]) == numbers(found[lost]["result"]["history"])
    def scores(text):  # the table without its wall times
        return [line.rsplit("|", 2)[0] for line in text.splitlines() if line.startswith("| ")]
    assert scores(again) == scores(stdout)
    # A damaged rung checkpoint is a missing one: the run starts again from epoch 0, with a
    # note, and ends with the same history, on this rerun and every later one.
    (out / "checkpoints" / f"{lost}-e2.npz").write_bytes(b"PK\x03\x04 truncated")
    (out / "runs" / f"{lost}.json").unlink()
    status, _, stderr = sweep_cli(capsys, spec, out, data_dir)
    assert status == 0, stderr
    assert f"{lost}-e2.npz" in stderr and "starts again from epoch 0" in stderr
    redone = records_by_key(out)[lost]
    assert numbers(redone["result"]["history"]) == numbers(found[lost]["result"]["history"])
