"""The elastic gather's cost per image against the affine gather alone, timed as training calls
them (docs/performance.md, "Elastic distortions"): through training.batches.Gather, under the
run's thread_limits and the trainer's kernel_threads (which runs a batch below
PARALLEL_MIN_ROWS on one thread, so the figures at 1 and 2 threads differ only by what the
second vCPU's idle pool costs).

Each contender gathers one batch per round, in turns, so that a drift of the machine hits all
alike; the figure is each one's median over the rounds, in microseconds per image. Also prints
what building a Gather with distortions costs (the bank of fields, drawn once per run).

    python dev/elastic_cost.py [ROUNDS] [BATCH]
"""
import sys
import time
from types import SimpleNamespace

import numpy as np

from fastmlp.data.load import load_dataset
from fastmlp.runtime.jit import ready
from fastmlp.runtime.threads import kernel_threads, thread_limits
from fastmlp.training.batches import Gather

AFFINE, SHIFT = (15.0, 0.15, 10.0), 2  # the record preset's rotate, scale, shear, shift
DISTORTION = (34.0, 4.0)  # Simard's alpha, sigma


def main(rounds=100, batch=256):
    data = load_dataset("mnist", dtype=np.float32, seed=0)
    x, y = data.train.x, data.train.y
    ready(np.float32)
    ws = SimpleNamespace(x=np.empty((batch, x.shape[1]), np.float32), x16=None,
                         y=np.empty(batch, np.int32))
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, len(y), batch).astype(np.int64) for _ in range(rounds)]
    for threads in (1, 2):
        with thread_limits(threads):
            t0 = time.perf_counter()
            distorting = Gather(x, y, 28, SHIFT, AFFINE, None, 0, distortion=DISTORTION)
            built = time.perf_counter() - t0
            contenders = {"affine gather": Gather(x, y, 28, SHIFT, AFFINE, None, 0),
                          "affine + elastic gather": distorting,
                          "elastic gather alone": Gather(x, y, 28, 0, None, None, 0,
                                                         distortion=DISTORTION)}
            times = {name: [] for name in contenders}
            with kernel_threads(batch):
                for gather in contenders.values():  # warm-up
                    gather(ws, batches[0], 0)
                for i in range(rounds):
                    for name, gather in contenders.items():
                        t0 = time.perf_counter()
                        gather(ws, batches[i], i)
                        times[name].append(time.perf_counter() - t0)
        print(f"{threads} thread(s), batch {batch}; Gather with distortions built in "
              f"{1e3 * built:.0f} ms")
        for name, t in times.items():
            print(f"  {name:24s} {1e6 * np.median(t) / batch:6.1f} us per image "
                  f"(min {1e6 * min(t) / batch:.1f})")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
