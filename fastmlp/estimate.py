"""The time estimate of a planned run (plan.py's Plan): its own matmuls, or its fused sweep,
timed now on this machine at the thread limits in force, and its memory traffic beside them.
`fastmlp train --dry-run` prints it; bench/estimate_vs_measured.py checks it against runs.
"""
from dataclasses import dataclass

import numpy as np

from .workspace import EVAL_ROWS

# The time estimate has two parts, both timed now on this machine at the run's thread count:
# - the run's own matmuls (every layer's forward, weight-gradient and input-gradient products,
#   laid out as forward.py and backward.py call them) at the run's batch size and dtype, on a
#   probe with every dimension capped at PROBE_DIM and at most PROBE_VOLUME multiply-adds
#   (~20 ms each at 100 GFLOPS, so the probe takes well under a second), scaled by FLOPs;
# - what fastmlp adds around them: the fused kernels, the update and the gather are memory-bound,
#   so their bytes at KERNEL_SHARE of the copy bandwidth measured now, plus STEP_SECONDS of
#   Python and dispatch per step. Both constants were fitted to `fastmlp bench` on the 2-core
#   EPYC (AVX2) this was developed on: [10], [128, 64, 32] and [512, 256] at batch 128, 1024 and
#   full, float32, 2 threads, where this model is within 15% of the measured non-matmul time for
#   the wide layers and within 40% for [10] (whose epoch is mostly overhead).
# Pruned columns (prune.py) shrink the first layer's training matmuls to the kept columns; the
# fused pass (fused.py) runs none: its sweep is timed on SWEEP_ROWS of the training rows; the
# sparse path (sparse.py) runs the first layer's forward and weight gradient over CSR: those two
# kernels are timed on SWEEP_ROWS training rows in place of the two matmuls, scaled by rows.
PEAK_N = 1024  # the GEMM peak shown beside the estimate: the best of a few 1024^3 sgemms
PEAK_REPEATS = 3
PROBE_DIM = 4096
PROBE_VOLUME = 2**30
PROBE_REPEATS = 3
COPY_MIN, COPY_MAX = 2**20, 2**26  # the sizes of the copies the bandwidths are timed on
KERNEL_SHARE = 0.7  # the fused kernels' traffic runs at this share of a plain copy's bandwidth
STEP_SECONDS = 70e-6  # Python and kernel dispatch per training step


def gemm_peak_gflops(dtype, threads):
    """This machine's GEMM GFLOPS now: the best of a few PEAK_N^3 matmuls (~0.1 s)."""
    from .bench import gemm_gflops
    return gemm_gflops(dtype, threads, n=PEAK_N, repeats=PEAK_REPEATS)


def products(plan, rows, backward=True):
    """(m, k, n, layout) of every matmul of a pass over `rows` rows, as forward.py and
    backward.py call them: layout "nn" is a (m, k) @ b (k, n), both C-contiguous; "tn" reads a
    as the transpose of a C-contiguous (k, m) array, "nt" reads b so. Training passes
    (backward) read only the kept columns of the inputs when columns are pruned."""
    layers = [(n_in, n_out) for n_in, n_out, _ in plan.layers]
    if backward and plan.kept:
        layers[0] = (plan.kept, layers[0][1])
    # The sparse path's first layer runs no matmul (sparse_seconds times its kernels).
    blas = 0 if plan.sparse_sample is None else 1
    out = [(rows, n_in, n_out, "nn") for n_in, n_out in layers[blas:]]  # a_prev @ w
    if backward:  # from the last layer: a_prev.T @ delta, then delta @ w.T for the layer below
        for k, (n_in, n_out) in reversed(list(enumerate(layers))):
            if k >= blas:
                out.append((n_in, rows, n_out, "nn" if k == 0 and plan.transposed else "tn"))
            if k > 0:
                out.append((rows, n_out, n_in, "nt"))
    return out


def probe_shape(m, k, n):
    """(m, k, n) with every dimension capped at PROBE_DIM, then the largest halved until the
    product has at most PROBE_VOLUME multiply-adds."""
    dims = [min(d, PROBE_DIM) for d in (m, k, n)]
    while dims[0] * dims[1] * dims[2] > PROBE_VOLUME:
        largest = dims.index(max(dims))
        dims[largest] = (dims[largest] + 1) // 2
    return dims


def _probe_call(m, k, n, layout, dtype):
    """One matmul of the product's layout at its probe shape, and the factor that scales its
    time to the real size."""
    pm, pk, pn = probe_shape(m, k, n)
    rng = np.random.default_rng(0)
    a = rng.random((pk, pm)).astype(dtype).T if layout == "tn" else \
        rng.random((pm, pk)).astype(dtype)
    b = rng.random((pn, pk)).astype(dtype).T if layout == "nt" else \
        rng.random((pk, pn)).astype(dtype)
    c = np.empty((pm, pn), dtype)
    return (lambda: np.matmul(a, b, out=c)), m * k * n / (pm * pk * pn)


def matmul_seconds(products_, dtype):
    """Seconds of these products, each timed (best of PROBE_REPEATS) on its probe and scaled."""
    from .timing import best_seconds
    calls, scales = zip(*(_probe_call(*p, dtype) for p in products_))
    return sum(t * s for t, s in zip(best_seconds(calls, PROBE_REPEATS), scales))


