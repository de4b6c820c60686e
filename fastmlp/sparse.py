"""A sparse forward for the first layer of a 128-wide MLP (e.g. `[128, 64, 32]`) at full batch:
z = x @ W1 runs over a CSR copy of the fixed inputs, so its work scales with the lit pixels
(19% of MNIST's 784), not with every column. Its weight gradient runs over the same copy
(sparse_grad.py).

Measured (2-core EPYC, float32, 48,000 MNIST rows, width 128, best of 5, one locked command):
BLAS on the 720 kept columns 165 ms at 1 thread, 84 ms at 2; this kernel 107 ms and 55 ms
reading W row by row, half that on W laid out chunk by chunk (chunked_weights).
The first weight-gradient attempts lost to BLAS: scattering into per-block partials laid out
(n_in, 128) took 711 ms at 1 thread against BLAS's 128 (the loop vectorised; the layout
thrashed the L1 sets, see sparse_grad.py), and a column-major (CSC) pass per block of 512 rows
took 624 ms / 339 ms against 152 ms / 77 ms.

How the loop is kept in registers: fused.py's 16 register lanes (a 16-tuple that LLVM's SLP
vectoriser turns into two AVX2 FMAs per nonzero), one chunk of 16 output columns per pass over
a row's nonzeros, two products added before touching the accumulator. The width must be a
compile-time constant: with the width passed at run time LLVM built each lane vector from
scalar inserts, and the same kernel took 405 ms at 1 thread.

Exact up to the order of the sums: each output is BLAS's sum of products over the nonzero
terms. Rows are independent: the result does not depend on the thread count. The kernel has a
numpy twin in tests/naive.py.
"""
import numpy as np
from numba import prange

from . import sparse_grad
from .csr import aligned_zeros, to_csr
from .fused import LANES, _axpy2x16, _axpy16, _put16, _slp_kernel, _zeros16
from .jit import ready

# The jit.ready group of the kernel: compiled only for runs that take this path.
GROUP = "sparse"
# The first layer's width the kernels are compiled for (see the module docstring).
WIDTH = sparse_grad.WIDTH
# Inputs denser than this take the pruned or plain path (as for fused.py: MNIST is 19%
# nonzero, Fashion-MNIST 50%).
MAX_DENSITY = 0.35


# Rows per sub-block: each 16-lane chunk walks these rows in turn (see chunked_weights).
SUB_ROWS = 64


