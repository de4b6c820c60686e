"""Which exact path runs a model's first layer: decided here once, for the trainer that takes it
and for the memory plan that counts its copies.

- fused: the fused sweep for one narrow hidden layer at full batch on sparse inputs (fused.py);
- sparse: at full batch, a 128-wide first layer's forward over a CSR copy of the inputs, its
  weight gradient on the kept columns (sparse.py);
- pruned: the first layer's training matmuls skip the always-zero input columns (prune.py);
- plain: every column, every way (also what plain=True asks for: the tests compare the paths).
"""
import math

from . import fused, prune, sparse


def choose(sizes, x, *, in_place, shift=0, affine=False, dropout=0.0, plain=False):
    """(name, kept columns or None) of the path for an MLP of `sizes` trained on x (N, n_in):
    in_place, full batch read in place (no minibatch gather, no augmentation); shift, the
    shift augmentation's reach; affine, whether affine augmentation is on."""
    if plain:
        return "plain", None
    if in_place and dropout == 0 and fused.applies(sizes, x):
        return "fused", None
    if affine:  # affine maps can light any pixel: prune none
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
