"""Which exact path runs a model's first layer: decided here once, for the trainer that takes it
(built by `build`) and for the memory plan that counts its copies.

- fused: the fused sweep for one narrow hidden layer at full batch on sparse inputs (fused.py);
- sparse: at full batch, a 128-wide first layer's forward and weight gradient over a CSR copy
  of the inputs (sparse.py, sparse_grad.py);
- pruned: the first layer's training matmuls skip the always-zero input columns (prune.py), at
  full batch and for minibatches of at least PRUNE_MIN_ROWS rows;
- plain: every column, every way (also what plain=True asks for: the tests compare the paths).
"""
import math

import numpy as np

from . import fused, prune, sparse
from .kernels import transpose

# Smaller minibatches gather every column and take the plain path. Pruning saves 8% of the first
# layer's multiply-adds on MNIST (720 of 784 columns), but every step it copies the kept weights
# out and scatters their gradient back (75-290 us), and the column gather took 2.3x the row
# gather (69 vs 30 us at batch 128). Measured, [128, 64, 32], float32, ms per epoch pruned vs
# plain, best of 3, in turns in one locked run (/tmp/mb/exp4.py, 2-core EPYC): 2 threads: batch
# 128 327-352 vs 273-275; 1024 305-307 vs 284-285; 2048 324-327 vs 291-296; 4096 383-388 vs
# 372-376; 8192 275-296 vs 275-293 (a tie); 1 thread: 128 403-407 vs 357-365, 8192 411 vs
# 415-426. At full batch the pruned matmuls win (PERF-NOTES.md).
PRUNE_MIN_ROWS = 8192


def choose(sizes, x, *, in_place, rows=None, shift=0, affine=False, dropout=0.0, plain=False,
           smoothing=0.0):
    """(name, kept columns or None) of the path for an MLP of `sizes` trained on x (N, n_in):
    in_place, full batch read in place (no minibatch gather, no augmentation); rows, the
    minibatch's rows (None: the whole split); shift, the shift augmentation's reach; affine,
    whether affine augmentation is on; smoothing, the label smoothing (which the fused pass's
    loss does not do)."""
    if plain:
        return "plain", None
    if in_place and dropout == 0 and smoothing == 0 and fused.applies(sizes, x):
        return "fused", None
    if affine:  # affine maps can light any pixel: prune none
        return "plain", None
    if not in_place and (rows or len(x)) < PRUNE_MIN_ROWS:
        return "plain", None
    side = math.isqrt(x.shape[1])
    if shift and side ** 2 != x.shape[1]:
        return "plain", None  # refused by the trainer
    kept = prune.kept_columns(x, shift, side)
    if kept is None:
        return "plain", None
    if in_place and sparse.applies(sizes, x):
        return "sparse", kept
    return "pruned", kept


def build(name, kept, model, x, y, *, in_place):
    """What the trainer runs for the path `choose` gave (name, kept): (label for `fastmlp bench`,
    the FusedPass or None, the first layer's hook for forward/backward or None, the inputs the
    steps read at full batch, their transpose or None)."""
    if name == "fused":
        return "fused pass", fused.FusedPass(model, x, y), None, x, None
    label, first = "plain", None
    if kept is not None:
        label = f"pruned columns ({kept.size} of {x.shape[1]})"
        if name == "sparse":
            # The CSR copy serves both of the first layer's matmuls: no dense copy below.
            first = sparse.SparseFirst(model, kept, x)
            label = (f"sparse first layer (forward and weight gradient over CSR, "
                     f"{first.columns_per_row / x.shape[1]:.0%} of pixels nonzero)")
            return label, None, first, x, None
        first = prune.PrunedColumns(model, kept)
    if not in_place:
        return label, None, first, x, None
    # Full batch reads the same inputs every step, so a contiguous transposed copy (one more copy
    # of the training set) pays for itself in the first layer's weight gradient.
    x_in = x if kept is None else np.take(x, kept, axis=1)  # (N, K) the kept columns
    x_t = np.empty(x_in.shape[::-1], x.dtype)  # (n_in or K, N)
    transpose(x_t, x_in)
    return label, None, first, x_in, x_t
