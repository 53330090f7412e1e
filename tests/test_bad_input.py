"""Bad input gives a clear ValueError/TypeError, and a failing call changes nothing.

Each case runs against a trained model and then checks that its weights,
optimizer state and step count, and ``history`` are exactly what they were.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import Dense, Sequential
from fastnn.model import NotCompiledError
from fastnn.optimizers import SGD, Adam

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3))
LABELS = RNG.integers(0, 4, 12)


def trained(loss="sparse_categorical_crossentropy", out=4, activation="softmax"):
    model = Sequential(
        [Dense(5, activation="relu"), Dense(out, activation=activation)],
        backend="numpy",
        seed=0,
        dtype="float64",
    )
    model.compile(Adam(0.01), loss, metrics=["accuracy"])
    y = LABELS if loss == "sparse_categorical_crossentropy" else np.eye(out)[LABELS % out]
    model.fit(X, y, batch_size=4, epochs=2, verbose=0)
    return model


def state_of(model):
    opt = model.optimizer
    return (
        model.get_weights(),
        [A.copy() for S in (opt.state or []) for A in S],
        opt.iterations,
        model.history,
        {k: list(v) for k, v in model.history.history.items()},
    )


def assert_unchanged(model, before):
    weights, opt_state, iterations, history, history_dict = before
    after = state_of(model)
    assert len(after[0]) == len(weights)
    for A, B in zip(after[0], weights):
        np.testing.assert_array_equal(A, B)
    for A, B in zip(after[1], opt_state):
        np.testing.assert_array_equal(A, B)
    assert after[2] == iterations
    assert after[3] is history and after[4] == history_dict


X1D = X[:, 0]
X3D = X.reshape(12, 3, 1)
X_NAN = X.copy()
X_NAN[3, 1] = np.nan
X_INF = X.copy()
X_INF[0, 0] = np.inf
X_STR = X.astype(str)
X_OBJ = np.array([[object()] * 3] * 12)

# (id, call(model), exception, message pattern)
CASES = [
    ("fit-1d-x", lambda m: m.fit(X1D, LABELS, verbose=0), ValueError,
     "Expected 2D array, got 1D array instead"),
    ("fit-3d-x", lambda m: m.fit(X3D, LABELS, verbose=0), ValueError,
     "Expected 2D array, got 3D array instead"),
    ("predict-1d-x", lambda m: m.predict(X1D), ValueError, "Expected 2D array, got 1D"),
    ("fit-wrong-features", lambda m: m.fit(X[:, :2], LABELS, verbose=0), ValueError,
     "X has 2 features, but Sequential is expecting 3 features as input."),
    ("predict-wrong-features", lambda m: m.predict(np.ones((2, 5))), ValueError,
     "X has 5 features, but Sequential is expecting 3 features as input."),
    ("evaluate-wrong-features", lambda m: m.evaluate(np.ones((12, 4)), LABELS), ValueError,
     "X has 4 features, but Sequential is expecting 3"),
    ("length-mismatch", lambda m: m.fit(X, LABELS[:10], verbose=0), ValueError,
     r"inconsistent numbers of samples: \[12, 10\]"),
    ("evaluate-length-mismatch", lambda m: m.evaluate(X[:5], LABELS), ValueError,
     r"inconsistent numbers of samples: \[5, 12\]"),
    ("empty-x", lambda m: m.fit(np.empty((0, 3)), LABELS[:0], verbose=0), ValueError,
     "0 sample"),
    ("empty-predict", lambda m: m.predict(np.empty((0, 3))), ValueError, "0 sample"),
    ("nan-x", lambda m: m.fit(X_NAN, LABELS, verbose=0), ValueError, "contains NaN"),
    ("inf-x", lambda m: m.fit(X_INF, LABELS, verbose=0), ValueError, "contains infinity"),
    ("nan-predict", lambda m: m.predict(X_NAN), ValueError, "contains NaN"),
    ("overflow-to-float32", lambda m: Sequential([Dense(1)], seed=0).predict(
        np.full((1, 2), 1e300)), ValueError, "infinity"),
    ("string-x", lambda m: m.fit(X_STR, LABELS, verbose=0), TypeError, "must be numeric"),
    ("object-x", lambda m: m.fit(X_OBJ, LABELS, verbose=0), TypeError, "must be numeric"),
    ("string-y", lambda m: m.fit(X, LABELS.astype(str), verbose=0), TypeError,
     "must be numeric"),
    ("label-out-of-range", lambda m: m.fit(X, np.where(LABELS == 0, 4, LABELS), verbose=0),
     ValueError, r"label 4 in y is out of range.*4 units.*\[0, 4\)"),
    ("negative-label", lambda m: m.fit(X, np.where(LABELS == 0, -1, LABELS), verbose=0),
     ValueError, "non-negative.*-1"),
    ("non-integer-label", lambda m: m.fit(X, LABELS + 0.5, verbose=0), ValueError,
     "whole numbers.*0.5|whole numbers"),
    ("nan-label", lambda m: m.fit(X, np.where(LABELS == 0, np.nan, LABELS), verbose=0),
     ValueError, "NaN"),
    ("2d-sparse-labels", lambda m: m.fit(X, np.eye(4)[LABELS], verbose=0), ValueError,
     "1-D array of class indices.*categorical_crossentropy"),
    ("evaluate-label-range", lambda m: m.evaluate(X, LABELS + 4), ValueError, "out of range"),
    ("batch-size-0", lambda m: m.fit(X, LABELS, batch_size=0, verbose=0), ValueError,
     "batch_size must be >= 1, got 0"),
    ("batch-size-float", lambda m: m.fit(X, LABELS, batch_size=2.5, verbose=0), TypeError,
     "batch_size must be an integer"),
    ("predict-batch-size-0", lambda m: m.predict(X, batch_size=0), ValueError,
     "batch_size must be >= 1"),
    ("evaluate-batch-size-neg", lambda m: m.evaluate(X, LABELS, batch_size=-3), ValueError,
     "batch_size must be >= 1"),
    ("epochs-negative", lambda m: m.fit(X, LABELS, epochs=-1, verbose=0), ValueError,
     "epochs must be >= 0"),
    ("verbose-bad", lambda m: m.fit(X, LABELS, verbose=3), ValueError, "verbose must be"),
    ("validation-split-1", lambda m: m.fit(X, LABELS, validation_split=1.0, verbose=0),
     ValueError, r"validation_split must be in \[0, 1\)"),
    ("validation-split-too-small", lambda m: m.fit(X, LABELS, validation_split=0.95,
     verbose=0), ValueError, "both need at least one"),
    ("validation-data-shape", lambda m: m.fit(X, LABELS, validation_data=(X[:, :2], LABELS),
     verbose=0), ValueError, "X has 2 features"),
    ("validation-data-labels", lambda m: m.fit(X, LABELS, validation_data=(X, LABELS + 9),
     verbose=0), ValueError, "out of range"),
    ("validation-data-not-pair", lambda m: m.fit(X, LABELS, validation_data=X, verbose=0),
     ValueError, r"validation_data must be a tuple \(x_val, y_val\)"),
    ("callbacks-bad", lambda m: m.fit(X, LABELS, callbacks=[print], verbose=0), TypeError,
     "callbacks must be a list"),
    ("seed-negative", lambda m: m.fit(X, LABELS, seed=-1, verbose=0), ValueError,
     "seed must be >= 0"),
    ("unknown-loss", lambda m: m.compile("sgd", "hinge"), ValueError,
     "unknown loss 'hinge'; valid choices are: 'mse', 'binary_crossentropy', "
     "'categorical_crossentropy', 'sparse_categorical_crossentropy'"),
    ("unknown-optimizer", lambda m: m.compile("adagrad", "mse"), ValueError,
     "unknown optimizer 'adagrad'; valid choices are: 'sgd', 'adam', 'adamw', 'rmsprop'"),
    ("unknown-metric", lambda m: m.compile("sgd", "mse", metrics=["f1"]), ValueError,
     "unknown metric 'f1'; valid choices are: 'accuracy'"),
    ("compile-without-loss", lambda m: m.compile("sgd"), ValueError, "compile needs a loss"),
    ("negative-lr-sgd", lambda m: m.compile(SGD(learning_rate=-0.1), "mse"), ValueError,
     "learning_rate must be >= 0, got -0.1"),
    ("negative-lr-adam", lambda m: m.compile(Adam(learning_rate=-1e-3), "mse"), ValueError,
     "learning_rate must be >= 0"),
    ("nan-lr", lambda m: m.compile(SGD(learning_rate=float("nan")), "mse"), ValueError,
     "learning_rate must be finite"),
    ("momentum-above-1", lambda m: m.compile(SGD(0.1, momentum=1.5), "mse"), ValueError,
     "momentum must be <= 1"),
    ("adam-beta", lambda m: m.compile(Adam(beta_1=1.5), "mse"), ValueError,
     "beta_1 must be < 1"),
    ("adam-eps", lambda m: m.compile(Adam(epsilon=0), "mse"), ValueError, "epsilon must be > 0"),
    ("set-weights-bad-shape", lambda m: m.set_weights([np.zeros((3, 6)), np.zeros(5),
     np.zeros((5, 4)), np.zeros(4)]), ValueError, r"weights\[0\] must have shape \(3, 5\)"),
]  # fmt: skip


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_and_changes_nothing(call, exc, match):
    model = trained()
    before = state_of(model)
    optimizer, loss, metrics = model.optimizer, model.loss, model.metrics
    with pytest.raises(exc, match=match):
        call(model)
    assert_unchanged(model, before)
    assert (model.optimizer, model.loss, model.metrics) == (optimizer, loss, metrics)


@pytest.mark.parametrize(
    "loss, y, match",
    [
        ("binary_crossentropy", 2.0 * np.eye(4)[LABELS], r"must lie in \[0, 1\]"),
        ("categorical_crossentropy", LABELS, "use loss='sparse_categorical_crossentropy'"),
        ("categorical_crossentropy", np.eye(3)[LABELS % 3], "has 3 columns, but the output"),
        ("mse", np.ones((12, 2)), "has 2 columns, but the output layer has 4 units"),
    ],
)
def test_bad_dense_targets(loss, y, match):
    model = trained("categorical_crossentropy" if loss != "binary_crossentropy" else "mse")
    model.compile(Adam(0.01), loss)
    model.fit(X, np.eye(4)[LABELS] * 1.0, epochs=1, verbose=0)
    before = state_of(model)
    with pytest.raises(ValueError, match=match):
        model.fit(X, y, verbose=0)
    assert_unchanged(model, before)


def test_fit_before_compile():
    model = Sequential([Dense(2)], seed=0)
    with pytest.raises(NotCompiledError, match=r"compile the model before calling fit\(\)"):
        model.fit(X, LABELS)
    with pytest.raises(ValueError, match=r"before calling evaluate\(\)"):
        model.evaluate(X, LABELS)
    assert not model.built and model.history is None


def test_failed_first_fit_does_not_build_the_model():
    model = Sequential([Dense(4, activation="softmax")], seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="out of range"):
        model.fit(X, LABELS + 1, verbose=0)
    assert not model.built and model.history is None


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: Dense(0), ValueError, "units must be >= 1, got 0"),
        (lambda: Dense(-3), ValueError, "units must be >= 1"),
        (lambda: Dense(2.5), TypeError, "units must be an integer"),
        (lambda: Dense(3, activation="swish"), ValueError,
         "unknown activation 'swish'; valid choices are: 'linear', 'sigmoid', 'relu', 'tanh', "
         "'softmax', 'step', 'leaky_relu', 'elu', 'gelu', 'softplus', 'silu'"),
        (lambda: Dense(3, kernel_initializer="orthogonal"), ValueError,
         "unknown kernel_initializer 'orthogonal'; valid choices are: 'glorot_uniform'"),
        (lambda: Dense(3, bias_initializer="foo"), ValueError, "unknown bias_initializer"),
        (lambda: Dense(3, input_dim=0), ValueError, "input_dim must be >= 1"),
        (lambda: Sequential([Dense(3)], backend="cuda"), ValueError,
         "unknown backend 'cuda'; valid choices are: 'python', 'numpy', 'numba', 'auto'"),
        (lambda: Sequential([Dense(3)], dtype="float16"), ValueError,
         "dtype must be 'float32' or 'float64'"),
        (lambda: Sequential(["dense"]), TypeError, "only holds fastnn.Dense layers"),
        (lambda: Sequential([Dense(3), Dense(2, input_dim=4)]), ValueError,
         "input_dim=4 but the previous layer has 3 units"),
        (lambda: fastnn.optimizers.get(3), TypeError, "optimizer must be a name"),
    ],
)  # fmt: skip
def test_bad_construction(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_step_activation_cannot_be_fitted():
    model = Sequential([Dense(1, activation="step")], seed=0)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="activation 'step', which has no gradient"):
        model.fit(X, LABELS > 1, verbose=0)
    assert not model.built


# ---------------------------------------------------------------------------- op edge
def _tb_args(dtype=np.float64):
    """Valid arguments of ops.train_batches for a 3-5-4 net (sgd, sparse labels)."""
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(3, 5)).astype(dtype), rng.normal(size=(5, 4)).astype(dtype)]
    bs = [np.zeros(5, dtype), np.zeros(4, dtype)]
    state = [(np.zeros_like(P),) for P in (Ws[0], bs[0], Ws[1], bs[1])]
    return dict(
        Ws=Ws, bs=bs, activations=["relu", "linear"], X=X.astype(dtype), T=LABELS,
        order=np.arange(12), batch_size=4, head="softmax_cross_entropy", optimizer="sgd",
        state=state, hyper=(0.1, 0.0), step=0,
    )  # fmt: skip


def test_train_batches_edge_accepts_valid_arguments():
    ops = fastnn.get_ops("numpy")
    args = _tb_args()
    W0 = args["Ws"][0].copy()
    losses, correct = ops.train_batches(**args)
    assert losses.shape == (3,) and correct.shape == (3,)
    assert not np.array_equal(args["Ws"][0], W0)  # updated in place


def _bad(**changes):
    def make():
        args = _tb_args()
        for key, value in changes.items():
            args[key] = value(args) if callable(value) else value
        return args

    return make


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (_bad(head="hinge"), ValueError, "unknown head 'hinge'"),
        (_bad(optimizer="adagrad"), ValueError, "unknown optimizer 'adagrad'"),
        (_bad(activations=["relu", "step"]), ValueError, "unknown activation of layer 1 'step'"),
        (_bad(activations=["relu", "softmax"]), ValueError, "takes logits"),
        (_bad(activations=["relu"]), ValueError, "one entry per layer"),
        (_bad(Ws=lambda a: [a["Ws"][0], np.zeros((4, 4))]), ValueError,
         r"Ws\[1\] has shape \(4, 4\) but layer 0 outputs 5 features"),
        (_bad(X=np.zeros((12, 2))), ValueError, r"Ws\[0\] has shape \(3, 5\) but X has 2"),
        (_bad(bs=lambda a: [a["bs"][0], np.zeros(3)]), ValueError, r"bs\[1\] must have shape"),
        (_bad(Ws=lambda a: [np.asfortranarray(a["Ws"][0]), a["Ws"][1]]), ValueError,
         "C-contiguous"),
        (_bad(Ws=lambda a: [a["Ws"][0].astype(np.float32), a["Ws"][1]]), TypeError,
         "share one dtype"),
        (_bad(T=LABELS + 4), ValueError, r"T must lie in \[0, 4\)"),
        (_bad(T=LABELS[:5]), ValueError, r"T must have shape \(12,\)"),
        (_bad(head="mse"), TypeError, "T must be float32 or float64"),
        (_bad(order=np.array([0, 12])), ValueError, r"row indices in \[0, 12\)"),
        (_bad(order=np.zeros((2, 2), dtype=int)), ValueError, "1-D integer array"),
        (_bad(batch_size=0), ValueError, "batch_size must be >= 1"),
        (_bad(step=-1), ValueError, "step must be >= 0"),
        (_bad(hyper=(0.1,)), ValueError, r"hyper must hold the values \(.lr., .momentum."),
        (_bad(hyper=(-0.1, 0.0)), ValueError, "lr must be >= 0"),
        (_bad(state=lambda a: a["state"][:3]), ValueError, "one entry per parameter"),
        (_bad(state=lambda a: [*a["state"][:3], (np.zeros(5),)]), ValueError,
         r"state\[3\] \(velocity of bs\[1\]\) has shape \(5,\)"),
        (_bad(state=lambda a: [*a["state"][:3], (a["state"][3][0], a["state"][3][0])]),
         ValueError, r"state\[3\] must be a tuple of 1 arrays"),
        (_bad(optimizer="adam", hyper=(0.1, 0.9, 0.999, 1e-7)), ValueError,
         r"state\[0\] must be a tuple of 2 arrays"),
    ],
)  # fmt: skip
def test_train_batches_edge_rejects(make, exc, match):
    args = make()
    before = [A.copy() for A in (*args["Ws"], *args["bs"])]
    with pytest.raises(exc, match=match):
        fastnn.get_ops("numpy").train_batches(**args)
    for A, B in zip((*args["Ws"], *args["bs"]), before):
        np.testing.assert_array_equal(A, B)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
def test_finite_check_is_exact_when_the_sum_overflows(dtype, bad):
    """The finite check screens with a sum; finite values whose sum overflows must
    still pass, and one bad value among them must still be named."""
    from fastnn import data_checks

    big = np.finfo(dtype).max / 2
    A = np.full((4, 3), big, dtype)  # sum = 6 * max: inf, though every value is finite
    if bad is None:
        data_checks.check_finite("X", A)  # no error
        return
    A[2, 1] = bad
    match = "contains NaN" if np.isnan(bad) else "contains infinity"
    with pytest.raises(ValueError, match=match):
        data_checks.check_finite("X", A)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(7,), (300, 5), (1, 1), (2, 3, 4), (600, 120)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_finite_check_finds_one_bad_value_anywhere(dtype, shape, order):
    """Every element reaches the screening sum, whatever the array's layout."""
    from fastnn import data_checks

    rng = np.random.default_rng(7)
    for flat in rng.choice(np.prod(shape), size=min(5, np.prod(shape)), replace=False):
        for bad, match in ((np.nan, "contains NaN"), (-np.inf, "contains infinity")):
            A = np.asarray(rng.random(shape), dtype=dtype, order=order)
            assert data_checks.all_finite(A)
            A[np.unravel_index(flat, shape)] = bad
            assert not data_checks.all_finite(A)
            with pytest.raises(ValueError, match=match):
                data_checks.check_finite("X", A)
