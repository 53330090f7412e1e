"""Rosenblatt's perceptron: one step-activation unit and its error-driven learning rule.

For each sample ``x`` (in order) with target ``t`` in {0, 1}::

    y = step(x @ W + b)            # 1 if x @ W + b >= 0 else 0
    W += learning_rate * (t - y) * x
    b += learning_rate * (t - y)

An epoch is one pass over the samples; training stops after the first epoch
without a mistake (``converged_ = True``) or after ``max_epochs``.  The rule
converges exactly when the classes are linearly separable (AND, OR, NAND); on
XOR it cannot, and ``fit`` says so with a :class:`ConvergenceWarning`.

All arithmetic goes through the backend's ops: the prediction is
``dense_forward(..., "step")``; the update is ``sgd_update`` (momentum 0) with
the gradient of the per-sample loss ``(y - t)**2`` -- ``loss("mse", ...)`` gives
``dL/dy = 2 (y - t)``, ``dense_backward(..., "linear")`` turns it into
``dW = 2 (y - t) x`` and ``db = 2 (y - t)`` -- at half the learning rate, which is
Rosenblatt's rule exactly (the factors 2 and 1/2 are exact in binary floating point).
"""

from __future__ import annotations

import warnings

import numpy as np

from . import data_checks, dispatch
from .dispatch import validation as chk


class ConvergenceWarning(UserWarning):
    """The perceptron rule stopped at ``max_epochs`` with samples still misclassified."""


class Perceptron:
    """A single-unit perceptron for binary targets in {0, 1}.

    After ``fit``: ``coef_`` ``(n_features,)``, ``intercept_`` (float), ``W_``
    ``(n_features, 1)`` and ``b_`` ``(1,)`` (the same numbers as op arrays),
    ``errors_`` (misclassified samples per epoch), ``n_epochs_``, ``converged_``.
    Weights start at zero (the classic rule); computations use float64.
    """

    def __init__(self, learning_rate=1.0, max_epochs=100, backend=None):
        self.learning_rate = chk.check_scalar("learning_rate", learning_rate, low=0, low_open=True)
        self.max_epochs = chk.check_int("max_epochs", max_epochs, low=1)
        self.backend = dispatch.parse_backend(backend)
        self.dtype = np.dtype(np.float64)

    def _ops(self):
        return dispatch.get_ops(self.backend)

    @staticmethod
    def _check_targets(y, n):
        arr = data_checks.as_numeric("y", y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(f"y must be a 1-D array of 0/1 targets, got shape {arr.shape}")
        data_checks.check_finite("y", arr)
        if not np.isin(arr, (0, 1)).all():
            bad = arr[~np.isin(arr, (0, 1))][0]
            raise ValueError(f"Perceptron targets must be 0 or 1, found {bad.item()}")
        T = np.ascontiguousarray(arr, dtype=np.float64)[:, None]
        if len(T) != n:
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: [{n}, {len(T)}]"
            )
        return T

    def fit(self, X, y):
        """Train with Rosenblatt's rule; returns ``self``."""
        X = data_checks.check_2d("X", X, self.dtype)
        T = self._check_targets(y, len(X))
        ops = self._ops()
        n, d = X.shape
        W = np.zeros((d, 1))
        b = np.zeros(1)
        vel_W, vel_b = np.zeros_like(W), np.zeros_like(b)
        half_rate = self.learning_rate / 2
        errors = []
        converged = False
        for _ in range(self.max_epochs):
            mistakes = 0
            for i in range(n):
                x_i, t_i = X[i : i + 1], T[i : i + 1]
                Z, Y = ops.dense_forward(x_i, W, b, "step")
                if Y[0, 0] == t_i[0, 0]:
                    continue
                mistakes += 1
                _, dY = ops.loss("mse", Y, t_i)  # 2 (y - t)
                _, dW, db = ops.dense_backward(dY, x_i, W, Z, Y, "linear")
                ops.sgd_update(W, dW, vel_W, half_rate, 0.0)
                ops.sgd_update(b, db, vel_b, half_rate, 0.0)
            errors.append(mistakes)
            if mistakes == 0:
                converged = True
                break
        self.W_, self.b_ = W, b
        self.coef_ = W[:, 0].copy()
        self.intercept_ = float(b[0])
        self.errors_ = errors
        self.n_epochs_ = len(errors)
        self.converged_ = converged
        self.n_features_in_ = d
        if not converged:
            wrong = int(np.sum(self.predict(X) != T[:, 0]))
            warnings.warn(
                f"Perceptron did not converge in {self.max_epochs} epochs: {wrong} of {n} "
                "samples are still misclassified. The perceptron rule only converges when "
                "the two classes are linearly separable (XOR is not: use a hidden layer, "
                "e.g. fastnn.Sequential); otherwise raise max_epochs.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def predict(self, X) -> np.ndarray:
        """0/1 predictions ``(n,)`` (int64) for ``X: (n, n_features)``."""
        if not hasattr(self, "W_"):
            raise ValueError(
                "This Perceptron instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )
        X = data_checks.check_2d("X", X, self.dtype)
        data_checks.check_features(X, self.n_features_in_, "Perceptron")
        _, Y = self._ops().dense_forward(X, self.W_, self.b_, "step")
        return Y[:, 0].astype(np.int64)

    def __repr__(self) -> str:
        return (
            f"Perceptron(learning_rate={self.learning_rate}, max_epochs={self.max_epochs}, "
            f"backend={self.backend!r})"
        )
