"""Gradients against central finite differences (float64), on every backend.

For a scalar function f of an array A, the central difference
``(f(A + eps e_i) - f(A - eps e_i)) / (2 eps)`` has truncation error
``O(eps^2 |f'''|)`` ~ 1e-12 and rounding error ~ ``u |f| / eps`` ~ 1e-10 at
``eps = 1e-6`` for our O(1)-O(10) values (u = 1.1e-16).  ``rtol = 1e-6, atol = 1e-8``
sits two orders above both, far below any real error (a wrong sign, factor or
index moves a gradient by O(1)).  PyTorch's gradcheck uses the same eps with the
looser atol 1e-5 / rtol 1e-3.

The optimizer updates have no gradient to check; they are compared with one step
computed by hand from the formulas in the contract.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastnn
from fastnn.kernels.contract import DIFFERENTIABLE_ACTIVATIONS, LOSSES

EPS = 1e-6
FD_TOL = {"rtol": 1e-6, "atol": 1e-8}


def numeric_grad(f, A: np.ndarray) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to ``A`` (in place)."""
    G = np.zeros_like(A)
    flat, gflat = A.reshape(-1), G.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + EPS
        f_plus = f()
        flat[i] = saved - EPS
        f_minus = f()
        flat[i] = saved
        gflat[i] = (f_plus - f_minus) / (2 * EPS)
    return G


def away_from_kinks(rng, n, n_in, n_out):
    """X, W, b whose pre-activations keep |Z| > 1e-3, so relu is differentiable there
    (eps = 1e-6 perturbations cannot cross 0)."""
    while True:
        X = rng.standard_normal((n, n_in))
        W = rng.standard_normal((n_in, n_out)) / math.sqrt(n_in)
        b = 0.3 * rng.standard_normal(n_out)
        if np.min(np.abs(X @ W + b)) > 1e-3:
            return X, W, b


@pytest.mark.parametrize("activation", DIFFERENTIABLE_ACTIVATIONS)
@pytest.mark.parametrize("n,n_in,n_out", [(4, 3, 5), (1, 1, 1), (3, 5, 1)])
def test_dense_backward_fd(backend, activation, n, n_in, n_out):
    ops = fastnn.get_ops(backend)
    rng = np.random.default_rng(n * 100 + n_in * 10 + n_out)
    X, W, b = away_from_kinks(rng, n, n_in, n_out)
    # L = sum(G * Y) for a fixed random G, so dL/dY = G.
    G = rng.standard_normal((n, n_out))

    def L():
        return float(np.sum(G * ops.dense_forward(X, W, b, activation)[1]))

    Z, Y = ops.dense_forward(X, W, b, activation)
    dX, dW, db = ops.dense_backward(G, X, W, Z, Y, activation)
    np.testing.assert_allclose(dX, numeric_grad(L, X), err_msg="dX", **FD_TOL)
    np.testing.assert_allclose(dW, numeric_grad(L, W), err_msg="dW", **FD_TOL)
    np.testing.assert_allclose(db, numeric_grad(L, b), err_msg="db", **FD_TOL)


def loss_inputs(rng, name, n, k):
    """Y strictly inside the clip range (the loss is smooth there) and valid targets."""
    if name == "mse":
        return rng.standard_normal((n, k)), rng.standard_normal((n, k))
    if name == "binary_crossentropy":
        return rng.uniform(0.05, 0.95, (n, k)), rng.uniform(0, 1, (n, k))
    # Categorical: the loss is defined for any positive Y (rows need not sum to 1).
    return rng.uniform(0.05, 1.0, (n, k)), rng.dirichlet(np.ones(k), n)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("n,k", [(3, 4), (1, 1)])
def test_loss_fd(backend, name, n, k):
    ops = fastnn.get_ops(backend)
    Y, T = loss_inputs(np.random.default_rng(7 + n + k), name, n, k)
    value, dY = ops.loss(name, Y, T)
    np.testing.assert_allclose(
        dY, numeric_grad(lambda: ops.loss(name, Y, T)[0], Y), err_msg=name, **FD_TOL
    )


@pytest.mark.parametrize("n,k", [(4, 3), (1, 1), (1, 5)])
def test_softmax_cross_entropy_fd(backend, n, k):
    ops = fastnn.get_ops(backend)
    rng = np.random.default_rng(n * 10 + k)
    Z = 2 * rng.standard_normal((n, k))
    labels = rng.integers(0, k, n)
    _, dZ = ops.softmax_cross_entropy(Z, labels)
    num = numeric_grad(lambda: ops.softmax_cross_entropy(Z, labels)[0], Z)
    np.testing.assert_allclose(dZ, num, **FD_TOL)


