"""Fused numba kernels: every elementwise and reduction step of a training step.

Matmuls are not here: they go to BLAS through numpy (see forward.py and backward.py), and no
kernel calls BLAS, so numba's and OpenBLAS's thread pools never run inside each other.

Conventions (after llm.c): outputs first, then inputs; gradients carry a `d` prefix. Every kernel
has a plain-numpy twin in tests/naive.py. A kernel whose output is a matmul operand also takes
that output's bfloat16 copy (`z16`, `params16`, ...: uint16, written in the same pass in mixed
precision; an empty array otherwise, and the test is hoisted out of the loops).

Parallel reductions split the rows into fixed chunks of CHUNK_ROWS, write one partial result per
chunk and add the partials in chunk order, so a result depends neither on the thread count nor
on scheduling: the same seed gives the same history at 1 or 2 threads (up to what BLAS does).
"""
import numba
import numpy as np
from numba import prange

from ..runtime.jit import FASTMATH, kernel
from . import bfloat16
from .bfloat16 import bfloat16_of
from .draws import uniform
from .labels import check_labels

# Rows per reduction chunk: large enough that a chunk amortises its partial buffer, small enough
# that a full batch of 48,000 rows spreads over many threads.
CHUNK_ROWS = 256


@numba.njit(cache=True)
def n_chunks(rows):
    """How many CHUNK_ROWS chunks cover `rows` rows (the size of the partial buffers)."""
    return max(1, -(-rows // CHUNK_ROWS))


@numba.njit(inline="always", fastmath=FASTMATH)
def _sum_partials(out, partial):
    """out[j] = sum over chunks of partial[c, j], in chunk order (deterministic)."""
    width = out.shape[0]
    for j in range(width):
        out[j] = 0
    for c in range(partial.shape[0]):
        for j in range(width):
            out[j] += partial[c, j]


@numba.njit(inline="always")
def _first_max(row):
    """(the largest value of row, the index of its first occurrence): the softmax's shift and
    the predicted class, as numpy's argmax picks it."""
    m, best = row[0], 0
    for j in range(1, row.shape[0]):
        if row[j] > m:
            m, best = row[j], j
    return m, best


@numba.njit(inline="always")
def _totals(loss_partial, count_partial, chunks):
    """(the summed loss, the summed count) of the first `chunks` per-chunk partials, added in
    chunk order: the same at any thread count."""
    total, correct = 0.0, 0
    for c in range(chunks):
        total += loss_partial[c]
        correct += count_partial[c]
    return total, correct


@kernel("void(F[:, ::1], u2[:, ::1], F[::1], F, i8)", parallel=True)
def bias_relu(z, z16, b, keep, key):
    """z = max(z + b, 0) in place, then inverted dropout when keep < 1: each unit is kept with
    probability keep and scaled by 1/keep, or zeroed; z16 (empty, or z's shape) = z in
    bfloat16. z (B, H) are a hidden layer's pre-activations, b (H,); unit (i, j) is kept iff
    uniform(key, i * H + j) < keep, so the mask depends only on key and the shape. keep == 1
    runs the plain loop (the test is hoisted).
    """
    rows, width = z.shape
    write16 = z16.shape[0] > 0
    if keep < 1:
        scale = np.reciprocal(keep)
        for i in prange(rows):
            base = i * width
            for j in range(width):
                v = z[i, j] + b[j]
                v = v if v > 0 else 0
                v = v * scale if uniform(key, base + j) < keep else 0
                z[i, j] = v
                if write16:
                    z16[i, j] = bfloat16_of(v)
    else:
        for i in prange(rows):
            for j in range(width):
                v = z[i, j] + b[j]
                v = v if v > 0 else 0
                z[i, j] = v
                if write16:
                    z16[i, j] = bfloat16_of(v)


@kernel("void(F[:, ::1], F[::1])", parallel=True)
def bias_add(z, b):
    """z += b in place; the output layer's logits, which have no ReLU."""
    rows, width = z.shape
    for i in prange(rows):
        for j in range(width):
            z[i, j] += b[j]


@kernel("void(F[:, ::1], u2[:, ::1], F[::1], F[:, ::1], F[:, ::1], F)", parallel=True)
def relu_backward(dz, dz16, db, partial, a, scale):
    """dz = dz * scale where a > 0, else 0, in place (dz16, empty or dz's shape: dz in
    bfloat16); and db = dz summed over the batch.

    dz (B, H) arrives holding dL/da and leaves holding dL/dz; a (B, H) is the layer's output
    (ReLU, then dropout if any); scale is dropout's 1/keep (1 without dropout): a dropped unit
    has a == 0, so it gets no gradient. partial (>= n_chunks(B), >= H) is scratch for the
    deterministic bias-gradient sum.
    """
    rows, width = dz.shape
    chunks = n_chunks(rows)
    write16 = dz16.shape[0] > 0
    for c in prange(chunks):
        acc = partial[c, :width]
        acc[:] = 0
        for i in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
            for j in range(width):
                v = dz[i, j] * scale if a[i, j] > 0 else 0
                dz[i, j] = v
                if write16:
                    dz16[i, j] = bfloat16_of(v)
                acc[j] += v
    _sum_partials(db, partial[:chunks, :width])


@kernel("Tuple((f8, i8))(F[:, ::1], u2[:, ::1], F[::1], F[:, ::1], f8[::1], i8[::1], F[:, ::1], "
        "i4[::1], f8)", parallel=True)
def softmax_xent_backward(dlogits, dlogits16, db, partial, loss_partial, count_partial, logits,
                          y, smoothing):
    """Mean cross-entropy of softmax(logits) against labels y, its gradient, and how many rows
    have their first maximum at the label, in one pass over the logits.

    The target of row i is (1 - smoothing) * onehot(y[i]) + smoothing / K (label smoothing;
    smoothing 0 is the plain one-hot target, computed exactly as before smoothing existed).
    Writes dlogits = (softmax(logits) - target) / B (and dlogits16, empty or its shape, in
    bfloat16) and db = dlogits summed over the batch;
    returns (the mean loss against that target, the rows right). The row maximum is subtracted
    before exp, so huge logits stay finite. logits, dlogits (B, K); y (B,) int32 in [0, K)
    (IndexError otherwise: check_labels);
    partial (>= n_chunks(B), >= K), loss_partial and count_partial (>= n_chunks(B),) are
    scratch. The count rides on the maximum the softmax needs anyway, sparing a separate pass
    over the logits (a kernel call per training step).
    """
    rows, k = logits.shape
    check_labels(y, k)
    chunks = n_chunks(rows)
    write16 = dlogits16.shape[0] > 0
    inv_rows = 1.0 / rows
    hit = (1.0 - smoothing) * inv_rows  # the label's share of the target, over B
    spread = smoothing / k * inv_rows  # every class's share, over B
    for c in prange(chunks):
        acc = partial[c, :k]
        acc[:] = 0
        loss = 0.0
        hits = 0
        for i in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
            m, best = _first_max(logits[i])
            s = 0.0
            for j in range(k):
                e = np.exp(logits[i, j] - m)
                dlogits[i, j] = e
                s += e
            label = y[i]
            loss += np.log(s) + m - logits[i, label]
            hits += best == label
            if smoothing > 0:
                # -sum_j target_j log p_j = plain loss + smoothing * (z_label - mean_j z_j);
                # kept out of the plain path, so that smoothing 0 rounds as it always did.
                z = 0.0
                for j in range(k):
                    z += logits[i, j]
                loss += smoothing * (logits[i, label] - z / k)
            scale = inv_rows / s
            for j in range(k):
                g = dlogits[i, j] * scale
                if j == label:
                    g -= hit
                if smoothing > 0:
                    g -= spread
                dlogits[i, j] = g
                if write16:
                    dlogits16[i, j] = bfloat16_of(g)
                acc[j] += g
        loss_partial[c] = loss
        count_partial[c] = hits
    _sum_partials(db, partial[:chunks, :k])
    total, correct = _totals(loss_partial, count_partial, chunks)
    return total * inv_rows, correct


@kernel("Tuple((f8, i8))(F[:, ::1], i4[::1], f8[::1], i8[::1])", parallel=True)
def xent_count(logits, y, loss_partial, count_partial):
    """(summed cross-entropy of softmax(logits) against labels y, rows whose first maximum is at
    the label) in one pass, for evaluation: softmax_xent_backward's loss and count
    without writing a gradient. logits (B, K); y (B,) int32 in [0, K) (IndexError otherwise);
    loss_partial and count_partial (>= n_chunks(B),) are scratch (docs/performance.md,
    "Evaluation's loss and count")."""
    rows, k = logits.shape
    check_labels(y, k)
    chunks = n_chunks(rows)
    for c in prange(chunks):
        loss = 0.0
        hits = 0
        for i in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
            m, best = _first_max(logits[i])
            s = 0.0
            for j in range(k):
                s += np.exp(logits[i, j] - m)
            label = y[i]
            loss += np.log(s) + m - logits[i, label]
            hits += best == label
        loss_partial[c] = loss
        count_partial[c] = hits
    return _totals(loss_partial, count_partial, chunks)


@kernel("void(F[:, ::1], i4[::1], F[:, ::1], i4[::1], i8[::1], i8, i8, i8)", parallel=True)
def gather_rows(xb, yb, x, y, index, side, shift, key):
    """xb[i] = x[index[i]], yb[i] = y[index[i]]: assemble a shuffled minibatch in place.

    With shift > 0 the rows are side x side images (row-major) and each output image i is its
    source translated by (dy, dx) rows and columns, out[r, c] = src[r - dy, c - dx], with zeros
    where that falls outside; dy and dx are uniform integers in [-shift, shift] drawn from
    uniform(key, 2 * i) and uniform(key, 2 * i + 1). shift == 0 is the plain gather (side is
    then ignored; the test is hoisted).
    """
    width = x.shape[1]
    n = index.shape[0]
    if shift > 0:
        if side * side != width:
            raise ValueError("gather_rows: shift needs rows of side * side pixels")
        span = 2 * shift + 1
        for i in prange(n):
            src = index[i]
            yb[i] = y[src]
            dy = np.int64(uniform(key, 2 * i) * span) - shift
            dx = np.int64(uniform(key, 2 * i + 1) * span) - shift
            # Output columns [c0, c1) come from source columns [c0 - dx, c1 - dx).
            c0 = min(side, max(0, dx))
            c1 = max(c0, min(side, side + dx))
            for r in range(side):
                out = r * side
                sr = r - dy
                if sr < 0 or sr >= side:
                    for c in range(side):
                        xb[i, out + c] = 0
                    continue
                inp = sr * side - dx
                for c in range(c0):
                    xb[i, out + c] = 0
                for c in range(c0, c1):
                    xb[i, out + c] = x[src, inp + c]
                for c in range(c1, side):
                    xb[i, out + c] = 0
    else:
        for i in prange(n):
            src = index[i]
            yb[i] = y[src]
            for j in range(width):
                xb[i, j] = x[src, j]


# gather_rows on bfloat16 bits (uint16): a mixed-precision run gathers from the bfloat16 copy of
# its inputs, made once (zero bits are 0.0, so the shifted gather's zero fill holds too).
gather_rows16 = kernel("void(u2[:, ::1], i4[::1], u2[:, ::1], i4[::1], i8[::1], i8, i8, i8)",
                       parallel=True, group=bfloat16.GROUP)(gather_rows.py_func)


# Tile edge for transpose: a 32 x 32 float64 tile in and out is 16 KiB, well inside L1.
_TILE = 32


@kernel("void(F[:, ::1], F[:, ::1])", parallel=True)
def transpose(out, x):
    """out (C, R) = x (R, C) transposed, tile by tile so that both sides stay in cache: much
    faster than numpy's strided copy (docs/performance.md, "The transposed copy")."""
    rows, cols = x.shape
    for tc in prange((cols + _TILE - 1) // _TILE):
        c0 = tc * _TILE
        c1 = min(cols, c0 + _TILE)
        for r0 in range(0, rows, _TILE):
            r1 = min(rows, r0 + _TILE)
            for c in range(c0, c1):
                for r in range(r0, r1):
                    out[c, r] = x[r, c]


# The optimizers follow PyTorch's single-tensor (CPU) implementations operation for operation,
# so that a run can be checked against torch.optim step by step
# (tests/engine/test_optim_kernels.py).
# Serial loops: ~100k-500k parameters are one pass over memory, which the loops vectorise.
# Scalars derived from the hyper-parameters are computed once in float64, as PyTorch computes
# them in Python floats, then rounded to the array's type.
# Each update (and the moving average) is a jit.ready group of its own, named after it, made
# ready by the optimizer (the trainer) that calls it: a run loads only its own, since every
# kernel loaded from numba's cache costs start-up (docs/performance.md, "Kernels compiled on
# first use").


# Every update also writes the parameters' bfloat16 copy, params16, in mixed precision (empty
# otherwise).


@kernel("void(F[::1], u2[::1], F[::1], F, F)", group="sgd_update")
def sgd_update(params, params16, grads, lr, weight_decay):
    """params -= lr * (grads + weight_decay * params) over the whole flat parameter buffer
    (torch.optim.SGD without momentum)."""
    write16 = params16.shape[0] > 0
    for i in range(params.shape[0]):
        p = params[i] - lr * (grads[i] + weight_decay * params[i])
        params[i] = p
        if write16:
            params16[i] = bfloat16_of(p)


@kernel("void(F[::1], u2[::1], F[::1], F[::1], F, F, F, b1)", group="momentum_update")
def momentum_update(params, params16, grads, velocity, lr, momentum, weight_decay, nesterov):
    """SGD with momentum (torch.optim.SGD with momentum > 0, dampening 0), in one pass:

        g = grads + weight_decay * params
        velocity = momentum * velocity + g
        params -= lr * (g + momentum * velocity if nesterov else velocity)

    velocity has the length of params and starts at zero. PyTorch sets velocity = g on the first
    step instead; from zero, momentum * 0 + g == g exactly, so the two agree from step one.
    """
    write16 = params16.shape[0] > 0
    for i in range(params.shape[0]):
        g = grads[i] + weight_decay * params[i]
        vel = velocity[i] * momentum + g
        velocity[i] = vel
        p = params[i] - lr * (g + momentum * vel if nesterov else vel)
        params[i] = p
        if write16:
            params16[i] = bfloat16_of(p)


@kernel("void(F[::1], u2[::1], F[::1], F[::1], F[::1], F, F, F, F, F, b1, i8)",
        error_model="numpy", group="adam_update")
def adam_update(params, params16, grads, m, v, lr, beta1, beta2, eps, weight_decay, decoupled,
                step):
    """Adam (decoupled False, torch.optim.Adam) or AdamW (decoupled True, torch.optim.AdamW),
    in one pass; step is the 1-based count of this update, m and v start at zero.

        Adam:  g = grads + weight_decay * params
        AdamW: params *= 1 - lr * weight_decay;  g = grads
        m = lerp(m, g, 1 - beta1)          (= beta1 * m + (1 - beta1) * g, as torch rounds it)
        v = beta2 * v + (1 - beta2) * g * g
        params -= lr / (1 - beta1**step) * m / (sqrt(v) / sqrt(1 - beta2**step) + eps)

    eps is added after the bias correction of sqrt(v), as in PyTorch.
    """
    f = params.dtype.type
    lr64, wd64 = np.float64(lr), np.float64(weight_decay)
    b1, b2, t = np.float64(beta1), np.float64(beta2), np.float64(step)
    decay = f(1.0 - lr64 * wd64) if decoupled else f(1)
    coupled_wd = f(0) if decoupled else weight_decay
    w1 = f(1.0 - b1)
    w1_small = abs(w1) < 0.5
    w1_rest = f(1.0 - np.float64(w1))
    w2 = f(1.0 - b2)
    step_size = f(lr64 / (1.0 - b1 ** t))
    c2_sqrt = f(np.sqrt(1.0 - b2 ** t))
    write16 = params16.shape[0] > 0
    for i in range(params.shape[0]):
        p = params[i] * decay
        g = grads[i] + coupled_wd * p
        # torch's lerp: the form that stays accurate for the weight's size.
        mi = m[i] + w1 * (g - m[i]) if w1_small else g - (g - m[i]) * w1_rest
        vi = v[i] * beta2 + w2 * g * g
        m[i] = mi
        v[i] = vi
        p = p - step_size * (mi / (np.sqrt(vi) / c2_sqrt + eps))
        params[i] = p
        if write16:
            params16[i] = bfloat16_of(p)


@kernel("void(F[::1], u2[::1], F[::1], f8, i8)", group="ema_update")
def ema_update(ema, ema16, params, decay, step):
    """ema = d * ema + (1 - d) * params after optimizer update number `step` (1-based), with the
    decay warmed up as d = min(decay, (1 + step) / (10 + step)) (tf.train.ExponentialMovingAverage
    with num_updates), so that the first epochs do not average in the initial weights."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    keep, take = params.dtype.type(d), params.dtype.type(1.0 - d)
    write16 = ema16.shape[0] > 0
    for i in range(params.shape[0]):
        e = keep * ema[i] + take * params[i]
        ema[i] = e
        if write16:
            ema16[i] = bfloat16_of(e)
