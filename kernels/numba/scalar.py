"""Every formula of the ``numba`` backend, once: scalars in, scalars out.

The op kernels (:mod:`.kernels`), the batch-major trainer (:mod:`.train_gemm`) and
the batch-minor trainer (:mod:`.train_small`) all evaluate activations, losses and
optimizer steps through these functions; only the loops around them differ (rows
of a batch-major array, columns of a batch-minor one, flat parameter buffers).

All are ``@njit(**JIT_INLINE)``: Numba inlines them into the calling loop, which
then vectorizes.  Arguments share one float dtype (float32 or float64);
constants are made in that dtype with :func:`typed`, so float32 loops stay float32.
Loss *values* come back as float64, in which the callers accumulate them.

Adding an elementwise activation means its scalar pair (forward and backward)
and one branch each in the two dispatchers :func:`act_forward` and
:func:`act_backward` (plus its contract, python and numpy entries and tests).
The dispatchers take 1-D arrays and loop inside each branch: a branch on the
code inside an element loop is not reliably hoisted by LLVM (the loop then runs
scalar), so the dispatch sits outside the loops.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .codes import (
    BCE,
    ELU,
    GELU,
    LEAKY_RELU,
    MSE,
    RELU,
    SIGMOID,
    SIGMOID_CE,
    SILU,
    SOFTPLUS,
    STEP,
    TANH,
)
from .config import JIT_INLINE
from .mathfn import fast_exp, fast_log, fast_log1p, log64

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# ------------------------------------------------------------------ dtype constants


def typed(value, like):
    """``value`` as a number of ``like``'s float dtype (compiled code only)."""
    return type(like)(value)


@overload(typed, inline="always")
def _typed_impl(value, like):
    if like == types.float32:
        return lambda value, like: np.float32(value)
    return lambda value, like: np.float64(value)


def smallest_normal(like):
    """The smallest normal number of ``like``'s float dtype (compiled code only)."""
    return np.finfo(type(like)).tiny


@overload(smallest_normal, inline="always")
def _smallest_normal_impl(like):
    tiny32 = float(np.finfo(np.float32).tiny)
    tiny64 = float(np.finfo(np.float64).tiny)
    if like == types.float32:
        return lambda like: np.float32(tiny32)
    return lambda like: np.float64(tiny64)


@njit(**JIT_INLINE)
def flush(x):
    """``x``, or 0 when ``|x|`` is below the smallest normal number (subnormal).

    Optimizer state that decays geometrically where the gradient is zero (Adam's
    moments, SGD's velocity with momentum; e.g. the weights of always-black
    pixels) would otherwise sink into subnormals, which cost ~100 cycles per
    operand on x86.  The values flushed change no result within any float
    tolerance; NaN is never flushed (the comparison is false).
    """
    zero = typed(0.0, x)
    tiny = smallest_normal(x)
    return zero if abs(x) < tiny else x


# ---------------------------------------------------------------------- activations


@njit(**JIT_INLINE)
def sigmoid_from_exp(z, e):
    """Logistic of ``z`` given ``e = exp(-|z|)``: ``1/(1+e)`` for ``z >= 0``, else
    ``e/(1+e)`` -- ``exp`` only ever sees ``-|z| <= 0``, so nothing overflows."""
    one = typed(1.0, z)
    zero = typed(0.0, z)
    return (one if z >= zero else e) / (one + e)


@njit(**JIT_INLINE)
def sigmoid(z):
    """Stable logistic ``1 / (1 + exp(-z))`` (see :func:`sigmoid_from_exp`)."""
    return sigmoid_from_exp(z, fast_exp(-abs(z)))


@njit(**JIT_INLINE)
def relu(z):
    """``max(z, 0)``; ``relu(NaN)`` is NaN (an explicit compare, not ``max``)."""
    zero = typed(0.0, z)
    return zero if z < zero else z


@njit(**JIT_INLINE)
def step(z):
    """Heaviside with ``H(0) = 1``, as the perceptron rule defines it; ``step(NaN) = 0``."""
    zero = typed(0.0, z)
    one = typed(1.0, z)
    return one if z >= zero else zero


