"""Training throughput of [128, 64, 32] on MNIST, float32, 2 threads: one full-batch step
(the documents' epoch) and one epoch at batch 128, each beside the sgemm roofline.

Run for numbers: python -m pytest bench --benchmark-enable
(the ordinary test run executes each case once, untimed, as a smoke test).
"""
import numpy as np
import pytest

from fastmlp.model import MLP
from fastmlp.threads import thread_limits
from fastmlp.trainer import Trainer
from fastmlp.update import SGD

THREADS = 2
LAYERS = (128, 64, 32)


@pytest.mark.parametrize("batch_size", [None, 128], ids=["full-batch", "batch-128"])
def test_train_epoch_throughput(benchmark, mnist32, sgemm_peak, report, batch_size):
    x, y = mnist32.train.x, mnist32.train.y
    model = MLP([x.shape[1], *LAYERS, 10], np.float32).initialize("he", np.random.default_rng(0))
    trainer = Trainer(model, SGD(0.1), x, y, batch_size, np.random.default_rng(0))
    benchmark.group = f"train [128, 64, 32] float32 {THREADS} threads"
    with thread_limits(THREADS):
        trainer.epoch()  # JIT dispatch and first-touch of the workspace, outside the timing
        benchmark.pedantic(trainer.epoch, rounds=10 if batch_size is None else 5, iterations=1)
    if benchmark.disabled:
        return
    seconds = benchmark.stats.stats.min
    samples_per_s = len(y) / seconds
    gflops = model.flops_per_sample() * samples_per_s / 1e9
    peak = sgemm_peak(THREADS)
    fields = dict(samples_per_s=round(samples_per_s), gflops=round(gflops, 1),
                  sgemm_gflops=round(peak, 1), roofline_pct=round(100 * gflops / peak, 1))
    benchmark.extra_info.update(fields)
    report(**fields)
