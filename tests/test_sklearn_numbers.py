"""fastnn.sklearn's MLPs against scikit-learn itself: the same numbers, the same quality.

Reference values come from scikit-learn's ``MLPClassifier``/``MLPRegressor`` run
side by side (pure NumPy, float64).  Tolerances: 1e-9 relative on weights and
losses in float64 (the computations differ only in summation order); quality: the
mean test score over 3 seeds within 0.01 of scikit-learn's.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    make_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data
from threadpoolctl import threadpool_limits

from fastnn.sklearn import MLPClassifier, MLPRegressor

BACKENDS = ["python", "numpy", "numba"]
FAST_BACKENDS = ["numpy", "numba"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def rel_err(got, want):
    """max |got - want| / max |want| over a list of arrays."""
    return max(np.max(np.abs(g - w)) / np.max(np.abs(w)) for g, w in zip(got, want))


def small_data(kind, seed=0):
    """(X, y) small enough for the pure-Python backend: 60 rows, 6 features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 6))
    if kind == "multiclass":
        return X, np.argmax(X[:, :3] + 0.3 * rng.normal(size=(60, 3)), axis=1)
    if kind == "binary":
        return X, np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    if kind == "multilabel":
        return X, (X[:, :3] > 0).astype(int)
    if kind == "regression":
        return X, X @ rng.normal(size=6) + 0.1 * rng.normal(size=60)
    return X, np.c_[X @ rng.normal(size=6), np.tanh(X[:, 0])]


def warm_pair(est_cls, sk_cls, X, y, seed, **params):
    """Both estimators after a 1-epoch fit, then set to the same random weights."""
    pair = []
    for cls, extra in ((sk_cls, {}), (est_cls, {"backend": params.pop("backend")})):
        est = cls(warm_start=True, max_iter=1, shuffle=False, **params, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        pair.append(est)
    rng = np.random.default_rng(seed)
    for W in pair[0].coefs_ + pair[0].intercepts_:
        W[...] = rng.uniform(-0.5, 0.5, size=W.shape)
    pair[1].coefs_ = [W.copy() for W in pair[0].coefs_]
    pair[1].intercepts_ = [b.copy() for b in pair[0].intercepts_]
    return pair


SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0, learning_rate_init=0.1),
    "sgd-momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "sgd-nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam", learning_rate_init=0.01),
}


def estimator_classes(kind):
    """(fastnn's, scikit-learn's) estimator class for a ``small_data`` kind."""
    if kind in ("regression", "multioutput"):
        return MLPRegressor, SkMLPRegressor
    return MLPClassifier, SkMLPClassifier


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize(
    "kind", ["multiclass", "binary", "multilabel", "regression", "multioutput"]
)
def test_one_epoch_matches_scikit_learn(backend, solver, kind):
    """One epoch from the same assigned weights (warm_start): scikit-learn's weights."""
    X, y = small_data(kind)
    est_cls, sk_cls = estimator_classes(kind)
    params = dict(hidden_layer_sizes=(5, 4), activation="tanh", alpha=0.01, batch_size=16)
    sk, est = warm_pair(est_cls, sk_cls, X, y, 1, backend=backend, **params, **SOLVERS[solver])
    for e in (sk, est):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            e.fit(X, y)
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-9
    if kind != "multioutput":  # documented: the L2 term of loss_ counts 1/k for k outputs
        assert est.loss_ == pytest.approx(sk.loss_, rel=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_loss_curve_over_five_epochs(backend, solver, activation):
    """Same initial weights from random_state, 5 fused epochs: scikit-learn's loss_curve_."""
    X, y = small_data("multiclass", seed=2)
    params = dict(
        hidden_layer_sizes=(7,), activation=activation, alpha=1e-3, batch_size=13,
        max_iter=5, shuffle=False, random_state=3, **SOLVERS[solver],
    )  # fmt: skip
    sk = SkMLPClassifier(**params).fit(X, y)
    est = MLPClassifier(backend=backend, **params).fit(X, y)
    np.testing.assert_allclose(est.loss_curve_, sk.loss_curve_, rtol=1e-9)
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-9
    assert est.n_iter_ == sk.n_iter_ == 5 and est.t_ == sk.t_


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam", tol=1e-3, n_iter_no_change=3),
        dict(solver="sgd", learning_rate="adaptive", tol=1e-2, n_iter_no_change=2),
        dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, power_t=0.3),
        dict(solver="adam", early_stopping=True, validation_fraction=0.2),
    ],
    ids=["adam-tol", "sgd-adaptive", "sgd-invscaling", "early-stopping"],
)
def test_stopping_and_schedules_match_scikit_learn(backend, params):
    """Shuffled, fused epochs stop (or lower the rate) at scikit-learn's epoch exactly."""
    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16
    y = y[:400]
    common = dict(hidden_layer_sizes=(12,), max_iter=120, random_state=0, **params)
    sk = SkMLPClassifier(**common).fit(X, y)
    est = MLPClassifier(backend=backend, **common).fit(X, y)
    assert est.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(est.loss_curve_, sk.loss_curve_, rtol=1e-9)
    if params.get("early_stopping"):
        np.testing.assert_allclose(est.validation_scores_, sk.validation_scores_)
        assert est.best_validation_score_ == sk.best_validation_score_
    else:
        assert est.best_loss_ == pytest.approx(sk.best_loss_, rel=1e-9)
    assert rel_err(est.coefs_, sk.coefs_) < 1e-9


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multioutput"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lbfgs_matches_scikit_learn(backend, kind, weighted):
    """A few L-BFGS iterations on the contract's loss and gradient: scikit-learn's
    result, also on the weighted objective (the L2 term over the weight sum)."""
    X, y = small_data(kind, seed=4)
    est_cls, sk_cls = estimator_classes(kind)
    w = uneven_weights(len(X), seed=4) if weighted else None
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.1, max_iter=8, random_state=5)
    sk = fit_quietly(sk_cls(**params), X, y, sample_weight=w)
    est = fit_quietly(est_cls(backend=backend, **params), X, y, sample_weight=w)
    assert est.n_iter_ == sk.n_iter_
    assert est.loss_ == pytest.approx(sk.loss_, rel=1e-9)
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-8