def copy_bandwidth(nbytes):
    """Bytes per second a plain copy moves now (read + write, best of 5) when it moves
    `nbytes`, within [COPY_MIN, COPY_MAX]: a pass whose arrays fit in the caches runs at the
    caches' speed, a larger one at memory's."""
    from .timing import best_seconds
    nbytes = min(max(int(nbytes), COPY_MIN), COPY_MAX)
    source = np.ones(nbytes // 8, np.float32)
    target = np.empty_like(source)
    seconds, = best_seconds([lambda: np.copyto(target, source)], 5)
    return 2 * source.nbytes / seconds


def traffic_bytes(plan, rows, training=True):
    """The bytes a pass over `rows` rows moves outside its matmuls: the gather (minibatches and
    augmentation copy their rows), the fused kernels (bias + ReLU reads and writes every
    activation; backward reads an activation and reads and writes a delta), and the update
    (parameters and gradients read, parameters written, optimizer state read and written)."""
    itemsize = np.dtype(plan.dtype).itemsize
    units = sum(plan.sizes[1:])
    if not training:
        return 2 * rows * units * itemsize
    gather = 0 if plan.transposed else 2 * rows * (plan.kept or plan.sizes[0]) * itemsize
    return gather + 5 * rows * units * itemsize + _update_bytes(plan)


def _update_bytes(plan):
    return 3 * plan.memory["parameters"] + 2 * plan.memory["optimizer state"]


@dataclass
class Estimate:
    """A run's time, estimated from its own matmuls and memory traffic (estimate_time)."""
    matmul_seconds: float  # an epoch's training matmuls
    other_seconds: float  # the rest of an epoch's training: kernels, update, gather, Python
    eval_seconds: float  # an epoch's evaluation
    once_seconds: float  # the evaluations outside the epochs (Plan.n_once)
    epochs: int
    matmul_gflops: float  # the training matmuls' speed on the probe (None: the fused pass)
    bandwidth: float  # bytes/s of a plain copy of a training step's traffic, measured now
    sweep_ns: float = None  # the fused pass: its training sweep's ns per nonzero, timed now

    @property
    def train_seconds(self):
        return self.matmul_seconds + self.other_seconds

    @property
    def run_seconds(self):
        return self.epochs * (self.train_seconds + self.eval_seconds) + self.once_seconds


def _pass_seconds(plan, rows, training):
    """(matmul seconds, other seconds, copy bandwidth) of one pass over `rows` rows."""
    matmuls = matmul_seconds(products(plan, rows, backward=training), plan.dtype)
    traffic = traffic_bytes(plan, rows, training)
    bandwidth = copy_bandwidth(traffic)
    return matmuls, traffic / (KERNEL_SHARE * bandwidth) + STEP_SECONDS, bandwidth


def sweep_seconds(plan):
    """(seconds per training row, per validation row, ns per nonzero of the training sweep) of
    the fused pass, timed now on plan.sweep_sample (its step and its evaluation, best of
    PROBE_REPEATS) for a model of the plan's sizes."""
    from .fused import FusedPass
    from .model import MLP
    from .timing import best_seconds
    x, y = plan.sweep_sample
    model = MLP(plan.sizes, x.dtype)
    model.initialize("he", np.random.default_rng(0))
    sweep = FusedPass(model, x, y)
    step, evaluate = best_seconds([lambda: sweep.step(model), lambda: sweep.evaluate(model)],
                                  PROBE_REPEATS)
    return step / len(y), evaluate / len(y), 1e9 * step / np.count_nonzero(x)


def sparse_seconds(plan):
    """(seconds per row of the first layer's CSR forward, of its CSR weight gradient) on the
    sparse path, timed now on plan.sparse_sample (best of PROBE_REPEATS each), with dZ1 half
    zeros as the ReLU leaves it."""
    from .model import MLP
    from .sparse import SparseFirst
    from .timing import best_seconds
    x = plan.sparse_sample
    model = MLP(plan.sizes, x.dtype)
    model.initialize("he", np.random.default_rng(0))
    first = SparseFirst(model, np.arange(x.shape[1]), x)
    z = np.empty((len(x), plan.sizes[1]), x.dtype)  # (rows, H1)
    rng = np.random.default_rng(0)
    dz = np.where(rng.random(z.shape) < 0.5, 0, rng.random(z.shape)).astype(x.dtype)
    forward, grad = best_seconds([lambda: first.matmul(model, x, z),
                                  lambda: first.weight_grad(model, None, dz)], PROBE_REPEATS)
    return forward / len(x), grad / len(x)


def estimate_time(plan):
    """Estimate `plan`'s run from its matmuls and traffic (or its fused sweep), timed now at
    the thread limits in force."""
    steps = plan.n_train / plan.batch_size
    eval_rows = min(max(plan.n_eval, plan.n_once), EVAL_ROWS)  # evaluation's chunks
    per_sample = sum(_pass_seconds(plan, eval_rows, training=False)[:2]) / eval_rows
    if plan.sweep_sample is None:
        matmuls, other, bandwidth = _pass_seconds(plan, plan.batch_size, training=True)
        if plan.sparse_sample is not None:  # the first layer's kernels stand for its matmuls
            forward, grad = sparse_seconds(plan)
            matmuls += plan.batch_size * (forward + grad)
            per_sample += forward
        return Estimate(steps * matmuls, steps * other, plan.n_eval * per_sample,
                        plan.n_once * per_sample, plan.epochs,
                        plan.flops_per_sample * plan.batch_size / matmuls / 1e9, bandwidth)
    # The fused pass: a sweep and the update a step; the validation split is swept too.
    train_row, val_row, ns = sweep_seconds(plan)
    update = _update_bytes(plan)
    bandwidth = copy_bandwidth(update)
    other = plan.n_train * train_row + update / (KERNEL_SHARE * bandwidth) + STEP_SECONDS
    swept = plan.n_val * (val_row - per_sample)  # a test split is evaluated the plain way
    return Estimate(0.0, other, plan.n_eval * per_sample + swept,
                    plan.n_once * per_sample + swept, plan.epochs, None, bandwidth, ns)
