"""``@njit`` kernels of the ``numba`` backend: plain loops writing caller-allocated buffers.

Every kernel takes C-contiguous arrays of one float dtype (float32 or float64) and
scalars already cast to that dtype; one compiled specialization per dtype.  The
math runs in the arrays' dtype; only scalar loss *values* are accumulated in
float64, as the reference does.  Kernels validate nothing: the API edge
(``fastnn.dispatch``) has done it.  The formulas themselves live in
:mod:`.scalar`; these are the loops around them.

Activations are passed as integer codes (:mod:`.codes`) so a single compiled
kernel per dtype serves every activation; the activation kernels take ``needs_z``
(None, or True for a code in :data:`~.codes.NEEDS_Z`), so a net without those
activations never compiles their branches.

Public kernels (names are stable: :mod:`.ops` calls them, and other ``@njit`` code,
such as the fused training loops, may):

* :func:`add_bias`, :func:`bias_act_rows`, :func:`activate`, :func:`bias_activation`,
  :func:`dense_forward_fused`, :func:`softmax_row` -- forward epilogues / small
  fused forward.
* :func:`activation_backward`, :func:`column_sums`, :func:`dense_backward_fused` --
  dZ and db (and dX, dW for small shapes).
* :func:`bias_neg_abs`, :func:`sigmoid_from_exp`, :func:`bias_row_shift`,
  :func:`normalize_rows`, :func:`row_sum` -- pieces around NumPy's vectorized
  ``exp`` for large arrays (Numba's ``np.exp`` is scalar libm, several times
  slower than NumPy's SIMD one).
* :func:`mse`, :func:`binary_crossentropy`, :func:`categorical_crossentropy`,
  :func:`softmax_cross_entropy`, :func:`sigmoid_cross_entropy` -- losses: write
  the gradient, return the value; :func:`softmax_ce_row` one row of the fused
  softmax cross-entropy; :func:`shift_rows_pick`,
  :func:`softmax_cross_entropy_from_exp`, :func:`neg_abs`,
  :func:`sigmoid_cross_entropy_from_exp`, :func:`categorical_crossentropy_from_log`
  -- the same around NumPy's ``exp``/``log1p``/``log``.
* :func:`decay`, :func:`sgd_step`, :func:`adam_step`, :func:`adam_step_outside`,
  :func:`rmsprop_step` -- fused optimizer updates on flat arrays.
* :func:`abs_sum`, :func:`square_sum`, :func:`add_penalty_grad` -- the L1/L2 penalty;
  :func:`dropout_mask` -- the counter-based dropout mask.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import scalar
from .codes import SOFTMAX
from .config import JIT, JIT_INLINE, JIT_REDUCE
from .gemm import gemm_nn, gemm_nt, gemm_tn
from .mathfn import fast_log

# ---------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------


@njit(**JIT)
def add_bias(Z, b):
    """``Z += b`` in place; ``Z: (n, m)``, ``b: (m,)``."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Z[i, j] += b[j]


@njit(**JIT_INLINE)
def softmax_row(z, y):
    """``y = softmax(z)`` for one row ``z, y: (m,)`` (``y`` may be ``z``).

    The row maximum is subtracted first (:func:`~.scalar.softmax_numerator`); a NaN
    in the row makes the whole row NaN.
    """
    m = z.shape[0]
    z_max = z[0]
    for j in range(1, m):
        z_max = scalar.nan_max(z_max, z[j])
    total = z.dtype.type(0.0)
    for j in range(m):
        e = scalar.softmax_numerator(z[j], z_max)
        y[j] = e
        total += e
    for j in range(m):
        y[j] = y[j] / total


@njit(**JIT)
def bias_act_rows(Z, b, act, slope, needs_z):
    """In place: ``Z = activation(Z + b)`` for batch-major ``Z: (n, out)``, ``b: (out,)``;
    ``needs_z``: None unless ``act`` is in :data:`~.codes.NEEDS_Z` (see
    :func:`~.scalar.act_backward`).

    The one compiled activation pass of the forward: the ops (:func:`activate`) and
    the fused trainer (:mod:`.train_gemm`) share it, so it compiles once.
    """
    n, k = Z.shape
    for i in range(n):
        scalar.act_forward(act, Z, i, k, b, slope, needs_z)
        if act == SOFTMAX:
            softmax_row(Z[i], Z[i])


