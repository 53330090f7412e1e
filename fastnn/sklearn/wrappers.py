"""``SequentialClassifier`` / ``SequentialRegressor``: a hand-built model as an estimator.

The scikeras pattern: ``model`` is a callable returning a *compiled*
:class:`fastnn.Sequential`; it is called at every ``fit`` (so ``clone`` and grid
searches start from fresh weights).  Keyword arguments prefixed ``model__`` go to
that callable, ``fit__`` to ``Sequential.fit``, ``predict__`` to ``Sequential.predict``;
all of them are estimator parameters (``get_params``, ``set_params``, grids)::

    def build(hidden=32, n_features_in_=None, n_classes_=None, seed=None):
        model = fastnn.Sequential([fastnn.Dense(hidden, "relu", input_dim=n_features_in_),
                                   fastnn.Dense(n_classes_, "softmax")], seed=seed)
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    GridSearchCV(SequentialClassifier(build, epochs=20), {"model__hidden": [16, 64]})

The callable also receives, when its signature names them (or has ``**kwargs``),
``n_features_in_``, ``n_outputs_``, ``n_classes_`` (classifier) and ``seed`` (an
integer drawn from ``random_state``: weights become reproducible).
"""

from __future__ import annotations

import inspect
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

import fastnn

#: Prefixes of routed parameters: ``model__x`` goes to the ``model`` callable, etc.
ROUTES = ("model__", "fit__", "predict__")