@njit(**JIT_INLINE)
def sigmoid_backward(dy, y):
    """``dz = dy sigmoid'(z) = dy y (1 - y)``."""
    return dy * y * (typed(1.0, y) - y)


@njit(**JIT_INLINE)
def relu_backward(dy, z):
    """``dz = dy`` where ``z > 0``, else 0 (``relu'(0)`` is taken as 0; a masked ``dy``
    stays masked even if inf/NaN).  ``y > 0`` exactly where ``z > 0``, so callers
    that keep only ``Y`` may pass it for ``z``."""
    zero = typed(0.0, z)
    return dy if z > zero else zero


@njit(**JIT_INLINE)
def tanh_backward(dy, y):
    """``dz = dy tanh'(z) = dy (1 - y^2)``."""
    return dy * (typed(1.0, y) - y * y)


@njit(**JIT_INLINE)
def leaky_relu(z, s):
    """``z`` if ``z > 0`` else ``s z`` (NaN takes the second branch: ``s NaN`` is NaN)."""
    return z if z > typed(0.0, z) else s * z


@njit(**JIT_INLINE)
def leaky_relu_grad(z, s):
    """``1`` if ``z > 0`` else ``s`` (the left derivative at the kink)."""
    return typed(1.0, z) if z > typed(0.0, z) else s


@njit(**JIT_INLINE)
def elu(z):
    """``z`` if ``z > 0`` else ``expm1(z)`` (``expm1`` only of ``z <= 0`` or NaN)."""
    return z if z > typed(0.0, z) else np.expm1(z)


@njit(**JIT_INLINE)
def elu_grad(z):
    """``1`` if ``z > 0`` else ``exp(z)``."""
    return typed(1.0, z) if z > typed(0.0, z) else typed(fast_exp(z), z)


@njit(**JIT_INLINE)
def gelu_cdf(z):
    """``Phi(z) = 0.5 erfc(-z / sqrt(2))``: ``erfc`` keeps the tail for large negative
    ``z``, where ``1 + erf`` would cancel."""
    return typed(0.5, z) * math.erfc(-typed(_SQRT_HALF, z) * z)


@njit(**JIT_INLINE)
def gelu(z):
    """Exact GELU ``z Phi(z)`` (Keras' ``approximate=False``)."""
    return z * gelu_cdf(z)


@njit(**JIT_INLINE)
def gelu_grad(z):
    """``Phi(z) + z phi(z)``, ``phi(z) = exp(-z^2/2) / sqrt(2 pi)``."""
    pdf = typed(fast_exp(typed(-0.5, z) * z * z), z) * typed(_INV_SQRT_2PI, z)
    return gelu_cdf(z) + z * pdf


@njit(**JIT_INLINE)
def softplus(z):
    """``log(1 + e^z) = max(z, 0) + log1p(exp(-|z|))``: ``exp`` never overflows."""
    return relu(z) + typed(fast_log1p(fast_exp(-abs(z))), z)


@njit(**JIT_INLINE)
def silu(z):
    """``z sigmoid(z)``."""
    return z * sigmoid(z)


@njit(**JIT_INLINE)
def silu_grad(z):
    """``sg (1 + z (1 - sg))``, ``sg = sigmoid(z)``."""
    sg = sigmoid(z)
    return sg * (typed(1.0, z) + z * (typed(1.0, z) - sg))


