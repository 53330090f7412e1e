"""The argument layout shared by the fused training loops, and its optimizer update.

Parameters cross into compiled code as one flat buffer ``P`` in contract order
(``W0`` row-major, ``b0``, ``W1``, ``b1``, ...), gradients in a buffer ``G`` of the
same layout and optimizer state as ``S: (n_state, P.size)``, so the update is a
single loop over all parameters and one compiled specialization per dtype
serves any number of layers.

Scalars travel in the constants array ``C`` (in the parameters' dtype, so float32
loops never see a float64 literal), read by the named indices below: ``C[C_LR]``,
``C[C_MOMENTUM]`` (SGD), ``C[C_BETA1]``, ``C[C_BETA2]``, ``C[C_EPS]`` (Adam).  The
hyper-parameters follow :data:`~fastnn.kernels.contract.OPTIMIZERS`' order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..contract import OPTIMIZERS, PROB_EPS
from . import scalar
from .codes import SGD
from .config import JIT, JIT_INLINE

#: ``C[C_ZERO] = 0``, ``C[C_ONE] = 1``; ``C[C_PROB_LO] = PROB_EPS`` and
#: ``C[C_PROB_HI] = 1 - PROB_EPS`` (rounded in the dtype, as the contract clips).
C_ZERO, C_ONE, C_PROB_LO, C_PROB_HI = 0, 1, 2, 3

#: First hyper-parameter; each optimizer's follow in its contract order.
C_HYPER = 4

C_LR = C_HYPER + OPTIMIZERS["sgd"][1].index("lr")
C_MOMENTUM = C_HYPER + OPTIMIZERS["sgd"][1].index("momentum")
C_BETA1 = C_HYPER + OPTIMIZERS["adam"][1].index("beta1")
C_BETA2 = C_HYPER + OPTIMIZERS["adam"][1].index("beta2")
C_EPS = C_HYPER + OPTIMIZERS["adam"][1].index("eps")
assert C_LR == C_HYPER + OPTIMIZERS["adam"][1].index("lr"), "lr comes first for every optimizer"


def constants(dtype, hyper):
    """The ``C`` array in ``dtype``: 0, 1, PROB_EPS, 1 - PROB_EPS, then ``hyper``."""
    eps = dtype.type(PROB_EPS)
    return np.array((0, 1, eps, dtype.type(1) - eps, *hyper), dtype)


# ----------------------------------------------------------------------- compiled side


@njit(**JIT)
def view(buf, off, rows, cols):
    """``buf[off : off + rows*cols]`` as a C-contiguous ``(rows, cols)`` matrix."""
    return buf[off : off + rows * cols].reshape((rows, cols))


@njit(**JIT)
def offsets(dims):
    """Offsets of ``W_l`` and ``b_l`` in the flat parameter buffer, and its size."""
    L = dims.shape[0] - 1
    w_at = np.empty(L, np.int64)
    b_at = np.empty(L, np.int64)
    off = 0
    for l in range(L):
        w_at[l] = off
        off += dims[l] * dims[l + 1]
        b_at[l] = off
        off += dims[l + 1]
    return w_at, b_at, off


@njit(**JIT_INLINE)
def bias_corrections(opt, C, t):
    """Adam's ``(1 / (1 - beta1**t), 1 / (1 - beta2**t))`` for the 1-based step ``t``,
    in the dtype (as numpy computes them); ``(1, 1)`` for SGD."""
    one = C[C_ONE]
    if opt == SGD:
        return one, one
    tt = scalar.typed(t, one)
    return one / (one - C[C_BETA1] ** tt), one / (one - C[C_BETA2] ** tt)


@njit(**JIT_INLINE)
def update_range(P, G, S, opt, C, lo, hi, m_scale, v_scale):
    """One SGD / Adam step (:func:`~.scalar.sgd_step`, :func:`~.scalar.adam_step`) on
    parameters ``P[lo:hi]`` with gradients ``G`` and state ``S``, in place."""
    lr = C[C_LR]
    if opt == SGD:
        momentum = C[C_MOMENTUM]
        for p in range(lo, hi):
            P[p], S[0, p] = scalar.sgd_step(P[p], G[p], S[0, p], lr, momentum)
    else:
        beta1 = C[C_BETA1]
        beta2 = C[C_BETA2]
        eps = C[C_EPS]
        for p in range(lo, hi):
            P[p], S[0, p], S[1, p] = scalar.adam_step(
                P[p], G[p], S[0, p], S[1, p], lr, beta1, beta2, eps, m_scale, v_scale
            )


# ------------------------------------------------------------------------ Python side

#: Stand-ins for the target argument the head does not read.
DUMMY_LABELS = np.zeros(1, np.int64)
DUMMY_TARGETS = {np.dtype(t): np.zeros((1, 1), t) for t in (np.float32, np.float64)}

# Small read-only arrays derived from call arguments, reused across calls: a
# full-batch step of a tiny net costs less than building them.  Bounded (cleared
# when full) so a long sweep over hyper-parameters cannot grow them without limit.
_CACHE: dict = {}
_CACHE_MAX = 256


def cached(key, make):
    """``make()``, kept read-only under ``key`` and returned again for the same key."""
    value = _CACHE.get(key)
    if value is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        value = _CACHE[key] = make()
        value.flags.writeable = False
    return value


def flatten(params, state, dtype):
    """Parameters (contract order) and their optimizer state as ``(P, S)`` buffers."""
    P = np.concatenate([p.reshape(-1) for p in params])
    n_state = len(state[0])
    S = np.empty((n_state, P.shape[0]), dtype)
    for s in range(n_state):
        np.concatenate([state[p][s].reshape(-1) for p in range(len(params))], out=S[s])
    return P, S


def unflatten(P, S, params, state):
    """Copy the buffers of :func:`flatten` back into the arrays, in place."""
    off = 0
    for p, param in enumerate(params):
        size = param.size
        param.reshape(-1)[:] = P[off : off + size]
        for s in range(S.shape[0]):
            state[p][s].reshape(-1)[:] = S[s, off : off + size]
        off += size
