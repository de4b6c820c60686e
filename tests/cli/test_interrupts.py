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
