"""Which exact path runs a model's first layer, decided once, by the run's plan, which hands it
to the trainer:

- fused: the fused sweep for one narrow hidden layer at full batch on sparse inputs (fused.py);
- sparse: at full batch, a 128-wide first layer's forward and weight gradient over a CSR copy
  of the inputs (sparse.py, sparse_grad.py);
- pruned: the first layer's training matmuls skip the always-zero input columns (prune.py), at
  full batch and for minibatches of at least PRUNE_MIN_ROWS rows;
- plain: every column, every way (plain.py; also what plain=True asks for: the tests compare
  the paths with it); in mixed precision the only path, as the others' kernels are float.
"""
import math

from . import fused, sparse
from .fused import FusedPath
from .plain import PlainPath
from .prune import PrunedPath, kept_columns
from .sparse import SparsePath

# Smaller minibatches gather every column and take the plain path: below this, copying the kept
# weights out and scattering their gradient back every step cost more than the skipped columns
# save (docs/performance.md, "Pruned columns").
PRUNE_MIN_ROWS = 8192


def choose(sizes, x, y, *, rows, in_place, shift=0, affine=False, dropout=0.0, smoothing=0.0,
           plain=False, mixed=False):
    """The path (an object of plain.py's kind) for an MLP of `sizes` trained on x (N, n_in),
    y (N,): rows, the minibatch's rows (the split's length at full batch); in_place, full batch
    read in place (no minibatch gather, no augmentation); shift, the shift augmentation's
    reach; affine, whether affine (or elastic) augmentation resamples the images; smoothing,
    the label smoothing (which the fused pass's loss does not do); mixed, bfloat16 matmul
    operands."""
    if plain or mixed:
        return PlainPath(x, y, in_place, mixed)
    if in_place and dropout == 0 and smoothing == 0 and fused.applies(sizes, x):
        return FusedPath(x, y)
    if affine:  # affine maps and elastic fields can light any pixel: prune none
        return PlainPath(x, y, in_place)
    if not in_place and rows < PRUNE_MIN_ROWS:
        return PlainPath(x, y, in_place)
    side = math.isqrt(x.shape[1])
    if shift and side ** 2 != x.shape[1]:
        return PlainPath(x, y, in_place)  # refused by the trainer
    kept = kept_columns(x, shift, side)
    if kept is None:
        return PlainPath(x, y, in_place)
    if in_place and sparse.applies(sizes, x):
        return SparsePath(x, y, in_place, kept)
    return PrunedPath(x, y, in_place, kept)
