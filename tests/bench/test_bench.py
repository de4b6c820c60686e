"""`fastmlp bench`, the phase profiler and the peers: they run, and what they report adds up."""
import json
import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

from fastmlp import TrainConfig
from fastmlp.bench import profile
from fastmlp.bench.peers import numpy_epoch
from fastmlp.bench.throughput import flops_done
from fastmlp.engine import backward, forward
from fastmlp.engine.model import training_flops
from fastmlp.runtime import blas_idle
from fastmlp.runtime.threads import thread_limits
from fastmlp.training.trainer import make_trainer
from tests import naive
from tests.helpers import make_dataset, sparse_dataset


def test_profile_phases_account_for_the_epoch_and_restore_the_names():
    data = make_dataset(n_train=2000, n_features=784, dtype=np.float32)
    trainer = make_trainer(TrainConfig(layers=(64, 32), batch_size=128), data)
    originals = (forward.matmul, backward.relu_backward, trainer.optimizer.kernel)
    with thread_limits(1):
        trainer.epoch()
        phases = profile.profile_epochs(trainer, epochs=2)
    assert list(phases) == list(profile.PHASES)
    for phase in ("batch gather", "forward matmuls", "fused forward kernels", "loss/softmax",
                  "backward matmuls", "fused backward kernels", "optimizer update"):
        assert phases[phase] > 0, phase
    assert (forward.matmul, backward.relu_backward, trainer.optimizer.kernel) == originals


def test_full_batch_profile_has_no_gather():
    data = make_dataset(n_train=500, n_features=784, dtype=np.float32)
    trainer = make_trainer(TrainConfig(layers=(16,)), data)
    trainer.epoch()
    assert profile.profile_epochs(trainer, epochs=1)["batch gather"] == 0


def test_replaying_the_matmuls_leaves_training_unchanged():
    """record_matmuls runs an epoch, and its replays rewrite activations, deltas and gradients;
    the run must carry on exactly as one that was never measured."""
    data = make_dataset(n_train=700, n_features=784, dtype=np.float64)
    config = TrainConfig(layers=(32, 16), batch_size=128, dtype="float64")
    measured, plain = (make_trainer(config, data) for _ in range(2))
    with thread_limits(1):
        replay = profile.record_matmuls(measured.epoch)
        replay()
        replay()
        plain.epoch()
        measured.epoch()
        plain.epoch()
    np.testing.assert_array_equal(measured.model.params, plain.model.params)


def test_replaying_the_sparse_first_layer_leaves_training_unchanged():
    """On the sparse path the replay also runs the first layer's own kernels (they replace its
    matmuls), and training still carries on as if never measured."""
    data = sparse_dataset(np.float64)
    data.train.x[:, :20] = 0  # choose.choose takes the sparse path where it prunes columns
    config = TrainConfig(layers=(128, 16), dtype="float64")
    measured, plain = (make_trainer(config, data) for _ in range(2))
    assert measured.fastpath.description.startswith("sparse first layer")
    calls = []
    with thread_limits(1), mock.patch.object(measured.fastpath.first, "weight_grad",
                                             spy(measured.fastpath.first.weight_grad, calls)):
        replay = profile.record_matmuls(measured.epoch, measured.fastpath.first)
        replay()
        plain.epoch()
        measured.epoch()
        plain.epoch()
    assert len(calls) == 3  # the epoch, its replay and the next epoch
    np.testing.assert_array_equal(measured.model.params, plain.model.params)


def spy(fn, calls):
    def called(*args):
        calls.append(args)
        return fn(*args)
    return called


def test_flops_done_count_the_multiply_adds_the_path_does():
    """`fastmlp bench` quotes the FLOPs a path really does: the sparse first layer's
    multiply-adds scale with the nonzero pixels, the plain path's with every pixel."""
    data = sparse_dataset(np.float32)
    data.train.x[:, :20] = 0
    config = TrainConfig(layers=(128, 16))
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    n_in, nonzeros = data.train.x.shape[1], np.count_nonzero(data.train.x) / len(data.train.y)
    assert flops_done(plain) == training_flops(plain.model.sizes)
    assert flops_done(plain) - flops_done(fast) == 2 * 2 * (n_in - nonzeros) * 128


