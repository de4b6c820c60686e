"""OpenBLAS's idle worker threads: make them sleep soon after a call instead of spinning.

After every multi-threaded call, OpenBLAS's workers spin for 2**OPENBLAS_THREAD_TIMEOUT TSC
cycles before they sleep; the default, 28, is ~85 ms at 3.16 GHz. A minibatch epoch calls BLAS
every few tens of microseconds, so at 2 threads the worker never sleeps, and on the 2-vCPU test
machine (an AMD EPYC VM whose two vCPUs behave like one core's two hardware threads: a spinning
thread slowed a serial kernel on the other vCPU from 6.8 to 10.9 ms) it took the caller's speed
away between the calls. Measured, `[128, 64, 32]` batch 128 SGD, float32, 2 threads, best of 7
epochs, one process per setting, in one locked run: 86-90k samples/s at the default (profiled:
the optimizer update 46-49 ms per epoch, the batch gather 64 ms), 143k with 12 (2**12 cycles,
~1.7 us; update 15 ms, gather 49 ms), 127k with 4 (waking the worker for every call costs);
1 thread: 116-121k. Later, four alternating pairs (28 vs 12, one process each, best of 7): the
update 38, 49, 12, 46 -> 9, 16, 13, 13 ms per epoch, but throughput 103-169k -> 134-168k
(medians 136k -> 138k): on this shared host the noise is as large as the gain, which shows
mostly in the worst case. Adam, batch 128, 10 epochs, whole process: 7.4-8.1 s -> 6.1-6.9 s in
three pairs. Large calls do not notice: a sleeping worker wakes in microseconds, and a
full-batch matmul takes milliseconds.

OpenBLAS reads the variable when the library loads (with numpy), so fastmlp/__init__.py imports
this module before anything imports numpy. A value the user set is kept. When numpy was imported
first (`import numpy as np` above `import fastmlp`, as scripts and notebooks often do), the
loaded OpenBLAS is asked to read its environment again and to restart its thread pool, whose
new workers sleep (`_reread`). That matters at full batch too: there numba's kernels run
between the BLAS calls, and the spinning worker takes a core from them. Measured,
`[128, 64, 32]` full batch, float32, 2 threads, 15 epochs per process, three rounds of
numpy-first / numpy-first with `_reread` / fastmlp-first processes in one locked command:
epoch medians 234, 255, 253 ms / 155, 176, 207 ms / 192, 164, 167 ms (later, two rounds of
numpy-first with `_reread` / fastmlp-first: 169, 172 / 173, 165 ms). `in_force()` tells which
value runs (bench reports it).
"""
import os
import sys

# log2 of the cycles an idle OpenBLAS worker spins before sleeping (OpenBLAS clamps it to
# [4, 30]). A scan in one locked run, [128, 64, 32] batch 128 SGD at 2 threads, best of 5 epochs
# (a noisy host: 12 itself gave 124k, 133k and 195k samples/s in three processes): 8: 137k,
# 10: 140k, 14: 192k, 16: 119k, 20: 110k; full batch ([128, 64, 32] 145-209k, [10] 0.72-0.88M)
# showed no trend. 4 (above) is too short, 20 and up too long; 12 sits in the middle.
IDLE_SPIN_LOG2 = 12
VARIABLE = "OPENBLAS_THREAD_TIMEOUT"

# What this module put into the environment: peers (bench.py) run without it, as users would.
INJECTED_ENV = {} if VARIABLE in os.environ else {VARIABLE: str(IDLE_SPIN_LOG2)}
# Whether OpenBLAS will see the variable: it had not been loaded yet when this module ran.
_BEFORE_NUMPY = "numpy" not in sys.modules
os.environ.update(INJECTED_ENV)


def _reread():
    """Have every OpenBLAS already loaded, with its own (pthreads) workers, read the variable
    now: its exported openblas_read_env reads the environment again, blas_thread_shutdown_ stops
    the workers, blas_thread_init starts new ones, which take the new timeout, and
    openblas_thread_timeout says what it read. True if at least one was loaded and every one
    took the value; False where that cannot be done (another BLAS, or an OpenBLAS without
    these functions). It runs once, at `import fastmlp`: like a fork, stopping the workers
    assumes no other thread is inside a BLAS call at that moment."""
    import ctypes

    from threadpoolctl import threadpool_info
    took = []
    for lib in threadpool_info():
        if lib.get("internal_api") != "openblas" or lib.get("threading_layer") != "pthreads":
            continue
        try:
            so = ctypes.CDLL(lib["filepath"])
            so.openblas_read_env()
            so.blas_thread_shutdown_()
            # Start the pool again now, as loading the library did: it reads the new timeout,
            # and raising the thread count later (threadpoolctl) finds the pool it expects.
            so.blas_thread_init()
            took.append(so.openblas_thread_timeout() == IDLE_SPIN_LOG2)
        except (OSError, AttributeError):
            return False
    return bool(took) and all(took)


# Whether _reread made the OpenBLAS that numpy had loaded before this module take the value.
_REREAD = bool(INJECTED_ENV) and not _BEFORE_NUMPY and _reread()


def in_force():
    """The OPENBLAS_THREAD_TIMEOUT OpenBLAS runs with in this process (an int), or None when it
    runs with its own default (28): numpy was loaded first, nobody had set it, and _reread could
    not make the loaded library take it."""
    value = os.environ.get(VARIABLE) if _BEFORE_NUMPY or not INJECTED_ENV or _REREAD else None
    try:
        return None if value is None else int(value)
    except ValueError:  # OpenBLAS reads it with atoi: junk is 0, which means its default
        return None
