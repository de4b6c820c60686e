"""Sparse (CSR) copies of fixed inputs and aligned buffers: what the sweeps over sparse inputs
share (fused.py's one-pass `[10]` sweep, sparse.py's first layer).

MNIST pixels are 81% zeros: a CSR row holds only the lit pixels, as 2-byte column indices and
values of the input's float type, so a kernel's work and memory traffic scale with the
nonzeros, not with the 784 columns.
"""
import numpy as np


def to_csr(x):
    """x (N, n_in) as CSR: (indptr (N + 1,) int64, column indices (nnz,) uint16, values (nnz,)
    of x's type), row by row in column order."""
    nonzero = x != 0
    indptr = np.zeros(len(x) + 1, np.int64)
    np.cumsum(nonzero.sum(axis=1), out=indptr[1:])
    return indptr, np.nonzero(nonzero)[1].astype(np.uint16), x[nonzero]


def aligned_zeros(n, dtype):
    """n zeros of dtype starting on a 64-byte boundary (16 float32 lanes are one cache line)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n + 64 // itemsize, dtype)
    skip = (-raw.ctypes.data % 64) // itemsize
    return raw[skip:skip + n]
