"""The Python API: an estimator scikit-learn accepts. With scikit-learn installed, MLPClassifier
is a ClassifierMixin and BaseEstimator (is_classifier, clone, GridSearchCV, cross_val_score and
its estimator checks take it); without it, it keeps the same methods. Its constructor only
stores its settings, `fit` returns self, fitted attributes end in an underscore, and bad input
raises scikit-learn's exceptions (fastmlp's own types, which inherit from them)."""
import hashlib
import inspect
import sys
from dataclasses import asdict

import numpy as np

from .data import arrays
from .data.dataset import Dataset, Split, split_rows
from .data.scaling import Standardizer
from .engine import inference
from .errors import FastMLPError, InputError, InputTypeError
from .precisions import parameter_dtype
from .settings import IN_MEMORY, SETTINGS, RunOptions, TrainConfig
from .training import checkpoint

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
except ImportError:  # fastmlp stands alone; scikit-learn is an optional extra
    BASES, NOT_FITTED_BASES = (), (ValueError, AttributeError)
else:
    BASES, NOT_FITTED_BASES = (ClassifierMixin, BaseEstimator), (SklearnNotFittedError,)

# Where the data comes from is an argument of fit, never a parameter (scikit-learn's rule).
DATA_SETTINGS = ("dataset", "data_dir", "data", "label_column", "image_size")
# The estimator's parameters: every other setting of the table, then the estimator's own.
PARAMS = (*(s.name for s in SETTINGS if s.name not in DATA_SETTINGS), "warm_start", "verbose")
DEFAULTS = {**{s.name: s.default for s in SETTINGS}, "warm_start": False, "verbose": False}


class NotFittedError(FastMLPError, *NOT_FITTED_BASES):
    """A method that needs a fitted model was called before fit (scikit-learn's
    NotFittedError when it is installed)."""


