"""Each fused kernel on its own, at full-batch size for [128, 64, 32] (48,000 rows), float32,
2 threads, beside the bandwidth of a plain parallel copy moving as many bytes, measured in the
same run: the kernels are memory-bound, so that copy is their roofline."""
import numpy as np
import pytest

from fastmlp.engine import kernels
from fastmlp.engine.bfloat16 import NONE_1D, NONE_2D
from fastmlp.engine.kernels import n_chunks
from fastmlp.fastpath import prune, sparse, sparse_grad
from fastmlp.runtime import jit
from fastmlp.runtime.threads import kernel_threads, thread_limits

ROWS, WIDTH, CLASSES, THREADS = 48_000, 128, 10, 2


NAMES = ["bias_relu", "bias_add", "relu_backward", "softmax_xent_backward", "gather_rows_128",
         "gather_columns_128", "sgd_update", "transpose", "csr_matmul", "csr_weight_grad"]


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(0)
    f32 = np.float32
    # Called directly here, not through the Workspace and SparseFirst that make them ready.
    for group in ("core", "sgd_update", sparse.GROUP, sparse_grad.GROUP):
        jit.ready(f32, group)
    z = rng.normal(size=(ROWS, WIDTH)).astype(f32)
    a = np.maximum(z, 0)
    b = rng.normal(size=WIDTH).astype(f32)
    logits = rng.normal(size=(ROWS, CLASSES)).astype(f32)
    dlogits = np.empty_like(logits)
    y = rng.integers(0, CLASSES, ROWS).astype(np.int32)
    partial = np.zeros((n_chunks(ROWS), WIDTH), f32)
    loss_partial, count_partial = np.zeros(n_chunks(ROWS)), np.zeros(n_chunks(ROWS), np.int64)
    x = rng.random((ROWS, 784)).astype(f32)
    xb, yb = np.empty((128, 784), f32), np.empty(128, np.int32)
    index = rng.permutation(ROWS)[:128].astype(np.int64)
    params, grads = rng.normal(size=111_146).astype(f32), rng.normal(size=111_146).astype(f32)
    x_t = np.empty((784, ROWS), f32)
    kept = np.sort(rng.permutation(784)[:720]).astype(np.int64)
    xk = np.empty((128, 720), f32)
    # The sparse forward (sparse.py) on inputs 19% lit, as MNIST's: bytes are its CSR and z.
    lit = np.where(rng.random((ROWS, 784)) < 0.19, x, 0)
    indptr, cols, vals = sparse.to_csr(lit)
    # Its weight gradient (sparse_grad.py) and the reduction of the partials: bytes are the CSR,
    # dZ1 and the partials written and read.
    splits = sparse_grad.strip_splits(indptr, cols, 784)
    part = sparse.aligned_zeros(sparse_grad.BLOCKS * 784 * WIDTH, f32).reshape(
        sparse_grad.BLOCKS, -1)
    dw1 = np.empty((784, WIDTH), f32)
    w1, z1 = rng.normal(size=784 * WIDTH).astype(f32), np.empty(ROWS * WIDTH, f32)
    # name -> (call, rows processed, bytes read + written)
    return {
        "bias_relu": (lambda: kernels.bias_relu(z, NONE_2D, b, 1.0, 0), ROWS, 2 * z.nbytes),
        "bias_add": (lambda: kernels.bias_add(logits, b[:CLASSES]), ROWS, 2 * logits.nbytes),
        "relu_backward": (lambda: kernels.relu_backward(z, NONE_2D, b, partial, a, 1.0), ROWS,
                          3 * z.nbytes),
        "softmax_xent_backward": (
            lambda: kernels.softmax_xent_backward(dlogits, NONE_2D, b[:CLASSES], partial,
                                                  loss_partial,
                                                  count_partial, logits, y, 0.0),
            ROWS, 2 * logits.nbytes),
        "gather_rows_128": (lambda: kernels.gather_rows(xb, yb, x, y, index, 28, 0, 0), 128,
                            2 * xb.nbytes),
        # MNIST keeps 720 of its 784 columns (713 lit, padded to 16): prune.py.
        "gather_columns_128": (
            lambda: prune.gather_columns(xk, yb, x, y, index, kept, 28, 0, 0), 128,
            2 * xk.nbytes),
        "sgd_update": (lambda: kernels.sgd_update(params, NONE_1D, grads, 0.1, 0.0), 1,
                       3 * params.nbytes),
        "transpose": (lambda: kernels.transpose(x_t, x), ROWS, 2 * x.nbytes),
        "csr_matmul": (lambda: sparse.csr_matmul(z1, indptr, cols, vals, w1), ROWS,
                       indptr.nbytes + cols.nbytes + vals.nbytes + z1.nbytes),
        "csr_weight_grad": (
            lambda: (sparse_grad.csr_weight_grad(part, splits, cols, vals, z1),
                     sparse_grad.reduce_weight_grad(dw1, part)),
            ROWS, splits.nbytes + cols.nbytes + vals.nbytes + z1.nbytes + 2 * part.nbytes),
    }


@pytest.mark.parametrize("name", NAMES)
def test_kernel(benchmark, record, copy_bandwidth, cases, name):
    call, rows, nbytes = cases[name]
    benchmark.group = f"kernel {name}"
    with thread_limits(THREADS), kernel_threads(rows):
        call()  # JIT dispatch, untimed
        benchmark.pedantic(call, rounds=20, iterations=1, warmup_rounds=1)
        if benchmark.disabled:
            return
        roofline = copy_bandwidth(nbytes)
    seconds = benchmark.stats.stats.min
    gbps = nbytes / seconds / 1e9
    record(samples_per_s=round(rows / seconds), gbps=round(gbps, 1),
           copy_gbps=round(roofline, 1), roofline_pct=round(100 * gbps / roofline, 1))
