"""When the plan's GEMM choice is a mix of libraries (engine.gemm.choose), the run's own steps
decide whether the mix pays: a few steps are timed with each candidate (the mix, each library
alone), in turns, and the trainer keeps the fastest (OpenBLAS unless another is the margin
faster). Products timed alone cannot show what switching libraries costs inside a step (the
other library's threads wake). The decision is kept in the store, so it is made once per
machine and run shape; the trainer's state is put back as it was, so the run trains exactly
as it would have with that library from the start.
"""
import numpy as np

from ..engine.gemm import faster
from ..runtime.store import Choices
from ..runtime.threads import kernel_threads, thread_limits
from ..runtime.timing import best_seconds

ROUNDS = 3
STEPS_SECONDS = 0.05  # the steps timed per round: about this long with the plan's mix
MAX_STEP_SECONDS = 0.5  # longer steps (large full batches) keep the mix untimed: their large
# matmuls dominate, and the switches between them cost little beside them


def decide(trainer, plan, store=None):
    """Set the trainer's Gemm to the fastest of plan.gemm_candidates over a few of its own
    steps, and keep the decision under plan.gemm_key; nothing when there is nothing to
    decide."""
    if not plan.gemm_candidates:
        return
    store = store or Choices()
    step = _step_seconds(plan)
    if step > MAX_STEP_SECONDS:
        store.put({plan.gemm_key: "mix"})
        return
    steps = max(1, min(len(trainer.minibatches), round(STEPS_SECONDS / max(step, 1e-6))))
    names = list(plan.gemm_candidates)
    saved = _snapshot(trainer)
    try:
        with store.locked(), thread_limits(plan.gemm_threads):
            decided = store.get(plan.gemm_key)
            if decided not in plan.gemm_candidates:
                seconds = best_seconds([lambda n=n: _run(trainer, plan.gemm_candidates[n], steps)
                                        for n in names], ROUNDS)
                decided = faster(dict(zip(names, seconds)))
                store.put({plan.gemm_key: decided})
    finally:
        _restore(trainer, saved)
    trainer.use_gemm(plan.gemm_candidates[decided])


def _step_seconds(plan):
    """A training step's matmuls with the plan's mix, from the products' own timings."""
    training = plan.fastpath.products(plan.sizes, plan.batch_size, True)
    return sum(plan.gemm_times.get(p, {}).get(plan.gemm.backend_for(p), 0.0) for p in training)


def _run(trainer, gemm, steps):
    """`steps` training steps of `trainer` with `gemm` (the first minibatch's, again)."""
    trainer.use_gemm(gemm)
    with kernel_threads(trainer.batch_size):
        for _ in range(steps):
            if trainer.in_place:
                trainer.fastpath.full_batch_step(trainer)
                continue
            ws, index = trainer.minibatches[0]
            trainer.gather(ws, index, 0)
            x = ws.x16 if trainer.model.mixed else ws.x
            trainer.step(ws, x, x.T, ws.y)


def _snapshot(trainer):
    """What a step changes: the parameters (and their average), the optimizer's state and
    step count."""
    return (trainer.model.params.copy(),
            None if trainer.averaged is None else trainer.averaged.params.copy(),
            {name: a.copy() for name, a in trainer.optimizer.state.items()},
            trainer.optimizer.steps)


def _restore(trainer, saved):
    params, averaged, state, steps = saved
    trainer.model.load(params)
    if averaged is not None:
        trainer.averaged.load(averaged)
    for name, values in state.items():
        np.copyto(trainer.optimizer.state[name], values)
    trainer.optimizer.steps = steps
