"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's estimators, trained by fastnn.

The structure, parameters, defaults, attributes and stopping rules are those of
``sklearn/neural_network/_multilayer_perceptron.py``; the arithmetic runs on the
op contract (``fastnn.get_ops(backend)``): the stochastic solvers call the fused
``train_batches`` over several epochs at once (:mod:`fastnn.sklearn.solvers`),
``lbfgs`` runs scipy's L-BFGS-B on the contract's forward/backward ops.

Two parameters beyond scikit-learn's:

* ``backend``: a fastnn backend name (``"python"``, ``"numpy"``, ``"numba"``,
  ``"auto"``), or None for the current default (``fastnn.set_backend``).
* ``dtype``: None (default) follows scikit-learn -- float32 input trains in float32,
  anything else in float64 -- so the numbers match scikit-learn's; ``"float32"``
  casts every input to float32 (faster, about 1e-7 relative precision), ``"float64"``
  to float64.

``fit`` and ``partial_fit`` take ``sample_weight`` with scikit-learn's meaning: each
mini-batch's loss and L2 term are divided by the batch's weight sum, and the early
stopping hold-out keeps its rows' weights for the validation score.  Weights must be
``>= 0`` (scikit-learn's MLP accepts negative ones, for which its objective is
unbounded below).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from fastnn.dispatch import get_ops

from . import solvers

STOCHASTIC_SOLVERS = ("sgd", "adam")