@njit(**JIT_INLINE)
def act_forward(code, Z, r, n, b, slope, needs_z):
    """In place ``Z[r, i] = activation(Z[r, i] + b[i])`` for ``i < n`` (row ``r`` of a
    2-D array, addressed by index so no view is created); ``slope`` is ``leaky_relu``'s
    negative slope in the dtype.  ``needs_z`` None: ``code`` is not in
    :data:`~.codes.NEEDS_Z`, and those branches are not compiled (see
    :func:`act_backward`).

    The one dispatch on activation codes in the forward pass: each branch is a
    whole loop, so the loop vectorizes (a branch inside the loop would not be
    hoisted reliably).  The bias is added in the same pass on purpose: an
    in-place ``relu`` alone stores back an unchanged value wherever ``z >= 0``,
    which LLVM turns into a conditional store that does not vectorize.  Softmax
    is a row operation, left to the caller (:func:`nan_max`,
    :func:`softmax_numerator`): here it only adds the bias, like linear.
    """
    if needs_z is not None:
        if code == ELU:
            for i in range(n):
                Z[r, i] = elu(Z[r, i] + b[i])
            return
        if code == GELU:
            for i in range(n):
                Z[r, i] = gelu(Z[r, i] + b[i])
            return
        if code == SOFTPLUS:
            for i in range(n):
                Z[r, i] = softplus(Z[r, i] + b[i])
            return
        if code == SILU:
            for i in range(n):
                Z[r, i] = silu(Z[r, i] + b[i])
            return
    if code == SIGMOID:
        for i in range(n):
            Z[r, i] = sigmoid(Z[r, i] + b[i])
    elif code == RELU:
        for i in range(n):
            Z[r, i] = relu(Z[r, i] + b[i])
    elif code == TANH:
        for i in range(n):
            Z[r, i] = np.tanh(Z[r, i] + b[i])
    elif code == STEP:
        for i in range(n):
            Z[r, i] = step(Z[r, i] + b[i])
    elif code == LEAKY_RELU:
        for i in range(n):
            Z[r, i] = leaky_relu(Z[r, i] + b[i], slope)
    else:  # linear, and softmax before its row normalization
        for i in range(n):
            Z[r, i] += b[i]


@njit(**JIT_INLINE)
def act_forward_grad(code, Z, r, n, b, Dg, slope):
    """As :func:`act_forward`, and ``Dg[r, i] = activation'(Z[r, i] + b[i])`` in the same
    pass (elementwise activations).  For the fused trainers' layers whose derivative
    needs ``z`` or whose output is dropped: the forward keeps ``Dg`` and the backward
    multiplies by it (branches outside the loops, as above)."""
    one = typed(1.0, slope)
    if code == SIGMOID:
        for i in range(n):
            y = sigmoid(Z[r, i] + b[i])
            Z[r, i] = y
            Dg[r, i] = y * (one - y)
    elif code == TANH:
        for i in range(n):
            y = np.tanh(Z[r, i] + b[i])
            Z[r, i] = y
            Dg[r, i] = one - y * y
    elif code == RELU:
        for i in range(n):
            z = Z[r, i] + b[i]
            Dg[r, i] = relu_backward(one, z)
            Z[r, i] = relu(z)
    elif code == LEAKY_RELU:
        for i in range(n):
            z = Z[r, i] + b[i]
            Dg[r, i] = leaky_relu_grad(z, slope)
            Z[r, i] = leaky_relu(z, slope)
    elif code == ELU:
        for i in range(n):
            z = Z[r, i] + b[i]
            Dg[r, i] = elu_grad(z)
            Z[r, i] = elu(z)
    elif code == GELU:
        for i in range(n):
            z = Z[r, i] + b[i]
            Dg[r, i] = gelu_grad(z)
            Z[r, i] = gelu(z)
    elif code == SOFTPLUS:
        for i in range(n):
            z = Z[r, i] + b[i]
            Dg[r, i] = sigmoid(z)
            Z[r, i] = softplus(z)
    elif code == SILU:
        for i in range(n):
            z = Z[r, i] + b[i]
            Dg[r, i] = silu_grad(z)
            Z[r, i] = silu(z)
    else:  # linear
        for i in range(n):
            Dg[r, i] = one
            Z[r, i] += b[i]


