"""Minibatches: each shuffled batch gathered into the workspace by a kernel, shifted or
transformed when augmenting, with draws keyed by the seed and the step that trains on it.

The gather runs in turn with the step, on the calling thread: gathering the next batch on a
second thread took the core from BLAS's second thread (docs/performance.md, "What was tried at
batch 128").
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