@njit(**JIT)
def activate(Z, act, Y, slope, needs_z):
    """``Y = activation(Z)`` for activation code ``act``; ``Z, Y: (n, m)``; ``slope``
    is ``leaky_relu``'s negative slope in the dtype.  ``Y`` may be ``Z`` itself.
    """
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Y[i, j] = Z[i, j]
    bias_act_rows(Y, np.zeros(m, Z.dtype), act, slope, needs_z)


@njit(**JIT)
def bias_activation(Z, b, act, Y, slope, needs_z):
    """Epilogue of ``Z = X @ W``: ``Z += b`` in place, then ``Y = activation(Z)``."""
    add_bias(Z, b)
    activate(Z, act, Y, slope, needs_z)


@njit(**JIT)
def dense_forward_fused(X, W, b, act, Z, Y, slope, needs_z):
    """Whole dense forward in one call (for small shapes, no BLAS call overhead).

    ``X: (n, in)``, ``W: (in, out)``, ``b: (out,)``; writes ``Z = X @ W + b`` and
    ``Y = activation(Z)``, both ``(n, out)``.
    """
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Z[i, j] = b[j]
    gemm_nn(X, W, Z, True)
    activate(Z, act, Y, slope, needs_z)


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
    """In place ``E = exp(-|Z|)`` -> ``sigmoid(Z)`` (:func:`~.scalar.sigmoid_from_exp`)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            E[i, j] = scalar.sigmoid_from_exp(Z[i, j], E[i, j])


@njit(**JIT)
def bias_row_shift(Z, b, S):
    """``Z += b``; ``S = Z - rowmax(Z)`` (the argument of softmax's ``exp``, all <= 0)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Z[i, j] += b[j]
        z_max = Z[i, 0]
        for j in range(1, m):
            z_max = scalar.nan_max(z_max, Z[i, j])
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
def activation_backward(dY, Z, Y, act, dZ, db, slope, needs_z):
    """``dZ = activation'(Z) * dY`` and ``db = sum(dZ, axis=0)`` in one pass.

    Softmax uses the Jacobian-vector product ``dZ = Y * (dY - sum(dY * Y, axis=1))``.
    ``dZ`` may be ``dY`` itself.  The step activation has no derivative; callers
    raise before calling.
    """
    n, m = dY.shape
    zero = dY.dtype.type(0.0)
    for j in range(m):
        db[j] = zero
    if act == SOFTMAX:
        for i in range(n):
            s = zero
            for j in range(m):
                s += dY[i, j] * Y[i, j]
            for j in range(m):
                d = scalar.softmax_backward(dY[i, j], Y[i, j], s)
                dZ[i, j] = d
                db[j] += d
        return
    for i in range(n):
        for j in range(m):
            dZ[i, j] = dY[i, j]
        scalar.act_backward(act, dZ, Z, Y, i, m, db, slope, needs_z)


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
def dense_backward_fused(dY, X, W, Z, Y, act, dZ, dX, dW, db, slope, need_dX, needs_z):
    """Whole dense backward in one call (for small shapes).

    Writes ``dZ, db`` (:func:`activation_backward`), ``dX = dZ @ W.T: (n, in)`` (only
    if ``need_dX``) and ``dW = X.T @ dZ: (in, out)``.
    """
    activation_backward(dY, Z, Y, act, dZ, db, slope, needs_z)
    if need_dX:
        gemm_nt(dZ, W, dX)
    gemm_tn(X, dZ, dW)


# ---------------------------------------------------------------------------
# losses: each writes the gradient and returns the value (float64).  ``w: (n,)``
# holds row weights (Keras' sample_weight: row i's loss and gradient times w[i],
# still divided by the unweighted count); an empty ``w`` means unweighted.
# ---------------------------------------------------------------------------


@njit(**JIT_INLINE)
def row_weight(w, i, one):
    """Row ``i``'s weight, ``one`` when ``w`` is empty (unweighted)."""
    return w[i] if w.shape[0] > 0 else one


@njit(**JIT)
def mse(Y, T, dY, w):
    """``mean((Y - T)**2)`` over all elements; ``dY = 2 (Y - T) / size``."""
    n, k = Y.shape
    coef = Y.dtype.type(2.0 / (n * k))  # rounded once, as the trainers do
    one = Y.dtype.type(1.0)
    total = 0.0
    for i in range(n):
        wi = row_weight(w, i, one)
        row = 0.0
        for j in range(k):
            value, d = scalar.mse_term(Y[i, j], T[i, j], coef)
            dY[i, j] = d * wi
            row += value
        total += row * wi
    return total / (n * k)


@njit(**JIT_REDUCE)
def _sum64(v):
    """sum of a float64 vector; reassociation lets the reduction vectorize."""
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i]
    return s


