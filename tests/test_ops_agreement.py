"""Every op x backend x dtype agrees with the python reference.

Inputs come from hypothesis-drawn shapes (n = 1 and width 1 always included) and
are handed to the backend C-ordered, Fortran-ordered or as strided views; the
reference always sees C-contiguous copies, so a backend that read a non-contiguous
input as if it were contiguous would disagree.  The reference itself is checked
against hand-computed values at the end of the file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import (
    LAYOUTS,
    MAX_DIM,
    assert_close,
    assert_fresh,
    assert_output,
    assert_unchanged,
    relayout,
    tolerance,
)
from hypothesis import example, given
from hypothesis import strategies as st

import fastnn
from fastnn.kernels.contract import (
    ACTIVATIONS,
    DIFFERENTIABLE_ACTIVATIONS,
    HEADS,
    LOSSES,
    OPTIMIZERS,
    Ops,
)

dims = st.integers(1, MAX_DIM)
seeds = st.integers(0, 2**32 - 1)
layouts = st.sampled_from(LAYOUTS)


def shape_cases(f):
    """``@given`` over ``(n, n_in, n_out, seed, layout)`` plus the degenerate shapes."""
    f = example(n=1, n_in=1, n_out=1, seed=0, layout="strided")(f)
    f = example(n=1, n_in=MAX_DIM, n_out=1, seed=1, layout="F")(f)
    f = example(n=MAX_DIM, n_in=1, n_out=MAX_DIM, seed=2, layout="strided")(f)
    f = example(n=7, n_in=5, n_out=3, seed=3, layout="C")(f)
    return given(n=dims, n_in=dims, n_out=dims, seed=seeds, layout=layouts)(f)


def layer_data(rng, n, n_in, n_out, dtype):
    """X, W, b with O(1) pre-activations (W scaled by 1/sqrt(n_in))."""
    X = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / math.sqrt(n_in)).astype(dtype)
    b = (0.5 * rng.standard_normal(n_out)).astype(dtype)
    return X, W, b


# -- dense layer ----------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@shape_cases
def test_dense_forward(backend, dtype, ref, activation, n, n_in, n_out, seed, layout):
    X, W, b = layer_data(np.random.default_rng(seed), n, n_in, n_out, dtype)
    originals = [A.copy() for A in (X, W, b)]
    Z_ref, Y_ref = ref.dense_forward(X, W, b, activation)
    ops = fastnn.get_ops(backend)
    inputs = [relayout(A, layout) for A in (X, W, b)]
    Z, Y = ops.dense_forward(*inputs, activation)
    for A in (Z, Y):
        assert_output(A, dtype, (n, n_out))
    assert_fresh([Z, Y], inputs)
    assert_unchanged(inputs, originals)
    assert_close(Z, Z_ref, dtype, terms=n_in, err_msg="Z")
    if activation == "step":
        # Heaviside jumps at 0: compare only where Z is clearly on one side of it.
        clear = np.abs(Z_ref) > 10 * tolerance(dtype, n_in)["atol"]
        np.testing.assert_array_equal(Y[clear], Y_ref[clear])
        assert set(np.unique(Y)) <= {0.0, 1.0}
    else:
        assert_close(Y, Y_ref, dtype, terms=n_in, err_msg="Y")


@pytest.mark.parametrize("activation", DIFFERENTIABLE_ACTIVATIONS)
@shape_cases
def test_dense_backward(backend, dtype, ref, activation, n, n_in, n_out, seed, layout):
    rng = np.random.default_rng(seed)
    X, W, b = layer_data(rng, n, n_in, n_out, dtype)
    Z, Y = ref.dense_forward(X, W, b, activation)
    dY = rng.standard_normal((n, n_out)).astype(dtype)
    dX_ref, dW_ref, db_ref = ref.dense_backward(dY, X, W, Z, Y, activation)
    originals = [A.copy() for A in (dY, X, W, Z, Y)]
    args = [relayout(A, layout) for A in (dY, X, W, Z, Y)]
    dX, dW, db = fastnn.get_ops(backend).dense_backward(*args, activation)
    assert_unchanged(args, originals)
    assert_output(dX, dtype, (n, n_in))
    assert_output(dW, dtype, (n_in, n_out))
    assert_output(db, dtype, (n_out,))
    assert_fresh([dX, dW, db], args)
    terms = max(n, n_in, n_out)
    assert_close(dX, dX_ref, dtype, terms, "dX")
    assert_close(dW, dW_ref, dtype, terms, "dW")
    assert_close(db, db_ref, dtype, terms, "db")


def test_dense_long_reduction(backend, dtype, ref):
    """The Fashion-MNIST first layer's reduction length (784) on a few rows."""
    X, W, b = layer_data(np.random.default_rng(784), 3, 784, 5, dtype)
    Z_ref, Y_ref = ref.dense_forward(X, W, b, "sigmoid")
    Z, Y = fastnn.get_ops(backend).dense_forward(X, W, b, "sigmoid")
    assert_close(Z, Z_ref, dtype, terms=784)
    assert_close(Y, Y_ref, dtype, terms=784)
    dY = np.random.default_rng(785).standard_normal((3, 5)).astype(dtype)
    grads_ref = ref.dense_backward(dY, X, W, Z_ref, Y_ref, "sigmoid")
    grads = fastnn.get_ops(backend).dense_backward(dY, X, W, Z_ref, Y_ref, "sigmoid")
    for g, g_ref in zip(grads, grads_ref):
        assert_close(g, g_ref, dtype, terms=784)


