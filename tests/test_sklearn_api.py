"""fastnn.sklearn's estimators inside scikit-learn: its estimator checks, pipelines,
searches, cloning, warm starts, partial_fit, label types and error messages."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastnn
from fastnn.sklearn import (
    MLPClassifier,
    MLPRegressor,
    Perceptron,
    SequentialClassifier,
    SequentialRegressor,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def build_classifier(hidden=16, n_features_in_=None, n_classes_=None, seed=None):
    """A compiled two-layer softmax classifier (the wrappers' ``model`` callable)."""
    net = fastnn.Sequential(
        [
            fastnn.Dense(hidden, "relu", input_dim=n_features_in_),
            fastnn.Dense(n_classes_, "softmax"),
        ],
        backend="numpy",
        dtype="float64",
        seed=seed,
    )
    net.compile(fastnn.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    return net


def build_regressor(hidden=16, n_features_in_=None, n_outputs_=None, seed=None):
    net = fastnn.Sequential(
        [fastnn.Dense(hidden, "tanh", input_dim=n_features_in_), fastnn.Dense(n_outputs_)],
        backend="numpy",
        dtype="float64",
        seed=seed,
    )
    net.compile(fastnn.optimizers.Adam(0.02), "mse")
    return net


CHECKED = [
    MLPClassifier(max_iter=100, backend="numpy"),
    MLPRegressor(max_iter=100, backend="numpy"),
    Perceptron(max_epochs=5, backend="numpy"),
    SequentialClassifier(build_classifier, epochs=40, batch_size=16),
    SequentialRegressor(build_regressor, epochs=40, batch_size=16),
]


def expected_failed_checks(estimator):
    """None: every check passes, the sample-weight ones included for the MLPs
    (``check_sample_weights_*``, ``check_all_zero_sample_weights_error``,
    ``check_sample_weight_equivalence_on_dense_data``,
    ``check_classifiers_one_label_sample_weights``); scikit-learn marks none of its
    own MLP checks expected-to-fail either."""
    return {}


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------- composition
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:300], y[:300]


def test_pipeline_grid_search_and_cross_val_score():
    X, y = breast_cancer()
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier((8,), learning_rate_init=0.01, max_iter=100, random_state=0, backend="numpy"),
    )
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1.0]}, cv=3).fit(X, y)
    assert grid.best_params_["mlpclassifier__alpha"] in (1e-4, 1.0)
    assert grid.score(X, y) > 0.9
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85


def test_clone_is_unfitted_with_equal_params():
    est = MLPRegressor(
        hidden_layer_sizes=(5,), max_iter=5, backend="numpy", dtype="float32", random_state=0
    )
    X, y = make_regression(50, 4, random_state=0)
    est.fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(X)


def test_wrapper_routes_model_params_through_grid_search():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = SequentialClassifier(
        build_classifier, epochs=30, batch_size=16, random_state=0, model__hidden=4
    )
    assert clf.get_params()["model__hidden"] == 4
    assert clone(clf).get_params()["model__hidden"] == 4
    grid = GridSearchCV(clf, {"model__hidden": [2, 16]}, cv=3).fit(X, y)
    assert grid.best_estimator_.model_.layers[0].units == grid.best_params_["model__hidden"]
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    fitted = clone(clf).set_params(model__hidden=16).fit(X, names)
    assert set(fitted.predict(X)) <= set(names) and fitted.score(X, names) > 0.9
    assert fitted.predict_proba(X).shape == (150, 3)


