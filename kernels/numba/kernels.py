"""``@njit`` kernels of the ``numba`` backend: plain loops writing caller-allocated buffers.

Every kernel takes C-contiguous arrays of one float dtype (float32 or float64) and
scalars already cast to that dtype; one compiled specialization per dtype.  The
math runs in the arrays' dtype (constants are made with ``A.dtype.type(...)`` so a
float32 loop is never promoted to float64); only scalar loss *values* are
accumulated in float64, as the reference does.  Kernels validate nothing: the
API edge (``fastnn.dispatch``) has done it.

Activations are passed as integer codes (:data:`ACTIVATION_CODES`) so a single
compiled kernel per dtype serves every activation; the branch sits outside the
element loops.

Public kernels (names are stable: :mod:`.ops` calls them, and other ``@njit`` code,
such as the fused training loop, may):

* :func:`add_bias`, :func:`activate`, :func:`bias_activation`,
  :func:`dense_forward_fused` -- forward epilogues / small fused forward.
* :func:`activation_backward`, :func:`column_sums`, :func:`dense_backward_fused` --
  dZ and db (and dX, dW for small shapes).
* :func:`bias_neg_abs`, :func:`sigmoid_from_exp`, :func:`bias_row_shift`,
  :func:`normalize_rows`, :func:`row_sum` -- pieces around NumPy's vectorized
  ``exp`` for large arrays (Numba's ``np.exp`` is scalar libm, ~5x slower than
  NumPy's SIMD one).
* :func:`mse`, :func:`binary_crossentropy`, :func:`categorical_crossentropy`,
  :func:`softmax_cross_entropy`, :func:`sigmoid_cross_entropy` -- losses: write
  the gradient, return the value; :func:`shift_rows_pick`,
  :func:`softmax_cross_entropy_from_exp`, :func:`neg_abs`,
  :func:`sigmoid_cross_entropy_from_exp`, :func:`categorical_crossentropy_from_log`
  -- the same around NumPy's ``exp``/``log1p``/``log``.
* :func:`sgd_step`, :func:`adam_step` -- fused optimizer updates on flat arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT, JIT_REDUCE
from .gemm import gemm_nn, gemm_nt, gemm_tn
from .mathfn import fast_log

ACT_LINEAR = 0
ACT_SIGMOID = 1
ACT_RELU = 2
ACT_TANH = 3
ACT_SOFTMAX = 4
ACT_STEP = 5

#: Activation name -> integer code understood by the kernels.
ACTIVATION_CODES: dict[str, int] = {
    "linear": ACT_LINEAR,
    "sigmoid": ACT_SIGMOID,
    "relu": ACT_RELU,
    "tanh": ACT_TANH,
    "softmax": ACT_SOFTMAX,
    "step": ACT_STEP,
}


# ---------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------


@njit(**JIT)
def sigmoid(z, one):
    """Stable logistic of one scalar: ``exp`` only ever sees ``-|z|`` (no overflow).

    ``one`` is ``1`` in ``z``'s dtype (keeps float32 math in float32).
    """
    e = np.exp(-abs(z))
    return one / (one + e) if z >= 0 else e / (one + e)


@njit(**JIT)
def add_bias(Z, b):
    """``Z += b`` in place; ``Z: (n, m)``, ``b: (m,)``."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Z[i, j] += b[j]


