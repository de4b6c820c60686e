"""Pruned input columns: the first layer's training matmuls skip the pixels that are zero in
every training image (and stay zero under every shift the augmentation can draw).

Exact: such a pixel adds exactly zero to every training forward pass, and its weights get
exactly zero gradient. The model keeps all its input weights: evaluation uses every column (a
pixel dark in every training image may be lit in a test image), and the pruned weights still
take the optimizer's update (weight decay moves them, plain SGD leaves them). The kept count is
padded to a multiple of PAD_TO: an odd count made BLAS's narrow matmuls slower
(docs/performance.md, "Pruned columns").
"""
import numpy as np
from numba import prange

from ..engine import cost
from ..engine.draws import uniform
from ..engine.gemm import OPENBLAS
from ..runtime.jit import kernel
from .plain import PlainPath, layer_shapes

PAD_TO = 16


def kept_columns(x, shift=0, side=0):
    """The sorted column indices of x (N, n_in) to keep, or None when pruning would drop none.

    Kept: every column nonzero in some row, and with shift > 0 (images side x side, shifted by
    up to `shift` pixels each way, zero fill) every pixel within `shift` rows and columns of
    such a one; then the lowest pruned columns up to a multiple of PAD_TO."""
    lit = (x != 0).any(axis=0)
    if shift:
        image = lit.reshape(side, side)
        grown = np.zeros_like(image)
        for dy in range(-shift, shift + 1):
            for dx in range(-shift, shift + 1):
                grown[max(0, dy):side + min(0, dy), max(0, dx):side + min(0, dx)] |= \
                    image[max(0, -dy):side + min(0, -dy), max(0, -dx):side + min(0, -dx)]
        lit = grown.ravel()
    kept = np.flatnonzero(lit)
    kept = np.sort(np.concatenate([kept, np.flatnonzero(~lit)[:-len(kept) % PAD_TO]]))
    return kept if len(kept) < x.shape[1] else None


class PrunedColumns:
    """The first layer's training matmuls on the kept input columns only: the hook forward.py
    and backward.py call (`matmul`, `weight_grad`) for the first layer."""

    def __init__(self, model, kept, gemm=OPENBLAS):
        self.kept = kept.astype(np.int64)  # (K,)
        self.gemm = gemm
        width = model.sizes[1]
        self.w = np.zeros((len(kept), width), model.dtype)  # (K, H1)
        self.dw = np.zeros((len(kept), width), model.dtype)  # (K, H1)
        model.dweights[0][...] = 0  # the pruned rows: nothing ever writes them again

    @property
    def n_kept(self):
        return len(self.kept)

    @property
    def columns_per_row(self):
        """The input columns the first layer's multiply-adds take per row (`fastmlp bench`
        counts the FLOPs done with it)."""
        return self.n_kept

    def matmul(self, model, x, z):
        """z = x @ (the kept rows of the first layer's weights); x (B, K) holds the kept
        columns."""
        # mode="clip": the default mode="raise" copies through a temporary the size of `out`
        # on every step, which a Dask worker mmaps fresh each time (docs/performance.md,
        # "Pruned columns"). The kept indices are in range by construction.
        np.take(model.weights[0], self.kept, axis=0, out=self.w, mode="clip")
        self.gemm(x, self.w, z)

    def weight_grad(self, model, x_t, dz):
        """The first layer's weight gradient from x_t (K, B), the kept columns transposed, and
        dz (B, H1): its kept rows; the pruned rows stay zero."""
        self.gemm(x_t, dz, self.dw)
        model.dweights[0][self.kept] = self.dw

    def __repr__(self):
        return f"PrunedColumns({self.n_kept} kept)"


@kernel("void(F[:, ::1], i4[::1], F[:, ::1], i4[::1], i8[::1], i8[::1], i8, i8, i8)",
         parallel=True)
def gather_columns(xb, yb, x, y, index, columns, side, shift, key):
    """engine.kernels.gather_rows restricted to the kept columns: xb[i, j] is pixel columns[j] of
    image index[i] (shifted exactly as gather_rows shifts it, from the same draws), yb[i] =
    y[index[i]]. Bit for bit gather_rows' output at those columns."""
    n, k = index.shape[0], columns.shape[0]
    span = 2 * shift + 1
    for i in prange(n):
        src = index[i]
        yb[i] = y[src]
        if shift > 0:
            dy = np.int64(uniform(key, 2 * i) * span) - shift
            dx = np.int64(uniform(key, 2 * i + 1) * span) - shift
            for j in range(k):
                sr = columns[j] // side - dy
                sc = columns[j] % side - dx
                inside = 0 <= sr < side and 0 <= sc < side
                xb[i, j] = x[src, sr * side + sc] if inside else 0
        else:
            for j in range(k):
                xb[i, j] = x[src, columns[j]]


class PrunedPath(PlainPath):
    """The plain path with the first layer's training matmuls on the kept columns (at full
    batch, read from a contiguous copy of them and its transpose)."""
    name = "pruned"

    def __init__(self, x, y, in_place, kept):
        super().__init__(x, y, in_place)
        self.kept = kept

    @property
    def description(self):
        return f"pruned columns ({self.n_kept} of {self.x.shape[1]})"

    @property
    def columns_per_row(self):
        return self.n_kept

    def copies(self, val_x):
        if not self.in_place:
            return super().copies(val_x)
        return {"pruned input copies": 2 * len(self.x) * self.n_kept * self.x.itemsize}

    def products(self, sizes, rows, training):
        layers = layer_shapes(sizes)
        if training:
            layers[0] = (self.n_kept, layers[0][1])
        return cost.products(layers, rows, training, transposed=self.in_place)

    def _allocate(self, model, gemm):
        self.first = PrunedColumns(model, self.kept, gemm)
        super()._allocate(model, gemm)
