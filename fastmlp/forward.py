"""Forward pass: BLAS matmuls into the workspace, then the fused bias(+ReLU) kernels."""
from numpy import matmul

from .kernels import bias_add, bias_relu


def forward(model, ws, x):
    """Run x (B, n_in) through the model into ws.acts and return the logits (B, n_out).

    Hidden layers keep their ReLU output in ws.acts[l] in place of the pre-activation: the
    backward pass needs only whether a unit was active, and a > 0 says exactly that.
    """
    last = model.n_layers - 1
    a = x
    for l, (w, b, z) in enumerate(zip(model.weights, model.biases, ws.acts)):
        matmul(a, w, out=z)
        if l < last:
            bias_relu(z, b)
        else:
            bias_add(z, b)
        a = z
    return a
