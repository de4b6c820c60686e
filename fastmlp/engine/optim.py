"""Optimizers: state in flat buffers beside the parameters, each update one fused kernel call.

The formulas are PyTorch's (torch.optim.SGD with momentum and nesterov, Adam, AdamW), so runs
can be compared with it step for step. The learning rate is passed to every step, because a
schedule (schedule.py) changes it as training goes.

Importing this module does not import numba or the kernels: OPTIMIZERS names the optimizers
for settings.py and the command line's checks, and an optimizer binds its kernel when made.
Settings reach the optimizers checked (fastmlp/settings.py is where every setting is checked).
"""
import numpy as np


class Optimizer:
    """The common part: per-optimizer state arrays (flat, the parameters' length) and a step
    count, both saved in checkpoints so that a resumed run continues bit for bit.

    `kernel_name` names the kernels.py function of the update (and its jit.ready group);
    `self.kernel` is that function, made ready and bound when the optimizer is made (profile.py
    times the update by swapping it). The update also writes the model's bfloat16 copy of the
    parameters, `self.params16` (mixed precision; an empty array otherwise).
    """
    state_names = ()
    kernel_name = None

    def __init__(self, model, weight_decay=0.0):
        from ..runtime.jit import ready
        from . import kernels  # here, not at module import: see the module docstring
        from .bfloat16 import NONE_1D
        ready(model.dtype, self.kernel_name)
        self.kernel = getattr(kernels, self.kernel_name)
        self.params16 = NONE_1D if model.params16 is None else model.params16
        self.weight_decay = float(weight_decay)
        self.steps = 0
        self.state = {name: np.zeros_like(model.params) for name in self.state_names}

    @classmethod
    def from_config(cls, config, model):
        """The optimizer for `model` with the settings of a TrainConfig that it uses."""
        return cls(model, weight_decay=config.weight_decay)

    def step(self, model, lr):
        self.steps += 1
        self._update(model, lr)

    def _update(self, model, lr):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(weight_decay={self.weight_decay})"


class SGD(Optimizer):
    """Plain gradient descent, the source documents' optimizer."""
    kernel_name = "sgd_update"

    def _update(self, model, lr):
        self.kernel(model.params, self.params16, model.grads, lr, self.weight_decay)


class Momentum(Optimizer):
    state_names = ("velocity",)
    kernel_name = "momentum_update"

    def __init__(self, model, momentum=0.9, nesterov=False, weight_decay=0.0):
        super().__init__(model, weight_decay)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    @classmethod
    def from_config(cls, config, model):
        return cls(model, config.momentum, config.nesterov, config.weight_decay)

    def _update(self, model, lr):
        self.kernel(model.params, self.params16, model.grads, self.state["velocity"], lr,
                    self.momentum, self.weight_decay, self.nesterov)


class Adam(Optimizer):
    """Adam, with the weight decay added to the gradient (an L2 penalty)."""
    state_names = ("m", "v")
    kernel_name = "adam_update"
    decoupled = False

    def __init__(self, model, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(model, weight_decay)
        self.beta1, self.beta2 = map(float, betas)
        self.eps = float(eps)

    @classmethod
    def from_config(cls, config, model):
        return cls(model, (config.beta1, config.beta2), config.eps, config.weight_decay)

    def _update(self, model, lr):
        self.kernel(model.params, self.params16, model.grads, self.state["m"], self.state["v"],
                    lr, self.beta1, self.beta2, self.eps, self.weight_decay, self.decoupled,
                    self.steps)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (applied to the weights, not the gradient)."""
    decoupled = True


# The optimizers by the name a TrainConfig gives them.
OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adamw": AdamW}


def make_optimizer(config, model):
    """The optimizer a TrainConfig names, for `model`."""
    return OPTIMIZERS[config.optimizer].from_config(config, model)
