"""The training ops of issue 10 (contract extension): agreement, formulas, references.

Covers the new and changed ops of :mod:`fastnn.kernels.contract` -- the activations
``leaky_relu, elu, gelu, softplus, silu``, ``dense_backward(need_dX=)``, the loss ops'
``weights=``, ``sgd_update(nesterov=, weight_decay=)``, ``adam_update(weight_decay=,
eps_outside=)``, ``rmsprop_update``, ``penalty``, ``dropout_mask`` and the new
``train_batches`` keywords -- on every backend, against the python reference and
against independent references (hand computations, PyTorch, scikit-learn's formula).

The tests call the backends directly (``fastnn.get_ops(name).impl``): the validating
edge (``fastnn.dispatch``) does not know the new keywords yet.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import REFERENCE, assert_close, assert_output
from test_gradcheck import FD_TOL, away_from_kinks, numeric_grad

import fastnn
from fastnn.kernels.contract import (
    LOSSES,
    NEW_ACTIVATIONS,
    OPTIMIZERS,
    SPLITMIX_GAMMA,
    dropout_keep,
    mix64,
)


def impl(backend: str):
    """The backend object itself: these tests check the kernels, not the edge's checks."""
    return fastnn.get_ops(backend).impl


@pytest.fixture(scope="module")
def pyref():
    return impl(REFERENCE)


def layer_data(dtype, n=5, n_in=4, n_out=3, seed=0, spread=2.0):
    """X, W, b, dY with pre-activations over a few units either side of 0."""
    rng = np.random.default_rng(seed)
    X = (spread * rng.standard_normal((n, n_in))).astype(dtype)
    W = rng.standard_normal((n_in, n_out)).astype(dtype) / np.sqrt(n_in).astype(dtype)
    b = (0.3 * rng.standard_normal(n_out)).astype(dtype)
    dY = rng.standard_normal((n, n_out)).astype(dtype)
    return X, W, b, dY


# --------------------------------------------------------------------------- activations


def act_reference(activation, z, slope=0.2):
    """Each new activation and its derivative from textbook formulas (float64, not the
    contract's stable forms): gelu via erf, softplus via log(1 + e^z), silu z / (1 + e^-z)."""
    if activation == "leaky_relu":
        return (z if z > 0 else slope * z), (1.0 if z > 0 else slope)
    if activation == "elu":
        return (z if z > 0 else math.exp(z) - 1), (1.0 if z > 0 else math.exp(z))
    if activation == "gelu":
        cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
        pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        return z * cdf, cdf + z * pdf
    if activation == "softplus":
        s = 1 / (1 + math.exp(-z))
        return math.log(1 + math.exp(z)), s
    if activation == "silu":
        s = 1 / (1 + math.exp(-z))
        return z * s, s + z * s * (1 - s)
    raise AssertionError(activation)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_new_activation_values(backend, dtype, activation):
    """Y and dZ for identity X / W against the textbook formulas at moderate z."""
    ops = impl(backend)
    z = np.array([-3.0, -1.0, -0.25, 0.5, 1.5, 4.0])
    X = np.eye(z.size, dtype=dtype)
    W = np.diag(z).astype(dtype)
    b = np.zeros(z.size, dtype)
    Z, Y = ops.dense_forward(X, W, b, activation)
    _, _, db = ops.dense_backward(np.eye(z.size, dtype=dtype), X, W, Z, Y, activation)
    ref = [act_reference(activation, float(dtype(zi))) for zi in z]
    assert_output(Y, dtype, Z.shape)
    assert_close(np.diag(Y), [r[0] for r in ref], dtype)
    # dY = identity: db_j = dZ_jj = activation'(z_j)
    assert_close(db, [r[1] for r in ref], dtype)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_new_activation_agreement(backend, dtype, pyref, activation):
    """Z, Y, dX, dW, db against the python reference; need_dX=False gives dX None and
    the same dW, db."""
    ops = impl(backend)
    X, W, b, dY = layer_data(dtype, n=7, n_in=5, n_out=4, seed=3)
    Z, Y = ops.dense_forward(X, W, b, activation)
    Zr, Yr = pyref.dense_forward(X, W, b, activation)
    assert_close(Z, Zr, dtype)
    assert_close(Y, Yr, dtype)
    grads = ops.dense_backward(dY, X, W, Z, Y, activation)
    grads_ref = pyref.dense_backward(dY, X, W, Zr, Yr, activation)
    for A, B, nm in zip(grads, grads_ref, ("dX", "dW", "db")):
        assert_output(A, dtype, B.shape)
        assert_close(A, B, dtype, err_msg=nm)
    dX, dW, db = ops.dense_backward(dY, X, W, Z, Y, activation, need_dX=False)
    assert dX is None
    assert_close(dW, grads_ref[1], dtype)
    assert_close(db, grads_ref[2], dtype)


