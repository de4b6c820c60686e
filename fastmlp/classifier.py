"""The Python API, after scikit-learn's conventions: an estimator whose constructor only stores
its settings, `fit` that returns self, fitted attributes ending in an underscore, and
`predict`, `predict_proba`, `score`, `save` and `load`. The command line trains through it."""
from dataclasses import asdict, fields

import numpy as np

from . import checkpoint, inference
from .config import TrainConfig
from .data import Dataset, Split
from .errors import FastMLPError

_SETTINGS = [f.name for f in fields(TrainConfig)
             if f.name not in ("layers", "dataset", "data_dir", "val_fraction")]


class MLPClassifier:
    """An MLP classifier of MNIST-style images, trained by the fastmlp engine.

    MLPClassifier(hidden_layers=(128, 64, 32), optimizer="adam", lr=1e-3, batch_size=128,
    epochs=20, ...): every TrainConfig setting is a keyword (see fastmlp train --help); the
    defaults are TrainConfig's, the source documents' deepest experiment.

    Inputs are rows of features; uint8 images are scaled to [0, 1], floats are used as given.
    """

    def __init__(self, hidden_layers=TrainConfig.layers, **settings):
        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        self.hidden_layers = tuple(hidden_layers)
        for name in _SETTINGS:
            setattr(self, name, settings.get(name, getattr(TrainConfig, name)))

    @classmethod
    def from_config(cls, config):
        return cls(**cls._params_of(config))

    def get_params(self, deep=True):
        return {"hidden_layers": self.hidden_layers,
                **{name: getattr(self, name) for name in _SETTINGS}}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self.get_params():
                raise ValueError(f"invalid parameter {name!r}")
            setattr(self, name, value)
        return self

    def config(self):
        return TrainConfig(layers=self.hidden_layers,
                           **{name: getattr(self, name) for name in _SETTINGS})

    def _split(self, x, y=None):
        x = np.asarray(x)
        x = (np.divide(x, 255, dtype=self.dtype) if x.dtype == np.uint8
             else np.ascontiguousarray(x, dtype=self.dtype))
        if y is None:
            return x
        y = np.ascontiguousarray(y, dtype=np.int32)
        if x.ndim != 2 or len(x) != len(y):
            raise FastMLPError(f"expected X of shape (n, features) and y of shape (n,), got "
                               f"{x.shape} and {y.shape}")
        return Split(x=x, y=y)

    def fit(self, X, y, validation_data=None, test_data=None):
        """Train on X, y. Validation accuracy (and early stopping) use validation_data if given,
        else the last tenth of X; test accuracy is measured on test_data if given."""
        train = self._split(X, y)
        if validation_data is None:
            n_val = max(1, len(train) // 10)
            val = Split(x=train.x[-n_val:], y=train.y[-n_val:])
            train = Split(x=np.ascontiguousarray(train.x[:-n_val]), y=train.y[:-n_val].copy())
        else:
            val = self._split(*validation_data)
        test = self._split(*test_data) if test_data is not None else None
        return self.fit_dataset(Dataset("arrays", None, train, val, test, sha256={}))

    def fit_dataset(self, dataset, on_epoch=None, **options):
        """Train on a fastmlp Dataset (load_dataset); options go to fastmlp.train (save_path,
        checkpoint_every, resume)."""
        from .trainer import train
        self.result_ = train(self.config(), dataset, on_epoch, **options)
        self.model_ = self.result_.model
        self.history_ = self.result_.history
        self.loss_curve_ = [e.train_loss for e in self.result_.history]
        self.validation_scores_ = [e.val_acc for e in self.result_.history]
        self.n_iter_ = len(self.result_.history)
        self.best_epoch_ = self.result_.best_epoch
        self.classes_ = np.arange(self.model_.sizes[-1])
        self.dataset_ = {"name": dataset.name, "sha256": dict(dataset.sha256)}
        return self

    @staticmethod
    def _params_of(config):
        values = asdict(config)
        return {"hidden_layers": tuple(values.pop("layers")),
                **{k: v for k, v in values.items() if k in _SETTINGS}}

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise FastMLPError("this MLPClassifier is not fitted yet: call fit or load first")

    def predict_proba(self, X):
        self._check_fitted()
        return inference.predict_proba(self.model_, self._split(X))

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X, y):
        """Mean accuracy on X, y."""
        return float((self.predict(X) == np.asarray(y)).mean())

    def save(self, path):
        """Write the fitted model (weights, settings, history, data checksums) atomically."""
        self._check_fitted()
        checkpoint.save(path, self.model_, self.config(),
                        [asdict(e) for e in self.history_], self.dataset_)

    @classmethod
    def load(cls, path):
        """A fitted classifier from a file written by save() or by fastmlp train --save."""
        from .trainer import EpochStats
        saved = checkpoint.load(path)
        clf = cls.from_config(saved.config)
        clf.model_ = saved.model
        clf.history_ = [EpochStats(**e) for e in saved.history]
        clf.loss_curve_ = [e.train_loss for e in clf.history_]
        clf.validation_scores_ = [e.val_acc for e in clf.history_]
        clf.n_iter_ = len(clf.history_)
        clf.classes_ = np.arange(saved.model.sizes[-1])
        clf.dataset_ = saved.dataset
        return clf

    def __repr__(self):
        changed = {k: v for k, v in self.get_params().items()
                   if k != "hidden_layers" and v != getattr(TrainConfig, k)}
        extra = "".join(f", {k}={v!r}" for k, v in changed.items())
        return f"MLPClassifier(hidden_layers={self.hidden_layers}{extra})"