def test_dense_empty_batch(backend, dtype, ref):
    """A batch of zero rows is valid: empty outputs of the right shape and dtype."""
    X, W, b = layer_data(np.random.default_rng(0), 0, 3, 2, dtype)
    ops = fastnn.get_ops(backend)
    Z, Y = ops.dense_forward(X, W, b, "softmax")
    assert_output(Z, dtype, (0, 2))
    assert_output(Y, dtype, (0, 2))
    dX, dW, db = ops.dense_backward(Y, X, W, Z, Y, "softmax")
    assert_output(dX, dtype, (0, 3))
    assert_output(dW, dtype, (3, 2))
    assert_output(db, dtype, (2,))
    assert not dW.any() and not db.any()  # sums over no rows


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_forward_nan_propagates(backend, dtype, ref, activation):
    """NaN in Z shows in Y, never hidden as a plausible number (relu(NaN) is NaN, a
    softmax row with a NaN is all NaN); step(NaN) is 0.  Other entries are unaffected."""
    X = np.array([[1.0, 2.0, -1.0], [0.5, -2.0, 1.5], [1.0, 0.5, 2.0]], dtype)
    W, b = np.eye(3, dtype=dtype), np.array([np.nan, 0.1, -0.2], dtype)
    nan_Y = np.zeros((3, 3), bool)
    if activation == "softmax":
        # A NaN input poisons its whole row of Z (NaN * 0 is NaN): row 0 here.
        X[0, 0], b[0] = np.nan, 0.0
        nan_Y[0] = True
    elif activation != "step":
        nan_Y[:, 0] = True  # the NaN bias makes column 0 of Z NaN
    with np.errstate(invalid="ignore"):  # NaN inputs may raise the invalid flag
        Z, Y = fastnn.get_ops(backend).dense_forward(X, W, b, activation)
        _, Y_ref = ref.dense_forward(X, W, b, activation)
    np.testing.assert_array_equal(np.isnan(Y), nan_Y)
    np.testing.assert_array_equal(np.isnan(Y_ref), nan_Y)
    if activation == "step":
        assert not Y[:, 0].any()
    assert_close(Y[~nan_Y], Y_ref[~nan_Y], dtype)


# -- large shapes ----------------------------------------------------------------------

#: Shapes beyond the python reference's reach (its loops would take seconds), where
#: optimized backends switch code paths (BLAS instead of fused loops, vectorized exp
#: for large outputs, blocked loops with remainder tiles): the Fashion-MNIST layers,
#: odd sizes around powers of two, a single output unit, a single row.
LARGE_SHAPES = [(256, 784, 256), (256, 256, 10), (33, 130, 129), (40, 129, 100), (300, 2000, 1),
                (1, 784, 10), (65, 7, 300)]  # fmt: skip


def exact_forward(X, W, b, activation):
    """Z, Y in float64 from the (possibly float32) inputs: an independent reference."""
    Z = X.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
    if activation == "linear":
        return Z, Z
    if activation == "sigmoid":
        return Z, 0.5 * (1 + np.tanh(Z / 2))  # the same function, another formula
    if activation == "relu":
        return Z, np.where(Z > 0, Z, 0.0)
    if activation == "tanh":
        return Z, np.tanh(Z)
    if activation == "softmax":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return Z, E / E.sum(axis=1, keepdims=True)
    if activation == "step":
        return Z, (Z >= 0).astype(np.float64)
    return Z, NEW_EXACT[activation](Z)[0]


def _new_exact(Z):
    """Issue 10's activations and derivatives in float64, textbook forms (scipy's erf)."""
    from scipy.special import erf, expit

    S = expit(Z)
    cdf = 0.5 * (1 + erf(Z / np.sqrt(2)))
    pdf = np.exp(-Z * Z / 2) / np.sqrt(2 * np.pi)
    return {
        "leaky_relu": (np.where(Z > 0, Z, 0.2 * Z), np.where(Z > 0, 1.0, 0.2)),
        "elu": (
            np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0))),
            np.where(Z > 0, 1.0, np.exp(np.minimum(Z, 0))),
        ),
        "gelu": (Z * cdf, cdf + Z * pdf),
        "softplus": (np.logaddexp(0, Z), S),
        "silu": (Z * S, S + Z * S * (1 - S)),
    }


