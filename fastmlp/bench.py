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


def make_trainer(layers, batch_size, data, lr=0.1, seed=0, **settings):
    """A fastmlp Trainer on `data`'s training split: He init, plain SGD unless settings say
    otherwise (any TrainConfig field)."""
    from .settings import TrainConfig
    from .trainer import make_trainer as build
    config = TrainConfig(layers=tuple(layers), batch_size=batch_size, lr=lr, seed=seed,
                         dtype=data.train.x.dtype.name, **settings)
    return build(config, data)


def path(trainer, threads):
    """Which way an epoch runs, as the table names it: full batch (one step on the split in
    place) or minibatch, and at several threads whether OpenBLAS's idle workers sleep
    (blas_idle.py) or spin, which at small batches decides whether the second core helps."""
    from . import blas_idle
    if trainer.in_place:
        return "full batch"
    if threads == 1:
        return "minibatch, 1 thread"
    timeout = blas_idle.in_force()
    idle = ("idle BLAS threads spin (OpenBLAS default)" if timeout is None else
            f"idle BLAS threads sleep after 2^{timeout} cycles")
    return f"minibatch, {threads} threads, {idle}"


def describe(layers, batch_size, dtype):
    batch = "full" if batch_size is None else batch_size
    return f"{list(layers)} batch {batch} {np.dtype(dtype).name}"


def _peer_env():
    """The environment a peer process starts from: the user's, without fastmlp's defaults."""
    from . import blas_idle, kernels
    injected = {**kernels.INJECTED_ENV, **blas_idle.INJECTED_ENV}
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
    gflops: float
    peak_gflops: float  # the GEMM roofline at this dtype and thread count, same run
    matmul_samples_per_s: float  # the epoch's matmuls alone: the ceiling this BLAS allows
    optimizer: str = "sgd"
    path: str = ""  # which way the epoch ran (path())
    speedup: float | None = None  # over the same configuration at 1 thread, if measured
    peers: dict = field(default_factory=dict)  # peer -> samples/s, or why it is missing
    profile: dict = field(default_factory=dict)  # phase -> seconds per epoch

    @property
    def roofline_pct(self):
        return 100 * self.gflops / self.peak_gflops

    @property
    def matmul_roofline_pct(self):
        """The share of the GEMM peak that the epoch's matmuls reach on their own."""
        return 100 * self.gflops * self.matmul_samples_per_s / self.samples_per_s / \
            self.peak_gflops

    @property
    def matmul_share(self):
        """fastmlp's throughput as a share of its matmuls' alone: 100% would mean every
        kernel and every line of Python cost nothing."""
        return 100 * self.samples_per_s / self.matmul_samples_per_s

    def ratio(self, peer):
        other = self.peers.get(peer)
        return self.samples_per_s / other if isinstance(other, float) else None


def run(layers_list, batch_sizes, dtypes, threads_list, *, repeats=5, peers=(), profile=False,
        optimizer="sgd", lr=0.1, log=print):
    """Measure every combination; returns a list of BenchRow in the order measured."""
    from .data import load_dataset
    from .profile import profile_epochs, record_matmuls

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
                    # The epoch, its matmuls alone and the GEMM of the roofline take turns, so
                    # that their ratios hold while this machine's speed drifts (a shared host).
                    with thread_limits(threads):
                        timed = (trainer.epoch, record_matmuls(trainer.epoch), gemm_call(dtype))
                        best = best_seconds(timed, repeats)
                    peer_rates = {}
                    for peer in peers:
                        peer_rates[peer] = peer_samples_per_s(peer, layers, batch_size, dtype,
                                                              threads, repeats, optimizer, lr)
                        # Timing fastmlp again after each peer keeps the ratio from hinging on
                        # one slow moment.
                        with thread_limits(threads):
                            best = list(map(min, best, best_seconds(timed, repeats)))
                    with thread_limits(threads):
                        phases = profile_epochs(trainer) if profile else {}
                    seconds, matmuls, gemm = best
                    # The best GEMM seen, here or at the start: a slow moment can only lower
                    # the share of the peak, never raise it.
                    peak = max(peaks[dtype, threads], GEMM_FLOPS / gemm / 1e9)
                    rate = len(data.train.y) / seconds
                    if threads == 1:
                        base = rate
                    rows.append(BenchRow(
                        list(layers), batch_size, np.dtype(dtype).name, threads, rate,
                        trainer.model.flops_per_sample() * rate / 1e9, peak,
                        len(data.train.y) / matmuls, optimizer=optimizer,
                        path=path(trainer, threads), speedup=rate / base if base else None,
                        peers=peer_rates, profile=phases))
                    log(f"measured {describe(layers, batch_size, dtype)}, {threads} threads")
    return rows


def table(rows, peers=()):
    """A Markdown table of the rows."""
    head = ["configuration", "threads", "path", "samples/s", "GFLOPS", "% of GEMM peak",
            "matmuls alone: % of GEMM peak", "% of matmuls-alone speed", "speed-up vs 1 thread"]
    for peer in peers:
        head += [f"{peer} samples/s", f"fastmlp / {peer}"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [f"{describe(r.layers, r.batch_size, r.dtype)} {r.optimizer}", str(r.threads),
                 r.path,
                 f"{r.samples_per_s:,.0f}", f"{r.gflops:.1f}", f"{r.roofline_pct:.1f}%",
                 f"{r.matmul_roofline_pct:.1f}%", f"{r.matmul_share:.1f}%",
                 "n/a" if r.speedup is None else f"{r.speedup:.2f}x"]
        for peer in peers:
            other = r.peers.get(peer)
            cells += [f"{other:,.0f}" if isinstance(other, float) else str(other),
                      "n/a" if r.ratio(peer) is None else f"{r.ratio(peer):.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
                     "gflops", "peak_gflops", "roofline_pct", "matmul_samples_per_s",
                     "matmul_roofline_pct", "speedup",
                     *[f"{p}_samples_per_s" for p in peers]])
    for r in rows:
        writer.writerow([" ".join(map(str, r.layers)), r.batch_size or "full", r.dtype,
                         r.threads, r.path, r.samples_per_s, r.gflops, r.peak_gflops,
                         r.roofline_pct,
                         r.matmul_samples_per_s, r.matmul_roofline_pct, r.speedup,
                         *[r.peers.get(p) for p in peers]])
    return buffer.getvalue()
