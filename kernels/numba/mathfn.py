"""Vectorizable ``exp`` and ``log`` for compiled loops of the ``numba`` backend.

Numba lowers ``np.exp`` / ``np.log`` in a loop to scalar libm calls (and the loop
cannot vectorize around a call).  These are written out in
branch-free float64 arithmetic (fdlibm's argument reductions and polynomials),
inline, and compile to SIMD code with the loop around them, within ~1 ulp of
libm.  ``fast_*`` take float32 or float64 and compute in float64, rounding once.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from .config import JIT


@intrinsic
def _bits_as_float64(typingctx, bits):
    """Reinterpret an int64 bit pattern as a float64 (free: one register move)."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


# exp(x) = 2**k * exp(r), k = round(x / ln 2), |r| <= ln(2)/2.  ln 2 is split in a
# high part with trailing zero bits (k * _LN2_HI is exact for |k| < 2**20) and a low
# part (fdlibm's constants), so r carries no cancellation error.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@njit(**JIT)
def exp64(x):
    """exp(x) in float64 within ~1 ulp of libm, written so loops over it vectorize.

    Numba's ``np.exp`` calls scalar libm; this is branch-free and inlines, so a
    loop of sigmoids compiles to SIMD code.  The Taylor
    polynomial of degree 13 on |r| <= 0.347 has truncation error below 4e-18.
    Overflow gives inf, underflow gradual subnormals then 0, NaN propagates
    (through ``p``).
    """
    xc = -746.0 if x < -746.0 else x
    xc = 710.0 if xc > 710.0 else xc
    kf = np.floor(xc * _LOG2E + 0.5)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    # 2**k as two normal factors so results down to the smallest subnormal are right.
    k = np.int64(kf)
    k1 = k >> 1
    k2 = k - k1
    return p * _bits_as_float64((k1 + 1023) << 52) * _bits_as_float64((k2 + 1023) << 52)


@intrinsic
def _float64_bits(typingctx, x):
    """The IEEE bit pattern of a float64 as an int64."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


# fdlibm's e_log.c: log(1 + f) = f - f*f/2 + s*(f*f/2 + R(s*s)), s = f / (2 + f).
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01


@njit(**JIT)
def log64(x):
    """log(x) in float64 within ~1 ulp (fdlibm's algorithm), written to vectorize.

    ``x = 2**k * m`` with ``m`` in ``[sqrt(2)/2, sqrt(2))``; subnormals are scaled by
    2**54 first.  0 gives -inf, negatives and NaN give NaN, inf gives inf.
    """
    sub = x < 2.2250738585072014e-308
    xs = x * 18014398509481984.0 if sub else x
    bits = _float64_bits(xs) + (0x3FF0000000000000 - 0x3FE6A09E00000000)
    k = (bits >> 52) - 0x3FF - (54 if sub else 0)
    m = _bits_as_float64((bits & 0x000FFFFFFFFFFFFF) + 0x3FE6A09E00000000)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    R = t2 + t1
    hfsq = 0.5 * f * f
    dk = np.float64(k)
    r = dk * _LN2_HI - ((hfsq - (s * (hfsq + R) + dk * _LN2_LO)) - f)
    if x == 0.0:
        r = -np.inf
    if not x >= 0.0:  # negative or NaN
        r = np.nan
    if x == np.inf:
        r = x
    return r


def fast_log(x):
    """log(x) in ``x``'s float dtype (compiled code: see :func:`log64`)."""
    return np.log(x)


@overload(fast_log)
def _fast_log_impl(x):
    if x == types.float32:
        return lambda x: np.float32(log64(np.float64(x)))
    return lambda x: log64(x)


def fast_log1p(x):
    """log(1 + x) in ``x``'s float dtype, for x > -1 (compiled code)."""
    return np.log1p(x)


@overload(fast_log1p)
def _fast_log1p_impl(x):
    # w = 1 + x rounds; log(w) - ((w - 1) - x) / w corrects that rounding to first
    # order, which keeps full relative precision for tiny x (log1p(x) = x).
    if x == types.float32:

        def impl32(x):
            xd = np.float64(x)
            w = 1.0 + xd
            return np.float32(log64(w) - ((w - 1.0) - xd) / w)

        return impl32

    def impl(x):
        w = 1.0 + x
        return log64(w) - ((w - 1.0) - x) / w

    return impl


def fast_exp(x):
    """exp(x) in ``x``'s float dtype (compiled code: see :func:`exp64`)."""
    return np.exp(x)


@overload(fast_exp)
def _fast_exp_impl(x):
    if x == types.float32:
        # float32: evaluated in float64 and rounded once (more accurate than expf).
        return lambda x: np.float32(exp64(np.float64(x)))
    return lambda x: exp64(x)
