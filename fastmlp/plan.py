"""Knowing a run before it runs: its layers, parameters and FLOPs, the memory it will hold
(counted from the shapes the engine allocates, without allocating them), whether that fits,
and the faster paths it will take (its time is estimated by estimate.py).

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

# The fused pass's time (4 of its blocks), and the sparse path's kernels', are probed on as many
# training rows.
SWEEP_ROWS = 4096
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
    n_val: int = 0  # of those evaluated, the validation rows (the fused pass sweeps them)
    kept: int = 0  # pruned columns (prune.py): the first layer's training matmuls read only these
    sweep_sample: tuple = None  # the fused pass runs: (x, y) of training rows to time it on
    sparse_sample: object = None  # the sparse path runs: training rows x to time its kernels on
    # (name, kept columns or None): paths.choose's answer for this run, which the trainer takes
    # rather than asking again: on the deep run's inputs asking scans them, 92-99 ms (median of
    # 7 fresh processes; make_trainer 338 -> 246 ms, in turns in one locked command); None
    # when the data was not known
    path: tuple = None

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


def plan_run(config, n_features, n_classes, n_train, n_val, n_test, paths=None):
    """The Plan of training `config` on splits of these lengths (n_test 0: no test split).
    paths: what the faster paths change when the data is known (plan_for, _paths): "copies",
    {name: bytes} of the copies of the inputs a full-batch run keeps, "kept" and
    "sweep_sample" (Plan's fields); without it the plain path is planned."""
    paths = paths or {}
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
        "training workspace": buffer_bytes(buffer_shapes(
            sizes, dtype, batch, gather=not in_place, columns=paths.get("kept"))) + 8 * n_train,
        "data": (n_train + n_val + n_test) * sample,
        # Full batch without augmentation keeps a transposed copy of the training inputs.
        **paths.get("copies", {"transposed inputs": n_train * n_features * itemsize
                                 if in_place else 0}),
        "evaluation workspace": buffer_bytes(buffer_shapes(sizes, dtype, eval_rows,
                                                           backward=False, gather=False)),
        "best weights": params if config.patience else 0,  # early stopping's copy
        "averaged weights": params if config.ema else 0,
    }
    test_every_epoch = n_test and config.eval_every == 1
    return Plan(sizes, dtype.name, batch, n_train, n_val + (n_test if test_every_epoch else 0),
                config.epochs, memory, transposed=in_place and "sweep_sample" not in paths,
                n_once=n_val + n_test, n_val=n_val, kept=paths.get("kept", 0),
                sweep_sample=paths.get("sweep_sample"), sparse_sample=paths.get("sparse_sample"),
                path=paths.get("path"))


def plan_for(config, dataset):
    """The Plan of training `config` on a loaded fastmlp.data.Dataset."""
    test = 0 if dataset.test is None else len(dataset.test.y)
    return plan_run(config, dataset.n_features, dataset.n_classes, len(dataset.train.y),
                    len(dataset.val.y), test, _paths(config, dataset))


def _paths(config, dataset):
    """The faster paths of this run, as paths.choose decides them for the trainer (plan_run's
    `paths`): the fused pass (its sparse copies of the training and validation inputs, and the
    rows its time is probed on), or the kept columns (and, at full batch, their copy and its
    transpose; for the sparse path, its sparse copies in their place), or neither."""
    from . import augment, paths
    x = dataset.train.x
    affine = augment.affine_on(config.augment_rotate, config.augment_scale, config.augment_shear)
    in_place = (config.batch_size is None or config.batch_size >= len(x)) and \
        not config.augment_shift and not affine
    sizes = (x.shape[1], *config.layers, dataset.n_classes)
    # Asked exactly as Trainer.__init__ would ask (rows: its batch size), which takes the answer.
    name, kept = paths.choose(sizes, x, in_place=in_place,
                              rows=min(config.batch_size or len(x), len(x)),
                              shift=config.augment_shift, affine=affine, dropout=config.dropout,
                              smoothing=config.label_smoothing)
    return {**_path_parts(name, kept, in_place, dataset), "path": (name, kept)}


def _path_parts(name, kept, in_place, dataset):
    """_paths' answer, "path" aside, for the path (name, kept) paths.choose gave."""
    from . import fused, sparse, sparse_grad
    x = dataset.train.x
    if name in ("fused", "sparse"):  # CSR copies of the training and validation inputs (the
        # fused pass's with int32 copies of the labels)
        sparse_copies = sum(fused.csr_bytes(split, labels=name == "fused")
                            for split in (x, dataset.val.x))
    if name == "fused":
        return {"copies": {"sparse inputs": sparse_copies},
                "sweep_sample": (x[:SWEEP_ROWS], dataset.train.y[:SWEEP_ROWS])}
    if kept is None:
        return {}
    copies = {"pruned input copies": 2 * len(x) * kept.size * x.itemsize}
    if name == "sparse":  # the CSR copies (each with its chunked W1: sparse.SparseRows.wc),
        # their row strips and the partial weight gradients
        chunked = 2 * x.shape[1] * sparse.WIDTH * x.itemsize
        return {"kept": kept.size, "sparse_sample": x[:SWEEP_ROWS],
                "copies": {"sparse inputs": sparse_copies + chunked +
                           sparse_grad.copy_bytes(x)}}
    return {"kept": kept.size, **({"copies": copies} if in_place else {})}


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


def report(plan, optimizer, estimate=None, peak_gflops=None, threads=None, available=None):
    """The text `fastmlp train --dry-run` prints (estimate: from estimate.estimate_time)."""
    from .estimate import KERNEL_SHARE
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
        if e.sweep_ns is not None:
            lines.append(f"  training: the fused pass, no matmuls: its sweep timed now at "
                         f"{threads} threads, {e.sweep_ns:.2f} ns per nonzero input")
        else:
            lines.append(
                f"  training: matmuls {duration_text(e.matmul_seconds)} (this run's own, timed "
                f"now at {threads} threads: {e.matmul_gflops:.0f} GFLOPS, "
                f"{e.matmul_gflops / peak_gflops:.0%} of the {peak_gflops:.0f} GFLOPS GEMM "
                f"peak) + kernels, update and Python {duration_text(e.other_seconds)} "
                f"(their bytes at {KERNEL_SHARE:.0%} of the {e.bandwidth / 1e9:.0f} GB/s "
                f"a copy of as many bytes reaches now)")
    return "\n".join(lines)
