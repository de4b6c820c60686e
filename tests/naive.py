"""Plain-numpy twins of every fused kernel and of the passes, written the obvious way.

They allocate freely and use float64 where it helps; the tests compare the kernels to them.
"""
import numpy as np


def mix64(z):
    """splitmix64's finaliser on a uint64 array (array arithmetic wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(key, counters):
    """The kernels' counter-based uniforms in [0, 1): output number `counter` of splitmix64
    seeded with mix64(key), top 53 bits."""
    seed = mix64(np.array([key], np.int64).view(np.uint64))
    counters = np.asarray(counters, np.int64).astype(np.uint64)
    state = seed + (counters + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    return (mix64(state) >> np.uint64(11)).astype(np.float64) / 2.0 ** 53


def dropout_mask(rows, width, keep, key):
    """Which units of a (rows, width) layer inverted dropout keeps."""
    return uniform(key, np.arange(rows * width)).reshape(rows, width) < keep


def bias_relu(z, b, keep=1.0, key=0):
    """max(z + b, 0), then kept units times 1/keep and dropped ones zeroed (keep of z's type)."""
    a = np.maximum(z + b, 0)
    if keep < 1:
        a = np.where(dropout_mask(*a.shape, keep, key), a * np.reciprocal(keep), 0).astype(a.dtype)
    return a


def bias_add(z, b):
    return z + b


def relu_backward(da, a, scale=1.0):
    dz = da * scale * (a > 0)
    return dz, dz.sum(axis=0)


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_labels(y, classes):
    """kernels.check_labels: IndexError unless every label is in [0, classes) (numpy's fancy
    indexing would take -1 as the last class)."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise IndexError("a label is outside 0..K-1")


def smoothed_target(y, classes, smoothing=0.0):
    """(1 - smoothing) * onehot(y) + smoothing / classes, (B, classes)."""
    check_labels(y, classes)
    target = np.full((len(y), classes), smoothing / classes)
    target[np.arange(len(y)), y] += 1 - smoothing
    return target


def xent_loss(logits, y, smoothing=0.0):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -(smoothed_target(y, logits.shape[1], smoothing) * log_p).sum(axis=1).mean()


def softmax_xent_backward(logits, y, smoothing=0.0):
    """(dlogits, db, mean loss)."""
    dlogits = (softmax(logits) - smoothed_target(y, logits.shape[1], smoothing)) / len(y)
    return dlogits, dlogits.sum(axis=0), xent_loss(logits, y, smoothing)


def count_correct(logits, y):
    return int((logits.argmax(axis=1) == y).sum())


def shift_offsets(n, shift, key):
    """(dy, dx) of each of n images: integers uniform in [-shift, shift]."""
    d = np.floor(uniform(key, np.arange(2 * n)) * (2 * shift + 1)).astype(np.int64) - shift
    return d[0::2], d[1::2]


def translate(img, dy, dx):
    """img (side, side) moved down dy rows and right dx columns, zeros coming in."""
    out = np.roll(img, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = 0
    elif dy < 0:
        out[dy:] = 0
    if dx > 0:
        out[:, :dx] = 0
    elif dx < 0:
        out[:, dx:] = 0
    return out


def gather_rows(x, y, index, side=None, shift=0, key=0):
    xb = x[index]
    if shift > 0:
        dys, dxs = shift_offsets(len(index), shift, key)
        xb = np.stack([translate(row.reshape(side, side), dy, dx).ravel()
                       for row, dy, dx in zip(xb, dys, dxs)]) if len(index) else xb
    return xb, y[index]


def affine_coords(w, side, rotate, scale, shear, shift):
    """The source coordinates (sx, sy), (side, side) each, at which the affine gather samples
    an output image whose five draws in [-1, 1) are w."""
    wa, ws, wh, wy, wx = w
    centre = (side - 1) / 2
    r, c = np.mgrid[0:side, 0:side].astype(np.float64)
    a, s = np.radians(rotate * wa), 1 + scale * ws
    h = np.tan(np.radians(shear * wh))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = rot @ np.array([[1, h], [0, 1]]) / s
    u, v = c - centre - shift * wx, r - centre - shift * wy
    return centre + m[0, 0] * u + m[0, 1] * v, centre + m[1, 0] * u + m[1, 1] * v


def bilinear(img, sx, sy):
    """img (side, side) sampled bilinearly at columns sx, rows sy, zeros outside."""
    side = img.shape[0]
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = sx - x0, sy - y0

    def at(iy, ix):  # the source pixel, 0 outside the image
        inside = (iy >= 0) & (iy < side) & (ix >= 0) & (ix < side)
        return np.where(inside, img[np.clip(iy, 0, side - 1), np.clip(ix, 0, side - 1)], 0)

    return ((1 - fx) * (1 - fy) * at(y0, x0) + fx * (1 - fy) * at(y0, x0 + 1)
            + (1 - fx) * fy * at(y0 + 1, x0) + fx * fy * at(y0 + 1, x0 + 1))


def affine_gather(x, y, index, side, rotate, scale, shear, shift, key, alpha=0.0, bank=None,
                  field_key=0):
    """The affine gather (augment.gather_affine), image by image with array indexing, float64;
    alpha > 0 adds the elastic displacement (elastic.gather_elastic) of the field pairs of
    `bank` (elastic_bank) to its coordinates."""
    w = 2 * uniform(key, np.arange(5 * len(index))).reshape(-1, 5) - 1
    out = np.zeros((len(index), side * side))
    for i, src in enumerate(index):
        sx, sy = affine_coords(w[i], side, rotate, scale, shear, shift)
        if alpha:
            dx, dy = elastic_variant(bank, field_key, i)
            sx, sy = sx + alpha * dx, sy + alpha * dy
        out[i] = bilinear(x[src].reshape(side, side).astype(np.float64), sx, sy).ravel()
    return out.astype(x.dtype), y[index]


def elastic_variant(bank, key, i):
    """Output image i's unscaled displacements (dx, dy), float64: pair pick // 8 of the bank,
    pick uniform over the bank's 8 B variants, its two fields swapped when bit 2 of pick is set,
    dx negated when bit 0 is, dy when bit 1 is."""
    pick = int(np.floor(uniform(key, [i])[0] * 8 * len(bank)))
    side = bank.shape[1]
    pair = bank[pick // 8].astype(np.float64)
    dx, dy = pair[:, :side], pair[:, side:]
    if pick & 4:
        dx, dy = dy, dx
    return (-dx if pick & 1 else dx), (-dy if pick & 2 else dy)


def elastic_bank(key, fields, side, sigma):
    """A run's bank of field pairs (fields, side, 2 side) float32, pair b holding dx then dy
    side by side in each row, as elastic_field(key, b, side, sigma) draws them."""
    return np.stack([np.hstack(elastic_field(key, b, side, sigma))
                     for b in range(fields)]).astype(np.float32)


def elastic_field(key, i, side, sigma):
    """Output image i's unscaled displacements (dx, dy), (side, side) each: uniforms in [-1, 1)
    (counters 2 side^2 i onwards, dx's grid then dy's) smoothed by the Gaussian of standard
    deviation sigma truncated at 3 sigma, weights summing to 1, zeros beyond the grid, as the
    dense product G U G^T with G[r, k] = g(k - r)."""
    radius = int(3 * sigma + 0.5)
    k = np.arange(-radius, radius + 1)
    g = np.exp(-k ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    offset = np.subtract.outer(np.arange(side), np.arange(side))  # r - k
    dense = np.where(np.abs(offset) <= radius, g[np.clip(offset + radius, 0, 2 * radius)], 0)
    area = side * side
    u = 2 * uniform(key, 2 * area * i + np.arange(2 * area)).reshape(2, side, side) - 1
    return dense @ u[0] @ dense.T, dense @ u[1] @ dense.T


def ema_update(ema, params, decay, step):
    """The averaged weights after update number `step` (1-based): decay warmed up as
    min(decay, (1 + step) / (10 + step))."""
    d = min(decay, (1 + step) / (10 + step))
    return d * ema + (1 - d) * params


def transpose(x):
    return x.T.copy()


def sgd_update(params, grads, lr, weight_decay=0.0):
    return params - lr * (grads + weight_decay * params)


def momentum_update(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    """(params, velocity) after one step of SGD with (Nesterov) momentum."""
    g = grads + weight_decay * params
    velocity = momentum * velocity + g
    step = g + momentum * velocity if nesterov else velocity
    return params - lr * step, velocity


def adam_update(params, grads, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step):
    """(params, m, v) after Adam step number `step` (1-based); AdamW when decoupled. Textbook
    form, with PyTorch's placement of eps: after dividing sqrt(v) by sqrt(1 - beta2**step)."""
    if decoupled:
        params = params * (1 - lr * weight_decay)
        g = grads
    else:
        g = grads + weight_decay * params
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** step)
    denom = np.sqrt(v) / np.sqrt(1 - beta2 ** step) + eps
    return params - lr * m_hat / denom, m, v


