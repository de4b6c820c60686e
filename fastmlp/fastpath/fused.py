"""The fused pass for narrow one-hidden-layer MLPs (e.g. `[10]`) at full batch: one row-blocked,
multi-threaded sweep over a sparse (CSR) copy of the fixed inputs does forward, softmax and
cross-entropy with its gradient, backward and every weight-gradient accumulation while a row is
in registers, where the plain path runs two skinny BLAS matmuls over the dense inputs.

It pays because MNIST's pixels are 81% zeros and BLAS runs matmuls 10 columns wide far below
its peak; the sweep reads each nonzero once per epoch (docs/performance.md, "The fused pass").
The hidden layer is padded to 16 register lanes (lanes.py). Partial gradients are kept per
block of BLOCK_ROWS rows (not per thread) and added in block order, so the result does not
depend on the thread count. Every kernel has a numpy twin in tests/naive.py.
"""
import numba
import numpy as np
from numba import prange

from ..engine import cost
from ..engine.labels import check_labels
from ..engine.model import MLP
from ..runtime.jit import kernel, ready
from ..runtime.timing import best_seconds
from .csr import aligned_zeros, csr_bytes, to_csr
from .lanes import (
    LANES,
    add16,
    axpy2x16,
    axpy16,
    load16,
    put16,
    relu16,
    relu_grad16,
    slp_kernel,
    zeros16,
)
from .plain import PlainPath

# The jit.ready group of this module's kernels: compiled only for runs that take this path.
GROUP = "fused"
# Rows per block: a block's partial first-layer gradient (784 x 16 floats, 50 KB) stays in L2.
BLOCK_ROWS = 1024