class SequentialWrapper(BaseEstimator):
    """Shared parameters and ``fit`` of the two wrappers (see the module doc)."""

    _parameter_constraints: dict = {
        "model": [callable],
        "epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "validation_split": [Interval(Real, 0, 1, closed="left")],
        "verbose": [Interval(Integral, 0, 2, closed="both")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        model=None,
        *,
        epochs=1,
        batch_size=32,
        shuffle=True,
        validation_split=0.0,
        verbose=0,
        random_state=None,
        **kwargs,
    ):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.validation_split = validation_split
        self.verbose = verbose
        self.random_state = random_state
        for key, value in kwargs.items():  # stored unchecked; fit rejects unrouted names
            setattr(self, key, value)

    def _routed(self, prefix):
        """``{name: value}`` of the routed parameters ``prefix + name``."""
        return {k[len(prefix) :]: v for k, v in vars(self).items() if k.startswith(prefix)}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update({k: v for k, v in vars(self).items() if k.startswith(ROUTES)})
        return params

    def set_params(self, **params):
        # Routed names, and (as in __init__) unknown plain names, which fit then rejects.
        known = set(self._get_param_names())
        extra = [k for k in params if k.startswith(ROUTES) or ("__" not in k and k not in known)]
        for key, value in {k: params.pop(k) for k in extra}.items():
            setattr(self, key, value)
        return super().set_params(**params)

    def _check_keywords(self):
        """Extra ``__init__`` keywords must be routed (``model__``, ``fit__``, ``predict__``)."""
        known = set(self._get_param_names())
        for key in vars(self):
            if not (key in known or key.endswith("_") or key.startswith(("_", *ROUTES))):
                raise TypeError(
                    f"{type(self).__name__} got an unexpected keyword argument {key!r}; "
                    f"extra arguments must start with one of {', '.join(ROUTES)}"
                )

    def _build(self, meta):
        """Call ``model`` with its routed arguments and the metadata it names."""
        if self.model is None:
            raise ValueError(
                f"{type(self).__name__} needs model=<callable returning a compiled "
                "fastnn.Sequential>"
            )
        signature = inspect.signature(self.model).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in signature.values())
        kwargs = {k: v for k, v in meta.items() if takes_all or k in signature}
        kwargs.update(self._routed("model__"))
        net = self.model(**kwargs)
        if not isinstance(net, fastnn.Sequential):
            raise TypeError(f"model must return a fastnn.Sequential, got {type(net).__name__}")
        if net.optimizer is None or net.loss is None:
            raise ValueError("model must return a compiled Sequential: call compile() in it")
        return net

    def _fit_model(self, X, make_targets, meta):
        """Build a fresh model, train it on ``(X, make_targets(model))``, keep it in ``model_``."""
        self._check_keywords()
        rs = check_random_state(self.random_state)
        model_seed, fit_seed = (int(s) for s in rs.randint(0, 2**31 - 1, size=2))
        net = self._build({**meta, "seed": model_seed})
        history = net.fit(
            X,
            make_targets(net),
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            validation_split=self.validation_split,
            verbose=self.verbose,
            seed=fit_seed,
            **self._routed("fit__"),
        )
        self.model_ = net
        self.history_ = dict(history.history)

    def _outputs(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.model_.predict(X, **self._routed("predict__"))


class SequentialClassifier(ClassifierMixin, SequentialWrapper):
    """A compiled ``Sequential`` as a classifier (labels of any type, see the module doc).

    Targets handed to ``Sequential.fit`` follow the compiled loss: integer codes of
    ``classes_`` for ``sparse_categorical_crossentropy``, one-hot rows for
    ``categorical_crossentropy`` and ``mse`` with several output units, 0/1 for one
    output unit (``binary_crossentropy``).  Fitted: ``classes_``, ``n_classes_``,
    ``model_``, ``history_``, ``n_features_in_``.
    """

    def fit(self, X, y):
        self._validate_params()
        X, y = validate_data(self, X, y)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        self.n_classes_ = len(self.classes_)
        if self.n_classes_ < 2:
            raise ValueError(
                f"y has only one class ({self.classes_[0]!r}); a classifier needs at least "
                "2 classes"
            )
        codes = encoder.transform(y)
        meta = {
            "n_features_in_": X.shape[1],
            "n_classes_": self.n_classes_,
            "n_outputs_": 1 if self.n_classes_ == 2 else self.n_classes_,
        }
        self._fit_model(X, lambda net: self._targets(net, codes), meta)
        return self

    def _targets(self, net, codes):
        """``codes`` (integers into ``classes_``) in the format ``net``'s loss trains on."""
        units = net.layers[-1].units
        if fastnn.losses.as_object(net.loss).loss_name == "sparse_categorical_crossentropy":
            return codes  # the name or SparseCategoricalCrossentropy(from_logits=...)
        if units == 1:
            return codes.astype(np.float64)
        if units != self.n_classes_:
            raise ValueError(
                f"the model's last layer has {units} units but y has {self.n_classes_} "
                "classes: use one unit per class (or one unit for two classes)"
            )
        return np.eye(units)[codes]

    def predict_proba(self, X):
        """``(n, n_classes)`` probabilities (one output unit: ``[1 - p, p]``)."""
        P = self._outputs(X)
        if P.shape[1] == 1:
            return np.hstack([1 - P, P])
        return P

    def predict(self, X):
        """Labels ``(n,)`` from ``classes_``: the most probable class."""
        P = self.predict_proba(X)
        return self.classes_[np.argmax(P, axis=1)]


class SequentialRegressor(RegressorMixin, SequentialWrapper):
    """A compiled ``Sequential`` as a regressor (``y: (n,)`` or ``(n, n_outputs)``).

    Fitted: ``model_``, ``history_``, ``n_outputs_``, ``n_features_in_``.
    """

    def fit(self, X, y):
        self._validate_params()
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        T = y.reshape(len(y), -1)
        self.n_outputs_ = T.shape[1]
        meta = {"n_features_in_": X.shape[1], "n_outputs_": self.n_outputs_}
        self._fit_model(X, lambda net: T, meta)
        return self

    def predict(self, X):
        """Predictions ``(n,)`` (``(n, n_outputs)`` for several targets)."""
        Y = self._outputs(X)
        return Y[:, 0] if Y.shape[1] == 1 else Y