class MLPClassifier(*BASES):
    """A multilayer perceptron classifier trained by the fastmlp engine.

    MLPClassifier(layers=(128, 64, 32), optimizer="adam", lr=1e-3, batch_size=128,
    epochs=20, ...): every setting of fastmlp.SETTINGS but where the data comes from is a
    keyword (see fastmlp train --help), plus warm_start (fit starts from the fitted weights) and
    verbose (a progress bar of epochs on stderr). The defaults are the table's. Settings are
    checked when fit() builds the run's TrainConfig.

    X: rows of numeric features; uint8 and uint16 pictures are scaled to [0, 1], other numbers
    are used as given (or standardised, with standardize=True). y: labels of any classes,
    integers or strings; classes_ is their sorted set, and predict returns them.
    """

    def __init__(self, layers=DEFAULTS["layers"], **params):
        unknown = set(params) - set(PARAMS)
        if unknown:
            raise InputTypeError(f"unknown parameters: {', '.join(sorted(unknown))}; the "
                                 f"parameters are {', '.join(PARAMS)}")
        self.layers = layers
        for name in PARAMS[1:]:
            setattr(self, name, params.get(name, DEFAULTS[name]))

    # inspect.signature (which scikit-learn's get_params and clone read) lists every parameter.
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         inspect.Parameter("layers", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                           default=DEFAULTS["layers"])]
        + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=DEFAULTS[name])
           for name in PARAMS[1:]])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.classifier_tags.multi_class = True
        tags.target_tags.required = True
        return tags

    @classmethod
    def from_config(cls, config, options=None):
        values = {**asdict(config), **asdict(options or RunOptions())}
        return cls(**{name: values[name] for name in PARAMS if name in values})

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in PARAMS}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in PARAMS:
                raise InputError(f"Invalid parameter {name!r} for estimator MLPClassifier; "
                                 f"valid parameters are {', '.join(PARAMS)}")
            setattr(self, name, value)
        return self

    def config(self, dataset=IN_MEMORY):
        """The TrainConfig of a fit on `dataset` (a name; arrays by default); a setting out of
        range is an InputError (a ValueError, as scikit-learn raises for bad parameters)."""
        params = self.get_params()
        try:
            return TrainConfig(dataset=dataset, **{
                s.name: params[s.name] for s in SETTINGS
                if s.scope == "config" and s.name not in DATA_SETTINGS})
        except InputError:
            raise
        except FastMLPError as e:
            raise InputError(str(e)) from None

    def options(self):
        return RunOptions(threads=self.threads, blas=self.blas)

    # ------------------------------------------------------------------ fitting

    def _split(self, x, y):
        """(train, val) of the checked arrays: val_fraction held out by seed."""
        try:
            train_rows, val_rows = split_rows(len(y), self.seed, self.val_fraction)
        except FastMLPError as e:
            raise InputError(f"{e} (n_samples={len(y)})") from None
        return (Split(np.ascontiguousarray(x[train_rows]), y[train_rows]),
                Split(np.ascontiguousarray(x[val_rows]), y[val_rows]))

    def _dataset(self, X, y, validation_data=None, test_data=None, classes=None):
        """The in-memory Dataset of a fit: classes from y (or given), the validation split
        held out (or given), standardised with the training split's statistics if asked."""
        config = self.config()
        dtype = parameter_dtype(config.dtype)
        x = arrays.features(X, dtype)
        labels = arrays.labels(y, len(x))
        classes, indices = arrays.fit_classes(labels, classes)
        if validation_data is None:
            seed, val_fraction = self.seed, self.val_fraction
            train, val = self._split(x, indices)
        else:
            seed = val_fraction = None
            train = Split(x, indices)
            val = self._given(validation_data, classes, dtype, x.shape[1], "validation")
        test = (None if test_data is None else
                self._given(test_data, classes, dtype, x.shape[1], "test"))
        scaler = None
        if self.standardize:  # on copies: a split may be the caller's X itself
            scaler = Standardizer.fit(train.x)
            train, val, test = (None if s is None else Split(scaler.apply(s.x.copy()), s.y)
                                for s in (train, val, test))
        return Dataset(IN_MEMORY, None, train, val, test, {}, seed, val_fraction,
                       classes=classes, scaler=scaler)

    @staticmethod
    def _given(data, classes, dtype, n_features, what):
        try:
            x_given, y_given = data
        except (TypeError, ValueError):
            raise InputError(f"{what}_data must be a pair (X, y)") from None
        x = arrays.features(x_given, dtype, n_features=n_features)
        y = arrays.label_indices(arrays.labels(y_given, len(x)), classes,
                                 f"{what}_data labels")
        return Split(x, y)

    def fit(self, X, y, validation_data=None, test_data=None, max_memory=None):
        """Train on X, y for `epochs` epochs (from the fitted weights with warm_start). The
        classes are y's distinct values. Validation accuracy (and early stopping) use
        validation_data if given, else val_fraction of X held out by a seed-determined
        permutation, as load_dataset splits a training file; test accuracy is measured on
        test_data if given. A run whose planned memory exceeds what is available, or
        max_memory bytes (an int, or a size such as "4GiB"), raises OutOfMemory before it
        allocates."""
        dataset = self._dataset(X, y, validation_data, test_data)
        return self.fit_dataset(dataset, max_memory=max_memory, initial=self._warm(dataset))

    def _warm(self, dataset):
        """The fitted model a warm start goes on from (None: a fresh start)."""
        if not (self.warm_start and hasattr(self, "model_")):
            return None
        if dataset.n_features != self.n_features_in_ or not np.array_equal(
                dataset.classes, self.classes_):
            raise InputError("warm_start needs the fitted model's features and classes: "
                             f"{self.n_features_in_} features, classes {self.classes_.tolist()}")
        return self.model_

    def fit_dataset(self, dataset, on_epoch=None, **options):
        """Train on a fastmlp Dataset (load_dataset); options go to fastmlp.train (save_path,
        checkpoint_every, resume, max_memory, initial)."""
        from .training.loop import train
        from .units import parse_size

        if options.get("max_memory") is not None:
            try:
                options["max_memory"] = parse_size(options["max_memory"])
            except ValueError as e:
                raise InputError(f"max_memory: {e}") from None
        config = self.config(IN_MEMORY if dataset.directory is None else dataset.name)
        self.__dict__.pop("_session", None)
        with self._progress(config.epochs) as show:
            def each(stats):
                show(stats)
                if on_epoch is not None:
                    on_epoch(stats)

            result = train(config, dataset, each, options=self.options(), **options)
        self._fitted(result.model, result.config, result.history, dataset.record(),
                     dataset.scaler)
        self.result_ = result
        self.best_epoch_ = result.best_epoch
        return self

    def partial_fit(self, X, y, classes=None):
        """Train one more epoch on X, y. Called again with the same data, the calls go on as one
        run: n calls give the weights that fit(epochs=n) gives (bit for bit; early stopping's
        restore of the best weights aside, which only fit does; the learning-rate schedule spans
        `epochs` epochs, as fit's). Data other than the previous call's starts a new run from
        the current weights (the optimizer's state afresh).
        classes: all the classes y will ever hold, on the first call (default: y's)."""
        from .runtime.threads import thread_limits
        from .training.session import Session

        config = self.config()
        fitted = hasattr(self, "model_")
        x = arrays.features(X, parameter_dtype(config.dtype),
                            n_features=self.n_features_in_ if fitted else None)
        labels = arrays.labels(y, len(x))
        key = hashlib.sha256(np.ascontiguousarray(x))
        key.update((labels.astype(str) if labels.dtype.kind == "O" else labels).tobytes())
        key = key.hexdigest()
        session = self.__dict__.get("_session")
        if session is None or session.key != key:
            known = self.classes_ if fitted else classes
            if fitted and classes is not None and not np.array_equal(np.unique(classes), known):
                raise InputError("classes differ from those of the first partial_fit call")
            dataset = self._dataset(x, labels, classes=known)
            initial = self.model_ if fitted else None
            with np.errstate(over="ignore", invalid="ignore"):
                session = Session(config, dataset, self.options(), initial=initial)
            session.key = key
            self._session = session
        with thread_limits(self.threads), np.errstate(over="ignore", invalid="ignore"):
            stats = session.epoch()
        if self.verbose:
            print(f"epoch {stats.epoch}: loss {stats.train_loss:.4f}, train "
                  f"{stats.train_acc:.2%}, val {stats.val_acc:.2%}", file=sys.stderr)
        self._fitted(session.model, session.config, session.history, session.dataset.record(),
                     session.dataset.scaler)
        return self

    def _progress(self, epochs):
        """A context giving the function that shows each epoch: a tqdm bar of epochs on stderr
        like the command line's with verbose, else nothing."""
        from contextlib import nullcontext

        if not self.verbose:
            return nullcontext(lambda stats: None)
        from contextlib import contextmanager

        from tqdm import tqdm

        @contextmanager
        def bar():
            with tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True) as t:
                def show(stats):
                    t.set_postfix(loss=f"{stats.train_loss:.4f}", train=f"{stats.train_acc:.2%}",
                                  val=f"{stats.val_acc:.2%}", refresh=False)
                    t.update()
                yield show
        return bar()

    def _fitted(self, model, config, history, record, scaler):
        """Set the fitted attributes from a trained model and its history."""
        from .data.classes import from_json

        self.model_, self.config_, self.history_ = model, config, history
        self.dataset_, self.scaler_ = record, scaler
        self.classes_ = from_json(record.get("classes"), model.sizes[-1])
        self.n_features_in_ = model.sizes[0]
        self.n_layers_ = len(model.sizes)
        self.n_outputs_ = model.sizes[-1]
        self.out_activation_ = "softmax"
        self.loss_curve_ = [e.train_loss for e in history]
        self.validation_scores_ = [e.val_acc for e in history]
        self.n_iter_ = len(history)

    # ------------------------------------------------------------------ using

    @property
    def coefs_(self):
        """The weight matrices, (n_in, n_out) each, as scikit-learn lays them out: views of the
        model's one flat parameter buffer (writing into them changes the model)."""
        return list(self._model().weights)

    @property
    def intercepts_(self):
        """The bias vectors (n_out,), views of the flat parameter buffer."""
        return list(self._model().biases)

    def _model(self):
        model = self.__dict__.get("model_")
        if model is None:
            raise NotFittedError("This MLPClassifier instance is not fitted yet. Call 'fit' "
                                 "with appropriate arguments before using this estimator.")
        return model

    def _inputs(self, X):
        """X checked and scaled as the model was trained: the floats it takes."""
        model = self._model()
        x = arrays.features(X, model.dtype, n_features=model.sizes[0])
        if self.__dict__.get("scaler_") is not None:
            x = self.scaler_.apply(x.copy() if x is X else x)
        return x

    def predict_proba(self, X):
        """(n, K) class probabilities, columns in the order of classes_."""
        return inference.predict_proba(self._model(), self._inputs(X))

    def predict(self, X):
        """The class of each row: values of classes_."""
        proba = self.predict_proba(X)  # first: NotFittedError before classes_ is looked up
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """The mean accuracy on X, y (weighted by sample_weight when given)."""
        predicted = self.predict(X)
        y = arrays.labels(y, len(predicted))
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, np.float64)
            if sample_weight.shape != (len(y),) or not np.isfinite(sample_weight).all() or \
                    (sample_weight < 0).any() or sample_weight.sum() <= 0:
                raise InputError(f"sample_weight must be {len(y)} finite weights >= 0 that do "
                                 f"not sum to 0, got shape {sample_weight.shape}")
        right = predicted == arrays.comparable(y, self.classes_)
        return float(np.average(right, weights=sample_weight))

    def save(self, path):
        """Write the fitted model (weights, settings, history, classes, standardisation, data
        checksums) atomically."""
        model = self._model()
        checkpoint.save(path, model, self.config_, [asdict(e) for e in self.history_],
                        self.dataset_, scaler=self.scaler_)

    def export(self, path):
        """Write the fitted model for other tools, in the format path's suffix names: .onnx,
        .safetensors or .pt (fastmlp.export)."""
        from .export import export

        export(self._model(), self.classes_, path, self.scaler_)

    @classmethod
    def load(cls, path):
        """A fitted classifier from a file written by save() or by fastmlp train --save."""
        from .training.result import EpochStats

        saved = checkpoint.load(path)
        clf = cls.from_config(saved.config)
        clf._fitted(saved.model, saved.config, [EpochStats(**e) for e in saved.history],
                    saved.dataset, saved.scaler)
        return clf

    def __getstate__(self):
        # A run in progress (partial_fit's) holds kernels' workspaces: not kept when pickled.
        state = dict(super().__getstate__() or {})
        state.pop("_session", None)
        return state

    def __repr__(self, N_CHAR_MAX=700):
        changed = {k: v for k, v in self.get_params().items()
                   if k != "layers" and not _same(v, DEFAULTS[k])}
        extra = "".join(f", {k}={v!r}" for k, v in changed.items())
        layers = self.layers
        layers = tuple(layers) if isinstance(layers, (list, tuple)) else layers
        return f"MLPClassifier(layers={layers!r}{extra})"


def _same(a, b):
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
