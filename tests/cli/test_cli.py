"""The real command line in a subprocess: outputs, the summary line, and one-line errors."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import error_line, run_cli, run_python


def test_train_writes_json_history_and_prints_a_summary(tmp_path):
    out = tmp_path / "run.json"
    proc = run_cli("train", "--layers", 32, "--epochs", 3, "--batch-size", 1000, "--threads",
                   2, "--eval-every", 2, "--out", out)
    assert proc.returncode == 0, proc.stderr
    summary = proc.stdout.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("val ") and "samples/s" in summary[0]
    assert "epoch" in proc.stderr  # the progress bar
    report = json.loads(out.read_text())
    assert report["config"]["layers"] == [32] and report["config"]["batch_size"] == 1000
    history = report["history"]
    assert [e["epoch"] for e in history] == [1, 2, 3]
    assert [e["test_acc"] is not None for e in history] == [False, True, True]
    assert report["summary"]["val_acc"] == history[-1]["val_acc"] > 0.8
    assert f"{100 * report['summary']['val_acc']:.2f}%" in summary[0]
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left beside it


def test_train_writes_csv_when_asked_and_quiet_means_no_bar(tmp_path):
    out = tmp_path / "run.csv"
    proc = run_cli("train", "--layers", 16, "--epochs", 2, "--quiet", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = list(csv.DictReader(out.open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train_loss", "train_acc", "val_acc", "test_acc", "seconds"} <= set(rows[0])


@pytest.mark.parametrize("args, words", [
    (["--layers"], "--layers"),
    (["--layers", "0"], "--layers"),
    (["--layers", "12", "x"], "--layers"),
    (["--epochs", "-1"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--batch-size", "0"], "--batch-size"),
    (["--threads", "0"], "--threads"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--dataset", "cifar"], "--dataset"),
    (["--init", "zeros"], "--init"),
    (["--dtype", "float16"], "--dtype"),
    (["--out", "/no/such/dir/run.json"], "does not exist"),
    (["--data-dir", "{tmp}"], "not found"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    out = tmp_path / "run.json"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run_cli("train", "--epochs", 1, *args, "--out", out) if "--out" not in args else \
        run_cli("train", *args)
    error_line(proc, words)
    assert "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("command, args, flag", [
    ("train", ["--batch", "128"], "--batch"),
    ("train", ["--warm", "1"], "--warm"),
    ("train", ["--lay", "8"], "--lay"),
    ("sweep", ["spec.toml", "--work", "0"], "--work"),
    ("evaluate", ["model.npz", "--spl", "val"], "--spl"),
])
def test_abbreviated_flags_are_refused(tmp_path, command, args, flag):
    """argparse would take `--batch` for `--batch-size`; a script relying on that breaks the
    day a flag starting the same is added, so no parser accepts an abbreviation."""
    for name in ("spec.toml", "model.npz"):
        (tmp_path / name).touch()
    proc = run_cli(command, *args, cwd=tmp_path)
    error_line(proc, "unrecognized arguments", flag)


def test_output_path_that_is_a_directory_is_refused(tmp_path):
    proc = run_cli("train", "--epochs", 1, "--out", tmp_path)
    assert proc.returncode == 2 and "is a directory" in proc.stderr


def test_help_lists_the_options():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    for option in ("--layers", "--batch-size", "--threads", "--dtype", "--out", "--quiet"):
        assert option in proc.stdout


def test_the_process_ends_with_the_status_of_main_and_its_output_flushed():
    """The command ends its process without the interpreter's teardown (exit_now: that
    took 0.5 s after a run that trained); what it wrote but had not flushed (a pipe is block
    buffered) still arrives, and the exit status is main's."""
    code = ("import sys; from fastmlp.runtime.exit import exit_now; print('out', end=''); "
            "sys.stderr.write('err'); exit_now(3)")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], env=buffered, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out", "err")


def test_a_quiet_bar_takes_the_calls_without_importing_tqdm():
    code = ("import sys\nfrom fastmlp.cli.progress import epoch_bar, run_bar\n"
            "for make in (epoch_bar, run_bar):\n"
            "    with make(3, True) as bar:\n"
            "        bar.set_description('x'); bar.set_postfix(val='1%'); "
            "bar.set_postfix_str('y'); bar.update()\n"
            "        bar.write('kept', file=sys.stderr)\n"
            "print('tqdm' in sys.modules)\n")
    out, err = run_python(code)
    assert out.strip() == "False" and err == "kept\nkept\n"
