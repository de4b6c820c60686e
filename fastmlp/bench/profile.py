"""Where a training step's time goes: each phase timed by wrapping the names the passes call.

The hot loop carries no timing code. For a profile, the matmul and kernel names that
forward.py, backward.py and batches.py look up, the fast paths' own first-layer methods, and the
kernel the trainer's optimizer holds (optim.py binds it when the optimizer is made), are swapped
for timing wrappers for the duration of the measurement, then put back.
"""
import time
from collections import defaultdict
from contextlib import ExitStack
from unittest import mock

from ..engine import augment, backward, elastic, forward
from ..fastpath import fused, prune, sparse
from ..training import batches

PHASES = ("batch gather", "forward matmuls", "fused forward kernels", "loss/softmax",
          "backward matmuls", "fused backward kernels", "fused pass", "optimizer update",
          "other")

# (module, name it calls, phase); profile_epochs adds the optimizer's kernel
_TIMED = [
    (batches, "gather_rows", "batch gather"),
    (augment, "gather_affine", "batch gather"),
    (elastic, "gather_elastic", "batch gather"),
    (prune, "gather_columns", "batch gather"),
    (fused, "fused_step", "fused pass"),
    (fused, "reduce_step", "fused pass"),
    (forward, "matmul", "forward matmuls"),
    # The first layer's own matmuls where a path takes them over (by class: every instance's
    # calls), the sparse ones included.
    (prune.PrunedColumns, "matmul", "forward matmuls"),
    (prune.PrunedColumns, "weight_grad", "backward matmuls"),
    (sparse.SparseRows, "matmul", "forward matmuls"),
    (sparse.SparseFirst, "weight_grad", "backward matmuls"),
    (forward, "bias_relu", "fused forward kernels"),
    (forward, "bias_add", "fused forward kernels"),
    (backward, "softmax_xent_backward", "loss/softmax"),
    (backward, "matmul", "backward matmuls"),
    (backward, "relu_backward", "fused backward kernels"),
]


def _timed(fn, phase, totals):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[phase] += time.perf_counter() - t0
    return wrapper


def profile_epochs(trainer, epochs=3):
    """Seconds per epoch spent in each of PHASES, averaged over `epochs` calls of
    trainer.epoch. "other" is what no phase accounts for: Python between the calls, shuffling,
    dispatch."""
    totals = defaultdict(float)
    timed = [*_TIMED, (trainer.optimizer, "kernel", "optimizer update")]
    with ExitStack() as stack:
        for owner, name, phase in timed:
            stack.enter_context(mock.patch.object(owner, name,
                                                  _timed(getattr(owner, name), phase, totals)))
        t0 = time.perf_counter()
        for _ in range(epochs):
            trainer.epoch()
        wall = time.perf_counter() - t0
    totals["other"] = max(0.0, wall - sum(totals.values()))
    return {phase: totals[phase] / epochs for phase in PHASES}


def record_matmuls(run_epoch, first=None):
    """Run one epoch recording every matmul (operands and output buffer), and every call of the
    `first` layer's own matmuls where a path takes them over (trainer.first: pruned columns, a
    sparse forward and weight gradient); return a function that replays those calls alone.

    The step can go no faster than these calls, so the replay's speed is its ceiling on this
    machine and BLAS; the epoch's time beyond it is what fastmlp adds (kernels, Python).
    Replaying rewrites activations, deltas and gradients but no parameter, and every step
    recomputes those first, so training carries on unchanged afterwards.
    """
    calls = []

    def recording(fn):
        def record(*args, **kwargs):
            calls.append((fn, args, kwargs))
            return fn(*args, **kwargs)
        return record

    with ExitStack() as stack:
        for owner in (forward, backward):
            stack.enter_context(mock.patch.object(owner, "matmul", recording(owner.matmul)))
        for name in ("matmul", "weight_grad") if first is not None else ():
            stack.enter_context(mock.patch.object(first, name,
                                                  recording(getattr(first, name))))
        run_epoch()

    def replay():
        for fn, args, kwargs in calls:
            fn(*args, **kwargs)
    return replay
