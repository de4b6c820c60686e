"""The plain path, and what every fast path is: one object that knows, before anything is
allocated, which copies of the inputs it keeps and what its step costs (the run's plan asks it),
and that, built for a model, runs the full-batch step and the evaluation its way.

The plain path runs every matmul in BLAS over every input column; the other paths (pruned
columns, the sparse first layer, the fused pass) take over parts of it and are tested against
it.
"""
import copy

import numpy as np

from ..engine import cost
from ..engine.inference import evaluate
from ..engine.kernels import transpose
from ..engine.workspace import EVAL_ROWS


class PlainPath:
    """Every column, every way. `first` is the hook through which a path takes over the first
    layer's matmuls in forward.py and backward.py (None: BLAS does them); `kept`, the input
    columns the first layer's training matmuls read (None: every one)."""
    name = "plain"
    first = None
    kept = None

    def __init__(self, x, y, in_place):
        """x (N, n_in), y (N,): the training split; in_place: full batch read in place (no
        minibatch gather, no augmentation). Nothing is copied or allocated here."""
        self.x, self.y, self.in_place = x, y, in_place
        self.inputs = self.inputs_t = None

    @property
    def description(self):
        """How `fastmlp bench` names the path."""
        return "plain"

    @property
    def columns_per_row(self):
        """The input columns the first layer's multiply-adds take per row (None: every one);
        `fastmlp bench` counts the FLOPs the path really does with it."""
        return None

    @property
    def n_kept(self):
        return 0 if self.kept is None else len(self.kept)

    # ------------------------------------------------------------------ the plan

    def copies(self, val_x):
        """{what: bytes} of the copies of the inputs the path keeps beside the dataset (val_x:
        the validation inputs, which some paths copy too)."""
        n, n_in = self.x.shape
        # Full batch reads the same inputs every step: a transposed copy pays for itself in the
        # first layer's weight gradient.
        return {"transposed inputs": n * n_in * self.x.itemsize if self.in_place else 0}

    def products(self, sizes, rows, training):
        """The BLAS matmuls of a pass over `rows` rows (engine.cost.products)."""
        return cost.products(layer_shapes(sizes), rows, training, transposed=self.in_place)

    def kernel_seconds(self, sizes):
        """(seconds per training row, per evaluated row) of the path's own kernels that stand
        for matmuls, timed now; none here."""
        return 0.0, 0.0

    def estimate(self, plan):
        """The run's time (engine.cost.Estimate), timed now at the thread limits in force."""
        steps = plan.n_train / plan.batch_size
        per_row = self._eval_row_seconds(plan)
        train_row, eval_row = self.kernel_seconds(plan.sizes)
        matmuls = cost.matmul_seconds(self.products(plan.sizes, plan.batch_size, True),
                                      plan.dtype) + plan.batch_size * train_row
        gathered = None if self.in_place else (self.n_kept or plan.sizes[0])
        other, bandwidth = cost.other_seconds(cost.traffic_bytes(plan, plan.batch_size,
                                                                 gathered=gathered))
        per_row += eval_row
        return cost.Estimate(steps * matmuls, steps * other, plan.n_eval * per_row,
                             plan.n_once * per_row, plan.epochs,
                             plan.flops_per_sample * plan.batch_size / matmuls / 1e9, bandwidth)

    def _eval_row_seconds(self, plan):
        """Seconds per evaluated row of the BLAS matmuls and kernels of evaluation's chunks."""
        rows = min(max(plan.n_eval, plan.n_once), EVAL_ROWS)
        matmuls = cost.matmul_seconds(self.products(plan.sizes, rows, False), plan.dtype)
        other, _ = cost.other_seconds(cost.traffic_bytes(plan, rows, training=False))
        return (matmuls + other) / rows

    # ------------------------------------------------------------------ the run

    def build(self, model):
        """A copy of this path with what it needs to train `model` allocated: the inputs the
        full-batch step reads, its first-layer hook, its sweep."""
        built = copy.copy(self)
        built._allocate(model)
        return built

    def _allocate(self, model):
        if self.in_place:
            self.inputs = self.x if self.kept is None else np.take(self.x, self.kept, axis=1)
            self.inputs_t = np.empty(self.inputs.shape[::-1], self.x.dtype)  # (K, N)
            transpose(self.inputs_t, self.inputs)

    def full_batch_step(self, trainer):
        """One step on the whole split read in place; (loss, correct) of the pre-update model."""
        return trainer.step(trainer.ws, self.inputs, self.inputs_t, trainer.y)

    def evaluator(self, model, x, y, ws):
        """A function giving (accuracy, mean loss) of `model` on the fixed data x, y (ws: a
        forward-only Workspace)."""
        return lambda: evaluate(model, ws, x, y)

    def __repr__(self):
        return f"{type(self).__name__}({self.description})"


def layer_shapes(sizes):
    """(n_in, n_out) of every layer of an MLP of `sizes`."""
    return list(zip(sizes[:-1], sizes[1:]))
