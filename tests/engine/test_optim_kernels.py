"""The optimizer kernels over a flat parameter buffer: several steps against their numpy twins
in tests/naive.py, and against torch.optim when PyTorch is installed; the optimizers of
update.py step as their kernels."""
import subprocess
import sys

import numpy as np
import pytest

from fastmlp.engine import kernels
from fastmlp.engine.bfloat16 import NONE_1D
from tests import naive

# Kernels are called directly here, without the Workspace that makes them ready in a run.
pytestmark = pytest.mark.usefixtures("kernels_ready")

SIZES = [1, 7, 1001, 4099]
DTYPES = [np.float32, np.float64]
STEPS = 5
# Against the float64 twin. float32 Adam divides by sqrt(v), so it gets a little more room.
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def problem(size, dtype, seed=0):
    """Initial parameters and one gradient per step."""
    rng = np.random.default_rng(seed)
    params = rng.normal(size=size).astype(dtype)
    grads = [rng.normal(size=size).astype(dtype) for _ in range(STEPS)]
    return params, grads


def as64(*arrays):
    return [a.astype(np.float64) for a in arrays]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_sgd_update(dtype, size, weight_decay):
    params, grads = problem(size, dtype)
    (expected,) = as64(params)
    for g in grads:
        kernels.sgd_update(params, NONE_1D, g, 0.1, weight_decay)
        expected = naive.sgd_update(expected, g.astype(np.float64), dtype(0.1),
                                    dtype(weight_decay))
        np.testing.assert_allclose(params, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_update(dtype, size, weight_decay, nesterov):
    params, grads = problem(size, dtype)
    velocity = np.zeros_like(params)
    expected, expected_v = as64(params, velocity)
    lr, momentum = dtype(0.1), dtype(0.9)
    for g in grads:
        kernels.momentum_update(params, NONE_1D, g, velocity, lr, momentum, weight_decay, nesterov)
        expected, expected_v = naive.momentum_update(expected, g.astype(np.float64), expected_v,
                                                     lr, momentum, dtype(weight_decay), nesterov)
        np.testing.assert_allclose(velocity, expected_v, **TOL[dtype])
        np.testing.assert_allclose(params, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("beta1", [0.9, 0.3])  # torch's lerp takes its other form at >= 0.5
def test_adam_update(dtype, size, weight_decay, decoupled, beta1):
    params, grads = problem(size, dtype)
    m, v = np.zeros_like(params), np.zeros_like(params)
    expected, expected_m, expected_v = as64(params, m, v)
    hyper = [dtype(h) for h in (0.01, beta1, 0.999, 1e-8, weight_decay)]
    for step, g in enumerate(grads, start=1):
        kernels.adam_update(params, NONE_1D, g, m, v, *hyper, decoupled, step)
        expected, expected_m, expected_v = naive.adam_update(
            expected, g.astype(np.float64), expected_m, expected_v, *hyper, decoupled, step)
        np.testing.assert_allclose(m, expected_m, **TOL[dtype])
        np.testing.assert_allclose(v, expected_v, **TOL[dtype])
        np.testing.assert_allclose(params, expected, **TOL[dtype])


def test_adam_first_step_moves_each_parameter_by_about_lr():
    """Bias correction: after one step m_hat = g and sqrt(v_hat) = |g|, so every parameter moves
    by lr * g / (|g| + eps): by ~lr against its gradient's sign."""
    params, grads = problem(1001, np.float64)
    before = params.copy()
    kernels.adam_update(params, NONE_1D, grads[0], np.zeros(1001), np.zeros(1001), 0.01, 0.9, 0.999,
                        1e-8, 0.0, False, 1)
    g = grads[0]
    np.testing.assert_allclose(before - params, 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)


# Against PyTorch: the same formulas in the same order, so float64 agrees to rounding.

TORCH_TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}

TORCH_CASES = {
    "sgd": (dict(lr=0.1), None),
    "sgd-wd": (dict(lr=0.1, weight_decay=0.05), None),
    "momentum": (dict(lr=0.1, momentum=0.9), None),
    "momentum-wd": (dict(lr=0.1, momentum=0.9, weight_decay=0.05), None),
    "nesterov-wd": (dict(lr=0.1, momentum=0.9, weight_decay=0.05, nesterov=True), None),
    "adam": (dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8), False),
    "adam-wd": (dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05), False),
    "adam-beta1-small": (dict(lr=0.01, betas=(0.3, 0.99), eps=1e-6, weight_decay=0.05), False),
    "adamw-wd": (dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05), True),
    "adamw-beta1-small": (dict(lr=0.01, betas=(0.3, 0.99), eps=1e-6, weight_decay=0.1), True),
}


