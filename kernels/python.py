"""The ``python`` backend: the op contract as plain loops, the living definition.

Each op is written to be read next to the math, one ``for`` loop per index, on
Python floats (double precision; results are rounded to the input dtype at the
end).  Speed is not its job: it is the reference the other backends are tested
against.
"""

from __future__ import annotations

import math

import numpy as np

from .contract import LEAKY_RELU_SLOPE, PROB_EPS, Ops, StepBackwardError, dropout_keep

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _sigmoid(z: float) -> float:
    # Two branches so exp() only sees -|z|: sigmoid(-1000) is 0.0, not an overflow.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _gelu(z: float) -> float:
    # z * Phi(z) with Phi(z) = erfc(-z / sqrt 2) / 2: erfc keeps relative precision
    # where 1 + erf(z / sqrt 2) would cancel (z very negative).
    return 0.5 * z * math.erfc(-z * _SQRT_HALF)


def _softplus(z: float) -> float:
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): exp() never overflows.
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _activate_row(z: list[float], activation: str, slope: float) -> list[float]:
    if activation in _ELEMENTWISE:
        f = _ELEMENTWISE[activation]
        return [f(zj, slope) for zj in z]
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


#: The activations added in issue 10, elementwise: name -> f(z, slope).  Each written
#: so NaN propagates (a comparison with NaN is false: the second branch computes on NaN).
_ELEMENTWISE = {
    "leaky_relu": lambda z, s: z if z > 0 else s * z,
    "elu": lambda z, s: z if z > 0 else math.expm1(z),  # NaN: expm1(NaN) is NaN
    "gelu": lambda z, s: _gelu(z),
    "softplus": lambda z, s: _softplus(z),
    "silu": lambda z, s: z * _sigmoid(z),
}


def _gelu_prime(z: float) -> float:
    # d/dz z Phi(z) = Phi(z) + z phi(z)
    return 0.5 * math.erfc(-z * _SQRT_HALF) + z * math.exp(-0.5 * z * z) * _INV_SQRT_2PI


def _silu_prime(z: float) -> float:
    # d/dz z sg(z) = sg + z sg (1 - sg)
    sg = _sigmoid(z)
    return sg * (1.0 + z * (1.0 - sg))


#: Derivatives of the elementwise activations above: name -> f'(z, slope).
_ELEMENTWISE_PRIME = {
    "leaky_relu": lambda z, s: 1.0 if z > 0 else s,
    "elu": lambda z, s: 1.0 if z > 0 else math.exp(z),
    "gelu": lambda z, s: _gelu_prime(z),
    "softplus": lambda z, s: _sigmoid(z),
    "silu": lambda z, s: _silu_prime(z),
}


