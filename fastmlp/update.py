"""Optimizers: one fused kernel call over the model's flat parameter and gradient buffers."""
from .errors import FastMLPError
from .kernels import sgd_update

OPTIMIZERS = ("sgd",)


class SGD:
    """Plain gradient descent, the source documents' optimizer: params -= lr * grads."""

    def __init__(self, lr):
        if not lr > 0:  # also refuses NaN
            raise FastMLPError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)

    def step(self, model):
        sgd_update(model.params, model.grads, self.lr)

    def __repr__(self):
        return f"SGD(lr={self.lr})"
