"""The fused pass for narrow one-hidden-layer MLPs (e.g. `[10]`) at full batch: one row-blocked,
multi-threaded sweep over a sparse (CSR) copy of the fixed inputs does forward, softmax and
cross-entropy with its gradient, backward and every weight-gradient accumulation while a row is
in registers, where the plain path runs two skinny BLAS matmuls over the 150 MB dense inputs.

Why it pays (2-core EPYC, float32, [10], 48,000 rows): MNIST pixels are 81% zeros, and the
plain path's matmuls on 10 columns run at 20-35 GFLOPS; the sweep reads 6 bytes per nonzero
once per epoch and is bound by the core's load/store ports (~4-5 cycles per nonzero).

How the nonzero loops are kept in registers (each measured on the prototype, PERF-NOTES.md):
the hidden layer is padded to LANES = 16 lanes (two AVX2 vectors of float32) held in sixteen
scalar variables (a local array is not kept in registers: LLVM cannot prove it does not alias
the weights), which LLVM's SLP vectoriser turns into vector FMAs. numba leaves SLP off by
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

from .kernels import FASTMATH

LANES = 16
# Rows per block: a block's partial first-layer gradient (784 x 16 floats, 50 KB) stays in L2.
BLOCK_ROWS = 1024
# Without reassoc: with it LLVM turns the lane sums back into gathers across nonzeros.
_FASTMATH = FASTMATH - {"reassoc"}


def _slp_kernel(template, parallel=True):
    """Compile a kernel eagerly for float32 and float64 with LLVM's SLP vectoriser on (see the
    module docstring), then restore numba's setting."""
    def compile_it(fn):
        previous = numba.config.SLP_VECTORIZE
        numba.config.SLP_VECTORIZE = 1
        try:
            return numba.njit([template.replace("F", f) for f in ("f4", "f8")],
                              parallel=parallel, fastmath=_FASTMATH, cache=True, nogil=True,
                              error_model="numpy", boundscheck=False)(fn)
        finally:
            numba.config.SLP_VECTORIZE = previous
    return compile_it


