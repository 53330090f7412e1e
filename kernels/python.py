"""The ``python`` backend: the op contract as plain loops, the living definition.

Each op is written to be read next to the math, one ``for`` loop per index, on
Python floats (double precision; results are rounded to the input dtype at the
end).  Speed is not its job: it is the reference the other backends are tested
against.
"""

from __future__ import annotations

import math

import numpy as np

from .contract import PROB_EPS, Ops, StepBackwardError


def _sigmoid(z: float) -> float:
    # Two branches so exp() only sees -|z|: sigmoid(-1000) is 0.0, not an overflow.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _activate_row(z: list[float], activation: str) -> list[float]:
    if activation == "linear":
        return list(z)
    if activation == "sigmoid":
        return [_sigmoid(zj) for zj in z]
    if activation == "relu":
        # Written as `z <= 0` so NaN (false in every comparison) propagates, as in
        # np.maximum: a diverged layer must not look healthy.
        return [0.0 if zj <= 0 else zj for zj in z]
    if activation == "tanh":
        return [math.tanh(zj) for zj in z]
    if activation == "step":
        return [1.0 if zj >= 0 else 0.0 for zj in z]
    if activation == "softmax":
        # softmax(z) = softmax(z - max z): exp() of a non-positive number cannot overflow.
        z_max = max(z)
        e = [math.exp(zj - z_max) for zj in z]
        total = sum(e)
        return [ej / total for ej in e]
    raise AssertionError(activation)


def _activation_backward_row(dy, z, y, activation):
    """dL/dz for one row, from dL/dy."""
    if activation == "linear":
        return list(dy)
    if activation == "sigmoid":
        # sigmoid'(z) = y (1 - y)
        return [dy[j] * y[j] * (1.0 - y[j]) for j in range(len(z))]
    if activation == "relu":
        # relu'(0) is taken as 0
        return [dy[j] if z[j] > 0 else 0.0 for j in range(len(z))]
    if activation == "tanh":
        # tanh'(z) = 1 - y^2
        return [dy[j] * (1.0 - y[j] * y[j]) for j in range(len(z))]
    if activation == "softmax":
        # Jacobian dy_i/dz_j = y_i (delta_ij - y_j), so dz_j = y_j (dy_j - sum_i dy_i y_i)
        s = sum(dy[i] * y[i] for i in range(len(y)))
        return [y[j] * (dy[j] - s) for j in range(len(y))]
    if activation == "step":
        raise StepBackwardError()
    raise AssertionError(activation)


def _array(rows, dtype):
    return np.array(rows, dtype=dtype)


