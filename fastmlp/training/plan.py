"""Knowing a run before it runs: its effective batch, whether it reads its inputs in place, the
fast path it takes, its layers, parameters and FLOPs, and the memory it will hold (counted from
the shapes the engine allocates, without allocating them), and whether that fits. The trainer
is made from the plan, so the two cannot disagree.

The byte counts come from the same layout code the engine allocates with (model.flat_length,
workspace.buffer_shapes, the optimizers' state names, the path's copies), so a change there
changes the plan too.
"""
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..engine import gemm as gemms
from ..engine.augment import affine_on
from ..engine.elastic import bank_bytes, elastic_on
from ..engine.model import flat_length, training_flops
from ..engine.optim import OPTIMIZERS
from ..engine.workspace import EVAL_ROWS, buffer_bytes, buffer_shapes
from ..errors import FastMLPError, OutOfMemory
from ..fastpath.choose import choose
from ..fastpath.plain import PlainPath
from ..precisions import is_mixed, parameter_dtype
from ..runtime import blas
from ..runtime.probe import available_bytes, bfloat16_units
from ..runtime.threads import thread_limits
from ..settings import RunOptions, augmented
from ..units import size_text, unit_of


@dataclass
class Plan:
    """What a run of `sizes` (input, hidden..., classes) will hold and compute."""
    sizes: tuple
    dtype: str
    batch_size: int  # the effective batch: the training split's length at full batch
    in_place: bool  # full batch without augmentation: every step reads the split itself
    n_train: int
    n_eval: int  # samples evaluated per epoch (validation, and test when it is due every epoch)
    epochs: int
    fastpath: PlainPath  # the path the trainer takes (fastpath/), not yet built
    memory: dict = field(default_factory=dict)  # part -> bytes, in the order they are listed
    n_once: int = 0  # samples evaluated once: the untrained model's validation loss, the test
    n_val: int = 0  # of those evaluated, the validation rows (the fused pass sweeps them)
    precision: str = "float32"  # the config's dtype: float32, float64 or mixed_bfloat16
    # Where each matmul goes (engine.gemm.Gemm), and the seconds each backend took for each
    # product when they were timed ({product: {backend: seconds}}; empty: nothing to choose).
    gemm: gemms.Gemm = gemms.OPENBLAS
    gemm_times: dict = field(default_factory=dict)
    # A mix of libraries that the run's own steps are to decide on (training/calibrate.py):
    # {name: Gemm}, the key the decision is kept under, the threads it was timed at.
    gemm_candidates: dict = field(default_factory=dict)
    gemm_key: str | None = None
    gemm_threads: int | None = None

    @property
    def operand(self):
        """The matmuls' operand type: "bfloat16" in mixed precision, else the float type."""
        return "bfloat16" if is_mixed(self.precision) else self.dtype

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

    def estimate(self):
        """The run's time, timed now at the thread limits in force (engine.cost.Estimate)."""
        return self.fastpath.estimate(self)


def batching(config, n_train):
    """(the rows of a training step, whether every step reads the split in place): a batch
    larger than the split is full batch, and full batch without augmentation needs no gather."""
    rows = min(config.batch_size or n_train, n_train)
    return rows, rows == n_train and not augmented(config)


