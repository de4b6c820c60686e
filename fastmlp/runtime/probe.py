"""What this machine can do now and what it has: its GEMM speed, its copy bandwidth, the memory
available to a new allocation, and its CPU's name. Timed figures are measured on the spot:
the machines fastmlp runs on are shared, and their speed drifts."""
import os
import platform

import numpy as np

from .threads import thread_limits
from .timing import best_seconds

GEMM_N = 2048  # the roofline `fastmlp bench` quotes throughput against
PEAK_N = 1024  # the dry run's quick peak: a few 1024^3 matmuls, ~0.1 s
COPY_MIN, COPY_MAX = 2**20, 2**26  # the sizes of the copies a bandwidth is timed on


def gemm_call(dtype, n=GEMM_N):
    """A function running one n x n matmul in `dtype` (sgemm for float32, dgemm for float64)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    return lambda: np.matmul(a, b, out=c)


def gemm_gflops(dtype, threads, n=GEMM_N, repeats=5):
    """GFLOPS of an n x n matmul in `dtype` at `threads` BLAS threads, the best of `repeats`."""
    with thread_limits(threads):
        seconds, = best_seconds([gemm_call(dtype, n)], repeats)
    return 2 * n ** 3 / seconds / 1e9


def copy_bandwidth(nbytes):
    """Bytes per second a plain copy moves now (read + write, best of 5) when it moves
    `nbytes`, within [COPY_MIN, COPY_MAX]: a pass whose arrays fit in the caches runs at the
    caches' speed, a larger one at memory's."""
    nbytes = min(max(int(nbytes), COPY_MIN), COPY_MAX)
    source = np.ones(nbytes // 8, np.float32)
    target = np.empty_like(source)
    seconds, = best_seconds([lambda: np.copyto(target, source)], 5)
    return 2 * source.nbytes / seconds


def available_bytes():
    """The memory this machine can give a new allocation without swapping (Linux's
    MemAvailable), else the free physical pages, else None (unknown: nothing is refused)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def cpu_model():
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


# The CPU flags of matrix or vector units that compute bfloat16 products natively.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def bfloat16_units():
    """The bfloat16 units this CPU has, by their /proc/cpuinfo flag ("amx_bf16",
    "avx512_bf16"); empty where it has none (AMD Zen 3, say) or the flags cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(flag for flag in BF16_FLAGS if flag in flags)
    except OSError:
        pass
    return ()
