"""Sparse (CSR) copies of fixed inputs and aligned buffers: what the sweeps over sparse inputs
share (fused.py's one-pass `[10]` sweep, sparse.py's first layer).

MNIST pixels are 81% zeros: a CSR row holds only the lit pixels, as 2-byte column indices and
values of the input's float type, so a kernel's work and memory traffic scale with the
nonzeros, not with the 784 columns.
"""
import numpy as np
from numba import prange

from ..runtime.jit import kernel, ready

# The jit.ready group of the copying kernels: every path that builds a CSR copy readies it.
GROUP = "csr"


@kernel("void(i8[::1], F[:, ::1])", parallel=True, group=GROUP)
def _row_counts(counts, x):
    """counts[i] = the nonzeros of row i of x (N, n_in)."""
    for i in prange(x.shape[0]):
        n = 0
        for j in range(x.shape[1]):
            n += x[i, j] != 0
        counts[i] = n


@kernel("void(u2[::1], F[::1], i8[::1], F[:, ::1])", parallel=True, group=GROUP)
def _fill(cols, vals, indptr, x):
    """Row i's nonzeros of x (N, n_in), in column order, into cols and vals from indptr[i]."""
    for i in prange(x.shape[0]):
        p = indptr[i]
        for j in range(x.shape[1]):
            if x[i, j] != 0:
                cols[p] = j
                vals[p] = x[i, j]
                p += 1


def to_csr(x):
    """x (N, n_in), n_in <= 2**16, as CSR: (indptr (N + 1,) int64, column indices (nnz,) uint16,
    values (nnz,) of x's type), row by row in column order, by two parallel passes over x
    (count, then fill): far faster than numpy's nonzero (docs/performance.md, "The CSR
    copy")."""
    ready(x.dtype, GROUP)
    x = np.ascontiguousarray(x)
    indptr = np.zeros(len(x) + 1, np.int64)
    _row_counts(indptr[1:], x)
    np.cumsum(indptr, out=indptr)
    cols, vals = np.empty(indptr[-1], np.uint16), np.empty(indptr[-1], x.dtype)
    _fill(cols, vals, indptr, x)
    return indptr, cols, vals


def aligned_zeros(n, dtype):
    """n zeros of dtype starting on a 64-byte boundary (16 float32 lanes are one cache line)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n + 64 // itemsize, dtype)
    skip = (-raw.ctypes.data % 64) // itemsize
    return raw[skip:skip + n]


def csr_bytes(x, labels=True):
    """The bytes of a CSR copy of x (N, n_in) as to_csr makes it (8-byte row pointers, 2-byte
    column indices, the values), and (labels) of int32 labels beside it: what a sweep over the
    copy reads."""
    return 8 * (len(x) + 1) + np.count_nonzero(x) * (2 + x.itemsize) + 4 * len(x) * labels
