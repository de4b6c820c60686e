"""Issue 11's third lever, measured and not kept: a numba GEMM for the batch-128 first layer on
both cores (forward z = x @ W1, 128 x 784 @ 784 x 128, and dW1 = x^T @ dz, 784 x 128 @ 128 x 128,
float32), against OpenBLAS. Committed so that it stays in the history; reverted in the next
commit (the engine keeps OpenBLAS).

    flock /tmp/fastmlp-cpu.lock python bench/numba_gemm.py kernels  # GFLOPS, 1 and 2 threads
    flock /tmp/fastmlp-cpu.lock python bench/numba_gemm.py step 5   # epochs, kernels in the step
    flock /tmp/fastmlp-cpu.lock python bench/numba_gemm.py wake     # why the step is slower

The kernels: a 4 x 16 tile of the output in registers (four 16-lane tuples, the fused.py idiom,
SLP on), over fixed blocks (a prange over 2 column halves forward, 2 row halves for dW1), so the
result does not depend on the thread count. Forward packs each block's 16-column panels of W1
(784 x 16, contiguous) first: unpacked, each thread re-read all of W1 from L3 and 2 threads gave
no speed-up (441 vs 435 us). 6 x 16 tiles spilled accumulators (LLVM unrolls k by two): slower
(fwd 510 vs 433 us, dW1 817 vs 608 us at 1 thread). Blocking k (196 or 392) did not help.
"""
import os
import sys
import time

import fastmlp  # noqa: F401  (OpenBLAS's idle setting, before numpy)

os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")  # before numba is imported (fused.py)

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import prange  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from fastmlp.fused import _axpy16, _put16, _zeros16  # noqa: E402
from fastmlp.jit import FASTMATH  # noqa: E402

OPTIONS = {"fastmath": FASTMATH - {"reassoc"}, "error_model": "numpy", "boundscheck": False,
           "cache": True, "nogil": True}


@numba.njit(inline="always")
def _tile(c, rows, panel, i, j, k0, k1, transposed):
    """c[i:i+4, j:j+16] = the 4 rows' products over k0..k1. Not transposed: rows a (M, K) read
    a[i + r][k], panel (K, 16) packed; transposed: rows a (K, M) read a[k][i + r], panel (K, N)
    read panel[k][j:j+16]."""
    z = panel.dtype.type(0)
    c0 = c1 = c2 = c3 = _zeros16(z)
    if transposed:
        for k in range(k0, k1):
            a = rows[k][i:i + 4]
            b = panel[k][j:j + 16]
            c0 = _axpy16(c0, a[0], b, 0)
            c1 = _axpy16(c1, a[1], b, 0)
            c2 = _axpy16(c2, a[2], b, 0)
            c3 = _axpy16(c3, a[3], b, 0)
    else:
        a0, a1, a2, a3 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3]
        for k in range(k0, k1):
            b = panel[k]
            c0 = _axpy16(c0, a0[k], b, 0)
            c1 = _axpy16(c1, a1[k], b, 0)
            c2 = _axpy16(c2, a2[k], b, 0)
            c3 = _axpy16(c3, a3[k], b, 0)
    _put16(c[i][j:j + 16], c0)
    _put16(c[i + 1][j:j + 16], c1)
    _put16(c[i + 2][j:j + 16], c2)
    _put16(c[i + 3][j:j + 16], c3)


@numba.njit(parallel=True, **OPTIONS)
def forward_gemm(z, x, w, packed, blocks):
    """z (B, H) = x (B, K) @ w (K, H); B a multiple of 4, H of 16 * blocks; packed (H // 16, K,
    16) scratch. Block g packs and computes its own H / blocks columns."""
    rows, depth = x.shape
    per = w.shape[1] // 16 // blocks
    for g in prange(blocks):
        for p in range(g * per, (g + 1) * per):
            for k in range(depth):
                for t in range(16):
                    packed[p, k, t] = w[k, p * 16 + t]
        for i in range(0, rows, 4):
            for p in range(g * per, (g + 1) * per):
                _tile(z, x, packed[p], i, p * 16, 0, depth, False)


