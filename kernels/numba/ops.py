"""``NumbaOps``: the op contract on ``@njit`` kernels; allocates outputs, calls kernels.

Design (see the module constants for the thresholds):

* Matrix products of large layers go to NumPy's OpenBLAS (``np.matmul(..., out=)``),
  the same library and thread pool the ``numpy`` backend uses, so the process has
  one BLAS pool and nothing on this path spins against it.  Bias and activation
  are fused into one pass over ``Z`` afterwards; the activation derivative and
  the ``db`` reduction are fused into one pass before the backward products.
* Tiny layers (:func:`_small`) run entirely in one compiled
  call (:func:`~.kernels.dense_forward_fused`, :func:`~.kernels.dense_backward_fused`):
  there the cost is call overhead, not arithmetic.  With one row, ``dW = X.T @ dZ``
  is an outer product computed by a kernel (NumPy does not use BLAS for it).
* Numba's ``np.exp``/``np.tanh`` are scalar libm calls, several times slower per
  element than NumPy's SIMD ufuncs.  For all but tiny ``sigmoid``/``tanh``/``softmax``
  outputs the fused kernels therefore prepare the ``exp`` argument, NumPy's ufunc
  evaluates it in place, and a second kernel finishes (:data:`VECTOR_EXP_MIN`,
  :data:`VECTOR_TANH_MIN`).
"""

from __future__ import annotations

import numpy as np

from ..contract import LEAKY_RELU_SLOPE, MASK64, PROB_EPS, Ops, StepBackwardError
from . import kernels as K
from .codes import ACTIVATION_CODES, LINEAR, NEEDS_Z, SIGMOID, SOFTMAX, TANH
from .gemm import gemm_tn
from .scalar import keep_threshold
from .train import TrainMixin

#: Largest ``n * in * out`` computed by the fused small-shape kernels instead of
#: NumPy's BLAS.  The loop products are several times slower than single-threaded
#: OpenBLAS, so they only win where the call overhead of a BLAS/ufunc call
#: dominates: a few thousand multiply-adds.
SMALL_PRODUCT = 4096

#: With one row the loop product is a contiguous AXPY sweep and stays ahead of the
#: BLAS call plus epilogue call up to about this many weights (``in * out``).
SMALL_ROW_WEIGHTS = 16384


def _small(n, n_in, n_out):
    """Whether a layer takes the fused small-shape kernels (see the constants above)."""
    return n * n_in * n_out <= SMALL_PRODUCT or (n == 1 and n_in * n_out <= SMALL_ROW_WEIGHTS)


#: Smallest output size for which sigmoid/softmax use NumPy's SIMD ``exp`` in place
#: instead of Numba's scalar one (the time saved per element pays for the two
#: extra calls above this size).
VECTOR_EXP_MIN = 1024

#: Same for tanh: Numba's scalar ``tanh`` is much slower per element than NumPy's,
#: so the break-even size is smaller.
VECTOR_TANH_MIN = 64


def _needs_z(act):
    """The kernels' ``needs_z`` argument: True for a code in :data:`~.codes.NEEDS_Z`,
    else None, so a net without those activations never compiles their branches."""
    return True if act in NEEDS_Z else None


def _epilogue(Z, b, act, Y, slope):
    """``Z += b`` and ``Y = activation(Z)`` after ``Z = X @ W``."""
    if act == TANH and Z.size >= VECTOR_TANH_MIN:
        K.add_bias(Z, b)
        np.tanh(Z, out=Y)
    elif act == SIGMOID and Z.size >= VECTOR_EXP_MIN:
        K.bias_neg_abs(Z, b, Y)  # Y = -|Z|
        np.exp(Y, out=Y)
        K.sigmoid_from_exp(Z, Y)
    elif act == SOFTMAX and Z.size >= VECTOR_EXP_MIN:
        K.bias_row_shift(Z, b, Y)  # Y = Z - rowmax(Z) <= 0
        np.exp(Y, out=Y)
        K.normalize_rows(Y)
    else:
        K.bias_activation(Z, b, act, Y, slope, _needs_z(act))