class BaseMultilayerPerceptron(BaseEstimator):
    """Shared parameters, ``fit`` steps and forward pass of the two estimators."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": [None, str],
        "dtype": [
            None,
            StrOptions({"float32", "float64"}),
            Options(type, {np.float32, np.float64}),
        ],
    }

    def _store_params(self, params):
        """Store every ``__init__`` argument unchanged (validation happens in ``fit``)."""
        for name in self._get_param_names():
            setattr(self, name, params[name])

    # ------------------------------------------------------------------ fit steps
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X: (n_samples, n_features)`` and ``y``; returns ``self``.

        ``sample_weight: (n_samples,)`` (None: all ones), finite, ``>= 0``, not all zero.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental):
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._check_weights(sample_weight, X)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        self.n_outputs_ = Y.shape[1]
        layer_units = [X.shape[1], *hidden, self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, layer_units, X.dtype)
        self._use_params(layer_units, X.dtype)
        ops = get_ops(self.backend)
        if self.solver in STOCHASTIC_SOLVERS:
            self._fit_stochastic(ops, X, Y, sample_weight, incremental)
        else:
            self._fit_lbfgs(ops, X, Y, sample_weight)
        if not all(np.isfinite(A).all() for A in self.coefs_ + self.intercepts_):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        return self

    @staticmethod
    def _check_weights(sample_weight, X):
        """scikit-learn's checks of ``sample_weight`` (shape, finite, not all zero), and
        ``>= 0``; float64 ``(n,)``, or None when every weight is 1 (the unweighted fit).

        Equal weights other than 1 do not cancel: scikit-learn divides the L2 term by
        the batch's weight sum, so they scale ``alpha`` by ``1 / weight``.
        """
        if sample_weight is None:
            return None
        w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        return None if np.all(w == 1.0) else w

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _x_dtype(self):
        return (np.float64, np.float32) if self.dtype is None else np.dtype(self.dtype).type

    def _initialize(self, Y, layer_units, dtype):
        """First fit: scikit-learn's output activation, initial weights and history."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            W, b = self._init_coef(fan_in, fan_out, dtype)
            self.coefs_.append(W)
            self.intercepts_.append(b)
        self._best_coefs = [W.copy() for W in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _init_coef(self, fan_in, fan_out, dtype):
        """Glorot uniform ``+-sqrt(6 / (fan_in + fan_out))`` (2 instead of 6 for logistic)."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        W = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
        b = self._random_state.uniform(-bound, bound, fan_out)
        return W.astype(dtype, copy=False), b.astype(dtype, copy=False)

    def _use_params(self, layer_units, dtype):
        """Make ``coefs_``/``intercepts_`` the contiguous, writable arrays training updates.

        Arrays assigned by the user (``warm_start``) are used as they are when they
        already are such arrays, copied otherwise.
        """
        shapes = list(zip(layer_units[:-1], layer_units[1:]))
        if len(self.coefs_) != len(shapes) or len(self.intercepts_) != len(shapes):
            raise ValueError(
                f"coefs_ and intercepts_ must hold {len(shapes)} layers for "
                f"hidden_layer_sizes={self.hidden_layer_sizes}; got {len(self.coefs_)} and "
                f"{len(self.intercepts_)}"
            )
        Ws = [np.require(W, dtype, ["C", "W", "A"]) for W in self.coefs_]
        bs = [np.require(b, dtype, ["C", "W", "A"]) for b in self.intercepts_]
        for l, (shape, W, b) in enumerate(zip(shapes, Ws, bs)):
            if W.shape != shape or b.shape != shape[1:]:
                raise ValueError(
                    f"coefs_[{l}] and intercepts_[{l}] must have shapes {shape} and "
                    f"{shape[1:]} for these data, got {W.shape} and {b.shape}"
                )
        self.coefs_, self.intercepts_ = Ws, bs

    # ------------------------------------------------------------------ solvers
    def _fit_lbfgs(self, ops, X, Y, sample_weight):
        prob = solvers.make_problem(X, Y, self.out_activation_, sample_weight)
        acts = solvers.train_activations(self.activation, self.n_layers_ - 1)
        self.n_iter_, self.loss_ = solvers.fit_lbfgs(
            ops, self.coefs_, self.intercepts_, acts, prob, self
        )

    def _fit_stochastic(self, ops, X, Y, sample_weight, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = solvers.Optimizer(self, self.coefs_, self.intercepts_)
        elif self._optimizer.state[0][0].dtype != X.dtype:
            self._optimizer.as_dtype(X.dtype)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_train, Y_train, w_train, val = self._split(X, Y, sample_weight)
        n_samples = X_train.shape[0]
        prob = solvers.make_problem(X_train, Y_train, self.out_activation_, w_train)
        acts = solvers.train_activations(self.activation, self.n_layers_ - 1)
        try:
            batch_size = self._batch_size(n_samples)
            self._run_epochs(ops, prob, acts, batch_size, incremental, val)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _split(self, X, Y, sample_weight):
        """``(X_train, Y_train, w_train, val)``: scikit-learn's hold-out for early stopping,
        ``val = (X_val, y_val, w_val)`` (None without early stopping)."""
        if not self.early_stopping:
            return X, Y, sample_weight, None
        stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
        parts = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        X_train, X_val, Y_train, Y_val = parts[:4]
        w_train, w_val = parts[4:] if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        if is_classifier(self):
            Y_val = self._label_binarizer.inverse_transform(Y_val)
        return X_train, Y_train, w_train, (X_val, Y_val, w_val)

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than "
                "sample size. It is going to be clipped",
                stacklevel=4,
            )
        return int(np.clip(self.batch_size, 1, n_samples))

    def _run_epochs(self, ops, prob, acts, batch_size, incremental, val):
        """scikit-learn's epoch loop, several epochs per ``train_batches`` call.

        A call runs as many epochs as cannot reach a stopping decision
        (:func:`solvers.fusable_epochs`); the per-epoch bookkeeping then runs over the
        returned losses exactly as scikit-learn's loop would, and a decision can only
        fall on a call's last epoch.  Early stopping (a validation score per epoch, and
        the best weights kept) and ``partial_fit`` run one epoch per call.
        """
        n = len(prob.X)
        sample_idx = np.arange(n)
        self.n_iter_ = 0
        while self.n_iter_ < self.max_iter:
            n_epochs = 1
            if not (incremental or self.early_stopping):
                n_epochs = solvers.fusable_epochs(
                    self.n_iter_no_change, self._no_improvement_count,
                    self.max_iter - self.n_iter_, n,
                )  # fmt: skip
            order, sample_idx = self._epoch_orders(n_epochs, sample_idx)
            losses = solvers.train_epochs(
                ops, self.coefs_, self.intercepts_, acts, prob, order, batch_size,
                self._optimizer, float(self.alpha), self.t_,
            )  # fmt: skip
            for e, loss in enumerate(losses):
                stop = self._end_epoch(loss, n, val)
                assert not stop or e == len(losses) - 1, "a fused call skipped a stop"
            if stop or incremental:
                return
            if self.n_iter_ == self.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                    "and the optimization hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=5,
                )

    def _epoch_orders(self, n_epochs, sample_idx):
        """Row orders of the next epochs, drawn as scikit-learn's ``shuffle`` draws them."""
        if not self.shuffle:
            return np.tile(sample_idx, n_epochs), sample_idx
        parts = []
        for _ in range(n_epochs):
            perm = np.arange(len(sample_idx))
            self._random_state.shuffle(perm)
            sample_idx = sample_idx[perm]
            parts.append(sample_idx)
        return np.concatenate(parts), sample_idx

    def _end_epoch(self, loss, n_samples, val):
        """scikit-learn's bookkeeping after one epoch; True to stop."""
        self.n_iter_ += 1
        self.loss_ = float(loss)
        self.t_ += n_samples
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
        self._update_no_improvement_count(val)
        self._optimizer.iteration_ends(self.t_)
        if self._no_improvement_count > self.n_iter_no_change:
            what = "Validation score" if self.early_stopping else "Training loss"
            msg = (
                f"{what} did not improve more than tol={self.tol:f} for "
                f"{self.n_iter_no_change} consecutive epochs."
            )
            if self._optimizer.trigger_stopping(msg, self.verbose):
                return True
            self._no_improvement_count = 0
        return False

    def _update_no_improvement_count(self, val):
        if self.early_stopping:
            X_val, y_val, w_val = val
            score = self._score(X_val, y_val, sample_weight=w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [W.copy() for W in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ------------------------------------------------------------------ predicting
    def _forward_pass_fast(self, X, check_input=True):
        """The output layer's activations ``(n, n_outputs_)`` (through ``dense_forward``)."""
        if check_input:
            X = validate_data(self, X, reset=False, dtype=self._x_dtype())
        dtype = np.asarray(self.coefs_[0]).dtype
        Ws = [np.asarray(W, dtype) for W in self.coefs_]
        bs = [np.asarray(b, dtype) for b in self.intercepts_]
        acts = solvers.train_activations(self.activation, len(Ws))
        acts[-1] = solvers.OUT_ACTIVATIONS[self.out_activation_]
        ops = solvers.prediction_ops(self.backend)
        _, As = solvers.forward(ops, Ws, bs, acts, np.asarray(X, dtype))
        return As[-1]

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def _check_solver(self):
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    def _partial_fit_validation(self):
        # Parameters are validated on the first call only, as scikit-learn does.
        if not hasattr(self, "coefs_"):
            self._validate_params()


COMMON_DOC = """
    Parameters, defaults and meaning are scikit-learn's ``{name}`` (see its
    documentation), plus ``backend`` (fastnn backend name, None for the current
    default) and ``dtype`` (None: float32 input trains in float32, anything else in
    float64, as scikit-learn; or ``"float32"``/``"float64"`` to cast every input).
    Fitted attributes: ``coefs_`` (``W`` per layer, ``(n_in, n_out)``),
    ``intercepts_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
    ``validation_scores_``, ``best_validation_score_``, ``t_``, ``n_iter_``,
    ``n_layers_``, ``n_outputs_``, ``out_activation_``, ``n_features_in_``,
    ``feature_names_in_``{extra}.  Assigning ``coefs_``/``intercepts_`` and fitting
    with ``warm_start=True`` continues from the assigned weights.  ``fit`` and
    ``partial_fit`` take ``sample_weight`` (scikit-learn's meaning; weights ``>= 0``).
"""


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    __doc__ = "Multi-layer perceptron classifier (log loss), trained by fastnn.\n" + (
        COMMON_DOC.format(name="MLPClassifier", extra=", ``classes_``")
    )

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend=None,
        dtype=None,
    ):
        self._store_params(locals())

    def _validate_input(self, X, y, incremental, reset):
        """Checked ``X`` and the label-binarized targets (scikit-learn's rules for ``classes_``)."""
        X, y = validate_data(self, X, y, multi_output=True, dtype=self._x_dtype(), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, self._label_binarizer.transform(y).astype(bool)

    def predict(self, X):
        """Class labels ``(n,)`` (``(n, n_classes)`` indicators for multilabel targets)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        Y = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            Y = Y.ravel()
        return self._label_binarizer.inverse_transform(Y)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)`` (weighted by ``sample_weight``, as :meth:`fit`);
        ``classes`` (all labels) is required on the first call."""
        self._partial_fit_validation()
        if self._first_partial_fit(classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _first_partial_fit(self, classes):
        """True on the first ``partial_fit`` (sets ``classes_``); checks ``classes`` after."""
        known = getattr(self, "classes_", None)
        if known is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is None:
            return False
        if known is not None:
            if not np.array_equal(known, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to "
                    f"partial_fit, was: {known!r}"
                )
            return False
        self.classes_ = unique_labels(classes)
        return True

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        P = self.predict_proba(X)
        return np.log(P, out=P)

    def predict_proba(self, X):
        """Probabilities ``(n, n_classes)``, columns in the order of ``classes_``."""
        check_is_fitted(self)
        Y = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            Y = Y.ravel()
        if Y.ndim == 1:
            return np.vstack([1 - Y, Y]).T
        return Y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    __doc__ = "Multi-layer perceptron regressor (squared error), trained by fastnn.\n" + (
        COMMON_DOC.format(name="MLPRegressor", extra="")
        + """
    ``loss="poisson"`` (scikit-learn's exp output) is refused: the op contract has no
    exp activation yet.
"""
    )

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend=None,
        dtype=None,
    ):
        self._store_params(locals())

    def _validate_input(self, X, y, incremental, reset):
        if self.loss != "squared_error":
            raise ValueError(
                f"loss={self.loss!r} is not supported by fastnn.sklearn.MLPRegressor: the op "
                "contract has no exp output activation yet. Use loss='squared_error', or "
                "scikit-learn's MLPRegressor for a Poisson loss."
            )
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=self._x_dtype(), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def predict(self, X):
        """Predictions ``(n,)``, or ``(n, n_outputs)`` for several targets."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        Y = self._forward_pass_fast(X, check_input=check_input)
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)`` (weighted by ``sample_weight``, as :meth:`fit`)."""
        self._partial_fit_validation()
        return self._fit(X, y, sample_weight, incremental=True)
