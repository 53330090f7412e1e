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

from ..contract import PROB_EPS, Ops, StepBackwardError
from . import kernels as K
from .codes import ACTIVATION_CODES, LINEAR, SIGMOID, SOFTMAX, TANH
from .gemm import gemm_tn
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


def _epilogue(Z, b, act, Y):
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
        K.bias_activation(Z, b, act, Y)


class NumbaOps(TrainMixin, Ops):
    """The ``numba`` backend.  Inputs are validated and C-contiguous (see the contract)."""

    name = "numba"

    def dense_forward(self, X, W, b, activation):
        act = ACTIVATION_CODES[activation]
        n, n_in = X.shape
        n_out = W.shape[1]
        Z = np.empty((n, n_out), dtype=X.dtype)
        Y = np.empty((n, n_out), dtype=X.dtype)
        if Z.size == 0:
            return Z, Y
        if _small(n, n_in, n_out):
            K.dense_forward_fused(X, W, b, act, Z, Y)
        else:
            np.matmul(X, W, out=Z)
            _epilogue(Z, b, act, Y)
        return Z, Y

    def dense_backward(self, dY, X, W, Z, Y, activation):
        if activation == "step":
            raise StepBackwardError()
        act = ACTIVATION_CODES[activation]
        n, n_in = X.shape
        n_out = W.shape[1]
        dt = X.dtype
        dX = np.empty((n, n_in), dtype=dt)
        dW = np.empty((n_in, n_out), dtype=dt)
        db = np.empty(n_out, dtype=dt)
        if _small(n, n_in, n_out):
            dZ = np.empty((n, n_out), dtype=dt)
            K.dense_backward_fused(dY, X, W, Z, Y, act, dZ, dX, dW, db)
            return dX, dW, db
        if act == LINEAR:
            dZ = dY  # dZ = dY: no copy needed, dZ is not returned
            K.column_sums(dY, db)
        else:
            dZ = np.empty((n, n_out), dtype=dt)
            K.activation_backward(dY, Z, Y, act, dZ, db)
        np.matmul(dZ, W.T, out=dX)
        if n == 1:
            # An outer product: NumPy's matmul does not hand a one-row X.T to BLAS
            # and falls back to a much slower generic loop.
            gemm_tn(X, dZ, dW)
        else:
            np.matmul(X.T, dZ, out=dW)
        return dX, dW, db

    def loss(self, name, Y, T):
        dY = np.empty_like(Y)
        dtype = Y.dtype.type
        if name == "mse":
            value = K.mse(Y, T, dY)
        elif name == "binary_crossentropy":
            # clip bounds in the input dtype: 1 - eps rounds differently in float32
            eps = dtype(PROB_EPS)
            value = K.binary_crossentropy(Y, T, eps, dtype(1) - eps, dY)
        elif name == "categorical_crossentropy":
            lo = dtype(PROB_EPS)
            if Y.size >= VECTOR_EXP_MIN:
                # soft targets need every log: NumPy's SIMD log, then one fused pass
                L = np.maximum(Y, lo)
                np.log(L, out=L)
                value = K.categorical_crossentropy_from_log(Y, T, lo, L, dY)
            else:
                value = K.categorical_crossentropy(Y, T, lo, dY)
        else:
            raise AssertionError(name)  # unreachable: names are validated at the edge
        return float(value), dY

    def softmax_cross_entropy(self, Z, labels):
        dZ = np.empty_like(Z)
        if Z.size >= VECTOR_EXP_MIN:
            picked = np.empty(Z.shape[0], dtype=Z.dtype)
            K.shift_rows_pick(Z, labels, dZ, picked)  # dZ = Z - rowmax <= 0
            np.exp(dZ, out=dZ)
            value = K.softmax_cross_entropy_from_exp(dZ, labels, picked)
        else:
            value = K.softmax_cross_entropy(Z, labels, dZ)
        return float(value), dZ

    def sigmoid_cross_entropy(self, Z, T):
        dZ = np.empty_like(Z)
        if Z.size >= VECTOR_EXP_MIN:
            K.neg_abs(Z, dZ)
            np.exp(dZ, out=dZ)
            L = np.log1p(dZ)
            value = K.sigmoid_cross_entropy_from_exp(Z, T, dZ, L)
        else:
            value = K.sigmoid_cross_entropy(Z, T, dZ)
        return float(value), dZ

    def sgd_update(self, param, grad, velocity, lr, momentum):
        # Scalars in the arrays' dtype: one compiled specialization per dtype,
        # float32 math in float32 loops (the edge already casts; this makes direct
        # calls behave the same).
        dtype = param.dtype.type
        K.sgd_step(
            param.reshape(-1),
            grad.reshape(-1),
            velocity.reshape(-1),
            dtype(lr),
            dtype(momentum),
        )

    def adam_update(self, param, grad, m, v, step, lr, beta1, beta2, eps):
        dtype = param.dtype.type
        one = dtype(1)
        beta1, beta2 = dtype(beta1), dtype(beta2)
        # bias corrections in the arrays' dtype, as the numpy backend computes them
        m_scale = one / (one - beta1**step)
        v_scale = one / (one - beta2**step)
        K.adam_step(
            param.reshape(-1),
            grad.reshape(-1),
            m.reshape(-1),
            v.reshape(-1),
            dtype(lr),
            beta1,
            beta2,
            dtype(eps),
            dtype(m_scale),
            dtype(v_scale),
        )