class PythonOps(Ops):
    name = "python"

    def dense_forward(self, X, W, b, activation):
        x, w, bias = X.tolist(), W.tolist(), b.tolist()
        n, n_in, n_out = len(x), len(w), len(bias)
        Z, Y = [], []
        for i in range(n):
            z = []
            for j in range(n_out):
                # one unit: z_ij = sum_k x_ik w_kj + b_j
                total = bias[j]
                for k in range(n_in):
                    total += x[i][k] * w[k][j]
                z.append(total)
            Z.append(z)
            Y.append(_activate_row(z, activation))
        dt = X.dtype
        return _array(Z, dt).reshape(n, n_out), _array(Y, dt).reshape(n, n_out)

    def dense_backward(self, dY, X, W, Z, Y, activation):
        if activation == "step":
            raise StepBackwardError()  # before any row: an empty batch raises too
        x, w = X.tolist(), W.tolist()
        n, n_in, n_out = X.shape[0], W.shape[0], W.shape[1]
        dZ = [
            _activation_backward_row(dy, z, y, activation)
            for dy, z, y in zip(dY.tolist(), Z.tolist(), Y.tolist())
        ]
        dX = [[0.0] * n_in for _ in range(n)]
        dW = [[0.0] * n_out for _ in range(n_in)]
        db = [0.0] * n_out
        for i in range(n):
            for j in range(n_out):
                db[j] += dZ[i][j]  # db_j = sum_i dZ_ij
                for k in range(n_in):
                    dX[i][k] += dZ[i][j] * w[k][j]  # dX_ik = sum_j dZ_ij W_kj
                    dW[k][j] += x[i][k] * dZ[i][j]  # dW_kj = sum_i X_ik dZ_ij
        dt = X.dtype
        return (
            _array(dX, dt).reshape(n, n_in),
            _array(dW, dt).reshape(n_in, n_out),
            _array(db, dt).reshape(n_out),
        )

    def loss(self, name, Y, T):
        y, t = Y.tolist(), T.tolist()
        n, k = Y.shape
        size = n * k
        total = 0.0
        dY = [[0.0] * k for _ in range(n)]
        if name == "mse":
            for i in range(n):
                for j in range(k):
                    d = y[i][j] - t[i][j]
                    total += d * d
                    dY[i][j] = 2.0 * d / size
            value = total / size
        elif name == "binary_crossentropy":
            # Clip in the input dtype: 1 - eps rounds differently in float32.
            lo = float(Y.dtype.type(PROB_EPS))
            hi = float(Y.dtype.type(1) - Y.dtype.type(PROB_EPS))
            for i in range(n):
                for j in range(k):
                    p = min(max(y[i][j], lo), hi)
                    total += -(t[i][j] * math.log(p) + (1.0 - t[i][j]) * math.log(1.0 - p))
                    inside = lo <= y[i][j] <= hi  # the clip's derivative is 0 outside
                    dY[i][j] = (p - t[i][j]) / (p * (1.0 - p)) / size if inside else 0.0
            value = total / size
        elif name == "categorical_crossentropy":
            lo = float(Y.dtype.type(PROB_EPS))
            for i in range(n):
                for j in range(k):
                    p = max(y[i][j], lo)
                    total += -t[i][j] * math.log(p)
                    dY[i][j] = -t[i][j] / p / n if y[i][j] >= lo else 0.0
            value = total / n
        else:
            raise AssertionError(name)
        return value, _array(dY, Y.dtype).reshape(n, k)

    def softmax_cross_entropy(self, Z, labels):
        z, lab = Z.tolist(), labels.tolist()
        n, k = Z.shape
        total = 0.0
        dZ = []
        for i in range(n):
            z_max = max(z[i])
            e = [math.exp(zj - z_max) for zj in z[i]]
            s = sum(e)
            # -log softmax(z)_c = log(sum_j exp(z_j - max)) - (z_c - max)
            total += math.log(s) - (z[i][lab[i]] - z_max)
            row = [ej / s / n for ej in e]
            row[lab[i]] -= 1.0 / n
            dZ.append(row)
        return total / n, _array(dZ, Z.dtype).reshape(n, k)

    def sigmoid_cross_entropy(self, Z, T):
        z, t = Z.tolist(), T.tolist()
        n, k = Z.shape
        size = n * k
        total = 0.0
        dZ = [[0.0] * k for _ in range(n)]
        for i in range(n):
            for j in range(k):
                zij, tij = z[i][j], t[i][j]
                # -(t log s + (1-t) log(1-s)) rewritten so no exp() can overflow
                total += max(zij, 0.0) - zij * tij + math.log1p(math.exp(-abs(zij)))
                dZ[i][j] = (_sigmoid(zij) - tij) / size
        return total / size, _array(dZ, Z.dtype).reshape(n, k)

    def sgd_update(self, param, grad, velocity, lr, momentum):
        p, g, vel = param.reshape(-1), grad.reshape(-1), velocity.reshape(-1)
        lr, momentum = float(lr), float(momentum)
        for i in range(p.shape[0]):
            vel[i] = momentum * float(vel[i]) - lr * float(g[i])
            p[i] = float(p[i]) + float(vel[i])

    def adam_update(self, param, grad, m, v, step, lr, beta1, beta2, eps):
        p, g, m1, v1 = param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1)
        lr, beta1, beta2, eps = float(lr), float(beta1), float(beta2), float(eps)
        for i in range(p.shape[0]):
            gi = float(g[i])
            m1[i] = beta1 * float(m1[i]) + (1.0 - beta1) * gi
            v1[i] = beta2 * float(v1[i]) + (1.0 - beta2) * gi * gi
            m_hat = float(m1[i]) / (1.0 - beta1**step)  # bias correction
            v_hat = float(v1[i]) / (1.0 - beta2**step)
            p[i] = float(p[i]) - lr * m_hat / (math.sqrt(v_hat) + eps)
