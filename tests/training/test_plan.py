"""Knowing a run before it runs (training/plan.py): the memory plan against what a real run
allocates, the refusal of a run that cannot fit (engine, classifier, bench, command line), the
time estimate each fast path gives (engine/cost.py), and `fastmlp train --dry-run`."""
import argparse
import tracemalloc

import numpy as np
import pytest

from fastmlp.bench import throughput
from fastmlp.classifier import MLPClassifier
from fastmlp.cli.options import memory_size
from fastmlp.engine import cost, gemm
from fastmlp.errors import FastMLPError, OutOfMemory
from fastmlp.fastpath import choose, sparse
from fastmlp.fastpath.prune import PrunedPath
from fastmlp.settings import TrainConfig
from fastmlp.training import loop, plan, trainer
from fastmlp.units import duration_text, parse_size
from tests.helpers import data32, error_line, run_cli, sparse_dataset


@pytest.mark.parametrize("settings", [
    {"batch_size": 100, "optimizer": "adam"},
    {"batch_size": None, "optimizer": "sgd"},  # full batch: the transposed copy of the inputs
    {"batch_size": 64, "optimizer": "momentum", "augment_shift": 1, "patience": 2},
])
def test_the_plan_is_what_a_real_run_allocates(settings):
    # 196 features: square (14 x 14) images, which shift augmentation needs.
    data = data32(n_train=3000, n_val=1000, n_test=1000, n_features=196)
    config = TrainConfig(layers=(512, 256), epochs=1, dtype="float32", lr=1e-3,
                         **settings)
    planned = plan.plan_for(config, data)
    loop.train(config, data)  # untraced: the first call's kernel loading allocates too
    tracemalloc.start()
    try:
        loop.train(config, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The dataset was allocated before the run: the run itself allocates the rest of the plan.
    expected = planned.total - planned.memory["data"]
    assert abs(peak - expected) <= 0.1 * expected, (peak, planned.memory)


def test_the_plan_counts_the_optimizer_state_per_optimizer():
    params = {}
    for name in ("sgd", "momentum", "adam", "adamw"):
        p = plan.plan_run(TrainConfig(optimizer=name), 784, 10, 48000, 12000, 10000)
        params[name] = p.memory["optimizer state"] / p.memory["parameters"]
    assert params == {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


def test_the_plan_of_a_huge_model_names_its_need():
    p = plan.plan_run(TrainConfig(layers=(100000, 100000)), 784, 10, 48000, 12000, 10000)
    assert p.n_params == 784 * 100000 + 100000 + 100000 ** 2 + 100000 + 100000 * 10 + 10
    with pytest.raises(OutOfMemory) as caught:
        plan.check_fits(p, available=22 * 2**30)
    message = str(caught.value)
    assert message.startswith("[100000, 100000] needs ")
    assert "parameters 37.5, gradients 37.5" in message
    assert message.endswith("; 22.0 GiB available")
    assert "\n" not in message
    with pytest.raises(OutOfMemory, match="the limit given is 1.0 MiB$"):
        plan.check_fits(plan.plan_run(TrainConfig(), 784, 10, 48000, 12000, 10000),
                        max_memory=2**20, available=2**40)


def test_unknown_available_memory_refuses_nothing():
    plan.check_fits(plan.plan_run(TrainConfig(), 784, 10, 48000, 12000, 10000), available=None)
    assert plan.available_bytes() is None or plan.available_bytes() > 0


def test_classifier_and_bench_refuse_what_does_not_fit(monkeypatch):
    monkeypatch.setattr(plan, "available_bytes", lambda: 10_000)
    data = data32(n_features=16)
    with pytest.raises(OutOfMemory, match=r"needs .*; 9.8 KiB available"):
        MLPClassifier(layers=(8,), epochs=1).fit(data.train.x, data.train.y)
    with pytest.raises(OutOfMemory, match="available"):
        throughput.measure(TrainConfig(layers=(8,), batch_size=64), data, 1)


def test_the_classifier_takes_a_memory_limit():
    data = data32(n_features=16)
    with pytest.raises(OutOfMemory, match=r"needs .*; the limit given is 1000 B|KiB"):
        MLPClassifier(layers=(8,), epochs=1).fit(data.train.x, data.train.y, max_memory=1000)
    with pytest.raises(OutOfMemory, match="the limit given is 1.0 KiB"):
        MLPClassifier(layers=(8,), epochs=1).fit(data.train.x, data.train.y, max_memory="1KiB")
    with pytest.raises(FastMLPError, match="max_memory: 'lots' is not a size"):
        MLPClassifier(layers=(8,), epochs=1).fit(data.train.x, data.train.y, max_memory="lots")
    fitted = MLPClassifier(layers=(8,), epochs=1).fit(data.train.x, data.train.y,
                                                       max_memory="1GiB")
    assert fitted.n_iter_ == 1


def test_a_memory_error_while_allocating_is_one_out_of_memory_line(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 37.5 GiB")

    monkeypatch.setattr(trainer, "MLP", no_memory)
    config = TrainConfig(layers=(8,), epochs=1, dtype="float32")
    with pytest.raises(OutOfMemory, match=r"^\[8\] needs .*; allocating it failed$"):
        loop.train(config, data32(n_features=16))


@pytest.mark.parametrize("text, size", [("4GiB", 4 * 2**30), ("500MB", 500 * 10**6),
                                        ("1.5G", int(1.5 * 2**30)), ("1000", 1000),
                                        ("64k", 65536), ("2 TB", 2 * 10**12)])
def test_memory_sizes(text, size):
    assert memory_size(text) == size


@pytest.mark.parametrize("text", ["lots", "0", "-1GB", "5XB", "", "inf"])
def test_bad_memory_sizes(text):
    with pytest.raises(argparse.ArgumentTypeError):
        memory_size(text)
    with pytest.raises(ValueError):
        parse_size(text)


# --- the time estimate ---------------------------------------------------------------------

@pytest.mark.parametrize("dead", [0, 24])  # input columns zero in every training row
@pytest.mark.parametrize("batch_size, augment_shift", [(None, 0), (None, 1), (32, 0)])
def test_the_estimate_times_the_matmuls_the_engine_calls(monkeypatch, batch_size, augment_shift,
                                                         dead):
    # The products the estimate times have the shapes and layouts of a real step's matmuls,
    # also where the first layer's training matmuls read only the kept columns (prune.py).
    data = data32(n_features=64)  # 8 x 8 images: shifts need square ones
    data.train.x[:, :dead] = 0
    config = TrainConfig(layers=(12, 8), batch_size=batch_size, augment_shift=augment_shift,
                         epochs=1, dtype="float32")
    calls = []
    call = gemm.Gemm.__call__

    def recording(self, a, b, out):
        calls.append((a.shape[0], a.shape[1], b.shape[1], gemm.layout(a, b)))
        return call(self, a, b, out)
    monkeypatch.setattr(choose, "PRUNE_MIN_ROWS", 1)  # the minibatch prunes too
    made = trainer.make_trainer(config, data)
    monkeypatch.setattr(gemm.Gemm, "__call__", recording)  # every matmul goes through one
    made.epoch()
    monkeypatch.undo()
    monkeypatch.setattr(choose, "PRUNE_MIN_ROWS", 1)
    p = plan.plan_for(config, data)
    assert p.fastpath.n_kept == made.fastpath.n_kept
    assert bool(p.fastpath.n_kept) == (dead > 0)
    step = p.fastpath.products(p.sizes, p.batch_size, True)
    assert calls[:len(step)] == step
    assert len(calls) == len(step) * -(-len(data.train.y) // p.batch_size)


def test_the_fused_pass_is_estimated_by_its_sweep(monkeypatch):
    # The fused pass runs no matmul: the estimate charges its sweep, timed on the training rows
    # (stubbed here: 2 us a training row, 1 us a validation row; 1 GB/s copies).
    data = sparse_dataset(np.float32)
    config = TrainConfig(layers=(10,), epochs=3, dtype="float32")
    p = plan.plan_for(config, data)
    assert trainer.make_trainer(config, data).fastpath.description == "fused pass"
    assert p.fastpath.name == "fused" and "sparse inputs" in p.memory
    assert "transposed inputs" not in p.memory
    rows, val_rows, ns = p.fastpath.kernel_seconds(p.sizes)  # really timed
    assert rows > 0 and val_rows > 0 and ns > 0
    monkeypatch.setattr(p.fastpath, "kernel_seconds", lambda sizes: (2e-6, 1e-6, 5.0))
    monkeypatch.setattr(cost, "copy_bandwidth", lambda nbytes: 1e9)
    e = p.estimate()
    assert e.matmul_seconds == 0 and e.sweep_ns == 5.0
    update = 3 * p.memory["parameters"]  # plain SGD: no optimizer state
    assert e.other_seconds == pytest.approx(700 * 2e-6 + update / (cost.KERNEL_SHARE * 1e9)
                                            + cost.STEP_SECONDS)
    assert e.eval_seconds == pytest.approx(150 * 1e-6)  # the validation split, swept
    assert e.once_seconds > e.eval_seconds  # and the test split at the end, the plain way


def test_the_trainer_takes_the_path_its_plan_chose(monkeypatch):
    """make_trainer hands the plan's fast path to the Trainer, which does not ask again
    (choosing scans the inputs); plain=True still means plain."""
    data = sparse_dataset(np.float32)
    data.train.x[:, :20] = 0  # pruned columns, which the sparse path needs
    config = TrainConfig(layers=(128, 8), epochs=1, dtype="float32")
    p = plan.plan_for(config, data)
    assert p.fastpath.name == "sparse"
    assert trainer.make_trainer(config, data, plain=True, plan=p).fastpath.name == "plain"

    def asked(*args, **kwargs):
        raise AssertionError("choose asked again")
    monkeypatch.setattr(plan, "choose", asked)
    made = trainer.make_trainer(config, data, plan=p)
    assert made.fastpath.description.startswith("sparse first layer")
    assert made.fastpath is not p.fastpath  # built for this trainer; the plan's stays unbuilt
    assert p.fastpath.first is None


def test_the_sparse_path_is_estimated_by_its_kernels(monkeypatch):
    # Its first layer runs no matmul: the estimate charges its two CSR kernels, timed on the
    # training rows (stubbed here: 3 us a row forward, 5 us the weight gradient; BLAS free).
    data = sparse_dataset(np.float32)
    data.train.x[:, :20] = 0  # pruned columns, which the sparse path needs
    config = TrainConfig(layers=(128, 8), epochs=3, dtype="float32")
    p = plan.plan_for(config, data)
    fast = trainer.make_trainer(config, data)
    assert fast.fastpath.description.startswith("sparse first layer")
    assert p.fastpath.name == "sparse"
    # The bytes of every array the path keeps: the training CSR copy's (its first layer) and
    # the validation one's (the evaluator's sparse.SparseRows).
    first_layer = fast.fastpath.first
    kept_arrays = [*vars(first_layer.rows).values(), first_layer.splits, first_layer.part,
                   *vars(sparse.SparseRows(data.val.x)).values()]
    assert p.memory["sparse inputs"] == sum(a.nbytes for a in kept_arrays)
    kept = p.fastpath.n_kept
    pruned = PrunedPath(data.train.x, data.train.y, True, p.fastpath.kept)
    first = [(700, kept, 128, "nn"), (kept, 700, 128, "nn")]
    assert pruned.products(p.sizes, 700, True) == \
        [first[0], *p.fastpath.products(p.sizes, 700, True), first[1]]
    assert all(t > 0 for t in p.fastpath.kernel_seconds(p.sizes))  # really timed
    monkeypatch.setattr(p.fastpath, "kernel_seconds", lambda sizes: (8e-6, 3e-6))
    monkeypatch.setattr(cost, "matmul_seconds", lambda products, operand, gemm_: 0.0)
    e = p.estimate()
    assert e.matmul_seconds == pytest.approx(700 * 8e-6)
    assert e.eval_seconds > 150 * 3e-6


def test_the_probe_is_capped_in_every_dimension_and_in_volume():
    assert gemm.probe_shape(100, 784, 10) == [100, 784, 10]
    assert gemm.probe_shape(48000, 784, 128) == [4096, 784, 128]
    m, k, n = gemm.probe_shape(10**5, 10**5, 10**5)
    assert m * k * n <= gemm.PROBE_VOLUME and max(m, k, n) <= gemm.PROBE_DIM


def test_the_estimate_adds_up(monkeypatch):
    # With the timings replaced by a fixed speed (1 GFLOP/s of multiply-adds, 1 GB/s copies),
    # the estimate is plain arithmetic on the products and the traffic.
    monkeypatch.setattr(cost, "matmul_seconds", lambda products, operand, gemm_:
                        sum(m * k * n for m, k, n, _ in products) / 1e9)
    monkeypatch.setattr(cost, "copy_bandwidth", lambda nbytes: 1e9)
    p = plan.plan_run(TrainConfig(layers=(32,), batch_size=100, epochs=2), 784, 10, 4800, 1200,
                      1000)
    e = p.estimate()
    macs = 784 * 32 + 32 * 10  # per sample and pass
    # forward and weight gradient of both layers; the input gradient of the second only
    assert e.matmul_seconds == pytest.approx(4800 * (2 * macs + 32 * 10) / 1e9)
    steps = 4800 / 100
    step_bytes = cost.traffic_bytes(p, 100, gathered=784)  # minibatches gather every column
    other = step_bytes / (cost.KERNEL_SHARE * 1e9) + cost.STEP_SECONDS
    assert e.other_seconds == pytest.approx(steps * other)
    eval_rows = 2200  # the largest evaluation: the validation and test splits at the end
    per_sample = (eval_rows * macs / 1e9 + cost.traffic_bytes(p, eval_rows, training=False)
                  / (cost.KERNEL_SHARE * 1e9) + cost.STEP_SECONDS) / eval_rows
    assert e.eval_seconds == pytest.approx(1200 * per_sample)
    assert e.once_seconds == pytest.approx(2200 * per_sample)
    assert e.run_seconds == pytest.approx(2 * (e.train_seconds + e.eval_seconds)
                                          + e.once_seconds)
    adam = plan.plan_run(TrainConfig(layers=(32,), batch_size=100, optimizer="adam", lr=1e-3),
                         784, 10, 4800, 1200, 0)
    assert cost.traffic_bytes(adam, 100) == cost.traffic_bytes(p, 100) + \
        4 * p.memory["parameters"]  # its two state arrays are read and written too


def test_the_estimate_times_this_machine():
    p = plan.plan_run(TrainConfig(layers=(32,), batch_size=128, epochs=2), 784, 10, 4800, 1200,
                      0)
    e = p.estimate()
    assert e.matmul_seconds > 0 and e.other_seconds > 0 and e.eval_seconds > 0
    assert e.matmul_gflops > 0 and e.bandwidth > 0


@pytest.mark.parametrize("seconds, text", [(0.0263, "0.0263 s"), (95, "95 s"), (400, "6.7 min"),
                                           (1e5, "27.8 h"), (1.3e7, "150 days")])
def test_durations(seconds, text):
    assert duration_text(seconds) == text


def test_a_run_that_cannot_fit_is_one_line_exit_1_and_writes_nothing(tmp_path):
    proc = run_cli("train", "--layers", "100000", "100000", "--epochs", "1", "--out",
                   tmp_path / "run.json", "--save", tmp_path / "model.npz", cwd=tmp_path)
    line = error_line(proc, "[100000, 100000] needs", "GiB (parameters 37.5, gradients 37.5",
                      "available", status=1)
    assert "Traceback" not in line
    assert list(tmp_path.iterdir()) == []
    proc = run_cli("train", "--epochs", "1", "--max-memory", "1MB", "--out",
                   tmp_path / "run.json", cwd=tmp_path)
    error_line(proc, "[128, 64, 32] needs", "the limit given is 976.6 KiB", status=1)
    assert list(tmp_path.iterdir()) == []


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path):
    proc = run_cli("train", "--dry-run", "--layers", "256", "--batch-size", "128",
                   "--optimizer", "adam", "--epochs", "3", "--out", tmp_path / "run.json",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "784 -> 256 -> 10, float32, batch 128 of 48,000 training samples, adam" in out
    assert "784 x 256 + 256" in out and "203,530" in out  # 784*256+256 + 256*10+10
    flops = 2 * (2 * (784 * 256 + 256 * 10) + 256 * 10)
    assert f"training FLOPs: {flops:,} per sample" in out
    for part in ("parameters", "gradients", "optimizer state", "training workspace", "data",
                 "evaluation workspace", "total"):
        assert f"\n  {part} " in out
    assert "transposed inputs" not in out  # minibatches: no transposed copy
    assert "best weights" not in out  # no early stopping: no copy
    assert "s for 3 epochs" in out and "GEMM peak" in out
    assert list(tmp_path.iterdir()) == []
    # A dry run of what cannot fit prints the plan, then refuses as the run would.
    proc = run_cli("train", "--dry-run", "--max-memory", "1MB", cwd=tmp_path)
    assert proc.returncode == 1 and "total" in proc.stdout
    error_line(proc, "the limit given is", status=1)


def test_the_refusal_comes_before_the_first_allocation(monkeypatch):
    # MLP is the first thing make_trainer allocates; a refused plan never reaches it.
    monkeypatch.setattr(trainer, "MLP", lambda *a, **k: pytest.fail("allocated"))
    monkeypatch.setattr(plan, "available_bytes", lambda: 1)
    config = TrainConfig(layers=(8,), epochs=1, dtype="float32")
    with pytest.raises(OutOfMemory):
        loop.train(config, data32(n_features=16))


def test_the_memory_plan_counts_the_elastic_field_bank():
    def memory(**settings):
        return plan.plan_run(TrainConfig(batch_size=128, **settings), 784, 10, 48000, 12000,
                             10000).memory
    assert memory()["elastic field bank"] == 0
    # 2,048 pairs of 28 x 28 float32 fields (engine.elastic.field_bank)
    assert memory(augment_elastic=20.0)["elastic field bank"] == 2048 * 2 * 28 * 28 * 4


def test_a_mixed_precision_run_says_when_it_cannot_use_bfloat16_units(monkeypatch):
    """No note with the units and MKL, or in float32; without the units, the libraries it runs
    on; with the units but without MKL, the install that would use them."""
    data = data32()
    mixed = plan.plan_for(TrainConfig(layers=(8,), dtype="mixed_bfloat16"), data)
    plain = plan.plan_for(TrainConfig(layers=(8,)), data)
    monkeypatch.setattr(plan, "bfloat16_units", lambda: True)
    monkeypatch.setattr(plan.blas, "available", lambda: ("openblas", "mkl"))
    assert plan.bfloat16_note(mixed) is None and plan.bfloat16_note(plain) is None
    monkeypatch.setattr(plan.blas, "available", lambda: ("openblas",))
    assert "pip install 'fastmlp[mkl]'" in plan.bfloat16_note(mixed)
    assert plan.bfloat16_note(plain) is None
    monkeypatch.setattr(plan, "bfloat16_units", lambda: False)
    assert plan.bfloat16_note(mixed).startswith("this CPU has no bfloat16 units")
