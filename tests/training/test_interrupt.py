"""Ctrl-C and SIGTERM during training: a clean stop after the current step, a resumable
checkpoint written atomically, and a resumed run that ends with the uninterrupted run's weights
bit for bit."""
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastmlp.training import checkpoint
from tests.helpers import cli_argv, run_cli

COMMON = ["--layers", "64", "--batch-size", "64", "--epochs", "4", "--threads", "2",
          "--optimizer", "adam", "--lr", "0.001", "--dropout", "0.1", "--augment-shift", "1"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run both signals interrupt, trained once without interruption."""
    path = tmp_path_factory.mktemp("whole") / "whole.npz"
    whole = run_cli("train", *COMMON, "--quiet", "--save", path)
    assert whole.returncode == 0, whole.stderr
    return checkpoint.load(path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_resume_matches_the_uninterrupted_run(tmp_path, sig,
                                                                      uninterrupted):
    ckpt = tmp_path / "ckpt.npz"
    proc = subprocess.Popen(cli_argv("train", *COMMON, "--save", ckpt), stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    # Wait for the progress bar to show the first finished epoch, then interrupt mid-run.
    seen = ""
    while "1/4" not in seen:
        chunk = proc.stderr.read(1)
        assert chunk, f"training ended before it could be interrupted: {seen}"
        seen += chunk
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err  # 130 for SIGINT, 143 for SIGTERM
    last = err.strip().splitlines()[-1]
    assert ("interrupted" if sig == signal.SIGINT else "terminated") in last
    assert f"fastmlp train --resume {ckpt}" in last
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file

    saved = checkpoint.load(ckpt)
    assert saved.state and 1 <= len(saved.history) < 4

    resumed = run_cli("train", "--resume", ckpt, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    final = checkpoint.load(ckpt)
    np.testing.assert_array_equal(final.model.params, uninterrupted.model.params)
    assert len(final.history) == 4


WRITER = """
import sys, numpy as np
from fastmlp.engine.model import MLP
from fastmlp.settings import TrainConfig
from fastmlp.training import checkpoint
model = MLP([784, 2048, 2048, 10])  # ~23 MB of weights: each write takes a while
generation = 0
while True:
    generation += 1
    model.params[:] = generation
    checkpoint.save(sys.argv[1], model, TrainConfig(layers=(2048, 2048)), [],
                    {"name": str(generation)})
    print(generation, flush=True)
"""


def test_kill_9_during_checkpoint_writes_never_leaves_a_corrupt_checkpoint(tmp_path):
    """A process rewriting a large checkpoint in a loop is killed with SIGKILL at random moments;
    the file in place always loads, whole, as one of the generations written."""
    path = tmp_path / "ckpt.npz"
    rng = np.random.default_rng(0)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip()  # at least one complete write
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait()
        saved = checkpoint.load(path)
        generation = int(saved.dataset["name"])
        assert generation >= 1 and (saved.model.params == generation).all()
