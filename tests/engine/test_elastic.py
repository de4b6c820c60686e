"""Elastic distortions (fastmlp/engine/elastic.py) against their numpy twin, alone and on top of
the affine map; the bank of field pairs against its twin; alpha 0 is the affine gather bit for
bit; the field's statistics; independence of the thread count; the bfloat16 output; no pruning
under them."""
import numba
import numpy as np
import pytest

from fastmlp.engine import augment, elastic
from fastmlp.engine.bfloat16 import NONE_2D
from fastmlp.settings import TrainConfig
from fastmlp.training.trainer import make_trainer
from tests import naive
from tests.helpers import make_dataset

# Kernels are called directly here, without the Gather that makes them ready in a run.
pytestmark = pytest.mark.usefixtures("kernels_ready")


def gather(x, index, side, affine, shift, alpha, sigma, key=7, field_key=8, write16=False,
           fields=16):
    """gather_elastic's images (float, or bfloat16 bits when write16), its fields from a bank
    of `fields` pairs drawn under key 9."""
    yb = np.empty(len(index), np.int32)
    y = np.arange(len(x), dtype=np.int32)
    if write16:
        xb, xb16 = np.empty((0, 0), x.dtype), np.zeros((len(index), side * side), np.uint16)
    else:
        xb, xb16 = np.full((len(index), side * side), np.nan, x.dtype), NONE_2D
    elastic.gather_elastic(xb, xb16, yb, x, y, index, side, *affine, shift, key, alpha,
                           elastic.field_bank(sigma, side, 9, fields), field_key)
    np.testing.assert_array_equal(yb, y[index])
    return xb16 if write16 else xb


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("side, affine, shift, alpha, sigma", [
    (28, (0.0, 0.0, 0.0), 0.0, 34.0, 4.0),       # Simard's distortion alone
    (28, (15.0, 0.15, 10.0), 2.0, 34.0, 4.0),    # composed with the record preset's affine map
    (9, (0.0, 0.0, 0.0), 1.0, 8.0, 1.0),         # a narrow Gaussian on a small grid
    (5, (30.0, 0.2, 0.0), 0.0, 60.0, 2.5),       # a field wider than the image
])
def test_gather_elastic_matches_naive(dtype, side, affine, shift, alpha, sigma):
    rng = np.random.default_rng(side)
    x = rng.random((30, side * side)).astype(dtype)
    index = rng.integers(0, 30, 25).astype(np.int64)
    got = gather(x, index, side, affine, shift, alpha, sigma, fields=4)
    want, _ = naive.affine_gather(x, np.zeros(30, np.int32), index, side, *affine, shift, 7,
                                  alpha, elastic.field_bank(sigma, side, 9, 4), 8)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert not np.allclose(got, naive.affine_gather(x, np.zeros(30, np.int32), index, side,
                                                    *affine, shift, 7)[0])  # it distorted


@pytest.mark.parametrize("side, sigma", [(28, 4.0), (9, 1.0), (5, 2.5)])
def test_the_bank_holds_the_smoothed_fields_of_the_twin(side, sigma):
    bank = elastic.field_bank(sigma, side, 9, 6)
    np.testing.assert_allclose(bank, naive.elastic_bank(9, 6, side, sigma), rtol=1e-6, atol=1e-9)
    assert bank.nbytes == elastic.bank_bytes(side, 6)  # what the memory plan counts


def test_images_pick_every_variant_of_the_bank_evenly():
    """Each image's pick (naive.elastic_variant, which the kernel matches above) covers the
    bank's pairs and all eight sign and swap variants about equally."""
    bank = np.arange(4 * 2 * 4, dtype=np.float32).reshape(4, 2, 4) + 1  # pair b, row, dx | dy
    seen = {}
    for i in range(3200):
        dx, dy = naive.elastic_variant(bank, 8, i)
        variant = (int(abs(dx[0, 0])), np.sign(dx[0, 0]), np.sign(dy[0, 0]))
        seen[variant] = seen.get(variant, 0) + 1
    assert len(seen) == 32 and min(seen.values()) > 60  # 100 expected each


def test_alpha_zero_is_the_affine_gather_and_the_plain_gather_bit_for_bit():
    rng = np.random.default_rng(1)
    x = rng.random((50, 784)).astype(np.float32)
    index = rng.permutation(50).astype(np.int64)
    args = ((12.0, 0.1, 8.0), 2.0)
    want = np.empty_like(x)
    augment.gather_affine(want, NONE_2D, np.empty(50, np.int32), x, np.zeros(50, np.int32),
                          index, 28, *args[0], args[1], 7)
    np.testing.assert_array_equal(gather(x, index, 28, *args, 0.0, 4.0), want)
    np.testing.assert_array_equal(gather(x, index, 28, (0.0, 0.0, 0.0), 0.0, 0.0, 4.0), x[index])


