"""The fused pass for narrow one-hidden-layer MLPs (e.g. `[10]`) at full batch: one row-blocked,
multi-threaded sweep over a sparse (CSR) copy of the fixed inputs does forward, softmax and
cross-entropy with its gradient, backward and every weight-gradient accumulation while a row is
in registers, where the plain path runs two skinny BLAS matmuls over the 150 MB dense inputs.

Why it pays (2-core EPYC, float32, [10], 48,000 rows): MNIST pixels are 81% zeros, and the
plain path's matmuls on 10 columns run at 20-35 GFLOPS; the sweep reads 6 bytes per nonzero
once per epoch and is bound by the core's load/store ports (~4-5 cycles per nonzero).

How the nonzero loops are kept in registers (each measured on the prototype, PERF-NOTES.md):
the hidden layer is padded to LANES = 16 lanes (two AVX2 vectors of float32) held in a
16-tuple, which LLVM splits into sixteen scalars (a local array is not kept in registers: LLVM
cannot prove it does not alias the weights) and its SLP vectoriser turns into vector FMAs; the
`_...16` helpers spell the sixteen lanes out for it. numba leaves SLP off by
default, so it is switched on only while this module's kernels compile (`_slp_kernel`): the
other kernels compile as before. Two products are added before touching the accumulator, which
breaks the FMA latency chain. Without `reassoc`, LLVM keeps that form.

Partial gradients are kept per block of BLOCK_ROWS rows (not per thread) and added in block
order, so the result does not depend on the thread count. Every kernel has a numpy twin in
tests/naive.py.
"""
import numba
import numpy as np
from numba import prange

from .csr import aligned_zeros, to_csr
from .jit import FASTMATH, kernel, ready

# The jit.ready group of this module's kernels: compiled only for runs that take this path.
GROUP = "fused"
LANES = 16
# Rows per block: a block's partial first-layer gradient (784 x 16 floats, 50 KB) stays in L2.
BLOCK_ROWS = 1024
# Without reassoc: with it LLVM turns the lane sums back into gathers across nonzeros.
_FASTMATH = FASTMATH - {"reassoc"}


def _slp_kernel(template, parallel=True, group=GROUP):
    """A kernel of `group` (this module's is made ready by FusedPass), compiled with LLVM's SLP
    vectoriser on (see the module docstring)."""
    return kernel(template, parallel=parallel, error_model="numpy", group=group, slp=True,
                   fastmath=_FASTMATH, boundscheck=False)


