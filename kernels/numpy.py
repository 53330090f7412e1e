"""The ``numpy`` backend: the op contract as vectorized array expressions."""

from __future__ import annotations

import numpy as np

from .contract import PROB_EPS, Ops, StepBackwardError


def _sigmoid(Z):
    # Split by sign so exp() only ever sees non-positive arguments: no overflow.
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E)).astype(Z.dtype, copy=False)


def _softmax(Z):
    # Subtracting the row maximum leaves softmax unchanged and keeps exp() <= 1.
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _activate(Z, activation):
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
    raise AssertionError(activation)  # unreachable: names are validated at the edge


def _activation_backward(dY, Z, Y, activation):
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
    raise AssertionError(activation)


class NumpyOps(Ops):
    name = "numpy"

    def dense_forward(self, X, W, b, activation):
        Z = X @ W
        Z += b
        return Z, _activate(Z, activation)

    def dense_backward(self, dY, X, W, Z, Y, activation):
        dZ = _activation_backward(dY, Z, Y, activation)
        return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)

    def loss(self, name, Y, T):
        dtype = Y.dtype.type
        if name == "mse":
            D = Y - T
            return float(np.mean(D * D)), (2 / D.size) * D
        if name == "binary_crossentropy":
            eps = dtype(PROB_EPS)
            P = np.clip(Y, eps, 1 - eps)
            value = -np.mean(T * np.log(P) + (1 - T) * np.log(1 - P))
            # d/dP of the mean; zero where the clip is active (Y outside [eps, 1-eps]).
            dY = (P - T) / (P * (1 - P)) / Y.size
            dY *= (Y >= eps) & (Y <= 1 - eps)
            return float(value), dY.astype(Y.dtype, copy=False)
        if name == "categorical_crossentropy":
            eps = dtype(PROB_EPS)
            P = np.maximum(Y, eps)
            n = Y.shape[0]
            value = -np.sum(T * np.log(P)) / n
            dY = -T / P / n
            dY *= Y >= eps
            return float(value), dY.astype(Y.dtype, copy=False)
        raise AssertionError(name)

    def softmax_cross_entropy(self, Z, labels):
        n = Z.shape[0]
        rows = np.arange(n)
        S = Z - Z.max(axis=1, keepdims=True)
        E = np.exp(S)
        sumE = E.sum(axis=1)
        # log-softmax of the true class, computed from shifted logits (no overflow).
        value = np.mean(np.log(sumE) - S[rows, labels])
        dZ = E / sumE[:, None]
        dZ[rows, labels] -= 1
        dZ /= n
        return float(value), dZ

    def sigmoid_cross_entropy(self, Z, T):
        # log(1 + exp(-|z|)) never overflows and log1p keeps precision near 0.
        value = np.mean(np.maximum(Z, 0) - Z * T + np.log1p(np.exp(-np.abs(Z))))
        dZ = (_sigmoid(Z) - T) / Z.size
        return float(value), dZ.astype(Z.dtype, copy=False)

    def sgd_update(self, param, grad, velocity, lr, momentum):
        velocity *= momentum
        velocity -= lr * grad
        param += velocity

    def adam_update(self, param, grad, m, v, step, lr, beta1, beta2, eps):
        dtype = param.dtype.type
        one = dtype(1)
        m *= beta1
        m += (one - beta1) * grad
        v *= beta2
        v += (one - beta2) * (grad * grad)
        m_hat_scale = one / (one - beta1**step)
        v_hat_scale = one / (one - beta2**step)
        param -= lr * (m * m_hat_scale) / (np.sqrt(v * v_hat_scale) + eps)
