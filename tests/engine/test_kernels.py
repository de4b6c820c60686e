"""Every fused kernel against its plain-numpy twin in tests/naive.py, in both float types,
at sizes that leave partial reduction chunks and at a single row."""
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from fastmlp.engine import draws, kernels
from fastmlp.engine.bfloat16 import NONE_1D, NONE_2D
from fastmlp.engine.kernels import CHUNK_ROWS, n_chunks
from tests import naive

# Kernels are called directly here, without the Workspace that makes them ready in a run.
pytestmark = pytest.mark.usefixtures("kernels_ready")

ROWS = [1, 7, CHUNK_ROWS, 3 * CHUNK_ROWS + 5]
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def scratch(rows, width, dtype):
    return np.zeros((n_chunks(rows), width), dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
def test_bias_relu(rng, rows, dtype):
    z = rng.normal(size=(rows, 37)).astype(dtype)
    b = rng.normal(size=37).astype(dtype)
    expected = naive.bias_relu(z, b)
    kernels.bias_relu(z, NONE_2D, b, 1.0, 12345)  # keep = 1: no dropout, whatever the key
    np.testing.assert_allclose(z, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
def test_bias_add(rng, rows, dtype):
    z = rng.normal(size=(rows, 10)).astype(dtype)
    b = rng.normal(size=10).astype(dtype)
    expected = naive.bias_add(z, b)
    kernels.bias_add(z, b)
    np.testing.assert_allclose(z, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("scale", [1.0, 1 / 0.7])
def test_relu_backward(rng, rows, dtype, scale):
    a = np.maximum(rng.normal(size=(rows, 33)), 0).astype(dtype)
    da = rng.normal(size=(rows, 33)).astype(dtype)
    expected_dz, expected_db = naive.relu_backward(da.astype(np.float64), a, dtype(scale))
    db = np.full(33, np.nan, dtype)  # the kernel must overwrite, not accumulate
    kernels.relu_backward(da, NONE_2D, db, scratch(rows, 40, dtype), a, scale)
    np.testing.assert_allclose(da, expected_dz, **TOL[dtype])
    np.testing.assert_allclose(db, expected_db, rtol=TOL[dtype]["rtol"], atol=1e-5 * rows ** 0.5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
def test_softmax_xent_backward(rng, rows, dtype, smoothing):
    logits = (3 * rng.normal(size=(rows, 10))).astype(dtype)
    logits[0, :] = 1  # a tie: numpy's argmax takes the first maximum, so must the kernel
    y = rng.integers(0, 10, rows).astype(np.int32)
    y[rows // 2] = logits[rows // 2].argmax()  # at least one hit
    expected_d, expected_db, expected_loss = naive.softmax_xent_backward(
        logits.astype(np.float64), y, smoothing)
    dlogits = np.empty_like(logits)
    db = np.full(10, np.nan, dtype)
    loss, count = kernels.softmax_xent_backward(dlogits, NONE_2D, db, scratch(rows, 10, dtype),
                                                np.zeros(n_chunks(rows)),
                                                np.zeros(n_chunks(rows), np.int64), logits, y,
                                                smoothing)
    np.testing.assert_allclose(dlogits, expected_d, **TOL[dtype])
    np.testing.assert_allclose(db, expected_db, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(expected_loss, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert count == naive.count_correct(logits, y) and count >= 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_huge_logits_stay_finite(dtype):
    big = np.finfo(dtype).max / 4
    logits = np.array([[big, 0, -big] + [0] * 7, [0] * 9 + [big]], dtype)
    y = np.array([0, 3], np.int32)
    dlogits, db = np.empty_like(logits), np.empty(10, dtype)
    loss, count = kernels.softmax_xent_backward(dlogits, NONE_2D, db, scratch(2, 10, dtype),
                                                np.zeros(1),
                                                np.zeros(1, np.int64), logits, y, 0.0)
    assert np.isfinite(loss) and np.isfinite(dlogits).all() and np.isfinite(db).all()
    # Row 0 is certain and right (no loss); row 1 is certain and wrong (loss ~ big).
    assert loss == pytest.approx(big / 2, rel=1e-6) and count == 1
    np.testing.assert_allclose(dlogits[0], 0, atol=1e-30)
    assert dlogits[1, 9] == pytest.approx(0.5) and dlogits[1, 3] == pytest.approx(-0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
def test_xent_count(rng, rows, dtype):
    logits = (5 * rng.normal(size=(rows, 10))).astype(dtype)
    logits[0, :] = 1  # a tie: the first maximum counts, as in softmax_xent_backward
    logits[-1, 3] = 1e4  # a huge logit stays finite
    y = rng.integers(0, 10, rows).astype(np.int32)
    y[rows // 2] = logits[rows // 2].argmax()  # at least one hit
    chunks = n_chunks(rows)
    loss, count = kernels.xent_count(logits, y, np.zeros(chunks), np.zeros(chunks, np.int64))
    assert count == naive.count_correct(logits, y) and count >= 1
    np.testing.assert_allclose(loss / rows, naive.xent_loss(logits.astype(np.float64), y),
                               **TOL[dtype])
    assert np.isfinite(loss)


@pytest.mark.parametrize("bad", [-1, 10, 1000, np.iinfo(np.int32).min])
def test_the_loss_kernels_refuse_a_label_out_of_range(rng, bad):
    """A label outside 0..K-1 raises before a row is read, in both loss kernels and in the numpy
    twin (whose fancy indexing would take -1 as the last class), and writes nothing."""
    rows = 2 * CHUNK_ROWS + 3
    logits = rng.normal(size=(rows, 10)).astype(np.float32)
    y = rng.integers(0, 10, rows).astype(np.int32)
    y[rows - 1] = bad
    chunks = n_chunks(rows)
    dlogits = np.full_like(logits, 7.0)
    with pytest.raises(IndexError, match="outside 0..K-1"):
        kernels.softmax_xent_backward(dlogits, NONE_2D, np.zeros(10, np.float32),
                                      scratch(rows, 10, np.float32), np.zeros(chunks),
                                      np.zeros(chunks, np.int64), logits, y, 0.0)
    assert (dlogits == 7.0).all()
    with pytest.raises(IndexError, match="outside 0..K-1"):
        kernels.xent_count(logits, y, np.zeros(chunks), np.zeros(chunks, np.int64))
    with pytest.raises(IndexError, match="outside 0..K-1"):
        naive.softmax_xent_backward(logits.astype(np.float64), y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_rows(rng, dtype):
    x = rng.random((500, 784)).astype(dtype)
    y = rng.integers(0, 10, 500).astype(np.int32)
    index = rng.permutation(500)[:130].astype(np.int64)
    xb, yb = np.empty((130, 784), dtype), np.empty(130, np.int32)
    kernels.gather_rows(xb, yb, x, y, index, 28, 0, 99)  # shift 0: the plain gather
    expected_x, expected_y = naive.gather_rows(x, y, index)
    np.testing.assert_array_equal(xb, expected_x)
    np.testing.assert_array_equal(yb, expected_y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 784), (100, 33), (64, 64), (257, 31)])
def test_transpose(rng, dtype, shape):
    x = rng.random(shape).astype(dtype)
    out = np.empty(shape[::-1], dtype)
    kernels.transpose(out, x)
    np.testing.assert_array_equal(out, naive.transpose(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update(rng, dtype):
    params = rng.normal(size=1001).astype(dtype)
    grads = rng.normal(size=1001).astype(dtype)
    expected = naive.sgd_update(params, grads, dtype(0.1))
    kernels.sgd_update(params, NONE_1D, grads, 0.1, 0.0)
    np.testing.assert_allclose(params, expected, **TOL[dtype])


def test_kernels_refuse_non_contiguous_input():
    """The signatures demand C-contiguous arrays: a strided view must fail loudly rather than
    fall back to a slow or wrong path."""
    z = np.zeros((8, 20), np.float32)[:, ::2]
    with pytest.raises(TypeError):
        kernels.bias_relu(z, NONE_2D, np.zeros(10, np.float32), 1.0, 0)


def test_reductions_do_not_depend_on_thread_count(rng):
    rows = 20 * CHUNK_ROWS + 3
    logits = rng.normal(size=(rows, 10)).astype(np.float32)
    y = rng.integers(0, 10, rows).astype(np.int32)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        d, db = np.empty_like(logits), np.empty(10, np.float32)
        loss = kernels.softmax_xent_backward(d, NONE_2D, db, scratch(rows, 10, np.float32),
                                             np.zeros(n_chunks(rows)),
                                             np.zeros(n_chunks(rows), np.int64), logits, y, 0.1)
        results.append((loss, d, db))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])


# Counter-based random numbers, dropout and shift augmentation.

@numba.njit
def _uniforms(out, key, counters):
    for i in range(counters.shape[0]):
        out[i] = draws.uniform(key, counters[i])


def kernel_uniforms(key, counters):
    counters = np.asarray(counters, np.int64)
    out = np.empty(len(counters))
    _uniforms(out, key, counters)
    return out


def test_uniform_is_splitmix64():
    """_uniform(0, n) is output n of splitmix64 seeded with 0 (mix64(0) == 0): the published
    first outputs, top 53 bits."""
    first = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    expected = [(u >> 11) / 2.0 ** 53 for u in first]
    assert list(kernel_uniforms(0, [0, 1, 2])) == expected
    assert list(naive.uniform(0, [0, 1, 2])) == expected


@pytest.mark.parametrize("key", [0, 1, 2, -1, 2 ** 62 + 12345, -(2 ** 63)])
def test_uniform_matches_naive(key):
    counters = np.concatenate([np.arange(1000), [2 ** 40, 2 ** 62, 2 ** 63 - 1]])
    u = kernel_uniforms(key, counters)
    np.testing.assert_array_equal(u, naive.uniform(key, counters))
    assert (u >= 0).all() and (u < 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_bias_relu_dropout(rng, rows, dtype, keep):
    z = rng.normal(size=(rows, 37)).astype(dtype)
    b = rng.normal(size=37).astype(dtype)
    expected = naive.bias_relu(z, b, dtype(keep), 77)
    kernels.bias_relu(z, NONE_2D, b, keep, 77)
    np.testing.assert_array_equal(z, expected)


def dropout(keep, key, dtype=np.float32, shape=(2000, 500), seed=0):
    """(pre-activation + bias after ReLU, kernel output) on random data with ~half the units
    positive."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=shape).astype(dtype)
    b = np.zeros(shape[1], dtype)
    relu = np.maximum(z, 0)
    kernels.bias_relu(z, NONE_2D, b, keep, key)
    return relu, z


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_dropout_statistics(dtype, keep):
    relu, out = dropout(keep, 2024, dtype, shape=(1000, 1000))
    positive = relu > 0
    kept = out != 0
    assert not (kept & ~positive).any()
    # Among the positive units (~5e5), the kept fraction is keep within 5 standard errors.
    n = positive.sum()
    fraction = kept[positive].mean()
    assert abs(fraction - keep) < 5 * np.sqrt(keep * (1 - keep) / n)
    # Every kept value is exactly its ReLU output times 1/keep, in the array's type.
    np.testing.assert_array_equal(out[kept], relu[kept] * np.reciprocal(dtype(keep)))
    # No row or column is favoured: their kept fractions stay near keep too.
    for axis in (0, 1):
        per = positive.sum(axis=axis)
        spread = np.abs(kept.sum(axis=axis) / per - keep) / np.sqrt(keep * (1 - keep) / per)
        assert spread.max() < 5


def test_dropout_keep_zero_drops_everything():
    _, out = dropout(0.0, 1, shape=(10, 30))
    assert (out == 0).all()


def test_dropout_is_deterministic_and_depends_on_the_key():
    keep = 0.5
    _, a = dropout(keep, 5)
    _, again = dropout(keep, 5)
    np.testing.assert_array_equal(a, again)
    relu, _ = dropout(1.0, 5)
    positive = (relu > 0).sum()
    for other in (6, 5 + 2 ** 32, -5):
        _, b = dropout(keep, other)
        # Independent masks keep the same positive unit with probability keep**2.
        both = ((a != 0) & (b != 0)).sum() / positive
        assert abs(both - keep ** 2) < 5 * np.sqrt(keep ** 2 * (1 - keep ** 2) / positive)


def test_dropout_does_not_depend_on_thread_count():
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            results.append(dropout(0.7, 31, shape=(3 * CHUNK_ROWS + 5, 300))[1])
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_backward_gives_dropped_units_no_gradient(rng, dtype):
    """Through dropout, da/dz = [z + b > 0] * mask / keep: relu_backward with scale 1/keep on the
    dropout output gets exactly that."""
    rows, width, keep = 300, 40, 0.6
    z = rng.normal(size=(rows, width)).astype(dtype)
    b = rng.normal(size=width).astype(dtype)
    positive = z + b > 0
    mask = naive.dropout_mask(rows, width, dtype(keep), 3)
    kernels.bias_relu(z, NONE_2D, b, keep, 3)
    da = rng.normal(size=(rows, width)).astype(dtype)
    scale = np.reciprocal(dtype(keep))
    expected = np.where(positive & mask, da * scale, 0)
    db = np.empty(width, dtype)
    kernels.relu_backward(da, NONE_2D, db, scratch(rows, width, dtype), z, scale)
    np.testing.assert_array_equal(da, expected)
    np.testing.assert_allclose(db, expected.sum(axis=0, dtype=np.float64), **TOL[dtype])


def images(rng, n, side, dtype):
    return (rng.random((n, side * side)) + 0.5).astype(dtype)  # no zero pixels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, side, shift", [(1, 28, 2), (130, 28, 1), (130, 28, 3), (57, 5, 2),
                                            (40, 3, 4), (33, 7, 6)])
def test_gather_rows_shift(rng, dtype, n, side, shift):
    x = images(rng, 200, side, dtype)
    y = rng.integers(0, 10, 200).astype(np.int32)
    index = rng.integers(0, 200, n).astype(np.int64)
    xb, yb = np.full((n, side * side), np.nan, dtype), np.empty(n, np.int32)
    kernels.gather_rows(xb, yb, x, y, index, side, shift, 4321)
    expected_x, expected_y = naive.gather_rows(x, y, index, side, shift, 4321)
    np.testing.assert_array_equal(xb, expected_x)
    np.testing.assert_array_equal(yb, expected_y)


def test_gather_rows_shift_matches_slicing(rng):
    """The twin's np.roll-and-zero agrees with a slicing formulation of the translation."""
    side, shift = 9, 3
    x = images(rng, 50, side, np.float64)
    index = np.arange(50, dtype=np.int64)
    xb, yb = np.empty_like(x), np.empty(50, np.int32)
    kernels.gather_rows(xb, yb, x, np.zeros(50, np.int32), index, side, shift, 8)
    dys, dxs = naive.shift_offsets(50, shift, 8)
    for i, (dy, dx) in enumerate(zip(dys, dxs)):
        src, out = x[i].reshape(side, side), np.zeros((side, side))
        out[max(dy, 0):side + min(dy, 0), max(dx, 0):side + min(dx, 0)] = \
            src[max(-dy, 0):side - max(dy, 0), max(-dx, 0):side - max(dx, 0)]
        np.testing.assert_array_equal(xb[i].reshape(side, side), out)


@pytest.mark.parametrize("shift", [1, 2, 4])
def test_shift_offsets_cover_the_range_uniformly(shift):
    """One bright pixel in the centre of each source image shows where the kernel moved it:
    every (dy, dx) in [-shift, shift]^2 occurs, about equally often."""
    n, side = 20000, 2 * shift + 3
    x = np.zeros((1, side * side))
    x[0, (side // 2) * side + side // 2] = 1
    xb, yb = np.empty((n, side * side)), np.empty(n, np.int32)
    kernels.gather_rows(xb, yb, x, np.zeros(1, np.int32), np.zeros(n, np.int64), side, shift, 17)
    assert (xb.sum(axis=1) == 1).all()
    where = xb.argmax(axis=1)
    dy, dx = where // side - side // 2, where % side - side // 2
    cells = (2 * shift + 1) ** 2
    counts = np.bincount((dy + shift) * (2 * shift + 1) + dx + shift, minlength=cells)
    assert len(counts) == cells and (counts > 0).all()
    expected = n / cells
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)
    np.testing.assert_array_equal((dy, dx), naive.shift_offsets(n, shift, 17))


def test_gather_rows_shift_zero_is_the_plain_gather_and_ignores_side(rng):
    x = rng.random((100, 20))  # 20 features: not a square image
    y = rng.integers(0, 10, 100).astype(np.int32)
    index = rng.permutation(100).astype(np.int64)
    xb, yb = np.empty_like(x), np.empty(100, np.int32)
    kernels.gather_rows(xb, yb, x, y, index, 0, 0, 5)
    np.testing.assert_array_equal(xb, x[index])
    np.testing.assert_array_equal(yb, y[index])


def test_gather_rows_shift_needs_square_images(rng):
    x = rng.random((10, 20))
    with pytest.raises(ValueError, match="side"):
        kernels.gather_rows(np.empty((3, 20)), np.empty(3, np.int32), x, np.zeros(10, np.int32),
                            np.arange(3, dtype=np.int64), 4, 1, 0)


def test_gather_rows_shift_does_not_depend_on_thread_count(rng):
    x = images(rng, 300, 28, np.float32)
    y = rng.integers(0, 10, 300).astype(np.int32)
    index = rng.permutation(300).astype(np.int64)
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            xb = np.empty_like(x)
            kernels.gather_rows(xb, np.empty(300, np.int32), x, y, index, 28, 2, 99)
            results.append(xb)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(results[0], results[1])


FLOAT32_RUN = """
import sys
import numpy as np
from numba.core.sigutils import normalize_signature
from fastmlp.engine import kernels
from fastmlp.fastpath import fused
from fastmlp.runtime import jit
from fastmlp.settings import TrainConfig
from fastmlp.training.loop import train
from fastmlp.engine.bfloat16 import NONE_1D, NONE_2D
from tests.helpers import data32
train(TrainConfig(layers=(8,), batch_size=64, epochs=1, lr=0.1), data32())
def compiled(group, code):
    return [d.py_func.__name__ for d, template, _ in jit.declared(group)
            if [tuple(sig) for sig in d.signatures]
            == [normalize_signature(template.replace("F", code))[0]]]
core = [d.py_func.__name__ for d, _, _ in jit.declared("core")]
print(compiled("core", "f4") == core, compiled("core", "f8"), compiled(fused.GROUP, "f4"))
for call in (lambda: kernels.sgd_update(np.zeros(3, np.int64), NONE_1D, np.zeros(3, np.int64),
                                        0.1, 0.0),
             lambda: fused.read_sum(np.zeros(3, np.float32))):
    try:
        call()
    except TypeError:
        print("refused")
print("scipy.linalg" in sys.modules)
"""


def test_a_run_compiles_only_its_own_float_type_and_path():
    """Kernels compile (or load from numba's cache) when a run first needs them, for its float
    type, and the fused pass's only when it runs: from a cold cache, compiling everything at
    import took 106 s before any first step. A kernel still refuses other types instead of
    compiling a variant for them. And numba's start-up does not import scipy.linalg (0.3-0.5 s
    of every run's start-up, only to learn whether np.dot may call BLAS; see jit.py)."""
    proc = subprocess.run([sys.executable, "-c", FLOAT32_RUN], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:4] == ["True [] []", "refused", "refused", "False"]