def test_the_field_has_mean_zero_the_predicted_spread_and_is_smooth():
    """On ramps (pixel value = its column, or its row), an interior pixel's sample is its
    coordinate plus the displacement, exactly (bilinear is exact on a linear image): the kernel's
    own fields, read back, have mean ~0, the RMS elastic.field_rms predicts, neighbours
    correlated as the smoothing says and far-apart pixels uncorrelated."""
    side, alpha, sigma, n = 48, 4.0, 4.0, 48
    r, c = np.mgrid[0:side, 0:side].astype(np.float64)
    index = np.zeros(n, np.int64)
    inner = (slice(None), slice(12, 36), slice(12, 36))  # no truncation, no border
    dx = (gather(c.reshape(1, -1), index, side, (0.0,) * 3, 0.0, alpha, sigma, fields=n)
          .reshape(n, side, side) - c)[inner]
    dy = (gather(r.reshape(1, -1), index, side, (0.0,) * 3, 0.0, alpha, sigma, fields=n)
          .reshape(n, side, side) - r)[inner]
    rms = elastic.field_rms(alpha, sigma)  # 0.163 px at alpha 4, sigma 4
    for d in (dx, dy):
        assert abs(d.mean()) < 0.15 * rms
        assert abs(d.std() / rms - 1) < 0.15

        def corr(a, b):
            return np.corrcoef(a.ravel(), b.ravel())[0, 1]
        # Gaussian-smoothed white noise: correlation exp(-lag^2 / (4 sigma^2)).
        assert corr(d[:, :, :-1], d[:, :, 1:]) > 0.9
        assert corr(d[:, :-1], d[:, 1:]) > 0.9
        assert abs(corr(d[:, :, :4], d[:, :, -4:])) < 0.2  # 20 px apart: exp(-25) in theory
    assert abs(np.corrcoef(dx.ravel(), dy.ravel())[0, 1]) < 0.2  # two independent fields


def test_gather_elastic_does_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    x = rng.random((200, 784)).astype(np.float32)
    index = rng.permutation(200).astype(np.int64)
    results = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results.append(gather(x, index, 28, (10.0, 0.1, 5.0), 2.0, 34.0, 4.0))
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(results[0], results[1])


def test_bfloat16_output_is_the_float32_output_rounded():
    rng = np.random.default_rng(6)
    x = rng.random((40, 784)).astype(np.float32)
    index = rng.permutation(40).astype(np.int64)
    args = (x, index, 28, (10.0, 0.1, 5.0), 2.0, 34.0, 4.0)
    np.testing.assert_array_equal(gather(*args, write16=True),
                                  naive.to_bfloat16(gather(*args)))


def test_elastic_augmentation_prunes_nothing_and_draws_per_step():
    """Pixels dark in every training image light up under the fields, so no column is pruned
    (the plain path, bit for bit); the same seed draws the same bank of fields, as a resumed run
    must; the same step draws the same batch."""
    side = 8
    data = make_dataset(n_train=300, n_val=50, n_test=50, n_features=side * side)
    data.train.x.reshape(-1, side, side)[:, :, :2] = 0
    config = TrainConfig(layers=(12,), epochs=2, dtype="float64", seed=1, lr=0.1,
                         batch_size=50, augment_elastic=20.0, augment_elastic_sigma=1.0)
    fast, plain = make_trainer(config, data), make_trainer(config, data, plain=True)
    assert fast.fastpath.name == plain.fastpath.name == "plain"
    fast.epoch()
    plain.epoch()
    np.testing.assert_array_equal(fast.model.params, plain.model.params)
    np.testing.assert_array_equal(fast.gather.bank, plain.gather.bank)
    assert fast.gather.bank.shape == (elastic.BANK_FIELDS, side, 2 * side)
    lit = fast.ws.x.reshape(-1, side, side)[:, :, :2]
    assert (lit != 0).any()
    ws, index = fast.minibatches[0]
    fast.gather(ws, index, 3)
    first = ws.x.copy()
    fast.gather(ws, index, 4)
    assert not np.array_equal(ws.x, first)
    fast.gather(ws, index, 3)
    np.testing.assert_array_equal(ws.x, first)