@njit(**JIT)
def activate(Z, act, Y):
    """``Y = activation(Z)`` for activation code ``act``; ``Z, Y: (n, m)``.

    ``Y`` may be ``Z`` itself (in place) except for softmax, which needs the row
    maximum of ``Z`` first (it reads ``Z`` before writing ``Y`` row by row, so
    in place also works there).
    """
    n, m = Z.shape
    zero = Z.dtype.type(0.0)
    one = Z.dtype.type(1.0)
    if act == ACT_LINEAR:
        for i in range(n):
            for j in range(m):
                Y[i, j] = Z[i, j]
    elif act == ACT_RELU:
        for i in range(n):
            for j in range(m):
                z = Z[i, j]
                Y[i, j] = zero if z < zero else z  # relu(NaN) stays NaN
    elif act == ACT_SIGMOID:
        for i in range(n):
            for j in range(m):
                Y[i, j] = sigmoid(Z[i, j], one)
    elif act == ACT_TANH:
        for i in range(n):
            for j in range(m):
                Y[i, j] = np.tanh(Z[i, j])
    elif act == ACT_STEP:
        # Heaviside with H(0) = 1, as the perceptron rule defines it.
        for i in range(n):
            for j in range(m):
                Y[i, j] = one if Z[i, j] >= zero else zero
    else:  # ACT_SOFTMAX
        for i in range(n):
            # softmax(z) = softmax(z - max z): exp() of a non-positive number cannot overflow.
            z_max = Z[i, 0]
            for j in range(1, m):
                if Z[i, j] > z_max:
                    z_max = Z[i, j]
            total = zero
            for j in range(m):
                e = np.exp(Z[i, j] - z_max)
                Y[i, j] = e
                total += e
            for j in range(m):
                Y[i, j] = Y[i, j] / total


@njit(**JIT)
def bias_activation(Z, b, act, Y):
    """Epilogue of ``Z = X @ W``: ``Z += b`` in place, then ``Y = activation(Z)``."""
    add_bias(Z, b)
    activate(Z, act, Y)


@njit(**JIT)
def dense_forward_fused(X, W, b, act, Z, Y):
    """Whole dense forward in one call (for small shapes, no BLAS call overhead).

    ``X: (n, in)``, ``W: (in, out)``, ``b: (out,)``; writes ``Z = X @ W + b`` and
    ``Y = activation(Z)``, both ``(n, out)``.
    """
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Z[i, j] = b[j]
    gemm_nn(X, W, Z, True)
    activate(Z, act, Y)


