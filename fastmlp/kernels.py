"""Fused numba kernels: every elementwise and reduction step of a training step.

Matmuls are not here: they go to BLAS through numpy (see forward.py and backward.py), and no
kernel calls BLAS, so numba's and OpenBLAS's thread pools never run inside each other.

Conventions (after llm.c): outputs first, then inputs; gradients carry a `d` prefix. Every kernel
has a plain-numpy twin in tests/naive.py.

Parallel reductions split the rows into fixed chunks of CHUNK_ROWS, write one partial result per
chunk and add the partials in chunk order, so a result depends neither on the thread count nor
on scheduling: the same seed gives the same history at 1 or 2 threads (up to what BLAS does).
"""
import os

# numba's OpenMP pool and OpenBLAS's pool take turns on the same cores. Spinning OpenMP
# workers steal the cores from the next BLAS call (measured: a full-batch weight-gradient
# matmul took 124 ms instead of 82 ms), so idle workers must sleep. libgomp reads this when
# the first parallel kernel loads it; a value the user set is kept.
INJECTED_ENV = {} if "OMP_WAIT_POLICY" in os.environ else {"OMP_WAIT_POLICY": "PASSIVE"}
os.environ.update(INJECTED_ENV)

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import prange  # noqa: E402

# OpenMP first (with the policy above); tbb or numba's own workqueue where it is missing.
numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]

# fastmath without nnan/ninf: with those flags isnan/isfinite would silently return False and a
# diverging run could not be detected.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Rows per reduction chunk: large enough that a chunk amortises its partial buffer, small enough
# that a full batch of 48,000 rows spreads over many threads.
CHUNK_ROWS = 256