def _activation_backward_row(dy, z, y, activation, slope):
    """dL/dz for one row, from dL/dy."""
    if activation in _ELEMENTWISE_PRIME:
        f = _ELEMENTWISE_PRIME[activation]
        return [dy[j] * f(z[j], slope) for j in range(len(z))]
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

    def dense_forward(self, X, W, b, activation, *, negative_slope=LEAKY_RELU_SLOPE):
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
            Y.append(_activate_row(z, activation, float(negative_slope)))
        dt = X.dtype
        return _array(Z, dt).reshape(n, n_out), _array(Y, dt).reshape(n, n_out)

    def dense_backward(
        self, dY, X, W, Z, Y, activation, *, need_dX=True, negative_slope=LEAKY_RELU_SLOPE
    ):
        if activation == "step":
            raise StepBackwardError()  # before any row: an empty batch raises too
        x, w = X.tolist(), W.tolist()
        n, n_in, n_out = X.shape[0], W.shape[0], W.shape[1]
        slope = float(negative_slope)
        dZ = [
            _activation_backward_row(dy, z, y, activation, slope)
            for dy, z, y in zip(dY.tolist(), Z.tolist(), Y.tolist())
        ]
        dX = [[0.0] * n_in for _ in range(n)]
        dW = [[0.0] * n_out for _ in range(n_in)]
        db = [0.0] * n_out
        for i in range(n):
            for j in range(n_out):
                db[j] += dZ[i][j]  # db_j = sum_i dZ_ij
                for k in range(n_in):
                    if need_dX:
                        dX[i][k] += dZ[i][j] * w[k][j]  # dX_ik = sum_j dZ_ij W_kj
                    dW[k][j] += x[i][k] * dZ[i][j]  # dW_kj = sum_i X_ik dZ_ij
        dt = X.dtype
        return (
            _array(dX, dt).reshape(n, n_in) if need_dX else None,
            _array(dW, dt).reshape(n_in, n_out),
            _array(db, dt).reshape(n_out),
        )

    def loss(self, name, Y, T, *, weights=None):
        y, t = Y.tolist(), T.tolist()
        n, k = Y.shape
        # Row weights; 1.0 when absent (w * x == x exactly: the unweighted numbers).
        w = [1.0] * n if weights is None else weights.tolist()
        size = n * k
        total = 0.0
        dY = [[0.0] * k for _ in range(n)]
        if name == "mse":
            for i in range(n):
                for j in range(k):
                    d = y[i][j] - t[i][j]
                    total += w[i] * d * d
                    dY[i][j] = w[i] * 2.0 * d / size
            value = total / size
        elif name == "binary_crossentropy":
            # Clip in the input dtype: 1 - eps rounds differently in float32.
            lo = float(Y.dtype.type(PROB_EPS))
            hi = float(Y.dtype.type(1) - Y.dtype.type(PROB_EPS))
            for i in range(n):
                for j in range(k):
                    p = min(max(y[i][j], lo), hi)
                    total += w[i] * -(t[i][j] * math.log(p) + (1.0 - t[i][j]) * math.log(1.0 - p))
                    inside = lo <= y[i][j] <= hi  # the clip's derivative is 0 outside
                    d = (p - t[i][j]) / (p * (1.0 - p)) / size if inside else 0.0
                    dY[i][j] = w[i] * d
            value = total / size
        elif name == "categorical_crossentropy":
            lo = float(Y.dtype.type(PROB_EPS))
            for i in range(n):
                for j in range(k):
                    p = max(y[i][j], lo)
                    total += w[i] * (-t[i][j] * math.log(p))
                    dY[i][j] = w[i] * (-t[i][j] / p / n) if y[i][j] >= lo else 0.0
            value = total / n
        else:
            raise AssertionError(name)
        return value, _array(dY, Y.dtype).reshape(n, k)

    def softmax_cross_entropy(self, Z, labels, *, weights=None):
        z, lab = Z.tolist(), labels.tolist()
        n, k = Z.shape
        w = [1.0] * n if weights is None else weights.tolist()
        total = 0.0
        dZ = []
        for i in range(n):
            z_max = max(z[i])
            e = [math.exp(zj - z_max) for zj in z[i]]
            s = sum(e)
            # -log softmax(z)_c = log(sum_j exp(z_j - max)) - (z_c - max)
            total += w[i] * (math.log(s) - (z[i][lab[i]] - z_max))
            row = [w[i] * ej / s / n for ej in e]
            row[lab[i]] -= w[i] / n
            dZ.append(row)
        return total / n, _array(dZ, Z.dtype).reshape(n, k)

    def sigmoid_cross_entropy(self, Z, T, *, weights=None):
        z, t = Z.tolist(), T.tolist()
        n, k = Z.shape
        w = [1.0] * n if weights is None else weights.tolist()
        size = n * k
        total = 0.0
        dZ = [[0.0] * k for _ in range(n)]
        for i in range(n):
            for j in range(k):
                zij, tij = z[i][j], t[i][j]
                # -(t log s + (1-t) log(1-s)) rewritten so no exp() can overflow
                total += w[i] * (max(zij, 0.0) - zij * tij + math.log1p(math.exp(-abs(zij))))
                dZ[i][j] = w[i] * (_sigmoid(zij) - tij) / size
        return total / size, _array(dZ, Z.dtype).reshape(n, k)

    def sgd_update(self, param, grad, velocity, lr, momentum, *, nesterov=False, weight_decay=0):
        p, g, vel = param.reshape(-1), grad.reshape(-1), velocity.reshape(-1)
        lr, momentum, wd = float(lr), float(momentum), float(weight_decay)
        for i in range(p.shape[0]):
            if wd:
                p[i] = float(p[i]) - lr * wd * float(p[i])  # decoupled decay first
            gi = float(g[i])
            vel[i] = momentum * float(vel[i]) - lr * gi
            if nesterov:
                p[i] = float(p[i]) + momentum * float(vel[i]) - lr * gi
            else:
                p[i] = float(p[i]) + float(vel[i])

    def adam_update(
        self, param, grad, m, v, step, lr, beta1, beta2, eps, *, weight_decay=0, eps_outside=False
    ):
        p, g, m1, v1 = param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1)
        lr, beta1, beta2, eps = float(lr), float(beta1), float(beta2), float(eps)
        wd = float(weight_decay)
        # scikit-learn / Keras 3: the bias corrections folded into the step size.
        lr_t = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        for i in range(p.shape[0]):
            if wd:
                p[i] = float(p[i]) - lr * wd * float(p[i])  # decoupled decay first
            gi = float(g[i])
            m1[i] = beta1 * float(m1[i]) + (1.0 - beta1) * gi
            v1[i] = beta2 * float(v1[i]) + (1.0 - beta2) * gi * gi
            if eps_outside:
                p[i] = float(p[i]) - lr_t * float(m1[i]) / (math.sqrt(float(v1[i])) + eps)
            else:
                m_hat = float(m1[i]) / (1.0 - beta1**step)  # bias correction
                v_hat = float(v1[i]) / (1.0 - beta2**step)
                p[i] = float(p[i]) - lr * m_hat / (math.sqrt(v_hat) + eps)

    def rmsprop_update(self, param, grad, ms, mom, lr, rho, momentum, eps, *, weight_decay=0):
        p, g = param.reshape(-1), grad.reshape(-1)
        ms1, mom1 = ms.reshape(-1), mom.reshape(-1)
        lr, rho, momentum, eps = float(lr), float(rho), float(momentum), float(eps)
        wd = float(weight_decay)
        for i in range(p.shape[0]):
            if wd:
                p[i] = float(p[i]) - lr * wd * float(p[i])  # decoupled decay first
            gi = float(g[i])
            ms1[i] = rho * float(ms1[i]) + (1.0 - rho) * gi * gi
            inc = lr * gi / math.sqrt(float(ms1[i]) + eps)  # Keras: eps inside the root
            if momentum > 0:
                mom1[i] = momentum * float(mom1[i]) + inc
                p[i] = float(p[i]) - float(mom1[i])
            else:
                p[i] = float(p[i]) - inc

    def penalty(self, W, dW, l1, l2, scale=1.0):
        w, g = W.reshape(-1), dW.reshape(-1)
        l1, l2, scale = float(l1), float(l2), float(scale)
        # The gradient's coefficients are rounded to the dtype once, as the contract says.
        c1 = float(W.dtype.type(scale * l1))
        c2 = float(W.dtype.type(2.0 * scale * l2))
        sum_abs = sum_sq = 0.0
        for i in range(w.shape[0]):
            wi = float(w[i])
            sum_abs += abs(wi)
            sum_sq += wi * wi
            gi = float(g[i])
            if c1:
                gi += c1 * ((wi > 0) - (wi < 0))  # sign(0) = 0
            if c2:
                gi += c2 * wi
            g[i] = gi
        return scale * (l1 * sum_abs + l2 * sum_sq)

    def dropout_mask(self, shape, rate, seed, step, layer, dtype):
        n, width = shape
        rate = float(rate)
        scale = 1.0 / (1.0 - rate)
        rows = [
            [scale if dropout_keep(seed, step, layer, i * width + c, rate) else 0.0
             for c in range(width)]
            for i in range(n)
        ]  # fmt: skip
        return np.array(rows, dtype=dtype).reshape(n, width)