#: Stand-in for "no row weights" (the loss kernels take an empty array).
_NO_WEIGHTS = {np.dtype(t): np.zeros(0, t) for t in (np.float32, np.float64)}


def _weights(weights, dtype):
    return _NO_WEIGHTS[dtype] if weights is None else weights


class NumbaOps(TrainMixin, Ops):
    """The ``numba`` backend.  Inputs are validated and C-contiguous (see the contract)."""

    name = "numba"

    def dense_forward(self, X, W, b, activation, *, negative_slope=LEAKY_RELU_SLOPE):
        act = ACTIVATION_CODES[activation]
        slope = X.dtype.type(negative_slope)
        n, n_in = X.shape
        n_out = W.shape[1]
        Z = np.empty((n, n_out), dtype=X.dtype)
        Y = np.empty((n, n_out), dtype=X.dtype)
        if Z.size == 0:
            return Z, Y
        if _small(n, n_in, n_out):
            K.dense_forward_fused(X, W, b, act, Z, Y, slope, _needs_z(act))
        else:
            np.matmul(X, W, out=Z)
            _epilogue(Z, b, act, Y, slope)
        return Z, Y

    def dense_backward(
        self, dY, X, W, Z, Y, activation, *, need_dX=True, negative_slope=LEAKY_RELU_SLOPE
    ):
        if activation == "step":
            raise StepBackwardError()
        act = ACTIVATION_CODES[activation]
        n, n_in = X.shape
        n_out = W.shape[1]
        dt = X.dtype
        slope = dt.type(negative_slope)
        dX = np.empty((n, n_in), dtype=dt) if need_dX else None
        dW = np.empty((n_in, n_out), dtype=dt)
        db = np.empty(n_out, dtype=dt)
        if _small(n, n_in, n_out):
            dZ = np.empty((n, n_out), dtype=dt)
            dX_buf = dX if need_dX else np.empty((0, n_in), dtype=dt)
            K.dense_backward_fused(
                dY, X, W, Z, Y, act, dZ, dX_buf, dW, db, slope, need_dX, _needs_z(act)
            )
            return dX, dW, db
        if act == LINEAR:
            dZ = dY  # dZ = dY: no copy needed, dZ is not returned
            K.column_sums(dY, db)
        else:
            dZ = np.empty((n, n_out), dtype=dt)
            K.activation_backward(dY, Z, Y, act, dZ, db, slope, _needs_z(act))
        if need_dX:
            np.matmul(dZ, W.T, out=dX)
        if n == 1:
            # An outer product: NumPy's matmul does not hand a one-row X.T to BLAS
            # and falls back to a much slower generic loop.
            gemm_tn(X, dZ, dW)
        else:
            np.matmul(X.T, dZ, out=dW)
        return dX, dW, db

    def loss(self, name, Y, T, *, weights=None):
        dY = np.empty_like(Y)
        dtype = Y.dtype.type
        w = _weights(weights, Y.dtype)
        if name == "mse":
            value = K.mse(Y, T, dY, w)
        elif name == "binary_crossentropy":
            # clip bounds in the input dtype: 1 - eps rounds differently in float32
            eps = dtype(PROB_EPS)
            value = K.binary_crossentropy(Y, T, eps, dtype(1) - eps, dY, w)
        elif name == "categorical_crossentropy":
            lo = dtype(PROB_EPS)
            if Y.size >= VECTOR_EXP_MIN:
                # soft targets need every log: NumPy's SIMD log, then one fused pass
                L = np.maximum(Y, lo)
                np.log(L, out=L)
                value = K.categorical_crossentropy_from_log(Y, T, lo, L, dY, w)
            else:
                value = K.categorical_crossentropy(Y, T, lo, dY, w)
        else:
            raise AssertionError(name)  # unreachable: names are validated at the edge
        return float(value), dY

    def softmax_cross_entropy(self, Z, labels, *, weights=None):
        dZ = np.empty_like(Z)
        w = _weights(weights, Z.dtype)
        if Z.size >= VECTOR_EXP_MIN:
            picked = np.empty(Z.shape[0], dtype=Z.dtype)
            K.shift_rows_pick(Z, labels, dZ, picked)  # dZ = Z - rowmax <= 0
            np.exp(dZ, out=dZ)
            value = K.softmax_cross_entropy_from_exp(dZ, labels, picked, w)
        else:
            value = K.softmax_cross_entropy(Z, labels, dZ, w)
        return float(value), dZ

    def sigmoid_cross_entropy(self, Z, T, *, weights=None):
        dZ = np.empty_like(Z)
        w = _weights(weights, Z.dtype)
        if Z.size >= VECTOR_EXP_MIN:
            K.neg_abs(Z, dZ)
            np.exp(dZ, out=dZ)
            L = np.log1p(dZ)
            value = K.sigmoid_cross_entropy_from_exp(Z, T, dZ, L, w)
        else:
            value = K.sigmoid_cross_entropy(Z, T, dZ, w)
        return float(value), dZ

    # Optimizer scalars are cast to the arrays' dtype: one compiled specialization per
    # dtype, float32 math in float32 loops (the edge already casts; this makes direct
    # calls behave the same).

    def sgd_update(self, param, grad, velocity, lr, momentum, *, nesterov=False, weight_decay=0):
        dtype = param.dtype.type
        lr = dtype(lr)
        flat = param.reshape(-1)
        if weight_decay:
            K.decay(flat, lr * dtype(weight_decay))
        K.sgd_step(
            flat, grad.reshape(-1), velocity.reshape(-1), lr, dtype(momentum), bool(nesterov)
        )

    def adam_update(
        self, param, grad, m, v, step, lr, beta1, beta2, eps, *, weight_decay=0, eps_outside=False
    ):
        dtype = param.dtype.type
        one = dtype(1)
        lr, beta1, beta2 = dtype(lr), dtype(beta1), dtype(beta2)
        flat = param.reshape(-1)
        if weight_decay:
            K.decay(flat, lr * dtype(weight_decay))
        if eps_outside:
            # scikit-learn / Keras 3: bias corrections folded into the step size
            lr_t = lr * np.sqrt(one - beta2**step) / (one - beta1**step)
            K.adam_step_outside(
                flat, grad.reshape(-1), m.reshape(-1), v.reshape(-1), dtype(lr_t), beta1, beta2,
                dtype(eps),
            )  # fmt: skip
            return
        # bias corrections in the arrays' dtype, as the numpy backend computes them
        m_scale = one / (one - beta1**step)
        v_scale = one / (one - beta2**step)
        K.adam_step(
            flat, grad.reshape(-1), m.reshape(-1), v.reshape(-1), lr, beta1, beta2, dtype(eps),
            dtype(m_scale), dtype(v_scale),
        )  # fmt: skip

    def rmsprop_update(self, param, grad, ms, mom, lr, rho, momentum, eps, *, weight_decay=0):
        dtype = param.dtype.type
        lr = dtype(lr)
        flat = param.reshape(-1)
        if weight_decay:
            K.decay(flat, lr * dtype(weight_decay))
        K.rmsprop_step(
            flat, grad.reshape(-1), ms.reshape(-1), mom.reshape(-1), lr, dtype(rho),
            dtype(momentum), dtype(eps),
        )  # fmt: skip

    def penalty(self, W, dW, l1, l2, scale=1.0):
        dtype = W.dtype.type
        flat = W.reshape(-1)
        value = 0.0
        if l1:
            value += float(l1) * K.abs_sum(flat)
        if l2:
            value += float(l2) * K.square_sum(flat)
        # coefficients formed in float64, rounded once to the dtype
        c1 = dtype(scale * l1) if l1 else dtype(0)
        c2 = dtype(2.0 * scale * l2) if l2 else dtype(0)
        K.add_penalty_grad(flat, dW.reshape(-1), c1, c2)
        return float(scale) * value

    def dropout_mask(self, shape, rate, seed, step, layer, dtype):
        dtype = np.dtype(dtype)
        M = np.empty(shape, dtype)
        scale = dtype.type(1.0 / (1.0 - float(rate)))
        K.dropout_mask(
            M.reshape(-1), np.uint64(int(seed) & MASK64), int(step), int(layer),
            keep_threshold(rate), scale,
        )  # fmt: skip
        return M
