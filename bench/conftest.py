"""Shared fixtures for the benchmarks: the data, and the machine's own sgemm peak measured in
the same run, so that every throughput is also quoted as a share of what BLAS can do here."""
import time

import numpy as np
import pytest

from fastmlp.data import load_dataset
from fastmlp.threads import thread_limits

SGEMM_N = 2048
_results = []


def sgemm_gflops(threads, n=SGEMM_N, repeats=7):
    """Best-of-`repeats` GFLOPS of an n x n float32 matmul at `threads` BLAS threads."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    c = np.empty((n, n), np.float32)
    best = float("inf")
    with thread_limits(threads):
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


@pytest.fixture(scope="session")
def mnist32():
    return load_dataset("mnist", dtype=np.float32)


@pytest.fixture(scope="session")
def sgemm_peak():
    """GFLOPS of sgemm per thread count, measured once per session on demand."""
    cache = {}

    def peak(threads):
        if threads not in cache:
            cache[threads] = sgemm_gflops(threads)
        return cache[threads]
    return peak


@pytest.fixture
def report(request):
    """Record a line for the summary table printed at the end of the session."""
    def add(**fields):
        _results.append((request.node.name, fields))
    return add


def pytest_terminal_summary(terminalreporter):
    if not _results:
        return
    terminalreporter.section("fastmlp throughput (measured in this run)")
    for name, fields in _results:
        terminalreporter.line(f"{name}: " + ", ".join(f"{k} {v}" for k, v in fields.items()))