@njit(**JIT_INLINE)
def act_backward(code, D, Z, Y, r, n, db, slope, needs_z):
    """In place ``D[r, i] = activation'(Z[r, i]) D[r, i]`` for ``i < n`` (``D`` holds
    ``dL/dY`` and becomes ``dL/dZ``), given ``Y = activation(Z)``, and
    ``db[i] += D[r, i]`` in the same pass (for the same reason as the bias in
    :func:`act_forward`).  Row ``r`` of 2-D arrays, ``D`` not overlapping ``Z``,
    ``Y`` or ``db``.  The one dispatch on activation codes in the backward pass.

    Softmax needs its row (:func:`softmax_backward`); step has no derivative
    (callers raise before).  The fused trainers keep only ``Y`` and pass it as
    ``Z`` too for linear, sigmoid, relu, tanh and ``leaky_relu`` with ``slope >= 0``
    (``y > 0`` exactly where ``z > 0``); the others need ``z``
    (:func:`act_forward_grad` keeps their derivative instead).

    ``needs_z`` None: ``code`` is not in :data:`~.codes.NEEDS_Z`, and their branches
    are pruned before typing (Numba prunes ``is not None`` on a None-typed argument,
    also in inlined code).  Their inlined ``exp``/``erfc`` make up most of a full
    dispatcher's compile time, which every library linking it pays again: the
    trainers' row helpers never see those codes.
    """
    if needs_z is not None:
        if code == ELU:
            for i in range(n):
                d = D[r, i] * elu_grad(Z[r, i])
                D[r, i] = d
                db[i] += d
            return
        if code == GELU:
            for i in range(n):
                d = D[r, i] * gelu_grad(Z[r, i])
                D[r, i] = d
                db[i] += d
            return
        if code == SOFTPLUS:
            for i in range(n):
                d = D[r, i] * sigmoid(Z[r, i])
                D[r, i] = d
                db[i] += d
            return
        if code == SILU:
            for i in range(n):
                d = D[r, i] * silu_grad(Z[r, i])
                D[r, i] = d
                db[i] += d
            return
    if code == SIGMOID:
        for i in range(n):
            d = sigmoid_backward(D[r, i], Y[r, i])
            D[r, i] = d
            db[i] += d
    elif code == RELU:
        for i in range(n):
            d = relu_backward(D[r, i], Z[r, i])
            D[r, i] = d
            db[i] += d
    elif code == TANH:
        for i in range(n):
            d = tanh_backward(D[r, i], Y[r, i])
            D[r, i] = d
            db[i] += d
    elif code == LEAKY_RELU:
        for i in range(n):
            d = D[r, i] * leaky_relu_grad(Z[r, i], slope)
            D[r, i] = d
            db[i] += d
    else:  # linear
        for i in range(n):
            db[i] += D[r, i]


@njit(**JIT_INLINE)
def nan_max(best, x):
    """Running row maximum for softmax: ``x`` if it is larger, else ``best``."""
    return x if x > best else best


@njit(**JIT_INLINE)
def softmax_numerator(z, z_max):
    """``exp(z - max z)``: softmax is shift-invariant and ``exp`` of ``<= 0`` cannot overflow."""
    return fast_exp(z - z_max)


@njit(**JIT_INLINE)
def softmax_backward(dy, y, s):
    """Softmax's Jacobian-vector product: ``dz = y (dy - s)`` with ``s = sum_row(dy * y)``."""
    return y * (dy - s)


@njit(**JIT_INLINE)
def argmax_takes(best, x):
    """Whether a running argmax at value ``best`` moves to the later value ``x``.

    Larger values win, ties keep the first; a NaN wins once and then stays (as
    ``np.argmax``: the first NaN is the maximum).
    """
    return not (best >= x) and best == best


@njit(**JIT_INLINE)
def binary_hit(o, t, logits):
    """Whether a one-unit output ``o`` is a correct prediction of target ``t``: ``o``
    above the decision threshold (0 for logits, 0.5 for probabilities) exactly
    when ``t > 0.5``."""
    threshold = 0.0 if logits else 0.5
    return (o > threshold) == (t > 0.5)


# --------------------------------------------------------------------------- losses


@njit(**JIT_INLINE)
def clip_below(y, lo):
    """``max(y, lo)`` keeping NaN (explicit compare)."""
    return lo if y < lo else y


@njit(**JIT_INLINE)
def mse_term(y, t, coef):
    """Squared error of one element: ``((y - t)^2`` in float64, ``coef (y - t))``,
    ``coef = 2 / size`` in the dtype."""
    d = y - t
    return np.float64(d) * np.float64(d), coef * d


