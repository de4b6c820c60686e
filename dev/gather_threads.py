"""The interpolating gathers (affine, and affine + elastic) on one thread against every thread
of the run, per batch size (docs/performance.md, "Kernel threads for small batches"): where
waking numba's pool starts to pay, which sets batches.INTERPOLATED_MIN_ROWS.

Each batch is gathered by every contender in turn, under the trainer's kernel_threads; the
figure is each one's median over the rounds, in microseconds per image.

    python dev/gather_threads.py [ROUNDS]
"""
import sys
import time
from types import SimpleNamespace

import numpy as np

from fastmlp.data.load import load_dataset
from fastmlp.engine.draws import step_key
from fastmlp.runtime.jit import ready
from fastmlp.runtime.threads import PARALLEL_MIN_ROWS, kernel_threads, thread_limits
from fastmlp.training.batches import SHIFT_SALT, Gather

AFFINE, SHIFT, DISTORTION = (10.0, 0.1, 0.0), 2, (20.0, 4.0)  # the best preset's


def main(rounds=200):
    data = load_dataset("mnist", dtype=np.float32, seed=0)
    x, y = data.train.x, data.train.y
    ready(np.float32)
    rng = np.random.default_rng(0)
    with thread_limits() as threads:
        gathers = {"affine": Gather(x, y, 28, SHIFT, AFFINE, None, 0),
                   "elastic": Gather(x, y, 28, SHIFT, AFFINE, None, 0, distortion=DISTORTION)}
        print(f"us per image, 1 thread / {threads} threads")
        for batch in (8, 16, 32, 64, 128, 256, 512):
            ws = SimpleNamespace(x=np.empty((batch, x.shape[1]), np.float32), x16=None,
                                 y=np.empty(batch, np.int32))
            times = {(name, parallel): [] for name in gathers for parallel in (False, True)}
            with kernel_threads(batch):
                for i in range(rounds):
                    index = rng.integers(0, len(y), batch).astype(np.int64)
                    for (name, parallel), seconds in times.items():
                        # Below Gather's own choice of threads: every thread or one.
                        with kernel_threads(batch, 1 if parallel else PARALLEL_MIN_ROWS):
                            t0 = time.perf_counter()
                            gathers[name]._interpolated(ws, index, i, step_key(0, i, SHIFT_SALT))
                            seconds.append(time.perf_counter() - t0)
            print(f"batch {batch:4d}: " + "  ".join(
                f"{name} {1e6 * np.median(times[name, False]) / batch:5.2f} / "
                f"{1e6 * np.median(times[name, True]) / batch:5.2f}" for name in gathers))


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