def test_leaky_relu_slope(backend, dtype, pyref):
    """negative_slope is honoured forward and backward."""
    ops = impl(backend)
    X, W, b, dY = layer_data(dtype, seed=4)
    Z, Y = ops.dense_forward(X, W, b, "leaky_relu", negative_slope=0.05)
    expected = np.where(Z > 0, Z, dtype(0.05) * Z)
    assert_close(Y, expected, dtype)
    _, _, db = ops.dense_backward(dY, X, W, Z, Y, "leaky_relu", negative_slope=0.05)
    assert_close(db, (dY * np.where(Z > 0, 1.0, 0.05)).sum(axis=0), dtype, terms=5)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_new_activation_stable_extremes(backend, dtype, activation):
    """No overflow or NaN at |z| where exp would overflow; limits are right; NaN propagates."""
    ops = impl(backend)
    big = 80.0 if dtype == np.float32 else 700.0
    z = np.array([-big, -30.0, 30.0, big, np.nan])
    X = np.eye(z.size, dtype=dtype)
    Z, Y = ops.dense_forward(X, np.diag(z).astype(dtype), np.zeros(z.size, dtype), activation)
    y = np.diag(Y)
    with np.errstate(all="ignore"):
        dY = np.eye(z.size, dtype=dtype)  # db_j = dZ_jj
        _, _, db = ops.dense_backward(dY, X, np.diag(z).astype(dtype), Z, Y, activation)
    assert np.all(np.isfinite(y[:4])), y
    assert np.all(np.isfinite(db[:4])), db
    assert np.isnan(y[4]), "NaN in Z must propagate to Y"
    # Large positive z: all five are the identity up to rounding, derivative 1.
    np.testing.assert_allclose(y[2:4], z[2:4], rtol=1e-6)
    np.testing.assert_allclose(db[3], 1.0, rtol=1e-6)
    lower = {"leaky_relu": -0.2 * big, "elu": -1.0, "gelu": 0.0, "softplus": 0.0, "silu": 0.0}
    np.testing.assert_allclose(y[0], lower[activation], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_new_activation_gradcheck(backend, activation):
    """dX, dW, db of f = sum(R * Y) against central differences (float64)."""
    ops = impl(backend)
    rng = np.random.default_rng(5)
    X, W, b = away_from_kinks(rng, 4, 3, 5)
    R = rng.standard_normal((4, 5))

    def f():
        return float(np.sum(R * ops.dense_forward(X, W, b, activation)[1]))

    Z, Y = ops.dense_forward(X, W, b, activation)
    dX, dW, db = ops.dense_backward(R, X, W, Z, Y, activation)
    for A, G, nm in ((X, dX, "dX"), (W, dW, "dW"), (b, db, "db")):
        np.testing.assert_allclose(G, numeric_grad(f, A), err_msg=nm, **FD_TOL)


@pytest.mark.parametrize("activation", ["linear", "sigmoid", "relu", "tanh", "softmax"])
def test_need_dX_false_existing_activations(backend, dtype, activation):
    ops = impl(backend)
    X, W, b, dY = layer_data(dtype, seed=6)
    Z, Y = ops.dense_forward(X, W, b, activation)
    _, dW, db = ops.dense_backward(dY, X, W, Z, Y, activation)
    dX0, dW0, db0 = ops.dense_backward(dY, X, W, Z, Y, activation, need_dX=False)
    assert dX0 is None
    np.testing.assert_array_equal(dW0, dW)
    np.testing.assert_array_equal(db0, db)


# --------------------------------------------------------------------------- weighted losses


def loss_inputs(name, dtype, n=6, k=3, seed=7):
    rng = np.random.default_rng(seed)
    if name in ("mse", "sigmoid_cross_entropy"):
        Y = rng.standard_normal((n, k)).astype(dtype)
    elif name == "softmax_cross_entropy":
        Y = (2 * rng.standard_normal((n, k))).astype(dtype)
    elif name == "categorical_crossentropy":
        E = np.exp(rng.standard_normal((n, k)))
        Y = (E / E.sum(axis=1, keepdims=True)).astype(dtype)
    else:
        Y = rng.uniform(0.05, 0.95, (n, k)).astype(dtype)
    if name == "softmax_cross_entropy":
        T = rng.integers(0, k, n)
    elif name == "categorical_crossentropy":
        T = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    else:
        T = rng.uniform(0, 1, (n, k)).astype(dtype)
    w = rng.uniform(0.0, 3.0, n).astype(dtype)
    return Y, T, w


def call_loss(ops, name, Y, T, **kw):
    if name in LOSSES:
        return ops.loss(name, Y, T, **kw)
    return getattr(ops, name)(Y, T, **kw)


ALL_LOSS_OPS = [*LOSSES, "softmax_cross_entropy", "sigmoid_cross_entropy"]


@pytest.mark.parametrize("name", ALL_LOSS_OPS)
def test_weighted_loss_agreement(backend, dtype, pyref, name):
    ops = impl(backend)
    Y, T, w = loss_inputs(name, dtype)
    value, dY = call_loss(ops, name, Y, T, weights=w)
    value_ref, dY_ref = call_loss(pyref, name, Y, T, weights=w)
    assert isinstance(value, float)
    assert_output(dY, dtype, Y.shape)
    assert_close(value, value_ref, dtype, terms=Y.size)
    assert_close(dY, dY_ref, dtype)
    # All-ones weights are the unweighted loss.
    v1, d1 = call_loss(ops, name, Y, T, weights=np.ones(len(Y), dtype))
    v0, d0 = call_loss(ops, name, Y, T)
    assert_close(v1, v0, dtype, terms=Y.size)
    assert_close(d1, d0, dtype)


@pytest.mark.parametrize("name", ALL_LOSS_OPS)
def test_weighted_loss_is_repeated_rows(backend, name):
    """Integer weights equal repeating each row w_i times (Keras' sum_over_batch_size: the
    weighted value is the repeated batch's mean times sum(w) / n); dY by finite differences."""
    ops = impl(backend)
    Y, T, _ = loss_inputs(name, np.float64)
    w = np.array([0, 1, 2, 3, 1, 2], dtype=np.float64)
    value, dY = call_loss(ops, name, Y, T, weights=w)
    rep = np.repeat(np.arange(len(Y)), w.astype(int))
    value_rep, _ = call_loss(ops, name, Y[rep], T[rep])
    np.testing.assert_allclose(value, value_rep * w.sum() / len(Y), rtol=1e-12)
    Y = Y.copy()
    G = numeric_grad(lambda: call_loss(ops, name, Y, T, weights=w)[0], Y)
    np.testing.assert_allclose(dY, G, **FD_TOL)


# --------------------------------------------------------------------------- penalty


def test_penalty_agreement_and_hand(backend, dtype, pyref):
    ops = impl(backend)
    W = np.array([[0.5, -1.5, 0.0], [2.0, -0.25, 1.0]], dtype)
    G0 = np.full(W.shape, 0.125, dtype)
    l1, l2, scale = 0.01, 0.3, 0.25
    dW = G0.copy()
    value = ops.penalty(W, dW, l1, l2, scale)
    assert isinstance(value, float)
    # Hand: sum|W| = 5.25, sum W^2 = 0.25 + 2.25 + 4 + 0.0625 + 1 = 7.5625.
    np.testing.assert_allclose(value, 0.25 * (0.01 * 5.25 + 0.3 * 7.5625), rtol=1e-6)
    W64 = W.astype(np.float64)
    expected = 0.125 + 0.25 * (0.01 * np.sign(W64) + 2 * 0.3 * W64)
    assert_close(dW, expected, dtype)
    dW_ref = G0.copy()
    assert_close(value, pyref.penalty(W, dW_ref, l1, l2, scale), dtype, terms=W.size)
    assert_close(dW, dW_ref, dtype)
    # Default scale 1; zero coefficients leave dW alone.
    dW2 = G0.copy()
    assert ops.penalty(W, dW2, 0.0, 0.0) == 0.0
    np.testing.assert_array_equal(dW2, G0)


def test_penalty_gradcheck(backend):
    """The added gradient is d(value)/dW (float64, W away from L1's kink at 0)."""
    ops = impl(backend)
    rng = np.random.default_rng(8)
    W = rng.standard_normal((4, 3))
    W += np.sign(W) * 0.1
    dW = np.zeros_like(W)
    ops.penalty(W, dW, 0.02, 0.7, 0.3)
    G = numeric_grad(lambda: ops.penalty(W, np.zeros_like(W), 0.02, 0.7, 0.3), W)
    np.testing.assert_allclose(dW, G, **FD_TOL)


# --------------------------------------------------------------------------- optimizers

#: (optimizer, hyper (complete), extra state init) cases for the update-op agreement test.
UPDATE_CASES = [
    ("sgd", (0.1, 0.9, 0, 0)),
    ("sgd", (0.1, 0.9, 1, 0)),
    ("sgd", (0.1, 0.0, 0, 0.05)),
    ("sgd", (0.1, 0.9, 1, 0.05)),
    ("adam", (0.01, 0.9, 0.999, 1e-7, 0, 0)),
    ("adam", (0.01, 0.9, 0.999, 1e-7, 0.04, 0)),
    ("adam", (0.01, 0.9, 0.999, 1e-8, 0, 1)),
    ("adam", (0.01, 0.9, 0.999, 1e-8, 0.04, 1)),
    ("rmsprop", (0.01, 0.9, 0.0, 1e-7, 0)),
    ("rmsprop", (0.01, 0.9, 0.8, 1e-7, 0)),
    ("rmsprop", (0.01, 0.9, 0.8, 1e-7, 0.04)),
]


def apply_update(ops, optimizer, param, grad, S, t, hyper, dtype):
    """One step through the primitive update op with every option passed by keyword."""
    h = [dtype(x) for x in hyper]
    if optimizer == "sgd":
        ops.sgd_update(param, grad, S[0], h[0], h[1], nesterov=bool(h[2]), weight_decay=h[3])
    elif optimizer == "adam":
        ops.adam_update(
            param, grad, S[0], S[1], t, *h[:4], weight_decay=h[4], eps_outside=bool(h[5])
        )
    else:
        ops.rmsprop_update(param, grad, S[0], S[1], *h[:4], weight_decay=h[4])


@pytest.mark.parametrize("optimizer,hyper", UPDATE_CASES)
def test_update_agreement(backend, dtype, pyref, optimizer, hyper):
    """Three steps of each update op (every option) against the python reference."""
    ops = impl(backend)
    rng = np.random.default_rng(9)
    n_state = len(OPTIMIZERS[optimizer][0])
    P0 = rng.standard_normal((3, 4)).astype(dtype)
    grads = [rng.standard_normal((3, 4)).astype(dtype) for _ in range(3)]
    runs = []
    for o in (ops, pyref):
        P, S = P0.copy(), tuple(np.zeros_like(P0) for _ in range(n_state))
        for t, G in enumerate(grads, start=1):
            apply_update(o, optimizer, P, G, S, t, hyper, dtype)
        runs.append((P, S))
    (P, S), (P_ref, S_ref) = runs
    assert_close(P, P_ref, dtype, err_msg="param")
    for A, B in zip(S, S_ref):
        assert_close(A, B, dtype, err_msg="state")
    assert not np.array_equal(P, P0)


def test_sgd_l2_step_by_hand(backend, dtype):
    """One SGD step with an L2 penalty (penalty then sgd_update), computed by hand."""
    ops = impl(backend)
    W = np.array([[1.0, -2.0], [0.5, 0.0]], dtype)
    G = np.array([[0.1, 0.2], [-0.3, 0.4]], dtype)
    V = np.array([[0.01, 0.0], [0.0, -0.02]], dtype)
    ops.penalty(W, G, 0.0, 0.05)  # G += 2*0.05*W = 0.1 W
    # g' = [[0.2, 0.0], [-0.25, 0.4]]; v = 0.9 v - 0.5 g'; W += v
    ops.sgd_update(W, G, V, dtype(0.5), dtype(0.9))
    v = np.array([[0.009 - 0.1, 0.0], [0.125, -0.018 - 0.2]])
    assert_close(V, v, dtype)
    assert_close(W, np.array([[1.0, -2.0], [0.5, 0.0]]) + v, dtype)


def test_sgd_weight_decay_step_by_hand(backend, dtype):
    """Decoupled weight decay: W -= lr*wd*W before the (momentum) step; velocity ignores it."""
    ops = impl(backend)
    W = np.array([1.0, -2.0, 0.5], dtype)
    G = np.array([0.1, 0.2, -0.3], dtype)
    V = np.array([0.01, 0.0, -0.02], dtype)
    ops.sgd_update(W, G, V, dtype(0.5), dtype(0.9), weight_decay=dtype(0.1))
    v = np.array([0.009 - 0.05, -0.1, -0.018 + 0.15])
    decayed = np.array([1.0, -2.0, 0.5]) * (1 - 0.05)
    assert_close(V, v, dtype)
    assert_close(W, decayed + v, dtype)


def test_adam_sklearn_form_by_hand(backend):
    """eps_outside=True is scikit-learn's Adam: two steps by hand from its formulas."""
    ops = impl(backend)
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-8
    p0 = np.array([0.3, -1.2, 2.0])
    grads = [np.array([0.5, -0.1, 1e-6]), np.array([0.4, 0.2, -3.0])]
    P, M, V = p0.copy(), np.zeros(3), np.zeros(3)
    p, m, v = p0.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):
        ops.adam_update(P, g, M, V, t, lr, b1, b2, eps, eps_outside=True)
        # scikit-learn's AdamOptimizer._get_updates, written out:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        p = p + (-lr_t * m / (np.sqrt(v) + eps))
    np.testing.assert_allclose(P, p, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(M, m, rtol=1e-13)
    np.testing.assert_allclose(V, v, rtol=1e-13)


def test_sgd_and_adam_match_sklearn_optimizers(backend):
    """scikit-learn's own optimizer objects (SGD with Nesterov momentum, Adam) as reference."""
    opt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    ops = impl(backend)
    rng = np.random.default_rng(10)
    p0 = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) for _ in range(4)]
    for nesterov in (False, True):
        P, V = p0.copy(), np.zeros_like(p0)
        ref = [p0.copy()]
        sk = opt.SGDOptimizer(ref, learning_rate_init=0.05, lr_schedule="constant",
                              momentum=0.9, nesterov=nesterov)  # fmt: skip
        for g in grads:
            ops.sgd_update(P, g, V, 0.05, 0.9, nesterov=nesterov)
            sk.update_params(ref, [g])
        np.testing.assert_allclose(P, ref[0], rtol=1e-12, atol=1e-14)
    P, M, V = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    ref = [p0.copy()]
    sk = opt.AdamOptimizer(ref, learning_rate_init=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    for t, g in enumerate(grads, start=1):
        ops.adam_update(P, g, M, V, t, 0.01, 0.9, 0.999, 1e-8, eps_outside=True)
        sk.update_params(ref, [g])
    np.testing.assert_allclose(P, ref[0], rtol=1e-12, atol=1e-14)


def torch_steps(torch_opt_cls, p0, grads, **kw):
    torch = pytest.importorskip("torch")
    p = torch.tensor(p0.copy(), dtype=torch.float64, requires_grad=True)
    o = torch_opt_cls([p], **kw)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        o.step()
    return p.detach().numpy()


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_rmsprop_matches_torch_at_eps_zero(backend, momentum):
    """Keras' RMSprop (eps inside the root) and PyTorch's (eps outside) coincide at eps = 0
    with constant lr (mom = lr * buf); for eps > 0 they differ as documented."""
    torch = pytest.importorskip("torch")
    ops = impl(backend)
    rng = np.random.default_rng(11)
    p0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    P, MS, MOM = p0.copy(), np.zeros(5), np.zeros(5)
    for g in grads:
        ops.rmsprop_update(P, g, MS, MOM, 0.01, 0.9, momentum, 0.0)
    expected = torch_steps(torch.optim.RMSprop, p0, grads, lr=0.01, alpha=0.9, eps=0.0,
                           momentum=momentum)  # fmt: skip
    np.testing.assert_allclose(P, expected, rtol=1e-12, atol=1e-14)
    # One step at eps > 0, Keras' placement by hand: g / sqrt(0.1 g^2 + eps).
    g, eps = grads[0], 1e-3
    P, MS, MOM = p0.copy(), np.zeros(5), np.zeros(5)
    ops.rmsprop_update(P, g, MS, MOM, 0.01, 0.9, momentum, eps)
    np.testing.assert_allclose(P, p0 - 0.01 * g / np.sqrt(0.1 * g * g + eps), rtol=1e-12)


def test_nesterov_matches_torch(backend):
    torch = pytest.importorskip("torch")
    ops = impl(backend)
    rng = np.random.default_rng(12)
    p0 = rng.standard_normal((2, 3))
    grads = [rng.standard_normal((2, 3)) for _ in range(4)]
    P, V = p0.copy(), np.zeros_like(p0)
    for g in grads:
        ops.sgd_update(P, g, V, 0.05, 0.9, nesterov=True)
    expected = torch_steps(torch.optim.SGD, p0, grads, lr=0.05, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(P, expected, rtol=1e-12, atol=1e-14)


def test_adam_weight_decay_matches_torch_adamw(backend):
    """Decoupled weight decay + eps inside the bias correction is PyTorch's AdamW."""
    torch = pytest.importorskip("torch")
    ops = impl(backend)
    rng = np.random.default_rng(13)
    p0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(4)]
    P, M, V = p0.copy(), np.zeros(6), np.zeros(6)
    for t, g in enumerate(grads, start=1):
        ops.adam_update(P, g, M, V, t, 0.01, 0.9, 0.999, 1e-8, weight_decay=0.1)
    expected = torch_steps(torch.optim.AdamW, p0, grads, lr=0.01, betas=(0.9, 0.999),
                           eps=1e-8, weight_decay=0.1)  # fmt: skip
    np.testing.assert_allclose(P, expected, rtol=1e-12, atol=1e-14)


def test_l2_penalty_matches_torch_coupled_weight_decay(backend):
    """PyTorch SGD's weight_decay adds wd * p to the gradient: penalty(l2 = wd/2)."""
    torch = pytest.importorskip("torch")
    ops = impl(backend)
    rng = np.random.default_rng(14)
    p0 = rng.standard_normal((3, 3))
    grads = [rng.standard_normal((3, 3)) for _ in range(3)]
    P, V = p0.copy(), np.zeros_like(p0)
    for g in grads:
        G = g.copy()
        ops.penalty(P, G, 0.0, 0.02)
        ops.sgd_update(P, G, V, 0.1, 0.9)
    expected = torch_steps(torch.optim.SGD, p0, grads, lr=0.1, momentum=0.9, weight_decay=0.04)
    np.testing.assert_allclose(P, expected, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- dropout


def test_mix64_is_splitmix64():
    """The contract's mixer reproduces splitmix64's published stream for state 0
    (Vigna's reference splitmix64.c: first outputs of seed 0)."""
    assert mix64(1 * SPLITMIX_GAMMA) == 0xE220A8397B1DCDAF
    assert mix64(2 * SPLITMIX_GAMMA) == 0x6E789E6AA1B965F4


def test_dropout_mask_matches_contract_definition(backend, dtype):
    """Every entry is 0 or dtype(1/(1-rate)) exactly as dropout_keep decides."""
    ops = impl(backend)
    rate, seed, step, layer = 0.3, 2**63 + 12345, 17, 2
    M = ops.dropout_mask((6, 9), rate, seed, step, layer, dtype)
    assert_output(M, dtype, (6, 9))
    scale = dtype(1 / (1 - rate))
    expected = np.array(
        [[scale if dropout_keep(seed, step, layer, i * 9 + c, rate) else 0 for c in range(9)]
         for i in range(6)],
        dtype=dtype,
    )  # fmt: skip
    np.testing.assert_array_equal(M, expected)


def test_dropout_mask_properties(backend):
    ops = impl(backend)
    shape, rate = (100, 200), 0.3
    M = ops.dropout_mask(shape, rate, 7, 1, 0, np.float32)
    keep = np.mean(M > 0)
    # 20,000 Bernoulli(0.7) draws: standard deviation 0.0032; 5 sigma.
    assert abs(keep - 0.7) < 0.016, keep
    np.testing.assert_array_equal(M, ops.dropout_mask(shape, rate, 7, 1, 0, np.float32))
    for other in ((8, 1, 0), (7, 2, 0), (7, 1, 1)):  # seed, step, layer
        N = ops.dropout_mask(shape, rate, *other, np.float32)
        # Independent masks agree on about 0.7^2 + 0.3^2 = 58% of entries.
        assert 0.5 < np.mean((M > 0) == (N > 0)) < 0.66, other
    np.testing.assert_array_equal(ops.dropout_mask((3, 4), 0.0, 7, 1, 0, np.float64), 1.0)
    # Rows of one block are not copies of each other (the index runs over i*width + c).
    assert not np.array_equal(M[0], M[1])


# --------------------------------------------------------------------------- train_batches

#: Complete hyper-parameters per optimizer for the train_batches tests.
TRAIN_HYPER = {
    "sgd": (0.1, 0.9, 1, 0.01),
    "adam": (0.01, 0.9, 0.999, 1e-7, 0.01, 1),
    "rmsprop": (0.01, 0.9, 0.5, 1e-7, 0.01),
}


def net_setup(dtype, optimizer="sgd", hyper=None, widths=(4, 6, 3), acts=("gelu", "linear"),
              head="softmax_cross_entropy", N=10, seed=21):  # fmt: skip
    """Positional train_batches arguments (as a dict) for a small net, batches of 4."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, widths[0])).astype(dtype)
    Ws = [(rng.standard_normal(s) / math.sqrt(s[0])).astype(dtype)
          for s in zip(widths, widths[1:])]  # fmt: skip
    bs = [(0.1 * rng.standard_normal(w)).astype(dtype) for w in widths[1:]]
    k = widths[-1]
    T = rng.integers(0, k, N) if head == "softmax_cross_entropy" else (
        rng.standard_normal((N, k)).astype(dtype))  # fmt: skip
    n_state = len(OPTIMIZERS[optimizer][0])
    state = [tuple(np.zeros_like(p) for _ in range(n_state)) for pair in zip(Ws, bs) for p in pair]
    return dict(
        Ws=Ws, bs=bs, activations=list(acts), X=X, T=T,
        order=rng.permutation(N).astype(np.int64), batch_size=4, head=head,
        optimizer=optimizer, state=state, hyper=hyper or TRAIN_HYPER[optimizer], step=2,
    )  # fmt: skip


def keyword_case(name, dtype, N=10):
    """The keyword arguments of one train_batches test case."""
    rng = np.random.default_rng(22)
    return {
        "plain": {},
        "penalties": {"penalties": [(0.01, 0.1), None]},
        "penalty_per_row": {"penalties": [(0.0, 0.5), (0.02, 0.0)], "penalty_per_row": True},
        "trainable": {"trainable": [True, False, False, True]},
        "frozen_first_layer": {"trainable": [False, False, True, True]},
        "lrs": {"lrs": np.array([0.05, 0.02, 0.01])},
        "epoch_size": {"epoch_size": 5},
        "dropout": {"dropout": [0.4, None], "seed": 123},
        "sample_weight": {"sample_weight": rng.uniform(0, 2, N).astype(dtype)},
    }[name]


KEYWORD_CASES = ["plain", "penalties", "penalty_per_row", "trainable", "frozen_first_layer",
                 "lrs", "epoch_size", "dropout", "sample_weight"]  # fmt: skip


def run_train(ops, args, kw):
    args = {**args, "Ws": [W.copy() for W in args["Ws"]], "bs": [b.copy() for b in args["bs"]],
            "state": [tuple(A.copy() for A in S) for S in args["state"]]}  # fmt: skip
    losses, correct = ops.train_batches(**args, **kw)
    return losses, correct, args


def assert_same_training(got, expected, dtype, terms=1):
    (losses, correct, a), (losses_ref, correct_ref, b) = got, expected
    assert_output(losses, np.float64, losses_ref.shape)
    assert_close(losses, losses_ref, dtype, terms=terms, err_msg="losses")
    np.testing.assert_array_equal(correct, correct_ref)
    for P, Q in zip([*a["Ws"], *a["bs"]], [*b["Ws"], *b["bs"]]):
        assert_close(P, Q, dtype, terms=terms, err_msg="parameters")
    for S, S_ref in zip(a["state"], b["state"]):
        for A, B in zip(S, S_ref):
            assert_close(A, B, dtype, terms=terms, err_msg="optimizer state")


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("case", KEYWORD_CASES)
def test_train_keywords_agreement(backend, dtype, pyref, case, optimizer):
    """Each new train_batches keyword, on each optimizer (all options on), vs python."""
    args = net_setup(dtype, optimizer)
    kw = keyword_case(case, dtype)
    if case == "epoch_size":  # two epochs of 5 rows: batches 4+1, 4+1
        args["order"] = np.concatenate([args["order"][:5], args["order"][5:]])
    got = run_train(impl(backend), args, kw)
    expected = run_train(pyref, args, kw)
    assert len(got[0]) == (4 if case == "epoch_size" else 3)
    # Adam and RMSprop normalize the step: a gradient element with relative rounding
    # error r (float32 sums that cancel: r up to ~1e-4 for small elements) moves the
    # parameter by ~lr*r, about 3e-6 at lr 0.01.  atol x4 (terms=64) covers that; a wrong
    # step is ~lr = 1e-2.
    assert_same_training(got, expected, dtype, terms=64 if optimizer != "sgd" else 1)


def test_frozen_parameters_untouched(backend, dtype):
    args = net_setup(dtype, "adam")
    losses, _, a = run_train(impl(backend), args, {"trainable": [False, True, True, False]})
    np.testing.assert_array_equal(a["Ws"][0], args["Ws"][0])
    np.testing.assert_array_equal(a["bs"][1], args["bs"][1])
    for p in (0, 3):
        for A in a["state"][p]:
            assert not A.any(), "a frozen parameter's optimizer state was touched"
    assert not np.array_equal(a["bs"][0], args["bs"][0])  # below a frozen W: still trains
    assert not np.array_equal(a["Ws"][1], args["Ws"][1])


def test_epoch_size_equals_separate_calls(backend, dtype):
    """Batching restarts at each epoch: one fused call equals one call per epoch."""
    ops = impl(backend)
    args = net_setup(dtype, "adam", N=10)
    rng = np.random.default_rng(23)
    epochs = [rng.permutation(10).astype(np.int64) for _ in range(3)]
    fused = run_train(ops, {**args, "order": np.concatenate(epochs)}, {"epoch_size": 10})
    assert len(fused[0]) == 9
    state = args
    losses = []
    for e, order in enumerate(epochs):
        out = run_train(ops, {**state, "order": order, "step": args["step"] + 3 * e}, {})
        losses.extend(out[0])
        state = {**out[2], "step": args["step"]}
    np.testing.assert_array_equal(fused[0], losses)
    for P, Q in zip(fused[2]["Ws"], state["Ws"]):
        np.testing.assert_array_equal(P, Q)


def test_constant_lrs_ones_weights_zero_dropout_are_no_ops(backend, dtype):
    """lrs equal to hyper's lr, all-ones sample weights and rate-0 dropout change nothing."""
    ops = impl(backend)
    args = net_setup(dtype, "sgd")
    plain = run_train(ops, args, {})
    kw = {"lrs": np.full(3, 0.1), "sample_weight": np.ones(10, dtype), "dropout": [0.0, 0.0]}
    assert_same_training(run_train(ops, args, kw), plain, dtype)


def test_sklearn_penalty_one_batch_by_hand(backend):
    """penalty_per_row with l2 = alpha/2 is scikit-learn's alpha: one SGD batch composed by
    hand from the primitive ops (float64)."""
    ops = impl(backend)
    alpha = 0.3
    args = net_setup(np.float64, "sgd", hyper=(0.1, 0.0), acts=("relu", "linear"), head="mse")
    args["order"] = args["order"][:4]
    got = run_train(ops, args, {"penalties": [(0, alpha / 2)] * 2, "penalty_per_row": True})
    W0, W1 = args["Ws"]
    b0, b1 = args["bs"]
    X, T = args["X"][args["order"]], args["T"][args["order"]]
    Z0 = X @ W0 + b0
    A1 = np.maximum(Z0, 0)
    out = A1 @ W1 + b1
    nb = 4
    data_loss = np.mean((out - T) ** 2)
    expected_loss = data_loss + alpha / (2 * nb) * (np.sum(W0**2) + np.sum(W1**2))
    dOut = 2 * (out - T) / out.size
    dW1 = A1.T @ dOut + alpha * W1 / nb
    dZ0 = (dOut @ W1.T) * (Z0 > 0)
    dW0 = X.T @ dZ0 + alpha * W0 / nb
    np.testing.assert_allclose(got[0], [expected_loss], rtol=1e-12)
    np.testing.assert_allclose(got[2]["Ws"][0], W0 - 0.1 * dW0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[2]["Ws"][1], W1 - 0.1 * dW1, rtol=1e-12, atol=1e-14)


def test_dropout_one_batch_by_hand(backend):
    """Inverted dropout on layer 0's output in update t = step + 1, composed by hand."""
    ops = impl(backend)
    args = net_setup(np.float64, "sgd", hyper=(0.1, 0.0), acts=("tanh", "linear"), head="mse")
    args["order"] = args["order"][:4]
    rate, seed = 0.5, 99
    got = run_train(ops, args, {"dropout": [rate, None], "seed": seed})
    W0, W1 = args["Ws"]
    b0, b1 = args["bs"]
    X, T = args["X"][args["order"]], args["T"][args["order"]]
    keep = np.array([[dropout_keep(seed, args["step"] + 1, 0, i * 6 + c, rate) for c in range(6)]
                     for i in range(4)])  # fmt: skip
    assert 0 < keep.sum() < keep.size
    M = keep / (1 - rate)
    Y0 = np.tanh(X @ W0 + b0)
    out = (Y0 * M) @ W1 + b1
    dOut = 2 * (out - T) / out.size
    dW1 = (Y0 * M).T @ dOut
    dZ0 = (dOut @ W1.T) * M * (1 - Y0**2)
    np.testing.assert_allclose(got[0], [np.mean((out - T) ** 2)], rtol=1e-12)
    np.testing.assert_allclose(got[2]["Ws"][1], W1 - 0.1 * dW1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[2]["Ws"][0], W0 - 0.1 * X.T @ dZ0, rtol=1e-12, atol=1e-14)


def test_default_train_batches_skips_first_layer_dX():
    """The contract's train_batches asks for dX on every layer but the first."""
    from fastnn.kernels.numpy import NumpyOps

    calls = []

    class Spy(NumpyOps):
        def dense_backward(self, dY, X, W, Z, Y, activation, *, need_dX=True, **kw):
            calls.append((W.shape, need_dX))
            return super().dense_backward(dY, X, W, Z, Y, activation, need_dX=need_dX, **kw)

    args = net_setup(np.float64, "sgd", widths=(4, 6, 5, 3), acts=("relu", "tanh", "linear"))
    run_train(Spy(), args, {})
    assert calls[:3] == [((5, 3), True), ((6, 5), True), ((4, 6), False)]
    calls.clear()
    run_train(Spy(), args, {"trainable": [False, False, False, False, True, True]})
    assert calls[:1] == [((5, 3), False)], "backprop should stop at the lowest trainable layer"


# ------------------------------------------------ plain SGD: the step inside the backward


@pytest.mark.parametrize("need_dX", [True, False])
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "leaky_relu"])
def test_dense_backward_sgd_is_backward_then_step(backend, dtype, pyref, activation, need_dX):
    """The composition hook: dX (from the weights before the step) and db as
    dense_backward's, and W stepped by -lr dW, with dX, dW, db from the python
    reference in float64."""
    ops = impl(backend)
    X, W, b, dY = layer_data(dtype, n=9, n_in=6, n_out=4, seed=11)
    Z, Y = pyref.dense_forward(X, W, b, activation)
    wide = [A.astype(np.float64) for A in (dY, X, W, Z, Y)]
    dX_ref, dW_ref, db_ref = pyref.dense_backward(*wide, activation)
    lr = dtype(0.05)
    W_new = W.copy()
    dX, db = ops.dense_backward_sgd(dY, X, W_new, Z, Y, activation, lr, need_dX=need_dX)
    if need_dX:
        assert_output(dX, dtype, X.shape)
        assert_close(dX, dX_ref, dtype, terms=4, err_msg="dX")
    else:
        assert dX is None
    assert_output(db, dtype, b.shape)
    assert_close(db, db_ref, dtype, terms=9, err_msg="db")
    assert W_new.dtype == dtype
    assert_close(W_new, W.astype(np.float64) - float(lr) * dW_ref, dtype, terms=9, err_msg="W")
    # Asked for the velocity too: -lr dW, and exactly the same step of W.
    W_kept, velocity = W.copy(), np.full_like(W, 7.0)
    ops.dense_backward_sgd(dY, X, W_kept, Z, Y, activation, lr, velocity, need_dX=need_dX)
    np.testing.assert_array_equal(W_kept, W_new)
    assert_close(velocity, -float(lr) * dW_ref, dtype, terms=9, err_msg="velocity")


