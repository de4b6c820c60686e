"""Knowing a run before it runs: its layers, parameters and FLOPs, the memory it will hold
(counted from the shapes the engine allocates, without allocating them), whether that fits,
and a time estimate from the run's own matmuls timed on this machine.

The byte counts come from the same layout code the engine allocates with (model.flat_length,
workspace.buffer_shapes, the optimizers' state names), so a change there changes the plan too.
"""
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import OutOfMemory
from .model import flat_length, training_flops
from .settings import augmented
from .update import OPTIMIZERS
from .workspace import EVAL_ROWS, buffer_bytes, buffer_shapes

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
PEAK_N = 1024  # the GEMM peak shown beside the estimate: the best of a few 1024^3 sgemms
PEAK_REPEATS = 3
PROBE_DIM = 4096
PROBE_VOLUME = 2**30
PROBE_REPEATS = 3
COPY_MIN, COPY_MAX = 2**20, 2**26  # the sizes of the copies the bandwidths are timed on
KERNEL_SHARE = 0.7  # the fused kernels' traffic runs at this share of a plain copy's bandwidth
STEP_SECONDS = 70e-6  # Python and kernel dispatch per training step
_UNITS = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
# Units of a memory limit: SI multiples (MB = 10^6) and binary ones (MiB = 2^20; a bare K, M,
# G or T is binary too, as in ulimit and free).
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               **{p + s: 2**(10 * i) for i, p in enumerate("kmgt", 1) for s in ("", "ib")}}


@dataclass
class Plan:
    """What a run of `sizes` (input, hidden..., classes) will hold and compute."""
    sizes: tuple
    dtype: str
    batch_size: int  # the effective batch: the training split's length at full batch
    n_train: int
    n_eval: int  # samples evaluated per epoch (validation, and test when it is due every epoch)
    epochs: int
    memory: dict = field(default_factory=dict)  # part -> bytes, in the order they are listed
    transposed: bool = False  # the first layer's weight gradient reads a transposed input copy
    n_once: int = 0  # samples evaluated once: the untrained model's validation loss, the test

    @property
    def layers(self):
        """(n_in, n_out, parameters) of every layer."""
        return [(n_in, n_out, n_in * n_out + n_out)
                for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    @property
    def n_params(self):
        return sum(p for _, _, p in self.layers)

    @property
    def flops_per_sample(self):
        return training_flops(self.sizes)

    @property
    def flops_per_epoch(self):
        """Training FLOPs of an epoch (its evaluation not included: eval_flops)."""
        return self.flops_per_sample * self.n_train

    @property
    def eval_flops(self):
        """The forward matmuls of an epoch's evaluation."""
        return 2 * sum(n_in * n_out for n_in, n_out, _ in self.layers) * self.n_eval

    @property
    def total(self):
        return sum(self.memory.values())

    @property
    def hidden(self):
        return list(self.sizes[1:-1])


def plan_run(config, n_features, n_classes, n_train, n_val, n_test, input_copies=None):
    """The Plan of training `config` on splits of these lengths (n_test 0: no test split).
    input_copies: {name: bytes} of the copies of the inputs a full-batch run keeps, when the
    data is known (plan_for); else the plain path's transposed copy is counted."""
    sizes = (int(n_features), *map(int, config.layers), int(n_classes))
    dtype = np.dtype(config.dtype)
    itemsize = dtype.itemsize
    batch = min(config.batch_size or n_train, n_train)
    in_place = batch == n_train and not augmented(config)  # as Trainer.__init__ decides
    params = flat_length(sizes, dtype) * itemsize
    eval_rows = min(EVAL_ROWS, max(n_val, n_test))
    sample = n_features * itemsize + np.dtype(np.int32).itemsize  # a row of x and its label
    memory = {
        "parameters": params,
        "gradients": params,
        "optimizer state": len(OPTIMIZERS[config.optimizer].state_names) * params,
        # The trainer's buffers, and its shuffling order (int64 per training sample).
        "training workspace": buffer_bytes(buffer_shapes(sizes, dtype, batch,
                                                         gather=not in_place)) + 8 * n_train,
        "data": (n_train + n_val + n_test) * sample,
        # Full batch without augmentation keeps a transposed copy of the training inputs.
        **(input_copies if input_copies is not None and in_place else
           {"transposed inputs": n_train * n_features * itemsize if in_place else 0}),
        "evaluation workspace": buffer_bytes(buffer_shapes(sizes, dtype, eval_rows,
                                                           gather=False)),
        "best weights": params if config.patience else 0,  # early stopping's copy
        "averaged weights": params if config.ema else 0,
    }
    test_every_epoch = n_test and config.eval_every == 1
    return Plan(sizes, dtype.name, batch, n_train, n_val + (n_test if test_every_epoch else 0),
                config.epochs, memory, transposed=in_place, n_once=n_val + n_test)


def plan_for(config, dataset):
    """The Plan of training `config` on a loaded fastmlp.data.Dataset."""
    test = 0 if dataset.test is None else len(dataset.test.y)
    return plan_run(config, dataset.n_features, dataset.n_classes, len(dataset.train.y),
                    len(dataset.val.y), test, _input_copies(config, dataset))


def _input_copies(config, dataset):
    """The copies of the inputs a full-batch run keeps, as Trainer.__init__ decides them: the
    fused pass's sparse copies of the training and validation inputs, or the kept columns
    and their transpose (prune.py), or None (the plain path's transposed copy)."""
    from . import fused, prune
    x = dataset.train.x
    if config.batch_size is not None and config.batch_size < len(x):
        return None
    sizes = (x.shape[1], *config.layers, dataset.n_classes)
    if config.dropout == 0 and fused.applies(sizes, x):
        return {"sparse inputs": fused.csr_bytes(x) + fused.csr_bytes(dataset.val.x)}
    kept = prune.kept_columns(x)
    return None if kept is None else {"pruned input copies": 2 * len(x) * kept.size * x.itemsize}


def available_bytes():
    """The memory this machine can give a new allocation without swapping (Linux's
    MemAvailable), else the free physical pages, else None (unknown: nothing is refused)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def parse_size(size):
    """Bytes from a size: 4GiB, 500MB, 1.5G, "1000000" or an int; ValueError if it is none."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        text = str(size).strip()
        number = text.rstrip("bBiIkKmMgGtT")
        try:
            value = float(number) * _SIZE_UNITS[text[len(number):].lower()]
        except (ValueError, KeyError):
            raise ValueError(f"{size!r} is not a size (examples: 4GiB, 500MB, 1.5G)") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"{size!r}: a size must be positive")
    return int(value)