@numba.njit(cache=True)
def n_blocks(rows):
    return max(1, -(-rows // BLOCK_ROWS))


@numba.njit(inline="always")
def _load16(w, o):
    """w[o:o + 16] as a 16-tuple."""
    return (w[o], w[o + 1], w[o + 2], w[o + 3], w[o + 4], w[o + 5], w[o + 6], w[o + 7],
            w[o + 8], w[o + 9], w[o + 10], w[o + 11], w[o + 12], w[o + 13], w[o + 14], w[o + 15])


@numba.njit(inline="always")
def _zeros16(zero):
    return (zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero,
            zero, zero)


@numba.njit(inline="always")
def _axpy16(acc, s, w, o):
    """acc + s * w[o:o + 16], lane by lane."""
    return (acc[0] + s * w[o], acc[1] + s * w[o + 1], acc[2] + s * w[o + 2],
            acc[3] + s * w[o + 3], acc[4] + s * w[o + 4], acc[5] + s * w[o + 5],
            acc[6] + s * w[o + 6], acc[7] + s * w[o + 7], acc[8] + s * w[o + 8],
            acc[9] + s * w[o + 9], acc[10] + s * w[o + 10], acc[11] + s * w[o + 11],
            acc[12] + s * w[o + 12], acc[13] + s * w[o + 13], acc[14] + s * w[o + 14],
            acc[15] + s * w[o + 15])


@numba.njit(inline="always")
def _axpy2x16(acc, u, w, o, v, q):
    """acc + (u * w[o:o + 16] + v * w[q:q + 16]): two products added before the
    accumulator, which halves the FMA latency chain (4.9 -> 3.3 cycles per nonzero)."""
    return (acc[0] + (u * w[o] + v * w[q]), acc[1] + (u * w[o + 1] + v * w[q + 1]),
            acc[2] + (u * w[o + 2] + v * w[q + 2]), acc[3] + (u * w[o + 3] + v * w[q + 3]),
            acc[4] + (u * w[o + 4] + v * w[q + 4]), acc[5] + (u * w[o + 5] + v * w[q + 5]),
            acc[6] + (u * w[o + 6] + v * w[q + 6]), acc[7] + (u * w[o + 7] + v * w[q + 7]),
            acc[8] + (u * w[o + 8] + v * w[q + 8]), acc[9] + (u * w[o + 9] + v * w[q + 9]),
            acc[10] + (u * w[o + 10] + v * w[q + 10]), acc[11] + (u * w[o + 11] + v * w[q + 11]),
            acc[12] + (u * w[o + 12] + v * w[q + 12]), acc[13] + (u * w[o + 13] + v * w[q + 13]),
            acc[14] + (u * w[o + 14] + v * w[q + 14]), acc[15] + (u * w[o + 15] + v * w[q + 15]))


@numba.njit(inline="always")
def _relu16(a, b, zero):
    """max(a + b[:16], 0), lane by lane (zero: 0 of the float type)."""
    return (max(a[0] + b[0], zero), max(a[1] + b[1], zero), max(a[2] + b[2], zero),
            max(a[3] + b[3], zero), max(a[4] + b[4], zero), max(a[5] + b[5], zero),
            max(a[6] + b[6], zero), max(a[7] + b[7], zero), max(a[8] + b[8], zero),
            max(a[9] + b[9], zero), max(a[10] + b[10], zero), max(a[11] + b[11], zero),
            max(a[12] + b[12], zero), max(a[13] + b[13], zero), max(a[14] + b[14], zero),
            max(a[15] + b[15], zero))


@numba.njit(inline="always")
def _relu_grad16(d, h, zero):
    """d where h > 0, else 0, lane by lane (zero: 0 of the float type)."""
    return (d[0] if h[0] > 0 else zero, d[1] if h[1] > 0 else zero, d[2] if h[2] > 0 else zero,
            d[3] if h[3] > 0 else zero, d[4] if h[4] > 0 else zero, d[5] if h[5] > 0 else zero,
            d[6] if h[6] > 0 else zero, d[7] if h[7] > 0 else zero, d[8] if h[8] > 0 else zero,
            d[9] if h[9] > 0 else zero, d[10] if h[10] > 0 else zero, d[11] if h[11] > 0 else zero,
            d[12] if h[12] > 0 else zero, d[13] if h[13] > 0 else zero,
            d[14] if h[14] > 0 else zero, d[15] if h[15] > 0 else zero)


@numba.njit(inline="always")
def _add16(out, o, s, d):
    """out[o:o + 16] += s * d, d a 16-tuple."""
    out[o] += s * d[0]
    out[o + 1] += s * d[1]
    out[o + 2] += s * d[2]
    out[o + 3] += s * d[3]
    out[o + 4] += s * d[4]
    out[o + 5] += s * d[5]
    out[o + 6] += s * d[6]
    out[o + 7] += s * d[7]
    out[o + 8] += s * d[8]
    out[o + 9] += s * d[9]
    out[o + 10] += s * d[10]
    out[o + 11] += s * d[11]
    out[o + 12] += s * d[12]
    out[o + 13] += s * d[13]
    out[o + 14] += s * d[14]
    out[o + 15] += s * d[15]


@numba.njit(inline="always")
def _put16(out, d):
    """out[:16] = d, a 16-tuple."""
    out[0] = d[0]
    out[1] = d[1]
    out[2] = d[2]
    out[3] = d[3]
    out[4] = d[4]
    out[5] = d[5]
    out[6] = d[6]
    out[7] = d[7]
    out[8] = d[8]
    out[9] = d[9]
    out[10] = d[10]
    out[11] = d[11]
    out[12] = d[12]
    out[13] = d[13]
    out[14] = d[14]
    out[15] = d[15]


@numba.njit(inline="always")
def _lanes_forward(indptr, cols, vals, w1, i):
    """The 16 lanes of row i of X @ W1, X in CSR, W1 flat with rows of LANES."""
    # Slices of the row, indexed from 0: numba then emits no negative-index wrap-around code.
    cs, vs = cols[indptr[i]:indptr[i + 1]], vals[indptr[i]:indptr[i + 1]]
    n = cs.shape[0]
    acc = _zeros16(w1.dtype.type(0))
    for t in range(n // 2):
        acc = _axpy2x16(acc, vs[2 * t], w1, np.intp(cs[2 * t]) * LANES, vs[2 * t + 1],
                        np.intp(cs[2 * t + 1]) * LANES)
    if n % 2:
        acc = _axpy16(acc, vs[n - 1], w1, np.intp(cs[n - 1]) * LANES)
    return acc


@numba.njit(inline="always")
def _lanes_scatter(dw1, indptr, cols, vals, i, d):
    """dw1[cols[p] * 16:][:16] += vals[p] * d for every nonzero p of row i: row i's share of
    X^T @ dZ1. d is a 16-tuple, so its lanes stay in registers."""
    cs, vs = cols[indptr[i]:indptr[i + 1]], vals[indptr[i]:indptr[i + 1]]
    for p in range(cs.shape[0]):
        _add16(dw1, np.intp(cs[p]) * LANES, vs[p], d)


@numba.njit(inline="always")
def _head(hs, g, a, b1, w2, b2, classes, label):
    """h = relu(a + b1), logits = h @ w2 + b2 (w2 (LANES x LANES), b1, b2 padded with zeros,
    flat), as 16-tuples; h is stored in hs, exp(logits - max) in g (the padded lanes hold 0).
    Returns (max logit, sum of exp(logit - max) in float64 as softmax_xent_backward sums it,
    first argmax, the label's logit); returning h as well trips numba's parfor analysis (a
    tuple inside the tuple). The arithmetic is the
    plain path's up to the order of the sums inside the matmuls."""
    h = _relu16(a, b1, w2.dtype.type(0))
    _put16(hs, h)
    logits = _load16(b2, 0)
    for j in range(LANES):
        logits = _axpy16(logits, hs[j], w2, j * LANES)
    _put16(g, logits)
    m, best = g[0], 0
    for k in range(1, classes):
        if g[k] > m:
            m, best = g[k], k
    at_label = g[label]
    s = 0.0
    for k in range(classes):
        e = np.exp(g[k] - m)
        g[k] = e
        s += e
    return m, s, best, at_label


# The small gradients of a block, flat: db1, then dW2 in rows of LANES, then db2.
SMALL = LANES + LANES * LANES + LANES


@_slp_kernel("void(F[:, ::1], F[:, ::1], f8[::1], i8[::1], i8[::1], u2[::1], F[::1], i4[::1], "
             "F[::1], F[::1], F[::1], F[::1], F[::1], i8, i8, b1)")
def fused_step(dw1_part, dsmall_part, loss_part, hit_part, indptr, cols, vals, y, w1, b1, w2,
               w2_t, b2, hidden, classes, train):
    """Forward, mean cross-entropy, backward and every gradient of a 1-hidden-layer MLP over the
    rows of X (CSR: indptr, cols, vals), labels y (< classes), in one sweep; partial results
    per block of BLOCK_ROWS rows: dw1_part (blocks, n_in * LANES) the first layer's weight
    gradient, dsmall_part (blocks, SMALL) [db1, dW2, db2], loss_part (blocks,) summed losses,
    hit_part (blocks,) correct rows. The parameters come padded with zeros to LANES hidden
    units and LANES classes, flat: w1 (n_in x LANES), b1, w2 (LANES x LANES) and its transpose
    w2_t, b2. `reduce_step` adds the blocks up. train=False: the forward alone (losses and
    correct rows; the gradient partials may then have no columns, as nothing touches them).
    """
    rows = y.shape[0]
    inv_rows = 1.0 / rows
    zero, one = w1.dtype.type(0), w1.dtype.type(1)
    for blk in prange(loss_part.shape[0]):
        dw1 = dw1_part[blk]
        small = dsmall_part[blk]
        dw1[:] = 0
        small[:] = 0
        hs = np.zeros(LANES, w1.dtype)
        g = np.zeros(LANES, w1.dtype)
        loss, hits = 0.0, 0
        for i in range(blk * BLOCK_ROWS, min(rows, (blk + 1) * BLOCK_ROWS)):
            label = y[i]
            m, s, best, at_label = _head(hs, g, _lanes_forward(indptr, cols, vals, w1, i), b1,
                                         w2, b2, classes, label)
            loss += np.log(s) + m - at_label
            hits += best == label
            if not train:
                continue
            scale = inv_rows / s
            for k in range(classes):  # softmax_xent_backward's gradient, rounded as it is
                v = g[k] * scale
                if k == label:
                    v -= inv_rows
                g[k] = v
            for k in range(classes, LANES):
                g[k] = 0
            dlogits = _load16(g, 0)
            _add16(small, LANES + LANES * LANES, one, dlogits)  # db2
            for j in range(hidden):  # dW2 += h^T dlogits (its padded rows are never read)
                _add16(small, LANES + j * LANES, hs[j], dlogits)
            dh = _zeros16(zero)
            for k in range(classes):  # dh = dlogits @ W2^T
                dh = _axpy16(dh, g[k], w2_t, k * LANES)
            dz = _relu_grad16(dh, _load16(hs, 0), zero)
            _add16(small, 0, one, dz)  # db1
            _lanes_scatter(dw1, indptr, cols, vals, i, dz)
        loss_part[blk] = loss
        hit_part[blk] = hits


@_slp_kernel("void(F[:, ::1], F[::1], F[:, ::1], F[::1], F[:, ::1], F[:, ::1])")
def reduce_step(dw1, db1, dw2, db2, dw1_part, dsmall_part):
    """Add fused_step's block partials in block order into the model's gradients: dw1 (n_in, H),
    db1 (H,), dw2 (H, C), db2 (C,)."""
    n_in, hidden = dw1.shape
    classes = db2.shape[0]
    blocks = dw1_part.shape[0]
    for c in prange(n_in):
        for j in range(hidden):
            s = dw1_part[0, c * LANES + j]
            for blk in range(1, blocks):
                s += dw1_part[blk, c * LANES + j]
            dw1[c, j] = s
    small = dsmall_part[0].copy()
    for blk in range(1, blocks):
        for t in range(SMALL):
            small[t] += dsmall_part[blk, t]
    for j in range(hidden):
        db1[j] = small[j]
        for k in range(classes):
            dw2[j, k] = small[LANES + j * LANES + k]
    for k in range(classes):
        db2[k] = small[LANES + LANES * LANES + k]


# The sweep costs per nonzero; a dense uint8 loop over all 784 pixels needs >= 12 ms per epoch
# at 2 threads even at peak FMA (PERF-NOTES.md), the plain path ~50 ms. MNIST is 19% nonzero,
# Fashion-MNIST 50%: inputs denser than this take the plain path.
MAX_DENSITY = 0.35


def applies(sizes, x):
    """Whether the fused pass serves an MLP of `sizes` on inputs x: one hidden layer of at most
    LANES units, at most LANES classes (the head's loops are sized for a narrow layer),
    pixel indices that fit uint16, and sparse inputs."""
    return (len(sizes) == 3 and sizes[1] <= LANES and sizes[2] <= LANES
            and sizes[0] <= 2 ** 16 and np.count_nonzero(x) <= MAX_DENSITY * x.size)


class FusedPass:
    """The fused sweep over fixed inputs x (N, n_in) with labels y (N,) int32, for a model that
    `applies` says it serves: `step` writes every gradient into model.grads, `evaluate` only
    measures. The CSR copy is made once (x never changes: full batch without augmentation)."""

    def __init__(self, model, x, y):
        ready(model.dtype, GROUP)
        self.indptr, self.cols, self.vals = to_csr(x)
        self.y = y
        self.classes = model.sizes[2]
        n_in, hidden = model.weights[0].shape
        # The parameters padded with zeros to LANES hidden units and classes, flat, aligned.
        self.w1 = aligned_zeros(n_in * LANES, model.dtype)  # (n_in * LANES,)
        self.b1 = aligned_zeros(LANES, model.dtype)  # (LANES,)
        self.w2 = aligned_zeros(LANES * LANES, model.dtype)  # (LANES * LANES,)
        self.w2_t = aligned_zeros(LANES * LANES, model.dtype)  # (LANES * LANES,)
        self.b2 = aligned_zeros(LANES, model.dtype)  # (LANES,)
        blocks = n_blocks(len(y))
        self.loss_part = np.zeros(blocks)  # (blocks,)
        self.hit_part = np.zeros(blocks, np.int64)  # (blocks,)
        self.dw1_part = self.dsmall_part = None  # made by the first step: evaluation needs none
        self.no_part = np.zeros((blocks, 0), model.dtype)  # (blocks, 0): evaluation's partials

    def _load(self, model):
        """Copy the model's parameters into the padded buffers (~8,000 values: microseconds)."""
        (n_in, hidden), classes = model.weights[0].shape, self.classes
        np.copyto(self.w1.reshape(n_in, LANES)[:, :hidden], model.weights[0])
        np.copyto(self.b1[:hidden], model.biases[0])
        np.copyto(self.w2.reshape(LANES, LANES)[:hidden, :classes], model.weights[1])
        np.copyto(self.w2_t.reshape(LANES, LANES)[:classes, :hidden], model.weights[1].T)
        np.copyto(self.b2[:classes], model.biases[1])

    def _sweep(self, model, train):
        self._load(model)
        parts = (self.dw1_part, self.dsmall_part) if train else (self.no_part, self.no_part)
        fused_step(*parts, self.loss_part, self.hit_part, self.indptr, self.cols, self.vals,
                   self.y, self.w1, self.b1, self.w2, self.w2_t, self.b2, model.sizes[1],
                   self.classes, train)
        return self.loss_part.sum() / len(self.y), int(self.hit_part.sum())

    def step(self, model):
        """Gradients of the mean cross-entropy into model.grads; returns (loss, correct)."""
        if self.dw1_part is None:
            blocks = n_blocks(len(self.y))
            self.dw1_part = np.zeros((blocks, self.w1.size), model.dtype)
            self.dsmall_part = np.zeros((blocks, SMALL), model.dtype)
        totals = self._sweep(model, True)
        reduce_step(model.dweights[0], model.dbiases[0], model.dweights[1], model.dbiases[1],
                    self.dw1_part, self.dsmall_part)
        return totals

    def evaluate(self, model):
        """(accuracy, mean cross-entropy) of the model on x, y."""
        loss, hits = self._sweep(model, False)
        return hits / len(self.y), loss


def csr_bytes(x, labels=True):
    """The bytes one sweep over x (N, n_in) reads: its CSR (8-byte row pointers, 2-byte column
    indices, the values) and (labels) its int32 labels."""
    return 8 * (len(x) + 1) + np.count_nonzero(x) * (2 + x.itemsize) + 4 * len(x) * labels


@kernel("f8(F[::1])", parallel=True, group=GROUP)
def read_sum(a):
    """The sum of a, read once by every thread's share: `fastmlp bench` times it as the streaming
    bandwidth that the memory-bound sweep is quoted against. fastmath's reassoc lets the sum
    vectorise; without it the add chain, not memory, set the pace (4.1 GB/s at 2 threads)."""
    total = 0.0
    for i in prange(a.shape[0]):
        total += a[i]
    return total