@njit(**JIT)
def weigh_terms(terms, dY, w):
    """Row weights applied after the fact: ``terms`` (float64, ``(n*k,)``) and ``dY``
    row ``i`` times ``w[i]``."""
    n, k = dY.shape
    for i in range(n):
        wi = w[i]
        for j in range(k):
            terms[i * k + j] *= wi
            dY[i, j] *= wi


@njit(**JIT)
def binary_crossentropy(Y, T, lo, hi, dY, w):
    """Mean of ``-(T log P + (1-T) log(1-P))`` with ``P = clip(Y, lo, hi)``.

    ``lo = eps``, ``hi = 1 - eps`` in the arrays' dtype (:func:`~.scalar.bce_term`).
    One loop over all elements (C-contiguous arrays, flattened); the terms go to
    a float64 buffer summed afterwards, since a running float64 sum would keep
    the loop scalar.
    """
    n, k = Y.shape
    m = n * k
    size = Y.dtype.type(m)
    Yf = Y.reshape(m)
    Tf = T.reshape(m)
    dYf = dY.reshape(m)
    terms = np.empty(m)
    for i in range(m):
        terms[i], dYf[i] = scalar.bce_term(Yf[i], Tf[i], lo, hi, size)
    if w.shape[0] > 0:
        weigh_terms(terms, dY, w)
    return _sum64(terms) / m


@njit(**JIT)
def categorical_crossentropy(Y, T, lo, dY, w):
    """``-mean over rows of sum_j T log max(Y, lo)`` (:func:`~.scalar.cce_value`).

    Writes ``dY = -T / Y / n`` where ``Y >= lo``, else 0 (the clip is active).
    """
    n, k = Y.shape
    rows = Y.dtype.type(n)
    zero = Y.dtype.type(0.0)
    one = Y.dtype.type(1.0)
    total = 0.0
    for i in range(n):
        wi = row_weight(w, i, one)
        row = 0.0
        for j in range(k):
            y = Y[i, j]
            t = T[i, j]
            p = scalar.clip_below(y, lo)
            # One-hot targets are mostly 0: skip their log, unless p is inf/NaN,
            # where 0 * log(p) is NaN in the reference and must stay so.
            if t != zero or not np.isfinite(p):
                row += scalar.cce_value(t, fast_log(p))
            dY[i, j] = scalar.cce_grad(y, t, lo, rows) * wi
        total += row * wi
    return total / n


@njit(**JIT)
def categorical_crossentropy_from_log(Y, T, lo, L, dY, w):
    """:func:`categorical_crossentropy` given ``L = log(max(Y, lo))`` (NumPy's SIMD log)."""
    n, k = Y.shape
    rows = Y.dtype.type(n)
    one = Y.dtype.type(1.0)
    total = 0.0
    for i in range(n):
        wi = row_weight(w, i, one)
        row = 0.0
        for j in range(k):
            row += scalar.cce_value(T[i, j], L[i, j])
            dY[i, j] = scalar.cce_grad(Y[i, j], T[i, j], lo, rows) * wi
        total += row * wi
    return total / n


@njit(**JIT_INLINE)
def softmax_ce_row(z, label, rows, dz):
    """One row of the fused softmax cross-entropy: ``dz = (softmax(z) - onehot(label))
    / rows``; returns ``-log softmax(z)_label`` in float64.  ``z, dz: (k,)``."""
    k = z.shape[0]
    z_max = z[0]
    for j in range(1, k):
        z_max = scalar.nan_max(z_max, z[j])
    s = z.dtype.type(0.0)
    for j in range(k):
        e = scalar.softmax_numerator(z[j], z_max)
        dz[j] = e
        s += e
    for j in range(k):
        dz[j] = scalar.softmax_ce_grad(dz[j], s, j == label, rows)
    return scalar.softmax_ce_value(s, z[label] - z_max)


