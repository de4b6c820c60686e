"""Is the second core a whole core? The work of one 2-thread process against two 1-thread
processes at once, on a large float32 GEMM (compute-bound) and on streaming a 150 MB array
(bandwidth-bound: a matrix-vector product over MNIST's float32 training matrix), in turns;
the median of the repeats, each printed.

    python dev/cores.py --repeats 5

The question behind it: a grid of runs on an embedded cluster (one 1-thread run per core) can
beat the same runs one after the other at every core's threads only when two 1-thread
processes do more work per second than one 2-thread process. The figures and what they decided
are in docs/performance.md ("Is the second core a whole core?").
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

GEMM_N = 2048  # 2 x 2048^3 = 17.2 GFLOP per product
GEMM_PRODUCTS = 12
STREAM_ROWS = 48_000  # MNIST's training split: 48,000 x 784 float32, 150.5 MB
STREAM_PASSES = 20


def work(kind, start_at):
    """In a child process (its BLAS threads fixed by the environment): wait for start_at (so
    that two children start together), do the work, print its seconds."""
    import numpy as np

    if kind == "gemm":
        rng = np.random.default_rng(0)
        a = rng.random((GEMM_N, GEMM_N), dtype=np.float32)
        b = rng.random((GEMM_N, GEMM_N), dtype=np.float32)
        out = np.empty_like(a)
        np.matmul(a, b, out=out)  # warm the BLAS threads

        def run():
            for _ in range(GEMM_PRODUCTS):
                np.matmul(a, b, out=out)
    else:
        x = np.ones((STREAM_ROWS, 784), np.float32)
        ones = np.ones(784, np.float32)

        def run():  # a matrix-vector product: BLAS reads the matrix once, at its threads
            for _ in range(STREAM_PASSES):
                x @ ones
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.perf_counter()
    run()
    print(time.perf_counter() - t0)


def together(kind, threads, count):
    """Seconds of each of `count` processes with `threads` BLAS threads, started together."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    start_at = time.time() + 1.5  # after numpy's import and the set-up in every child
    children = [subprocess.Popen([sys.executable, __file__, "--child", kind, str(start_at)],
                                 env=env, stdout=subprocess.PIPE, text=True)
                for _ in range(count)]
    return [float(c.communicate()[0]) for c in children]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work(args.child[0], float(args.child[1]))
        return
    units = {"gemm": (2 * GEMM_N ** 3 * GEMM_PRODUCTS / 1e9, "GFLOP/s"),
             "stream": (STREAM_ROWS * 784 * 4 * STREAM_PASSES / 1e9, "GB/s")}
    modes = [("one process, 1 thread", 1, 1), ("one process, 2 threads", 2, 1),
             ("two 1-thread processes at once", 1, 2)]
    for kind, (amount, unit) in units.items():
        rates = {label: [] for label, _, _ in modes}
        for _ in range(args.repeats):  # in turns
            for label, threads, count in modes:
                seconds = together(kind, threads, count)
                rates[label].append(count * amount / max(seconds))
        for label, _, _ in modes:
            shown = ", ".join(f"{r:.1f}" for r in rates[label])
            print(f"{kind}: {label}: {statistics.median(rates[label]):.1f} {unit} "
                  f"(median; each: {shown})")


if __name__ == "__main__":
    main()
