"""`fastmlp experiments`: a tiny grid through the real command line (table, JSON, PNG and README
agree with each other), grid validation, the verdict rule, the shipped grid, and Ctrl-C in this
process (--workers 0) as on a cluster."""
import json
import os
import signal

import numpy as np
import pytest

from fastmlp.errors import FastMLPError
from fastmlp.grids.experiments import (
    REPORTED_METRICS,
    Experiment,
    load_grid,
    select,
    shipped_grid_path,
)
from fastmlp.grids.report import (
    PAGE_END,
    PAGE_START,
    markdown,
    replace_section,
    spread,
    verdict,
)
from fastmlp.grids.runs import plan_jobs, run_in_process
from fastmlp.plots import experiments_png
from fastmlp.settings import RunOptions, TrainConfig
from tests.helpers import error_line, run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Two small experiments, 3 epochs, 2 seeds: a few seconds. The reported figures are made up.
TINY_GRID = """\
seeds = 2

[defaults]
epochs = 3
init = "he"
optimizer = "sgd"

[[experiment]]
name = "one"
layers = [8]
source = "made up"
[experiment.reported]
val_acc = 0.5

[[experiment]]
name = "two"
layers = [8, 4]
eval_every = 1
note = "a made-up note"
[experiment.reported]
test_acc = 0.4
train_acc = 0.3
epochs = [1, 3]
train_acc_at = [0.1, 0.3]
test_acc_at = [0.2, 0.4]
"""

README = """\
# A project

Intro text.

## Results

<!-- experiments:start -->
placeholder
<!-- experiments:end -->

## After
Tail text.
"""


def write_grid(directory, text=TINY_GRID):
    path = directory / "grid.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One end-to-end run of the tiny grid; the tests below read its outputs."""
    root = tmp_path_factory.mktemp("experiments")
    grid = write_grid(root)
    readme = root / "README.md"
    readme.write_text(README)
    out = root / "results" / "nested"  # created, parents too
    proc = run_cli("experiments", grid, "--out-dir", out, "--threads", 2, "--workers", 0,
                   "--update-docs", readme)
    assert proc.returncode == 0, proc.stderr
    return {"proc": proc, "out": out, "readme": readme,
            "report": json.loads((out / "experiments.json").read_text())}