def test_plain_sgd_weights_do_not_depend_on_call_boundaries(backend, dtype):
    """Every batch's W step is folded the same way (the default train_batches and the
    numba BLAS loop): one call of three batches and three calls of one batch give
    bit-identical weights (a restore after a non-finite loss replays batches in calls
    of other sizes)."""
    ops = impl(backend)
    # Wide enough that a folded step rounds differently from an unfolded one (and that
    # numba takes its BLAS loop).
    args = net_setup(dtype, "sgd", hyper=(0.1,), widths=(40, 32, 5), N=96,
                     acts=("relu", "linear"))  # fmt: skip
    args["batch_size"] = 32
    _, _, whole = run_train(ops, args, {})
    parts = {**args, "Ws": [W.copy() for W in args["Ws"]], "bs": [b.copy() for b in args["bs"]],
             "state": [tuple(A.copy() for A in S) for S in args["state"]]}  # fmt: skip
    for j in range(3):
        ops.train_batches(**{**parts, "order": args["order"][32 * j : 32 * j + 32],
                             "step": args["step"] + j})  # fmt: skip
    for A, B in zip([*whole["Ws"], *whole["bs"]], [*parts["Ws"], *parts["bs"]]):
        np.testing.assert_array_equal(A, B)


def test_numpy_sgd_fold_matches_its_fallback(dtype, monkeypatch):
    """The numpy backend folds the step into NumPy's CBLAS product (beta = 1) where
    NumPy's bundled OpenBLAS is found, else steps W with NumPy: the two agree."""
    from fastnn.kernels import cblas

    ops = impl("numpy")
    X, W, b, dY = layer_data(dtype, n=64, n_in=32, n_out=16, seed=12)
    Z, Y = ops.dense_forward(X, W, b, "relu")
    W_fold, W_plain = W.copy(), W.copy()
    taken = []
    real_gemm = cblas.gemm
    monkeypatch.setattr(cblas, "gemm", lambda *a: taken.append(real_gemm(*a)) or taken[-1])
    dX, db = ops.dense_backward_sgd(dY, X, W_fold, Z, Y, "relu", dtype(0.1))
    assert taken == [cblas.numpy_gemm_address(dtype) != 0]
    monkeypatch.setattr(cblas, "gemm", lambda *a: False)
    dX_plain, db_plain = ops.dense_backward_sgd(dY, X, W_plain, Z, Y, "relu", dtype(0.1))
    assert not np.array_equal(W_plain, W)
    assert_close(W_fold, W_plain, dtype, terms=64, err_msg="W")
    np.testing.assert_array_equal(dX, dX_plain)
    np.testing.assert_array_equal(db, db_plain)