NEW_EXACT = {
    name: (lambda Z, name=name: _new_exact(Z)[name])
    for name in ("leaky_relu", "elu", "gelu", "softplus", "silu")
}


def exact_backward(dY, X, W, Z, Y, activation):
    dY, X, W, Z, Y = (A.astype(np.float64) for A in (dY, X, W, Z, Y))
    dZ = {
        "linear": lambda: dY,
        "sigmoid": lambda: dY * Y * (1 - Y),
        "relu": lambda: dY * (Z > 0),
        "tanh": lambda: dY * (1 - Y**2),
        "softmax": lambda: Y * (dY - (dY * Y).sum(axis=1, keepdims=True)),
        **{name: (lambda name=name: dY * NEW_EXACT[name](Z)[1]) for name in NEW_EXACT},
    }[activation]()
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)


@pytest.mark.parametrize("shape", LARGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_large_shapes(fast_backend, dtype, activation, shape):
    backend = fast_backend
    n, n_in, n_out = shape
    rng = np.random.default_rng(n + n_in + n_out)
    X, W, b = layer_data(rng, n, n_in, n_out, dtype)
    originals = [A.copy() for A in (X, W, b)]
    ops = fastnn.get_ops(backend)
    Z, Y = ops.dense_forward(X, W, b, activation)
    assert_unchanged([X, W, b], originals)
    Z_ref, Y_ref = exact_forward(X, W, b, activation)
    assert_output(Z, dtype, (n, n_out))
    assert_output(Y, dtype, (n, n_out))
    assert_close(Z, Z_ref, dtype, terms=n_in, err_msg="Z")
    if activation == "step":
        clear = np.abs(Z_ref) > 10 * tolerance(dtype, n_in)["atol"]
        np.testing.assert_array_equal(Y[clear], Y_ref[clear])
        return
    assert_close(Y, Y_ref, dtype, terms=n_in, err_msg="Y")
    # Backward from the backend's own forward outputs (what training does).
    dY = rng.standard_normal((n, n_out)).astype(dtype)
    originals = [A.copy() for A in (dY, X, W, Z, Y)]
    grads = ops.dense_backward(dY, X, W, Z, Y, activation)
    assert_unchanged([dY, X, W, Z, Y], originals)
    assert_fresh(list(grads), [dY, X, W, Z, Y])
    grads_ref = exact_backward(dY, X, W, Z, Y, activation)
    terms = max(n, n_in, n_out)
    for g, g_ref, nm, shp in zip(grads, grads_ref, ("dX", "dW", "db"), (X.shape, W.shape, b.shape)):
        assert_output(g, dtype, shp)
        assert_close(g, g_ref, dtype, terms=terms, err_msg=nm)


@pytest.mark.parametrize("n,k", [(256, 10), (1000, 1), (3, 5000)])
def test_losses_large_shapes(fast_backend, dtype, n, k):
    """Losses and logit ops on full-batch sizes against float64 formulas."""
    ops = fastnn.get_ops(fast_backend)
    rng = np.random.default_rng(n + k)
    Z = (3 * rng.standard_normal((n, k))).astype(dtype)
    labels = rng.integers(0, k, n)
    value, dZ = ops.softmax_cross_entropy(Z, labels)
    Z64 = Z.astype(np.float64)
    S = Z64 - Z64.max(axis=1, keepdims=True)
    P = np.exp(S) / np.exp(S).sum(axis=1, keepdims=True)
    onehot = np.eye(k)[labels]
    assert_close(value, np.mean(-np.log(P[np.arange(n), labels])), dtype, terms=n * k)
    assert_close(dZ, (P - onehot) / n, dtype, terms=k)
    T = rng.uniform(0, 1, (n, k)).astype(dtype)
    value, dZ = ops.sigmoid_cross_entropy(Z, T)
    S = 1 / (1 + np.exp(-Z64))
    T64 = T.astype(np.float64)
    assert_close(value, np.mean(np.logaddexp(0, Z64) - Z64 * T64), dtype, terms=n * k)
    assert_close(dZ, (S - T64) / (n * k), dtype)
    Y = rng.uniform(0.01, 0.99, (n, k)).astype(dtype)
    Y64 = Y.astype(np.float64)
    value, dY = ops.loss("mse", Y, T)
    assert_close(value, np.mean((Y64 - T64) ** 2), dtype, terms=n * k)
    assert_close(dY, 2 * (Y64 - T64) / (n * k), dtype)
    value, dY = ops.loss("binary_crossentropy", Y, T)
    bce = -(T64 * np.log(Y64) + (1 - T64) * np.log(1 - Y64))
    assert_close(value, bce.mean(), dtype, terms=n * k)
    assert_close(dY, (Y64 - T64) / (Y64 * (1 - Y64)) / (n * k), dtype)
    value, dY = ops.loss("categorical_crossentropy", Y, onehot.astype(dtype))
    assert_close(value, -np.sum(onehot * np.log(Y64)) / n, dtype, terms=n * k)
    assert_close(dY, -onehot / Y64 / n, dtype)


@pytest.mark.parametrize("size", [1, 17, 4096, 100_003])
def test_updates_large_shapes(fast_backend, dtype, size):
    """Optimizer steps over large parameters (vectorized/blocked loops, remainders)."""
    ops = fastnn.get_ops(fast_backend)
    rng = np.random.default_rng(size)
    param, grad, vel, m = (rng.standard_normal(size).astype(dtype) for _ in range(4))
    v = rng.uniform(0, 1, size).astype(dtype)
    P64, G64 = param.astype(np.float64), grad.astype(np.float64)
    vel_ref = 0.9 * vel.astype(np.float64) - 0.05 * G64
    p_sgd = param.copy()
    ops.sgd_update(p_sgd, grad, vel, 0.05, 0.9)
    assert_close(vel, vel_ref, dtype)
    assert_close(p_sgd, P64 + vel_ref, dtype)
    step, lr, b1, b2, eps = 7, 1e-3, 0.9, 0.999, 1e-7
    m_ref = b1 * m.astype(np.float64) + (1 - b1) * G64
    v_ref = b2 * v.astype(np.float64) + (1 - b2) * G64**2
    p_ref = P64 - lr * (m_ref / (1 - b1**step)) / (np.sqrt(v_ref / (1 - b2**step)) + eps)
    ops.adam_update(param, grad, m, v, step, lr, b1, b2, eps)
    assert_close(m, m_ref, dtype)
    assert_close(v, v_ref, dtype)
    assert_close(param, p_ref, dtype)


# -- losses ---------------------------------------------------------------------------


def loss_data(rng, name, n, k, dtype):
    """Predictions Y and targets T typical of each loss, with clip edge cases."""
    if name == "mse":
        Y, T = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    elif name == "binary_crossentropy":
        Y = rng.uniform(0, 1, (n, k))
        T = rng.uniform(0, 1, (n, k)) if rng.random() < 0.5 else rng.integers(0, 2, (n, k))
        # Saturated and out-of-clip probabilities: exact 0 and 1, and beyond eps.
        flat = Y.reshape(-1)
        edge = rng.random(flat.size) < 0.2
        flat[edge] = rng.choice([0.0, 1.0, 1e-9, 1 - 1e-9], edge.sum())
    else:
        E = np.exp(2 * rng.standard_normal((n, k)))
        Y = E / E.sum(axis=1, keepdims=True)
        Y[rng.random((n, k)) < 0.15] = 0.0
        if rng.random() < 0.5:
            T = np.eye(k)[rng.integers(0, k, n)]
        else:
            T = rng.dirichlet(np.ones(k), n)
    return Y.astype(dtype), T.astype(dtype)


@pytest.mark.parametrize("name", LOSSES)
@given(n=dims, k=dims, seed=seeds, layout=layouts)
@example(n=1, k=1, seed=0, layout="strided")
@example(n=1, k=MAX_DIM, seed=1, layout="F")
def test_loss(backend, dtype, ref, name, n, k, seed, layout):
    Y, T = loss_data(np.random.default_rng(seed), name, n, k, dtype)
    originals = [Y.copy(), T.copy()]
    value_ref, dY_ref = ref.loss(name, Y, T)
    inputs = [relayout(Y, layout), relayout(T, layout)]
    value, dY = fastnn.get_ops(backend).loss(name, *inputs)
    assert_unchanged(inputs, originals)
    assert type(value) is float
    assert_output(dY, dtype, (n, k))
    assert_fresh([dY], inputs)
    assert math.isfinite(value) and np.all(np.isfinite(dY))
    assert_close(value, value_ref, dtype, terms=n * k, err_msg="value")
    assert_close(dY, dY_ref, dtype, err_msg="dY")


@given(n=dims, k=dims, seed=seeds, layout=layouts)
@example(n=1, k=1, seed=0, layout="strided")
@example(n=1, k=MAX_DIM, seed=1, layout="F")
def test_softmax_cross_entropy(backend, dtype, ref, n, k, seed, layout):
    rng = np.random.default_rng(seed)
    Z = (3 * rng.standard_normal((n, k))).astype(dtype)
    labels = rng.integers(0, k, n)
    originals = [Z.copy(), labels.copy()]
    value_ref, dZ_ref = ref.softmax_cross_entropy(Z, labels)
    inputs = [relayout(Z, layout), relayout(labels, layout)]
    value, dZ = fastnn.get_ops(backend).softmax_cross_entropy(*inputs)
    assert_unchanged(inputs, originals)
    assert_fresh([dZ], inputs)
    assert type(value) is float
    assert_output(dZ, dtype, (n, k))
    assert_close(value, value_ref, dtype, terms=n * k, err_msg="value")
    assert_close(dZ, dZ_ref, dtype, terms=k, err_msg="dZ")


@pytest.mark.parametrize("label_dtype", [np.int32, np.uint8, np.int64])
def test_softmax_cross_entropy_label_dtypes(backend, ref, label_dtype):
    """Any integer label dtype is accepted and means the same classes."""
    Z = np.random.default_rng(5).standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    value_ref, dZ_ref = ref.softmax_cross_entropy(Z, labels)
    value, dZ = fastnn.get_ops(backend).softmax_cross_entropy(Z, labels.astype(label_dtype))
    assert_close(value, value_ref, np.float64)
    assert_close(dZ, dZ_ref, np.float64)


@given(n=dims, k=dims, seed=seeds, layout=layouts)
@example(n=1, k=1, seed=0, layout="strided")
@example(n=1, k=MAX_DIM, seed=1, layout="F")
def test_sigmoid_cross_entropy(backend, dtype, ref, n, k, seed, layout):
    rng = np.random.default_rng(seed)
    Z = (3 * rng.standard_normal((n, k))).astype(dtype)
    T = rng.uniform(0, 1, (n, k)).astype(dtype)
    originals = [Z.copy(), T.copy()]
    value_ref, dZ_ref = ref.sigmoid_cross_entropy(Z, T)
    inputs = [relayout(Z, layout), relayout(T, layout)]
    value, dZ = fastnn.get_ops(backend).sigmoid_cross_entropy(*inputs)
    assert_unchanged(inputs, originals)
    assert_fresh([dZ], inputs)
    assert type(value) is float
    assert_output(dZ, dtype, (n, k))
    assert_close(value, value_ref, dtype, terms=n * k, err_msg="value")
    assert_close(dZ, dZ_ref, dtype, err_msg="dZ")


# -- optimizer updates ----------------------------------------------------------------

param_shapes = st.one_of(
    st.tuples(dims), st.tuples(dims, dims), st.tuples(st.integers(1, 3), dims, dims)
)


@given(shape=param_shapes, seed=seeds, layout=layouts)
@example(shape=(1,), seed=0, layout="strided")
def test_sgd_update(backend, dtype, ref, shape, seed, layout):
    rng = np.random.default_rng(seed)
    param, grad, velocity = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    lr, momentum = float(rng.uniform(0, 0.5)), float(rng.choice([0.0, 0.9, rng.random()]))
    expected = [param.copy(), velocity.copy()]
    assert ref.sgd_update(expected[0], grad, expected[1], lr, momentum) is None
    got = [param.copy(), velocity.copy()]
    # Two steps: the second starts from the velocity the first left behind.
    for _ in range(2):
        out = fastnn.get_ops(backend).sgd_update(
            got[0], relayout(grad, layout), got[1], lr, momentum
        )
        assert out is None
    ref.sgd_update(expected[0], grad, expected[1], lr, momentum)
    for A, E, nm in zip(got, expected, ("param", "velocity")):
        assert A.dtype == np.dtype(dtype)
        assert_close(A, E, dtype, err_msg=nm)


@given(shape=param_shapes, seed=seeds, layout=layouts, step=st.integers(1, 1000))
@example(shape=(1,), seed=0, layout="strided", step=1)
def test_adam_update(backend, dtype, ref, shape, seed, layout, step):
    rng = np.random.default_rng(seed)
    param, grad, m = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    v = rng.uniform(0, 2, shape).astype(dtype)
    hyper = dict(lr=float(rng.uniform(1e-4, 0.1)), beta1=0.9, beta2=0.999, eps=1e-7)
    expected = [param.copy(), m.copy(), v.copy()]
    assert ref.adam_update(*expected[:1], grad, *expected[1:], step, **hyper) is None
    got = [param.copy(), m.copy(), v.copy()]
    out = fastnn.get_ops(backend).adam_update(
        got[0], relayout(grad, layout), got[1], got[2], step, **hyper
    )
    assert out is None
    for A, E, nm in zip(got, expected, ("param", "m", "v")):
        assert A.dtype == np.dtype(dtype)
        assert_close(A, E, dtype, err_msg=nm)


# -- train_batches --------------------------------------------------------------------

#: (head, output width, hidden activation, output activation): each head with the
#: output activation it is meant for, k = 1 and k > 1 for the sigmoid heads.
TRAIN_CASES = [
    ("softmax_cross_entropy", 3, "relu", "linear"),
    ("sigmoid_cross_entropy", 1, "tanh", "linear"),
    ("sigmoid_cross_entropy", 3, "sigmoid", "linear"),
    ("mse", 2, "sigmoid", "linear"),
    ("binary_crossentropy", 1, "relu", "sigmoid"),
    ("binary_crossentropy", 3, "tanh", "sigmoid"),
    ("categorical_crossentropy", 3, "tanh", "softmax"),
]
assert {case[0] for case in TRAIN_CASES} == set(HEADS)

HYPER = {"sgd": (0.1, 0.9), "adam": (0.01, 0.9, 0.999, 1e-7), "rmsprop": (0.01, 0.9, 0.5, 1e-7)}
assert set(HYPER) == set(OPTIMIZERS)


def train_setup(head, k, hidden, out_act, optimizer, dtype, seed=11):
    """A 4-6-k net, 10 samples, batches of 4 (the last batch has 2 rows)."""
    rng = np.random.default_rng(seed)
    N, n_in, n_hidden = 10, 4, 6
    X = rng.standard_normal((N, n_in)).astype(dtype)
    Ws = [
        (rng.standard_normal((n_in, n_hidden)) / 2).astype(dtype),
        (rng.standard_normal((n_hidden, k)) / 2).astype(dtype),
    ]
    bs = [(0.1 * rng.standard_normal(n_hidden)).astype(dtype), np.zeros(k, dtype)]
    if head == "softmax_cross_entropy":
        T = rng.integers(0, k, N)
    elif head == "mse":
        T = rng.standard_normal((N, k)).astype(dtype)
    elif head == "categorical_crossentropy":
        T = np.eye(k, dtype=dtype)[rng.integers(0, k, N)]
    else:
        T = rng.integers(0, 2, (N, k)).astype(dtype)
    order = rng.permutation(N).astype(np.int64)
    params = [Ws[0], bs[0], Ws[1], bs[1]]
    n_state = len(OPTIMIZERS[optimizer][0])
    state = [tuple(np.zeros_like(p) for _ in range(n_state)) for p in params]
    return dict(
        Ws=Ws, bs=bs, activations=(hidden, out_act), X=X, T=T, order=order, batch_size=4,
        head=head, optimizer=optimizer, state=state, hyper=HYPER[optimizer], step=3,
    )  # fmt: skip


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("head,k,hidden,out_act", TRAIN_CASES)
def test_train_batches(backend, dtype, ref, head, k, hidden, out_act, optimizer):
    expected = train_setup(head, k, hidden, out_act, optimizer, dtype)
    got = train_setup(head, k, hidden, out_act, optimizer, dtype)
    losses_ref, correct_ref = ref.train_batches(**expected)
    losses, correct = fastnn.get_ops(backend).train_batches(**got)
    for A in (losses, correct):
        assert_output(A, np.float64, (3,))
    # The first batch's loss is computed before any update: the plain loss tolerance.
    # Later batches see parameters after 1-2 updates; an update maps an O(u) gradient
    # error to an O(lr * u) parameter error, so the same tolerances hold (terms: the
    # widest reduction, 6 hidden units, stays below 16).
    assert_close(losses, losses_ref, dtype, err_msg="losses")
    np.testing.assert_array_equal(correct, correct_ref)
    assert np.all(correct <= np.array([4, 4, 2]))
    for l in range(2):
        assert_close(got["Ws"][l], expected["Ws"][l], dtype, err_msg=f"W{l}")
        assert_close(got["bs"][l], expected["bs"][l], dtype, err_msg=f"b{l}")
    for p, (S, S_ref) in enumerate(zip(got["state"], expected["state"])):
        for A, A_ref in zip(S, S_ref):
            assert_close(A, A_ref, dtype, err_msg=f"state of parameter {p}")


def medium_train_setup(head, k, hidden, out_act, optimizer, dtype):
    """A 70-80-k net on 200 samples in batches of 64 (the last has 8 rows): widths above
    the small-layer thresholds of optimized backends (their BLAS/blocked paths)."""
    args = train_setup(head, k, hidden, out_act, optimizer, dtype)
    rng = np.random.default_rng(70)
    N, n_in, n_hidden = 200, 70, 80
    args["X"] = rng.standard_normal((N, n_in)).astype(dtype)
    args["Ws"] = [
        (rng.standard_normal((n_in, n_hidden)) / math.sqrt(n_in)).astype(dtype),
        (rng.standard_normal((n_hidden, k)) / math.sqrt(n_hidden)).astype(dtype),
    ]
    args["bs"] = [(0.1 * rng.standard_normal(n_hidden)).astype(dtype), np.zeros(k, dtype)]
    T = args["T"]
    args["T"] = T[rng.integers(0, len(T), N)]  # same kind of targets, N rows
    args["order"] = rng.permutation(N).astype(np.int64)
    args["batch_size"] = 64
    n_state = len(OPTIMIZERS[optimizer][0])
    params = [args["Ws"][0], args["bs"][0], args["Ws"][1], args["bs"][1]]
    args["state"] = [tuple(np.zeros_like(p) for _ in range(n_state)) for p in params]
    return args


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("head,k,hidden,out_act", TRAIN_CASES)
def test_train_batches_medium(fast_backend, dtype, head, k, hidden, out_act, optimizer):
    """Against the contract's definition (the default composition of primitives), run on
    the numpy backend's primitives: the python reference is too slow at this size."""
    expected = medium_train_setup(head, k, hidden, out_act, optimizer, dtype)
    got = medium_train_setup(head, k, hidden, out_act, optimizer, dtype)
    losses_ref, correct_ref = Ops.train_batches(fastnn.get_ops("numpy").impl, **expected)
    losses, correct = fastnn.get_ops(fast_backend).train_batches(**got)
    for A in (losses, correct):
        assert_output(A, np.float64, (4,))
    # Reductions over up to 80 hidden units and 64 rows per batch.
    assert_close(losses, losses_ref, dtype, terms=80, err_msg="losses")
    # A prediction within rounding of a tie or threshold may flip: allow one per batch.
    assert np.all(np.abs(correct - correct_ref) <= 1), (correct, correct_ref)
    for l in range(2):
        assert_close(got["Ws"][l], expected["Ws"][l], dtype, terms=80, err_msg=f"W{l}")
        assert_close(got["bs"][l], expected["bs"][l], dtype, terms=80, err_msg=f"b{l}")
    for p, (S, S_ref) in enumerate(zip(got["state"], expected["state"])):
        for A, A_ref in zip(S, S_ref):
            assert_close(A, A_ref, dtype, terms=80, err_msg=f"state of parameter {p}")


def test_train_batches_composes_primitives(ref):
    """One batch of train_batches equals forward, loss, backward and SGD by hand."""
    setup = train_setup("mse", 2, "tanh", "linear", "sgd", np.float64)
    setup["order"] = setup["order"][:4]
    W0, W1, b0, b1 = (A.copy() for A in (*setup["Ws"], *setup["bs"]))
    rows = setup["order"]
    X, T = setup["X"][rows], setup["T"][rows]
    Z0, A1 = ref.dense_forward(X, W0, b0, "tanh")
    Z1, A2 = ref.dense_forward(A1, W1, b1, "linear")
    value, dY = ref.loss("mse", A2, T)
    dA1, dW1, db1 = ref.dense_backward(dY, A1, W1, Z1, A2, "linear")
    _, dW0, db0 = ref.dense_backward(dA1, X, W0, Z0, A1, "tanh")
    lr = setup["hyper"][0]
    losses, _ = ref.train_batches(**setup)
    np.testing.assert_allclose(losses, [value], rtol=1e-12)
    # Zero initial velocity: one heavy-ball step is plain gradient descent.
    for got, start, grad in zip(
        (*setup["Ws"], *setup["bs"]), (W0, W1, b0, b1), (dW0, dW1, db0, db1)
    ):
        np.testing.assert_allclose(got, start - lr * grad, rtol=1e-12, atol=1e-15)


# -- the python reference against hand computation -----------------------------------


def test_hand_dense_forward(backend, dtype):
    ops = fastnn.get_ops(backend)
    X = np.array([[1.0, 2.0]], dtype)
    W = np.array([[3.0], [4.0]], dtype)
    b = np.array([0.5], dtype)
    z = 1 * 3 + 2 * 4 + 0.5  # 11.5
    expected = {
        "linear": z,
        "relu": z,
        "sigmoid": 1 / (1 + math.exp(-z)),
        "tanh": math.tanh(z),
        "softmax": 1.0,  # a single unit's softmax is 1
        "step": 1.0,
    }
    for activation, y in expected.items():
        Z, Y = ops.dense_forward(X, W, b, activation)
        assert_close(Z, [[z]], dtype, err_msg=activation)
        assert_close(Y, [[y]], dtype, err_msg=activation)
    # At and just below zero: relu(0) = 0, step(0) = 1, sigmoid(0) = 1/2.
    X0 = np.array([[0.0], [-1.0]], dtype)
    W0 = np.array([[1.0, -1.0]], dtype)
    b0 = np.zeros(2, dtype)
    cases = {"relu": [[0, 0], [0, 1]], "step": [[1, 1], [0, 1]], "sigmoid": [[0.5, 0.5]]}
    for activation, y in cases.items():
        Y = ops.dense_forward(X0, W0, b0, activation)[1]
        assert_close(Y[: len(y)], y, dtype, err_msg=activation)


def test_hand_softmax(backend, dtype):
    """softmax([0, log 2]) = [1/3, 2/3]; adding a constant to a row changes nothing."""
    ops = fastnn.get_ops(backend)
    X = np.array([[0.0, math.log(2)], [100.0, 100.0 + math.log(2)]], dtype)
    Z, Y = ops.dense_forward(X, np.eye(2, dtype=dtype), np.zeros(2, dtype), "softmax")
    assert_close(Y, [[1 / 3, 2 / 3], [1 / 3, 2 / 3]], dtype)


def test_hand_dense_backward(backend, dtype):
    ops = fastnn.get_ops(backend)
    X = np.array([[1.0, 2.0]], dtype)
    W = np.array([[3.0], [4.0]], dtype)
    Z = np.array([[11.5]], dtype)
    dY = np.array([[1.0]], dtype)
    # linear: dZ = dY = 1, dX = dZ W^T = [3, 4], dW = X^T dZ = [[1], [2]], db = 1.
    dX, dW, db = ops.dense_backward(dY, X, W, Z, Z, "linear")
    assert_close(dX, [[3, 4]], dtype)
    assert_close(dW, [[1], [2]], dtype)
    assert_close(db, [1], dtype)
    # sigmoid at Y = 1/4: dZ = dY Y (1 - Y) = 3/16.
    Y = np.array([[0.25]], dtype)
    dX, dW, db = ops.dense_backward(dY, X, W, Z, Y, "sigmoid")
    assert_close(db, [3 / 16], dtype)
    assert_close(dX, [[9 / 16, 12 / 16]], dtype)
    # tanh at Y = 1/2: dZ = 1 - 1/4 = 3/4.  relu at Z = -1: dZ = 0.
    assert_close(ops.dense_backward(dY, X, W, Z, 2 * Y, "tanh")[2], [0.75], dtype)
    assert_close(ops.dense_backward(dY, X, W, -Z, Y, "relu")[2], [0.0], dtype)
    # softmax, Y = [1/3, 2/3], dY = [1, 0]: sum(dY Y) = 1/3,
    # dZ = [1/3 (1 - 1/3), 2/3 (0 - 1/3)] = [2/9, -2/9].
    Y2 = np.array([[1 / 3, 2 / 3]], dtype)
    dY2 = np.array([[1.0, 0.0]], dtype)
    I2 = np.eye(2, dtype=dtype)
    dX, dW, db = ops.dense_backward(dY2, I2[:1], I2, Y2, Y2, "softmax")
    assert_close(db, [2 / 9, -2 / 9], dtype)
    assert_close(dX, [[2 / 9, -2 / 9]], dtype)


def test_hand_losses(backend, dtype):
    ops = fastnn.get_ops(backend)
    a = lambda rows: np.array(rows, dtype)  # noqa: E731
    # mse: ((1-0)^2 + (2-0)^2) / 2 = 2.5; dY = 2 (Y - T) / 2.
    value, dY = ops.loss("mse", a([[1, 2]]), a([[0, 0]]))
    assert_close(value, 2.5, dtype)
    assert_close(dY, [[1, 2]], dtype)
    # binary: -log(1/2); dY = (Y - T) / (Y (1 - Y)) = -1/2 / 1/4 = -2.
    value, dY = ops.loss("binary_crossentropy", a([[0.5]]), a([[1]]))
    assert_close(value, math.log(2), dtype)
    assert_close(dY, [[-2]], dtype)
    # categorical: -log(3/4); dY = -T / Y / n = [0, -4/3].
    value, dY = ops.loss("categorical_crossentropy", a([[0.25, 0.75]]), a([[0, 1]]))
    assert_close(value, -math.log(0.75), dtype)
    assert_close(dY, [[0, -4 / 3]], dtype)
    # softmax CE on logits [0, log 2], label 1: -log(2/3); dZ = [1/3, 2/3 - 1].
    value, dZ = ops.softmax_cross_entropy(a([[0, math.log(2)]]), np.array([1]))
    assert_close(value, -math.log(2 / 3), dtype)
    assert_close(dZ, [[1 / 3, -1 / 3]], dtype)
    # Two rows average: labels 0 and 1 on equal logits cost log 2 each; dZ halves.
    value, dZ = ops.softmax_cross_entropy(a([[0, 0], [0, 0]]), np.array([0, 1]))
    assert_close(value, math.log(2), dtype)
    assert_close(dZ, [[-0.25, 0.25], [0.25, -0.25]], dtype)
    # sigmoid CE on logit 0, target 1: log 2; dZ = sigmoid(0) - 1 = -1/2.
    value, dZ = ops.sigmoid_cross_entropy(a([[0]]), a([[1]]))
    assert_close(value, math.log(2), dtype)
    assert_close(dZ, [[-0.5]], dtype)
