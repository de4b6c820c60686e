"""Where a training step's time goes: each phase timed by wrapping the names the passes call.

The hot loop carries no timing code. For a profile, the matmul and kernel names that
forward.py, backward.py, update.py and trainer.py look up are swapped for timing wrappers for
the duration of the measurement, then put back.
"""
import time
from collections import defaultdict
from contextlib import ExitStack
from unittest import mock

import numpy as np

from . import backward, forward, trainer, update

PHASES = ("batch gather", "forward matmuls", "fused forward kernels", "loss/softmax",
          "backward matmuls", "fused backward kernels", "optimizer update", "other")

# (module, name it calls, phase)
_TIMED = [
    (trainer, "gather_rows", "batch gather"),
    (forward, "matmul", "forward matmuls"),
    (forward, "bias_relu", "fused forward kernels"),
    (forward, "bias_add", "fused forward kernels"),
    (trainer, "count_correct", "loss/softmax"),
    (backward, "softmax_xent_backward", "loss/softmax"),
    (backward, "matmul", "backward matmuls"),
    (backward, "relu_backward", "fused backward kernels"),
    (update, "sgd_update", "optimizer update"),
    (update, "momentum_update", "optimizer update"),
    (update, "adam_update", "optimizer update"),
]


def _timed(fn, phase, totals):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[phase] += time.perf_counter() - t0
    return wrapper


def profile_epochs(run_epoch, epochs=3):
    """Seconds per epoch spent in each of PHASES, averaged over `epochs` calls of run_epoch.
    "other" is what no phase accounts for: Python between the calls, shuffling, dispatch."""
    totals = defaultdict(float)
    with ExitStack() as stack:
        for module, name, phase in _TIMED:
            stack.enter_context(mock.patch.object(module, name,
                                                  _timed(getattr(module, name), phase, totals)))
        t0 = time.perf_counter()
        for _ in range(epochs):
            run_epoch()
        wall = time.perf_counter() - t0
    totals["other"] = max(0.0, wall - sum(totals.values()))
    return {phase: totals[phase] / epochs for phase in PHASES}


def record_matmuls(run_epoch):
    """Run one epoch recording every matmul (operands and output buffer); return a function that
    replays those calls alone.

    The step can go no faster than its BLAS calls, so the replay's speed is its ceiling on this
    machine and BLAS; the epoch's time beyond it is what fastmlp adds (kernels, Python).
    Replaying rewrites activations, deltas and gradients but no parameter, and every step
    recomputes those first, so training carries on unchanged afterwards.
    """
    calls = []

    def record(a, b, out):
        calls.append((a, b, out))
        return np.matmul(a, b, out=out)

    with mock.patch.object(forward, "matmul", record), \
            mock.patch.object(backward, "matmul", record):
        run_epoch()

    def replay():
        for a, b, out in calls:
            np.matmul(a, b, out=out)
    return replay