def hand_plain_sgd(ref, args, lr):
    """args' batches stepped by hand with the reference's primitives (float64, two
    layers, softmax cross-entropy): parameters, losses and each parameter's last step
    -lr g (the velocity the unfused SGD step leaves)."""
    P = [A.astype(np.float64) for A in (args["Ws"][0], args["bs"][0], args["Ws"][1], args["bs"][1])]
    X = args["X"].astype(np.float64)
    losses, last = [], None
    for start in range(0, len(args["order"]), args["batch_size"]):
        rows = args["order"][start : start + args["batch_size"]]
        Z0, A1 = ref.dense_forward(X[rows], P[0], P[1], args["activations"][0])
        Z1, A2 = ref.dense_forward(A1, P[2], P[3], args["activations"][1])
        value, dY = ref.softmax_cross_entropy(A2, args["T"][rows])
        dA1, dW1, db1 = ref.dense_backward(dY, A1, P[2], Z1, A2, args["activations"][1])
        _, dW0, db0 = ref.dense_backward(dA1, X[rows], P[0], Z0, A1, args["activations"][0])
        last = [-lr * g for g in (dW0, db0, dW1, db1)]
        P = [p + s for p, s in zip(P, last)]
        losses.append(value)
    return P, np.array(losses), last


def test_plain_sgd_train_batches_against_hand_steps(backend, dtype):
    """Plain SGD: the default train_batches steps W inside the backward (numpy: in the
    BLAS product), the numba trainer in its product; parameters, losses and velocities
    (written by a call's last batch only) as stepping by hand."""
    args = net_setup(dtype, "sgd", hyper=(0.1,), widths=(5, 7, 3), acts=("relu", "linear"))
    P, losses_ref, last = hand_plain_sgd(impl(REFERENCE), args, 0.1)
    losses, _, a = run_train(impl(backend), args, {})
    assert_close(losses, losses_ref, dtype, terms=8, err_msg="losses")
    for got, want in zip([a["Ws"][0], a["bs"][0], a["Ws"][1], a["bs"][1]], P):
        assert_close(got, want, dtype, terms=8, err_msg="parameters")
    for (velocity,), want in zip(a["state"], last):
        assert_close(velocity, want, dtype, terms=8, err_msg="velocity")


