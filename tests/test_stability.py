"""Numerical stability: extreme logits and saturated probabilities give finite,
correct results without floating-point warnings, on every backend and dtype.

Each case runs with warnings turned into errors and NumPy's overflow, divide and
invalid flags raising.  Underflow is allowed: ``exp(-2000)`` rounding to 0 is the
correctly rounded result (and what the stable formulas rely on), not a failure.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from conftest import assert_close

import fastnn
from fastnn.kernels.contract import PROB_EPS

#: Per dtype: huge logits that are still far from overflowing the dtype itself.
HUGE = {np.float32: 1e30, np.float64: 1e300}


@contextmanager
def strict_fp():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            yield


def logits_layer(values, dtype):
    """X, W, b such that dense_forward's Z is exactly ``values`` (one column per value)."""
    values = np.asarray(values, dtype)
    return np.ones((1, 1), dtype), values.reshape(1, -1), np.zeros(values.size, dtype)


def finite(*arrays):
    return all(np.all(np.isfinite(np.asarray(A))) for A in arrays)


@pytest.mark.parametrize("big", [1000.0, "huge"])
def test_sigmoid_tanh_extremes(backend, dtype, big):
    big = HUGE[dtype] if big == "huge" else big
    ops = fastnn.get_ops(backend)
    X, W, b = logits_layer([big, -big, 0.0], dtype)
    with strict_fp():
        Z, Y = ops.dense_forward(X, W, b, "sigmoid")
        assert_close(Y, [[1.0, 0.0, 0.5]], dtype)
        _, Yt = ops.dense_forward(X, W, b, "tanh")
        assert_close(Yt, [[1.0, -1.0, 0.0]], dtype)
        grads = ops.dense_backward(np.ones_like(Y), X, W, Z, Y, "sigmoid")
        grads_t = ops.dense_backward(np.ones_like(Y), X, W, Z, Yt, "tanh")
    assert finite(Z, Y, Yt, *grads, *grads_t)
    # Saturated units pass no gradient; the one at 0 passes sigmoid'(0) = 1/4.
    assert_close(grads[2], [0.0, 0.0, 0.25], dtype)
    assert_close(grads_t[2], [0.0, 0.0, 1.0], dtype)


@pytest.mark.parametrize("big", [1000.0, "huge"])
def test_softmax_extremes(backend, dtype, big):
    big = HUGE[dtype] if big == "huge" else big
    ops = fastnn.get_ops(backend)
    X, W, b = logits_layer([big, 0.0, -big], dtype)
    with strict_fp():
        Z, Y = ops.dense_forward(X, W, b, "softmax")
        dZ = ops.dense_backward(np.ones_like(Y), X, W, Z, Y, "softmax")[2]
        # All logits equal and huge: uniform, not NaN from inf - inf.
        Xe, We, be = logits_layer([big, big], dtype)
        _, Ye = ops.dense_forward(Xe, We, be, "softmax")
    assert_close(Y, [[1.0, 0.0, 0.0]], dtype)
    assert_close(Ye, [[0.5, 0.5]], dtype)
    assert finite(Z, Y, dZ, Ye)


@pytest.mark.parametrize("big", [1000.0, "huge"])
def test_softmax_cross_entropy_extremes(backend, dtype, big):
    big = HUGE[dtype] if big == "huge" else big
    ops = fastnn.get_ops(backend)
    Z = np.array([[big, 0.0, -big]] * 3, dtype)
    with strict_fp():
        value, dZ = ops.softmax_cross_entropy(Z, np.array([0, 1, 2]))
        right, dZ_right = ops.softmax_cross_entropy(Z[:1], np.array([0]))
    assert math.isfinite(value) and finite(dZ)
    # -log softmax: 0 for the winning class, big and 2 big for the others.
    assert value == pytest.approx((0 + big + 2 * big) / 3, rel=1e-6)
    assert right == 0.0
    assert_close(dZ, [[0, 0, 0], [1 / 3, -1 / 3, 0], [1 / 3, 0, -1 / 3]], dtype)
    assert_close(dZ_right, [[0, 0, 0]], dtype)


@pytest.mark.parametrize("big", [1000.0, "huge"])
def test_sigmoid_cross_entropy_extremes(backend, dtype, big):
    big = HUGE[dtype] if big == "huge" else big
    ops = fastnn.get_ops(backend)
    Z = np.array([[big, -big, big, -big]], dtype)
    T = np.array([[1.0, 0.0, 0.0, 1.0]], dtype)
    with strict_fp():
        value, dZ = ops.sigmoid_cross_entropy(Z, T)
    # Two confident right answers cost 0, two confident wrong ones cost big each.
    assert value == pytest.approx(2 * big / 4, rel=1e-6)
    assert_close(dZ, [[0, 0, 0.25, -0.25]], dtype)


def test_losses_at_log_zero(backend, dtype):
    """Probabilities exactly 0 and 1: the clip keeps log() finite and dY zero there."""
    ops = fastnn.get_ops(backend)
    Y = np.array([[0.0, 1.0, 0.0, 1.0]], dtype)
    T = np.array([[0.0, 1.0, 1.0, 0.0]], dtype)
    # float32 rounds the clip bounds: use the values the clip really applies.
    eps = np.dtype(dtype).type(PROB_EPS)
    lo, hi = float(eps), float(1 - eps)
    with strict_fp():
        value, dY = ops.loss("binary_crossentropy", Y, T)
        cvalue, cdY = ops.loss("categorical_crossentropy", Y[:, :2], np.array([[1, 0]], dtype))
        cvalue2, cdY2 = ops.loss("categorical_crossentropy", Y[:, :2], np.array([[0, 1]], dtype))
    # Right answers cost about eps, wrong ones about -log(eps) = 16.1 (clipped Y).
    expected = -(math.log(1 - lo) + math.log(hi) + math.log(lo) + math.log(1 - hi)) / 4
    assert value == pytest.approx(expected, rel=1e-6)
    assert_close(dY, np.zeros((1, 4)), dtype)
    assert cvalue == pytest.approx(-math.log(lo), rel=1e-6)
    assert cvalue2 == 0.0
    assert finite(dY, cdY, cdY2)
    assert_close(cdY, [[0, 0]], dtype)  # Y = 0 is clipped: no gradient through the clip
    assert_close(cdY2, [[0, -1]], dtype)  # -T / Y at Y = 1


def test_mse_with_large_values(backend, dtype):
    ops = fastnn.get_ops(backend)
    big = 1e15 if dtype is np.float32 else 1e150  # squares stay below the dtype's max
    Y = np.array([[big, -big]], dtype)
    T = np.zeros((1, 2), dtype)
    with strict_fp():
        value, dY = ops.loss("mse", Y, T)
    assert value == pytest.approx(float(np.dtype(dtype).type(big)) ** 2, rel=1e-6)
    assert_close(dY, [[big, -big]], dtype)
