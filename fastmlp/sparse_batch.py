"""A sparse first layer for minibatches: the forward z = X[index] @ W1 and the weight gradient
dW1 = X[index]^T dZ1 read the minibatch's rows straight from a CSR copy of the training inputs
through the shuffled index list, so no dense minibatch is gathered and the work scales with
the lit pixels (19% of MNIST's 784), not with every column. The shift augmentation is applied
on the way: a shifted image's nonzeros are the same values at remapped pixels, drawn exactly
as kernels.gather_rows draws them, so the result equals gather_rows + BLAS up to the order of
the sums. The other layers run as before.

How the loops stay in registers: fused.py's 16-lane tuples, four of them (CHUNK = 64 lanes,
eight AVX2 accumulators), one pass over a row's nonzeros per 64 output lanes. The layer's
width is a run-time multiple of CHUNK, and only the number of passes depends on it: the lanes
of a pass are compile-time constants (with the width itself at run time LLVM built each lane
vector from scalar inserts, sparse.py). Rows of W1 and dZ1 are sliced before indexing, so
the constant lane offsets need no negative-index wrap-around code (with offsets computed at
run time each load carried a compare and a cmov, and the forward ran 3x slower).

The weight gradient runs over the minibatch's nonzeros sorted by pixel (`batch_columns`, a
counting sort, in row order within a pixel): each pixel's row of dW1 is summed in registers
and written once, so no buffer is zeroed and a pixel no row lights gets exact zeros.
Scattering each nonzero into dW1 instead measured 350-400 us per batch-128 step against
160-210 us (2-core EPYC, float32, [128, ...], prototype in one locked run).

Every output is written by one thread, and each sum runs in a fixed order: results do not
depend on the thread count. The kernels have numpy twins in tests/naive.py.
"""
import numba
import numpy as np
from numba import prange

from .csr import to_csr
from .fused import _axpy16, _put16, _slp_kernel, _zeros16
from .jit import ready
from .kernels import _uniform

# The jit.ready group: compiled only for runs that take this path.
GROUP = "sparse batch"
CHUNK = 64  # output lanes held in registers per pass (four 16-tuples)
# Inputs denser than this take the plain path (as for sparse.py).
MAX_DENSITY = 0.35
# Where the path pays (see `applies`): first layers at least this wide, minibatches of at most
# MAX_ROWS rows.
MIN_WIDTH = 256
MAX_ROWS = 128


def remap_tables(side, shift):
    """(span^2, side^2) int32, span = 2 * shift + 1: row (dy + shift) * span + dx + shift
    maps each pixel of a side x side image to where the shift (dy, dx) moves it
    (gather_rows' out[r, c] = src[r - dy, c - dx]), or -1 where it leaves the image; with
    shift 0, the one identity row (side is then any pixel count)."""
    if shift == 0:
        return np.arange(side, dtype=np.int32)[None]
    span = 2 * shift + 1
    r, c = np.divmod(np.arange(side * side), side)
    tables = np.full((span * span, side * side), -1, np.int32)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            inside = (0 <= r + dy) & (r + dy < side) & (0 <= c + dx) & (c + dx < side)
            tables[(dy + shift) * span + dx + shift, inside] = \
                ((r + dy) * side + c + dx)[inside]
    return tables


@numba.njit(inline="always")
def shift_row(key, i, shift):
    """Which remap_tables row the minibatch's row i takes: gather_rows' draws (dy from
    _uniform(key, 2 i), dx from _uniform(key, 2 i + 1)); 0 without shift."""
    if shift == 0:
        return 0
    span = 2 * shift + 1
    dy = np.int64(_uniform(key, 2 * i) * span)
    dx = np.int64(_uniform(key, 2 * i + 1) * span)
    return dy * span + dx


@_slp_kernel("void(F[:, ::1], i8[::1], i8[::1], u2[::1], F[::1], F[:, ::1], i4[:, ::1], i8, i8)",
             group=GROUP)
def batch_matmul(z, index, indptr, cols, vals, w, remap, shift, key):
    """z (B, H) = X[index] @ w (n_in, H), X in CSR (indptr, cols, vals), each row shifted
    as gather_rows shifts it with (shift, key) through remap (remap_tables); H a multiple of
    CHUNK."""
    width = z.shape[1]
    zero = z.dtype.type(0)
    for i in prange(index.shape[0]):
        lo, hi = indptr[index[i]], indptr[index[i] + 1]
        cs = cols[lo:hi]
        vs = vals[lo:hi]
        moved = remap[shift_row(key, i, shift)]
        for base in range(0, width, CHUNK):
            a0 = a1 = a2 = a3 = _zeros16(zero)
            for p in range(cs.shape[0]):
                t = moved[np.intp(cs[p])]
                v = vs[p] if t >= 0 else zero  # shifted out of the image: adds nothing
                row = w[max(t, 0), base:base + CHUNK]
                a0 = _axpy16(a0, v, row, 0)
                a1 = _axpy16(a1, v, row, 16)
                a2 = _axpy16(a2, v, row, 32)
                a3 = _axpy16(a3, v, row, 48)
            out = z[i, base:base + CHUNK]
            _put16(out, a0)
            _put16(out[16:], a1)
            _put16(out[32:], a2)
            _put16(out[48:], a3)


@_slp_kernel("void(i8[::1], i4[::1], F[::1], i8[::1], i8[::1], u2[::1], F[::1], i4[:, ::1], i8, "
             "i8)", parallel=False, group=GROUP)
