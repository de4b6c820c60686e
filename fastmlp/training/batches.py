"""Minibatches: each shuffled batch gathered into the workspace by a kernel, shifted or
transformed when augmenting, with draws keyed by the seed and the step that trains on it.

The gather runs in turn with the step: gathering the next batch on a second thread took the
core from BLAS's second thread (docs/performance.md, "What was tried at batch 128"). The
interpolating gathers (affine, elastic) cost several microseconds an image, so from
INTERPOLATED_MIN_ROWS images on they use every thread of the run, where the other kernels of a
minibatch run on one (docs/performance.md, "Kernel threads for small batches").
"""
import numpy as np

from ..engine import augment, elastic
from ..engine.bfloat16 import NONE_2D
from ..engine.draws import step_key
from ..engine.kernels import gather_rows, gather_rows16
from ..fastpath import prune
from ..runtime.jit import ready
from ..runtime.threads import kernel_threads

# Salts of the shift and affine augmentation draws, of each image's pick of an elastic field
# pair, and (at step 0) of the run's bank of field pairs (dropout uses the layer index, which
# stays far below).
SHIFT_SALT = 63
ELASTIC_SALT = 62
BANK_SALT = 61
# From this many images an interpolating gather pays for waking numba's pool.
INTERPOLATED_MIN_ROWS = 64


class Gather:
    """gather(ws, index, step): the rows `index` of x, y into the workspace's minibatch (ws.x,
    ws.y; in mixed precision ws.x16, from x16, the inputs' bfloat16 copy), augmented with the
    draws of optimizer step `step`. affine: (rotate, scale, shear) of augment.gather_affine or
    None; kept: the input columns a pruned first layer reads (prune.py), or None for all;
    distortion: (alpha, sigma) of elastic.gather_elastic, or None; its bank of fields is
    drawn here, once per run."""

    def __init__(self, x, y, side, shift, affine, kept, seed, x16=None, distortion=None):
        self.x, self.y, self.side, self.shift = x, y, side, shift
        self.affine, self.kept, self.seed, self.x16 = affine, kept, seed, x16
        self.no_x = np.empty((0, 0), x.dtype)  # the float minibatch a mixed run has none of
        self.alpha, self.bank = None, None
        if distortion is not None:
            ready(x.dtype, elastic.GROUP)
            self.alpha = distortion[0]
            self.bank = elastic.field_bank(distortion[1], side, step_key(seed, 0, BANK_SALT))

    def __call__(self, ws, index, step):
        key = step_key(self.seed, step, SHIFT_SALT)
        if self.alpha is not None or self.affine is not None:
            with kernel_threads(len(index), INTERPOLATED_MIN_ROWS):
                self._interpolated(ws, index, step, key)
        elif self.x16 is not None:
            gather_rows16(ws.x16, ws.y, self.x16, self.y, index, self.side, self.shift, key)
        elif self.kept is None:
            gather_rows(ws.x, ws.y, self.x, self.y, index, self.side, self.shift, key)
        else:
            prune.gather_columns(ws.x, ws.y, self.x, self.y, index, self.kept, self.side,
                                 self.shift, key)

    def _interpolated(self, ws, index, step, key):
        """The affine gather, with the elastic fields when distorting; in mixed precision each
        value is rounded to bfloat16 as it is written."""
        xb = self.no_x if ws.x is None else ws.x
        xb16 = NONE_2D if ws.x16 is None else ws.x16
        if self.alpha is None:
            augment.gather_affine(xb, xb16, ws.y, self.x, self.y, index, self.side,
                                  *self.affine, float(self.shift), key)
        else:  # the affine map (identity when off) plus the fields
            elastic.gather_elastic(xb, xb16, ws.y, self.x, self.y, index, self.side,
                                   *(self.affine or (0.0, 0.0, 0.0)), float(self.shift), key,
                                   self.alpha, self.bank, step_key(self.seed, step, ELASTIC_SALT))