def plan_run(config, n_features, n_classes, n_train, n_val, n_test, fastpath=None,
             val_x=None, gemm=gemms.OPENBLAS, gemm_times=None):
    """The Plan of training `config` on splits of these lengths (n_test 0: no test split).
    fastpath: the path chosen on the data (plan_for), which may copy the validation inputs
    val_x too; without it the plain path is planned, from the shapes alone. gemm: where the
    matmuls go (plan_for chooses); gemm_times: their timings, when they were timed."""
    sizes = (int(n_features), *map(int, config.layers), int(n_classes))
    dtype = parameter_dtype(config.dtype)
    mixed = is_mixed(config.dtype)
    itemsize = dtype.itemsize
    batch, in_place = batching(config, n_train)
    if fastpath is None:  # a stand-in for the inputs with their shape and no memory
        stand_in = np.broadcast_to(np.zeros((), dtype), (n_train, n_features))
        fastpath = PlainPath(stand_in, None, in_place, mixed)
    flat = flat_length(sizes, dtype)
    params = flat * itemsize
    eval_rows = min(EVAL_ROWS, max(n_val, n_test))
    sample = n_features * itemsize + np.dtype(np.int32).itemsize  # a row of x and its label
    columns = fastpath.n_kept or None
    copies = fastpath.copies(val_x)
    if mixed:  # the test split's bfloat16 copy, made when it is evaluated
        copies["bfloat16 inputs"] += 2 * n_test * n_features
    memory = {
        "parameters": params,
        "gradients": params,
        "optimizer state": len(OPTIMIZERS[config.optimizer].state_names) * params,
        # The trainer's buffers, and its shuffling order (int64 per training sample).
        "training workspace": buffer_bytes(buffer_shapes(
            sizes, dtype, batch, gather=not in_place, columns=columns, mixed=mixed))
        + 8 * n_train,
        "data": (n_train + n_val + n_test) * sample,
        **copies,
        "evaluation workspace": buffer_bytes(buffer_shapes(sizes, dtype, eval_rows,
                                                           backward=False, gather=False,
                                                           mixed=mixed)),
        "best weights": params if config.patience else 0,  # early stopping's copy
        "averaged weights": params if config.ema else 0,
        "elastic field bank": bank_bytes(math.isqrt(n_features))
        if elastic_on(config.augment_elastic) else 0,
        # The parameters' bfloat16 copies (and the average's), beside the float ones.
        "bfloat16 weights": 2 * flat * (1 + bool(config.ema)) if mixed else 0,
        "widening scratch": _scratch_bytes(gemm, products(
            sizes, fastpath, batch, n_train % batch, _chunks(n_val) | _chunks(n_test)))
        if mixed else 0,
    }
    test_every_epoch = n_test and config.eval_every == 1
    return Plan(sizes, dtype.name, batch, in_place, n_train,
                n_val + (n_test if test_every_epoch else 0), config.epochs, fastpath, memory,
                n_once=n_val + n_test, n_val=n_val, precision=config.dtype, gemm=gemm,
                gemm_times=gemm_times or {})


def _scratch_bytes(gemm, products_):
    """The float32 buffers a Gemm widens bfloat16 operands into, for the products it sends to
    a BLAS without bfloat16 matmuls (one buffer per operand shape)."""
    shapes = set()
    for m, k, n, layout in products_:
        if gemm.backend_for((m, k, n, layout)) == "openblas":
            shapes |= {(0, (m, k) if layout[0] == "n" else (k, m)),
                       (1, (k, n) if layout[1] == "n" else (n, k))}
    return sum(4 * a * b for _, (a, b) in shapes)


def products(sizes, fastpath, rows, tail, eval_rows):
    """Every matmul shape of a run: the training steps' (`rows`, and the last partial batch of
    `tail` rows) and the evaluation chunks' (eval_rows: the row counts of every chunk)."""
    found = [*fastpath.products(sizes, rows, True)]
    if tail:
        found += fastpath.products(sizes, tail, True)
    for count in eval_rows:
        found += fastpath.products(sizes, count, False)
    return list(dict.fromkeys(found))


def _chunks(n):
    """The row counts of evaluation's chunks over n rows."""
    return {min(EVAL_ROWS, n), n % EVAL_ROWS} - {0} if n else set()


def check_augmentation(config, features):
    """Shifts, affine transforms and elastic distortions move square pictures: refuse them for
    other samples, and a shift of half the side or more (it moves the picture out of its frame:
    noise to learn)."""
    affine = affine_on(config.augment_rotate, config.augment_scale, config.augment_shear)
    if not (config.augment_shift or affine or elastic_on(config.augment_elastic)):
        return
    side = math.isqrt(features)
    if side ** 2 != features:
        raise FastMLPError(f"shift, affine and elastic augmentation need square images, but "
                           f"samples have {features} features")
    if 2 * config.augment_shift >= side:
        raise FastMLPError(f"augment_shift {config.augment_shift} moves a {side}x{side} image "
                           f"out of its frame; use at most {(side - 1) // 2}")


def plan_for(config, dataset, plain=False, options=None, gemm=None):
    """The Plan of training `config` on a loaded data.load.Dataset with RunOptions `options`:
    its fast path (plain=True: the plain path, which the tests compare the others with) and
    where its matmuls go, chosen by timing them at the run's threads as options.blas says
    (engine.gemm.choose; `gemm`: a choice made before, as a checkpoint keeps it)."""
    options = options or RunOptions()
    x, y = dataset.train.x, dataset.train.y
    check_augmentation(config, x.shape[1])
    rows, in_place = batching(config, len(y))
    sizes = (x.shape[1], *config.layers, dataset.n_classes)
    mixed = is_mixed(config.dtype)
    fastpath = choose(sizes, x, y, rows=rows, in_place=in_place, shift=config.augment_shift,
                      affine=affine_on(config.augment_rotate, config.augment_scale,
                                       config.augment_shear)
                      or elastic_on(config.augment_elastic),
                      dropout=config.dropout, smoothing=config.label_smoothing, plain=plain,
                      mixed=mixed)
    test = 0 if dataset.test is None else len(dataset.test.y)
    choice, threads = gemms.Choice(gemm or gemms.OPENBLAS), None
    if gemm is None:
        shapes = products(sizes, fastpath, rows, len(y) % rows,
                          _chunks(len(dataset.val.y)) | _chunks(test))
        with thread_limits(options.threads) as threads:
            choice = gemms.choose(shapes, "bfloat16" if mixed else config.dtype, threads,
                                  options.blas)
    plan = plan_run(config, dataset.n_features, dataset.n_classes, len(y), len(dataset.val.y),
                    test, fastpath, dataset.val.x, choice.gemm, choice.times)
    plan.gemm_candidates, plan.gemm_key, plan.gemm_threads = \
        choice.candidates, choice.key, threads
    return plan


