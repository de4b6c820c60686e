"""MLPClassifier follows the scikit-learn conventions."""
import numpy as np
import pytest

from fastmlp.classifier import MLPClassifier
from fastmlp.errors import FastMLPError

from .helpers import data32


def test_classifier_follows_scikit_learn_conventions():
    data = data32()
    clf = MLPClassifier((32,), epochs=30, batch_size=50, lr=0.5)
    assert clf.get_params()["layers"] == (32,) and not hasattr(clf, "model_")
    assert clf.fit(data.train.x, data.train.y) is clf
    assert len(clf.loss_curve_) == len(clf.validation_scores_) == clf.n_iter_ == 30
    proba = clf.predict_proba(data.test.x)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert (clf.predict(data.test.x) == clf.classes_[proba.argmax(axis=1)]).all()
    assert clf.score(data.test.x, data.test.y) > 0.8
    assert clf.set_params(lr=0.1) is clf and clf.lr == 0.1
    with pytest.raises(TypeError):
        MLPClassifier(learning_rate=0.1)
    with pytest.raises(FastMLPError, match="not fitted"):
        MLPClassifier().predict(data.test.x)