@njit(**JIT)
def bias_neg_abs(Z, b, E):
    """``Z += b``; ``E = -|Z|`` (the argument of the stable sigmoid's ``exp``)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            E[i, j] = -abs(z)


@njit(**JIT)
def sigmoid_from_exp(Z, E):
    """In place ``E = exp(-|Z|)`` -> ``sigmoid(Z)``.

    ``sigmoid(z) = 1/(1+E)`` for ``z >= 0``, else ``E/(1+E)``.
    """
    n, m = Z.shape
    zero = Z.dtype.type(0.0)
    one = Z.dtype.type(1.0)
    for i in range(n):
        for j in range(m):
            e = E[i, j]
            E[i, j] = (one if Z[i, j] >= zero else e) / (one + e)


@njit(**JIT)
def bias_row_shift(Z, b, S):
    """``Z += b``; ``S = Z - rowmax(Z)`` (the argument of softmax's ``exp``, all <= 0)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Z[i, j] += b[j]
        z_max = Z[i, 0]
        for j in range(1, m):
            if Z[i, j] > z_max:
                z_max = Z[i, j]
        for j in range(m):
            S[i, j] = Z[i, j] - z_max


@njit(**JIT_REDUCE)
def row_sum(A, i):
    """``sum(A[i, :])`` in ``A``'s dtype, reassociated so it vectorizes."""
    total = A.dtype.type(0.0)
    for j in range(A.shape[1]):
        total += A[i, j]
    return total


@njit(**JIT)
def normalize_rows(E):
    """In place ``E /= sum(E, axis=1)`` (``E = exp(S)`` -> softmax)."""
    n, m = E.shape
    for i in range(n):
        total = row_sum(E, i)
        for j in range(m):
            E[i, j] = E[i, j] / total


# ---------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------


@njit(**JIT)
def activation_backward(dY, Z, Y, act, dZ, db):
    """``dZ = activation'(Z) * dY`` and ``db = sum(dZ, axis=0)`` in one pass.

    Softmax uses the Jacobian-vector product ``dZ = Y * (dY - sum(dY * Y, axis=1))``.
    ``dZ`` may be ``dY`` itself.  The step activation has no derivative; callers
    raise before calling (code ``ACT_STEP`` leaves ``dZ = dY``).
    """
    n, m = dY.shape
    zero = dY.dtype.type(0.0)
    one = dY.dtype.type(1.0)
    for j in range(m):
        db[j] = zero
    if act == ACT_RELU:
        # relu'(0) is taken as 0
        for i in range(n):
            for j in range(m):
                d = dY[i, j] if Z[i, j] > zero else zero
                dZ[i, j] = d
                db[j] += d
    elif act == ACT_SIGMOID:
        # sigmoid'(z) = y (1 - y)
        for i in range(n):
            for j in range(m):
                y = Y[i, j]
                d = dY[i, j] * y * (one - y)
                dZ[i, j] = d
                db[j] += d
    elif act == ACT_TANH:
        # tanh'(z) = 1 - y^2
        for i in range(n):
            for j in range(m):
                y = Y[i, j]
                d = dY[i, j] * (one - y * y)
                dZ[i, j] = d
                db[j] += d
    elif act == ACT_SOFTMAX:
        for i in range(n):
            s = zero
            for j in range(m):
                s += dY[i, j] * Y[i, j]
            for j in range(m):
                d = Y[i, j] * (dY[i, j] - s)
                dZ[i, j] = d
                db[j] += d
    else:  # linear
        for i in range(n):
            for j in range(m):
                d = dY[i, j]
                dZ[i, j] = d
                db[j] += d


@njit(**JIT)
def column_sums(A, out):
    """``out = sum(A, axis=0)``; ``A: (n, m)``, ``out: (m,)`` (``db`` of a linear layer)."""
    n, m = A.shape
    for j in range(m):
        out[j] = A.dtype.type(0.0)
    for i in range(n):
        for j in range(m):
            out[j] += A[i, j]


@njit(**JIT)
def dense_backward_fused(dY, X, W, Z, Y, act, dZ, dX, dW, db):
    """Whole dense backward in one call (for small shapes).

    Writes ``dZ, db`` (:func:`activation_backward`), ``dX = dZ @ W.T: (n, in)`` and
    ``dW = X.T @ dZ: (in, out)``.
    """
    activation_backward(dY, Z, Y, act, dZ, db)
    gemm_nt(dZ, W, dX)
    gemm_tn(X, dZ, dW)


# ---------------------------------------------------------------------------
# losses: each writes the gradient and returns the value (float64)
# ---------------------------------------------------------------------------


@njit(**JIT)
def mse(Y, T, dY):
    """``mean((Y - T)**2)`` over all elements; ``dY = 2 (Y - T) / size``."""
    n, k = Y.shape
    scale = Y.dtype.type(2.0) / Y.dtype.type(n * k)
    total = 0.0
    for i in range(n):
        for j in range(k):
            d = Y[i, j] - T[i, j]
            total += np.float64(d) * np.float64(d)
            dY[i, j] = scale * d
    return total / (n * k)


@njit(**JIT_REDUCE)
def _sum64(v):
    """sum of a float64 vector; reassociation lets the reduction vectorize."""
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i]
    return s


@njit(**JIT)
def binary_crossentropy(Y, T, lo, hi, dY):
    """Mean of ``-(T log P + (1-T) log(1-P))`` with ``P = clip(Y, lo, hi)``.

    ``lo = eps``, ``hi = 1 - eps`` in the arrays' dtype.  ``dY`` is the derivative
    of the clipped expression: zero where ``Y`` lies outside ``[lo, hi]``.  One
    loop over all elements (C-contiguous arrays, flattened) with an inlined,
    vectorizable log; the terms go to a float64 buffer summed afterwards, since
    a running float64 sum would keep the loop scalar.
    """
    n, k = Y.shape
    m = n * k
    size = Y.dtype.type(m)
    zero = Y.dtype.type(0.0)
    one = Y.dtype.type(1.0)
    Yf = Y.reshape(m)
    Tf = T.reshape(m)
    dYf = dY.reshape(m)
    terms = np.empty(m)
    for i in range(m):
        y = Yf[i]
        t = Tf[i]
        # explicit compares keep NaN as NaN (min/max could drop it)
        p = y
        if p < lo:
            p = lo
        if p > hi:
            p = hi
        # log in the arrays' dtype (rounded once from float64: within an ulp),
        # accumulated in float64
        terms[i] = np.float64(t * fast_log(p) + (one - t) * fast_log(one - p))
        inside = (y >= lo) and (y <= hi)
        dYf[i] = (p - t) / (p * (one - p)) / size if inside else zero
    return -_sum64(terms) / m