@njit(**JIT_INLINE)
def bce_term(y, t, lo, hi, size):
    """Binary cross-entropy of one element with ``p = clip(y, lo, hi)``:
    ``(-(t log p + (1-t) log(1-p))`` in float64, ``dL/dy`` over ``size`` elements).

    The gradient is that of the clipped expression: zero where ``y`` lies outside
    ``[lo, hi]``.  The log is taken in the dtype (one rounding from float64).
    """
    one = typed(1.0, y)
    p = y
    if p < lo:  # explicit compares keep NaN as NaN
        p = lo
    if p > hi:
        p = hi
    value = -np.float64(t * fast_log(p) + (one - t) * fast_log(one - p))
    zero = typed(0.0, y)
    inside = (y >= lo) and (y <= hi)
    grad = (p - t) / (p * (one - p)) / size if inside else zero
    return value, grad


@njit(**JIT_INLINE)
def cce_value(t, log_p):
    """Categorical cross-entropy term ``-t log p`` (``log_p`` of the clipped ``p``), float64."""
    return -np.float64(t * log_p)


@njit(**JIT_INLINE)
def cce_grad(y, t, lo, rows):
    """``dL/dy = -t / y / rows`` where ``y >= lo``, else 0 (the clip is active)."""
    zero = typed(0.0, y)
    return -t / clip_below(y, lo) / rows if y >= lo else zero


@njit(**JIT_INLINE)
def sigmoid_ce_term(z, t, e, log1p_e, size):
    """Sigmoid cross-entropy of one logit, given ``e = exp(-|z|)`` and ``log1p(e)``:
    ``(max(z, 0) - z t + log1p(e)`` in float64, ``(sigmoid(z) - t) / size)``.

    ``max(z, 0) - z t + log(1 + exp(-|z|))`` equals ``-(t log s + (1-t) log(1-s))``
    for ``s = sigmoid(z)`` without forming ``log(0)`` or overflowing ``exp``.
    """
    zero = typed(0.0, z)
    value = np.float64(max(z, zero) - z * t + log1p_e)
    return value, (sigmoid_from_exp(z, e) - t) / size


@njit(**JIT_INLINE)
def sigmoid_ce(z, t, size):
    """:func:`sigmoid_ce_term` computing ``exp`` and ``log1p`` itself."""
    e = fast_exp(-abs(z))
    return sigmoid_ce_term(z, t, e, fast_log1p(e), size)


@njit(**JIT_INLINE)
def softmax_ce_value(s, shifted_label):
    """``-log softmax(z)_label = log(sum_j exp(z_j - max)) - (z_label - max)`` in float64,
    from the row's sum ``s`` of shifted exponentials and ``shifted_label = z_label - max``."""
    return log64(np.float64(s)) - np.float64(shifted_label)


@njit(**JIT_INLINE)
def softmax_ce_grad(e, s, is_label, rows):
    """``dL/dz = (softmax(z) - onehot) / rows`` for one element, ``e = exp(z - max)``."""
    one = typed(1.0, e)
    q = e / s
    if is_label:
        q -= one
    return q / rows


@njit(**JIT_INLINE)
def float_head(head, Y, T, dY, r, rt, terms, n, lo, hi, coef, size, rows):
    """Heads with float targets (every head but softmax cross-entropy, which needs
    its row) on ``Y[r, :n]`` against ``T[rt, :n]`` (rows of 2-D arrays):
    ``dL/dY`` into ``dY[r]``, each element's float64 loss into ``terms`` (summed by
    the caller and divided by ``rows`` for categorical cross-entropy, ``size`` for
    the others).

    ``lo, hi``: the probability clip; ``coef = 2 / size``; ``size`` the batch's
    element count, ``rows`` its row count, all in the dtype.  The one dispatch on
    head codes, branches outside the loops (as in :func:`act_forward`).
    """
    if head == MSE:
        for i in range(n):
            terms[i], dY[r, i] = mse_term(Y[r, i], T[rt, i], coef)
    elif head == SIGMOID_CE:
        for i in range(n):
            terms[i], dY[r, i] = sigmoid_ce(Y[r, i], T[rt, i], size)
    elif head == BCE:
        for i in range(n):
            terms[i], dY[r, i] = bce_term(Y[r, i], T[rt, i], lo, hi, size)
    else:  # categorical cross-entropy
        for i in range(n):
            terms[i] = cce_value(T[rt, i], fast_log(clip_below(Y[r, i], lo)))
            dY[r, i] = cce_grad(Y[r, i], T[rt, i], lo, rows)