@numba.njit(parallel=True, **OPTIONS)
def weight_grad_gemm(dw, x, dz, blocks):
    """dw (K, H) = x.T @ dz, x (B, K), dz (B, H); K a multiple of 4, H of 16. Block g computes
    its own rows of dw (a multiple of 4)."""
    batch, depth = x.shape
    per = -(-(depth // 4) // blocks) * 4
    for g in prange(blocks):
        for i in range(g * per, min(depth, (g + 1) * per), 4):
            for j in range(0, dz.shape[1], 16):
                _tile(dw, x, dz, i, j, 0, batch, True)


def _operands():
    """x (128, 784), W1 (784, 128), dz (128, 128), and the outputs z, dW1 and the packed panels."""
    rng = np.random.default_rng(0)
    x = rng.random((128, 784), dtype=np.float32)
    w = rng.standard_normal((784, 128), dtype=np.float32)
    dz = rng.standard_normal((128, 128), dtype=np.float32)
    z, dw = np.empty((128, 128), np.float32), np.empty((784, 128), np.float32)
    return x, w, dz, z, dw, np.empty((8, 784, 16), np.float32)


def _times(f, reps, inner):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            f()
        out.append((time.perf_counter() - t0) / inner)
    return out


def kernels(turns=3):
    """GFLOPS alone: numba and OpenBLAS at 1 and 2 threads, in turns, best of 7 * turns (each
    the mean of 20 calls) and the median."""
    x, w, dz, z, dw, packed = _operands()
    want_z, want_dw = x.astype(np.float64) @ w, x.T.astype(np.float64) @ dz
    cases = {}
    for th in (1, 2):
        cases[f"forward numba t{th}"] = (th, lambda: forward_gemm(z, x, w, packed, 2), z, want_z)
        cases[f"forward OpenBLAS t{th}"] = (th, lambda: np.matmul(x, w, out=z), z, want_z)
        cases[f"dW1 numba t{th}"] = (th, lambda: weight_grad_gemm(dw, x, dz, 2), dw, want_dw)
        cases[f"dW1 OpenBLAS t{th}"] = (th, lambda: np.matmul(x.T, dz, out=dw), dw, want_dw)
    seen = {name: [] for name in cases}
    for _ in range(turns):
        for name, (th, f, out, want) in cases.items():
            numba.set_num_threads(th)
            with threadpool_limits(th, user_api="blas"):
                out[...] = 0
                f()
                assert np.abs(out - want).max() < 1e-3, name
                seen[name] += _times(f, 7, 20)
    flops = 2 * 128 * 784 * 128
    for name, ts in seen.items():
        print(f"{name:22s} best {min(ts) * 1e6:6.1f} us ({flops / min(ts) / 1e9:5.1f} GFLOPS), "
              f"median {np.median(ts) * 1e6:6.1f} us")


class Timed:
    """The first layer's hook (prune.PrunedColumns' interface) with OpenBLAS or the numba
    kernels at `threads`, timing every call."""

    def __init__(self, model, threads=None):
        self.threads, self.kept, self.calls = threads, None, ([], [])
        self.packed = np.empty((model.sizes[1] // 16, model.sizes[0], 16), model.dtype)

    def _run(self, which, f):
        t0 = time.perf_counter()
        if self.threads:  # the trainer runs kernels single-threaded at batch 128
            numba.set_num_threads(self.threads)
        f()
        if self.threads:
            numba.set_num_threads(1)
        self.calls[which].append(time.perf_counter() - t0)

    def matmul(self, model, x, z):
        if self.threads:
            self._run(0, lambda: forward_gemm(z, x, model.weights[0], self.packed, 2))
        else:
            self._run(0, lambda: np.matmul(x, model.weights[0], out=z))

    def weight_grad(self, model, x_t, dz):
        if self.threads:
            self._run(1, lambda: weight_grad_gemm(model.dweights[0], x_t.T, dz, 2))
        else:
            self._run(1, lambda: np.matmul(x_t, dz, out=model.dweights[0]))


def step(reps):
    """[128, 64, 32], batch 128, SGD, 2 threads: alternating epochs, OpenBLAS vs numba first
    layer (1 and 2 numba threads), epoch medians and the first layer's calls in the step."""
    from fastmlp import kernels as fused_kernels
    from fastmlp import prune
    from fastmlp.data import load_dataset
    from fastmlp.settings import TrainConfig
    from fastmlp.threads import thread_limits
    from fastmlp.trainer import make_trainer

    # With a hook the trainer gathers through prune.gather_columns: all columns, as gather_rows.
    prune.gather_columns = lambda xb, yb, x, y, index, columns, side, shift, key: \
        fused_kernels.gather_rows(xb, yb, x, y, index, side, shift, key)
    data = load_dataset("mnist", dtype=np.float32, seed=0)
    config = TrainConfig(layers=(128, 64, 32), batch_size=128, dtype="float32", lr=0.1)
    with thread_limits(2):
        trainers = {}
        for name, threads in (("OpenBLAS", None), ("numba 1 thread", 1), ("numba 2", 2)):
            trainers[name] = make_trainer(config, data, plain=True)
            trainers[name].first = Timed(trainers[name].model, threads)
            trainers[name].epoch()
            trainers[name].first.calls = ([], [])
        epochs = {name: [] for name in trainers}
        for _ in range(reps):
            for name, trainer in trainers.items():
                t0 = time.perf_counter()
                trainer.epoch()
                epochs[name].append(time.perf_counter() - t0)
    for name, trainer in trainers.items():
        fwd, grad = (np.array(c) * 1e6 for c in trainer.first.calls)
        print(f"{name:15s} epoch median {np.median(epochs[name]) * 1e3:5.0f} ms (best "
              f"{min(epochs[name]) * 1e3:.0f}); forward call median {np.median(fwd):4.0f} us, "
              f"dW1 {np.median(grad):4.0f} us; per epoch {fwd.sum() / reps / 1e3:4.0f} + "
              f"{grad.sum() / reps / 1e3:4.0f} ms")


@numba.njit(cache=True)
def _serial_work(n):
    s = 0.0
    for i in range(n):
        s += np.sqrt(i)
    return s


def wake(turns=3):
    """The kernels called back to back or after ~30 us of serial work (as in a step), numba's
    thread count left at 2 or switched 1 -> 2 -> 1 around the call (as the step must), against
    OpenBLAS at 2 threads: median against best shows how often the two blocks ran in turn."""
    x, w, dz, z, dw, packed = _operands()
    _serial_work(10)

    def switched(f):
        def run():
            numba.set_num_threads(2)
            f()
            numba.set_num_threads(1)
        return run

    fwd = lambda: forward_gemm(z, x, w, packed, 2)  # noqa: E731
    grad = lambda: weight_grad_gemm(dw, x, dz, 2)  # noqa: E731
    kinds = {"forward numba, 2 threads": (2, fwd), "forward numba, switched": (1, switched(fwd)),
             "forward OpenBLAS": (1, lambda: np.matmul(x, w, out=z)),
             "dW1 numba, 2 threads": (2, grad), "dW1 numba, switched": (1, switched(grad)),
             "dW1 OpenBLAS": (1, lambda: np.matmul(x.T, dz, out=dw))}
    modes = {"back to back": lambda: None, "after 30 us serial": lambda: _serial_work(6000)}
    seen = {}
    with threadpool_limits(2, user_api="blas"):
        for _ in range(turns):
            for mode, before in modes.items():
                for kind, (threads, f) in kinds.items():
                    numba.set_num_threads(threads)
                    ts = []
                    for _ in range(60):
                        before()
                        t0 = time.perf_counter()
                        f()
                        ts.append(time.perf_counter() - t0)
                    seen.setdefault((mode, kind), []).extend(ts[5:])
    for (mode, kind), ts in seen.items():
        ts = np.array(ts) * 1e6
        print(f"{mode:20s} {kind:26s} best {ts.min():5.0f} us, median {np.median(ts):5.0f} us")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "kernels"
    if what == "step":
        step(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    else:
        {"kernels": kernels, "wake": wake}[what]()
