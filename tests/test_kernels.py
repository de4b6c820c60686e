"""Every fused kernel against its plain-numpy twin in tests/naive.py, in both float types,
at sizes that leave partial reduction chunks and at a single row."""
import numpy as np
import pytest

from fastmlp import kernels
from fastmlp.kernels import CHUNK_ROWS, n_chunks

from . import naive

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
    kernels.bias_relu(z, b)
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
def test_relu_backward(rng, rows, dtype):
    a = np.maximum(rng.normal(size=(rows, 33)), 0).astype(dtype)
    da = rng.normal(size=(rows, 33)).astype(dtype)
    expected_dz, expected_db = naive.relu_backward(da.astype(np.float64), a)
    db = np.full(33, np.nan, dtype)  # the kernel must overwrite, not accumulate
    kernels.relu_backward(da, db, scratch(rows, 40, dtype), a)
    np.testing.assert_allclose(da, expected_dz, **TOL[dtype])
    np.testing.assert_allclose(db, expected_db, rtol=TOL[dtype]["rtol"], atol=1e-5 * rows ** 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
def test_softmax_xent_backward(rng, rows, dtype):
    logits = (3 * rng.normal(size=(rows, 10))).astype(dtype)
    y = rng.integers(0, 10, rows).astype(np.int32)
    expected_d, expected_db, expected_loss = naive.softmax_xent_backward(
        logits.astype(np.float64), y)
    dlogits = np.empty_like(logits)
    db = np.full(10, np.nan, dtype)
    loss = kernels.softmax_xent_backward(dlogits, db, scratch(rows, 10, dtype),
                                         np.zeros(n_chunks(rows)), logits, y)
    np.testing.assert_allclose(dlogits, expected_d, **TOL[dtype])
    np.testing.assert_allclose(db, expected_db, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(expected_loss, rel=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_huge_logits_stay_finite(dtype):
    big = np.finfo(dtype).max / 4
    logits = np.array([[big, 0, -big] + [0] * 7, [0] * 9 + [big]], dtype)
    y = np.array([0, 3], np.int32)
    dlogits, db = np.empty_like(logits), np.empty(10, dtype)
    loss = kernels.softmax_xent_backward(dlogits, db, scratch(2, 10, dtype), np.zeros(1),
                                         logits, y)
    assert np.isfinite(loss) and np.isfinite(dlogits).all() and np.isfinite(db).all()
    # Row 0 is certain and right (no loss); row 1 is certain and wrong (loss ~ big).
    assert loss == pytest.approx(big / 2, rel=1e-6)
    np.testing.assert_allclose(dlogits[0], 0, atol=1e-30)
    assert dlogits[1, 9] == pytest.approx(0.5) and dlogits[1, 3] == pytest.approx(-0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
def test_count_correct(rng, rows, dtype):
    logits = rng.normal(size=(rows, 10)).astype(dtype)
    logits[0, :] = 1  # a tie: numpy's argmax takes the first maximum, so must the kernel
    y = rng.integers(0, 10, rows).astype(np.int32)
    y[rows // 2] = logits[rows // 2].argmax()  # at least one hit
    count = kernels.count_correct(logits, y, np.zeros(n_chunks(rows), np.int64))
    assert count == naive.count_correct(logits, y) and count >= 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_rows(rng, dtype):
    x = rng.random((500, 784)).astype(dtype)
    y = rng.integers(0, 10, 500).astype(np.int32)
    index = rng.permutation(500)[:130].astype(np.int64)
    xb, yb = np.empty((130, 784), dtype), np.empty(130, np.int32)
    kernels.gather_rows(xb, yb, x, y, index)
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
    kernels.sgd_update(params, grads, 0.1)
    np.testing.assert_allclose(params, expected, **TOL[dtype])


def test_kernels_refuse_non_contiguous_input():
    """The signatures demand C-contiguous arrays: a strided view must fail loudly rather than
    fall back to a slow or wrong path."""
    z = np.zeros((8, 20), np.float32)[:, ::2]
    with pytest.raises(TypeError):
        kernels.bias_relu(z, np.zeros(10, np.float32))


def test_reductions_do_not_depend_on_thread_count(rng):
    import numba
    rows = 20 * CHUNK_ROWS + 3
    logits = rng.normal(size=(rows, 10)).astype(np.float32)
    y = rng.integers(0, 10, rows).astype(np.int32)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        d, db = np.empty_like(logits), np.empty(10, np.float32)
        loss = kernels.softmax_xent_backward(d, db, scratch(rows, 10, np.float32),
                                             np.zeros(n_chunks(rows)), logits, y)
        results.append((loss, d, db))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])
