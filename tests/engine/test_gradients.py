"""The analytic gradients of forward+backward against central finite differences of an
independent numpy loss (tests/naive.py), for every parameter of small float64 nets."""
import numpy as np
import pytest

from fastmlp.engine.backward import backward
from fastmlp.engine.forward import forward
from fastmlp.engine.model import MLP
from fastmlp.engine.workspace import Workspace
from tests import naive

EPS = 1e-6


@pytest.mark.parametrize("sizes", [[6, 4], [6, 5, 4], [8, 7, 5, 4], [9, 8, 7, 6, 5, 4]])
@pytest.mark.parametrize("init", ["he", "uniform", "glorot"])
def test_gradients_match_finite_differences(sizes, init):
    check_finite_differences(sizes, init)


@pytest.mark.parametrize("smoothing", [0.1, 0.5])
def test_label_smoothed_gradients_match_finite_differences(smoothing):
    check_finite_differences([8, 7, 5, 4], "he", smoothing)


def check_finite_differences(sizes, init, smoothing=0.0):
    rng = np.random.default_rng(sum(sizes))
    model = MLP(sizes, np.float64).initialize(init, rng)
    for b in model.biases:  # nonzero biases, so their gradients are exercised off zero too
        b += rng.normal(0, 0.1, b.shape)
    rows = 11
    x = rng.random((rows, sizes[0]))
    y = rng.integers(0, sizes[-1], rows).astype(np.int32)

    ws = Workspace(model, rows)
    forward(model, ws, x)
    loss, _ = backward(model, ws, x.T, y, smoothing=smoothing)
    assert loss == pytest.approx(naive.loss_of(model.weights, model.biases, x, y, smoothing),
                                 rel=1e-12)

    tensors = [(p, g) for pair in zip(zip(model.weights, model.dweights),
                                      zip(model.biases, model.dbiases)) for p, g in pair]
    for p, g in tensors:
        numeric = np.empty_like(p)
        flat_p, flat_n = p.reshape(-1), numeric.reshape(-1)
        for i in range(flat_p.size):
            saved = flat_p[i]
            flat_p[i] = saved + EPS
            up = naive.loss_of(model.weights, model.biases, x, y, smoothing)
            flat_p[i] = saved - EPS
            down = naive.loss_of(model.weights, model.biases, x, y, smoothing)
            flat_p[i] = saved
            flat_n[i] = (up - down) / (2 * EPS)
        rel = np.linalg.norm(g - numeric) / max(np.linalg.norm(g) + np.linalg.norm(numeric), 1e-12)
        assert rel < 1e-6, f"{p.shape}: relative error {rel:.2e}"


def test_forward_matches_numpy():
    rng = np.random.default_rng(0)
    model = MLP([30, 16, 8, 10], np.float64).initialize("uniform", rng)
    x = rng.random((50, 30))
    ws = Workspace(model, 50)
    logits = forward(model, ws, x)
    a = x
    for k, (w, b) in enumerate(zip(model.weights, model.biases)):
        a = a @ w + b
        a = np.maximum(a, 0) if k < 2 else a
    np.testing.assert_allclose(logits, a, rtol=1e-13)


def test_one_sgd_step_by_hand():
    """One step of a 2-2-2 net worked out on paper: lr 0.5, one sample."""
    from fastmlp.engine.optim import SGD
    model = MLP([2, 2, 2], np.float64)
    model.weights[0][...] = [[1.0, -1.0], [0.5, 2.0]]
    model.weights[1][...] = [[1.0, 0.0], [0.0, 1.0]]
    x = np.array([[1.0, 1.0]])
    y = np.array([0], np.int32)
    ws = Workspace(model, 1)
    forward(model, ws, x)  # hidden = relu([1.5, 1.0]) = [1.5, 1.0]; logits = [1.5, 1.0]
    backward(model, ws, x.T, y)
    p0 = 1 / (1 + np.exp(-0.5))  # softmax of [1.5, 1.0]
    dlogits = np.array([p0 - 1, 1 - p0])
    np.testing.assert_allclose(model.dbiases[1], dlogits)
    np.testing.assert_allclose(model.dweights[1], np.outer([1.5, 1.0], dlogits))
    dhidden = dlogits  # W2 is the identity and both hidden units are active
    np.testing.assert_allclose(model.dweights[0], np.outer([1.0, 1.0], dhidden))
    before = model.params.copy()
    SGD(model).step(model, 0.5)
    np.testing.assert_allclose(model.params, before - 0.5 * model.grads)
    np.testing.assert_allclose(model.weights[1], np.eye(2) - 0.5 * np.outer([1.5, 1.0], dlogits))
