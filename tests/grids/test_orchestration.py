"""Grids from Python: run_sweep and run_experiments run in this process, write their reports,
tell an Observer what happens, read their records back the second time, and raise the command
line's errors only when asked."""
import json

import pytest

from fastmlp.errors import FastMLPError
from fastmlp.grids import Execution, Observer, run_experiments, run_sweep

SWEEP = """\
seeds = 2
[fixed]
dataset = "mnist-slice"
layers = [8]
epochs = 2
batch_size = 256
[space]
lr = [0.05, 0.5]
"""

GRID = """\
seeds = 1
[defaults]
dataset = "mnist-slice"
batch_size = "full"
[[experiment]]
name = "tiny"
layers = [8]
init = "he"
epochs = 2
[experiment.reported]
val_acc = 0.5
"""


class Recorder(Observer):
    """Every call, in order, by method name."""

    def __init__(self):
        self.calls = []

    def __getattribute__(self, name):
        method = object.__getattribute__(self, name)
        if name.startswith("_") or name == "calls" or not callable(method):
            return method

        def recorded(*args):
            object.__getattribute__(self, "calls").append((name, args))
            return method(*args)
        return recorded


def names(recorder):
    return [name for name, _ in recorder.calls]


def test_a_sweep_runs_from_python_and_is_read_back(tmp_path, mnist_slice_dir):
    spec = tmp_path / "sweep.toml"
    spec.write_text(SWEEP)
    where = Execution(workers=0, threads=1, data_dir=str(mnist_slice_dir))
    seen = Recorder()
    report = run_sweep(spec, out_dir=tmp_path / "out", execution=where, observer=seen)
    assert [r["rank"] for r in report.rows] == [1, 2]
    assert {r["settings"] for r in report.rows} == {"lr=0.05", "lr=0.5"}
    assert report.rows[0]["score"]["mean"] >= report.rows[1]["score"]["mean"]
    assert report.text.startswith(f"Sweep `{spec}`: 2 points")
    assert "fastmlp sweep" in report.text  # the command that reproduces it
    assert [p.name for p in report.files] == ["leaderboard.md", "leaderboard.csv",
                                              "leaderboard.json", "sweep.png"]
    assert all(p.is_file() for p in report.files)
    assert json.loads((tmp_path / "out" / "leaderboard.json").read_text())["leaderboard"] \
        == report.rows
    calls = names(seen)
    assert calls[0] == "batch_started" and calls[-1] == "batch_ended"
    assert calls.count("run_started") == calls.count("run_ended") == 4  # 2 points x 2 seeds
    assert calls.count("run_epoch") == 8
    report.raise_for_problems()  # every run finished

    again = Recorder()
    second = run_sweep(spec, out_dir=tmp_path / "out", execution=where, observer=again)
    assert names(again) == ["note"] and "4 of 4 runs read back" in again.calls[0][1][0]
    assert second.rows == report.rows


def test_experiments_run_from_python_and_write_their_page(tmp_path, mnist_slice_dir):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    page = tmp_path / "results.md"
    page.write_text("# Results\n<!-- experiments:start -->\nold\n<!-- experiments:end -->\n")
    report = run_experiments(grid, out_dir=tmp_path / "out", update_page=page,
                             execution=Execution(workers=0, threads=1,
                                                 data_dir=str(mnist_slice_dir)))
    assert [r["name"] for r in report.rows] == ["tiny"]
    assert "| tiny | [8] | he | 2 |" in report.text
    assert f"Produced by `fastmlp experiments {grid} --threads 1`" in report.text
    assert "old" not in page.read_text() and report.text.strip() in page.read_text()
    assert {p.name for p in report.files} == {"experiments.md", "experiments.json",
                                              "experiments.png", "results.md"}


def test_failed_runs_are_raised_when_asked_for_and_when_nothing_finished(tmp_path,
                                                                         mnist_slice_dir):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID + '[[experiment]]\nname = "diverging"\nlayers = [8]\ninit = "he"\n'
                    'epochs = 2\nlr = 1e6\n')
    where = Execution(workers=0, threads=1, data_dir=str(mnist_slice_dir))
    report = run_experiments(grid, out_dir=tmp_path / "out", execution=where)
    assert [r["name"] for r in report.rows] == ["tiny"]  # what finished is reported
    assert "diverging seed 0" in report.text  # and what did not is named
    with pytest.raises(FastMLPError, match="1 of 2 runs failed .*diverging seed 0: training "
                                           "diverged"):
        report.raise_for_problems()
    with pytest.raises(FastMLPError, match="1 of 1 runs failed"):  # nothing to report: raised
        run_experiments(grid, only=["diverging"], out_dir=tmp_path / "out", execution=where)