# ----------------------------------------------------------------------- optimizers


@njit(**JIT_INLINE)
def sgd_step(p, g, v, lr, momentum):
    """SGD with heavy-ball momentum on one parameter: returns the new ``(p, v)``.

    ``v = momentum v - lr g`` (flushed, see :func:`flush`), ``p += v``; the order
    of operations is the contract's, so results round identically.
    """
    v = flush(momentum * v - lr * g)
    return p + v, v


@njit(**JIT_INLINE)
def adam_step(p, g, m, v, lr, beta1, beta2, eps, m_scale, v_scale):
    """Adam on one parameter: returns the new ``(p, m, v)``.

    ``m_scale = 1 / (1 - beta1**t)`` and ``v_scale = 1 / (1 - beta2**t)`` are the
    bias corrections of step ``t``; the moments are flushed (:func:`flush`)
    before the update uses them.
    """
    one = typed(1.0, p)
    m = flush(beta1 * m + (one - beta1) * g)
    v = flush(beta2 * v + (one - beta2) * (g * g))
    return p - lr * (m * m_scale) / (np.sqrt(v * v_scale) + eps), m, v


@njit(**JIT_INLINE)
def sgd_nesterov_step(p, g, v, lr, momentum):
    """SGD with Nesterov momentum on one parameter: returns the new ``(p, v)``:
    ``v = momentum v - lr g``, ``p += momentum v - lr g`` (the contract's order)."""
    v = flush(momentum * v - lr * g)
    return p + (momentum * v - lr * g), v


@njit(**JIT_INLINE)
def adam_step_outside(p, g, m, v, lr_t, beta1, beta2, eps):
    """Adam with ``eps`` outside the bias correction (scikit-learn's / Keras 3's form):
    ``p -= lr_t m / (sqrt(v) + eps)`` with ``lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)``
    given by the caller; returns the new ``(p, m, v)``."""
    one = typed(1.0, p)
    m = flush(beta1 * m + (one - beta1) * g)
    v = flush(beta2 * v + (one - beta2) * (g * g))
    return p - lr_t * m / (np.sqrt(v) + eps), m, v


@njit(**JIT_INLINE)
def rmsprop_inc(g, ms, lr, rho, eps):
    """RMSprop (Keras 3 form, ``eps`` inside the root): returns the new ``ms`` and the
    step ``inc = lr g / sqrt(ms + eps)``."""
    ms = flush(rho * ms + (typed(1.0, g) - rho) * (g * g))
    return ms, lr * g / np.sqrt(ms + eps)


# -------------------------------------------------------------------------- dropout
# splitmix64 in uint64 arithmetic.  Every operand is a uint64: Numba promotes a
# uint64 combined with a signed integer to float64, which would silently lose bits.

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@njit(**JIT_INLINE)
def mix64(x):
    """splitmix64's finalizer on a uint64 (the contract's ``mix64``; wraps mod 2^64)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


@njit(**JIT_INLINE)
def dropout_key(seed, step, layer):
    """The contract's ``dropout_key``: ``seed`` a uint64, ``step``/``layer`` integers >= 0."""
    key = mix64(seed + _GAMMA) ^ np.uint64(step)
    key = mix64(key) ^ np.uint64(layer)
    return mix64(key)


def keep_threshold(rate):
    """``ceil(rate 2^53)``: element kept iff ``(h >> 11) >= threshold`` -- exactly the
    contract's ``(h >> 11) 2^-53 >= rate`` (``h >> 11 < 2^53`` and ``rate 2^53`` are exact
    in float64), compared as integers (Python side: a uint64 for the kernels)."""
    return np.uint64(math.ceil(float(rate) * 2.0**53))


@njit(**JIT_INLINE)
def dropout_kept(key, index, threshold):
    """Whether element ``index`` (``i * width + c``, an integer >= 0) is kept, given the
    layer's ``key`` (:func:`dropout_key`) and ``threshold`` (:func:`keep_threshold`)."""
    h = mix64(key + (np.uint64(index) + np.uint64(1)) * _GAMMA)
    return (h >> _S11) >= threshold
