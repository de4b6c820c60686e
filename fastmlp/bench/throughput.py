"""`fastmlp bench`: training throughput per configuration and thread count, beside the machine's
own GEMM peak and, on request, peers measured in the same run. An epoch is one training epoch
and its validation pass, as `fastmlp train` runs them."""
import itertools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..data.load import load_dataset
from ..engine.gemm import main_backend, roofline_call
from ..engine.model import training_flops
from ..engine.workspace import EVAL_ROWS, Workspace
from ..fastpath.csr import csr_bytes
from ..fastpath.fused import GROUP, read_sum
from ..precisions import parameter_dtype
from ..runtime import blas_idle
from ..runtime.jit import ready
from ..runtime.probe import GEMM_N
from ..runtime.threads import thread_limits
from ..runtime.timing import best_seconds
from ..settings import RunOptions, TrainConfig
from ..training.trainer import make_trainer
from .peers import BFLOAT16_PEERS, peer_samples_per_s
from .profile import profile_epochs, record_matmuls

GEMM_FLOPS = 2 * GEMM_N ** 3
# The streaming read that memory-bound paths are measured against: the size of MNIST's training
# inputs in float32 (48,000 x 784), far beyond the caches.
STREAM_BYTES = 150_000_000


@dataclass
class BenchRow:
    layers: list
    batch_size: int | None  # None: full batch
    dtype: str
    threads: int
    samples_per_s: float
    gflops: float  # the multiply-adds the path does (flops_done), not the dense count
    peak_gflops: float  # the GEMM roofline: this operand type, thread count, library; same run
    # The epoch's matmuls alone, and the first layer's own kernels where a path replaces its
    # matmuls (profile.record_matmuls): the ceiling those calls allow.
    matmul_samples_per_s: float | None
    optimizer: str = "sgd"
    fast_path: str = "plain"  # how the fast path and BLAS's idle threads ran (path_description)
    blas: str = "auto"  # the run option: which GEMM libraries the matmuls could go to
    matmuls: str = "openblas"  # where they went (matmul_summary)
    stream_gbps: float | None = None  # fused pass: its bytes per second, and the streaming
    stream_peak_gbps: float | None = None  # read bandwidth measured in the same run
    speedup: float | None = None  # over the same configuration at 1 thread, if measured
    peers: dict = field(default_factory=dict)  # peer -> samples/s, or why it is missing
    # peer -> samples/s of each of its processes (peers holds the best): a peer's speed can
    # vary from one process to the next.
    peer_runs: dict = field(default_factory=dict)
    profile: dict = field(default_factory=dict)  # phase -> seconds per epoch

    @property
    def configuration(self):
        """"[128, 64, 32] batch 128 float32": what the row measured."""
        batch = "full" if self.batch_size is None else self.batch_size
        return f"{list(self.layers)} batch {batch} {self.dtype}"

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


def stream_call(dtype, nbytes=STREAM_BYTES):
    """A function reading an `nbytes` array of `dtype` once with every numba thread: the
    streaming bandwidth that memory-bound paths (the fused pass) are quoted against."""
    ready(dtype, GROUP)
    a = np.ones(nbytes // np.dtype(dtype).itemsize, dtype)
    return lambda: read_sum(a)


def path_description(trainer, threads):
    """Which way an epoch runs, as the table names it: the trainer's fast path and, for
    minibatches at several threads, whether OpenBLAS's idle workers sleep (blas_idle.py) or
    spin, which at small batches decides whether the second core helps."""
    text = trainer.fastpath.description
    if trainer.in_place or threads == 1:
        return text
    timeout = blas_idle.in_force()
    idle = ("idle BLAS threads spin (OpenBLAS default)" if timeout is None else
            f"idle BLAS threads sleep after 2^{timeout} cycles")
    return f"{text}, {idle}"


def flops_done(trainer):
    """Training FLOPs per sample that the trainer's path really does: a first layer that skips
    pruned columns or zeros does fewer multiply-adds than the dense count, which quoted against
    the GEMM peak would claim more than the peak."""
    return training_flops(trainer.model.sizes, trainer.fastpath.columns_per_row)


def run(layers_list, batch_sizes, dtypes, threads_list, *, repeats=5, peers=(), peer_runs=1,
        profile=False, optimizer="sgd", lr=0.1, blas_options=("auto",), log=print):
    """Measure every combination; returns a list of BenchRow in the order measured. Each peer
    runs in peer_runs processes and its best counts, as fastmlp's best epoch does."""
    rows = []
    for dtype in dtypes:
        data = load_dataset("mnist", dtype=parameter_dtype(dtype))
        for layers, batch_size, blas in itertools.product(layers_list, batch_sizes,
                                                           blas_options):
            base = None
            for threads in threads_list:
                config = TrainConfig(layers=tuple(layers), batch_size=batch_size, lr=lr,
                                     optimizer=optimizer, dtype=dtype)
                row = measure(config, data, threads, repeats=repeats, peers=peers,
                              peer_runs=peer_runs, profile=profile, blas=blas)
                base = row.samples_per_s if threads == 1 else base
                row.speedup = row.samples_per_s / base if base else None
                rows.append(row)
                log(f"measured {row.configuration} ({row.matmuls}), {threads} threads")
    return rows


def matmul_summary(gemm):
    """Which library the matmuls of a trainer go to: "openblas", "mkl", or "mkl 4, openblas 7"
    when they are split by shape."""
    if not gemm.choices:
        return gemm.default
    counts = Counter(gemm.choices.values())
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))