@pytest.mark.parametrize("n,k", [(4, 3), (1, 1)])
def test_sigmoid_cross_entropy_fd(backend, n, k):
    ops = fastnn.get_ops(backend)
    rng = np.random.default_rng(n * 10 + k + 1)
    Z = 2 * rng.standard_normal((n, k))
    T = rng.uniform(0, 1, (n, k))
    _, dZ = ops.sigmoid_cross_entropy(Z, T)
    num = numeric_grad(lambda: ops.sigmoid_cross_entropy(Z, T)[0], Z)
    np.testing.assert_allclose(dZ, num, **FD_TOL)


def test_softmax_then_categorical_equals_fused(backend):
    """Chain rule across ops: softmax layer + categorical CE gives the fused op's dZ."""
    ops = fastnn.get_ops(backend)
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((5, 4))
    labels = rng.integers(0, 4, 5)
    I = np.eye(4)
    _, Y = ops.dense_forward(Z, I, np.zeros(4), "softmax")
    value, dY = ops.loss("categorical_crossentropy", Y, I[labels])
    dZ = ops.dense_backward(dY, Z, I, Z, Y, "softmax")[0]
    fused_value, fused_dZ = ops.softmax_cross_entropy(Z, labels)
    assert value == pytest.approx(fused_value, rel=1e-12)
    np.testing.assert_allclose(dZ, fused_dZ, rtol=1e-10, atol=1e-14)


# -- optimizer updates against hand computation --------------------------------------

#: float32 results of a few float32 operations: within a few ulp (6e-8 each).
STEP_TOL = {np.float32: {"rtol": 1e-6, "atol": 1e-7}, np.float64: {"rtol": 1e-13, "atol": 1e-15}}


def test_sgd_update_by_hand(backend, dtype):
    ops = fastnn.get_ops(backend)
    param = np.array([1.0, -2.0, 0.5], dtype)
    grad = np.array([0.5, 0.1, 0.0], dtype)
    velocity = np.array([0.1, 0.0, -0.2], dtype)
    ops.sgd_update(param, grad, velocity, 0.1, 0.9)
    # velocity = 0.9 v - 0.1 g = [0.09 - 0.05, 0 - 0.01, -0.18 - 0]
    np.testing.assert_allclose(velocity, [0.04, -0.01, -0.18], **STEP_TOL[dtype])
    np.testing.assert_allclose(param, [1.04, -2.01, 0.32], **STEP_TOL[dtype])
    # momentum 0: plain gradient descent.
    ops.sgd_update(param, grad, velocity, 0.5, 0.0)
    np.testing.assert_allclose(velocity, [-0.25, -0.05, 0.0], **STEP_TOL[dtype])
    np.testing.assert_allclose(param, [0.79, -2.06, 0.32], **STEP_TOL[dtype])


def test_adam_update_by_hand(backend, dtype):
    """Three Adam steps against the contract's formula evaluated in double precision.

    The hyper-parameters are first rounded to the dtype (the edge casts them), so the
    only difference left is the backend's own rounding: a few ulp per operation.  The
    large gradients with small second moments make ``(1 - beta2) g^2`` the dominant
    term of ``v``: computing it as ``g^2 - beta2 g^2`` (which a compiler allowed to
    reassociate may do) cancels, losing ~3 of float32's 7 digits, and fails here.
    """
    ops = fastnn.get_ops(backend)
    r = lambda x: float(np.dtype(dtype).type(x))  # noqa: E731
    lr, b1, b2, eps = r(0.07), r(0.9), r(0.999), r(1e-8)
    grads = [
        [0.5, -0.1, 2.0, 0.0, 1.5748411],
        [0.3, 0.2, -1.0, 0.0, -3.0],
        [1.0, 1.0, 1.0, 0.0, 2.5],
    ]
    p = [1.0, -2.0, 0.5, 3.0, -0.03]
    m = [0.0] * 5
    v = [0.0] * 5
    param, m_arr, v_arr = np.array(p, dtype), np.zeros(5, dtype), np.zeros(5, dtype)
    for step, g in enumerate(grads, start=1):
        g = [r(x) for x in g]
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        p = [
            pi - lr * (mi / (1 - b1**step)) / (math.sqrt(vi / (1 - b2**step)) + eps)
            for pi, mi, vi in zip(p, m, v)
        ]
        ops.adam_update(param, np.array(g, dtype), m_arr, v_arr, step, lr, b1, b2, eps)
        # Moments are small: relative tolerance only (exact zeros stay exact).
        rel = {"rtol": STEP_TOL[dtype]["rtol"], "atol": 0.0}
        np.testing.assert_allclose(m_arr, m, err_msg=f"m, step {step}", **rel)
        np.testing.assert_allclose(v_arr, v, err_msg=f"v, step {step}", **rel)
        np.testing.assert_allclose(param, p, err_msg=f"param, step {step}", **STEP_TOL[dtype])
    # A zero gradient throughout leaves zero moments: that parameter never moves.
    assert param[3] == 3.0
