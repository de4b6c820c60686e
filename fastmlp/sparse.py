"""The first layer's training matmuls on a sparse (CSR) copy of the fixed full-batch inputs, for
first layers too wide for the fused pass (a multiple of LANES = 16 units, e.g. 128).

MNIST's inputs are 81% zeros: X @ W1 and X^T @ dZ1 over the nonzeros only do a fifth of the
dense work. Each row is swept once per panel of 16 hidden units with fused.py's register-held
lanes (the row's nonzeros stay in L1 between panels); the weight gradient is scattered into
per-block partials (BLOCK_ROWS rows each, added in block order: deterministic at any thread
count).

Measured (2-core EPYC, float32, 2 threads, [128, 64, 32] full batch, one epoch and its
validation pass, best of 7, in turns with the plain path in separate processes): 255-286 ms
against 280-320 ms for the plain BLAS path: at best a small win at 128 units, hence MAX_WIDTH.
"""
import numpy as np
from numba import prange

from .fused import (
    LANES,
    MAX_DENSITY,
    _aligned_zeros,
    _lanes_forward,
    _lanes_scatter,
    _load16,
    _put16,
    _slp_kernel,
    to_csr,
)

# Rows per partial weight gradient: 8 blocks at 48,000 rows; a block's partial (784 x 128
# floats, 400 KB) stays in a core's L2.
BLOCK_ROWS = 6144


@_slp_kernel("void(F[:, ::1], i8[::1], u2[::1], F[::1], F[:, ::1])")
def csr_matmul(z, indptr, cols, vals, panels):
    """z (N, H) = X @ W, X in CSR (indptr, cols, vals), W (n_in, H) given as panels
    (H / LANES, n_in * LANES) of LANES columns each."""
    for i in prange(z.shape[0]):
        zi = z[i]
        for p in range(panels.shape[0]):
            _put16(zi[p * LANES:(p + 1) * LANES], _lanes_forward(indptr, cols, vals, panels[p], i))


@_slp_kernel("void(F[:, :, ::1], i8[::1], u2[::1], F[::1], F[:, ::1])")
def csr_weight_grad(part, indptr, cols, vals, dz):
    """Per block of BLOCK_ROWS rows, that block's share of X^T @ dz in panels: part (blocks,
    H / LANES, n_in * LANES); dz (N, H)."""
    rows = dz.shape[0]
    for blk in prange(part.shape[0]):
        block = part[blk]
        block[:] = 0
        for i in range(blk * BLOCK_ROWS, min(rows, (blk + 1) * BLOCK_ROWS)):
            di = dz[i]
            for p in range(block.shape[0]):
                _lanes_scatter(block[p], indptr, cols, vals, i, _load16(di, p * LANES))


@_slp_kernel("void(F[:, ::1], F[:, :, ::1])")
def reduce_panels(dw, part):
    """dw (n_in, H) = csr_weight_grad's partials added in block order, panels unfolded."""
    n_in, width = dw.shape
    for c in prange(n_in):
        for j in range(width):
            p, o = j // LANES, c * LANES + j % LANES
            s = part[0, p, o]
            for blk in range(1, part.shape[0]):
                s += part[blk, p, o]
            dw[c, j] = s


# The widest first layer measured (128 units, the documents' widths: see the module docstring);
# wider layers keep BLAS until measured.
MAX_WIDTH = 128


def applies(sizes, x):
    """Whether the sparse first layer serves an MLP of `sizes` on inputs x: a first layer of a
    multiple of LANES units up to MAX_WIDTH, pixel indices that fit uint16, sparse inputs."""
    return (sizes[1] % LANES == 0 and sizes[1] <= MAX_WIDTH and sizes[0] <= 2 ** 16
            and np.count_nonzero(x) <= MAX_DENSITY * x.size)


class SparseFirstLayer:
    """The first layer's matmuls over fixed inputs x (N, n_in) in CSR (forward.py and
    backward.py call `matmul` and `weight_grad` for the first layer; their x and x_t arguments
    are not read: the CSR copy made here stands for them)."""

    def __init__(self, model, x):
        self.indptr, self.cols, self.vals = to_csr(x)
        n_in, width = model.weights[0].shape
        self.panels = _aligned_zeros(width * n_in, model.dtype).reshape(
            width // LANES, n_in * LANES)  # (H / LANES, n_in * LANES)
        blocks = max(1, -(-len(x) // BLOCK_ROWS))
        self.part = np.zeros((blocks, *self.panels.shape), model.dtype)  # (blocks, ...panels)

    def matmul(self, model, x, z):
        n_in, width = model.weights[0].shape
        np.copyto(self.panels.reshape(width // LANES, n_in, LANES),
                  model.weights[0].reshape(n_in, width // LANES, LANES).transpose(1, 0, 2))
        csr_matmul(z, self.indptr, self.cols, self.vals, self.panels)

    def weight_grad(self, model, x_t, dz):
        csr_weight_grad(self.part, self.indptr, self.cols, self.vals, dz)
        reduce_panels(model.dweights[0], self.part)
