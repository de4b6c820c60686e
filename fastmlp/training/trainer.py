"""The Trainer: a model stepped through the epochs of one training split, on the fast path its
plan chose: forward -> backward -> update per step, and the moving average of the weights."""
import math

import numpy as np

from ..engine import kernels
from ..engine.augment import affine_on
from ..engine.backward import backward
from ..engine.bfloat16 import NONE_1D
from ..engine.elastic import elastic_on
from ..engine.forward import forward
from ..engine.model import MLP
from ..engine.optim import make_optimizer
from ..engine.schedule import Schedule
from ..engine.workspace import Workspace
from ..fastpath.plain import evaluator as plain_evaluator
from ..runtime.jit import ready
from ..runtime.threads import kernel_threads
from .batches import Gather
from .calibrate import decide
from .plan import allocating, check_fits, plan_for


class Trainer:
    """Steps a model through epochs of one training split, as `plan` (plan.Plan) says.

    Read in place (full batch without augmentation), an epoch is one step on the split itself
    by the plan's fast path. Otherwise the order is reshuffled every epoch and each minibatch is
    gathered into the workspace by a kernel (which also shifts or transforms the images when
    augmenting); the last partial batch is used too. Dropout masks and augmentations come from
    counter-based random numbers keyed by the seed and the step count, so a run resumed from a
    checkpoint draws exactly what the uninterrupted run would have.

    Label smoothing trains against (1 - it) * onehot + it / classes; evaluation is plain.
    ema > 0 keeps an exponential moving average of the weights in `self.averaged` (an MLP
    beside `model`), updated after every step; `evaluated` is the model evaluation uses.
    """

    def __init__(self, config, plan, model, optimizer, schedule, x, y, rng):
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.y, self.rng = y, rng
        self.batch_size, self.in_place = plan.batch_size, plan.in_place
        self.keep = 1.0 - config.dropout
        self.smoothing = float(config.label_smoothing)
        self.seed = config.seed
        self.ema = float(config.ema)
        affine = (config.augment_rotate, config.augment_scale, config.augment_shear)
        affine = tuple(map(float, affine)) if affine_on(*affine) else None
        elastic = ((float(config.augment_elastic), float(config.augment_elastic_sigma))
                   if elastic_on(config.augment_elastic) else None)
        side = math.isqrt(x.shape[1])
        self.averaged = None
        if self.ema:
            ready(model.dtype, "ema_update")
            self.averaged = MLP(model.sizes, model.dtype, mixed=model.mixed)
            self.averaged.load(model.params)
        self.gemm = plan.gemm
        # The workspace first: it makes the core kernels ready (the path's transpose is one).
        self.ws = Workspace(model, self.batch_size, gather=not self.in_place,
                            columns=plan.fastpath.n_kept or None)
        self.fastpath = plan.fastpath.build(model, plan.gemm)
        self.gather = Gather(x, y, side, config.augment_shift, affine, self.fastpath.kept,
                             self.seed, self.fastpath.x16, elastic)
        n = len(y)
        self.order = np.arange(n, dtype=np.int64)
        # Per minibatch, made once: (its workspace rows, its view of the shuffled order, which
        # shuffles in place).
        self.minibatches = [(self.ws.rows_view(min(s + self.batch_size, n) - s),
                             self.order[s:s + self.batch_size])
                            for s in range(0, n, self.batch_size)]
        # Set (by a signal handler) to stop at the end of the current step; an epoch cut short
        # keeps its place and running sums so that it can be finished, also after a resume.
        self.stop_requested = False
        self.stop_signal = None  # which signal asked (SIGINT or SIGTERM): the exit status says
        self.position, self.partial = 0, (0.0, 0)

    def step(self, ws, x, x_t, y):
        """One forward -> backward -> update; returns (loss, correct) of the pre-update model."""
        first = self.fastpath.first
        forward(self.model, ws, x, self.keep, self.seed, self.optimizer.steps, first, self.gemm)
        loss, correct = backward(self.model, ws, x_t, y, 1.0 / self.keep, first, self.smoothing,
                                 self.gemm)
        self.update()
        return loss, correct

    def update(self):
        """The optimizer's step, then the moving average's."""
        self.optimizer.step(self.model, self.schedule.lr(self.optimizer.steps))
        if self.averaged is not None:
            kernels.ema_update(self.averaged.params, self.averaged16, self.model.params,
                               self.ema, self.optimizer.steps)

    @property
    def averaged16(self):
        """The bfloat16 copy the moving average's kernel writes (empty: none)."""
        return NONE_1D if self.averaged.params16 is None else self.averaged.params16

    @property
    def evaluated(self):
        """The model evaluation, early stopping and saving use: the averaged weights if any."""
        return self.model if self.averaged is None else self.averaged

    def epoch(self):
        """Train one epoch (or the rest of one cut short); returns (mean loss, accuracy) over
        its samples, or None when stop_requested cut it short."""
        if self.in_place:
            with kernel_threads(self.batch_size):
                loss, correct = self.fastpath.full_batch_step(self)
            return loss, correct / len(self.y)
        if self.position == 0 and len(self.minibatches) > 1:
            self.rng.shuffle(self.order)
        loss_sum, correct = self.partial
        start, steps = self.position, self.optimizer.steps
        with kernel_threads(self.batch_size):
            for b in range(start, len(self.minibatches)):
                ws, index = self.minibatches[b]
                self.gather(ws, index, steps + b - start)
                x = ws.x16 if self.model.mixed else ws.x
                loss, hits = self.step(ws, x, x.T, ws.y)
                loss_sum += loss * ws.rows
                correct += hits
                if self.stop_requested and b + 1 < len(self.minibatches):
                    self.position, self.partial = b + 1, (loss_sum, correct)
                    return None
        self.position, self.partial = 0, (0.0, 0)
        return loss_sum / len(self.y), correct / len(self.y)

    def evaluator(self, x, y, ws, plain=False):
        """A function giving (accuracy, mean loss) of the evaluated model on the fixed data
        x, y, the path's way (ws: a forward-only Workspace); plain=True: the plain way, for
        data evaluated once (the test split), which no path copies."""
        if plain:
            return plain_evaluator(self.evaluated, x, y, ws, self.gemm)
        return self.fastpath.evaluator(self.evaluated, x, y, ws, self.gemm)

    def use_gemm(self, gemm):
        """Send the matmuls (the first layer's own too) to `gemm` from now on."""
        self.gemm = gemm
        if hasattr(self.fastpath.first, "gemm"):
            self.fastpath.first.gemm = gemm

    def load(self, params):
        """Start from the parameters `params` (a checkpoint's)."""
        self.model.load(params)

    def state(self):
        """What a checkpoint needs to continue this trainer bit for bit: (JSON-able, arrays)."""
        return ({"optimizer_steps": self.optimizer.steps,
                 "rng": self.rng.bit_generator.state,
                 "position": self.position, "partial": list(self.partial)},
                {"order": self.order, **{f"opt_{k}": v for k, v in self.optimizer.state.items()},
                 **({} if self.averaged is None else {"trained_params": self.model.params})})

    def restore(self, state, arrays):
        self.optimizer.steps = state["optimizer_steps"]
        self.rng.bit_generator.state = state["rng"]
        self.position, self.partial = state["position"], tuple(state["partial"])
        self.order[...] = arrays["order"]
        for name, buffer in self.optimizer.state.items():
            buffer[...] = arrays[f"opt_{name}"]
        if self.averaged is not None:  # the checkpoint's model is the average
            self.averaged.load(self.model.params)
            self.model.load(arrays["trained_params"])


