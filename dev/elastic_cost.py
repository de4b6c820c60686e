"""The elastic gather's cost per minibatch of 128 MNIST images against the affine gather alone
and against the matmuls of a training step (docs/performance.md, "Elastic distortions").

Each contender runs once per round, in turns, so that a drift of the machine hits all alike;
the figure is each one's median over the rounds, in microseconds per batch. Kernels run at
numba's default threads (every core), the matmuls at numpy's BLAS default.

    python dev/elastic_cost.py [ROUNDS]
"""
import sys
import time

import numpy as np

from fastmlp.data.load import load_dataset
from fastmlp.engine import augment, elastic
from fastmlp.engine.bfloat16 import NONE_2D
from fastmlp.runtime.jit import ready

BATCH = 128
AFFINE = (15.0, 0.15, 10.0, 2.0)  # the record preset's rotate, scale, shear, shift


def step_matmuls(sizes, rng):
    """A function running a step's matmuls for layer sizes `sizes` at BATCH rows (float32):
    forward a @ w, the weight gradient a.T @ dz, the input gradient dz @ w.T (not the first
    layer's)."""
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        a, w = rng.random((BATCH, n_in), np.float32), rng.random((n_in, n_out), np.float32)
        dz = rng.random((BATCH, n_out), np.float32)
        out = (np.empty((BATCH, n_out), np.float32), np.empty((n_in, n_out), np.float32),
               np.empty((BATCH, n_in), np.float32))
        layers.append((k, a, w, dz, out))

    def run():
        for k, a, w, dz, (z, dw, da) in layers:
            np.matmul(a, w, out=z)
            np.matmul(a.T, dz, out=dw)
            if k:
                np.matmul(dz, w.T, out=da)
    return run


def main(rounds=200):
    data = load_dataset("mnist", dtype=np.float32, seed=0)
    x, y = data.train.x, data.train.y
    ready(np.float32)
    ready(np.float32, elastic.GROUP)
    rng = np.random.default_rng(0)
    xb, yb = np.empty((BATCH, 784), np.float32), np.empty(BATCH, np.int32)
    smoothing = elastic.smoothing(4.0, 28)
    batches = [rng.integers(0, len(y), BATCH).astype(np.int64) for _ in range(rounds)]
    contenders = {
        "affine gather": lambda i: augment.gather_affine(
            xb, NONE_2D, yb, x, y, batches[i], 28, *AFFINE, i),
        "elastic gather (34, 4)": lambda i: elastic.gather_elastic(
            xb, NONE_2D, yb, x, y, batches[i], 28, 0.0, 0.0, 0.0, 0.0, i, 34.0, *smoothing, -i),
        "affine + elastic gather": lambda i: elastic.gather_elastic(
            xb, NONE_2D, yb, x, y, batches[i], 28, *AFFINE, i, 34.0, *smoothing, -i),
        "step matmuls [256]": (lambda run: lambda i: run())(
            step_matmuls((784, 256, 10), rng)),
        "step matmuls [1024, 1024]": (lambda run: lambda i: run())(
            step_matmuls((784, 1024, 1024, 10), rng)),
    }
    times = {name: [] for name in contenders}
    for name, fn in contenders.items():  # warm-up
        fn(0)
    for i in range(rounds):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t0)
    for name, t in times.items():
        print(f"{name:28s} {1e6 * np.median(t):8.0f} us per batch of {BATCH} "
              f"(min {1e6 * min(t):.0f})")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
