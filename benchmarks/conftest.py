"""Fixtures for the benchmarks: data, trainers and JIT warm-up outside the timing, and the
machine's own rooflines measured in the same run (GEMM peak for training, copy bandwidth for
the memory-bound kernels), so every figure is also a share of what this machine can do.

Each case stores samples/s and its roofline share in pytest-benchmark's extra_info and adds a
line to the summary printed at the end of the pytest run.
"""
# First, before numpy loads: the benchmarks measure what the command line runs
# (fastmlp.runtime.blas_idle).
import fastmlp  # noqa: F401, I001

import dataclasses  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastmlp.runtime.probe import gemm_gflops
from fastmlp.data.load import Split, load_dataset

_lines = []


# Training rows of the untimed run (--benchmark-disable, the test suite's default), which
# proves that every case runs: all 48,000 rows made the suite much slower
# (docs/performance.md, "The benchmarks' untimed run").
SMOKE_ROWS = 8192


@pytest.fixture(scope="session")
def mnist_by_dtype(request):
    cache = {}
    smoke = request.config.getoption("benchmark_disable")

    def get(dtype):
        if dtype not in cache:
            data = load_dataset("mnist", dtype=dtype)
            if smoke:
                data = dataclasses.replace(data, train=Split(data.train.x[:SMOKE_ROWS],
                                                             data.train.y[:SMOKE_ROWS]))
            cache[dtype] = data
        return cache[dtype]
    return get


@pytest.fixture(scope="session")
def gemm_peak():
    """GFLOPS of an n x n GEMM per (dtype, threads), measured once per pytest run, on demand."""
    cache = {}

    def peak(dtype, threads):
        if (dtype, threads) not in cache:
            cache[dtype, threads] = gemm_gflops(np.dtype(dtype), threads)
        return cache[dtype, threads]
    return peak


@numba.njit(parallel=True, cache=True)
def _parallel_copy(out, a):
    for i in numba.prange(a.shape[0]):
        out[i] = a[i]


@pytest.fixture(scope="session")
def copy_bandwidth():
    """GB/s (bytes read + written) of a parallel copy moving `nbytes` in all, at the current
    numba thread count: the roofline of a memory-bound kernel moving as many bytes."""
    cache = {}

    def bandwidth(nbytes):
        if nbytes not in cache:
            a = np.ones(max(1, nbytes // 8), np.float32)
            b = np.empty_like(a)
            _parallel_copy(b, a)
            best = float("inf")
            for _ in range(20):
                t0 = time.perf_counter()
                _parallel_copy(b, a)
                best = min(best, time.perf_counter() - t0)
            cache[nbytes] = 2 * a.nbytes / best / 1e9
        return cache[nbytes]
    return bandwidth


@pytest.fixture
def record(benchmark, request):
    """Store figures in extra_info and in the summary at the end of the run (timed runs only)."""
    def add(**fields):
        benchmark.extra_info.update(fields)
        _lines.append(f"{request.node.name}: " + ", ".join(f"{k} {v}" for k, v in fields.items()))
    return add


def pytest_terminal_summary(terminalreporter):
    if _lines:
        terminalreporter.section("fastmlp throughput (measured in this run)")
        for line in _lines:
            terminalreporter.line(line)
