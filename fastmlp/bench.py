"""`fastmlp bench`: training throughput per configuration and thread count, beside the machine's
own GEMM peak and, on request, peers measured in the same run."""
import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from .threads import thread_limits
from .timing import best_seconds

GEMM_N = 2048
GEMM_FLOPS = 2 * GEMM_N ** 3
# The streaming read that memory-bound paths are measured against: the size of MNIST's training
# inputs in float32 (48,000 x 784), far beyond the caches.
STREAM_BYTES = 150_000_000


def gemm_call(dtype, n=GEMM_N):
    """A function running one n x n matmul in `dtype` (sgemm for float32, dgemm for float64):
    what the roofline every throughput is quoted against is timed on."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    return lambda: np.matmul(a, b, out=c)


def gemm_gflops(dtype, threads, n=GEMM_N, repeats=5):
    """GFLOPS of an n x n matmul in `dtype` at `threads` BLAS threads, the best of `repeats`."""
    with thread_limits(threads):
        seconds, = best_seconds([gemm_call(dtype, n)], repeats)
    return 2 * n ** 3 / seconds / 1e9


def stream_call(dtype, nbytes=STREAM_BYTES):
    """A function reading an `nbytes` array of `dtype` once with every numba thread: the
    streaming bandwidth that memory-bound paths (the fused pass) are quoted against."""
    from .fused import GROUP, read_sum
    from .jit import ready
    ready(dtype, GROUP)
    a = np.ones(nbytes // np.dtype(dtype).itemsize, dtype)
    return lambda: read_sum(a)


def make_trainer(layers, batch_size, data, lr=0.1, seed=0, **settings):
    """A fastmlp Trainer on `data`'s training split: He init, plain SGD unless settings say
    otherwise (any TrainConfig field)."""
    from .settings import TrainConfig
    from .trainer import make_trainer as build
    config = TrainConfig(layers=tuple(layers), batch_size=batch_size, lr=lr, seed=seed,
                         dtype=data.train.x.dtype.name, **settings)
    return build(config, data)


def path(trainer, threads):
    """Which way an epoch runs, as the table names it: the trainer's path (plain, pruned
    columns or fused pass) and, for minibatches at several threads, whether OpenBLAS's idle
    workers sleep (blas_idle.py) or spin, which at small batches decides whether the second
    core helps."""
    from . import blas_idle
    if trainer.in_place or threads == 1:
        return trainer.path
    timeout = blas_idle.in_force()
    idle = ("idle BLAS threads spin (OpenBLAS default)" if timeout is None else
            f"idle BLAS threads sleep after 2^{timeout} cycles")
    return f"{trainer.path}, {idle}"


def flops_done(trainer):
    """Training FLOPs per sample that the trainer's path really does: a first layer that skips
    pruned columns or zeros (trainer.first) does fewer multiply-adds than the dense count, and
    quoting the dense count against the GEMM peak claimed 277% of it for the sparse path."""
    from .model import training_flops
    return training_flops(trainer.model.sizes, getattr(trainer.first, "columns_per_row", None))


def describe(layers, batch_size, dtype):
    batch = "full" if batch_size is None else batch_size
    return f"{list(layers)} batch {batch} {np.dtype(dtype).name}"


def _peer_env():
    """The environment a peer process starts from: the user's, without fastmlp's defaults."""
    from . import blas_idle, jit
    injected = {**jit.INJECTED_ENV, **blas_idle.INJECTED_ENV}
    return {k: v for k, v in os.environ.items() if k not in injected}


def peer_samples_per_s(peer, layers, batch_size, dtype, threads, repeats, optimizer, lr):
    """samples/s of a peer measured in its own process, or an error string."""
    command = [sys.executable, "-m", "fastmlp.peers", peer, "--layers", *map(str, layers),
               "--dtype", np.dtype(dtype).name, "--threads", str(threads),
               "--repeats", str(repeats), "--optimizer", optimizer, "--lr", str(lr)]
    if batch_size is not None:
        command += ["--batch-size", str(batch_size)]
    proc = subprocess.run(command, capture_output=True, text=True, env=_peer_env())
    if proc.returncode != 0:
        return f"{peer} failed: {proc.stderr.strip().splitlines()[-1:]}"
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer.get("samples_per_s", answer.get("error"))


@dataclass
class BenchRow:
    layers: list
    batch_size: int | None  # None: full batch
    dtype: str
    threads: int
    samples_per_s: float
    gflops: float  # the multiply-adds the path does (flops_done), not the dense count
    peak_gflops: float  # the GEMM roofline at this dtype and thread count, same run
    # The epoch's matmuls alone, and the first layer's own kernels where a path replaces its
    # matmuls (profile.record_matmuls): the ceiling those calls allow.
    matmul_samples_per_s: float
    optimizer: str = "sgd"
    path: str = "plain"  # Trainer.path: "plain", "pruned columns (K of n)", "fused pass", ...
    stream_gbps: float | None = None  # fused pass: its bytes per second, and the streaming
    stream_peak_gbps: float | None = None  # read bandwidth measured in the same run
    speedup: float | None = None  # over the same configuration at 1 thread, if measured
    peers: dict = field(default_factory=dict)  # peer -> samples/s, or why it is missing
    # peer -> samples/s of each of its processes (peers holds the best): on the 2-core VM the
    # PyTorch peer at batch 128 gave 50-79k samples/s SGD from one process to the next.
    peer_runs: dict = field(default_factory=dict)
    profile: dict = field(default_factory=dict)  # phase -> seconds per epoch

    @property
    def roofline_pct(self):
        return 100 * self.gflops / self.peak_gflops

    @property
    def limit_text(self):
        """The share of the path's own limit: the streaming bandwidth for the memory-bound
        fused pass, the GEMM peak otherwise."""
        if self.stream_gbps is not None:
            return (f"{100 * self.stream_gbps / self.stream_peak_gbps:.0f}% of "
                    f"{self.stream_peak_gbps:.1f} GB/s stream")
        return f"{self.roofline_pct:.0f}% of GEMM peak"

    @property
    def matmul_roofline_pct(self):
        """The share of the GEMM peak that the epoch's matmuls reach on their own (None: the
        fused pass runs none)."""
        if self.matmul_samples_per_s is None:
            return None
        return 100 * self.gflops * self.matmul_samples_per_s / self.samples_per_s / \
            self.peak_gflops

    @property
    def matmul_share(self):
        """fastmlp's throughput as a share of its matmuls' alone: 100% would mean every
        kernel and every line of Python cost nothing."""
        if self.matmul_samples_per_s is None:
            return None
        return 100 * self.samples_per_s / self.matmul_samples_per_s

    def ratio(self, peer):
        other = self.peers.get(peer)
        return self.samples_per_s / other if isinstance(other, float) else None


def run(layers_list, batch_sizes, dtypes, threads_list, *, repeats=5, peers=(), peer_runs=1,
        profile=False, optimizer="sgd", lr=0.1, log=print):
    """Measure every combination; returns a list of BenchRow in the order measured. An epoch
    is one training epoch and its validation pass, as `fastmlp train` runs them. Each peer
    runs in peer_runs processes and its best counts, as fastmlp's best epoch does."""
    from .data import load_dataset
    from .fused import csr_bytes
    from .profile import profile_epochs, record_matmuls
    from .workspace import EVAL_ROWS, Workspace

    peaks, rows = {}, []
    for dtype in dtypes:
        data = load_dataset("mnist", dtype=dtype)
        for threads in threads_list:
            peaks[dtype, threads] = gemm_gflops(dtype, threads)
            log(f"GEMM peak ({np.dtype(dtype).name}, {threads} threads): "
                f"{peaks[dtype, threads]:.1f} GFLOPS")
        for layers in layers_list:
            for batch_size in batch_sizes:
                base = None
                for threads in threads_list:
                    trainer = make_trainer(layers, batch_size, data, lr, optimizer=optimizer)
                    val = data.val
                    validate = trainer.evaluator(val.x, val.y, Workspace(
                        trainer.model, min(EVAL_ROWS, len(val.y)), backward=False,
                        gather=False))

                    def epoch():
                        trainer.epoch()
                        validate()
                    # The epoch, its matmuls alone and the GEMM of the roofline (or the stream
                    # read, for the fused pass, which runs no matmul) take turns, so that their
                    # ratios hold while this machine's speed drifts (a shared host).
                    with thread_limits(threads):
                        swept = trainer.fused is not None
                        timed = (epoch, stream_call(dtype) if swept else
                                 record_matmuls(epoch, trainer.first), gemm_call(dtype))
                        best = best_seconds(timed, repeats)
                    peer_rates, peer_all = {}, {}
                    for peer in peers:
                        runs = []
                        for _ in range(peer_runs):
                            runs.append(peer_samples_per_s(peer, layers, batch_size, dtype,
                                                           threads, repeats, optimizer, lr))
                            # Timing fastmlp again after each peer process keeps the ratio from
                            # hinging on one slow moment.
                            with thread_limits(threads):
                                best = list(map(min, best, best_seconds(timed, repeats)))
                        rates = [r for r in runs if isinstance(r, float)]
                        peer_rates[peer] = max(rates) if rates else runs[-1]
                        peer_all[peer] = runs
                    with thread_limits(threads):
                        phases = profile_epochs(trainer) if profile else {}
                    seconds, matmuls, gemm = best
                    # The best GEMM seen, here or at the start: a slow moment can only lower
                    # the share of the peak, never raise it.
                    peak = max(peaks[dtype, threads], GEMM_FLOPS / gemm / 1e9)
                    rate = len(data.train.y) / seconds
                    if threads == 1:
                        base = rate
                    stream = {}
                    if swept:  # matmuls holds the stream read's seconds
                        swept_bytes = csr_bytes(data.train.x) + csr_bytes(val.x)
                        stream = dict(stream_gbps=swept_bytes / seconds / 1e9,
                                      stream_peak_gbps=STREAM_BYTES / matmuls / 1e9)
                    rows.append(BenchRow(
                        list(layers), batch_size, np.dtype(dtype).name, threads, rate,
                        flops_done(trainer) * rate / 1e9, peak,
                        None if swept else len(data.train.y) / matmuls, optimizer=optimizer,
                        path=path(trainer, threads), **stream,
                        speedup=rate / base if base else None, peers=peer_rates,
                        peer_runs=peer_all, profile=phases))
                    log(f"measured {describe(layers, batch_size, dtype)}, {threads} threads")
    return rows