def size_text(n, unit=None):
    """Bytes as "75.1 GiB" (or in the unit of another size, for a list of parts)."""
    name, scale = unit or unit_of(n)
    return f"{n / scale:.1f} {name}"


def unit_of(n):
    return next(((u, s) for u, s in _UNITS if n >= s), ("KiB", 2**10))


def duration_text(seconds):
    """Seconds as "0.263 s", "95 s", "12.5 min", "3.1 h" or "150 days"."""
    for unit, scale, limit in (("s", 1, 120), ("min", 60, 120), ("h", 3600, 48)):
        if seconds < limit * scale:
            return f"{seconds:.3g} s" if unit == "s" else \
                f"{seconds / scale:.1f} {unit}"
    return f"{seconds / 86400:.0f} days"


def need_text(plan):
    """'[100000, 100000] needs 75.1 GiB (parameters 37.5, gradients 37.5, ...)'."""
    unit = unit_of(plan.total)
    parts = ", ".join(f"{name} {plan.memory[name] / unit[1]:.1f}"
                      for name in plan.memory if plan.memory[name])
    return f"{plan.hidden} needs {size_text(plan.total, unit)} ({parts})"


def check_fits(plan, max_memory=None, available=None):
    """Raise OutOfMemory when the plan needs more than the memory available or max_memory."""
    available = available_bytes() if available is None else available
    limits = []
    if available is not None:
        limits.append((available, f"{size_text(available)} available"))
    if max_memory is not None:
        limits.append((max_memory, f"the limit given is {size_text(max_memory)}"))
    for limit, text in sorted(limits, key=lambda item: item[0])[:1]:
        if plan.total > limit:
            raise OutOfMemory(f"{need_text(plan)}; {text}")


def gemm_peak_gflops(dtype, threads):
    """This machine's GEMM GFLOPS now: the best of a few PEAK_N^3 matmuls (~0.1 s)."""
    from .bench import gemm_gflops
    return gemm_gflops(dtype, threads, n=PEAK_N, repeats=PEAK_REPEATS)


