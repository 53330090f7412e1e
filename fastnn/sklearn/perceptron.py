"""``Perceptron``: Rosenblatt's rule (:class:`fastnn.Perceptron`) as a scikit-learn classifier.

Any two labels (strings, ints, bools): ``classes_`` holds them sorted, the first
plays 0 and the second 1 in the rule.  The rule's own arithmetic runs on the op
contract (``dense_forward`` with the ``"step"`` activation, ``sgd_update``).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

import fastnn

from .solvers import prediction_ops


class Perceptron(ClassifierMixin, BaseEstimator):
    """Binary perceptron: one step unit trained with Rosenblatt's error-driven rule.

    ``learning_rate`` and ``max_epochs`` as :class:`fastnn.Perceptron` (weights start
    at zero; training stops after the first epoch without a mistake, else at
    ``max_epochs`` with a ``ConvergenceWarning``); ``backend``: fastnn backend name or
    None.  Fitted: ``classes_`` (2,), ``coef_`` (1, n_features), ``intercept_`` (1,),
    ``n_iter_`` (epochs run), ``errors_`` (mistakes per epoch), ``converged_``.
    """

    _parameter_constraints: dict = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "backend": [None, str],
    }

    def __init__(self, learning_rate=1.0, max_epochs=100, backend=None):
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.backend = backend

    def fit(self, X, y):
        """Train on ``X: (n, n_features)`` and ``y`` with exactly two distinct labels."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes, y01 = np.unique(y, return_inverse=True)
        if len(classes) != 2:
            raise ValueError(
                "Only binary classification is supported. Perceptron is one unit: y must "
                f"hold exactly 2 classes, got "
                f"{len(classes)} class(es) {classes.tolist()!r}. For more classes use "
                "fastnn.sklearn.MLPClassifier."
            )
        rule = fastnn.Perceptron(
            learning_rate=float(self.learning_rate),
            max_epochs=int(self.max_epochs),
            backend=self.backend,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rule.fit(X, y01)
        for w in caught:  # the rule's own warning class becomes scikit-learn's
            is_conv = type(w.message).__name__ == "ConvergenceWarning"
            warnings.warn(
                str(w.message), ConvergenceWarning if is_conv else w.category, stacklevel=2
            )
        self.classes_ = classes
        self.rule_ = rule
        self.coef_ = rule.coef_.reshape(1, -1)
        self.intercept_ = np.array([rule.intercept_])
        self.n_iter_ = rule.n_epochs_
        self.errors_ = list(rule.errors_)
        self.converged_ = rule.converged_
        return self

    def decision_function(self, X):
        """``X @ coef_.T + intercept_`` ``(n,)``: positive means ``classes_[1]``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Z, _ = prediction_ops(self.backend).dense_forward(X, self.rule_.W_, self.rule_.b_, "linear")
        return Z[:, 0]

    def predict(self, X):
        """Labels ``(n,)``: ``classes_[1]`` where the unit fires (``Z >= 0``)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.classes_[self.rule_.predict(X)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # one unit: two classes only
        return tags