def batch_columns(start, rows, values, index, indptr, cols, vals, remap, shift, key):
    """The minibatch X[index] (shifted as batch_matmul shifts it) by pixel: pixel c's
    nonzeros are rows[start[c]:start[c + 1]] (the minibatch's row numbers, ascending) and
    values[...] of the same span; start (n_in + 1,)."""
    n_in = start.shape[0] - 1
    start[:] = 0
    for i in range(index.shape[0]):  # count each pixel's nonzeros (in start[c + 1])
        moved = remap[shift_row(key, i, shift)]
        for p in range(indptr[index[i]], indptr[index[i] + 1]):
            t = moved[np.intp(cols[p])]
            if t >= 0:
                start[t + 1] += 1
    for c in range(n_in):
        start[c + 1] += start[c]
    for i in range(index.shape[0]):  # place them, start[c] running ahead as c's cursor
        moved = remap[shift_row(key, i, shift)]
        for p in range(indptr[index[i]], indptr[index[i] + 1]):
            t = moved[np.intp(cols[p])]
            if t >= 0:
                q = start[t]
                rows[q] = i
                values[q] = vals[p]
                start[t] = q + 1
    for c in range(n_in, 0, -1):  # the cursors ended on the next pixel's start
        start[c] = start[c - 1]
    start[0] = 0


@_slp_kernel("void(F[:, ::1], i8[::1], i4[::1], F[::1], F[:, ::1])", group=GROUP)
def batch_weight_grad(dw, start, rows, values, dz):
    """dw (n_in, H) = X^T dz, X by pixel as batch_columns lays it out, dz (B, H); every row of
    dw is written (zeros for a pixel with no nonzero). H a multiple of CHUNK."""
    width = dw.shape[1]
    zero = dw.dtype.type(0)
    for c in prange(dw.shape[0]):
        rs = rows[start[c]:start[c + 1]]
        vs = values[start[c]:start[c + 1]]
        for base in range(0, width, CHUNK):
            a0 = a1 = a2 = a3 = _zeros16(zero)
            for p in range(rs.shape[0]):
                row = dz[rs[p], base:base + CHUNK]
                v = vs[p]
                a0 = _axpy16(a0, v, row, 0)
                a1 = _axpy16(a1, v, row, 16)
                a2 = _axpy16(a2, v, row, 32)
                a3 = _axpy16(a3, v, row, 48)
            out = dw[c, base:base + CHUNK]
            _put16(out, a0)
            _put16(out[16:], a1)
            _put16(out[32:], a2)
            _put16(out[48:], a3)


def applies(sizes, x, rows):
    """Whether the path serves an MLP of `sizes` on the training inputs x in minibatches of
    `rows` rows: a first layer a multiple of CHUNK wide (and at least MIN_WIDTH) followed by
    another layer, at most MAX_ROWS rows, pixel indices that fit uint16, sparse inputs."""
    return (len(sizes) >= 3 and sizes[1] % CHUNK == 0 and sizes[1] >= MIN_WIDTH
            and rows <= MAX_ROWS and sizes[0] <= 2 ** 16
            and np.count_nonzero(x) <= MAX_DENSITY * x.size)


class SparseBatch:
    """The first layer's training matmuls for minibatches of up to `rows` rows of the training
    inputs x (N, n_in), read from a CSR copy of x through each minibatch's index list and
    shifted by up to `shift` pixels (images side x side) as gather_rows would: `gather` takes
    the place of the dense gather (only the labels are gathered), then forward.py and
    backward.py call `matmul` and `weight_grad` for the first layer."""

    def __init__(self, x, rows, side, shift):
        ready(x.dtype, GROUP)
        self.indptr, self.cols, self.vals = to_csr(x)
        self.remap = remap_tables(side if shift else x.shape[1], shift)  # (span^2, n_in)
        self.shift = shift
        most = rows * int(np.diff(self.indptr).max(initial=0))  # nonzeros of a minibatch
        self.start = np.zeros(x.shape[1] + 1, np.int64)  # (n_in + 1,) by pixel, batch_columns
        self.rows = np.zeros(most, np.int32)  # (<= B x most per row,) their minibatch rows
        self.values = np.zeros(most, x.dtype)  # (<= B x most per row,) their values
        self.index, self.key = self.indptr[:0], 0

    def gather(self, yb, y, index, key):
        """Take minibatch `index` (rows of x, shifted with the draws of `key`): its labels into
        yb; its inputs stay where they are."""
        np.take(y, index, out=yb, mode="clip")  # "raise" would copy through a temporary
        self.index, self.key = index, key

    def matmul(self, model, x, z):
        """z (B, H1) = the minibatch @ the first layer's weights; x (unused) stands for it."""
        batch_matmul(z, self.index, self.indptr, self.cols, self.vals, model.weights[0],
                     self.remap, self.shift, self.key)

    def weight_grad(self, model, x_t, dz):
        """model.dweights[0] = the minibatch^T @ dz (B, H1); x_t is not read."""
        batch_columns(self.start, self.rows, self.values, self.index, self.indptr, self.cols,
                      self.vals, self.remap, self.shift, self.key)
        batch_weight_grad(model.dweights[0], self.start, self.rows, self.values, dz)

    def __repr__(self):
        return f"SparseBatch({len(self.vals)} nonzeros, shift {self.shift})"