@_slp_kernel("void(F[::1], i8[::1], u2[::1], F[::1], F[::1])", group=GROUP)
def csr_matmul(z, indptr, cols, vals, wc):
    """z = X @ W: z (rows x WIDTH) flat, X in CSR (indptr, cols, vals), W as chunked_weights
    lays it out in wc (64-byte aligned)."""
    rows = indptr.shape[0] - 1
    n_in = wc.shape[0] // WIDTH
    for blk in prange((rows + SUB_ROWS - 1) // SUB_ROWS):
        for base in range(0, WIDTH, LANES):
            slab = wc[base * n_in:(base + LANES) * n_in]  # (n_in, LANES): this chunk of W
            for i in range(blk * SUB_ROWS, min(rows, (blk + 1) * SUB_ROWS)):
                # Slices of the row, indexed from 0: numba then emits no wrap-around code.
                cs, vs = cols[indptr[i]:indptr[i + 1]], vals[indptr[i]:indptr[i + 1]]
                n = cs.shape[0]
                acc = _zeros16(wc.dtype.type(0))
                for t in range(n // 2):
                    acc = _axpy2x16(acc, vs[2 * t], slab, np.intp(cs[2 * t]) * LANES,
                                    vs[2 * t + 1], np.intp(cs[2 * t + 1]) * LANES)
                if n % 2:
                    acc = _axpy16(acc, vs[n - 1], slab, np.intp(cs[n - 1]) * LANES)
                _put16(z[i * WIDTH + base:], acc)


def chunked_weights(wc, w):
    """wc (flat, WIDTH / LANES x n_in x LANES) = w (n_in, WIDTH) chunk by chunk of LANES
    columns: csr_matmul's layout. Read from w (n_in, WIDTH) directly, a row's nonzeros sit
    512 bytes apart, on a few L1 sets; a chunk's slab is contiguous (50 KB in float32) and
    stays in cache while SUB_ROWS rows take it in turn. Measured (float32, the 48,000 MNIST
    training rows, best of 5, in turns in one locked command): 78.1 / 39.5 ms at 1 / 2 threads
    row by row on w, 44.7 / 22.9 ms this way (sub-blocks of 16 rows: 50.1 / 24.6; 64-lane chunks
    held as four 16-tuples: 53.6 / 27.5). Later sessions saw 35-55 ms at 2 threads: the host,
    not the kernel (unchanged since; the same CSR arrays as then): in one locked command, four
    rounds of best-of-5 at 2 threads gave 25.9, 35.4, 28.3, 35.5 ms, and the host's 48,000 x 713
    x 128 BLAS forward + weight gradient took 156-163 ms against PERF-NOTES' 126-131. Sub-blocks
    of 128 or 256 rows, and 32-lane chunks (two 16-tuples) over 64-256 rows, measured in the
    same rounds, stayed within that spread (24.0-36.6 ms): no variant won."""
    n_in = w.shape[0]
    wc.reshape(WIDTH // LANES, n_in, LANES)[...] = \
        w.reshape(n_in, WIDTH // LANES, LANES).transpose(1, 0, 2)


def applies(sizes, x):
    """Whether the sparse forward serves an MLP of `sizes` on the fixed inputs x: a first layer
    WIDTH wide followed by another layer, pixel indices that fit uint16, sparse inputs."""
    return (len(sizes) >= 3 and sizes[1] == WIDTH and sizes[0] <= 2 ** 16
            and np.count_nonzero(x) <= MAX_DENSITY * x.size)


class SparseRows:
    """x (N, n_in) as CSR, for `matmul` (forward.py's `first`) on all of its rows in order:
    the evaluation pass hands it `rows`, its chunk of row indices into x, in place of x."""

    def __init__(self, x):
        ready(x.dtype, GROUP)
        self.indptr, self.cols, self.vals = to_csr(x)
        self.wc = aligned_zeros(x.shape[1] * WIDTH, x.dtype)  # the first layer's W, chunked

    def matmul(self, model, rows, z):
        """z (B, WIDTH) = x[rows] @ the first layer's weights; rows a contiguous range."""
        start = rows[0] if len(rows) else 0
        chunked_weights(self.wc, model.weights[0])  # 100k values: ~0.1 ms
        # The row pointers of those rows are offsets into all of cols and vals: a view serves.
        csr_matmul(z.reshape(-1), self.indptr[start:start + len(rows) + 1], self.cols,
                   self.vals, self.wc)


class SparseFirst:
    """The first layer's training matmuls over a CSR copy of the fixed training inputs x (full
    batch: forward.py always passes all of x, and backward.py's x_t goes unread): the forward
    here, the weight gradient in sparse_grad.py. `kept` (prune.py's kept columns) only names
    the columns the copy can hold: the others are zero in every row."""

    def __init__(self, model, kept, x):
        ready(x.dtype, sparse_grad.GROUP)
        self.kept = kept
        self.rows = SparseRows(x)
        self.all_rows = np.arange(len(x))
        self.splits = sparse_grad.strip_splits(self.rows.indptr, self.rows.cols,  # (N, STRIPS + 1)
                                                 x.shape[1])
        # (BLOCKS, n_in * WIDTH): each block's partial weight gradient, rows 64-byte aligned
        self.part = aligned_zeros(sparse_grad.BLOCKS * x.shape[1] * WIDTH,
                                  x.dtype).reshape(sparse_grad.BLOCKS, -1)

    @property
    def n_kept(self):
        return len(self.kept)

    @property
    def columns_per_row(self):
        """The input columns the first layer's multiply-adds take per row, on average: the
        nonzeros (`fastmlp bench` counts the FLOPs done with it)."""
        return len(self.rows.vals) / len(self.all_rows)

    def matmul(self, model, x, z):
        self.rows.matmul(model, self.all_rows, z)

    def weight_grad(self, model, x_t, dz):
        """model.dweights[0] = X^T dz, dz (N, WIDTH); x_t is not read."""
        sparse_grad.csr_weight_grad(self.part, self.splits, self.rows.cols, self.rows.vals,
                                    dz.reshape(-1))
        sparse_grad.reduce_weight_grad(model.dweights[0], self.part)

    def __repr__(self):
        return f"SparseFirst({self.n_kept} kept, {len(self.rows.vals)} nonzeros)"
