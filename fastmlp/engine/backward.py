"""Backward pass: the fused softmax/cross-entropy gradient, then per layer two BLAS matmuls and
the fused ReLU-backward/bias-gradient kernel. Gradients land in model.grads."""
from numpy import matmul

from .kernels import relu_backward, softmax_xent_backward


def backward(model, ws, x_t, y, scale=1.0, first=None, smoothing=0.0):
    """Gradients of the mean cross-entropy of the last forward(model, ws, x) against labels y
    (B,), smoothed by `smoothing` (kernels.softmax_xent_backward); returns (that loss, how many
    rows the forward pass classified right). Every parameter gradient is overwritten, so no
    zeroing is needed.

    x_t (n_in, B) is the input transposed: the view x.T, or a contiguous copy, with which the
    first layer's weight-gradient matmul runs faster (docs/performance.md, "The transposed
    copy").
    scale is 1/keep under dropout: a kept unit's output was scaled by it, so is its gradient
    (a dropped unit's output is 0, which already stops its gradient). `first` computes the
    first layer's weight gradient in place of BLAS on all of x_t: first.weight_grad(model, x_t,
    dz) writes model.dweights[0] (prune.py).
    """
    loss, correct = softmax_xent_backward(ws.deltas[-1], model.dbiases[-1], ws.partial,
                                          ws.loss_partial, ws.count_partial, ws.logits, y,
                                          smoothing)
    for k in range(model.n_layers - 1, -1, -1):
        if k == 0 and first is not None:
            first.weight_grad(model, x_t, ws.deltas[0])
        else:
            matmul(x_t if k == 0 else ws.acts[k - 1].T, ws.deltas[k], out=model.dweights[k])
        if k > 0:  # the input layer needs no gradient with respect to the pixels
            matmul(ws.deltas[k], model.weights[k].T, out=ws.deltas[k - 1])
            relu_backward(ws.deltas[k - 1], model.dbiases[k - 1], ws.partial, ws.acts[k - 1],
                          scale)
    return loss, correct