def test_partial_fit_matches_scikit_learn():
    """Several partial_fit calls (optimizer state kept between them): the same weights."""
    X, y = small_data("multiclass", seed=6)
    params = dict(hidden_layer_sizes=(5,), solver="adam", alpha=1e-3, random_state=0)
    sk, est = SkMLPClassifier(**params), MLPClassifier(backend="numpy", **params)
    for i in range(4):
        rows = slice(15 * i, 15 * (i + 1))
        sk.partial_fit(X[rows], y[rows], classes=np.arange(3))
        est.partial_fit(X[rows], y[rows], classes=np.arange(3))
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-9
    assert est.t_ == sk.t_ and est.n_iter_ == sk.n_iter_ == 1


# ---------------------------------------------------------------------- sample weights
def uneven_weights(n, seed=0):
    """Non-uniform weights in [0, 3) with every 7th row at 0 (no batch of >= 7 rows sums
    to zero)."""
    w = np.random.default_rng(seed).uniform(0.0, 3.0, n)
    w[::7] = 0.0
    return w


def fit_quietly(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", ["sgd", "sgd-nesterov", "adam"])
@pytest.mark.parametrize(
    "kind", ["multiclass", "binary", "multilabel", "regression", "multioutput"]
)
def test_one_weighted_epoch_matches_scikit_learn(backend, solver, kind):
    """One epoch with non-uniform sample weights (zeros included) and alpha > 0, from the
    same assigned weights: scikit-learn's weights (each batch divided by its weight sum,
    the L2 term too), which differ from the unweighted epoch's."""
    X, y = small_data(kind)
    est_cls, sk_cls = estimator_classes(kind)
    params = dict(hidden_layer_sizes=(5, 4), activation="tanh", alpha=0.05, batch_size=16)
    sk, est = warm_pair(est_cls, sk_cls, X, y, 1, backend=backend, **params, **SOLVERS[solver])
    start = [A.copy() for A in sk.coefs_ + sk.intercepts_]
    w = uneven_weights(len(X))
    fit_quietly(sk, X, y, sample_weight=w)
    fit_quietly(est, X, y, sample_weight=w)
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-9
    if kind != "multioutput":  # documented: the L2 term of loss_ counts 1/k for k outputs
        assert est.loss_ == pytest.approx(sk.loss_, rel=1e-9)
    # The weights matter: scikit-learn's unweighted epoch lands elsewhere.
    unweighted = sk_cls(warm_start=True, max_iter=1, shuffle=False, **params, **SOLVERS[solver])
    fit_quietly(unweighted, X, y)  # sets the shapes; then the same start
    unweighted.coefs_, unweighted.intercepts_ = start[:3], start[3:]
    fit_quietly(unweighted, X, y)
    assert rel_err(unweighted.coefs_, sk.coefs_) > 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_one_weighted_epoch_float32_matches_scikit_learn(backend, solver):
    """float32 input: both train in float32; scikit-learn's weights to float32 rounding
    (rtol 1e-5 after 4 batches: each update rounds its O(1) terms to 6e-8 relative)."""
    X, y = small_data("multiclass", seed=7)
    X = X.astype(np.float32)
    params = dict(hidden_layer_sizes=(5,), alpha=0.05, batch_size=16, **SOLVERS[solver])
    sk, est = warm_pair(MLPClassifier, SkMLPClassifier, X, y, 2, backend=backend, **params)
    w = uneven_weights(len(X), seed=1)
    fit_quietly(sk, X, y, sample_weight=w)
    fit_quietly(est, X, y, sample_weight=w)
    assert est.coefs_[0].dtype == sk.coefs_[0].dtype == np.float32
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-5


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam", tol=1e-2, n_iter_no_change=2),  # stops at epoch 19
        dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, power_t=0.3),
        dict(solver="sgd", early_stopping=True, validation_fraction=0.2, n_iter_no_change=3),
    ],
    ids=["adam-tol", "sgd-invscaling", "sgd-early-stopping"],
)
def test_weighted_shuffled_epochs_match_scikit_learn(backend, params):
    """Shuffled epochs with weights (fused SGD, per-batch Adam), stopping rules and the
    weighted validation score of early stopping: scikit-learn's run."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    w = uneven_weights(len(X), seed=2)
    common = dict(hidden_layer_sizes=(10,), max_iter=40, random_state=0, **params)
    sk = fit_quietly(SkMLPClassifier(**common), X, y, sample_weight=w)
    est = fit_quietly(MLPClassifier(backend=backend, **common), X, y, sample_weight=w)
    assert est.n_iter_ == sk.n_iter_
    if params["solver"] == "adam" or params.get("early_stopping"):
        assert sk.n_iter_ < 40  # a stopping decision is taken on the weighted numbers
    np.testing.assert_allclose(est.loss_curve_, sk.loss_curve_, rtol=1e-9)
    if params.get("early_stopping"):  # the weighted accuracy of the hold-out
        np.testing.assert_allclose(est.validation_scores_, sk.validation_scores_, rtol=1e-12)
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-9


@pytest.mark.parametrize("backend", BACKENDS)
def test_weighted_partial_fit_matches_scikit_learn(backend):
    """partial_fit(X, y, sample_weight) over blocks, Adam state kept: the same weights."""
    X, y = small_data("regression", seed=6)
    w = uneven_weights(len(X), seed=3)
    params = dict(hidden_layer_sizes=(5,), solver="adam", alpha=1e-2, random_state=0)
    sk, est = SkMLPRegressor(**params), MLPRegressor(backend=backend, **params)
    for i in range(3):
        rows = slice(20 * i, 20 * (i + 1))
        sk.partial_fit(X[rows], y[rows], sample_weight=w[rows])
        est.partial_fit(X[rows], y[rows], sample_weight=w[rows])
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-9


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_equal_weights(backend, solver):
    """Equal weights 2.5: scikit-learn's numbers, which are not the unweighted ones (the
    L2 term is divided by the weight sum); all ones: exactly the unweighted fit."""
    X, y = small_data("binary", seed=8)
    params = dict(hidden_layer_sizes=(4,), batch_size=16, max_iter=3, shuffle=True,
                  random_state=1, alpha=0.1, **SOLVERS[solver])  # fmt: skip
    sk = fit_quietly(SkMLPClassifier(**params), X, y, sample_weight=np.full(len(X), 2.5))
    est = fit_quietly(MLPClassifier(backend=backend, **params), X, y, sample_weight=[2.5] * 60)
    assert rel_err(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_) < 1e-9
    plain = fit_quietly(MLPClassifier(backend=backend, **params), X, y)
    assert rel_err(plain.coefs_, sk.coefs_) > 1e-6
    ones = fit_quietly(MLPClassifier(backend=backend, **params), X, y, sample_weight=np.ones(60))
    for A, B in zip(ones.coefs_ + ones.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(A, B)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "params",
    [dict(solver="lbfgs"), dict(solver="sgd", tol=1e-2), dict(solver="adam", max_iter=30)],
    ids=["lbfgs", "sgd", "adam"],
)
def test_integer_weights_equal_repeated_rows(backend, params):
    """scikit-learn's own check (integer weights, zeros included, against repeated and
    removed rows; one full batch, so the equivalence is exact for every solver) with
    the solver settings scikit-learn runs it with for its MLPs, and Adam."""
    for est in (MLPClassifier, MLPRegressor):
        est = est(hidden_layer_sizes=(8,), backend=backend, random_state=42, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            check_sample_weight_equivalence_on_dense_data(type(est).__name__, est)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize(
    "sample_weight",
    [np.ones(59), np.ones((60, 1)), np.r_[np.nan, np.ones(59)], np.r_[np.inf, np.ones(59)],
     np.zeros(60), np.r_[np.zeros(16), np.ones(44)]],
    ids=["length", "2d", "nan", "inf", "all-zero", "zero-batch"],
)  # fmt: skip
def test_bad_weights_raise_scikit_learn_errors(solver, sample_weight):
    """Bad weights: scikit-learn's error type and message (ours adds detail after it)."""
    X, y = small_data("multiclass")
    params = dict(hidden_layer_sizes=(3,), solver=solver, batch_size=16, shuffle=False, max_iter=5)
    valid = sample_weight.shape == (60,) and np.isfinite(sample_weight).all()
    if solver == "lbfgs" and valid and sample_weight.any():
        # L-BFGS sees one batch: a zero-sum mini-batch cannot occur.
        fit_quietly(SkMLPClassifier(**params), X, y, sample_weight=sample_weight)
        fit_quietly(MLPClassifier(backend="numpy", **params), X, y, sample_weight=sample_weight)
        return
    with pytest.raises((ValueError, ZeroDivisionError)) as theirs:
        fit_quietly(SkMLPClassifier(**params), X, y, sample_weight=sample_weight)
    with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value))):
        fit_quietly(MLPClassifier(backend="numpy", **params), X, y, sample_weight=sample_weight)


