"""Minibatches: each shuffled batch gathered into the workspace by a kernel, shifted or
transformed when augmenting, with draws keyed by the seed and the step that trains on it.

Gathering the next batch on a second thread while the current step runs (two gather buffers
handed over by locks; commit f627a02) was exact but did not pay where it matters. Measured,
float32, batch 128, ms per epoch, medians of 8-12 epochs alternating the two ways in one
process (2-core EPYC): [128, 64, 32] SGD, 2 threads: 367.7 ahead vs 349.1 in turn (the steps
took 360.8 vs 300.7 ms: the worker's gather takes the core from BLAS's second thread),
[256, 128] 739.7 vs 667.0; Adam 413.6 vs 499.2 in the same run but 0.94-1.10x in others;
1 thread: [128, 64, 32] 480.5 vs 498.6, [8] 58.7 vs 81.3. It won only at 1 thread with the
other core idle, which a grid's two 1-thread workers never leave. Gathering with two numba
threads did not pay either (36.4 vs 40.1 ms of gather per epoch).
"""
from ..engine import augment
from ..engine.draws import step_key
from ..engine.kernels import gather_rows
from ..fastpath import prune

# Salt of the shift and affine augmentation draws (dropout uses the layer index, which stays
# far below).
SHIFT_SALT = 63


class Gather:
    """gather(xb, yb, index, step): the rows `index` of x, y into xb, yb, augmented with the
    draws of optimizer step `step`. affine: (rotate, scale, shear) of augment.gather_affine or
    None; kept: the input columns a pruned first layer reads (prune.py), or None for all."""

    def __init__(self, x, y, side, shift, affine, kept, seed):
        self.x, self.y, self.side, self.shift = x, y, side, shift
        self.affine, self.kept, self.seed = affine, kept, seed

    def __call__(self, xb, yb, index, step):
        key = step_key(self.seed, step, SHIFT_SALT)
        if self.affine is not None:
            augment.gather_affine(xb, yb, self.x, self.y, index, self.side, *self.affine,
                                  float(self.shift), key)
        elif self.kept is None:
            gather_rows(xb, yb, self.x, self.y, index, self.side, self.shift, key)
        else:
            prune.gather_columns(xb, yb, self.x, self.y, index, self.kept, self.side,
                                 self.shift, key)