def make_trainer(config, dataset, max_memory=None, plain=False, plan=None, options=None):
    """A freshly initialised model and its Trainer on dataset.train, as `config` says, taking
    the fast path and the matmuls' libraries of the run's plan (`plan`, when the caller has
    made it already; else planned for RunOptions `options`). Refused with OutOfMemory before
    allocating when the plan needs more than the memory available or `max_memory` bytes.
    plain=True: the plain path (the tests compare the paths with it)."""
    if plan is None or plain:
        plan = plan_for(config, dataset, plain=plain, options=options)
    check_fits(plan, max_memory)
    x, y = dataset.train.x, dataset.train.y
    with allocating(plan):
        init_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(2)
        model = MLP(plan.sizes, x.dtype, mixed=plan.operand == "bfloat16")
        model.initialize(config.init, np.random.default_rng(init_seed))
        schedule = Schedule(config.schedule, config.lr, config.epochs,
                            -(-len(y) // plan.batch_size), config.warmup, config.lr_step_epochs,
                            config.lr_gamma)
        trainer = Trainer(config, plan, model, make_optimizer(config, model), schedule, x, y,
                          np.random.default_rng(shuffle_seed))
    decide(trainer, plan)  # a mix of GEMM libraries: the run's own steps decide
    return trainer