def test_negative_weights_are_refused():
    """scikit-learn's MLP accepts negative weights (its objective is then unbounded
    below); fastnn refuses them with scikit-learn's non-negativity message."""
    X, y = small_data("regression")
    w = np.ones(60)
    w[5] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        MLPRegressor(backend="numpy", max_iter=2).fit(X, y, sample_weight=w)
    est = MLPRegressor(backend="numpy", solver="sgd")
    with pytest.raises(ValueError, match="Negative values"):
        est.partial_fit(X, y, sample_weight=w)


# ---------------------------------------------------------------------- quality
@pytest.fixture
def one_blas_thread():
    """Both sides on one BLAS thread: on a shared 2-core machine, spinning BLAS threads
    slowed these fits 10x (no timing is asserted; this keeps the suite's wall time)."""
    with threadpool_limits(1, user_api="blas"):
        yield


def scaled_split(X, y, seed):
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def mean_scores(est_factory, sk_factory, X, y):
    """Mean test score over seeds 0, 1, 2 of fastnn (float32) and of scikit-learn."""
    ours, theirs = [], []
    for seed in range(3):
        X_train, X_test, y_train, y_test = scaled_split(X, y, seed)
        ours.append(est_factory(seed).fit(X_train, y_train).score(X_test, y_test))
        theirs.append(sk_factory(seed).fit(X_train, y_train).score(X_test, y_test))
    return np.mean(ours), np.mean(theirs)


