"""The ``numpy`` backend: the op contract as vectorized array expressions."""

from __future__ import annotations

import math

import numpy as np

from . import cblas
from .contract import (
    LEAKY_RELU_SLOPE,
    PROB_EPS,
    SPLITMIX_GAMMA,
    SPLITMIX_M1,
    SPLITMIX_M2,
    Ops,
    StepBackwardError,
)

# Python floats (weak under NumPy's promotion rules): float32 math stays float32.
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _sigmoid(Z):
    # Split by sign so exp() only ever sees non-positive arguments: no overflow.
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E)).astype(Z.dtype, copy=False)


def _softmax(Z):
    # Subtracting the row maximum leaves softmax unchanged and keeps exp() <= 1.
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _erfc(X):
    # SciPy (a dependency of fastnn) has the vectorized erfc NumPy lacks; imported on
    # first use so `import fastnn` stays light.
    from scipy.special import erfc

    return erfc(X)


def _softplus(Z):
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): exp() never overflows.
    return np.maximum(Z, 0) + np.log1p(np.exp(-np.abs(Z)))


def _activate(Z, activation, slope):
    if activation == "linear":
        return Z.copy()
    if activation == "sigmoid":
        return _sigmoid(Z)
    if activation == "relu":
        return np.maximum(Z, 0)
    if activation == "tanh":
        return np.tanh(Z)
    if activation == "softmax":
        return _softmax(Z)
    if activation == "step":
        return (Z >= 0).astype(Z.dtype)
    if activation == "leaky_relu":
        return np.where(Z > 0, Z, slope * Z)  # NaN takes the second branch: s*NaN is NaN
    if activation == "elu":
        # expm1 only of min(z, 0) <= 0 (np.minimum propagates NaN)
        return np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0)))
    if activation == "gelu":
        return 0.5 * Z * _erfc(-_SQRT_HALF * Z)
    if activation == "softplus":
        return _softplus(Z)
    if activation == "silu":
        return Z * _sigmoid(Z)
    raise AssertionError(activation)  # unreachable: names are validated at the edge


def _activation_backward(dY, Z, Y, activation, slope):
    """dZ = dL/dZ from dY = dL/dY."""
    if activation == "linear":
        return dY.copy()
    if activation == "sigmoid":
        return dY * Y * (1 - Y)
    if activation == "relu":
        return dY * (Z > 0)
    if activation == "tanh":
        return dY * (1 - Y * Y)
    if activation == "softmax":
        return Y * (dY - np.sum(dY * Y, axis=1, keepdims=True))
    if activation == "step":
        raise StepBackwardError()
    if activation == "leaky_relu":
        return dY * np.where(Z > 0, 1, slope).astype(Z.dtype, copy=False)
    if activation == "elu":
        return dY * np.where(Z > 0, 1, np.exp(np.minimum(Z, 0)))
    if activation == "gelu":
        # Phi(z) + z phi(z)
        return dY * (0.5 * _erfc(-_SQRT_HALF * Z) + Z * np.exp(-0.5 * Z * Z) * _INV_SQRT_2PI)
    if activation == "softplus":
        return dY * _sigmoid(Z)
    if activation == "silu":
        S = _sigmoid(Z)
        return dY * (S * (1 + Z * (1 - S)))
    raise AssertionError(activation)


def _dZ_dX(dY, W, Z, Y, activation, slope, need_dX):
    """The backward's ``dZ`` and ``dX = dZ W^T`` (None unless ``need_dX``)."""
    dZ = _activation_backward(dY, Z, Y, activation, slope)
    return dZ, (dZ @ W.T if need_dX else None)


# splitmix64 constants as uint64 scalars: uint64 array arithmetic wraps mod 2^64.
_GAMMA, _M1, _M2 = (np.uint64(c) for c in (SPLITMIX_GAMMA, SPLITMIX_M1, SPLITMIX_M2))
_S30, _S27, _S31, _S11 = (np.uint64(c) for c in (30, 27, 31, 11))