@numba.njit(cache=True)
def n_blocks(rows):
    return max(1, -(-rows // BLOCK_ROWS))


@numba.njit(inline="always")
def _lanes_forward(indptr, cols, vals, w1, i):
    """The 16 lanes of row i of X @ W1, X in CSR, W1 flat with rows of LANES."""
    # Slices of the row, indexed from 0: numba then emits no negative-index wrap-around code.
    cs, vs = cols[indptr[i]:indptr[i + 1]], vals[indptr[i]:indptr[i + 1]]
    n = cs.shape[0]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = w1.dtype.type(0)
    a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = a0
    for t in range(n // 2):
        u, o = vs[2 * t], np.intp(cs[2 * t]) * 16
        v, q = vs[2 * t + 1], np.intp(cs[2 * t + 1]) * 16
        a0 += u * w1[o] + v * w1[q]
        a1 += u * w1[o + 1] + v * w1[q + 1]
        a2 += u * w1[o + 2] + v * w1[q + 2]
        a3 += u * w1[o + 3] + v * w1[q + 3]
        a4 += u * w1[o + 4] + v * w1[q + 4]
        a5 += u * w1[o + 5] + v * w1[q + 5]
        a6 += u * w1[o + 6] + v * w1[q + 6]
        a7 += u * w1[o + 7] + v * w1[q + 7]
        a8 += u * w1[o + 8] + v * w1[q + 8]
        a9 += u * w1[o + 9] + v * w1[q + 9]
        a10 += u * w1[o + 10] + v * w1[q + 10]
        a11 += u * w1[o + 11] + v * w1[q + 11]
        a12 += u * w1[o + 12] + v * w1[q + 12]
        a13 += u * w1[o + 13] + v * w1[q + 13]
        a14 += u * w1[o + 14] + v * w1[q + 14]
        a15 += u * w1[o + 15] + v * w1[q + 15]
    if n % 2:
        u, o = vs[n - 1], np.intp(cs[n - 1]) * 16
        a0 += u * w1[o]
        a1 += u * w1[o + 1]
        a2 += u * w1[o + 2]
        a3 += u * w1[o + 3]
        a4 += u * w1[o + 4]
        a5 += u * w1[o + 5]
        a6 += u * w1[o + 6]
        a7 += u * w1[o + 7]
        a8 += u * w1[o + 8]
        a9 += u * w1[o + 9]
        a10 += u * w1[o + 10]
        a11 += u * w1[o + 11]
        a12 += u * w1[o + 12]
        a13 += u * w1[o + 13]
        a14 += u * w1[o + 14]
        a15 += u * w1[o + 15]
    return (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15)


@numba.njit(inline="always")
def _lanes_scatter(dw1, indptr, cols, vals, i, d):
    """dw1[cols[p] * 16 + j] += vals[p] * d[j] for every nonzero p of row i: row i's share of
    X^T @ dZ1. d is a 16-tuple, so its lanes stay in registers."""
    d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15 = d
    cs, vs = cols[indptr[i]:indptr[i + 1]], vals[indptr[i]:indptr[i + 1]]
    for p in range(cs.shape[0]):
        v, o = vs[p], np.intp(cs[p]) * 16
        dw1[o] += v * d0
        dw1[o + 1] += v * d1
        dw1[o + 2] += v * d2
        dw1[o + 3] += v * d3
        dw1[o + 4] += v * d4
        dw1[o + 5] += v * d5
        dw1[o + 6] += v * d6
        dw1[o + 7] += v * d7
        dw1[o + 8] += v * d8
        dw1[o + 9] += v * d9
        dw1[o + 10] += v * d10
        dw1[o + 11] += v * d11
        dw1[o + 12] += v * d12
        dw1[o + 13] += v * d13
        dw1[o + 14] += v * d14
        dw1[o + 15] += v * d15


@numba.njit(inline="always")
def _head(h, logits, a, b1, w2, b2, label):
    """h = relu(a + b1) over the real hidden units, logits = h @ w2 + b2; returns the row's
    (max logit, sum of exp(logit - max), first argmax, the label's logit). logits is left
    holding exp(logit - max).
    The arithmetic is the plain path's (bias_relu, the matmul, bias_add, softmax_xent_backward)
    up to the order of the sums inside the matmuls."""
    hidden, classes = w2.shape
    for j in range(hidden):
        v = a[j] + b1[j]
        h[j] = v if v > 0 else 0
    for k in range(classes):
        s = h[0] * w2[0, k]
        for j in range(1, hidden):
            s += h[j] * w2[j, k]
        logits[k] = s + b2[k]
    m, best = logits[0], 0
    for k in range(1, classes):
        if logits[k] > m:
            m, best = logits[k], k
    at_label = logits[label]
    s = 0.0  # float64, as in softmax_xent_backward
    for k in range(classes):
        e = np.exp(logits[k] - m)
        logits[k] = e
        s += e
    return m, s, best, at_label


@_slp_kernel("void(F[:, ::1], F[:, ::1], f8[::1], i8[::1], i8[::1], u2[::1], F[::1], i4[::1], "
             "F[::1], F[::1], F[:, ::1], F[::1])")
def fused_step(dw1_part, dsmall_part, loss_part, hit_part, indptr, cols, vals, y, w1, b1, w2,
               b2):
    """Forward, mean cross-entropy, backward and every gradient of a 1-hidden-layer MLP over the
    rows of X (CSR: indptr, cols, vals), labels y, in one sweep; partial results per block of
    BLOCK_ROWS rows: dw1_part (blocks, n_in * LANES) the first layer's weight gradient (lanes
    beyond the hidden width stay zero), dsmall_part (blocks, H + H * C + C) [db1, dW2, db2],
    loss_part (blocks,) summed losses, hit_part (blocks,) correct rows. w1 is W1 (n_in, H)
    padded to LANES columns, flat; w2 (H, C); H <= LANES. `reduce_step` adds the blocks up.
    """
    rows = y.shape[0]
    hidden, classes = w2.shape
    inv_rows = 1.0 / rows
    for blk in prange(dw1_part.shape[0]):
        dw1 = dw1_part[blk]
        small = dsmall_part[blk]
        dw1[:] = 0
        small[:] = 0
        db1 = small[:hidden]
        dw2 = small[hidden:hidden + hidden * classes]
        db2 = small[hidden + hidden * classes:]
        h = np.zeros(LANES, w1.dtype)
        g = np.zeros(classes, w1.dtype)
        dz = np.zeros(LANES, w1.dtype)
        loss, hits = 0.0, 0
        for i in range(blk * BLOCK_ROWS, min(rows, (blk + 1) * BLOCK_ROWS)):
            a = _lanes_forward(indptr, cols, vals, w1, i)
            label = y[i]
            m, s, best, at_label = _head(h, g, a, b1, w2, b2, label)
            loss += np.log(s) + m - at_label
            hits += best == label
            scale = inv_rows / s
            for k in range(classes):
                v = g[k] * scale
                if k == label:
                    v -= inv_rows
                g[k] = v
                db2[k] += v
            for j in range(hidden):
                hj = h[j]
                t = g[0] * w2[j, 0]
                for k in range(classes):
                    dw2[j * classes + k] += hj * g[k]
                for k in range(1, classes):
                    t += g[k] * w2[j, k]
                t = t if hj > 0 else 0
                dz[j] = t
                db1[j] += t
            _lanes_scatter(dw1, indptr, cols, vals, i,
                           (dz[0], dz[1], dz[2], dz[3], dz[4], dz[5], dz[6], dz[7], dz[8],
                            dz[9], dz[10], dz[11], dz[12], dz[13], dz[14], dz[15]))
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
    for t in range(hidden + hidden * classes + classes):
        s = dsmall_part[0, t]
        for blk in range(1, blocks):
            s += dsmall_part[blk, t]
        if t < hidden:
            db1[t] = s
        elif t < hidden + hidden * classes:
            dw2[(t - hidden) // classes, (t - hidden) % classes] = s
        else:
            db2[t - hidden - hidden * classes] = s


@_slp_kernel("void(f8[::1], i8[::1], i8[::1], u2[::1], F[::1], i4[::1], F[::1], F[::1], "
             "F[:, ::1], F[::1])")
def fused_eval(loss_part, hit_part, indptr, cols, vals, y, w1, b1, w2, b2):
    """fused_step's forward alone: per block, the summed cross-entropy and the correct rows."""
    rows = y.shape[0]
    hidden, classes = w2.shape
    for blk in prange(loss_part.shape[0]):
        h = np.zeros(LANES, w1.dtype)
        g = np.zeros(classes, w1.dtype)
        loss, hits = 0.0, 0
        for i in range(blk * BLOCK_ROWS, min(rows, (blk + 1) * BLOCK_ROWS)):
            a = _lanes_forward(indptr, cols, vals, w1, i)
            label = y[i]
            m, s, best, at_label = _head(h, g, a, b1, w2, b2, label)
            loss += np.log(s) + m - at_label
            hits += best == label
        loss_part[blk] = loss
        hit_part[blk] = hits


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


def to_csr(x):
    """x (N, n_in) as CSR: (indptr (N + 1,) int64, column indices (nnz,) uint16, values (nnz,)
    of x's type), row by row in column order."""
    nonzero = x != 0
    indptr = np.zeros(len(x) + 1, np.int64)
    np.cumsum(nonzero.sum(axis=1), out=indptr[1:])
    return indptr, np.nonzero(nonzero)[1].astype(np.uint16), x[nonzero]


def _aligned_zeros(n, dtype):
    """n zeros of dtype starting on a 64-byte boundary (a LANES row of float32 is one line)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n + 64 // itemsize, dtype)
    skip = (-raw.ctypes.data % 64) // itemsize
    return raw[skip:skip + n]


class FusedPass:
    """The fused sweep over fixed inputs x (N, n_in) with labels y (N,) int32, for a model that
    `applies` says it serves: `step` writes every gradient into model.grads, `evaluate` only
    measures. The CSR copy is made once (x never changes: full batch without augmentation)."""

    def __init__(self, model, x, y):
        self.indptr, self.cols, self.vals = to_csr(x)
        self.y = y
        n_in, hidden = model.weights[0].shape
        self.w1 = _aligned_zeros(n_in * LANES, model.dtype)  # (n_in * LANES,)
        self.w1_rows = self.w1.reshape(n_in, LANES)[:, :hidden]  # the real lanes
        blocks = n_blocks(len(y))
        self.loss_part = np.zeros(blocks)  # (blocks,)
        self.hit_part = np.zeros(blocks, np.int64)  # (blocks,)
        self.dw1_part = self.dsmall_part = None  # made by the first step: evaluation needs none

    def _load(self, model):
        np.copyto(self.w1_rows, model.weights[0])
        return self.w1, model.biases[0], model.weights[1], model.biases[1]

    def _totals(self):
        return self.loss_part.sum() / len(self.y), int(self.hit_part.sum())

    def step(self, model):
        """Gradients of the mean cross-entropy into model.grads; returns (loss, correct)."""
        if self.dw1_part is None:
            n_in, hidden = model.weights[0].shape
            classes = model.sizes[2]
            blocks = n_blocks(len(self.y))
            self.dw1_part = np.zeros((blocks, n_in * LANES), model.dtype)
            self.dsmall_part = np.zeros((blocks, hidden * (1 + classes) + classes), model.dtype)
        fused_step(self.dw1_part, self.dsmall_part, self.loss_part, self.hit_part, self.indptr,
                   self.cols, self.vals, self.y, *self._load(model))
        reduce_step(model.dweights[0], model.dbiases[0], model.dweights[1], model.dbiases[1],
                    self.dw1_part, self.dsmall_part)
        return self._totals()

    def evaluate(self, model):
        """(accuracy, mean cross-entropy) of the model on x, y."""
        fused_eval(self.loss_part, self.hit_part, self.indptr, self.cols, self.vals, self.y,
                   *self._load(model))
        loss, hits = self._totals()
        return hits / len(self.y), loss


def csr_bytes(x):
    """The bytes one sweep over x (N, n_in) reads: its CSR (8-byte row pointers, 2-byte column
    indices, the values) and its int32 labels."""
    return 8 * (len(x) + 1) + np.count_nonzero(x) * (2 + x.itemsize) + 4 * len(x)


@numba.njit(["f8(f4[::1])", "f8(f8[::1])"], parallel=True, cache=True, nogil=True)
def read_sum(a):
    """The sum of a, read once by every thread's share: `fastmlp bench` times it as the streaming
    bandwidth that the memory-bound sweep is quoted against."""
    total = 0.0
    for i in prange(a.shape[0]):
        total += a[i]
    return total