@numba.njit(cache=True)
def n_blocks(rows):
    return max(1, -(-rows // BLOCK_ROWS))



@numba.njit(inline="always")
def _lanes_forward(indptr, cols, vals, w1, i):
    """The 16 lanes of row i of X @ W1, X in CSR, W1 flat with rows of LANES."""
    # Slices of the row, indexed from 0: numba then emits no negative-index wrap-around code.
    cs, vs = cols[indptr[i]:indptr[i + 1]], vals[indptr[i]:indptr[i + 1]]
    n = cs.shape[0]
    acc = zeros16(w1.dtype.type(0))
    for t in range(n // 2):
        acc = axpy2x16(acc, vs[2 * t], w1, np.intp(cs[2 * t]) * LANES, vs[2 * t + 1],
                        np.intp(cs[2 * t + 1]) * LANES)
    if n % 2:
        acc = axpy16(acc, vs[n - 1], w1, np.intp(cs[n - 1]) * LANES)
    return acc


@numba.njit(inline="always")
def _lanes_scatter(dw1, indptr, cols, vals, i, d):
    """dw1[cols[p] * 16:][:16] += vals[p] * d for every nonzero p of row i: row i's share of
    X^T @ dZ1. d is a 16-tuple, so its lanes stay in registers."""
    cs, vs = cols[indptr[i]:indptr[i + 1]], vals[indptr[i]:indptr[i + 1]]
    for p in range(cs.shape[0]):
        add16(dw1, np.intp(cs[p]) * LANES, vs[p], d)


@numba.njit(inline="always")
def _head(hs, g, a, b1, w2, b2, classes, label):
    """h = relu(a + b1), logits = h @ w2 + b2 (w2 (LANES x LANES), b1, b2 padded with zeros,
    flat), as 16-tuples; h is stored in hs, exp(logits - max) in g (the padded lanes hold 0).
    Returns (max logit, sum of exp(logit - max) in float64 as softmax_xent_backward sums it,
    first argmax, the label's logit); returning h as well trips numba's parfor analysis (a
    tuple inside the tuple). The arithmetic is the
    plain path's up to the order of the sums inside the matmuls."""
    h = relu16(a, b1, w2.dtype.type(0))
    put16(hs, h)
    logits = load16(b2, 0)
    for j in range(LANES):
        logits = axpy16(logits, hs[j], w2, j * LANES)
    put16(g, logits)
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


@slp_kernel("void(F[:, ::1], F[:, ::1], f8[::1], i8[::1], i8[::1], u2[::1], F[::1], i4[::1], "
            "F[::1], F[::1], F[::1], F[::1], F[::1], i8, i8, b1)", GROUP)
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
    check_labels(y, classes)  # g[label] below: a label out of range would write past g
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
            dlogits = load16(g, 0)
            add16(small, LANES + LANES * LANES, one, dlogits)  # db2
            for j in range(hidden):  # dW2 += h^T dlogits (its padded rows are never read)
                add16(small, LANES + j * LANES, hs[j], dlogits)
            dh = zeros16(zero)
            for k in range(classes):  # dh = dlogits @ W2^T
                dh = axpy16(dh, g[k], w2_t, k * LANES)
            dz = relu_grad16(dh, load16(hs, 0), zero)
            add16(small, 0, one, dz)  # db1
            _lanes_scatter(dw1, indptr, cols, vals, i, dz)
        loss_part[blk] = loss
        hit_part[blk] = hits


@slp_kernel("void(F[:, ::1], F[::1], F[:, ::1], F[::1], F[:, ::1], F[:, ::1])", GROUP)
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


# The sweep costs per nonzero: inputs denser than this take the plain path (MNIST is 19%
# nonzero, Fashion-MNIST 50%; docs/performance.md, "The fused pass").
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


@kernel("f8(F[::1])", parallel=True, group=GROUP)
def read_sum(a):
    """The sum of a, read once by every thread's share: `fastmlp bench` times it as the streaming
    bandwidth that the memory-bound sweep is quoted against. fastmath's reassoc lets the sum
    vectorise; without it the add chain, not memory, sets the pace."""
    total = 0.0
    for i in prange(a.shape[0]):
        total += a[i]
    return total


class FusedPath(PlainPath):
    """The fused sweep in place of the step's matmuls and kernels (training) and of the
    validation split's evaluation; a test split is evaluated the plain way."""
    name = "fused"

    def __init__(self, x, y):
        super().__init__(x, y, in_place=True)
        self.sweep = None

    @property
    def description(self):
        return "fused pass"

    def copies(self, val_x):
        """The CSR copies of the training and validation inputs, with int32 labels beside."""
        return {"sparse inputs": csr_bytes(self.x) + csr_bytes(val_x)}

    def kernel_seconds(self, sizes):
        """(seconds per training row, per validation row, ns per nonzero) of the sweep's step
        and evaluation, timed now on PROBE_ROWS training rows (best of PROBE_REPEATS)."""
        x, y = self.x[:cost.PROBE_ROWS], self.y[:cost.PROBE_ROWS]
        model = MLP(sizes, x.dtype).initialize("he", np.random.default_rng(0))
        sweep = FusedPass(model, x, y)
        step, evaluate = best_seconds([lambda: sweep.step(model), lambda: sweep.evaluate(model)],
                                      cost.PROBE_REPEATS)
        return step / len(y), evaluate / len(y), 1e9 * step / np.count_nonzero(x)

    def estimate(self, plan):
        # A sweep and the update a step, no matmuls; the validation split is swept too.
        per_row = self._eval_row_seconds(plan)
        train_row, val_row, ns = self.kernel_seconds(plan.sizes)
        update = cost.update_bytes(plan)
        update_seconds, bandwidth = cost.other_seconds(update)
        swept = plan.n_val * (val_row - per_row)
        return cost.Estimate(0.0, plan.n_train * train_row + update_seconds,
                             plan.n_eval * per_row + swept, plan.n_once * per_row + swept,
                             plan.epochs, None, bandwidth, ns)

    def _allocate(self, model, gemm):
        self.sweep = FusedPass(model, self.x, self.y)

    def full_batch_step(self, trainer):
        loss, correct = self.sweep.step(trainer.model)
        trainer.update()
        return loss, correct

    def evaluator(self, model, x, y, ws, gemm=None):
        sweep = FusedPass(model, x, y)  # no matmuls: gemm is not needed
        return lambda: sweep.evaluate(model)
