"""Learning-rate schedules: the rate for each optimizer step, with optional linear warm-up."""
import math


def _constant(schedule, step):
    """base_lr."""
    return schedule.base_lr


def _step(schedule, step):
    """base_lr * gamma ** (epoch // step_epochs)."""
    return schedule.base_lr * schedule.gamma ** (
        step // schedule.steps_per_epoch // schedule.step_epochs)


def _cosine(schedule, step):
    """From base_lr down to 0 along half a cosine over the steps after warm-up."""
    progress = (step - schedule.warmup) / max(1, schedule.total - schedule.warmup)
    return schedule.base_lr * 0.5 * (1 + math.cos(math.pi * progress))


# name -> lr(schedule, step): the rate of a step after warm-up.
SCHEDULES = {"constant": _constant, "step": _step, "cosine": _cosine}


class Schedule:
    """lr(step) for step = 0, 1, ... (updates already made).

    After warm-up, the rate is the named entry of SCHEDULES. Warm-up: the first warmup_epochs
    epochs ramp linearly from base_lr / warmup_steps up to base_lr.
    """

    def __init__(self, name, base_lr, epochs, steps_per_epoch, warmup_epochs=0.0,
                 step_epochs=0, gamma=0.1):
        # name, warm-up and the rest come checked from a TrainConfig (settings.py).
        self.name, self.base_lr, self.gamma = name, base_lr, gamma
        self._rate = SCHEDULES[name]
        self.steps_per_epoch = steps_per_epoch
        self.total = epochs * steps_per_epoch
        self.warmup = round(warmup_epochs * steps_per_epoch)
        self.step_epochs = step_epochs or max(1, epochs // 3)

    def lr(self, step):
        if step < self.warmup:
            return self.base_lr * (step + 1) / self.warmup
        return self._rate(self, step)

    def __repr__(self):
        return f"Schedule({self.name}, base_lr={self.base_lr}, warmup_steps={self.warmup})"
