"""The ``sklearn`` regime's workload: one ``fit`` of an MLP classifier.

``fastnn.sklearn.MLPClassifier`` (on a fastnn backend, float32) against
scikit-learn's ``MLPClassifier`` given float32 input, at the same
hyper-parameters (Adam, ``learning_rate_init=1e-3``, ``batch_size="auto"``,
``alpha=1e-4``, shuffled epochs, one seed).  ``tol=0`` and
``n_iter_no_change=max_iter`` make both run every epoch, so the two fits do the
same work; the test accuracy of each is reported beside its time (same accuracy,
not just the same epochs).  Features are standardized on the training split.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .workloads import Unavailable, backend_unavailable_reason, epoch_flops

#: scikit-learn's ``batch_size="auto"``: ``min(200, n_samples)``.
AUTO_BATCH = 200

#: Rows of the training split of the ``make_classification`` problem (test: 10,000 more).
CLASSIFICATION_ROWS = 50_000


@dataclass(frozen=True)
class SklearnCase:
    """One fit: data set, hidden layer sizes, epochs (``quick_epochs`` with ``--quick``),
    and the kind of target it carries (``overhead``- or ``matrix``-bound)."""

    name: str
    data: str
    hidden: tuple[int, ...]
    epochs: int
    quick_epochs: int
    bound: str


SKLEARN_CASES: tuple[SklearnCase, ...] = (
    SklearnCase("digits-h64", "digits", (64,), 200, 50, "overhead"),
    SklearnCase("breast-cancer-h64", "breast_cancer", (64,), 200, 50, "overhead"),
    SklearnCase("50k-h100", "classification", (100,), 20, 4, "matrix"),
    SklearnCase("50k-h256-128", "classification", (256, 128), 10, 2, "matrix"),
)

#: Runners of the regime: fastnn's backends, then scikit-learn itself.
SKLEARN_RUNNERS: tuple[str, ...] = ("numba", "numpy", "sklearn")


def sklearn_data(data: str, rows: int | None = None):
    """``(X_train, X_test, y_train, y_test, n_classes)`` in float32, standardized.

    ``data``: ``digits`` (1,797 x 64), ``breast_cancer`` (569 x 30), or
    ``classification`` (``make_classification``: ``rows`` (default 50,000) training
    rows plus 10,000 test rows, 40 features, 20 informative, 3 classes).
    Small data sets are split 75/25, stratified, with a fixed seed.
    """
    from sklearn.datasets import load_breast_cancer, load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if data == "classification":
        n_train = rows or CLASSIFICATION_ROWS
        X, y = make_classification(n_train + 10_000, 40, n_informative=20, n_classes=3,
                                   random_state=0)  # fmt: skip
        X_train, X_test, y_train, y_test = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
    elif data in ("digits", "breast_cancer"):
        X, y = (load_digits if data == "digits" else load_breast_cancer)(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=0
        )
    else:
        raise ValueError(f"unknown data set {data!r}; choose digits, breast_cancer, classification")
    scaler = StandardScaler().fit(X_train)
    X_train = scaler.transform(X_train).astype(np.float32)
    X_test = scaler.transform(X_test).astype(np.float32)
    return X_train, X_test, y_train, y_test, len(np.unique(y_train))


def fit_flops(n_rows: int, n_features: int, hidden, n_classes: int, epochs: int) -> float:
    """Matrix-product FLOPs of ``epochs`` training epochs (forward and backward, no
    input gradient for the first layer): the numerator of the GEMM floor.  A binary
    problem has one output unit (scikit-learn's logistic output)."""
    return epochs * epoch_flops(n_rows, fit_dims(n_features, hidden, n_classes))


def fit_dims(n_features: int, hidden, n_classes: int) -> tuple[int, ...]:
    """Layer widths of the classifier (one output unit for a binary problem)."""
    return (n_features, *hidden, 1 if n_classes == 2 else n_classes)


def _estimator(runner: str, hidden, epochs: int, seed: int):
    params = dict(hidden_layer_sizes=tuple(hidden), max_iter=epochs, n_iter_no_change=epochs,
                  tol=0.0, random_state=seed)  # fmt: skip
    if runner == "sklearn":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(**params)
    reason = backend_unavailable_reason(runner)
    if reason:
        raise Unavailable(reason)
    try:
        from fastnn.sklearn import MLPClassifier
    except ImportError as exc:
        raise Unavailable(f"fastnn.sklearn not importable ({exc})") from exc
    return MLPClassifier(backend=runner, dtype="float32", **params)


def sklearn_fit_call(
    runner: str, data: str, hidden, epochs: int, rows: int | None = None, seed: int = 0
) -> Callable[[], object]:
    """A callable running one full ``fit`` of ``runner``'s ``MLPClassifier``.

    ``runner``: a fastnn backend or ``sklearn``.  The callable's ``info()`` gives
    the last fit's test accuracy (``score``) and ``n_iter_``.  A fastnn backend
    whose first fit raises (e.g. ``NotImplementedError``: training ops it lacks)
    raises :class:`Unavailable` with that reason instead, so the runner shows as
    ``n/a (reason)``; a later failure propagates.
    """
    from sklearn.exceptions import ConvergenceWarning

    X, X_test, y, y_test, _ = sklearn_data(data, rows)
    est = _estimator(runner, hidden, epochs, seed)

    calls = [0]

    def fit():
        calls[0] += 1
        with warnings.catch_warnings():
            # max_iter is reached on purpose: every epoch runs
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                est.fit(X, y)
            except Exception as exc:
                if runner == "sklearn" or calls[0] > 1:
                    raise
                # the first fit of a fastnn backend failing means the backend cannot
                # train these estimators here (e.g. training-op keywords it lacks yet)
                why = str(exc).split("\n")[0]
                raise Unavailable(f"fit raised {type(exc).__name__}: {why}") from exc

    def info() -> dict:
        return {"score": float(est.score(X_test, y_test)), "n_iter": int(est.n_iter_)}

    fit.info = info
    return fit
