"""Knowing a run before it runs: its effective batch, whether it reads its inputs in place, the
fast path it takes, its layers, parameters and FLOPs, and the memory it will hold (counted from
the shapes the engine allocates, without allocating them), and whether that fits. The trainer
is made from the plan, so the two cannot disagree.

The byte counts come from the same layout code the engine allocates with (model.flat_length,
workspace.buffer_shapes, the optimizers' state names, the path's copies), so a change there
changes the plan too.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..engine.augment import affine_on
from ..engine.model import flat_length, training_flops
from ..engine.optim import OPTIMIZERS
from ..engine.workspace import EVAL_ROWS, buffer_bytes, buffer_shapes
from ..errors import OutOfMemory
from ..fastpath.choose import choose
from ..fastpath.plain import PlainPath
from ..runtime.probe import available_bytes
from ..settings import augmented
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
             val_x=None):
    """The Plan of training `config` on splits of these lengths (n_test 0: no test split).
    fastpath: the path chosen on the data (plan_for), which may copy the validation inputs
    val_x too; without it the plain path is planned, from the shapes alone."""
    sizes = (int(n_features), *map(int, config.layers), int(n_classes))
    dtype = np.dtype(config.dtype)
    itemsize = dtype.itemsize
    batch, in_place = batching(config, n_train)
    if fastpath is None:  # a stand-in for the inputs with their shape and no memory
        stand_in = np.broadcast_to(np.zeros((), dtype), (n_train, n_features))
        fastpath = PlainPath(stand_in, None, in_place)
    params = flat_length(sizes, dtype) * itemsize
    eval_rows = min(EVAL_ROWS, max(n_val, n_test))
    sample = n_features * itemsize + np.dtype(np.int32).itemsize  # a row of x and its label
    columns = fastpath.n_kept or None
    memory = {
        "parameters": params,
        "gradients": params,
        "optimizer state": len(OPTIMIZERS[config.optimizer].state_names) * params,
        # The trainer's buffers, and its shuffling order (int64 per training sample).
        "training workspace": buffer_bytes(buffer_shapes(
            sizes, dtype, batch, gather=not in_place, columns=columns)) + 8 * n_train,
        "data": (n_train + n_val + n_test) * sample,
        **fastpath.copies(val_x),
        "evaluation workspace": buffer_bytes(buffer_shapes(sizes, dtype, eval_rows,
                                                           backward=False, gather=False)),
        "best weights": params if config.patience else 0,  # early stopping's copy
        "averaged weights": params if config.ema else 0,
    }
    test_every_epoch = n_test and config.eval_every == 1
    return Plan(sizes, dtype.name, batch, in_place, n_train,
                n_val + (n_test if test_every_epoch else 0), config.epochs, fastpath, memory,
                n_once=n_val + n_test, n_val=n_val)


def plan_for(config, dataset, plain=False):
    """The Plan of training `config` on a loaded data.load.Dataset; plain=True plans the plain
    path (the tests compare the fast paths with it)."""
    x, y = dataset.train.x, dataset.train.y
    rows, in_place = batching(config, len(y))
    fastpath = choose((x.shape[1], *config.layers, dataset.n_classes), x, y, rows=rows,
                      in_place=in_place, shift=config.augment_shift,
                      affine=affine_on(config.augment_rotate, config.augment_scale,
                                       config.augment_shear),
                      dropout=config.dropout, smoothing=config.label_smoothing, plain=plain)
    test = 0 if dataset.test is None else len(dataset.test.y)
    return plan_run(config, dataset.n_features, dataset.n_classes, len(y), len(dataset.val.y),
                    test, fastpath, dataset.val.x)


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
    available = available_bytes() if available is None else available
    limits = []
    if available is not None:
        limits.append((available, f"{size_text(available)} available"))
    if max_memory is not None:
        limits.append((max_memory, f"the limit given is {size_text(max_memory)}"))
    for limit, text in sorted(limits, key=lambda item: item[0])[:1]:
        if plan.total > limit:
            raise OutOfMemory(f"{need_text(plan)}; {text}")


@contextmanager
def allocating(plan):
    """A MemoryError the plan did not foresee (other processes took the memory meanwhile)
    becomes one OutOfMemory line too."""
    try:
        yield
    except MemoryError:
        raise OutOfMemory(f"{need_text(plan)}; allocating it failed") from None
