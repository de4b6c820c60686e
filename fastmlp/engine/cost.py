"""What a pass over the engine costs, timed now on this machine: the matmuls forward.py and
backward.py call, each timed on a capped probe of its shape, and the memory traffic of the
kernels, the gather and the update at a share of the copy bandwidth measured now.

The fast paths (fastpath/) build a run's estimate from these parts; `fastmlp train --dry-run`
prints it. The two constants of the traffic model were fitted to `fastmlp bench` on one machine
(docs/performance.md, "The dry run's time estimate").
"""
from dataclasses import dataclass

import numpy as np

from ..runtime.probe import copy_bandwidth
from ..runtime.timing import best_seconds
from .gemm import OPENBLAS, Gemm, probe

PROBE_REPEATS = 3
PROBE_ROWS = 4096  # the training rows a path's own kernels are timed on
KERNEL_SHARE = 0.7  # the fused kernels' traffic runs at this share of a plain copy's bandwidth
STEP_SECONDS = 70e-6  # Python and kernel dispatch per training step


@dataclass
class Estimate:
    """A run's time, estimated from its own matmuls and memory traffic (or its fused sweep)."""
    matmul_seconds: float  # an epoch's training matmuls
    other_seconds: float  # the rest of an epoch's training: kernels, update, gather, Python
    eval_seconds: float  # an epoch's evaluation
    once_seconds: float  # the evaluations outside the epochs (Plan.n_once)
    epochs: int
    matmul_gflops: float | None  # the training matmuls' speed on the probe (None: no matmuls)
    bandwidth: float  # bytes/s of a plain copy of a training step's traffic, measured now
    sweep_ns: float | None = None  # the fused pass: its training sweep's ns per nonzero

    @property
    def train_seconds(self):
        return self.matmul_seconds + self.other_seconds

    @property
    def run_seconds(self):
        return self.epochs * (self.train_seconds + self.eval_seconds) + self.once_seconds


def products(layers, rows, training, *, skip_first=False, transposed=False):
    """(m, k, n, layout) of every BLAS matmul of a pass over `rows` rows through `layers`
    [(n_in, n_out), ...], as forward.py and backward.py call them: "nn" is a (m, k) @ b (k, n),
    both C-contiguous; "tn" reads a as the transpose of a C-contiguous (k, m) array, "nt" reads
    b so. skip_first: the first layer's forward and weight gradient are not BLAS's (a path's
    own kernels); transposed: the first layer's weight gradient reads a contiguous transposed
    copy of the inputs."""
    start = 1 if skip_first else 0
    out = [(rows, n_in, n_out, "nn") for n_in, n_out in layers[start:]]  # a_prev @ w
    if training:  # from the last layer: a_prev.T @ delta, then delta @ w.T for the layer below
        for k, (n_in, n_out) in reversed(list(enumerate(layers))):
            if k >= start:
                out.append((n_in, rows, n_out, "nn" if k == 0 and transposed else "tn"))
            if k > 0:
                out.append((rows, n_out, n_in, "nt"))
    return out


def matmul_seconds(products_, operand, gemm=OPENBLAS):
    """Seconds of these products (operands of type `operand`: "float32", "float64" or
    "bfloat16") on the backends `gemm` sends them to, each timed (best of PROBE_REPEATS) on
    its probe (engine.gemm.probe) and scaled."""
    if not products_:
        return 0.0
    rng = np.random.default_rng(0)
    calls, scales = [], []
    for product in products_:
        a, b, out, scale = probe(product, operand, rng)
        call = Gemm(default=gemm.backend_for(product))
        calls.append(lambda call=call, a=a, b=b, out=out: call(a, b, out))
        scales.append(scale)
    return sum(t * s for t, s in zip(best_seconds(calls, PROBE_REPEATS), scales))


def update_bytes(plan):
    """The update's traffic: parameters and gradients read, parameters written, optimizer state
    read and written."""
    return 3 * plan.memory["parameters"] + 2 * plan.memory["optimizer state"]


def traffic_bytes(plan, rows, training=True, gathered=None):
    """The bytes a pass over `rows` rows moves outside its matmuls: the gather (`gathered`
    columns per row, None when the pass reads its inputs in place), the fused kernels (bias +
    ReLU reads and writes every activation; backward reads an activation and reads and writes a
    delta) and the update."""
    itemsize = np.dtype(plan.dtype).itemsize
    units = sum(plan.sizes[1:])
    if not training:
        return 2 * rows * units * itemsize
    gather = 0 if gathered is None else 2 * rows * gathered * itemsize
    return gather + 5 * rows * units * itemsize + update_bytes(plan)


def other_seconds(traffic):
    """(seconds of `traffic` bytes of kernel work and one step's dispatch, the bandwidth used)."""
    bandwidth = copy_bandwidth(traffic)
    return traffic / (KERNEL_SHARE * bandwidth) + STEP_SECONDS, bandwidth