def _mix64(H):
    """splitmix64's finalizer on a uint64 array (in place, returned)."""
    H ^= H >> _S30
    H *= _M1
    H ^= H >> _S27
    H *= _M2
    H ^= H >> _S31
    return H


def _dropout_key(seed, step, layer):
    """contract.dropout_key in uint64 arithmetic (a 1-element array: no scalar warnings)."""
    K = np.array([seed & (2**64 - 1)], dtype=np.uint64)
    K += _GAMMA
    K = _mix64(K) ^ np.uint64(step)
    K = _mix64(K) ^ np.uint64(layer)
    return _mix64(K)


class NumpyOps(Ops):
    name = "numpy"

    def dense_forward(self, X, W, b, activation, *, negative_slope=LEAKY_RELU_SLOPE):
        Z = X @ W
        Z += b
        return Z, _activate(Z, activation, negative_slope)

    def dense_backward(
        self, dY, X, W, Z, Y, activation, *, need_dX=True, negative_slope=LEAKY_RELU_SLOPE
    ):
        dZ, dX = _dZ_dX(dY, W, Z, Y, activation, negative_slope, need_dX)
        return dX, X.T @ dZ, dZ.sum(axis=0)

    def dense_backward_sgd(
        self, dY, X, W, Z, Y, activation, lr, velocity=None, *, need_dX=True,
        negative_slope=LEAKY_RELU_SLOPE,
    ):  # fmt: skip
        # The step folds into the weight-gradient product, W += -lr X^T dZ with BLAS's
        # beta = 1: dW is never stored and W takes one pass instead of three.
        dZ, dX = _dZ_dX(dY, W, Z, Y, activation, negative_slope, need_dX)  # W before the step
        if velocity is not None:  # a product of its own: W's step stays the same
            np.multiply(X.T @ dZ, -lr, out=velocity)
        if not cblas.gemm(True, False, -float(lr), X, dZ, 1.0, W):
            W -= lr * (X.T @ dZ)
        return dX, dZ.sum(axis=0)

    def loss(self, name, Y, T, *, weights=None):
        dtype = Y.dtype.type
        # Row weights as a column (broadcast over the k outputs); None keeps the
        # unweighted expressions (and their exact numbers).
        Wc = None if weights is None else weights[:, None]
        if name == "mse":
            D = Y - T
            if Wc is None:
                return float(np.mean(D * D)), (2 / D.size) * D
            return float(np.sum(Wc * (D * D)) / D.size), (2 / D.size) * D * Wc
        if name == "binary_crossentropy":
            eps = dtype(PROB_EPS)
            P = np.clip(Y, eps, 1 - eps)
            E = T * np.log(P) + (1 - T) * np.log(1 - P)
            value = -np.mean(E) if Wc is None else -np.sum(Wc * E) / Y.size
            # d/dP of the mean; zero where the clip is active (Y outside [eps, 1-eps]).
            dY = (P - T) / (P * (1 - P)) / Y.size
            dY *= (Y >= eps) & (Y <= 1 - eps)
            if Wc is not None:
                dY *= Wc
            return float(value), dY.astype(Y.dtype, copy=False)
        if name == "categorical_crossentropy":
            eps = dtype(PROB_EPS)
            P = np.maximum(Y, eps)
            n = Y.shape[0]
            E = T * np.log(P)
            value = -np.sum(E if Wc is None else Wc * E) / n
            dY = -T / P / n
            dY *= Y >= eps
            if Wc is not None:
                dY *= Wc
            return float(value), dY.astype(Y.dtype, copy=False)
        raise AssertionError(name)

    def softmax_cross_entropy(self, Z, labels, *, weights=None):
        n = Z.shape[0]
        rows = np.arange(n)
        S = Z - Z.max(axis=1, keepdims=True)
        E = np.exp(S)
        sumE = E.sum(axis=1)
        # log-softmax of the true class, computed from shifted logits (no overflow).
        row_loss = np.log(sumE) - S[rows, labels]
        value = np.mean(row_loss) if weights is None else np.sum(weights * row_loss) / n
        dZ = E / sumE[:, None]
        dZ[rows, labels] -= 1
        dZ /= n
        if weights is not None:
            dZ *= weights[:, None]
        return float(value), dZ

    def sigmoid_cross_entropy(self, Z, T, *, weights=None):
        # log(1 + exp(-|z|)) never overflows and log1p keeps precision near 0.
        E = np.maximum(Z, 0) - Z * T + np.log1p(np.exp(-np.abs(Z)))
        dZ = (_sigmoid(Z) - T) / Z.size
        if weights is None:
            return float(np.mean(E)), dZ.astype(Z.dtype, copy=False)
        Wc = weights[:, None]
        dZ *= Wc
        return float(np.sum(Wc * E) / Z.size), dZ.astype(Z.dtype, copy=False)

    def sgd_update(self, param, grad, velocity, lr, momentum, *, nesterov=False, weight_decay=0):
        if weight_decay:
            param -= (lr * weight_decay) * param  # decoupled decay, before the step
        if momentum == 0 and not nesterov:
            # v = 0 v - lr g is -lr g (for the finite v a finite run keeps): one pass
            # writes it, one adds it, instead of four passes and a temporary.
            np.multiply(grad, -lr, out=velocity)
            param += velocity
            return
        velocity *= momentum
        velocity -= lr * grad
        if nesterov:
            param += momentum * velocity - lr * grad
        else:
            param += velocity

    def adam_update(
        self, param, grad, m, v, step, lr, beta1, beta2, eps, *, weight_decay=0, eps_outside=False
    ):
        dtype = param.dtype.type
        one = dtype(1)
        if weight_decay:
            param -= (lr * weight_decay) * param  # decoupled decay, before the step
        m *= beta1
        m += (one - beta1) * grad
        v *= beta2
        v += (one - beta2) * (grad * grad)
        if eps_outside:
            # scikit-learn / Keras 3: bias corrections folded into the step size.
            lr_t = lr * np.sqrt(one - beta2**step) / (one - beta1**step)
            param -= lr_t * m / (np.sqrt(v) + eps)
            return
        m_hat_scale = one / (one - beta1**step)
        v_hat_scale = one / (one - beta2**step)
        param -= lr * (m * m_hat_scale) / (np.sqrt(v * v_hat_scale) + eps)

    def rmsprop_update(self, param, grad, ms, mom, lr, rho, momentum, eps, *, weight_decay=0):
        one = param.dtype.type(1)
        if weight_decay:
            param -= (lr * weight_decay) * param  # decoupled decay, before the step
        ms *= rho
        ms += (one - rho) * (grad * grad)
        inc = lr * grad / np.sqrt(ms + eps)  # Keras: eps inside the root
        if momentum > 0:
            mom *= momentum
            mom += inc
            param -= mom
        else:
            param -= inc

    def penalty(self, W, dW, l1, l2, scale=1.0):
        dtype = W.dtype.type
        value = 0.0
        if l1:
            value += float(l1) * float(np.abs(W).sum())
            dW += dtype(scale * l1) * np.sign(W)
        if l2:
            value += float(l2) * float(np.vdot(W, W))
            dW += dtype(2.0 * scale * l2) * W
        return float(scale) * value

    def dropout_mask(self, shape, rate, seed, step, layer, dtype):
        n, width = shape
        key = _dropout_key(seed, step, layer)
        # Element index i*width + c takes splitmix64 output number index+1 from state key.
        H = np.arange(1, n * width + 1, dtype=np.uint64)
        H *= _GAMMA
        H += key
        U = (_mix64(H) >> _S11).astype(np.float64) * 2.0**-53  # top 53 bits, in [0, 1)
        scale = np.dtype(dtype).type(1.0 / (1.0 - float(rate)))
        return np.where(U >= rate, scale, np.dtype(dtype).type(0)).reshape(n, width)