@numba.njit(cache=True)
def n_chunks(rows):
    """How many CHUNK_ROWS chunks cover `rows` rows (the size of the partial buffers)."""
    return max(1, -(-rows // CHUNK_ROWS))


def _signatures(template):
    """The float32 and float64 signatures of a kernel; F stands for the float type."""
    return [template.replace("F", f) for f in ("f4", "f8")]


def _kernel(template, parallel=False):
    return numba.njit(_signatures(template), parallel=parallel, fastmath=FASTMATH, cache=True,
                      nogil=True)


@numba.njit(inline="always", fastmath=FASTMATH)
def _sum_partials(out, partial):
    """out[j] = sum over chunks of partial[c, j], in chunk order (deterministic)."""
    width = out.shape[0]
    for j in range(width):
        out[j] = 0
    for c in range(partial.shape[0]):
        for j in range(width):
            out[j] += partial[c, j]


@_kernel("void(F[:, ::1], F[::1])", parallel=True)
def bias_relu(z, b):
    """z = max(z + b, 0) in place; z (B, H) are a hidden layer's pre-activations, b (H,)."""
    rows, width = z.shape
    for i in prange(rows):
        for j in range(width):
            v = z[i, j] + b[j]
            z[i, j] = v if v > 0 else 0


@_kernel("void(F[:, ::1], F[::1])", parallel=True)
def bias_add(z, b):
    """z += b in place; the output layer's logits, which have no ReLU."""
    rows, width = z.shape
    for i in prange(rows):
        for j in range(width):
            z[i, j] += b[j]


@_kernel("void(F[:, ::1], F[::1], F[:, ::1], F[:, ::1])", parallel=True)
def relu_backward(dz, db, partial, a):
    """dz *= (a > 0) in place, and db = dz summed over the batch.

    dz (B, H) arrives holding dL/da and leaves holding dL/dz; a (B, H) is the layer's ReLU
    output; partial (>= n_chunks(B), >= H) is scratch for the deterministic bias-gradient sum.
    """
    rows, width = dz.shape
    chunks = n_chunks(rows)
    for c in prange(chunks):
        acc = partial[c, :width]
        acc[:] = 0
        for i in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
            for j in range(width):
                v = dz[i, j] if a[i, j] > 0 else 0
                dz[i, j] = v
                acc[j] += v
    _sum_partials(db, partial[:chunks, :width])


@_kernel("f8(F[:, ::1], F[::1], F[:, ::1], f8[::1], F[:, ::1], i4[::1])", parallel=True)
def softmax_xent_backward(dlogits, db, partial, loss_partial, logits, y):
    """Mean cross-entropy of softmax(logits) against labels y, and its gradient, in one pass.

    Writes dlogits = (softmax(logits) - onehot(y)) / B and db = dlogits summed over the batch;
    returns the mean loss. The row maximum is subtracted before exp, so huge logits stay finite.
    logits, dlogits (B, K); y (B,) int32 in [0, K); partial (>= n_chunks(B), >= K) and
    loss_partial (>= n_chunks(B),) are scratch.
    """
    rows, k = logits.shape
    chunks = n_chunks(rows)
    inv_rows = 1.0 / rows
    for c in prange(chunks):
        acc = partial[c, :k]
        acc[:] = 0
        loss = 0.0
        for i in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
            m = logits[i, 0]
            for j in range(1, k):
                m = max(m, logits[i, j])
            s = 0.0
            for j in range(k):
                e = np.exp(logits[i, j] - m)
                dlogits[i, j] = e
                s += e
            label = y[i]
            loss += np.log(s) + m - logits[i, label]
            scale = inv_rows / s
            for j in range(k):
                g = dlogits[i, j] * scale
                if j == label:
                    g -= inv_rows
                dlogits[i, j] = g
                acc[j] += g
        loss_partial[c] = loss
    _sum_partials(db, partial[:chunks, :k])
    total = 0.0
    for c in range(chunks):
        total += loss_partial[c]
    return total * inv_rows


@_kernel("i8(F[:, ::1], i4[::1], i8[::1])", parallel=True)
def count_correct(logits, y, count_partial):
    """How many rows of logits (B, K) have their first maximum at the label y (B,)."""
    rows, k = logits.shape
    chunks = n_chunks(rows)
    for c in prange(chunks):
        hits = 0
        for i in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
            best = 0
            for j in range(1, k):
                if logits[i, j] > logits[i, best]:
                    best = j
            if best == y[i]:
                hits += 1
        count_partial[c] = hits
    total = 0
    for c in range(chunks):
        total += count_partial[c]
    return total


@_kernel("void(F[:, ::1], i4[::1], F[:, ::1], i4[::1], i8[::1])", parallel=True)
def gather_rows(xb, yb, x, y, index):
    """xb[i] = x[index[i]], yb[i] = y[index[i]]: assemble a shuffled minibatch in place."""
    width = x.shape[1]
    for i in prange(index.shape[0]):
        src = index[i]
        yb[i] = y[src]
        for j in range(width):
            xb[i, j] = x[src, j]


# Tile edge for transpose: a 32 x 32 float64 tile in and out is 16 KiB, well inside L1.
_TILE = 32


@_kernel("void(F[:, ::1], F[:, ::1])", parallel=True)
def transpose(out, x):
    """out (C, R) = x (R, C) transposed, tile by tile so that both sides stay in cache
    (for the 48,000 x 784 training set: ~80 ms on 2 cores, numpy's strided copy ~250 ms)."""
    rows, cols = x.shape
    for tc in prange((cols + _TILE - 1) // _TILE):
        c0 = tc * _TILE
        c1 = min(cols, c0 + _TILE)
        for r0 in range(0, rows, _TILE):
            r1 = min(rows, r0 + _TILE)
            for c in range(c0, c1):
                for r in range(r0, r1):
                    out[c, r] = x[r, c]


@_kernel("void(F[::1], F[::1], F)")
def sgd_update(params, grads, lr):
    """params -= lr * grads over the whole flat parameter buffer."""
    for i in range(params.shape[0]):
        params[i] -= lr * grads[i]