def test_numpy_peer_takes_the_same_gradient_step():
    """Equal work: from the same weights, the plain-NumPy peer's full-batch step lands where
    fastmlp's does."""
    data = make_dataset(n_train=600, n_features=20, dtype=np.float64)
    epoch = numpy_epoch([20, 16, 10], None, np.float64, 0.5, data.train.x, data.train.y)
    fast = make_trainer(TrainConfig(layers=(16,), lr=0.5, dtype="float64"), data)
    for w, b, w0, b0 in zip(fast.model.weights, fast.model.biases, epoch.weights, epoch.biases):
        w[...], b[...] = w0, b0
    epoch()
    fast.epoch()
    for w, b, w0, b0 in zip(fast.model.weights, fast.model.biases, epoch.weights, epoch.biases):
        np.testing.assert_allclose(w, w0, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, b0, rtol=1e-10, atol=1e-12)


def test_numpy_peer_learns_with_minibatches():
    data = make_dataset(n_train=600, n_features=20, dtype=np.float32)
    epoch = numpy_epoch([20, 16, 10], 50, np.float32, 0.5, data.train.x, data.train.y)
    before = naive.loss_of(epoch.weights, epoch.biases, data.train.x, data.train.y)
    for _ in range(20):
        epoch()
    assert naive.loss_of(epoch.weights, epoch.biases, data.train.x, data.train.y) < 0.5 * before


def test_bench_command_writes_table_json_and_csv(tmp_path):
    out_json, out_csv = tmp_path / "b.json", tmp_path / "b.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "fastmlp", "bench", "--layers", "10", "--batch-size", "full",
         "1024", "--threads", "1", "2", "--repeats", "1", "--profile",
         "--json", str(out_json), "--csv", str(out_csv)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("| [10]")]
    assert len(table) == 4  # 2 batch sizes x 2 thread counts
    rows = json.loads(out_json.read_text())
    assert [(r["batch_size"], r["threads"]) for r in rows] == [(None, 1), (None, 2),
                                                              (1024, 1), (1024, 2)]
    for r in rows:
        assert r["samples_per_s"] > 0 and 0 < r["roofline_pct"]
        if r["batch_size"] is None:  # MNIST is sparse: [10] at full batch is the fused pass's
            assert r["fast_path"] == "fused pass" and r["matmul_samples_per_s"] is None
            assert 0 < r["stream_gbps"] and 0 < r["stream_peak_gbps"]
        else:  # minibatches of fewer than choose.PRUNE_MIN_ROWS rows prune nothing
            assert r["fast_path"].startswith("plain")
            assert r["matmul_samples_per_s"] > 0 and 0 < r["matmul_roofline_pct"]
        assert r["peers"] == {}
        assert set(r["profile"]) == set(profile.PHASES)
    assert rows[2]["fast_path"] == "plain"
    # The command imports fastmlp before numpy, so OpenBLAS's idle threads sleep (after the
    # cycles this process's environment says, which importing fastmlp here has set).
    assert rows[3]["fast_path"] == (f"{rows[2]['fast_path']}, idle BLAS threads sleep after 2^"
                                    f"{os.environ[blas_idle.VARIABLE]} cycles")
    assert rows[0]["speedup"] == 1.0 and rows[1]["speedup"] > 0
    assert "| forward matmuls |" in proc.stdout
    assert "GB/s stream" in proc.stdout and "of GEMM peak" in proc.stdout
    assert all(r["blas"] == "auto" and r["matmuls"] for r in rows)  # beside the threads
    assert out_csv.read_text().splitlines()[0].startswith("layers,batch_size,dtype,threads")


def test_bench_peers_run_in_processes_of_their_own_and_the_best_counts(tmp_path):
    out_json = tmp_path / "b.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fastmlp", "bench", "--layers", "10", "--batch-size", "1024",
         "--threads", "1", "--repeats", "1", "--peers", "--peer-runs", "2",
         "--json", str(out_json)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(out_json.read_text())
    assert isinstance(row["peers"]["numpy"], float)  # the NumPy peer always runs
    assert len(row["peer_runs"]["numpy"]) == 2  # in two processes; the best counts
    assert row["peers"]["numpy"] == max(row["peer_runs"]["numpy"])
    for peer in ("torch", "torch-bf16"):
        assert isinstance(row["peers"][peer], (float, str))  # a number, or why not
    assert "fastmlp / numpy" in proc.stdout and "(best of 2: " in proc.stdout


def test_bench_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from fastmlp.bench.throughput import BenchRow
    from fastmlp.plots import throughput_png
    rows = [BenchRow([10], None, "float32", t, 1000.0 * t, 1.0, 2.0, 1500.0 * t) for t in (1, 2)]
    assert throughput_png(rows).startswith(b"\x89PNG")
