"""The argument layout shared by the fused training loops, and its optimizer update.

Parameters cross into compiled code as one flat buffer ``P`` in contract order
(``W0`` row-major, ``b0``, ``W1``, ``b1``, ...), gradients in a buffer ``G`` of the
same layout and optimizer state as ``S: (n_state, P.size)``, so the update is a
single loop over all parameters and one compiled specialization per dtype
serves any number of layers.

Scalars travel in the constants array ``C`` (in the parameters' dtype, so float32
loops never see a float64 literal), read by the named indices below: ``C[C_LR]``
then the optimizer's other hyper-parameters in the order of
:data:`~fastnn.kernels.contract.OPTIMIZERS` (complete: omitted trailing entries
are 0).  Per-call options travel in the tuple ``opts`` (:func:`options`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..contract import OPTIMIZERS, PROB_EPS
from . import scalar
from .codes import ADAM, SGD
from .config import JIT, JIT_INLINE

#: ``C[C_ZERO] = 0``, ``C[C_ONE] = 1``; ``C[C_PROB_LO] = PROB_EPS`` and
#: ``C[C_PROB_HI] = 1 - PROB_EPS`` (rounded in the dtype, as the contract clips).
C_ZERO, C_ONE, C_PROB_LO, C_PROB_HI = 0, 1, 2, 3

#: First hyper-parameter; each optimizer's follow in its contract order.
C_HYPER = 4


def _at(optimizer, name):
    return C_HYPER + OPTIMIZERS[optimizer][1].index(name)


C_LR = _at("sgd", "lr")
C_MOMENTUM, C_NESTEROV, C_SGD_DECAY = (
    _at("sgd", h) for h in ("momentum", "nesterov", "weight_decay")
)
C_BETA1, C_BETA2, C_EPS, C_ADAM_DECAY, C_EPS_OUTSIDE = (
    _at("adam", h) for h in ("beta1", "beta2", "eps", "weight_decay", "eps_outside")
)
C_RHO, C_RMS_MOMENTUM, C_RMS_EPS, C_RMS_DECAY = (
    _at("rmsprop", h) for h in ("rho", "momentum", "eps", "weight_decay")
)
assert all(_at(o, "lr") == C_LR for o in OPTIMIZERS), "lr comes first for every optimizer"


def constants(dtype, hyper):
    """The ``C`` array in ``dtype``: 0, 1, PROB_EPS, 1 - PROB_EPS, then the complete
    ``hyper`` (padded with zeros to the longest optimizer's length)."""
    eps = dtype.type(PROB_EPS)
    width = max(len(h) for _, h in OPTIMIZERS.values())
    hyper = tuple(hyper) + (0,) * (width - len(hyper))
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
def batch_bounds(j, batch_size, epoch_size):
    """``(start, n)`` of batch ``j`` (the contract's ``batch_bounds``): batching restarts
    at every multiple of ``epoch_size`` (``epoch_size = len(order)`` for one epoch)."""
    per_epoch = (epoch_size + batch_size - 1) // batch_size
    e = j // per_epoch
    s = (j - e * per_epoch) * batch_size
    return e * epoch_size + s, min(batch_size, epoch_size - s)


@njit(**JIT_INLINE)
def batch_lr(C, lrs, j):
    """Batch ``j``'s learning rate: ``lrs[j]`` if given (non-empty), else ``hyper[0]``."""
    return lrs[j] if lrs.shape[0] > 0 else C[C_LR]


@njit(**JIT_INLINE)
def bias_corrections(opt, C, t, lr):
    """Per-step scalars of the update at the 1-based step ``t``, in the dtype (as numpy
    computes them): Adam's ``(1 / (1 - beta1**t), 1 / (1 - beta2**t))``, or with
    ``eps_outside`` ``(lr_t, 0)``, ``lr_t = lr sqrt(1 - beta2**t) / (1 - beta1**t)``;
    ``(1, 1)`` for SGD and RMSprop."""
    one = C[C_ONE]
    if opt != ADAM:
        return one, one
    tt = scalar.typed(t, one)
    if C[C_EPS_OUTSIDE] != C[C_ZERO]:
        return lr * np.sqrt(one - C[C_BETA2] ** tt) / (one - C[C_BETA1] ** tt), C[C_ZERO]
    return one / (one - C[C_BETA1] ** tt), one / (one - C[C_BETA2] ** tt)


@njit(**JIT_INLINE)
def decay_range(P, C, opt, lo, hi, lr):
    """Decoupled weight decay ``P -= (lr wd) P`` on ``P[lo:hi]`` (only if ``wd != 0``)."""
    wd = C[C_SGD_DECAY] if opt == SGD else (C[C_ADAM_DECAY] if opt == ADAM else C[C_RMS_DECAY])
    if wd != C[C_ZERO]:
        lr_wd = lr * wd
        for p in range(lo, hi):
            P[p] -= lr_wd * P[p]


@njit(**JIT_INLINE)
def update_range(P, G, S, opt, C, lo, hi, lr, a, b):
    """One optimizer step on parameters ``P[lo:hi]`` with gradients ``G`` and state
    ``S``, in place: decoupled weight decay, then SGD (heavy ball or Nesterov), Adam
    (``a, b`` from :func:`bias_corrections`) or RMSprop (:mod:`.scalar`'s formulas).
    Options are tested once per range, never per element."""
    decay_range(P, C, opt, lo, hi, lr)
    if opt == SGD:
        momentum = C[C_MOMENTUM]
        if C[C_NESTEROV] != C[C_ZERO]:
            for p in range(lo, hi):
                P[p], S[0, p] = scalar.sgd_nesterov_step(P[p], G[p], S[0, p], lr, momentum)
        else:
            for p in range(lo, hi):
                P[p], S[0, p] = scalar.sgd_step(P[p], G[p], S[0, p], lr, momentum)
    elif opt == ADAM:
        beta1, beta2, eps = C[C_BETA1], C[C_BETA2], C[C_EPS]
        if C[C_EPS_OUTSIDE] != C[C_ZERO]:
            for p in range(lo, hi):
                P[p], S[0, p], S[1, p] = scalar.adam_step_outside(
                    P[p], G[p], S[0, p], S[1, p], a, beta1, beta2, eps
                )
        else:
            for p in range(lo, hi):
                P[p], S[0, p], S[1, p] = scalar.adam_step(
                    P[p], G[p], S[0, p], S[1, p], lr, beta1, beta2, eps, a, b
                )
    else:
        rho, momentum, eps = C[C_RHO], C[C_RMS_MOMENTUM], C[C_RMS_EPS]
        if momentum > C[C_ZERO]:
            for p in range(lo, hi):
                S[0, p], inc = scalar.rmsprop_inc(G[p], S[0, p], lr, rho, eps)
                S[1, p] = scalar.flush(momentum * S[1, p] + inc)
                P[p] -= S[1, p]
        else:
            for p in range(lo, hi):
                S[0, p], inc = scalar.rmsprop_inc(G[p], S[0, p], lr, rho, eps)
                P[p] -= inc


@njit(**JIT)
def update_block(P, G, S, opt, C, lo, hi, lr, a, b):
    """:func:`update_range` as a real call: for callers where one call per block costs
    nothing (the BLAS loop), so its six loops are compiled once, not at every site."""
    update_range(P, G, S, opt, C, lo, hi, lr, a, b)


@njit(**JIT_INLINE)
def penalize_range(P, G, lo, hi, c1, c2, zero):
    """The L1/L2 penalty's gradient ``G += c1 sign(P) + c2 P`` on ``[lo, hi)``, each term
    only if its coefficient (in the dtype) is nonzero."""
    if c1 != zero:
        for p in range(lo, hi):
            G[p] += c1 * np.sign(P[p])
    if c2 != zero:
        for p in range(lo, hi):
            G[p] += c2 * P[p]


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
