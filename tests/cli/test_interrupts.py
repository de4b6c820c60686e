"""SIGINT and SIGTERM at any moment of a command, from its first imports on: one line, status
130 or 143, never a traceback, no file left behind (real processes: signals are the point)."""
import signal
import subprocess
import time

import pytest

from fastmlp.cli import main
from fastmlp.runtime import signals
from tests.helpers import cli_argv


@pytest.mark.parametrize("sig, delay", [
    (signal.SIGINT, 0.12),   # importing the command line
    (signal.SIGTERM, 0.3),   # importing numpy, loading the data
    (signal.SIGINT, 1.2),    # numba's kernels loading, or the first steps
])
def test_a_signal_at_any_moment_ends_in_one_line(tmp_path, sig, delay):
    proc = subprocess.Popen(cli_argv("train", "--epochs", "1", "--save", "m.npz"),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # a fast machine finished first: nothing to check
        return
    assert proc.returncode == 128 + sig, err
    lines = [line for line in err.splitlines() if "%|" not in line and line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fastmlp: "), err
    assert ("interrupted" if sig == signal.SIGINT else "terminated") in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["m.npz"])  # no temporary file


def test_an_error_a_library_makes_of_the_signal_is_reported_as_the_signal(monkeypatch, capsys):
    """numba or Dask may turn the KeyboardInterrupt into another exception: after a signal,
    that exception is the signal's consequence, not a bug."""
    def run(args):
        signals._received.append(signal.SIGTERM)  # as the handler records it
        raise RuntimeError("a library's wrapping of the interrupt")

    monkeypatch.setattr("fastmlp.cli.train.run", run)
    assert main(["train", "--epochs", "1"]) == 143
    assert capsys.readouterr().err == "fastmlp: terminated\n"


def test_without_a_signal_a_bug_keeps_its_traceback(monkeypatch):
    def run(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr("fastmlp.cli.train.run", run)
    with pytest.raises(RuntimeError):
        main(["train", "--epochs", "1"])


class _InterruptingBar:
    """An epoch bar that sends this process SIGINT after the first epoch, as a Ctrl-C would."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def set_postfix(self, **kwargs):
        pass

    def update(self):
        signal.raise_signal(signal.SIGINT)


def test_the_printed_resume_command_runs_as_printed(tmp_path, monkeypatch, capsys,
                                                    mnist_slice_dir):
    """The path with spaces, quotes, a $ and unicode; the run options (data directory,
    threads) and the outputs in the line: split as a shell would, it finishes the run."""
    import shlex

    from fastmlp.cli.progress import epoch_bar
    from fastmlp.training import checkpoint

    odd = tmp_path / "a dir $HOME 'q' \"d\" ü"
    odd.mkdir()
    save, out = odd / "m 1.npz", odd / "run $1.json"
    argv = ["train", "--dataset", "mnist-slice", "--data-dir", mnist_slice_dir, "--layers", 8,
            "--epochs", 3, "--batch-size", 500, "--threads", 1, "--save", save, "--out", out]
    monkeypatch.setattr("fastmlp.cli.train.epoch_bar", _InterruptingBar)
    assert main(argv) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    words = shlex.split(line.split("resume with: ", 1)[1])
    assert words[:2] == ["fastmlp", "train"] and str(save) in words and str(out) in words
    assert "--data-dir" in words and "--threads" in words
    monkeypatch.setattr("fastmlp.cli.train.epoch_bar", epoch_bar)
    assert main(words[1:]) == 0, capsys.readouterr().err
    assert len(checkpoint.load(save).history) == 3 and out.is_file()