def bfloat16_note(plan):
    """The line a mixed-precision run tells its user when it cannot use bfloat16 units (None
    where it can, or where it does not apply): on a CPU without them it runs, correctly, on
    what the plan measured; on a CPU with them but without MKL (the GEMM library here that
    uses them), it names the install that would."""
    if plan.operand != "bfloat16":
        return None
    if bfloat16_units():
        if "mkl" in blas.available():
            return None
        return ("this CPU has bfloat16 units, but no GEMM library here uses them: mixed_bfloat16 "
                "runs on openblas, without their speed (pip install 'fastmlp[mkl]' adds MKL's "
                "bfloat16 matmuls)")
    backends = ", ".join(plan.gemm.backends())
    measured = "; ".join(f"{m}x{k}x{n}: " + ", ".join(f"{b} {1e6 * t:.0f} us"
                                                      for b, t in times.items())
                         for (m, k, n, _), times in list(plan.gemm_times.items())[:3])
    return (f"this CPU has no bfloat16 units (AMX-BF16 or AVX512-BF16): mixed_bfloat16 runs "
            f"on {backends}, without their speed" + (f" (measured: {measured})" if measured
                                                     else ""))


# The classes a plan made before the labels are read assumes when the files do not say: the
# output layer's share of the memory is small either way.
ASSUMED_CLASSES = 10


def plan_unread(config, data_dir=None):
    """The Plan of training `config` on data read from files (config.data), made from the sizes
    its files declare (source.inspect) before any of it is loaded; None for a registered
    dataset, which is known to be small."""
    from ..data.source import inspect

    if config.data is None:
        return None
    found = inspect(config.data, config.label_column, config.image_size)
    if found is None:  # the loader will say what is wrong
        return None
    n, n_test, n_features, n_classes = found
    n_val = round(n * config.val_fraction)
    return plan_run(config, n_features, n_classes or ASSUMED_CLASSES, max(1, n - n_val), n_val,
                    n_test)


def check_data_fits(config, data_dir=None, max_memory=None, available=None):
    """Refuse (OutOfMemory, with the memory plan's line) a run whose data, read from files, would
    not fit in memory with everything else the run holds, before any of it is loaded: a
    dataset larger than memory is never swapped into. Returns that plan (None: a registered
    dataset)."""
    plan = plan_unread(config, data_dir)
    if plan is not None:
        check_fits(plan, max_memory, available)
    return plan


def need_text(plan):
    """'[100000, 100000] needs 75.1 GiB (parameters 37.5, gradients 37.5, ...)'."""
    unit = unit_of(plan.total)
    parts = ", ".join(f"{name} {plan.memory[name] / unit[1]:.1f}"
                      for name in plan.memory if plan.memory[name])
    return f"{plan.hidden} needs {size_text(plan.total, unit)} ({parts})"


def check_fits(plan, max_memory=None, available=None):
    """Raise OutOfMemory when the plan needs more than the memory available or max_memory."""
    check_bytes(plan.total, need_text(plan), max_memory, available)


def check_bytes(total, need, max_memory=None, available=None):
    """Raise OutOfMemory("{need}; {the lower limit}") when `total` bytes are more than the
    memory available or max_memory (a plan's need, or a model file's before it is read)."""
    available = available_bytes() if available is None else available
    limits = []
    if available is not None:
        limits.append((available, f"{size_text(available)} available"))
    if max_memory is not None:
        limits.append((max_memory, f"the limit given is {size_text(max_memory)}"))
    for limit, text in sorted(limits, key=lambda item: item[0])[:1]:
        if total > limit:
            raise OutOfMemory(f"{need}; {text}")


@contextmanager
def allocating(plan):
    """A MemoryError the plan did not foresee (other processes took the memory meanwhile)
    becomes one OutOfMemory line too."""
    try:
        yield
    except MemoryError:
        raise OutOfMemory(f"{need_text(plan)}; allocating it failed") from None
