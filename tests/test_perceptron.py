"""Rosenblatt's perceptron: logic gates, honest non-convergence, and its math through ops."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import Perceptron
from fastnn.perceptron import ConvergenceWarning

BACKENDS = fastnn.available_backends()
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
GATES = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "nand": [1, 1, 1, 0]}


def rosenblatt_by_hand(X, y, lr, max_epochs):
    """Independent reference: the rule written out on Python floats."""
    w = [0.0] * len(X[0])
    b = 0.0
    errors = []
    for _ in range(max_epochs):
        mistakes = 0
        for x, t in zip(X.tolist(), y):
            out = 1 if sum(wi * xi for wi, xi in zip(w, x)) + b >= 0 else 0
            if out != t:
                mistakes += 1
                w = [wi + lr * (t - out) * xi for wi, xi in zip(w, x)]
                b += lr * (t - out)
        errors.append(mistakes)
        if mistakes == 0:
            break
    return w, b, errors


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gates_are_learned_exactly(backend, gate):
    y = GATES[gate]
    p = Perceptron(backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p.fit(X, y)
    np.testing.assert_array_equal(p.predict(X), y)
    assert p.converged_ and p.errors_[-1] == 0 and p.n_epochs_ == len(p.errors_)
    w, b, errors = rosenblatt_by_hand(X, y, 1.0, 100)
    assert p.errors_ == errors
    np.testing.assert_array_equal(p.coef_, w)
    assert p.intercept_ == b


def test_and_first_epoch_by_hand():
    """From zero weights, step(0) = 1: (0,0) fires wrongly (b -> -1); (0,1), (1,0) are
    right; (1,1) fails to fire (w -> (1, 1), b -> 0): 2 mistakes in epoch 1."""
    p = Perceptron(max_epochs=1)
    with pytest.warns(ConvergenceWarning):
        p.fit(X, GATES["and"])
    assert p.errors_ == [2]
    np.testing.assert_array_equal(p.coef_, [1.0, 1.0])
    assert p.intercept_ == 0.0


@pytest.mark.parametrize("lr", [0.1, 0.25, 3.0])
def test_learning_rate_matches_the_rule(lr):
    p = Perceptron(learning_rate=lr, backend="numpy").fit(X, GATES["nand"])
    w, b, errors = rosenblatt_by_hand(X, GATES["nand"], lr, 100)
    assert p.errors_ == errors
    np.testing.assert_allclose(p.coef_, w, rtol=1e-15)
    np.testing.assert_allclose(p.intercept_, b, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_xor_reports_non_convergence(backend):
    p = Perceptron(max_epochs=25, backend=backend)
    with pytest.warns(
        ConvergenceWarning, match="did not converge in 25 epochs.*linearly separable"
    ):
        p.fit(X, [0, 1, 1, 0])
    assert p.converged_ is False
    assert p.n_epochs_ == 25 and len(p.errors_) == 25 and min(p.errors_) > 0
    assert np.sum(p.predict(X) != [0, 1, 1, 0]) >= 1


def test_math_goes_through_ops(monkeypatch):
    impl = fastnn.get_ops("python").impl
    calls = []
    for name in ("dense_forward", "loss", "dense_backward", "sgd_update"):
        original = getattr(type(impl), name)

        def spy(self, *args, _name=name, _original=original):
            calls.append((_name, [a for a in args if isinstance(a, str)]))
            return _original(self, *args)

        monkeypatch.setattr(type(impl), name, spy)
    p = Perceptron(backend="python").fit(X, GATES["or"])
    names = {c[0] for c in calls}
    assert names == {"dense_forward", "loss", "dense_backward", "sgd_update"}
    assert all(args == ["step"] for n, args in calls if n == "dense_forward")
    calls.clear()
    p.predict(X)
    assert calls == [("dense_forward", ["step"])]


def test_larger_linearly_separable_set():
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(200, 5))
    y = (Xs @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) > 0.3).astype(int)
    p = Perceptron(max_epochs=1000, backend="numpy").fit(Xs, y)
    assert p.converged_
    np.testing.assert_array_equal(p.predict(Xs), y)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: Perceptron(learning_rate=0), ValueError, "learning_rate must be > 0"),
        (lambda: Perceptron(learning_rate=-1), ValueError, "learning_rate must be > 0"),
        (lambda: Perceptron(max_epochs=0), ValueError, "max_epochs must be >= 1"),
        (lambda: Perceptron(max_epochs=2.5), TypeError, "max_epochs must be an integer"),
        (lambda: Perceptron(backend="gpu"), ValueError, "unknown backend 'gpu'"),
        (lambda: Perceptron().fit(X, [0, 1, 2, 1]), ValueError, "targets must be 0 or 1, found 2"),
        (lambda: Perceptron().fit(X, [0, 1, 1]), ValueError, r"inconsistent.*\[4, 3\]"),
        (lambda: Perceptron().fit(X[:, 0], [0, 1, 1, 0]), ValueError, "Expected 2D array"),
        (lambda: Perceptron().fit(X * np.nan, [0, 1, 1, 0]), ValueError, "NaN"),
        (lambda: Perceptron().predict(X), ValueError, "not fitted yet"),
        (
            lambda: Perceptron().fit(X, GATES["or"]).predict(np.ones((2, 3))),
            ValueError,
            "X has 3 features, but Perceptron is expecting 2 features",
        ),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