@njit(**JIT)
def categorical_crossentropy(Y, T, lo, dY):
    """``-mean over rows of sum_j T log max(Y, lo)``.

    Writes ``dY = -T / Y / n`` where ``Y >= lo``, else 0 (the clip is active).
    """
    n, k = Y.shape
    rows = Y.dtype.type(n)
    zero = Y.dtype.type(0.0)
    total = 0.0
    for i in range(n):
        for j in range(k):
            y = Y[i, j]
            t = T[i, j]
            p = lo if y < lo else y  # NaN stays NaN
            # One-hot targets are mostly 0: skip their log, unless p is inf/NaN,
            # where 0 * log(p) is NaN in the reference and must stay so.
            if t != zero or not np.isfinite(p):
                total -= np.float64(t * np.log(p))
            dY[i, j] = -t / p / rows if y >= lo else zero
    return total / n


@njit(**JIT)
def categorical_crossentropy_from_log(Y, T, lo, L, dY):
    """:func:`categorical_crossentropy` given ``L = log(max(Y, lo))`` (NumPy's SIMD log)."""
    n, k = Y.shape
    rows = Y.dtype.type(n)
    zero = Y.dtype.type(0.0)
    total = 0.0
    for i in range(n):
        for j in range(k):
            y = Y[i, j]
            t = T[i, j]
            total -= np.float64(t * L[i, j])
            dY[i, j] = -t / (lo if y < lo else y) / rows if y >= lo else zero
    return total / n


@njit(**JIT)
def _softmax_ce_row_grad(E, i, c, inv_s, one, rows):
    """Row ``i`` of ``E = exp(z - max)`` -> ``(softmax - onehot(c)) / rows``, in place."""
    k = E.shape[1]
    for j in range(k):
        E[i, j] = E[i, j] * inv_s
    E[i, c] -= one
    for j in range(k):
        E[i, j] = E[i, j] / rows


@njit(**JIT)
def softmax_cross_entropy(Z, labels, dZ):
    """Fused softmax + cross-entropy on logits ``Z: (n, k)``, int64 ``labels: (n,)``.

    Returns ``mean_i(logsumexp(Z_i) - Z_i[labels_i])``; writes
    ``dZ = (softmax(Z) - onehot(labels)) / n``.  Rows are shifted by their
    maximum so ``exp`` never overflows.
    """
    n, k = Z.shape
    one = Z.dtype.type(1.0)
    rows = Z.dtype.type(n)
    total = 0.0
    for i in range(n):
        z_max = Z[i, 0]
        for j in range(1, k):
            if Z[i, j] > z_max:
                z_max = Z[i, j]
        s = Z.dtype.type(0.0)
        for j in range(k):
            e = np.exp(Z[i, j] - z_max)
            dZ[i, j] = e
            s += e
        c = labels[i]
        # -log softmax(z)_c = log(sum_j exp(z_j - max)) - (z_c - max)
        total += np.log(np.float64(s)) - (np.float64(Z[i, c]) - np.float64(z_max))
        _softmax_ce_row_grad(dZ, i, c, one / s, one, rows)
    return total / n