def table_rows(markdown):
    """The summary table's rows as {experiment: [cells]}."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0].rstrip("*") in ("one", "two"):
            rows[cells[0].rstrip("*")] = cells
    return rows


def final_values(report, name, metric):
    return [r["history"][-1][metric] for r in report["runs"] if r["experiment"] == name]


def test_writes_markdown_json_and_png_and_prints_the_markdown(tiny):
    out = tiny["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "experiments.json", "experiments.md", "experiments.png", "runs"]  # no temporary files
    assert len(list((out / "runs").iterdir())) == 4  # one record per run
    assert tiny["proc"].stdout == (out / "experiments.md").read_text()
    assert (out / "experiments.png").read_bytes().startswith(PNG_MAGIC)
    assert "epoch" in tiny["proc"].stderr  # the progress bar


def test_json_holds_every_runs_full_history(tiny):
    report = tiny["report"]
    assert [(r["experiment"], r["seed"]) for r in report["runs"]] == [
        ("one", 0), ("one", 1), ("two", 0), ("two", 1)]
    for r in report["runs"]:
        assert [e["epoch"] for e in r["history"]] == [1, 2, 3]
        assert r["config"]["seed"] == r["seed"] and r["run"]["threads"] == 2
    two = [r for r in report["runs"] if r["experiment"] == "two"]
    assert all(e["test_acc"] is not None for r in two for e in r["history"])  # eval_every 1
    assert report["seeds"] == [0, 1] and report["machine"]["threads"] == 2
    assert "consistent" in report["verdict_rule"]


def test_table_mean_and_std_are_the_json_runs(tiny):
    report, rows = tiny["report"], table_rows(tiny["proc"].stdout)
    assert set(rows) == {"one", "two"}
    for name, cells in rows.items():
        for column, metric in ((5, "val_acc"), (6, "test_acc")):
            values = final_values(report, name, metric)
            expected = f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}"
            assert cells[column] == expected, (name, metric)
        train = final_values(report, name, "train_acc")
        assert cells[7] == f"{100 * np.mean(train):.2f}"
        summary = next(s for s in report["experiments"] if s["name"] == name)
        assert summary["measured"]["val_acc"]["mean"] == pytest.approx(
            np.mean(final_values(report, name, "val_acc")))


def test_verdicts_follow_the_rule_on_the_runs(tiny):
    report, rows = tiny["report"], table_rows(tiny["proc"].stdout)
    one = verdict(final_values(report, "one", "val_acc"), 0.5)
    assert rows["one"][9] == one
    test = verdict(final_values(report, "two", "test_acc"), 0.4)
    train = verdict(final_values(report, "two", "train_acc"), 0.3)
    assert rows["two"][9] == (test if test == train else f"test {test}; train {train}")
    assert rows["two"][4] == "40.00% test, 30.00% train"
    assert "a made-up note" in tiny["proc"].stdout


def test_epoch_wise_table_comes_from_the_histories(tiny):
    report, text = tiny["report"], tiny["proc"].stdout
    two = [r for r in report["runs"] if r["experiment"] == "two"]
    for epoch, train_reported, test_reported in ((1, "10.00", "20.00"), (3, "30.00", "40.00")):
        cells = []
        for metric in ("train_acc", "test_acc"):
            values = [r["history"][epoch - 1][metric] for r in two]
            cells.append(f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}")
        line = f"| {epoch} | {cells[0]} | {train_reported} | {cells[1]} | {test_reported} |"
        assert line in text.splitlines()


def test_update_readme_replaces_only_the_marked_section(tiny):
    text = tiny["readme"].read_text()
    before, rest = text.split(PAGE_START)
    inside, after = rest.split(PAGE_END)
    assert before == README.split(PAGE_START)[0]
    assert after == README.split(PAGE_END)[1]
    assert inside.strip() == tiny["proc"].stdout.strip()
    assert "placeholder" not in text
    assert "Produced by `fastmlp experiments " in inside and "numba" in inside


def test_epochs_override_quiet_and_no_matplotlib(tmp_path):
    # A matplotlib that cannot be imported stands in for one that is not installed.
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n")
    os = __import__("os")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(shadow.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = tmp_path / "out"
    proc = run_cli("experiments", write_grid(tmp_path), "--only", "two", "--seeds", 1,
                   "--epochs", 1, "--quiet", "--out-dir", out, "--workers", 0, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "matplotlib" in lines[0] and "PNG" in lines[0]  # no bar either
    assert sorted(p.name for p in out.iterdir()) == ["experiments.json", "experiments.md",
                                                     "runs"]
    row = table_rows(proc.stdout)["two"]
    assert row[3] == "1 (documented: 3)" and row[9] == "not compared (1 of 3 epochs)"
    assert "overridden" in proc.stdout and "--epochs 1" in proc.stdout
    assert "one" not in table_rows(proc.stdout)


@pytest.mark.parametrize("edit, words", [
    (lambda g: g.replace('layers = [8]\n', ''), ["experiment 'one'", "missing", "layers"]),
    (lambda g: g.replace('layers = [8]', 'layers = "8"'), ["experiment 'one'", "layers"]),
    (lambda g: g.replace('epochs = 3', 'epochs = 3.5'), ["[defaults]", "epochs"]),
    (lambda g: g.replace('optimizer = "sgd"', 'optimizer = "rmsprop"'),
     ["[defaults]", "optimizer", "'rmsprop'", "sgd"]),
    (lambda g: g.replace('eval_every = 1', 'eval_every = 1\ndropout = 1.5'),
     ["experiment 'two'", "dropout"]),
    (lambda g: g.replace('source = "made up"', 'sauce = "made up"'),
     ["experiment 'one'", "unknown key 'sauce'"]),
    (lambda g: g.replace('val_acc = 0.5', 'val_acc = 50'), ["experiment 'one'", "fraction"]),
    (lambda g: g.replace('test_acc_at = [0.2, 0.4]', 'test_acc_at = [0.2]'),
     ["experiment 'two'", "test_acc_at", "2 epochs"]),
    (lambda g: g.replace('init = "he"', 'init = "zeros"'), ["[defaults]", "init", "zeros"]),
    (lambda g: g.replace('name = "two"', 'name = "one"'), ["'one'", "more than once"]),
    (lambda g: g.replace('seeds = 2', 'seeds = 0'), ["seeds"]),
    (lambda g: g.replace('[defaults]', '[defaults'), ["not valid TOML"]),
])
def test_grid_errors_are_one_line_naming_file_and_experiment(tmp_path, edit, words):
    grid = write_grid(tmp_path, edit(TINY_GRID))
    proc = run_cli("experiments", grid, "--out-dir", tmp_path / "out", "--quiet")
    line = error_line(proc, str(grid), *words)
    assert line.startswith("fastmlp: error: ")
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, words", [
    (["--only", "one", "nope"], ["'nope'", "one, two"]),
    (["--update-docs", "{tmp}/no-markers.md"], ["experiments:start", "no-markers.md"]),
    (["--seeds", "0"], ["--seeds"]),
    (["--epochs", "0"], ["--epochs"]),
    (["--dtype", "float16"], ["--dtype"]),
])
def test_command_line_errors_are_one_line_before_any_run(tmp_path, args, words):
    (tmp_path / "no-markers.md").write_text("# README\nno markers here\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run_cli("experiments", write_grid(tmp_path), "--out-dir", tmp_path / "out", *args)
    error_line(proc, *words)
    assert (tmp_path / "no-markers.md").read_text() == "# README\nno markers here\n"


def test_missing_grid_file_is_one_line(tmp_path):
    proc = run_cli("experiments", tmp_path / "nope.toml")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "nope.toml" in proc.stderr and "not found" in proc.stderr


@pytest.mark.parametrize("values, reported, expected", [
    ([0.80, 0.81, 0.82], 0.81, "consistent"),           # on the mean
    ([0.80, 0.81, 0.82], 0.835, "consistent"),          # 2.5 pp off, inside 3 std (3 pp)
    ([0.80, 0.81, 0.82], 0.845, "differs by -3.5 pp"),  # outside 3 std
    ([0.90, 0.90, 0.90], 0.904, "consistent"),          # no spread: the 0.5 pp floor
    ([0.90, 0.90, 0.90], 0.89, "differs by +1.0 pp"),
    ([0.75], 0.753, "consistent"),                      # one seed: the floor alone
    ([0.75], 0.7600, "differs by -1.0 pp"),
    ([0.9221, 0.9215], 0.6046, "differs by +31.7 pp"),
])
def test_verdict_rule_on_hand_made_numbers(values, reported, expected):
    assert verdict(values, reported) == expected


def test_spread_uses_the_sample_standard_deviation():
    s = spread([0.80, 0.81, 0.82])
    assert s["mean"] == pytest.approx(0.81) and s["std"] == pytest.approx(0.01)
    assert (s["min"], s["max"], s["n"]) == (0.80, 0.82, 3)
    assert spread([0.5])["std"] == 0.0


def test_replace_section_keeps_everything_outside_the_markers():
    replaced = replace_section(README, "| new | table |\n")
    assert replaced == README.replace("placeholder", "| new | table |")
    assert replace_section(replaced, "again") == README.replace("placeholder", "again")


@pytest.mark.parametrize("text", [
    "no markers",
    f"{PAGE_START}\nonly a start",
    f"{PAGE_END}\n{PAGE_START}\nwrong order",
    f"{PAGE_START}\n{PAGE_END}\n{PAGE_START}\n{PAGE_END}\n",
])
def test_replace_section_refuses_without_one_pair_of_markers(text):
    with pytest.raises(FastMLPError, match="experiments:start"):
        replace_section(text, "block")


def test_select_applies_overrides_and_refuses_unknown_names(tmp_path):
    grid = load_grid(write_grid(tmp_path))
    chosen = select(grid, ["two"], epochs=7, dtype="float64")
    assert [e.name for e in chosen] == ["two"]
    config = chosen[0].config
    assert (config.epochs, config.dtype) == (7, "float64")
    assert chosen[0].documented_epochs == 3 and chosen[0].epochs_overridden
    with pytest.raises(FastMLPError, match="'three'.*one, two"):
        select(grid, ["three"])


def test_shipped_grid_has_the_documents_four_experiments():
    grid = load_grid()
    assert grid.seeds == 3
    by_name = {e.name: e for e in grid.experiments}
    assert list(by_name) == ["baseline", "he-10", "deep", "wide-128"]
    expected = {
        "baseline": ((10,), "uniform", 200, {"val_acc": 0.753}),
        "he-10": ((10,), "he", 400, {"val_acc": 0.6046}),
        "deep": ((128, 64, 32), "he", 400, {"val_acc": 0.8263}),
        "wide-128": ((128,), "he", 250, {"test_acc": 0.9221, "train_acc": 0.9179}),
    }
    for name, (layers, init, epochs, figures) in expected.items():
        e = by_name[name]
        assert (e.config.layers, e.config.init, e.config.epochs) == (layers, init, epochs)
        assert (e.config.batch_size, e.config.lr, e.config.val_fraction) == (None, 0.1, 0.2)
        assert {k: e.reported[k] for k in figures} == figures and e.source
    wide = by_name["wide-128"]
    assert wide.config.eval_every == 1 and "assumption" in wide.note
    assert wide.reported["epochs"] == [1, 50, 100, 150, 200, 250]
    assert wide.reported["train_acc_at"] == [0.1248, 0.8534, 0.8930, 0.9043, 0.9122, 0.9179]
    assert wide.reported["test_acc_at"] == [0.3524, 0.8615, 0.8981, 0.9095, 0.9165, 0.9221]


def test_shipped_grid_is_package_data():
    # Installed (not editable) copies need the TOML inside the package.
    import tomllib
    from pathlib import Path
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml")
                              .read_text())
    assert "*.toml" in pyproject["tool"]["setuptools"]["package-data"]["fastmlp"]
    assert shipped_grid_path().is_file()


def test_markdown_renders_from_summary_rows_alone():
    # The renderers need only the JSON-ready rows: a report can be redrawn from the JSON.
    row = {
        "name": "x", "layers": [4], "init": "he", "epochs": 2, "documented_epochs": 2,
        "lr": 0.1, "batch_size": None, "dtype": "float32", "source": None, "note": None,
        "reported": {"val_acc": 0.9}, "seeds": [0, 1], "n_train": 10, "n_val": 5, "n_test": 5,
        "measured": {m: spread([0.5, 0.7]) for m in REPORTED_METRICS}, "wall_seconds_mean": 1.25,
        "verdicts": {"val_acc": verdict([0.5, 0.7], 0.9)}, "epoch_table": [],
        "curves": {"val_acc": {"mean": [0.4, 0.6], "min": [0.3, 0.5], "max": [0.5, 0.7]}},
    }
    text = markdown([row], "Produced by test.")
    assert "| x | [4] | he | 2 | 90.00% validation | 60.00 ± 14.14 |" in text
    assert "| 1.2 s | consistent |" in text or "| 1.3 s | consistent |" in text
    assert text.rstrip().endswith("Produced by test.")
    assert experiments_png([row]).startswith(PNG_MAGIC)


def test_help_lists_the_options():
    proc = run_cli("experiments", "--help")
    assert proc.returncode == 0
    for option in ("--seeds", "--only", "--threads", "--dtype", "--epochs", "--out-dir",
                   "--update-docs", "--quiet"):
        assert option in proc.stdout


def _interrupted_in_process(signals, data_dir):
    """Two 3-epoch runs in this process, `signals` SIGINTs sent to it during the first one's
    first epoch: (what run_in_process returned, the records handed over, the epochs begun)."""
    config = TrainConfig(dataset="mnist-slice", layers=(8,), epochs=3, init="he")
    jobs = plan_jobs([Experiment(name, config, 3) for name in ("first", "second")], 1)
    handed, begun = [], []

    def on_epoch(stats):
        begun.append(stats.epoch)
        if len(begun) == 1:
            for _ in range(signals):
                os.kill(os.getpid(), signal.SIGINT)

    try:
        complete = run_in_process(jobs, RunOptions(threads=1, data_dir=str(data_dir)),
                                  on_epoch=on_epoch,
                                  on_record=lambda job, record: handed.append(record))
    except KeyboardInterrupt:
        complete = "abandoned"
    return complete, handed, begun


def test_ctrl_c_in_process_lets_the_running_run_finish_and_a_second_abandons_it(
        mnist_slice_dir):
    before = signal.getsignal(signal.SIGINT)
    complete, handed, begun = _interrupted_in_process(1, mnist_slice_dir)
    assert complete is False and begun == [1, 2, 3]  # the second run never started
    assert [r["experiment"] for r in handed] == ["first"] and handed[0]["status"] == "ok"
    assert len(handed[0]["result"]["history"]) == 3
    complete, handed, begun = _interrupted_in_process(2, mnist_slice_dir)
    assert complete == "abandoned" and handed == [] and begun == [1]
    assert signal.getsignal(signal.SIGINT) is before  # restored