@pytest.mark.parametrize("case", KEYWORD_CASES)
def test_plain_sgd_keywords_agreement(backend, dtype, pyref, case):
    """Each train_batches keyword with plain SGD (the step folded where the layer allows:
    trained, unpenalized W), vs python."""
    args = net_setup(dtype, "sgd", hyper=(0.1, 0.0))
    kw = keyword_case(case, dtype)
    got = run_train(impl(backend), args, kw)
    expected = run_train(pyref, args, kw)
    assert_same_training(got, expected, dtype)


# --------------------------------------------------------------------------- trajectory


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_trajectory_all_features(backend, pyref, optimizer):
    """240 float64 updates of a net using every new activation, dropout, L1/L2 penalties,
    decoupled weight decay, a frozen layer, sample weights, a per-batch learning rate and
    fused epochs: the same weights as the python reference.

    Tolerance as tests/test_trajectory.py: float64 backends differ by summation order
    (~1e-16 per op), ~1e-13 after a few hundred steps; rtol 1e-10 / atol 1e-12."""
    acts = ("leaky_relu", "elu", "gelu", "softplus", "silu", "linear")
    hyper = {"sgd": (0.05, 0.9, 1, 1e-3), "adam": (2e-3, 0.9, 0.999, 1e-7, 1e-3, 0),
             "rmsprop": (2e-3, 0.9, 0.5, 1e-7, 1e-3)}[optimizer]  # fmt: skip
    N, epochs = 24, 80
    args = net_setup(np.float64, optimizer, hyper=hyper, widths=(4, 6, 6, 5, 5, 4, 3),
                     acts=acts, N=N, seed=31)  # fmt: skip
    rng = np.random.default_rng(32)
    args["order"] = np.concatenate([rng.permutation(N) for _ in range(epochs)]).astype(np.int64)
    args["batch_size"] = 8
    n_batches = epochs * 3
    kw = {
        "penalties": [(0.0, 1e-3), (1e-4, 1e-3), None, (0.0, 1e-2), None, (1e-4, 0.0)],
        "trainable": [True, True, True, True, False, False, True, True, True, True, True, False],
        "lrs": hyper[0] * (1 + np.arange(n_batches)) ** -0.25,
        "epoch_size": N,
        "dropout": [0.2, 0.1, 0.0, 0.3, 0.1, None],
        "seed": 2024,
        "sample_weight": rng.uniform(0.2, 2.0, N),
        "negative_slopes": [0.1, None, None, None, None, None],
    }
    got = run_train(impl(backend), args, kw)
    expected = run_train(pyref, args, kw)
    assert len(got[0]) == n_batches
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-10, atol=1e-12)
    for P, Q in zip([*got[2]["Ws"], *got[2]["bs"]], [*expected[2]["Ws"], *expected[2]["bs"]]):
        np.testing.assert_allclose(P, Q, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(got[2]["Ws"][2], args["Ws"][2])  # the frozen layer
    assert not np.allclose(got[2]["Ws"][0], args["Ws"][0])  # below it: trained
