"""One thread count for both pools: OpenBLAS (through threadpoolctl) and numba's kernels.

The two pools never run at the same time (no kernel calls BLAS), so each may use every core.
"""
import os
from contextlib import contextmanager

import numba
from threadpoolctl import threadpool_limits


def default_threads():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@contextmanager
def thread_limits(threads=None):
    """Run the body with `threads` BLAS threads and as many numba threads as numba allows
    (NUMBA_NUM_THREADS, the core count by default); restore both afterwards."""
    threads = default_threads() if threads is None else threads  # >= 1: RunOptions checks
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield threads
    finally:
        numba.set_num_threads(previous)


# Waking numba's pool costs ~20 us a kernel; below this many rows a kernel's work is smaller
# than that (measured on 2 cores: [128, 64, 32] steps at batch 128 and 1024 ran faster with
# single-threaded kernels), so small batches run their kernels on the calling thread.
PARALLEL_MIN_ROWS = 8192


@contextmanager
def kernel_threads(rows):
    """Run kernels over `rows`-row batches single-threaded when the batch is small; BLAS keeps
    its threads either way."""
    if rows >= PARALLEL_MIN_ROWS:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
