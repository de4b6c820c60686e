"""The plain path, and what every fast path is: one object that knows, before anything is
allocated, which copies of the inputs it keeps and what its step costs (the run's plan asks it),
and that, built for a model, runs the full-batch step and the evaluation its way.

The plain path runs every matmul in BLAS over every input column; the other paths (pruned
columns, the sparse first layer, the fused pass) take over parts of it and are tested against
it. In mixed precision it is the only path: its inputs are converted to bfloat16 once (the
training split, then each split it evaluates), and its first layer's weight gradient reads
them transposed in place, as the bfloat16 GEMMs take transposed operands.
"""
import copy

import numpy as np

from ..engine import cost
from ..engine.bfloat16 import bfloat16_copy
from ..engine.gemm import OPENBLAS
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

    def __init__(self, x, y, in_place, mixed=False):
        """x (N, n_in), y (N,): the training split; in_place: full batch read in place (no
        minibatch gather, no augmentation); mixed: bfloat16 matmul operands. Nothing is copied
        or allocated here."""
        self.x, self.y, self.in_place, self.mixed = x, y, in_place, mixed
        # Full batch in float reads the same inputs every step: a transposed copy pays for
        # itself in the first layer's weight gradient.
        self.transposed = in_place and not mixed
        self.inputs = self.inputs_t = self.x16 = None

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
        if self.mixed:  # the training and validation inputs in bfloat16
            rows = n + (0 if val_x is None else len(val_x))
            return {"bfloat16 inputs": 2 * rows * n_in}
        return {"transposed inputs": n * n_in * self.x.itemsize if self.transposed else 0}

    def products(self, sizes, rows, training):
        """The BLAS matmuls of a pass over `rows` rows (engine.cost.products)."""
        return cost.products(layer_shapes(sizes), rows, training, transposed=self.transposed)

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
                                      plan.operand, plan.gemm) + plan.batch_size * train_row
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
        matmuls = cost.matmul_seconds(self.products(plan.sizes, rows, False), plan.operand,
                                      plan.gemm)
        other, _ = cost.other_seconds(cost.traffic_bytes(plan, rows, training=False))
        return (matmuls + other) / rows

    # ------------------------------------------------------------------ the run

    def build(self, model, gemm=OPENBLAS):
        """A copy of this path with what it needs to train `model` allocated: the inputs the
        full-batch step reads, its first-layer hook (its matmuls on `gemm`), its sweep."""
        built = copy.copy(self)
        built._allocate(model, gemm)
        return built

    def _allocate(self, model, gemm):
        if self.mixed:
            self.x16 = bfloat16_copy(self.x)  # (N, n_in): gathered from, or read in place
            if self.in_place:
                self.inputs, self.inputs_t = self.x16, self.x16.T
        elif self.in_place:
            self.inputs = self.x if self.kept is None else np.take(self.x, self.kept, axis=1)
            self.inputs_t = np.empty(self.inputs.shape[::-1], self.x.dtype)  # (K, N)
            transpose(self.inputs_t, self.inputs)

    def full_batch_step(self, trainer):
        """One step on the whole split read in place; (loss, correct) of the pre-update model."""
        return trainer.step(trainer.ws, self.inputs, self.inputs_t, trainer.y)

    def evaluator(self, model, x, y, ws, gemm=OPENBLAS):
        """A function giving (accuracy, mean loss) of `model` on the fixed data x, y (ws: a
        forward-only Workspace), its matmuls on `gemm`."""
        return evaluator(model, x, y, ws, gemm)

    def __repr__(self):
        return f"{type(self).__name__}({self.description})"


def evaluator(model, x, y, ws, gemm=OPENBLAS):
    """The plain way to evaluate `model` on fixed data x, y, whatever path trained it (x in
    bfloat16, converted once here, for a mixed-precision model)."""
    x = bfloat16_copy(x) if model.mixed else x
    return lambda: evaluate(model, ws, x, y, gemm=gemm)


def layer_shapes(sizes):
    """(n_in, n_out) of every layer of an MLP of `sizes`."""
    return list(zip(sizes[:-1], sizes[1:]))
