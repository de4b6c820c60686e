"""Learning-rate schedules: the rate for each optimizer step, with optional linear warm-up."""
import math

from .errors import FastMLPError

SCHEDULES = ("constant", "step", "cosine")


class Schedule:
    """lr(step) for step = 0, 1, ... (updates already made).

    constant: base_lr. step: base_lr * gamma ** (epoch // step_epochs). cosine: from base_lr
    down to 0 along half a cosine over the steps after warm-up. Warm-up: the first
    warmup_epochs epochs ramp linearly from base_lr / warmup_steps up to base_lr.
    """

    def __init__(self, name, base_lr, epochs, steps_per_epoch, warmup_epochs=0.0,
                 step_epochs=0, gamma=0.1):
        if name not in SCHEDULES:
            raise FastMLPError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0 <= warmup_epochs < epochs:
            raise FastMLPError(f"warm-up must be >= 0 epochs and shorter than the run "
                               f"({epochs} epochs), got {warmup_epochs}")
        self.name, self.base_lr, self.gamma = name, base_lr, gamma
        self.steps_per_epoch = steps_per_epoch
        self.total = epochs * steps_per_epoch
        self.warmup = round(warmup_epochs * steps_per_epoch)
        self.step_epochs = step_epochs or max(1, epochs // 3)

    def lr(self, step):
        if step < self.warmup:
            return self.base_lr * (step + 1) / self.warmup
        if self.name == "step":
            return self.base_lr * self.gamma ** (step // self.steps_per_epoch // self.step_epochs)
        if self.name == "cosine":
            progress = (step - self.warmup) / max(1, self.total - self.warmup)
            return self.base_lr * 0.5 * (1 + math.cos(math.pi * progress))
        return self.base_lr

    def __repr__(self):
        return f"Schedule({self.name}, base_lr={self.base_lr}, warmup_steps={self.warmup})"
