"""Knowing a run before it runs: its layers, parameters and FLOPs, the memory it will hold
(counted from the shapes the engine allocates, without allocating them), whether that fits,
and a rough time estimate from this machine's GEMM peak.

The byte counts come from the same layout code the engine allocates with (model.flat_length,
workspace.buffer_shapes, the optimizers' state names), so a change there changes the plan too.
"""
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import OutOfMemory
from .model import flat_length, training_flops
from .update import OPTIMIZERS
from .workspace import EVAL_ROWS, buffer_bytes, buffer_shapes

# The rough time estimate: a square sgemm of PEAK_N is this machine's peak (timed in well under
# a second), and training runs at a share of it that depends on the batch: measured, not
# derived. On the 2-core machine fastmlp was developed on, [128, 64, 32] epochs reached 68% of
# this peak at full batch, 65% at batch 1024 and 32% at batch 128 (small matmuls are far from
# OpenBLAS's square-matrix speed, and the fused kernels and Python cost the rest). Other layer
# widths and machines differ: the estimate says which order of magnitude to expect.
PEAK_N = 1024
PEAK_REPEATS = 3
SHARES = ((1024, 0.6), (0, 0.3))  # (smallest batch, share of the peak), largest batch first
_UNITS = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


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
    def share(self):
        """The share of the GEMM peak this batch size is estimated to reach (SHARES)."""
        return next(share for low, share in SHARES if self.batch_size >= low)

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
    in_place = batch == n_train and not config.augment_shift  # as Trainer.__init__ decides
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
        # The trainer keeps the best weights even without early stopping: checkpoints save them.
        "best weights": params,
    }
    test_every_epoch = n_test and config.eval_every == 1
    return Plan(sizes, dtype.name, batch, n_train, n_val + (n_test if test_every_epoch else 0),
                config.epochs, memory)


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


def size_text(n, unit=None):
    """Bytes as "75.1 GiB" (or in the unit of another size, for a list of parts)."""
    name, scale = unit or unit_of(n)
    return f"{n / scale:.1f} {name}"


def unit_of(n):
    return next(((u, s) for u, s in _UNITS if n >= s), ("KiB", 2**10))


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


def seconds_per_epoch(plan, peak_gflops):
    """The rough estimate of an epoch's training: its FLOPs at plan.share of the GEMM peak."""
    return plan.flops_per_epoch / (peak_gflops * 1e9 * plan.share)


def seconds_per_run(plan, peak_gflops):
    """Every epoch's training and evaluation (evaluation at the large-batch share)."""
    evaluation = plan.eval_flops / (peak_gflops * 1e9 * SHARES[0][1])
    return plan.epochs * (seconds_per_epoch(plan, peak_gflops) + evaluation)


def report(plan, optimizer, peak_gflops=None, threads=None, available=None):
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
    if peak_gflops:
        epoch = seconds_per_epoch(plan, peak_gflops)
        lines.append(f"time (rough estimate: {plan.share:.0%} of the {peak_gflops:.0f} "
                     f"GFLOPS GEMM peak measured now at {threads} threads): {epoch:.2g} s "
                     f"training per epoch, {seconds_per_run(plan, peak_gflops):.2g} s for "
                     f"{plan.epochs} epochs with evaluation")
    return "\n".join(lines)
