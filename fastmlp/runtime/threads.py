"""One thread count for both pools: OpenBLAS (through threadpoolctl) and numba's kernels.

The two pools never run at the same time (no kernel calls BLAS), so each may use every core.
"""
import os
import threading
from contextlib import contextmanager

import numba
from threadpoolctl import threadpool_info, threadpool_limits


def default_threads():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def usable_threads(threads=None):
    """The thread count a run uses when asked for `threads` (None: every core): at most the
    cores this process may run on, since more threads than cores only take turns on them."""
    cores = default_threads()
    return cores if threads is None else min(threads, cores)  # >= 1: RunOptions checks


def threads_in_force():
    """{"blas": the BLAS pool's limit now (None without a BLAS threadpoolctl sees), "numba":
    numba's}: what a run records as the threads it really used."""
    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return {"blas": max(blas, default=None), "numba": numba.get_num_threads()}


@contextmanager
def thread_limits(threads=None):
    """Run the body with usable_threads(threads) BLAS threads and as many numba threads as
    numba allows (NUMBA_NUM_THREADS, the core count by default); restore both afterwards."""
    threads = usable_threads(threads)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield threads
    finally:
        numba.set_num_threads(previous)


# Below this many rows a kernel's work costs less than waking numba's pool, so small batches
# run their kernels on the calling thread (docs/performance.md, "Kernel threads for small
# batches").
PARALLEL_MIN_ROWS = 8192

_run = threading.local()  # numba's thread count outside the outermost kernel_threads


@contextmanager
def kernel_threads(rows, min_rows=PARALLEL_MIN_ROWS):
    """Run kernels over `rows`-row batches single-threaded when the batch has fewer than
    `min_rows` rows, on every thread of the run when not, also inside an outer kernel_threads
    that made them single-threaded (a kernel whose rows cost far more than a plain kernel's
    passes a lower min_rows). BLAS keeps its threads either way."""
    previous = numba.get_num_threads()
    outermost = not hasattr(_run, "threads")
    if outermost:
        _run.threads = previous
    numba.set_num_threads(_run.threads if rows >= min_rows else 1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
        if outermost:
            del _run.threads