def peers_for(peers, dtype):
    """The peers a row of `dtype` is measured against: no bfloat16 peer beside float64."""
    return [p for p in peers if dtype != "float64" or p not in BFLOAT16_PEERS]


def measure(config, data, threads, *, repeats=5, peers=(), peer_runs=1, profile=False,
            blas="auto"):
    """One BenchRow: `config` trained on `data` at `threads` threads with the GEMM libraries of
    `blas` (a run option), its best epoch against its matmuls replayed alone and the GEMM of
    the roofline (or the stream read, for the fused pass, which runs no matmul), all three
    taking turns so that their ratios hold while the machine's speed drifts; peers in
    processes of their own between fastmlp's rounds."""
    trainer = make_trainer(config, data, options=RunOptions(threads=threads, blas=blas))
    operand = "bfloat16" if trainer.model.mixed else config.dtype

    val = data.val
    validate = trainer.evaluator(val.x, val.y, Workspace(
        trainer.model, min(EVAL_ROWS, len(val.y)), backward=False, gather=False))

    def epoch():
        trainer.epoch()
        validate()
    swept = trainer.fastpath.name == "fused"
    with thread_limits(threads):
        timed = (epoch, stream_call(config.dtype) if swept else
                 record_matmuls(epoch, trainer.fastpath.first),
                 roofline_call(operand, main_backend(trainer.gemm), GEMM_N))
        best = best_seconds(timed, repeats)
    peer_rates, peer_all = {}, {}
    for peer in peers_for(peers, config.dtype):
        runs = []
        for _ in range(peer_runs):
            runs.append(peer_samples_per_s(peer, config.layers, config.batch_size,
                                           config.dtype, threads, repeats, config.optimizer,
                                           config.lr))
            # Timing fastmlp again after each peer process keeps the ratio from hinging on
            # one slow moment.
            with thread_limits(threads):
                best = list(map(min, best, best_seconds(timed, repeats)))
        rates = [r for r in runs if isinstance(r, float)]
        peer_rates[peer] = max(rates) if rates else runs[-1]
        peer_all[peer] = runs
    with thread_limits(threads):
        phases = profile_epochs(trainer) if profile else {}
    seconds, matmuls, gemm = best
    peak = GEMM_FLOPS / gemm / 1e9
    rate = len(data.train.y) / seconds
    stream = {}
    if swept:  # matmuls holds the stream read's seconds
        swept_bytes = csr_bytes(data.train.x) + csr_bytes(val.x)
        stream = dict(stream_gbps=swept_bytes / seconds / 1e9,
                      stream_peak_gbps=STREAM_BYTES / matmuls / 1e9)
    return BenchRow(list(config.layers), config.batch_size, config.dtype, threads, rate,
                    flops_done(trainer) * rate / 1e9, peak,
                    None if swept else len(data.train.y) / matmuls,
                    optimizer=config.optimizer,
                    fast_path=path_description(trainer, threads), blas=blas,
                    matmuls=matmul_summary(trainer.gemm),
                    **stream, peers=peer_rates, peer_runs=peer_all, profile=phases)