def kernel_optimizer(name, params, options, decoupled):
    """A closure doing one step of our kernel with torch's hyper-parameters."""
    zeros = np.zeros_like(params)
    lr, wd = options["lr"], options.get("weight_decay", 0.0)
    if name.startswith("sgd"):
        return lambda g, step: kernels.sgd_update(params, NONE_1D, g, lr, wd)
    if name.startswith(("momentum", "nesterov")):
        velocity = zeros
        return lambda g, step: kernels.momentum_update(
            params, NONE_1D, g, velocity, lr, options["momentum"], wd,
            options.get("nesterov", False))
    m, v = zeros, zeros.copy()
    (beta1, beta2), eps = options["betas"], options["eps"]
    return lambda g, step: kernels.adam_update(params, NONE_1D, g, m, v, lr, beta1, beta2, eps, wd,
                                               decoupled, step)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", TORCH_CASES)
def test_against_torch(dtype, name):
    torch = pytest.importorskip("torch")
    options, decoupled = TORCH_CASES[name]
    params, grads = problem(4099, dtype, seed=1)
    tparam = torch.nn.Parameter(torch.from_numpy(params.copy()))
    if name.startswith(("sgd", "momentum", "nesterov")):
        topt = torch.optim.SGD([tparam], foreach=False, **options)
    else:
        cls = torch.optim.AdamW if decoupled else torch.optim.Adam
        topt = cls([tparam], foreach=False, fused=False, **options)
    ours = kernel_optimizer(name, params, options, decoupled)
    for step, g in enumerate(grads, start=1):
        tparam.grad = torch.from_numpy(g.copy())
        topt.step()
        ours(g, step)
        np.testing.assert_allclose(params, tparam.detach().numpy(), **TORCH_TOL[dtype],
                                   err_msg=f"{name}, step {step}")


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw"])
def test_each_optimizer_takes_its_settings_and_steps_as_its_kernel(name):
    """make_optimizer finds the class in update.OPTIMIZERS, which takes its own settings from
    the TrainConfig and steps exactly as its kernel called directly."""
    from fastmlp import TrainConfig
    from fastmlp.engine.model import MLP
    from fastmlp.engine.optim import OPTIMIZERS, make_optimizer
    config = TrainConfig(optimizer=name, lr=0.05, momentum=0.8, nesterov=name == "momentum",
                         beta1=0.5, beta2=0.9, eps=1e-6, weight_decay=0.01)
    model = MLP([7, 5, 3], np.float64).initialize("he", np.random.default_rng(0))
    optimizer = make_optimizer(config, model)
    assert type(optimizer) is OPTIMIZERS[name]
    options = dict(lr=config.lr, weight_decay=config.weight_decay)
    if name == "momentum":
        options.update(momentum=config.momentum, nesterov=config.nesterov)
    elif name.startswith("adam"):
        options.update(betas=(config.beta1, config.beta2), eps=config.eps)
    expected = model.params.copy()
    direct = kernel_optimizer(name, expected, options, decoupled=name == "adamw")
    rng = np.random.default_rng(1)
    for step in range(1, STEPS + 1):
        model.grads[...] = rng.normal(size=model.grads.shape)
        optimizer.step(model, config.lr)
        direct(model.grads, step)
        np.testing.assert_array_equal(model.params, expected, err_msg=f"step {step}")
    assert optimizer.steps == STEPS


def test_naming_the_optimizers_loads_no_kernels():
    """settings.py and the command line's checks import update.OPTIMIZERS before numba loads;
    an optimizer binds its kernel only when made."""
    code = ("import sys, fastmlp.engine.optim\n"
            "assert 'numba' not in sys.modules and 'fastmlp.engine.kernels' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