def loss_of(weights, biases, x, y, smoothing=0.0):
    """Mean cross-entropy (label-smoothed by `smoothing`) of the MLP given by per-layer weights
    and biases."""
    a = x
    for k, (w, b) in enumerate(zip(weights, biases)):
        a = a @ w + b
        if k < len(weights) - 1:
            a = np.maximum(a, 0)
    return xent_loss(a, y, smoothing)


def fused_step(x, y, w1, b1, w2, b2):
    """fused.fused_step + reduce_step the obvious way: (dw1, db1, dw2, db2, summed loss,
    correct rows) of a one-hidden-layer MLP on dense x."""
    h = np.maximum(x @ w1 + b1, 0)
    logits = h @ w2 + b2
    dlogits, db2, loss = softmax_xent_backward(logits, y)
    dh = dlogits @ w2.T * (h > 0)
    correct = int((logits.argmax(axis=1) == y).sum())
    return x.T @ dh, dh.sum(axis=0), h.T @ dlogits, db2, loss * len(y), correct


def fused_eval(x, y, w1, b1, w2, b2):
    """fused.fused_step with train=False: (summed loss, correct rows)."""
    *_, loss, correct = fused_step(x, y, w1, b1, w2, b2)
    return loss, correct



def csr_matmul(x, w):
    """sparse.csr_matmul: x @ w, x dense."""
    return x @ w


