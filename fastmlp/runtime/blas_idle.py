"""OpenBLAS's idle worker threads: make them sleep soon after a call instead of spinning.

After every multi-threaded call OpenBLAS's workers spin for 2**OPENBLAS_THREAD_TIMEOUT cycles
(28 by default, tens of milliseconds) before they sleep. A minibatch epoch calls BLAS every few
tens of microseconds, so the spinning worker never sleeps and takes the core from whatever the
caller does between the calls; at full batch, from numba's kernels (docs/performance.md,
"OpenBLAS's idle threads").

OpenBLAS reads the variable when the library loads, so fastmlp/__init__.py imports this module
before anything imports numpy; a value the user set is kept. When numpy was imported first, the
loaded OpenBLAS is made to read its environment again and restart its pool (`_reread`;
docs/performance.md, "numpy imported before fastmlp"). `in_force()` tells which value runs.
"""
import os
import sys

# log2 of the cycles an idle OpenBLAS worker spins before sleeping (OpenBLAS clamps it to
# [4, 30]): 4 wakes the worker for every call, 20 and up spin too long; 12 sits between
# (docs/performance.md, "OpenBLAS's idle threads").
IDLE_SPIN_LOG2 = 12
VARIABLE = "OPENBLAS_THREAD_TIMEOUT"

# What this module put into the environment: peers (bench/peers.py) run without it, as users
# would.
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