def test_wrapper_takes_loss_objects_and_logits():
    """A model compiled with ``SparseCategoricalCrossentropy(from_logits=True)`` on a
    linear output gets integer codes, like the string loss (a one-hot target would
    be refused by the sparse loss)."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)

    def logits_model(n_features_in_=None, n_classes_=None, seed=None):
        net = fastnn.Sequential(
            [fastnn.Dense(8, "relu", input_dim=n_features_in_), fastnn.Dense(n_classes_)],
            backend="numpy", dtype="float64", seed=seed,
        )  # fmt: skip
        loss = fastnn.losses.SparseCategoricalCrossentropy(from_logits=True)
        net.compile(fastnn.optimizers.Adam(0.02), loss)
        return net

    clf = SequentialClassifier(logits_model, epochs=40, batch_size=16, random_state=0)
    assert clf.fit(X, y).score(X, y) > 0.9


def test_wrapper_rejects_unrouted_keywords_and_uncompiled_models():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'hidden'"):
        SequentialClassifier(build_classifier, hidden=3).fit(X, y)

    def uncompiled(n_features_in_=None, n_classes_=None):
        return fastnn.Sequential([fastnn.Dense(n_classes_, "softmax", input_dim=n_features_in_)])

    with pytest.raises(ValueError, match="compile"):
        SequentialClassifier(uncompiled).fit(X, y)


def test_wrapper_regressor_and_pickle():
    X, y = make_regression(200, 5, noise=1.0, random_state=0)
    y = y / y.std()
    reg = SequentialRegressor(build_regressor, epochs=60, batch_size=16, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.9
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))


# ---------------------------------------------------------------------- estimators
def test_warm_start_continues_from_assigned_weights():
    """Assigned coefs_/intercepts_ are what warm_start trains from (not the old ones)."""
    X, y = breast_cancer()
    X = StandardScaler().fit_transform(X)
    est = MLPClassifier(
        (4,), solver="sgd", max_iter=1, warm_start=True, shuffle=False, backend="numpy"
    )
    est.fit(X, y)
    start_W = [np.zeros_like(W) for W in est.coefs_]
    start_b = [np.zeros_like(b) for b in est.intercepts_]
    est.coefs_, est.intercepts_ = [W.copy() for W in start_W], [b.copy() for b in start_b]
    est.fit(X, y)
    # From all-zero weights the hidden layer gets no gradient (zero outgoing weights) and
    # stays zero for ReLU: only the output bias and the output weights can move.
    np.testing.assert_array_equal(est.coefs_[0], 0)
    assert np.any(est.intercepts_[1] != 0)


def test_partial_fit_needs_classes_and_keeps_learning():
    X, y = breast_cancer()
    X = StandardScaler().fit_transform(X)
    est = MLPClassifier((8,), random_state=0, backend="numpy")
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    losses = []
    for _ in range(5):
        est.partial_fit(X, y, classes=[0, 1])
        losses.append(est.loss_)
    assert losses[-1] < losses[0] and est.t_ == 5 * len(X)
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        MLPClassifier(solver="lbfgs").partial_fit(X, y, classes=[0, 1])


def test_classifier_label_types_and_probabilities():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = MLPClassifier((16,), learning_rate_init=0.01, random_state=0, backend="numpy").fit(
        X, names
    )
    assert list(est.classes_) == ["setosa", "versicolor", "virginica"]
    assert est.out_activation_ == "softmax" and est.score(X, names) > 0.95
    P = est.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X)), P, rtol=1e-12)
    np.testing.assert_array_equal(est.predict(X), est.classes_[np.argmax(P, axis=1)])
    labels = (y == 2) * 3 + 1  # two labels, 1 and 4
    binary = MLPClassifier((4,), max_iter=100, random_state=0, backend="numpy").fit(X, labels)
    assert binary.out_activation_ == "logistic" and set(binary.predict(X)) <= {1, 4}
    multilabel = np.c_[y == 0, y == 2].astype(int)
    ml = MLPClassifier((8,), learning_rate_init=0.01, random_state=0, backend="numpy").fit(
        X, multilabel
    )
    assert ml.predict(X).shape == (150, 2) and ml.score(X, multilabel) > 0.9


def test_dtype_parameter():
    X, y = make_regression(60, 3, random_state=0)
    f64 = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0, backend="numpy").fit(
        X.astype(np.float32), y
    )
    assert f64.coefs_[0].dtype == np.float32  # None follows the input, as scikit-learn
    f32 = MLPRegressor(
        hidden_layer_sizes=(4,), max_iter=3, random_state=0, backend="numpy", dtype="float32"
    ).fit(X, y)
    assert f32.coefs_[0].dtype == np.float32 and f32.predict(X).dtype == np.float32
    with pytest.raises(ValueError, match="dtype"):
        MLPRegressor(dtype="float16").fit(X, y)


def test_clear_errors():
    X, y = make_regression(30, 3, random_state=0)
    with pytest.raises(ValueError, match="poisson"):
        MLPRegressor(loss="poisson", backend="numpy").fit(X, y)
    with pytest.raises(ValueError, match="backend"):
        MLPRegressor(backend="nope", max_iter=2).fit(X, y)
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, backend="numpy").fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but MLPRegressor is expecting 3"):
        est.predict(X[:, :2])
    est.coefs_ = est.coefs_[:1]
    with pytest.raises(ValueError, match="coefs_ and intercepts_ must hold 2 layers"):
        est.set_params(warm_start=True).fit(X, y)


def test_max_iter_warns_convergence():
    X, y = make_regression(40, 3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, backend="numpy").fit(X, y)


def test_perceptron_any_two_labels():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array(["off", "off", "off", "on"])  # AND
    est = Perceptron(backend="numpy").fit(X, y)
    assert est.converged_ and list(est.predict(X)) == list(y)
    assert est.coef_.shape == (1, 2) and est.intercept_.shape == (1,)
    np.testing.assert_array_equal(est.decision_function(X) >= 0, y == "on")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="linearly separable"):
            Perceptron(max_epochs=5, backend="numpy").fit(X, np.array([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        Perceptron().fit(X, [0, 1, 2, 2])
