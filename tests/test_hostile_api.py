"""Hostile arrays and arguments at the Python API's edge (data/arrays.py, data/scaling.py,
training/loop.py's argument checks): each is taken correctly or refused with fastmlp's own
exception type (a ValueError or TypeError as scikit-learn raises), in one line that says what
to pass instead, before anything is trained or written."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastmlp
from fastmlp.classifier import MLPClassifier
from fastmlp.data import arrays
from fastmlp.errors import Diverged, FastMLPError, InputError, InputTypeError

RNG = np.random.default_rng(0)
X = RNG.random((60, 8)).astype(np.float32)
Y = np.arange(60) % 3


def small(**params):
    return MLPClassifier(layers=(8,), epochs=1, batch_size=16, **params)


@pytest.fixture(scope="module")
def fitted():
    return small().fit(X, Y)


def one_line(call, kind, *words):
    """call() raises `kind` (a FastMLPError) in one line holding every word."""
    with pytest.raises(kind) as raised:
        call()
    message = str(raised.value)
    assert isinstance(raised.value, FastMLPError) and "\n" not in message, message
    for word in words:
        assert word in message, message


# name -> (call given the fitted model, exception type, words of its line)
REFUSED = {
    "one-hot y": (lambda m: small().fit(X, np.eye(3)[Y]), InputError, "Y.argmax(axis=1)"),
    "y of two columns": (lambda m: small().fit(X, np.stack([Y, Y], 1)), InputError, "1d"),
    "y + 0.7": (lambda m: small().fit(X, Y + 0.7), InputError, "continuous"),
    "y NaN": (lambda m: small().fit(X, np.where(Y == 0, np.nan, Y)), InputError, "NaN"),
    "y complex": (lambda m: small().fit(X, Y + 0j), InputError, "complex"),
    "y mixed objects": (lambda m: small().fit(X, np.array([1, "a"] * 30, object)), InputError,
                        "all integers or all strings"),
    "y too short": (lambda m: small().fit(X, Y[:10]), InputError, "[60, 10]"),
    "one class": (lambda m: small().fit(X, np.zeros(60, int)), InputError, "at least 2"),
    "ragged list X": (lambda m: small().fit([[1, 2], [3]], [0, 1]), InputError,
                      "rows of equal length"),
    "1-D X": (lambda m: small().fit(X[:, 0], Y), InputError, "reshape(-1, 1)"),
    "3-D X": (lambda m: small().fit(X.reshape(60, 2, 4), Y), InputError, "3D"),
    "string X": (lambda m: small().fit(X.astype(str), Y), InputError, "numbers"),
    "object X": (lambda m: small().fit(np.full((60, 8), object()), Y), InputTypeError,
                 "numbers"),
    "complex X": (lambda m: small().fit(X + 1j, Y), InputError, "Complex"),
    "NaN X": (lambda m: small().fit(np.where(X > 0.9, np.nan, X), Y), InputError, "NaN"),
    "beyond float32": (lambda m: small().fit(X.astype(np.float64) * 1e300, Y), InputError,
                       "beyond the range of float32"),
    "empty X": (lambda m: small().fit(X[:0], Y[:0]), InputError, "0 sample"),
    "no features": (lambda m: small().fit(X[:, :0], Y), InputError, "0 feature"),
    "X None": (lambda m: small().fit(None, Y), InputError, "None"),
    "validation features": (lambda m: small().fit(X, Y, validation_data=(X[:, :5], Y)),
                            InputError, "5 features", "expecting 8"),
    "empty validation": (lambda m: small().fit(X, Y, validation_data=(X[:0], Y[:0])),
                         InputError, "0 sample"),
    "validation not a pair": (lambda m: small().fit(X, Y, validation_data=X), InputError,
                              "pair (X, y)"),
    "validation label": (lambda m: small().fit(X, Y, validation_data=(X, Y + 5)), InputError,
                         "label 5"),
    "predict features": (lambda m: m.predict(X[:, :5]), InputError, "expecting 8"),
    "predict one row 1-D": (lambda m: m.predict(X[0]), InputError, "reshape(1, -1)"),
    "predict_proba text": (lambda m: m.predict_proba("x"), InputError, "2D"),
    "score one-hot": (lambda m: m.score(X, np.eye(3)[Y]), InputError, "argmax"),
    "score strings": (lambda m: m.score(X, np.array(list("abc"))[Y]), InputError,
                      "strings", "numbers"),
    "score weights": (lambda m: m.score(X, Y, sample_weight=[1, 2]), InputError,
                      "sample_weight"),
    "partial_fit features": (lambda m: small().fit(X, Y).partial_fit(X[:, :5], Y), InputError,
                             "expecting 8"),
    "partial_fit classes": (lambda m: small().partial_fit(X, Y, classes=[0, 1]), InputError,
                            "label 2"),
    "sparse X": (lambda m: small().fit(__import__("scipy.sparse").sparse.csr_matrix(X), Y),
                 InputTypeError, "toarray"),
    "unknown parameter": (lambda m: MLPClassifier(foo=1), InputTypeError, "foo"),
    "set_params unknown": (lambda m: small().set_params(foo=1), InputError, "foo"),
    "bad setting": (lambda m: MLPClassifier(lr=-1).fit(X, Y), InputError, "lr"),
    "train: config text": (lambda m: fastmlp.train("x"), InputTypeError, "TrainConfig",
                           "got str"),
    "train: config dict": (lambda m: fastmlp.train({"epochs": 1}), InputTypeError,
                           "TrainConfig(epochs=5)"),
    "train: dataset text": (lambda m: fastmlp.train(fastmlp.TrainConfig(), "data"),
                            InputTypeError, "load_dataset"),
    "train: on_epoch": (lambda m: fastmlp.train(None, None, 5), InputTypeError, "on_epoch"),
    "train: options": (lambda m: fastmlp.train(options="x"), InputTypeError, "RunOptions"),
    "train: resume missing": (lambda m: fastmlp.train(resume="/no/such.npz"), FastMLPError,
                              "no such model file"),
    "train: resume number": (lambda m: fastmlp.train(resume=3), InputTypeError, "resume"),
    "train: initial": (lambda m: fastmlp.train(initial="w"), InputTypeError, "fastmlp.MLP"),
    "train: save_path": (lambda m: fastmlp.train(save_path=3), InputTypeError, "a path"),
    "train: checkpoint_every": (lambda m: fastmlp.train(checkpoint_every=-1), InputError,
                                ">= 0"),
    "MLP sizes text": (lambda m: fastmlp.MLP("x"), FastMLPError, "[784, 128, 10]"),
    "MLP sizes float": (lambda m: fastmlp.MLP([784, 1.5, 10]), FastMLPError, "integers"),
    "MLP dtype": (lambda m: fastmlp.MLP([4, 2], "nonsense"), FastMLPError, "float32"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_hostile_input_is_one_line_of_fastmlps_own_type(fitted, name, tmp_path,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written anywhere
    call, kind, *words = REFUSED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw numpy warning on the way either
        one_line(lambda: call(fitted), kind, *words)
    assert list(tmp_path.iterdir()) == []


def test_a_column_vector_y_is_taken_with_sklearns_warning(fitted):
    with pytest.warns(UserWarning, match="column-vector y"):
        column = small().fit(X, Y[:, None])
    assert np.array_equal(column.predict(X), small().fit(X, Y).predict(X))
    with pytest.warns(UserWarning, match="column-vector y"):
        assert fitted.score(X, Y[:, None]) == fitted.score(X, Y)  # not n x n broadcasting


def test_lists_and_integral_float_labels_are_the_arrays_they_stand_for():
    a = small().fit(X, Y)
    assert np.array_equal(small().fit(X.tolist(), Y.tolist()).predict(X), a.predict(X))
    b = small().fit(X, Y.astype(float))
    assert np.array_equal(b.predict(X), a.predict(X)) and b.classes_.dtype.kind == "i"


def test_pictures_of_16_bits_are_scaled_like_those_of_8():
    levels = (X * 255).astype(np.uint8)
    wide = levels.astype(np.uint16) * 257
    assert np.array_equal(arrays.features(wide, np.float32),
                          arrays.features(levels, np.float32))


def test_large_integer_features_diverge_with_the_right_advice():
    big = (X * 1000).astype(np.int16)
    one_line(lambda: MLPClassifier(layers=(8,), epochs=2, batch_size=16, optimizer="sgd",
                                   lr=0.1).fit(big, Y),
             Diverged, "inputs reach 99", "X / 99", "standardize=True")
    small(standardize=True).fit(big, Y)  # as advised: trains


@st.composite
def any_array(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16, np.int8, np.int16,
                                  np.int64, np.uint8, np.uint16, np.uint64, np.bool_,
                                  np.complex64, "U3", object]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    if dtype is object:
        return np.array(draw(st.lists(st.one_of(st.none(), st.text(max_size=2), st.floats()),
                                      min_size=1, max_size=6)), dtype=object)
    return draw(hnp.arrays(dtype, shape))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_array(), st.sampled_from([None, 1, 3]))
def test_any_array_is_features_or_one_line(x, n_features):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            out = arrays.features(x, np.float32, n_features=n_features)
        except (InputError, InputTypeError) as error:
            assert "\n" not in str(error)
            return
    assert out.dtype == np.float32 and out.ndim == 2 and out.size > 0
    assert np.isfinite(out).all() and out.flags.c_contiguous
    assert n_features is None or out.shape[1] == n_features


@settings(max_examples=50, deadline=None)
@given(any_array())
def test_any_labels_are_classes_or_one_line(y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a column vector's DataConversionWarning
        try:
            labels = arrays.labels(y, len(y) if y.ndim else 0)
            classes, indices = arrays.fit_classes(labels)
        except (InputError, InputTypeError) as error:
            assert "\n" not in str(error)
            return
    assert len(classes) >= 2 and indices.dtype == np.int32
    assert np.array_equal(classes[indices], np.asarray(labels).astype(classes.dtype))
