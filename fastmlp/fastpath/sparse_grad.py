"""The sparse weight gradient of a 128-wide first layer at full batch: dW1 = X^T dZ1 over the
CSR copy of the fixed inputs (sparse.py's), in place of the BLAS matmul on the kept columns.

Each of BLOCKS fixed blocks of rows accumulates its own partial dW1; `reduce_weight_grad` adds
them in block order, so the result does not depend on the thread count. Within a block, for
each row and each CHUNK of its 128 output lanes, the row's dZ1 lanes are loaded once into
16-tuples (registers) and every nonzero (c, v) of the row adds v * dZ1[row, chunk] into the
partial's row c. The partial is laid out [chunk][n_in][CHUNK] and walked SUB_ROWS rows and one
column strip at a time, so that a chunk's slab stays in cache; docs/performance.md ("The sparse
first layer") has the layouts tried and their times.
"""
import numba
import numpy as np
from numba import prange

from ..runtime.jit import kernel
from .lanes import add16, load16, slp_kernel

# The jit.ready group: compiled only for runs whose training takes this path.
GROUP = "sparse grad"
WIDTH = 128  # the first layer's width (a compile-time constant, as in sparse.py)
CHUNK = 64  # output lanes held in registers per pass over a row's nonzeros
STRIPS = 2  # column strips: a chunk's pass covers one strip's columns at a time
SUB_ROWS = 32  # rows per sub-block: each chunk and strip walks these rows in turn
# Fixed blocks of rows, each with its own partial (784 x 128 floats, 401 KB in float32): fixed,
# not one per thread, so the sums do not depend on the thread count.
BLOCKS = 4


@kernel("void(i8[:, ::1], i8[::1], u2[::1], i8)", parallel=True, group=GROUP)
def _strip_splits(splits, indptr, cols, n_in):
    """strip_splits' work, row by row."""
    for i in prange(splits.shape[0]):
        cs = cols[indptr[i]:indptr[i + 1]]
        splits[i, 0] = indptr[i]
        for s in range(1, splits.shape[1]):
            # The first of the row's sorted columns at or past the strip's start.
            splits[i, s] = indptr[i] + np.searchsorted(cs, n_in * s // (splits.shape[1] - 1))


def strip_splits(indptr, cols, n_in):
    """splits (N, STRIPS + 1) int64: row i's nonzeros in column strip s are
    splits[i, s]:splits[i, s + 1] of a CSR copy (indptr, cols, ...) of N rows of n_in columns,
    its columns sorted within each row (csr.to_csr), by a binary search per row and strip. The
    GROUP kernels must be ready (SparseFirst readies them)."""
    splits = np.empty((len(indptr) - 1, STRIPS + 1), np.int64)
    _strip_splits(splits, indptr, cols, n_in)
    return splits


@numba.njit(inline="always")
def _scatter64(slab, cs, vs, dz, o):
    """slab[cs[p] * 64:][:64] += vs[p] * dz[o:o + 64] for every nonzero p: dz's lanes are loaded
    once, as four 16-tuples."""
    d0, d1 = load16(dz, o), load16(dz, o + 16)
    d2, d3 = load16(dz, o + 32), load16(dz, o + 48)
    for p in range(cs.shape[0]):
        q, v = np.intp(cs[p]) * CHUNK, vs[p]
        add16(slab, q, v, d0)
        add16(slab, q + 16, v, d1)
        add16(slab, q + 32, v, d2)
        add16(slab, q + 48, v, d3)


@slp_kernel("void(F[:, ::1], i8[:, ::1], u2[::1], F[::1], F[::1])", group=GROUP)
def csr_weight_grad(part, splits, cols, vals, dz):
    """part[b] = X[block b's rows]^T @ dZ[those rows], laid out [chunk][n_in][CHUNK] (flat), for
    the part.shape[0] blocks of consecutive rows; X in CSR (cols, vals) with its rows' strips
    in splits (strip_splits), dZ (rows x WIDTH) flat. part's rows must start 64-byte aligned."""
    rows = splits.shape[0]
    blocks = part.shape[0]
    n_in = part.shape[1] // WIDTH
    for b in prange(blocks):
        dw = part[b]
        dw[:] = 0
        lo, hi = b * rows // blocks, (b + 1) * rows // blocks
        for start in range(lo, hi, SUB_ROWS):
            for s in range(splits.shape[1] - 1):
                for base in range(0, WIDTH, CHUNK):
                    slab = dw[base * n_in:(base + CHUNK) * n_in]
                    for i in range(start, min(hi, start + SUB_ROWS)):
                        # Slices indexed from 0: numba then emits no wrap-around code.
                        cs = cols[splits[i, s]:splits[i, s + 1]]
                        vs = vals[splits[i, s]:splits[i, s + 1]]
                        _scatter64(slab, cs, vs, dz, i * WIDTH + base)


@slp_kernel("void(F[:, ::1], F[:, ::1])", group=GROUP)
def reduce_weight_grad(dw, part):
    """dw (n_in, WIDTH) = the sum of csr_weight_grad's partials, added in block order."""
    n_in = dw.shape[0]
    for c in prange(n_in):
        for j in range(WIDTH):
            o = (j // CHUNK) * n_in * CHUNK + c * CHUNK + j % CHUNK
            s = part[0, o]
            for b in range(1, part.shape[0]):
                s += part[b, o]
            dw[c, j] = s


def copy_bytes(x):
    """The bytes the weight gradient keeps beside the CSR copy of x (N, n_in): the row strips
    and the partials."""
    return 8 * (STRIPS + 1) * len(x) + BLOCKS * x.shape[1] * WIDTH * x.itemsize