def products(plan, rows, backward=True):
    """(m, k, n, layout) of every matmul of a pass over `rows` rows, as forward.py and
    backward.py call them: layout "nn" is a (m, k) @ b (k, n), both C-contiguous; "tn" reads a
    as the transpose of a C-contiguous (k, m) array, "nt" reads b so."""
    out = [(rows, n_in, n_out, "nn") for n_in, n_out, _ in plan.layers]  # a_prev @ w
    if backward:  # from the last layer: a_prev.T @ delta, then delta @ w.T for the layer below
        for k, (n_in, n_out, _) in reversed(list(enumerate(plan.layers))):
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
    gather = 0 if plan.transposed else 2 * rows * plan.sizes[0] * itemsize
    update = 3 * plan.memory["parameters"] + 2 * plan.memory["optimizer state"]
    return gather + 5 * rows * units * itemsize + update


@dataclass
class Estimate:
    """A run's time, estimated from its own matmuls and memory traffic (estimate_time)."""
    matmul_seconds: float  # an epoch's training matmuls
    other_seconds: float  # the rest of an epoch's training: kernels, update, gather, Python
    eval_seconds: float  # an epoch's evaluation
    once_seconds: float  # the evaluations outside the epochs (Plan.n_once)
    epochs: int
    matmul_gflops: float  # the training matmuls' speed on the probe
    bandwidth: float  # bytes/s of a plain copy of a training step's traffic, measured now

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


def estimate_time(plan):
    """Estimate `plan`'s run from its matmuls and traffic, timed now at the thread limits in
    force."""
    steps = plan.n_train / plan.batch_size
    matmuls, other, bandwidth = _pass_seconds(plan, plan.batch_size, training=True)
    eval_rows = min(max(plan.n_eval, plan.n_once), EVAL_ROWS)  # evaluation's chunks
    per_sample = sum(_pass_seconds(plan, eval_rows, training=False)[:2]) / eval_rows
    return Estimate(steps * matmuls, steps * other, plan.n_eval * per_sample,
                    plan.n_once * per_sample, plan.epochs,
                    plan.flops_per_sample * plan.batch_size / matmuls / 1e9, bandwidth)


def report(plan, optimizer, estimate=None, peak_gflops=None, threads=None, available=None):
    """The text `fastmlp train --dry-run` prints."""
    batch = "full" if plan.batch_size == plan.n_train else plan.batch_size
    lines = [f"{' -> '.join(map(str, plan.sizes))}, {plan.dtype}, batch {batch} of "
             f"{plan.n_train:,} training samples, {optimizer}, {plan.epochs} epochs",
             f"{'layer':>5}  {'shape (weights + biases)':<28} {'parameters':>14}"]
    lines += [f"{i:>5}  {f'{n_in} x {n_out} + {n_out}':<28} {p:>14,}"
              for i, (n_in, n_out, p) in enumerate(plan.layers, 1)]
    lines.append(f"{'total':>5}  {'':<28} {plan.n_params:>14,}")
    lines.append(f"training FLOPs: {plan.flops_per_sample:,} per sample, "
                 f"{plan.flops_per_epoch:.3g} per epoch (evaluation: {plan.eval_flops:.3g})")
    lines.append("memory:")
    lines += [f"  {name:<22} {size_text(n):>12}" for name, n in plan.memory.items() if n]
    avail = "" if available is None else f" ({size_text(available)} available)"
    lines.append(f"  {'total':<22} {size_text(plan.total):>12}{avail}")
    if estimate:
        e = estimate
        lines.append(f"time (estimate): {duration_text(e.train_seconds)} training + "
                     f"{duration_text(e.eval_seconds)} evaluation per epoch, "
                     f"{duration_text(e.run_seconds)} for {e.epochs} epochs and the final "
                     f"evaluation")
        lines.append(f"  training: matmuls {duration_text(e.matmul_seconds)} (this run's own, "
                     f"timed now at {threads} threads: {e.matmul_gflops:.0f} GFLOPS, "
                     f"{e.matmul_gflops / peak_gflops:.0%} of the {peak_gflops:.0f} GFLOPS GEMM "
                     f"peak) + kernels, update and Python {duration_text(e.other_seconds)} "
                     f"(their bytes at {KERNEL_SHARE:.0%} of the {e.bandwidth / 1e9:.0f} GB/s "
                     f"a copy of as many bytes reaches now)")
    return "\n".join(lines)