@njit(**JIT_INLINE)
def scale_row(d, wi):
    """``d *= wi`` for one row (a sample weight)."""
    for j in range(d.shape[0]):
        d[j] *= wi


@njit(**JIT)
def softmax_cross_entropy(Z, labels, dZ, w):
    """Fused softmax + cross-entropy on logits ``Z: (n, k)``, int64 ``labels: (n,)``.

    Returns ``mean_i(logsumexp(Z_i) - Z_i[labels_i])``; writes
    ``dZ = (softmax(Z) - onehot(labels)) / n`` (:func:`softmax_ce_row`).
    """
    n = Z.shape[0]
    rows = Z.dtype.type(n)
    weighted = w.shape[0] > 0
    total = 0.0
    for i in range(n):
        value = softmax_ce_row(Z[i], labels[i], rows, dZ[i])
        if weighted:
            scale_row(dZ[i], w[i])
            value *= w[i]
        total += value
    return total / n


@njit(**JIT)
def sigmoid_cross_entropy(Z, T, dZ, w):
    """Fused sigmoid + binary cross-entropy on logits, mean over all elements
    (:func:`~.scalar.sigmoid_ce`); writes ``dZ = (sigmoid(Z) - T) / size``."""
    n, k = Z.shape
    size = Z.dtype.type(n * k)
    one = Z.dtype.type(1.0)
    total = 0.0
    for i in range(n):
        wi = row_weight(w, i, one)
        row = 0.0
        for j in range(k):
            value, d = scalar.sigmoid_ce(Z[i, j], T[i, j], size)
            dZ[i, j] = d * wi
            row += value
        total += row * wi
    return total / (n * k)


@njit(**JIT)
def shift_rows_pick(Z, labels, S, picked):
    """``S = Z - rowmax(Z)`` and ``picked[i] = S[i, labels[i]]`` (softmax-CE with NumPy's exp)."""
    n, k = Z.shape
    for i in range(n):
        z_max = Z[i, 0]
        for j in range(1, k):
            z_max = scalar.nan_max(z_max, Z[i, j])
        for j in range(k):
            S[i, j] = Z[i, j] - z_max
        picked[i] = S[i, labels[i]]


@njit(**JIT)
def softmax_cross_entropy_from_exp(E, labels, picked, w):
    """``E = exp(Z - rowmax)`` -> ``dZ`` in place; returns the mean loss.

    ``picked[i]`` is the shifted logit of row ``i``'s label (:func:`shift_rows_pick`).
    """
    n, k = E.shape
    rows = E.dtype.type(n)
    one = E.dtype.type(1.0)
    total = 0.0
    for i in range(n):
        wi = row_weight(w, i, one)
        s = row_sum(E, i)
        total += scalar.softmax_ce_value(s, picked[i]) * wi
        c = labels[i]
        for j in range(k):
            E[i, j] = scalar.softmax_ce_grad(E[i, j], s, j == c, rows) * wi
    return total / n


