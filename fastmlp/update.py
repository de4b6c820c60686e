"""Optimizers: state in flat buffers beside the parameters, each update one fused kernel call.

The formulas are PyTorch's (torch.optim.SGD with momentum and nesterov, Adam, AdamW), so runs
can be compared with it step for step. The learning rate is passed to every step, because a
schedule (schedule.py) changes it as training goes.
"""
import numpy as np

from .errors import FastMLPError
from .kernels import adam_update, momentum_update, sgd_update


class Optimizer:
    """The common part: per-optimizer state arrays (flat, the parameters' length) and a step
    count, both saved in checkpoints so that a resumed run continues bit for bit."""
    state_names = ()

    def __init__(self, model, weight_decay=0.0):
        if not weight_decay >= 0:
            raise FastMLPError(f"weight decay must be >= 0, got {weight_decay}")
        self.weight_decay = float(weight_decay)
        self.steps = 0
        self.state = {name: np.zeros_like(model.params) for name in self.state_names}

    def step(self, model, lr):
        self.steps += 1
        self._update(model, lr)

    def _update(self, model, lr):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(weight_decay={self.weight_decay})"


class SGD(Optimizer):
    """Plain gradient descent, the source documents' optimizer."""

    def _update(self, model, lr):
        sgd_update(model.params, model.grads, lr, self.weight_decay)


class Momentum(Optimizer):
    state_names = ("velocity",)

    def __init__(self, model, momentum=0.9, nesterov=False, weight_decay=0.0):
        super().__init__(model, weight_decay)
        if not 0 <= momentum < 1:
            raise FastMLPError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, model, lr):
        momentum_update(model.params, model.grads, self.state["velocity"], lr, self.momentum,
                        self.weight_decay, self.nesterov)


class Adam(Optimizer):
    """Adam; with decoupled=True, AdamW (weight decay applied to the weights, not the
    gradient)."""
    state_names = ("m", "v")

    def __init__(self, model, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(model, weight_decay)
        if not all(0 <= b < 1 for b in betas):
            raise FastMLPError(f"Adam betas must be in [0, 1), got {tuple(betas)}")
        self.beta1, self.beta2 = map(float, betas)
        self.eps, self.decoupled = float(eps), bool(decoupled)

    def _update(self, model, lr):
        adam_update(model.params, model.grads, self.state["m"], self.state["v"], lr, self.beta1,
                    self.beta2, self.eps, self.weight_decay, self.decoupled, self.steps)


def make_optimizer(config, model):
    """The optimizer a TrainConfig names, for `model`."""
    name = config.optimizer
    if name == "sgd":
        return SGD(model, config.weight_decay)
    if name == "momentum":
        return Momentum(model, config.momentum, config.nesterov, config.weight_decay)
    if name in ("adam", "adamw"):
        return Adam(model, (config.beta1, config.beta2), config.eps, config.weight_decay,
                    decoupled=name == "adamw")
    raise FastMLPError(f"unknown optimizer {name!r}")
