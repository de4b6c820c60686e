"""The sparse first layer of a 128-wide MLP (e.g. `[128, 64, 32]`) at full batch: z = x @ W1
runs over a CSR copy of the fixed inputs, so its work scales with the lit pixels (19% of
MNIST's), not with every column; its weight gradient runs over the same copy (sparse_grad.py).

The loop keeps 16 output columns in registers (lanes.py), one chunk of 16 per pass over a
row's nonzeros. The width must be a compile-time constant: passed at run time, LLVM built each
lane vector from scalar inserts and the kernel ran several times slower (docs/performance.md,
"The sparse first layer").

Exact up to the order of the sums: each output is BLAS's sum of products over the nonzero
terms. Rows are independent: the result does not depend on the thread count. The kernel has a
numpy twin in tests/naive.py.
"""
import numpy as np
from numba import prange

from ..engine import cost
from ..engine.gemm import OPENBLAS
from ..engine.inference import evaluate
from ..engine.model import MLP
from ..runtime.jit import ready
from ..runtime.timing import best_seconds
from . import sparse_grad
from .csr import aligned_zeros, csr_bytes, to_csr
from .lanes import LANES, axpy2x16, axpy16, put16, slp_kernel, zeros16
from .plain import layer_shapes
from .prune import PrunedPath

# The jit.ready group of the kernel: compiled only for runs that take this path.
GROUP = "sparse"
# The first layer's width the kernels are compiled for (see the module docstring).
WIDTH = sparse_grad.WIDTH
# Inputs denser than this take the pruned or plain path (MNIST is 19% nonzero, Fashion-MNIST
# 50%).
MAX_DENSITY = 0.35
# Rows per sub-block: each 16-lane chunk walks these rows in turn (see chunked_weights).
SUB_ROWS = 64


@slp_kernel("void(F[::1], i8[::1], u2[::1], F[::1], F[::1])", group=GROUP)
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
                acc = zeros16(wc.dtype.type(0))
                for t in range(n // 2):
                    acc = axpy2x16(acc, vs[2 * t], slab, np.intp(cs[2 * t]) * LANES,
                                    vs[2 * t + 1], np.intp(cs[2 * t + 1]) * LANES)
                if n % 2:
                    acc = axpy16(acc, vs[n - 1], slab, np.intp(cs[n - 1]) * LANES)
                put16(z[i * WIDTH + base:], acc)


def chunked_weights(wc, w):
    """wc (flat, WIDTH / LANES x n_in x LANES) = w (n_in, WIDTH) chunk by chunk of LANES
    columns: csr_matmul's layout. Read from w directly, a row's nonzeros would sit 512 bytes
    apart, on a few L1 sets; a chunk's slab is contiguous and stays in cache while SUB_ROWS rows
    take it in turn (docs/performance.md, "The sparse first layer")."""
    n_in = w.shape[0]
    wc.reshape(WIDTH // LANES, n_in, LANES)[...] = \
        w.reshape(n_in, WIDTH // LANES, LANES).transpose(1, 0, 2)


def applies(sizes, x):
    """Whether the sparse first layer serves an MLP of `sizes` on the fixed inputs x: a first
    layer WIDTH wide followed by another layer, pixel indices that fit uint16, sparse inputs."""
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
        chunked_weights(self.wc, model.weights[0])  # 100k values: small beside the matmul
        # The row pointers of those rows are offsets into all of cols and vals: a view serves.
        csr_matmul(z.reshape(-1), self.indptr[start:start + len(rows) + 1], self.cols,
                   self.vals, self.wc)


class SparseFirst:
    """The first layer's training matmuls over a CSR copy of the fixed training inputs x (full
    batch: forward.py always passes all of x, and backward.py's x_t goes unread): the forward
    here, the weight gradient in sparse_grad.py."""

    def __init__(self, model, x):
        ready(x.dtype, sparse_grad.GROUP)
        self.rows = SparseRows(x)
        self.all_rows = np.arange(len(x))
        self.splits = sparse_grad.strip_splits(self.rows.indptr, self.rows.cols,  # (N, STRIPS + 1)
                                                 x.shape[1])
        # (BLOCKS, n_in * WIDTH): each block's partial weight gradient, rows 64-byte aligned
        self.part = aligned_zeros(sparse_grad.BLOCKS * x.shape[1] * WIDTH,
                                  x.dtype).reshape(sparse_grad.BLOCKS, -1)

    @property
    def columns_per_row(self):
        """The input columns the first layer's multiply-adds take per row, on average: the
        nonzeros."""
        return len(self.rows.vals) / len(self.all_rows)

    def matmul(self, model, x, z):
        self.rows.matmul(model, self.all_rows, z)

    def weight_grad(self, model, x_t, dz):
        """model.dweights[0] = X^T dz, dz (N, WIDTH); x_t is not read."""
        sparse_grad.csr_weight_grad(self.part, self.splits, self.rows.cols, self.rows.vals,
                                    dz.reshape(-1))
        sparse_grad.reduce_weight_grad(model.dweights[0], self.part)

    def __repr__(self):
        return f"SparseFirst({len(self.rows.vals)} nonzeros)"


class SparsePath(PrunedPath):
    """The first layer's forward and weight gradient over CSR copies of the fixed inputs (the
    training split's for the step, the validation split's for its evaluation); the other
    layers as the plain path. `kept` (the pruned columns) only names the columns the copies can
    hold."""
    name = "sparse"

    @property
    def description(self):
        share = "" if self.first is None else \
            f", {self.first.columns_per_row / self.x.shape[1]:.0%} of pixels nonzero"
        return f"sparse first layer (forward and weight gradient over CSR{share})"

    @property
    def columns_per_row(self):
        return None if self.first is None else self.first.columns_per_row

    def copies(self, val_x):
        # Each CSR copy with its chunked W1 (SparseRows.wc), and the weight gradient's row
        # strips and partials.
        chunked = 2 * self.x.shape[1] * WIDTH * self.x.itemsize
        return {"sparse inputs": csr_bytes(self.x, labels=False) + csr_bytes(val_x, labels=False)
                + chunked + sparse_grad.copy_bytes(self.x)}

    def products(self, sizes, rows, training):
        return cost.products(layer_shapes(sizes), rows, training, skip_first=True)

    def kernel_seconds(self, sizes):
        """The first layer's CSR forward and weight gradient, timed now on PROBE_ROWS training
        rows (best of PROBE_REPEATS each), with dZ1 half zeros as the ReLU leaves it."""
        x = self.x[:cost.PROBE_ROWS]
        model = MLP(sizes, x.dtype).initialize("he", np.random.default_rng(0))
        first = SparseFirst(model, x)
        z = np.empty((len(x), sizes[1]), x.dtype)  # (rows, H1)
        rng = np.random.default_rng(0)
        dz = np.where(rng.random(z.shape) < 0.5, 0, rng.random(z.shape)).astype(x.dtype)
        forward, grad = best_seconds([lambda: first.matmul(model, x, z),
                                      lambda: first.weight_grad(model, None, dz)],
                                     cost.PROBE_REPEATS)
        return (forward + grad) / len(x), forward / len(x)

    def _allocate(self, model, gemm):
        # The CSR copy serves both of the first layer's matmuls: no dense copy.
        self.first = SparseFirst(model, self.x)
        self.inputs = self.x

    def evaluator(self, model, x, y, ws, gemm=OPENBLAS):
        first, rows = SparseRows(x), np.arange(len(y))
        return lambda: evaluate(model, ws, rows, y, first, gemm)
