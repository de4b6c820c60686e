"""Forward pass: the matmuls into the workspace (engine/gemm.py sends each to its BLAS), then
the fused bias(+ReLU) kernels."""
from .bfloat16 import NONE_2D
from .draws import step_key
from .gemm import OPENBLAS
from .kernels import bias_add, bias_relu


def matmul(gemm, a, b, out):
    """One matmul of the pass, out = a @ b on `gemm` (a name bench/profile.py can wrap)."""
    return gemm(a, b, out)


def forward(model, ws, x, keep=1.0, seed=0, step=0, first=None, gemm=OPENBLAS):
    """Run x (B, n_in) through the model into ws.acts and return the logits (B, n_out).

    keep < 1 applies inverted dropout to the hidden layers, with masks drawn from (seed, step,
    layer): the same step of the same run always drops the same units. `first` computes the
    first layer's matmul in place of BLAS on all of x: first.matmul(model, x, z) (prune.py).
    A mixed-precision model takes x in bfloat16 and multiplies the bfloat16 copies of its
    weights and activations (ws.acts16, written by bias_relu).

    Hidden layers keep their ReLU output in ws.acts[l] in place of the pre-activation: the
    backward pass needs only whether a unit was active, and a > 0 says exactly that.
    """
    last = model.n_layers - 1
    weights = model.weights16 if model.mixed else model.weights
    a = x
    for k, (w, b, z) in enumerate(zip(weights, model.biases, ws.acts)):
        if k == 0 and first is not None:
            first.matmul(model, x, z)
        else:
            matmul(gemm, a, w, z)
        if k < last:
            z16 = ws.acts16[k] if model.mixed else NONE_2D
            bias_relu(z, z16, b, keep, step_key(seed, step, k) if keep < 1 else 0)
            a = z16 if model.mixed else z
        else:
            bias_add(z, b)
    return z
