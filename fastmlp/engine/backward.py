"""Backward pass: the fused softmax/cross-entropy gradient, then per layer two matmuls
(engine/gemm.py) and the fused ReLU-backward/bias-gradient kernel. Gradients land in
model.grads."""
from .bfloat16 import NONE_2D
from .gemm import OPENBLAS
from .kernels import relu_backward, softmax_xent_backward


def matmul(gemm, a, b, out):
    """One matmul of the pass, out = a @ b on `gemm` (a name bench/profile.py can wrap)."""
    return gemm(a, b, out)


def backward(model, ws, x_t, y, scale=1.0, first=None, smoothing=0.0, gemm=OPENBLAS):
    """Gradients of the mean cross-entropy of the last forward(model, ws, x) against labels y
    (B,), smoothed by `smoothing` (kernels.softmax_xent_backward); returns (that loss, how many
    rows the forward pass classified right). Every parameter gradient is overwritten, so no
    zeroing is needed.

    x_t (n_in, B) is the input transposed: the view x.T, or a contiguous copy, with which the
    first layer's weight-gradient matmul runs faster (docs/performance.md, "The transposed
    copy"); in bfloat16 for a mixed-precision model, whose matmuls take the bfloat16 copies of
    the deltas (ws.deltas16, written by the kernels beside the deltas), activations and weights.
    scale is 1/keep under dropout: a kept unit's output was scaled by it, so is its gradient
    (a dropped unit's output is 0, which already stops its gradient). `first` computes the
    first layer's weight gradient in place of BLAS on all of x_t: first.weight_grad(model, x_t,
    dz) writes model.dweights[0] (prune.py).
    """
    mixed = model.mixed
    deltas = ws.deltas16 if mixed else ws.deltas  # the matmuls' operands
    acts = ws.acts16 if mixed else ws.acts
    weights = model.weights16 if mixed else model.weights
    loss, correct = softmax_xent_backward(ws.deltas[-1], deltas[-1] if mixed else NONE_2D,
                                          model.dbiases[-1], ws.partial, ws.loss_partial,
                                          ws.count_partial, ws.logits, y, smoothing)
    for k in range(model.n_layers - 1, -1, -1):
        if k == 0 and first is not None:
            first.weight_grad(model, x_t, ws.deltas[0])
        else:
            matmul(gemm, x_t if k == 0 else acts[k - 1].T, deltas[k], model.dweights[k])
        if k > 0:  # the input layer needs no gradient with respect to the pixels
            matmul(gemm, deltas[k], weights[k].T, ws.deltas[k - 1])
            relu_backward(ws.deltas[k - 1], deltas[k - 1] if mixed else NONE_2D,
                          model.dbiases[k - 1], ws.partial, ws.acts[k - 1], scale)
    return loss, correct