def csr_weight_grad(x, dz):
    """sparse_grad.csr_weight_grad then reduce_weight_grad: x^T @ dz, x dense."""
    return x.T @ dz


def to_csr(x):
    """csr.to_csr: (indptr, columns, values) of the nonzeros of x, row by row in column order."""
    rows, cols = np.nonzero(x)
    indptr = np.searchsorted(rows, np.arange(len(x) + 1))
    return indptr, cols, x[rows, cols]


def strip_splits(x, strips):
    """sparse_grad.strip_splits: where each row's nonzeros of each column strip start and end
    (as offsets into to_csr's arrays)."""
    indptr = to_csr(x)[0]
    bounds = [x.shape[1] * s // strips for s in range(strips + 1)]
    return np.stack([indptr[:-1] + np.count_nonzero(x[:, :b], axis=1) for b in bounds[:-1]]
                    + [indptr[1:]], axis=1)


def to_bfloat16(x):
    """The bfloat16 bits (uint16) nearest to x rounded to float32: ties to even, NaN kept a
    quiet NaN, past the largest bfloat16 to infinity (the float32 bits' top half, rounded)."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, (bits >> 16) | 0x40, rounded).astype(np.uint16)


def from_bfloat16(x16):
    """bfloat16 bits as float32 (exact)."""
    return (np.asarray(x16, np.uint32) << 16).view(np.float32)


def mixed_step(x, y, weights, biases, smoothing=0.0):
    """One mixed-precision step in float64, the emulation the engine's is checked against:
    every matmul's operands rounded to bfloat16 (the weights, the inputs, the activations, the
    deltas), everything else exact. Returns (loss, dweights, dbiases)."""
    bf = lambda a: from_bfloat16(to_bfloat16(a)).astype(np.float64)  # noqa: E731
    acts = [x]
    for k, (w, b) in enumerate(zip(weights, biases)):
        z = bf(acts[-1]) @ bf(w) + b
        acts.append(np.maximum(z, 0) if k < len(weights) - 1 else z)
    logits = acts[-1]
    target = smoothed_target(y, logits.shape[1], smoothing)
    p = softmax(logits)
    loss = float(-(target * np.log(p)).sum(axis=1).mean())
    delta = (p - target) / len(y)
    dweights, dbiases = [None] * len(weights), [None] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        dweights[k] = bf(acts[k]).T @ bf(delta)
        dbiases[k] = delta.sum(axis=0)
        if k > 0:
            delta = (bf(delta) @ bf(weights[k]).T) * (acts[k] > 0)
    return loss, dweights, dbiases
