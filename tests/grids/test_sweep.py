"""`fastmlp sweep`: the spec's grid and random points, its one-line errors, the ranking on
hand-made numbers, and a tiny sweep through the real command line (in-process, resumed)."""
import csv
import dataclasses
import io
import json
from types import SimpleNamespace

import pytest

from fastmlp.grids.leaderboard import rank
from fastmlp.grids.runs import Run
from fastmlp.grids.sweep import load_sweep
from fastmlp.training.result import EpochStats
from tests.helpers import error_line, raises_one_line, run_cli

SPEC = """\
seeds = 2
[fixed]
layers = [8]
epochs = 2
[space]
lr = { log_range = [0.001, 1.0, 4] }
init = ["he", "uniform"]
augment_shift = { range = [0, 2, 1] }
"""

RANDOM = """\
seeds = 1
search = "random"
trials = 6
random_seed = 3
[fixed]
epochs = 4
[space]
lr = { log_uniform = [0.001, 1.0] }
dropout = { uniform = [0.0, 0.5] }
"""


def write(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_a_grid_is_every_combination_with_inclusive_ranges(tmp_path):
    sweep = load_sweep(write(tmp_path, SPEC))
    assert (sweep.seeds, sweep.metric, sweep.search) == (2, "val_acc", "grid")
    assert len(sweep.points) == 4 * 2 * 3
    lrs = sorted({p.config.lr for p in sweep.points})
    assert lrs == [0.001, 0.01, 0.1, 1.0]
    shifts = {p.config.augment_shift for p in sweep.points}
    assert shifts == {0, 1, 2} and all(isinstance(s, int) for s in shifts)
    first = sweep.points[0]
    assert first.name == "p001" and first.note == "lr=0.001, init=he, augment_shift=0"
    assert all(p.config.layers == (8,) and p.config.epochs == 2 for p in sweep.points)


def test_random_search_is_seeded_and_within_bounds(tmp_path):
    text = RANDOM
    one, again = load_sweep(write(tmp_path, text)), load_sweep(write(tmp_path, text))
    assert [p.note for p in one.points] == [p.note for p in again.points]
    other = load_sweep(write(tmp_path, text.replace("random_seed = 3", "random_seed = 4")))
    assert [p.note for p in other.points] != [p.note for p in one.points]
    assert len(one.points) == 6
    for p in one.points:
        assert 0.001 <= p.config.lr <= 1.0 and 0.0 <= p.config.dropout <= 0.5


@pytest.mark.parametrize("edit, words", [
    (lambda s: "metric = \"test_acc\"\n" + s, ["metric", "never chooses"]),
    (lambda s: s.replace('init = ["he", "uniform"]', 'init = { uniform = [0, 1] }'),
     ["[space] init", "search = \"random\""]),
    (lambda s: s.replace("lr = {", "learning_rate = {"), ["learning_rate", "unknown setting"]),
    (lambda s: s.replace("epochs = 2", "epochs = 2\ninit = \"he\""), ["init", "both"]),
    (lambda s: s.replace("[0.001, 1.0, 4]", "[1.0, 0.001, 4]"), ["log_range", "low < high"]),
    (lambda s: s.replace("[0.001, 1.0, 4]", "[0.0, 1.0, 4]"), ["log_range", "low > 0"]),
    (lambda s: s.replace("[0, 2, 1]", "[0, 2]"), ["range", "3 numbers"]),
    (lambda s: s.replace("epochs = 2", "epochs = 2\nwarmup = 3.0"), ["point", "warmup"]),
    (lambda s: s.replace("epochs = 2", "epochs = 0"), ["[fixed] epochs"]),
    (lambda s: s.replace("seeds = 2", "seeds = 2\ntrials = 3"), ["trials", "random"]),
    (lambda s: s.replace("[space]", "[spaces]"), ["unknown key 'spaces'"]),
    (lambda s: s.replace("[fixed]", "[fixed"), ["not valid TOML"]),
])
def test_spec_errors_are_one_line_naming_the_file(tmp_path, edit, words):
    path = write(tmp_path, edit(SPEC))
    raises_one_line(lambda: load_sweep(path), str(path), *words)


def _run(name, seed, val_acc, val_loss):
    final = EpochStats(1, 0.1, 1.0, 0.5, val_loss, val_acc, 0.4, 1.0, 1.0)
    return Run(name, seed, SimpleNamespace(final=final, wall_seconds=2.0), 10, 10)


def test_ranking_by_the_mean_over_seeds_best_first_and_unfinished_points_last(tmp_path):
    sweep = load_sweep(write(tmp_path, SPEC.replace("augment_shift = { range = [0, 2, 1] }\n",
                                                    "")))
    runs = [_run("p001", 0, 0.5, 1.0), _run("p001", 1, 0.7, 0.2),  # mean 0.6, loss 0.6
            _run("p002", 0, 0.65, 0.5), _run("p002", 1, 0.65, 0.5),  # mean 0.65, loss 0.5
            _run("p003", 0, 0.1, 0.9)]
    rows = rank(sweep, runs)
    assert [r["point"] for r in rows[:3]] == ["p002", "p001", "p003"]
    assert [r.get("rank") for r in rows[:4]] == [1, 2, 3, None]
    assert rows[1]["score"]["mean"] == pytest.approx(0.6) and rows[1]["score"]["n"] == 2
    assert rows[2]["seeds"] == [0] and "score" not in rows[3]
    by_loss = rank(dataclasses.replace(sweep, metric="val_loss"), runs)
    assert [r["point"] for r in by_loss[:3]] == ["p002", "p001", "p003"]  # lower is better
    assert rows[0]["test_acc"] == pytest.approx(0.4)  # shown beside, never ranked by


def test_a_tiny_sweep_end_to_end_in_process_and_resumed(tmp_path):
    spec = write(tmp_path, "seeds = 1\n[fixed]\nlayers = [8]\nepochs = 1\n"
                           "[space]\nlr = [0.05, 0.5]\n")
    out = tmp_path / "out"
    proc = run_cli("sweep", spec, "--workers", 0, "--threads", 1, "--quiet", "--out-dir", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "leaderboard.csv", "leaderboard.json", "leaderboard.md", "runs", "sweep.png"]
    assert proc.stdout == (out / "leaderboard.md").read_text()
    table = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text())))
    board = json.loads((out / "leaderboard.json").read_text())["leaderboard"]
    assert [r["point"] for r in table] == [r["point"] for r in board]
    assert [r["rank"] for r in table] == ["1", "2"]
    assert float(table[0]["mean"]) >= float(table[1]["mean"])
    assert {r["settings"] for r in table} == {"lr=0.05", "lr=0.5"}
    again = run_cli("sweep", spec, "--workers", 0, "--quiet", "--out-dir", out)
    assert again.returncode == 0 and "2 of 2 runs read back" in again.stderr
    def table_lines(text):
        return [line for line in text.splitlines() if line.startswith("| ")]
    assert table_lines(again.stdout) == table_lines(proc.stdout)  # read back, not run again
    # Another sweep file at the same --out-dir would replace this one's leaderboard: refused.
    other = tmp_path / "other" / "sweep.toml"
    other.parent.mkdir()
    other.write_text(spec.read_text())
    board_before = (out / "leaderboard.json").read_bytes()
    error_line(run_cli("sweep", other, "--workers", 0, "--quiet", "--out-dir", out),
               "leaderboard.json is the report of", "pass another --out-dir")
    assert (out / "leaderboard.json").read_bytes() == board_before


def test_dry_run_lists_the_points_and_a_bad_spec_is_one_line(tmp_path):
    proc = run_cli("sweep", write(tmp_path, SPEC), "--dry-run")
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[-1] == "24 points x 2 seeds = 48 runs"
    error_line(run_cli("sweep", write(tmp_path, "metric = \"test_acc\"\n" + SPEC)), "metric")
    error_line(run_cli("sweep", tmp_path / "nope.toml"), "nope.toml")


def test_cluster_options_errors_are_one_line_before_any_run(tmp_path):
    spec = write(tmp_path, SPEC)
    error_line(run_cli("sweep", spec, "--scheduler-file", tmp_path / "nope.json", "--out-dir",
                       tmp_path / "out"), "scheduler file", "nope.json")
    assert not (tmp_path / "out").exists()
    error_line(run_cli("sweep", spec, "--workers", 2, "--scheduler", "tcp://127.0.0.1:1"),
               "not allowed with")
    error_line(run_cli("sweep", spec, "--workers", -1), "--workers")
