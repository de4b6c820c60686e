"""Forward pass: BLAS matmuls into the workspace, then the fused bias(+ReLU) kernels."""
from numpy import matmul

from .draws import step_key
from .kernels import bias_add, bias_relu


def forward(model, ws, x, keep=1.0, seed=0, step=0, first=None):
    """Run x (B, n_in) through the model into ws.acts and return the logits (B, n_out).

    keep < 1 applies inverted dropout to the hidden layers, with masks drawn from (seed, step,
    layer): the same step of the same run always drops the same units. `first` computes the
    first layer's matmul in place of BLAS on all of x: first.matmul(model, x, z) (prune.py).

    Hidden layers keep their ReLU output in ws.acts[l] in place of the pre-activation: the
    backward pass needs only whether a unit was active, and a > 0 says exactly that.
    """
    last = model.n_layers - 1
    a = x
    for k, (w, b, z) in enumerate(zip(model.weights, model.biases, ws.acts)):
        if k == 0 and first is not None:
            first.matmul(model, x, z)
        else:
            matmul(a, w, out=z)
        if k < last:
            bias_relu(z, b, keep, step_key(seed, step, k) if keep < 1 else 0)
        else:
            bias_add(z, b)
        a = z
    return a
