"""The Python API, after scikit-learn's conventions: an estimator whose constructor only stores
its settings, `fit` that returns self, fitted attributes ending in an underscore, and
`predict`, `predict_proba`, `score`, `save` and `load`. The command line trains through it."""
from dataclasses import asdict

import numpy as np

from .data.load import Dataset, Split, split_rows
from .engine import inference
from .errors import FastMLPError
from .precisions import parameter_dtype
from .settings import BY_NAME, IN_MEMORY, SETTINGS, RunOptions, TrainConfig
from .training import checkpoint

# The estimator's parameters: every setting of the table but where the data comes from, which
# fit() takes (scikit-learn's rule: data is an argument of fit, never a parameter).
PARAMS = tuple(s.name for s in SETTINGS if s.name not in ("dataset", "data_dir"))


class MLPClassifier:
    """An MLP classifier of MNIST-style images, trained by the fastmlp engine.

    MLPClassifier(layers=(128, 64, 32), optimizer="adam", lr=1e-3, batch_size=128,
    epochs=20, ...): every setting of fastmlp.settings.SETTINGS but dataset and data_dir is a
    keyword (see fastmlp train --help); the defaults are the table's, the source documents'
    deepest experiment. Settings are checked when fit() builds the run's TrainConfig.

    Inputs are rows of features; uint8 images are scaled to [0, 1], floats are used as given.
    """

    def __init__(self, layers=BY_NAME["layers"].default, **settings):
        unknown = set(settings) - set(PARAMS)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        self.layers = layers
        for name in PARAMS[1:]:
            setattr(self, name, settings.get(name, BY_NAME[name].default))

    @classmethod
    def from_config(cls, config, options=None):
        values = {**asdict(config), **asdict(options or RunOptions())}
        return cls(**{name: values[name] for name in PARAMS})

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in PARAMS}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in PARAMS:
                raise ValueError(f"invalid parameter {name!r}")
            setattr(self, name, value)
        return self

    def config(self, dataset=IN_MEMORY):
        """The TrainConfig of a fit on `dataset` (a name; arrays by default)."""
        params = self.get_params()
        return TrainConfig(dataset=dataset, **{s.name: params[s.name] for s in SETTINGS
                                               if s.scope == "config" and s.name != "dataset"})

    def options(self):
        return RunOptions(threads=self.threads, blas=self.blas)

    def _split(self, x, y=None):
        x = np.asarray(x)
        dtype = parameter_dtype(self.dtype)
        x = (np.divide(x, 255, dtype=dtype) if x.dtype == np.uint8
             else np.ascontiguousarray(x, dtype=dtype))
        if y is None:
            return x
        y = np.ascontiguousarray(y, dtype=np.int32)
        if x.ndim != 2 or len(x) != len(y):
            raise FastMLPError(f"expected X of shape (n, features) and y of shape (n,), got "
                               f"{x.shape} and {y.shape}")
        return Split(x=x, y=y)

    def fit(self, X, y, validation_data=None, test_data=None, max_memory=None):
        """Train on X, y. Validation accuracy (and early stopping) use validation_data if given,
        else val_fraction of X held out by a seed-determined permutation, as load_dataset
        splits a training file; test accuracy is measured on test_data if given. A run whose
        planned memory exceeds what is available, or max_memory bytes (an int, or a size such
        as "4GiB" as `fastmlp train --max-memory` takes), raises OutOfMemory before it
        allocates."""
        self.config()  # every setting checked before the data is converted and split with them
        data = self._split(X, y)
        seed = val_fraction = None
        if validation_data is None:
            seed, val_fraction = self.seed, self.val_fraction
            train_rows, val_rows = split_rows(len(data), seed, val_fraction)
            train = Split(x=data.x[train_rows], y=data.y[train_rows])
            val = Split(x=data.x[val_rows], y=data.y[val_rows])
        else:
            train, val = data, self._split(*validation_data)
        test = self._split(*test_data) if test_data is not None else None
        return self.fit_dataset(Dataset(IN_MEMORY, None, train, val, test, {}, seed,
                                        val_fraction), max_memory=max_memory)

    def fit_dataset(self, dataset, on_epoch=None, **options):
        """Train on a fastmlp Dataset (load_dataset); options go to fastmlp.train (save_path,
        checkpoint_every, resume, max_memory)."""
        from .training.loop import train
        from .units import parse_size
        config = self.config(IN_MEMORY if dataset.directory is None else dataset.name)
        if options.get("max_memory") is not None:
            try:
                options["max_memory"] = parse_size(options["max_memory"])
            except ValueError as e:
                raise FastMLPError(f"max_memory: {e}") from None
        self.result_ = train(config, dataset, on_epoch, options=self.options(), **options)
        self.model_ = self.result_.model
        self.config_ = self.result_.config  # the run as it happened (dataset name included)
        self.history_ = self.result_.history
        self.loss_curve_ = [e.train_loss for e in self.result_.history]
        self.validation_scores_ = [e.val_acc for e in self.result_.history]
        self.n_iter_ = len(self.result_.history)
        self.best_epoch_ = self.result_.best_epoch
        self.classes_ = np.arange(self.model_.sizes[-1])
        self.dataset_ = self.result_.dataset
        return self

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
        checkpoint.save(path, self.model_, self.config_,
                        [asdict(e) for e in self.history_], self.dataset_)

    @classmethod
    def load(cls, path):
        """A fitted classifier from a file written by save() or by fastmlp train --save."""
        from .training.result import EpochStats
        saved = checkpoint.load(path)
        clf = cls.from_config(saved.config)
        clf.config_ = saved.config
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
                   if k != "layers" and v != BY_NAME[k].default}
        extra = "".join(f", {k}={v!r}" for k, v in changed.items())
        return f"MLPClassifier(layers={tuple(self.layers)}{extra})"
