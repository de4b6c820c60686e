"""Training throughput per configuration: hidden layers x batch size x dtype x BLAS threads,
as whole epochs and as single minibatch steps, each beside the GEMM peak measured in the same
run. Each records the fast path it ran: MNIST's always-zero pixels make the BLAS
configurations at full batch run pruned columns or the sparse first layer (minibatches run
plain), and [10] at full batch the fused pass, which is quoted against the streaming read
bandwidth instead of matmuls.

The ordinary test run executes every case once, untimed (--benchmark-disable in pyproject), to
prove it runs. For numbers: python -m pytest benchmarks --benchmark-enable
"""
import pytest

from fastmlp.bench.profile import record_matmuls
from fastmlp.bench.throughput import (
    GEMM_FLOPS,
    STREAM_BYTES,
    flops_done,
    path_description,
    stream_call,
)
from fastmlp.fastpath.csr import csr_bytes
from fastmlp.runtime.probe import gemm_call
from fastmlp.runtime.threads import kernel_threads, thread_limits
from fastmlp.runtime.timing import best_seconds
from fastmlp.settings import TrainConfig
from fastmlp.training.trainer import make_trainer

LAYERS = [(10,), (128,), (128, 64, 32), (512, 256)]
BATCHES = [128, 1024, None]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]


def _trainer(layers, batch_size, data):
    """A fastmlp Trainer on `data`'s training split: He init, plain SGD at lr 0.1."""
    config = TrainConfig(layers=tuple(layers), batch_size=batch_size,
                         dtype=data.train.x.dtype.name)
    return make_trainer(config, data)


def _ids(value):
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return "full" if value is None else str(value)


def _record_rate(record, benchmark, trainer, rows, threads, dtype, gemm_peak, measured=None,
                 path=None):
    """Store samples/s and the share of the GEMM peak, on the FLOPs the trainer's path does
    (flops_done: a sparse first layer does fewer). `measured`: seconds of the same
    work's matmuls alone and of one roofline GEMM, timed in turns just after the benchmark; adds
    the share the matmuls reach alone (the ceiling the BLAS allows), and lets the peak be the best
    seen, so that a slow moment at the run's start cannot inflate a share. (`fastmlp bench`
    also gives the epoch's speed as a share of its matmuls'; here the epoch is timed by
    pytest-benchmark, not in turns with them, so that ratio would drift with the machine.)"""
    if benchmark.disabled:
        return
    seconds = benchmark.stats.stats.min
    gflops = flops_done(trainer) * rows / seconds / 1e9
    peak = gemm_peak(dtype, threads)
    if measured is not None:
        matmuls, gemm = measured
        peak = max(peak, GEMM_FLOPS / gemm / 1e9)
    fields = dict(path=path, samples_per_s=round(rows / seconds), gflops=round(gflops, 1),
                  gemm_peak_gflops=round(peak, 1), roofline_pct=round(100 * gflops / peak, 1))
    if measured is not None:
        fields.update(matmul_roofline_pct=round(100 * gflops * seconds / matmuls / peak, 1))
    record(**fields)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", BATCHES, ids=_ids)
@pytest.mark.parametrize("layers", LAYERS, ids=_ids)
def test_epoch(benchmark, record, mnist_by_dtype, gemm_peak, layers, batch_size, dtype,
               threads):
    """One epoch over the 48,000 training images (at full batch: one gradient step), with the
    path that ran (path_description: at small batches and 2 threads, whether OpenBLAS's idle
    workers sleep)."""
    data = mnist_by_dtype(dtype)
    trainer = _trainer(layers, batch_size, data)
    benchmark.group = f"epoch {list(layers)} batch {_ids(batch_size)} {dtype}"
    with thread_limits(threads):
        if not benchmark.disabled:
            trainer.epoch()  # JIT dispatch and first touch of the workspace, untimed
        benchmark.pedantic(trainer.epoch, rounds=3, iterations=1)
        swept = trainer.fastpath.name == "fused"  # the fused pass runs no matmul to replay
        measured = stream = None
        if not benchmark.disabled and swept:
            stream, = best_seconds([stream_call(dtype)], repeats=3)
        elif not benchmark.disabled:
            measured = best_seconds([record_matmuls(trainer.epoch, trainer.fastpath.first),
                                     gemm_call(dtype)], repeats=3)
    _record_rate(record, benchmark, trainer, len(data.train.y), threads, dtype, gemm_peak,
                 measured, path=path_description(trainer, threads))
    if stream is not None:  # the memory-bound pass against the streaming read bandwidth
        gbps = csr_bytes(data.train.x) / benchmark.stats.stats.min / 1e9
        record(stream_gbps=round(gbps, 1), stream_peak_gbps=round(STREAM_BYTES / stream / 1e9, 1),
               stream_pct=round(100 * gbps * stream * 1e9 / STREAM_BYTES, 1))


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [128, 1024])
@pytest.mark.parametrize("layers", LAYERS, ids=_ids)
def test_step(benchmark, record, mnist_by_dtype, gemm_peak, layers, batch_size, dtype,
              threads):
    """One minibatch step (forward, backward, update) on a batch already in the workspace."""
    data = mnist_by_dtype(dtype)
    trainer = _trainer(layers, batch_size, data)
    ws = trainer.ws
    x = data.train.x[:batch_size]
    ws.x[:] = x if trainer.fastpath.first is None else x[:, trainer.fastpath.kept]  # as gathered
    ws.y[:] = data.train.y[:batch_size]

    def step():  # as Trainer.epoch runs it, minus the gather (timed in kernel_speed.py)
        trainer.step(ws, ws.x, ws.x.T, ws.y)

    benchmark.group = f"step {list(layers)} batch {batch_size} {dtype}"
    with thread_limits(threads), kernel_threads(batch_size):
        step()  # JIT dispatch, untimed
        benchmark.pedantic(step, rounds=20, iterations=5, warmup_rounds=2)
    _record_rate(record, benchmark, trainer, batch_size, threads, dtype, gemm_peak,
                 path=path_description(trainer, threads))