@njit(**JIT)
def sigmoid_cross_entropy(Z, T, dZ):
    """Fused sigmoid + binary cross-entropy on logits, mean over all elements.

    Value terms ``max(z, 0) - z t + log1p(exp(-|z|))`` (no ``exp`` overflow, no
    ``log(0)``); writes ``dZ = (sigmoid(Z) - T) / size``.
    """
    n, k = Z.shape
    size = Z.dtype.type(n * k)
    zero = Z.dtype.type(0.0)
    one = Z.dtype.type(1.0)
    total = 0.0
    for i in range(n):
        for j in range(k):
            z = Z[i, j]
            t = T[i, j]
            e = np.exp(-abs(z))
            total += np.float64(max(z, zero) - z * t + np.log1p(e))
            dZ[i, j] = ((one if z >= zero else e) / (one + e) - t) / size
    return total / (n * k)


@njit(**JIT)
def shift_rows_pick(Z, labels, S, picked):
    """``S = Z - rowmax(Z)`` and ``picked[i] = S[i, labels[i]]`` (softmax-CE with NumPy's exp)."""
    n, k = Z.shape
    for i in range(n):
        z_max = Z[i, 0]
        for j in range(1, k):
            if Z[i, j] > z_max:
                z_max = Z[i, j]
        for j in range(k):
            S[i, j] = Z[i, j] - z_max
        picked[i] = S[i, labels[i]]


@njit(**JIT)
def softmax_cross_entropy_from_exp(E, labels, picked):
    """``E = exp(Z - rowmax)`` -> ``dZ`` in place; returns the mean loss.

    ``picked[i]`` is the shifted logit of row ``i``'s label (:func:`shift_rows_pick`).
    """
    n, k = E.shape
    one = E.dtype.type(1.0)
    rows = E.dtype.type(n)
    total = 0.0
    for i in range(n):
        s = row_sum(E, i)
        total += np.log(np.float64(s)) - np.float64(picked[i])
        _softmax_ce_row_grad(E, i, labels[i], one / s, one, rows)
    return total / n


@njit(**JIT)
def neg_abs(Z, E):
    """``E = -|Z|`` (the argument of the stable sigmoid's ``exp``)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            E[i, j] = -abs(Z[i, j])


@njit(**JIT)
def sigmoid_cross_entropy_from_exp(Z, T, E, L):
    """Sigmoid-CE from ``E = exp(-|Z|)`` and ``L = log1p(E)``; ``E`` becomes ``dZ``.

    Returns the mean of ``max(z, 0) - z t + L`` (see :func:`sigmoid_cross_entropy`).
    """
    n, k = Z.shape
    size = Z.dtype.type(n * k)
    zero = Z.dtype.type(0.0)
    one = Z.dtype.type(1.0)
    total = 0.0
    for i in range(n):
        for j in range(k):
            z = Z[i, j]
            t = T[i, j]
            e = E[i, j]
            total += np.float64(max(z, zero) - z * t + L[i, j])
            E[i, j] = ((one if z >= zero else e) / (one + e) - t) / size
    return total / (n * k)


# ---------------------------------------------------------------------------
# optimizers: flat (1-D) views of C-contiguous parameters, updated in place
# ---------------------------------------------------------------------------


@njit(**JIT)
def sgd_step(param, grad, velocity, lr, momentum):
    """``velocity = momentum * velocity - lr * grad; param += velocity`` (1-D arrays)."""
    for i in range(param.shape[0]):
        v = momentum * velocity[i] - lr * grad[i]
        velocity[i] = v
        param[i] += v


@njit(**JIT)
def adam_step(param, grad, m, v, lr, beta1, beta2, eps, m_scale, v_scale):
    """One fused Adam update on 1-D arrays, in place.

    ``m_scale = 1 / (1 - beta1**step)`` and ``v_scale = 1 / (1 - beta2**step)`` are
    the bias corrections, computed by the caller in the arrays' dtype.
    """
    one = param.dtype.type(1.0)
    c1 = one - beta1
    c2 = one - beta2
    for i in range(param.shape[0]):
        g = grad[i]
        mi = beta1 * m[i] + c1 * g
        vi = beta2 * v[i] + c2 * (g * g)
        m[i] = mi
        v[i] = vi
        param[i] -= lr * (mi * m_scale) / (np.sqrt(vi * v_scale) + eps)