@njit(**JIT)
def neg_abs(Z, E):
    """``E = -|Z|`` (the argument of the stable sigmoid's ``exp``)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            E[i, j] = -abs(Z[i, j])


@njit(**JIT)
def sigmoid_cross_entropy_from_exp(Z, T, E, L, w):
    """Sigmoid-CE from ``E = exp(-|Z|)`` and ``L = log1p(E)``; ``E`` becomes ``dZ``.

    Returns the mean of ``max(z, 0) - z t + L`` (see :func:`~.scalar.sigmoid_ce_term`).
    """
    n, k = Z.shape
    size = Z.dtype.type(n * k)
    one = Z.dtype.type(1.0)
    total = 0.0
    for i in range(n):
        wi = row_weight(w, i, one)
        row = 0.0
        for j in range(k):
            value, d = scalar.sigmoid_ce_term(Z[i, j], T[i, j], E[i, j], L[i, j], size)
            E[i, j] = d * wi
            row += value
        total += row * wi
    return total / (n * k)


# ---------------------------------------------------------------------------
# optimizers: flat (1-D) views of C-contiguous parameters, updated in place
# ---------------------------------------------------------------------------


@njit(**JIT)
def decay(param, lr_wd):
    """Decoupled weight decay ``param -= (lr * wd) * param`` (``lr_wd`` formed by the
    caller in the dtype); only called when ``wd != 0``."""
    for i in range(param.shape[0]):
        param[i] -= lr_wd * param[i]


@njit(**JIT)
def sgd_step(param, grad, velocity, lr, momentum, nesterov):
    """:func:`~.scalar.sgd_step` (or :func:`~.scalar.sgd_nesterov_step`) over 1-D
    arrays, in place."""
    if nesterov:
        for i in range(param.shape[0]):
            param[i], velocity[i] = scalar.sgd_nesterov_step(
                param[i], grad[i], velocity[i], lr, momentum
            )
    else:
        for i in range(param.shape[0]):
            param[i], velocity[i] = scalar.sgd_step(param[i], grad[i], velocity[i], lr, momentum)


@njit(**JIT)
def adam_step(param, grad, m, v, lr, beta1, beta2, eps, m_scale, v_scale):
    """:func:`~.scalar.adam_step` over 1-D arrays, in place.

    ``m_scale = 1 / (1 - beta1**step)`` and ``v_scale = 1 / (1 - beta2**step)`` are
    the bias corrections, computed by the caller in the arrays' dtype.
    """
    for i in range(param.shape[0]):
        param[i], m[i], v[i] = scalar.adam_step(
            param[i], grad[i], m[i], v[i], lr, beta1, beta2, eps, m_scale, v_scale
        )


@njit(**JIT)
def adam_step_outside(param, grad, m, v, lr_t, beta1, beta2, eps):
    """:func:`~.scalar.adam_step_outside` over 1-D arrays, in place (``lr_t`` the
    bias-corrected step size of this update)."""
    for i in range(param.shape[0]):
        param[i], m[i], v[i] = scalar.adam_step_outside(
            param[i], grad[i], m[i], v[i], lr_t, beta1, beta2, eps
        )


@njit(**JIT)
def rmsprop_step(param, grad, ms, mom, lr, rho, momentum, eps):
    """RMSprop (:func:`~.scalar.rmsprop_inc`) over 1-D arrays, in place: with
    ``momentum > 0`` ``mom = momentum mom + inc; param -= mom``, else ``param -= inc``
    (``mom`` untouched)."""
    if momentum > param.dtype.type(0.0):
        for i in range(param.shape[0]):
            ms[i], inc = scalar.rmsprop_inc(grad[i], ms[i], lr, rho, eps)
            mom[i] = scalar.flush(momentum * mom[i] + inc)
            param[i] -= mom[i]
    else:
        for i in range(param.shape[0]):
            ms[i], inc = scalar.rmsprop_inc(grad[i], ms[i], lr, rho, eps)
            param[i] -= inc


# ---------------------------------------------------------------------------
# penalty and dropout
# ---------------------------------------------------------------------------


@njit(**JIT_REDUCE)
def abs_sum(W):
    """``sum |W|`` in float64 (1-D); reassociation lets the reduction vectorize."""
    s = 0.0
    for i in range(W.shape[0]):
        s += abs(np.float64(W[i]))
    return s


@njit(**JIT_REDUCE)
def square_sum(W):
    """``sum W^2`` in float64 (1-D); reassociation lets the reduction vectorize."""
    s = 0.0
    for i in range(W.shape[0]):
        x = np.float64(W[i])
        s += x * x
    return s


@njit(**JIT)
def add_penalty_grad(W, dW, c1, c2):
    """``dW += c1 sign(W) + c2 W`` (1-D), each term only if its coefficient is nonzero;
    ``c1, c2`` in the dtype (``sign(0) = 0``)."""
    zero = W.dtype.type(0.0)
    if c1 != zero:
        for i in range(W.shape[0]):
            dW[i] += c1 * np.sign(W[i])
    if c2 != zero:
        for i in range(W.shape[0]):
            dW[i] += c2 * W[i]


@njit(**JIT)
def dropout_mask(M, seed, step, layer, threshold, scale):
    """``M[i] = scale`` if element ``i`` is kept (:func:`~.scalar.dropout_kept`), else 0;
    ``M`` 1-D (the flattened block), ``seed``/``threshold`` uint64."""
    key = scalar.dropout_key(seed, step, layer)
    zero = M.dtype.type(0.0)
    for i in range(M.shape[0]):
        M[i] = scale if scalar.dropout_kept(key, i, threshold) else zero
