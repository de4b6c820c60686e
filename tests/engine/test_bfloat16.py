"""Mixed precision: bfloat16 rounding against its numpy twin (ties, subnormals, infinities,
NaN), the bfloat16 copies the kernels write beside their outputs, and a whole mixed step
against a float64 emulation of it (tests/naive.py)."""
import numpy as np
import pytest

from fastmlp.engine import bfloat16
from fastmlp.engine.backward import backward
from fastmlp.engine.forward import forward
from fastmlp.engine.model import MLP
from fastmlp.engine.optim import SGD
from fastmlp.engine.workspace import Workspace
from fastmlp.runtime.jit import ready
from tests import naive

ONE = np.float32(1.0)
ULP8 = np.float32(2.0 ** -8)  # half a bfloat16 ulp at 1: the tie


@pytest.fixture(scope="module", autouse=True)
def conversions_ready():
    ready(np.float32, bfloat16.GROUP)


def special_values():
    bits = np.array([0x7F800001, 0xFF800001, 0x7FC00000, 0x00000001, 0x807FFFFF, 0x7F7FFFFF,
                     0x7F7F7FFF, 0x3F808000, 0x3F818000, 0x3F808001], np.uint32)
    return np.concatenate([
        np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-40, -1e-45, 2.0 ** -126,
                  ONE + ULP8, ONE + 3 * ULP8, -(ONE + ULP8), ONE + ULP8 + 2.0 ** -20,
                  3.4e38, -3.4e38, 65504.0, 1e-30], np.float32),
        bits.view(np.float32)])


def test_rounding_matches_its_twin_on_special_and_random_values():
    rng = np.random.default_rng(0)
    x = np.concatenate([special_values(), rng.standard_normal(50_000).astype(np.float32),
                        (rng.random(10_000) * 1e-38).astype(np.float32),
                        rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32)
                        .view(np.float32)])
    np.testing.assert_array_equal(bfloat16.bfloat16_copy(x), naive.to_bfloat16(x))


def test_rounding_is_to_nearest_with_ties_to_even():
    got = naive.from_bfloat16(bfloat16.bfloat16_copy(np.array(
        [ONE + ULP8, ONE + 3 * ULP8, ONE + ULP8 + 2.0 ** -20, 3.4e38, np.inf, 1e-40],
        np.float32)))
    assert got[0] == 1.0  # a tie goes to the even neighbour, 1.0
    assert got[1] == 1.0 + 4 * ULP8  # a tie goes to the even neighbour, up
    assert got[2] == 1.0 + 2 * ULP8  # above the tie: up
    assert np.isinf(got[3]) and np.isinf(got[4])  # past the largest bfloat16: infinity
    assert 0 < got[5] < 1e-39  # a subnormal stays a subnormal


def test_nan_stays_nan_and_widening_is_exact():
    x = special_values()
    wide = bfloat16.widened(bfloat16.bfloat16_copy(x))
    assert np.array_equal(np.isnan(wide), np.isnan(x))
    finite = np.isfinite(wide)
    np.testing.assert_array_equal(wide[finite], naive.from_bfloat16(naive.to_bfloat16(x))[finite])


def _mixed_model(sizes, seed=0):
    model = MLP(sizes, np.float32, mixed=True)
    model.initialize("he", np.random.default_rng(seed))
    return model


def test_the_bfloat16_copies_track_what_the_kernels_write():
    """The update writes params16 beside params, bias_relu the activations', the loss and
    relu_backward the deltas': each the rounding of the float it sits beside."""
    rng = np.random.default_rng(1)
    model = _mixed_model([30, 20, 10, 5])
    np.testing.assert_array_equal(model.params16, naive.to_bfloat16(model.params))
    ws = Workspace(model, 64)
    x = rng.random((64, 30), np.float32)
    y = rng.integers(0, 5, 64).astype(np.int32)
    forward(model, ws, bfloat16.bfloat16_copy(x))
    backward(model, ws, bfloat16.bfloat16_copy(x).T, y)
    for a, a16 in zip(ws.acts, ws.acts16):
        np.testing.assert_array_equal(a16, naive.to_bfloat16(a))
    np.testing.assert_array_equal(ws.deltas16[-1], naive.to_bfloat16(ws.deltas[-1]))
    for d, d16 in zip(ws.deltas[:-1], ws.deltas16[:-1]):
        np.testing.assert_array_equal(d16, naive.to_bfloat16(d))
    SGD(model).step(model, 0.1)
    np.testing.assert_array_equal(model.params16, naive.to_bfloat16(model.params))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_a_mixed_step_is_its_float64_emulation(smoothing):
    rng = np.random.default_rng(2)
    sizes = [40, 24, 16, 6]
    model = _mixed_model(sizes, seed=3)
    x = rng.random((200, 40), np.float32)
    y = rng.integers(0, 6, 200).astype(np.int32)
    ws = Workspace(model, 200)
    x16 = bfloat16.bfloat16_copy(x)
    forward(model, ws, x16)
    loss, _ = backward(model, ws, x16.T, y, smoothing=smoothing)
    want_loss, dweights, dbiases = naive.mixed_step(
        x, y, [w.astype(np.float64) for w in model.weights],
        [b.astype(np.float64) for b in model.biases], smoothing)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    for got, want in [*zip(model.dweights, dweights), *zip(model.dbiases, dbiases)]:
        # float32 sums against float64 ones, and now and then a value on the other side of a
        # bfloat16 rounding boundary: far below bfloat16's own error (2**-9 relative)
        assert np.linalg.norm(got - want) <= 1e-3 * np.linalg.norm(want)


def test_mixed_and_float32_steps_differ_by_bfloat16_rounding_only():
    """The same weights and data: the mixed step's gradients are close to float32's, within
    what rounding the operands to 8 bits of mantissa allows, and not equal to them."""
    rng = np.random.default_rng(4)
    sizes = [50, 32, 10]
    mixed = _mixed_model(sizes, seed=5)
    plain = MLP(sizes, np.float32).initialize("he", np.random.default_rng(5))
    x = rng.random((128, 50), np.float32)
    y = rng.integers(0, 10, 128).astype(np.int32)
    for model, inputs in ((mixed, bfloat16.bfloat16_copy(x)), (plain, x)):
        ws = Workspace(model, 128)
        forward(model, ws, inputs)
        backward(model, ws, inputs.T, y)
    difference = np.linalg.norm(mixed.grads - plain.grads) / np.linalg.norm(plain.grads)
    assert 0 < difference < 2e-2