def regression_data(name):
    if name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
        return X, (y - y.mean()) / y.std()
    X, y = make_regression(n_samples=1000, n_features=20, noise=10.0, random_state=0)
    return X, y / y.std()


@pytest.mark.slow
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(
    "dataset, params",
    [
        ("digits", dict(hidden_layer_sizes=(64,), max_iter=40)),
        ("breast_cancer", dict(hidden_layer_sizes=(32,), max_iter=100)),
        ("big", dict(hidden_layer_sizes=(100,), max_iter=3, batch_size=200)),
    ],
)
def test_classification_quality_matches_scikit_learn(backend, dataset, params, one_blas_thread):
    if dataset == "big":
        X, y = make_classification(50_000, 40, n_informative=20, n_classes=3, random_state=0)
    else:
        loader = load_digits if dataset == "digits" else load_breast_cancer
        X, y = loader(return_X_y=True)
    ours, theirs = mean_scores(
        lambda s: MLPClassifier(backend=backend, dtype="float32", random_state=s, **params),
        lambda s: SkMLPClassifier(random_state=s, **params),
        X,
        y,
    )
    assert ours >= theirs - 0.01, (ours, theirs)
    assert theirs > 0.8  # the comparison is between two working models


@pytest.mark.slow
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dataset", ["diabetes", "make_regression"])
def test_regression_quality_matches_scikit_learn(backend, dataset, one_blas_thread):
    X, y = regression_data(dataset)
    params = dict(hidden_layer_sizes=(16,), alpha=1.0, max_iter=200, learning_rate_init=0.01)
    ours, theirs = mean_scores(
        lambda s: MLPRegressor(backend=backend, dtype="float32", random_state=s, **params),
        lambda s: SkMLPRegressor(random_state=s, **params),
        X,
        y,
    )
    assert ours >= theirs - 0.01, (ours, theirs)
    assert theirs > 0.25  # two working models (diabetes: r2 ~0.3-0.5)
