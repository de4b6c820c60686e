"""Time to accuracy (`fastmlp bench --to-accuracy`): what is charged, the summary, the command,
and the PyTorch contestant's shift augmentation against the engine's numpy twin."""
import json
import subprocess
import sys

import numpy as np
import pytest

from fastmlp import TrainConfig
from fastmlp.bench.race import SeedRun, differences, summarize, table
from fastmlp.engine.bfloat16 import NONE_2D
from tests import naive
from tests.helpers import error_line, run_cli


def _run(seed, accs, times, contestant="fastmlp"):
    return SeedRun(contestant, seed, [
        {"epoch": k, "val": a, "test": a, "time": {"val": t, "test": t + 0.1}}
        for k, (a, t) in enumerate(zip(accs, times), 1)])


def test_the_target_is_reached_at_the_first_epoch_at_or_above_it():
    run = _run(0, [0.90, 0.98, 0.97, 0.99], [1.0, 2.0, 3.0, 4.0])
    assert run.time_to(0.98, "val") == (2.0, 2)
    assert run.time_to(0.98, "test") == (2.1, 2)
    assert run.time_to(0.995, "val") is None


def test_the_median_counts_seeds_that_missed_as_never():
    runs = [_run(0, [0.97, 0.99], [1, 2]), _run(1, [0.99, 0.99], [1, 2]),
            _run(2, [0.90, 0.95], [1, 2])]
    row, = summarize(runs, 0.98, "val")
    assert (row["reached"], row["seeds"], row["median_seconds"]) == (2, 3, 2)
    assert (row["final_min"], row["final_max"]) == (0.95, 0.99)
    assert row["final_mean"] == pytest.approx((0.99 + 0.99 + 0.95) / 3)
    runs.append(_run(3, [0.90, 0.95], [1, 2]))  # 2 of 4 missed: the median is "never"
    row, = summarize(runs, 0.98, "val")
    assert row["median_seconds"] is None
    assert "not reached" in table([row], TrainConfig(), 0.98, "val")


def test_a_failed_contestant_is_a_row_that_says_why():
    runs = [_run(0, [0.99], [1.0]), SeedRun("torch", 0, error="torch: torch is not installed")]
    rows = summarize(runs, 0.98, "test")
    assert rows[1] == {"contestant": "torch", "error": "torch: torch is not installed"}
    assert "| torch | - |" in table(rows, TrainConfig(), 0.98, "test")


def test_the_table_says_what_the_peers_leave_out_of_the_recipe():
    config = TrainConfig(augment_shift=1, augment_rotate=10.0, ema=0.99)
    assert differences("fastmlp", config) == ""
    assert differences("torch", config) == "no affine augmentation, weight average (EMA)"
    assert "no affine augmentation" in differences("torch-compile", config)
    assert "shift augmentation, affine augmentation" in differences("sklearn", config)
    assert differences("torch", TrainConfig(augment_shift=1)) == ""
    smoothed = TrainConfig(label_smoothing=0.1)
    assert differences("torch", smoothed) == "" and "label smoothing" in differences("sklearn",
                                                                                      smoothed)


@pytest.mark.usefixtures("kernels_ready")  # the kernel is called directly, without a Workspace
def test_torch_label_smoothing_is_the_kernels():
    """The racer's nn.CrossEntropyLoss(label_smoothing=EPS) is the loss and gradient the
    engine's kernel trains on (float64)."""
    torch = pytest.importorskip("torch")
    from fastmlp.engine import kernels
    rng = np.random.default_rng(3)
    logits = 3 * rng.normal(size=(37, 10))
    y = rng.integers(0, 10, 37).astype(np.int32)
    dlogits, db = np.empty_like(logits), np.empty(10)
    loss, _ = kernels.softmax_xent_backward(dlogits, NONE_2D, db, np.zeros((1, 10)), np.zeros(1),
                                            np.zeros(1, np.int64), logits, y, 0.1)
    t = torch.tensor(logits, requires_grad=True)
    want = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(t, torch.from_numpy(y).long())
    want.backward()
    assert loss == pytest.approx(want.item(), rel=1e-12)
    np.testing.assert_allclose(dlogits, t.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_torch_shifts_the_way_the_gather_kernel_does():
    torch = pytest.importorskip("torch")
    from fastmlp.bench.racers import _shifter
    x = torch.rand(16, 28 * 28)
    shifted = _shifter(2, 28)(x, torch.Generator().manual_seed(5))
    d = torch.randint(-2, 3, (16, 2), generator=torch.Generator().manual_seed(5)).numpy()
    for i, (dy, dx) in enumerate(d):
        expected = naive.translate(x[i].numpy().reshape(28, 28), dy, dx).ravel()
        np.testing.assert_array_equal(shifted[i].numpy(), expected)


def test_bench_to_accuracy_runs_whole_processes_and_writes_json(tmp_path):
    out = tmp_path / "race.json"
    proc = run_cli("bench", "--to-accuracy", "0.5", "--metric", "val", "--seeds", "2",
                   "--threads", "1", "--json", out, "--recipe", "--layers", "8", "--epochs",
                   "2", "--batch-size", "256")
    assert proc.returncode == 0, proc.stderr
    assert "time to 50.00% val accuracy" in proc.stdout
    assert "| fastmlp | 2/2 |" in proc.stdout
    record = json.loads(out.read_text())
    assert record["metric"] == "val" and record["config"]["layers"] == [8]
    for run in record["runs"]:
        times = [e["time"]["val"] for e in run["epochs"]]
        assert len(times) == 2 and 0 < times[0] < times[1]
        assert all(0 <= e["val"] <= 1 and 0 <= e["test"] <= 1 for e in run["epochs"])
    # Seeds differ (the split, the initialisation): the runs are not copies of each other.
    assert record["runs"][0]["epochs"] != record["runs"][1]["epochs"]


@pytest.mark.parametrize("args, words", [
    (["--to-accuracy", "1.5"], ["--to-accuracy", "(0, 1]"]),
    (["--to-accuracy", "0.9", "--layers", "8"], ["--recipe"]),
    (["--preset", "fast"], ["--to-accuracy"]),
    (["--to-accuracy", "0.9", "--recipe", "--lr", "-1"], ["--lr"]),
])
def test_bench_to_accuracy_refuses_bad_input_in_one_line(args, words):
    error_line(run_cli("bench", *args), *words)


def test_a_contestant_that_is_not_installed_says_so():
    code = ("import sys, builtins, runpy\n"
            "real = builtins.__import__\n"
            "def no_sklearn(name, *a, **k):\n"
            "    if name.startswith('sklearn'): raise ImportError(name='sklearn')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = no_sklearn\n"
            "sys.argv = ['racers', 'sklearn', '{}', '--threads', '1']\n"
            "runpy.run_module('fastmlp.bench.racers', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert json.loads(proc.stdout) == {"error": "sklearn: sklearn is not installed"}