def table(rows, peers=()):
    """A Markdown table of the rows."""
    head = ["configuration", "threads", "path", "samples/s", "GFLOPS", "share of its limit",
            "matmuls alone: % of GEMM peak", "% of matmuls-alone speed", "speed-up vs 1 thread"]
    for peer in peers:
        head += [f"{peer} samples/s", f"fastmlp / {peer}"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [f"{describe(r.layers, r.batch_size, r.dtype)} {r.optimizer}", str(r.threads),
                 r.path, f"{r.samples_per_s:,.0f}", f"{r.gflops:.1f}", r.limit_text,
                 _percent(r.matmul_roofline_pct), _percent(r.matmul_share),
                 "n/a" if r.speedup is None else f"{r.speedup:.2f}x"]
        for peer in peers:
            cells += [_peer_cell(r.peers.get(peer), r.peer_runs.get(peer, [])),
                      "n/a" if r.ratio(peer) is None else f"{r.ratio(peer):.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _peer_cell(best, runs):
    """A peer's samples/s: the best, and the spread when it ran in several processes."""
    if not isinstance(best, float):
        return str(best)
    rates = [r for r in runs if isinstance(r, float)]
    spread = (f" (best of {len(runs)}: {min(rates):,.0f}-{max(rates):,.0f})"
              if len(runs) > 1 else "")
    return f"{best:,.0f}{spread}"


def _percent(value):
    return "n/a" if value is None else f"{value:.1f}%"


def profile_table(rows):
    """Per configuration and thread count: each phase's ms per epoch and share of the epoch."""
    from .profile import PHASES
    lines = []
    for r in rows:
        total = sum(r.profile.values())
        lines.append(f"\n{describe(r.layers, r.batch_size, r.dtype)}, {r.threads} threads: "
                     f"{1e3 * total:.1f} ms per epoch")
        lines += ["| phase | ms per epoch | share |", "| --- | --- | --- |"]
        lines += [f"| {p} | {1e3 * r.profile[p]:.2f} | {100 * r.profile[p] / total:.1f}% |"
                  for p in PHASES]
    return "\n".join(lines)


def to_json(rows):
    return json.dumps([asdict(r) | {"roofline_pct": r.roofline_pct,
                                    "matmul_roofline_pct": r.matmul_roofline_pct}
                       for r in rows], indent=1)


def to_csv(rows, peers=()):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["layers", "batch_size", "dtype", "threads", "path", "samples_per_s",
                     "gflops", "peak_gflops", "roofline_pct", "stream_gbps", "stream_peak_gbps",
                     "matmul_samples_per_s", "matmul_roofline_pct", "speedup",
                     *[f"{p}_samples_per_s" for p in peers]])
    for r in rows:
        writer.writerow([" ".join(map(str, r.layers)), r.batch_size or "full", r.dtype,
                         r.threads, r.path, r.samples_per_s, r.gflops, r.peak_gflops,
                         r.roofline_pct, r.stream_gbps, r.stream_peak_gbps,
                         r.matmul_samples_per_s, r.matmul_roofline_pct, r.speedup,
                         *[r.peers.get(p) for p in peers]])
    return buffer.getvalue()
