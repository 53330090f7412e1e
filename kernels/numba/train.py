"""Fused, compiled ``train_batches`` for the ``numba`` backend.

One call of :meth:`TrainMixin.train_batches` runs every mini-batch of ``order``
(gather, forward, loss head, backward, optimizer update) inside one compiled
function, so a training loop pays Python and dispatch overhead once per call,
not once per op and step.  The numbers are those of the contract's default
composition (:meth:`fastnn.kernels.contract.Ops.train_batches`) within float
rounding: same formulas, same dtype, different summation order.

Three compiled loops share one argument layout:

* :func:`_train_small` -- every layer at most :data:`SMALL_WIDTH` units wide
  (the tutorials' tiny nets).  Activations are kept *batch-minor*,
  ``(features, n)``, so every inner loop runs over the batch, contiguous, and
  the compiler vectorizes it; matrix products are plain loops (a BLAS call
  would cost more than the work).
* :func:`_train_gemm` -- wider layers, one thread of ours.  Activations are
  batch-major ``(n, features)`` and the three products per layer go to NumPy's
  OpenBLAS (called from compiled code, so the process keeps one BLAS thread
  pool); bias and activation are applied in one pass over the product, the
  activation's derivative and ``db`` in one pass before the backward products.
  The gradient of the first layer's input is never formed: nothing uses it.
  Plain SGD is folded into the weight-gradient product (``W += -lr A^T dZ``).
* :func:`_train_gemm_par` -- the same on several threads in Numba's pool, each
  doing a slice of every phase with NumPy's OpenBLAS limited to one thread
  (:func:`parallel_threads` decides; used when more than one thread is allowed).

Parameters cross into compiled code as one flat buffer ``P`` in contract order
(``W0`` row-major, ``b0``, ``W1``, ``b1``, ...), gradients in a buffer ``G`` of the
same layout and optimizer state as ``S: (n_state, P.size)``, so the update is a
single loop over all parameters and one compiled specialization per dtype
serves any number of layers.  All workspaces are allocated once per call; a
training step allocates nothing.
"""

from __future__ import annotations

import threading

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ..contract import ACTIVATIONS, HEADS, OPTIMIZERS, PROB_EPS, Ops, StepBackwardError
from .config import JIT, JIT_PARALLEL, JIT_REDUCE
from .mathfn import fast_exp, fast_log, fast_log1p

#: Widest layer (units) the batch-minor loop handles; wider nets go to BLAS.
SMALL_WIDTH = 64

# Integer codes the compiled loops switch on (contract order).
_ACT_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}
_HEAD_CODE = {name: i for i, name in enumerate(HEADS)}
_OPT_CODE = {name: i for i, name in enumerate(OPTIMIZERS)}
LINEAR, SIGMOID, RELU, TANH, SOFTMAX, STEP = (_ACT_CODE[a] for a in ACTIVATIONS)
SOFTMAX_CE, SIGMOID_CE, MSE, BCE, CCE = (
    _HEAD_CODE[h]
    for h in (
        "softmax_cross_entropy",
        "sigmoid_cross_entropy",
        "mse",
        "binary_crossentropy",
        "categorical_crossentropy",
    )
)
SGD, ADAM = _OPT_CODE["sgd"], _OPT_CODE["adam"]

# Constants array ``C`` (in the parameters' dtype, so float32 loops never see a
# float64 literal): C[0] = 0, C[1] = 1, C[2] = PROB_EPS, C[3] = 1 - PROB_EPS
# (rounded in the dtype, as the contract clips), C[4] the smallest normal number,
# then the hyper-parameters.
_C_ZERO, _C_ONE, _C_EPS, _C_1MEPS, _C_TINY, _C_HYPER = 0, 1, 2, 3, 4, 5


# --------------------------------------------------------------------------- helpers


@njit(**JIT)
def _view(buf, off, rows, cols):
    """``buf[off : off + rows*cols]`` as a C-contiguous ``(rows, cols)`` matrix."""
    return buf[off : off + rows * cols].reshape((rows, cols))


@njit(**JIT)
def _to_dtype(value, like):
    """``value`` rounded to ``like``'s dtype (``like`` is a 1-element scratch array)."""
    like[0] = value
    return like[0]


@njit(**JIT)
def _sigmoid(z, one):
    # exp() only ever sees -|z| <= 0: no overflow for any z.
    e = fast_exp(-abs(z))
    return (one if z >= 0 else e) / (one + e)


@njit(**JIT)
def _argmax(v):
    """First index of the maximum, NaN counting as the maximum (as ``np.argmax``)."""
    best = v[0]
    idx = 0
    if best != best:
        return 0
    for c in range(1, v.shape[0]):
        x = v[c]
        if x != x:
            return c
        if x > best:
            best = x
            idx = c
    return idx


@njit(**JIT)
def _offsets(dims):
    """Offsets of ``W_l`` and ``b_l`` in the flat parameter buffer, and its size."""
    L = dims.shape[0] - 1
    woff = np.empty(L, np.int64)
    boff = np.empty(L, np.int64)
    off = 0
    for l in range(L):
        woff[l] = off
        off += dims[l] * dims[l + 1]
        boff[l] = off
        off += dims[l + 1]
    return woff, boff, off


@njit(**JIT)
def _optimizer_scales(opt, C, t, scratch):
    """Adam's bias corrections ``(1 / (1 - beta1**t), 1 / (1 - beta2**t))`` for the
    1-based step ``t``, in the dtype (as numpy computes them); ``(1, 1)`` for SGD."""
    one = C[_C_ONE]
    if opt == SGD:
        return one, one
    tt = _to_dtype(t, scratch)
    return one / (one - C[_C_HYPER + 1] ** tt), one / (one - C[_C_HYPER + 2] ** tt)


@njit(**JIT)
def _optimizer_range(P, G, S, opt, C, lo, hi, m_scale, v_scale):
    """Apply one SGD / Adam update to parameters ``P[lo:hi]`` (see :func:`_optimizer_step`)."""
    zero = C[_C_ZERO]
    tiny = C[_C_TINY]
    lr = C[_C_HYPER]
    if opt == SGD:
        momentum = C[_C_HYPER + 1]
        V = S[0]
        for p in range(lo, hi):
            v = momentum * V[p] - lr * G[p]
            V[p] = zero if abs(v) < tiny else v
            P[p] += v
    else:
        one = C[_C_ONE]
        beta1 = C[_C_HYPER + 1]
        beta2 = C[_C_HYPER + 2]
        eps = C[_C_HYPER + 3]
        c1 = one - beta1
        c2 = one - beta2
        M = S[0]
        V = S[1]
        for p in range(lo, hi):
            g = G[p]
            m = beta1 * M[p] + c1 * g
            v = beta2 * V[p] + c2 * (g * g)
            m = zero if abs(m) < tiny else m
            v = zero if v < tiny else v
            M[p] = m
            V[p] = v
            P[p] -= lr * (m * m_scale) / (np.sqrt(v * v_scale) + eps)


@njit(**JIT)
def _optimizer_step(P, G, S, opt, C, t, scratch):
    """Apply one SGD / Adam update to every parameter; ``t`` is Adam's 1-based step.

    Operation order mirrors the contract's numpy expressions so SGD rounds
    identically and Adam within an ulp.  State that decays geometrically where
    the gradient is zero (Adam's ``m`` and ``v``, SGD's velocity with momentum:
    e.g. the weights of always-black Fashion-MNIST pixels) is flushed to zero
    once it falls below the smallest normal number: subnormal operands cost ~100
    cycles each on x86 and made an Adam epoch 1.7x slower.  The values flushed
    are below 1.2e-38 (float32) / 2.2e-308 (float64) and change no result
    within any float tolerance; NaN is never flushed (the comparison is false).
    """
    m_scale, v_scale = _optimizer_scales(opt, C, t, scratch)
    _optimizer_range(P, G, S, opt, C, 0, P.shape[0], m_scale, v_scale)


# ------------------------------------------------------------ batch-major (BLAS) path
#
# Matrix products call the CBLAS ``?gemm`` of NumPy's own OpenBLAS through its
# address, passed in as an integer: the same library and thread pool as every
# other product of the process (the numba backend's ops and the numpy backend
# call it through NumPy).  ``np.dot`` inside ``njit`` would call SciPy's separate
# OpenBLAS copy, whose idle threads spin against NumPy's on 2 cores whenever the
# two alternate (e.g. training chunks and validation).  When NumPy's BLAS cannot
# be located (another NumPy build), the address is 0 and ``np.dot`` is used.

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@intrinsic
def _cblas_gemm(typingctx, fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Call ``cblas_?gemm`` (ILP64, row-major) at address ``fn`` on raw data addresses."""
    if alpha not in (types.float32, types.float64) or beta != alpha:
        return None
    sig = types.void(fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        real = ir.FloatType() if signature.args[6] == types.float32 else ir.DoubleType()
        ptr = real.as_pointer()
        fnty = ir.FunctionType(
            ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]
        )

        def int64(i):
            return context.cast(builder, args[i], signature.args[i], types.int64)

        def address(i):
            return builder.inttoptr(int64(i), ptr)

        callee = builder.inttoptr(int64(0), fnty.as_pointer())
        builder.call(
            callee,
            [
                ir.Constant(i32, _ROW_MAJOR),
                builder.trunc(int64(1), i32),
                builder.trunc(int64(2), i32),
                int64(3), int64(4), int64(5),
                args[6], address(7), int64(8), address(9), int64(10),
                args[11], address(12), int64(13),
            ],
        )  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


@njit(**JIT)
def _gemm(fn, trans_a, trans_b, A, B, C, alpha, beta):
    """``C = alpha op(A) @ op(B) + beta C`` for C-contiguous ``A, B, C``; ``op``
    transposes if asked.

    ``fn``: address of NumPy's ``cblas_?gemm`` for the dtype, or 0 for ``np.dot``,
    which only computes ``alpha = 1, beta = 0``.
    """
    M, N = C.shape
    K = A.shape[0] if trans_a else A.shape[1]
    if fn != 0:
        _cblas_gemm(
            fn, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS,
            M, N, K, alpha, A.ctypes.data, A.shape[1], B.ctypes.data, B.shape[1],
            beta, C.ctypes.data, C.shape[1],
        )  # fmt: skip
    elif trans_a:
        np.dot(A.T, B, C)
    elif trans_b:
        np.dot(A, B.T, C)
    else:
        np.dot(A, B, C)


@njit(**JIT)
def _bias_act_rows(Z, b, act, one, zero):
    """In place: ``Z = act(Z + b)`` for batch-major ``Z: (n, out)``."""
    n, k = Z.shape
    for i in range(n):
        z = Z[i]
        if act == LINEAR:
            for c in range(k):
                z[c] += b[c]
        elif act == RELU:
            for c in range(k):
                z[c] = max(z[c] + b[c], zero)
        elif act == SIGMOID:
            for c in range(k):
                z[c] = _sigmoid(z[c] + b[c], one)
        elif act == TANH:
            for c in range(k):
                z[c] = np.tanh(z[c] + b[c])
        elif act == SOFTMAX:
            # softmax(z) = softmax(z - max z): exp() of non-positive numbers only.
            mx = z[0] + b[0]
            for c in range(k):
                z[c] += b[c]
                mx = max(mx, z[c])
            s = zero
            for c in range(k):
                e = fast_exp(z[c] - mx)
                z[c] = e
                s += e
            for c in range(k):
                z[c] = z[c] / s
        else:  # STEP (forward only; callers reject it before training)
            for c in range(k):
                z[c] = one if z[c] + b[c] >= zero else zero


@njit(**JIT)
def _act_backward_rows(D, Y, act, zero, one, gb):
    """In place: ``D = dL/dZ`` from ``D = dL/dY`` for batch-major ``(n, out)``, and
    ``gb = dL/db = sum over rows of dL/dZ`` in the same pass."""
    n, k = D.shape
    for c in range(k):
        gb[c] = zero
    for i in range(n):
        d = D[i]
        y = Y[i]
        if act == LINEAR:
            for c in range(k):
                gb[c] += d[c]
        elif act == SIGMOID:
            for c in range(k):
                v = d[c] * y[c] * (one - y[c])
                d[c] = v
                gb[c] += v
        elif act == RELU:
            # Y = max(Z, 0), so Z > 0 exactly where Y > 0.
            for c in range(k):
                v = d[c] if y[c] > zero else zero
                d[c] = v
                gb[c] += v
        elif act == TANH:
            for c in range(k):
                v = d[c] * (one - y[c] * y[c])
                d[c] = v
                gb[c] += v
        else:  # SOFTMAX: dZ = Y * (dY - sum(dY * Y))
            s = d[0] * y[0]
            for c in range(1, k):
                s += d[c] * y[c]
            for c in range(k):
                v = y[c] * (d[c] - s)
                d[c] = v
                gb[c] += v


@njit(**JIT)
def _head_rows(O, D, T, labels, order, start, head, C, scratch, nb):
    """Loss head on batch-major output rows ``O: (n, k)``: dL/dO into ``D``.

    ``O`` holds rows ``start .. start + n`` of ``order``, out of a batch of ``nb``
    rows (the loss and its gradient are batch means: divided by ``nb``).  Returns
    ``(loss, correct)`` of these rows, the loss accumulated in float64 and already
    divided by the batch's normalizer, so the parts of a batch sum to its loss.
    """
    n, k = O.shape
    zero = C[_C_ZERO]
    one = C[_C_ONE]
    total = 0.0
    correct = 0
    if head == SOFTMAX_CE:
        inv = _to_dtype(nb, scratch)
        for i in range(n):
            o = O[i]
            d = D[i]
            lab = labels[order[start + i]]
            mx = o[0]
            for c in range(1, k):
                mx = max(mx, o[c])
            s = zero
            for c in range(k):
                e = fast_exp(o[c] - mx)
                d[c] = e
                s += e
            # -log softmax(o)_lab = log(sum exp(o - max)) - (o_lab - max)
            total += fast_log(s) - (o[lab] - mx)
            for c in range(k):
                d[c] = d[c] / s
            d[lab] -= one
            for c in range(k):
                d[c] = d[c] / inv
            if _argmax(o) == lab:
                correct += 1
        return total / nb, correct
    size = _to_dtype(nb * k, scratch)
    for i in range(n):
        o = O[i]
        d = D[i]
        t = T[order[start + i]]
        if head == MSE:
            coef = _to_dtype(2.0 / (nb * k), scratch)
            for c in range(k):
                diff = o[c] - t[c]
                total += diff * diff
                d[c] = coef * diff
        elif head == SIGMOID_CE:
            for c in range(k):
                z = o[c]
                # -(t log s + (1-t) log(1-s)) without forming log(0) or overflowing exp.
                total += max(z, zero) - z * t[c] + fast_log1p(fast_exp(-abs(z)))
                d[c] = (_sigmoid(z, one) - t[c]) / size
        elif head == BCE:
            lo = C[_C_EPS]
            hi = C[_C_1MEPS]
            for c in range(k):
                y = o[c]
                p = min(max(y, lo), hi)
                total -= t[c] * fast_log(p) + (one - t[c]) * fast_log(one - p)
                # The clip's derivative is zero outside [eps, 1 - eps].
                if y >= lo and y <= hi:
                    d[c] = (p - t[c]) / (p * (one - p)) / size
                else:
                    d[c] = zero
        else:  # CCE
            lo = C[_C_EPS]
            nf = _to_dtype(nb, scratch)
            for c in range(k):
                y = o[c]
                p = max(y, lo)
                total -= t[c] * fast_log(p)
                d[c] = -t[c] / p / nf if y >= lo else zero
        if k > 1:
            if _argmax(o) == _argmax(t):
                correct += 1
        else:
            threshold = 0.0 if head == SIGMOID_CE else 0.5
            if (o[0] > threshold) == (t[0] > 0.5):
                correct += 1
    if head == CCE:
        return total / nb, correct
    return total / (nb * k), correct


@njit(**JIT)
def _train_gemm(
    P, S, dims, acts, X, T, labels, order, batch_size, head, opt, C, step, out, gemm_fn
):
    """Batch-major training loop with BLAS products (any layer wider than SMALL_WIDTH).

    * ``P: (n_params,)`` all parameters (``W0`` row-major, ``b0``, ``W1``, ...), updated
      in place; ``S: (n_state, n_params)`` optimizer state in the same layout;
    * ``dims: (L + 1,)`` layer widths, ``acts: (L,)`` activation codes;
    * ``X: (N, dims[0])``; ``T: (N, k)`` float targets (float heads) or a dummy,
      ``labels: (N,)`` (softmax cross-entropy head) or a dummy;
    * ``order``, ``batch_size``, ``step`` as in the contract; ``head``/``opt`` codes;
    * ``C``: constants and hyper-parameters in P's dtype (see ``_C_*``);
    * ``out: (2, n_batches)`` float64, receives each batch's loss and correct count;
    * ``gemm_fn``: address of NumPy's ``cblas_?gemm`` for P's dtype, or 0.
    """
    L = dims.shape[0] - 1
    n_batches = out.shape[1]
    m = order.shape[0]
    bsz = min(batch_size, m)
    woff, boff, total = _offsets(dims)
    zero = C[_C_ZERO]
    one = C[_C_ONE]
    scratch = np.empty(1, P.dtype)
    G = np.empty(total, P.dtype)
    # A_0 (the gathered batch), A_1..A_L stored back to back, each (bsz, width).
    aoff = np.empty(L + 1, np.int64)
    off = 0
    widest = 0
    for l in range(L + 1):
        aoff[l] = off
        off += bsz * dims[l]
        if l > 0:
            widest = max(widest, dims[l])
    A = np.empty(off, P.dtype)
    # Two gradient buffers used in turn: dL/dA_{l+1} -> dL/dA_l.
    D0 = np.empty(bsz * widest, P.dtype)
    D1 = np.empty(bsz * widest, P.dtype)
    n_in = dims[0]
    lr = C[_C_HYPER]
    neg_lr = -lr
    fold_sgd = opt == SGD and C[_C_HYPER + 1] == zero and gemm_fn != 0
    for j in range(n_batches):
        start = j * batch_size
        nb = min(batch_size, m - start)
        Xb = _view(A, aoff[0], nb, n_in)
        for i in range(nb):
            x = X[order[start + i]]
            xb = Xb[i]
            for f in range(n_in):
                xb[f] = x[f]
        for l in range(L):
            Win = _view(P, woff[l], dims[l], dims[l + 1])
            Zl = _view(A, aoff[l + 1], nb, dims[l + 1])
            _gemm(gemm_fn, False, False, _view(A, aoff[l], nb, dims[l]), Win, Zl, one, zero)
            _bias_act_rows(Zl, P[boff[l] : boff[l] + dims[l + 1]], acts[l], one, zero)
        D = _view(D0, 0, nb, dims[L])
        loss, correct = _head_rows(
            _view(A, aoff[L], nb, dims[L]), D, T, labels, order, start, head, C, scratch, nb
        )
        out[0, j] = loss
        out[1, j] = correct
        spare = D1
        current = D0
        # Plain SGD (no momentum) is folded into the weight-gradient product:
        # W += -lr * (A^T dZ) in one BLAS call (beta = 1), so dW is never stored and
        # the update costs no pass over W.  The velocity is not read when momentum
        # is 0, so it is only written by the last batch, which runs the full update.
        fold = fold_sgd and j < n_batches - 1
        for l in range(L - 1, -1, -1):
            din = dims[l]
            dout = dims[l + 1]
            D = _view(current, 0, nb, dout)
            gb = G[boff[l] : boff[l] + dout]
            _act_backward_rows(D, _view(A, aoff[l + 1], nb, dout), acts[l], zero, one, gb)
            Ain = _view(A, aoff[l], nb, din)
            Wl = _view(P, woff[l], din, dout)
            if l > 0:  # dL/dA_l with the weights before this step's update
                _gemm(gemm_fn, False, True, D, Wl, _view(spare, 0, nb, din), one, zero)
            if fold:
                _gemm(gemm_fn, True, False, Ain, D, Wl, neg_lr, one)
                bl = P[boff[l] : boff[l] + dout]
                for c in range(dout):
                    bl[c] += -(lr * gb[c])  # = momentum * v - lr * g with momentum 0
            else:
                _gemm(gemm_fn, True, False, Ain, D, _view(G, woff[l], din, dout), one, zero)
            if l > 0:
                current, spare = spare, current
        if not fold:
            _optimizer_step(P, G, S, opt, C, step + j + 1, scratch)


@njit(**JIT)
def _gemm_at(fn, trans_a, trans_b, M, N, K, one, zero, A, a_off, lda, B, b_off, ldb, C, c_off, ldc):
    """``C[c_off:] = op(A[a_off:]) @ op(B[b_off:])`` on flat buffers with leading
    dimensions ``lda, ldb, ldc`` (so a block of columns can be addressed)."""
    size = A.itemsize
    _cblas_gemm(
        fn, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, M, N, K,
        one, A.ctypes.data + a_off * size, lda, B.ctypes.data + b_off * size, ldb,
        zero, C.ctypes.data + c_off * size, ldc,
    )  # fmt: skip


@njit(**JIT_PARALLEL)
def _train_gemm_par(
    P, S, dims, acts, X, T, labels, order, batch_size, head, opt, C, step, out, gemm_fn, n_threads
):
    """:func:`_train_gemm` split over ``n_threads`` threads (same arguments, plus the count).

    One thread pool does everything: Numba's.  The caller limits NumPy's OpenBLAS
    to one thread for the call, and each step runs in two parallel phases:

    1. rows: each thread takes a slice of the batch's rows and gathers them, runs
       the forward pass, the loss head and the backward pass down to every
       layer's ``dL/dZ`` on its rows (all row-local), with single-threaded BLAS
       products and a partial ``db`` per thread;
    2. parameters: each thread takes a slice of every layer's input rows and forms
       ``dW[rows] = A[:, rows]^T dZ`` and the optimizer update of those weights
       (plain SGD folded into the product, as in :func:`_train_gemm`), and a slice
       of its units' ``db`` (partials summed in thread order: deterministic).

    Both halves of the machine then also share the row gather and the
    elementwise passes, which the serial loop runs on one core while the other
    waits for the next BLAS call.
    """
    L = dims.shape[0] - 1
    n_batches = out.shape[1]
    m = order.shape[0]
    bsz = min(batch_size, m)
    nt = n_threads
    woff, boff, total = _offsets(dims)
    zero = C[_C_ZERO]
    one = C[_C_ONE]
    scratch = np.empty((nt, 1), P.dtype)  # one per thread: _to_dtype writes into it
    G = np.empty(total, P.dtype)
    GB = np.empty((nt, total), P.dtype)  # per-thread partial bias gradients
    part = np.zeros((2, nt))  # per-thread loss and correct count of the batch
    # A_0 (the gathered batch), A_1..A_L back to back, each (bsz, width); dZ_0..dZ_{L-1}
    # likewise (dZ_l: (bsz, dims[l + 1])); dL/dA_l is formed in dZ_{l-1}'s buffer.
    aoff = np.empty(L + 1, np.int64)
    doff = np.empty(L, np.int64)
    off = 0
    doff_total = 0
    for l in range(L + 1):
        aoff[l] = off
        off += bsz * dims[l]
        if l < L:
            doff[l] = doff_total
            doff_total += bsz * dims[l + 1]
    A = np.empty(off, P.dtype)
    DZ = np.empty(doff_total, P.dtype)
    n_in = dims[0]
    lr = C[_C_HYPER]
    neg_lr = -lr
    fold_sgd = opt == SGD and C[_C_HYPER + 1] == zero
    for j in range(n_batches):
        start = j * batch_size
        nb = min(batch_size, m - start)
        m_scale, v_scale = _optimizer_scales(opt, C, step + j + 1, scratch[0])
        for t in prange(nt):
            lo = t * nb // nt
            r = (t + 1) * nb // nt - lo
            for l in range(L):
                for c in range(dims[l + 1]):
                    GB[t, boff[l] + c] = zero
            part[0, t] = 0.0
            part[1, t] = 0.0
            if r > 0:
                Xb = _view(A, aoff[0] + lo * n_in, r, n_in)
                for i in range(r):
                    x = X[order[start + lo + i]]
                    xb = Xb[i]
                    for f in range(n_in):
                        xb[f] = x[f]
                for l in range(L):
                    Ain = _view(A, aoff[l] + lo * dims[l], r, dims[l])
                    Zl = _view(A, aoff[l + 1] + lo * dims[l + 1], r, dims[l + 1])
                    _gemm(gemm_fn, False, False, Ain, _view(P, woff[l], dims[l], dims[l + 1]),
                          Zl, one, zero)  # fmt: skip
                    _bias_act_rows(Zl, P[boff[l] : boff[l] + dims[l + 1]], acts[l], one, zero)
                k = dims[L]
                loss, correct = _head_rows(
                    _view(A, aoff[L] + lo * k, r, k), _view(DZ, doff[L - 1] + lo * k, r, k),
                    T, labels, order, start + lo, head, C, scratch[t], nb,
                )  # fmt: skip
                part[0, t] = loss
                part[1, t] = correct
                for l in range(L - 1, -1, -1):
                    dout = dims[l + 1]
                    D = _view(DZ, doff[l] + lo * dout, r, dout)
                    _act_backward_rows(D, _view(A, aoff[l + 1] + lo * dout, r, dout), acts[l],
                                       zero, one, GB[t, boff[l] : boff[l] + dout])  # fmt: skip
                    if l > 0:
                        din = dims[l]
                        _gemm(gemm_fn, False, True, D, _view(P, woff[l], din, dout),
                              _view(DZ, doff[l - 1] + lo * din, r, din), one, zero)  # fmt: skip
        loss = 0.0
        correct = 0.0
        for t in range(nt):
            loss += part[0, t]
            correct += part[1, t]
        out[0, j] = loss
        out[1, j] = correct
        fold = fold_sgd and j < n_batches - 1
        for t in prange(nt):
            for l in range(L):
                din = dims[l]
                dout = dims[l + 1]
                f0 = t * din // nt
                f1 = (t + 1) * din // nt
                if f1 > f0:
                    # rows f0:f1 of dW = A_l^T dZ_l, or of W -= lr A_l^T dZ_l (see _train_gemm)
                    w0 = woff[l] + f0 * dout
                    if fold:
                        _gemm_at(gemm_fn, True, False, f1 - f0, dout, nb, neg_lr, one,
                                 A, aoff[l] + f0, din, DZ, doff[l], dout, P, w0, dout)  # fmt: skip
                    else:
                        _gemm_at(gemm_fn, True, False, f1 - f0, dout, nb, one, zero,
                                 A, aoff[l] + f0, din, DZ, doff[l], dout, G, w0, dout)  # fmt: skip
                        _optimizer_range(P, G, S, opt, C, w0, w0 + (f1 - f0) * dout,
                                         m_scale, v_scale)  # fmt: skip
                c0 = t * dout // nt
                c1 = (t + 1) * dout // nt
                for c in range(c0, c1):
                    g = GB[0, boff[l] + c]
                    for u in range(1, nt):
                        g += GB[u, boff[l] + c]
                    G[boff[l] + c] = g
                    if fold:
                        P[boff[l] + c] += -(lr * g)  # = momentum * v - lr * g with momentum 0
                if not fold:
                    _optimizer_range(P, G, S, opt, C, boff[l] + c0, boff[l] + c1, m_scale, v_scale)


# ------------------------------------------------------- batch-minor (small-net) path
#
# All layers' activations live in one ``(sum of widths, bsz)`` array ``A`` and their
# gradients in one ``G2`` of the same shape: layer ``l`` is rows ``r[l] ..
# r[l] + dims[l]``; weights, biases and optimizer state are read from the flat
# buffers by offset.  A step creates no array object (no list item, view or
# slice) and calls no helper that takes arrays, except once per layer: each of
# those costs atomic reference-count updates, and a 2-8-1 step is only a few
# hundred flops (measured: per-step array objects and helper calls took ~40% of
# an XOR step).  Inner loops run along the batch with a non-negative index, which
# compiles to SIMD code; a partial last batch uses the first ``n`` columns.


@njit(**JIT_REDUCE)
def _layer_grads(A, G2, G, ri, ro, din, dout, wo, bo, n):
    """A layer's weight and bias gradients from batch-minor rows, into the flat ``G``:
    ``dW[f, c] = sum_i A[ri + f, i] dZ[c, i]``, ``db[c] = sum_i dZ[c, i]`` with
    ``dZ = G2[ro : ro + dout]``.  One call per layer, not one per weight: every call
    that passes arrays costs atomic reference-count updates.  Pure sums, so
    reassociation lets them vectorize (changing the result by rounding only)."""
    for c in range(dout):
        s = G2[ro + c, 0]
        for i in range(1, n):
            s += G2[ro + c, i]
        G[bo + c] = s
    for f in range(din):
        for c in range(dout):
            s = A[ri + f, 0] * G2[ro + c, 0]
            for i in range(1, n):
                s += A[ri + f, i] * G2[ro + c, i]
            G[wo + f * dout + c] = s


@njit(**JIT_REDUCE)
def _sum_row64(v, n):
    """sum_i v[i] for i < n; reassociation lets the reduction vectorize."""
    s = 0.0
    for i in range(n):
        s += v[i]
    return s


@njit(**JIT)
def _train_small(P, S, dims, acts, X, T, labels, order, batch_size, head, opt, C, step, out):
    """Batch-minor training loop with plain-loop products (layers <= SMALL_WIDTH wide).

    Same arguments as :func:`_train_gemm` without ``gemm_fn``.  The step is written
    out in full, without helper calls that take arrays (each such call costs
    atomic reference-count updates; see the section comment); only the layer
    gradients (:func:`_layer_grads`, once per layer) and float64 sums are calls.
    """
    L = dims.shape[0] - 1
    n_batches = out.shape[1]
    m = order.shape[0]
    bsz = min(batch_size, m)
    woff, boff, total = _offsets(dims)
    zero = C[_C_ZERO]
    one = C[_C_ONE]
    lo = C[_C_EPS]
    hi = C[_C_1MEPS]
    tiny = C[_C_TINY]
    lr = C[_C_HYPER]
    # SGD: momentum; Adam: beta1, beta2, eps (unused entries read as 0).
    h1 = C[_C_HYPER + 1]
    h2 = C[_C_HYPER + 2] if opt == ADAM else zero
    h3 = C[_C_HYPER + 3] if opt == ADAM else zero
    c1 = one - h1
    c2 = one - h2
    cast = np.empty(1, P.dtype)  # rounds a number to P's dtype, as the contract does
    G = np.empty(total, P.dtype)
    # Rows r[l] .. r[l] + dims[l] of A: layer l's input (l = 0: the gathered batch);
    # the same rows of G2: dL/dA_l.  Both (features, bsz).
    r = np.empty(L + 1, np.int64)
    rows = 0
    for l in range(L + 1):
        r[l] = rows
        rows += dims[l]
    A = np.empty((rows, bsz), P.dtype)
    G2 = np.empty((rows, bsz), P.dtype)
    k = dims[L]
    ro_out = r[L]
    float_head = head != SOFTMAX_CE
    Tb = np.empty((k, bsz) if float_head else (1, 1), P.dtype)
    lab = np.empty(bsz, np.int64)
    # Per-sample scratch: column maxima and sums, and float64 loss terms.
    colmax = np.empty(bsz, P.dtype)
    colsum = np.empty(bsz, P.dtype)
    terms = np.empty(bsz)
    n_in = dims[0]
    prev = -1  # start of the previous batch in ``order``
    prev_n = 0
    for j in range(n_batches):
        start = j * batch_size
        n = min(batch_size, m - start)
        # Gather the batch transposed: features x samples -- unless it holds the same
        # rows in the same order as the previous one (full-batch training without
        # shuffling, as the tutorials do): A[:n_in] and the targets are unchanged.
        same = n == prev_n
        if same:
            for i in range(n):
                if order[start + i] != order[prev + i]:
                    same = False
                    break
        prev = start
        prev_n = n
        if not same:
            for i in range(n):
                row = order[start + i]
                for f in range(n_in):
                    A[f, i] = X[row, f]
                if float_head:
                    for c in range(k):
                        Tb[c, i] = T[row, c]
                else:
                    lab[i] = labels[row]
        # ---- forward: Z[c, :] = sum_f W[f, c] A[f, :] + b[c], then the activation
        for l in range(L):
            din = dims[l]
            dout = dims[l + 1]
            ri = r[l]
            ro = r[l + 1]
            wo = woff[l]
            bo = boff[l]
            act = acts[l]
            for c in range(dout):
                z = ro + c
                bc = P[bo + c]
                for i in range(n):
                    A[z, i] = zero
                for f in range(din):
                    w = P[wo + f * dout + c]
                    for i in range(n):
                        A[z, i] += w * A[ri + f, i]
                if act == LINEAR or act == SOFTMAX:  # softmax normalizes per column below
                    for i in range(n):
                        A[z, i] += bc
                elif act == RELU:
                    for i in range(n):
                        v = A[z, i] + bc
                        A[z, i] = zero if v < zero else v
                elif act == SIGMOID:
                    for i in range(n):
                        A[z, i] = _sigmoid(A[z, i] + bc, one)
                elif act == TANH:
                    for i in range(n):
                        A[z, i] = np.tanh(A[z, i] + bc)
            if act == SOFTMAX:
                # softmax(z) = softmax(z - max z): exp() of non-positive numbers only.
                for i in range(n):
                    colmax[i] = A[ro, i]
                for c in range(1, dout):
                    for i in range(n):
                        colmax[i] = max(colmax[i], A[ro + c, i])
                for i in range(n):
                    colsum[i] = zero
                for c in range(dout):
                    for i in range(n):
                        e = fast_exp(A[ro + c, i] - colmax[i])
                        A[ro + c, i] = e
                        colsum[i] += e
                for c in range(dout):
                    for i in range(n):
                        A[ro + c, i] = A[ro + c, i] / colsum[i]
        # ---- loss head on O = A[ro_out : ro_out + k]: dL/dO into G2's same rows
        loss = 0.0
        correct = 0
        cast[0] = n
        nf = cast[0]
        if head == SOFTMAX_CE:
            for i in range(n):
                mx = A[ro_out, i]
                for c in range(1, k):
                    mx = max(mx, A[ro_out + c, i])
                s = zero
                for c in range(k):
                    e = fast_exp(A[ro_out + c, i] - mx)
                    G2[ro_out + c, i] = e
                    s += e
                li = lab[i]
                # -log softmax(o)_lab = log(sum exp(o - max)) - (o_lab - max)
                loss += fast_log(s) - (A[ro_out + li, i] - mx)
                for c in range(k):
                    G2[ro_out + c, i] = G2[ro_out + c, i] / s
                G2[ro_out + li, i] -= one
                for c in range(k):
                    G2[ro_out + c, i] = G2[ro_out + c, i] / nf
                best = 0  # argmax, a NaN counting as the maximum (as np.argmax)
                for c in range(1, k):
                    if not A[ro_out + best, i] >= A[ro_out + c, i] and (
                        A[ro_out + best, i] == A[ro_out + best, i]
                    ):
                        best = c
                if best == li:
                    correct += 1
            loss = loss / n
        else:
            cast[0] = n * k
            size = cast[0]
            cast[0] = 2.0 / (n * k)
            coef = cast[0]
            # Per-element loss terms go to ``terms`` (float64) and are summed after:
            # a running sum inside these loops would keep them scalar.
            for c in range(k):
                o = ro_out + c
                if head == MSE:
                    for i in range(n):
                        diff = A[o, i] - Tb[c, i]
                        terms[i] = diff * diff
                        G2[o, i] = coef * diff
                elif head == SIGMOID_CE:
                    for i in range(n):
                        z = A[o, i]
                        t = Tb[c, i]
                        # -(t log s + (1-t) log(1-s)) without log(0) or overflowing exp.
                        terms[i] = max(z, zero) - z * t + fast_log1p(fast_exp(-abs(z)))
                        G2[o, i] = (_sigmoid(z, one) - t) / size
                elif head == BCE:
                    for i in range(n):
                        y = A[o, i]
                        t = Tb[c, i]
                        p = min(max(y, lo), hi)
                        terms[i] = -(t * fast_log(p) + (one - t) * fast_log(one - p))
                        # The clip's derivative is zero outside [eps, 1 - eps].
                        inside = y >= lo and y <= hi
                        G2[o, i] = (p - t) / (p * (one - p)) / size if inside else zero
                else:  # CCE
                    for i in range(n):
                        y = A[o, i]
                        t = Tb[c, i]
                        p = max(y, lo)
                        terms[i] = -t * fast_log(p)
                        G2[o, i] = -t / p / nf if y >= lo else zero
                loss += _sum_row64(terms, n)
            loss = loss / n if head == CCE else loss / (n * k)
            for i in range(n):
                if k > 1:
                    bo_, bt = 0, 0  # argmax of output and target, NaN as the maximum
                    for c in range(1, k):
                        if not A[ro_out + bo_, i] >= A[ro_out + c, i] and (
                            A[ro_out + bo_, i] == A[ro_out + bo_, i]
                        ):
                            bo_ = c
                        if not Tb[bt, i] >= Tb[c, i] and Tb[bt, i] == Tb[bt, i]:
                            bt = c
                    if bo_ == bt:
                        correct += 1
                else:
                    threshold = 0.0 if head == SIGMOID_CE else 0.5
                    if (A[ro_out, i] > threshold) == (Tb[0, i] > 0.5):
                        correct += 1
        out[0, j] = loss
        out[1, j] = correct
        # ---- backward: dZ from dY in place, the layer's gradients, then dL/dA_l
        for l in range(L - 1, -1, -1):
            din = dims[l]
            dout = dims[l + 1]
            ri = r[l]
            ro = r[l + 1]
            wo = woff[l]
            act = acts[l]
            if act == SOFTMAX:
                # dZ = Y * (dY - sum_c dY_c Y_c), the sum taken per sample (column)
                for i in range(n):
                    colsum[i] = zero
                for c in range(ro, ro + dout):
                    for i in range(n):
                        colsum[i] += G2[c, i] * A[c, i]
                for c in range(ro, ro + dout):
                    for i in range(n):
                        G2[c, i] = A[c, i] * (G2[c, i] - colsum[i])
            elif act != LINEAR:
                for c in range(ro, ro + dout):
                    if act == SIGMOID:
                        for i in range(n):
                            G2[c, i] = G2[c, i] * A[c, i] * (one - A[c, i])
                    elif act == RELU:
                        # Y = max(Z, 0), so Z > 0 exactly where Y > 0.
                        for i in range(n):
                            G2[c, i] = G2[c, i] if A[c, i] > zero else zero
                    else:  # TANH
                        for i in range(n):
                            G2[c, i] = G2[c, i] * (one - A[c, i] * A[c, i])
            _layer_grads(A, G2, G, ri, ro, din, dout, wo, boff[l], n)
            if l > 0:
                # dA[f, :] = sum_c W[f, c] dZ[c, :]
                for f in range(din):
                    for i in range(n):
                        G2[ri + f, i] = zero
                    for c in range(dout):
                        w = P[wo + f * dout + c]
                        for i in range(n):
                            G2[ri + f, i] += w * G2[ro + c, i]
        # ---- optimizer update (see _optimizer_step for the order and the flush)
        if opt == SGD:
            for p in range(total):
                v = h1 * S[0, p] - lr * G[p]
                S[0, p] = zero if abs(v) < tiny else v
                P[p] += v
        else:
            cast[0] = step + j + 1  # beta**step computed in the dtype, as numpy does
            tt = cast[0]
            m_scale = one / (one - h1**tt)
            v_scale = one / (one - h2**tt)
            for p in range(total):
                g = G[p]
                mp = h1 * S[0, p] + c1 * g
                vp = h2 * S[1, p] + c2 * (g * g)
                mp = zero if abs(mp) < tiny else mp
                vp = zero if vp < tiny else vp
                S[0, p] = mp
                S[1, p] = vp
                P[p] -= lr * (mp * m_scale) / (np.sqrt(vp * v_scale) + h3)


# ------------------------------------------------------------------------ Python side

_DUMMY_LABELS = np.zeros(1, np.int64)
_DUMMY_T = {np.dtype(np.float32): np.zeros((1, 1), np.float32)}
_DUMMY_T[np.dtype(np.float64)] = np.zeros((1, 1), np.float64)


# Small read-only arrays derived from call arguments, reused across calls: a
# full-batch step of a 2-8-1 net costs less than building them.  Bounded (cleared
# when full) so a long sweep over hyper-parameters cannot grow them without limit.
_CACHE: dict = {}
_CACHE_MAX = 256


def _cached(key, make):
    value = _CACHE.get(key)
    if value is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        value = _CACHE[key] = make()
        value.flags.writeable = False
    return value


def _constants(dtype, hyper):
    """The ``C`` array: 0, 1, PROB_EPS, 1 - PROB_EPS, tiny in ``dtype``, then ``hyper``."""
    eps = dtype.type(PROB_EPS)
    return np.array((0, 1, eps, dtype.type(1) - eps, np.finfo(dtype).tiny, *hyper), dtype)


_NUMPY_BLAS: list = []
_GEMM_ADDRESS: dict = {}  # dtype char -> address (looked up once per process)


def _numpy_blas():
    """NumPy's bundled OpenBLAS as a ``ctypes.CDLL``, or None (another BLAS build).

    NumPy wheels bundle OpenBLAS as ``numpy.libs/libscipy_openblas64_*.so`` with
    ILP64 CBLAS symbols ``scipy_cblas_?gemm64_``.  ``dlopen`` of the already loaded
    file returns NumPy's own handle, so calls run in NumPy's thread pool (and
    obey threadpoolctl limits on it).
    """
    if not _NUMPY_BLAS:
        import ctypes
        import glob
        import os

        libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        paths = sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so")))
        lib = None
        if len(paths) == 1:
            try:
                lib = ctypes.CDLL(paths[0])
                for name in ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_",
                             "scipy_openblas_get_num_threads64_",
                             "scipy_openblas_set_num_threads64_"):  # fmt: skip
                    getattr(lib, name)
            except (OSError, AttributeError):
                lib = None
        _NUMPY_BLAS.append(lib)
    return _NUMPY_BLAS[0]


def numpy_gemm_address(dtype) -> int:
    """Address of ``cblas_sgemm``/``cblas_dgemm`` in NumPy's bundled OpenBLAS, or 0.

    Any BLAS other than NumPy's bundled OpenBLAS (MKL, system BLAS, 32-bit
    integers) gives 0, and the compiled loop falls back to ``np.dot``.
    """
    char = np.dtype(dtype).char
    address = _GEMM_ADDRESS.get(char)
    if address is None:
        import ctypes

        lib = _numpy_blas()
        fn = lib and getattr(lib, f"scipy_cblas_{'s' if char == 'f' else 'd'}gemm64_")
        address = _GEMM_ADDRESS[char] = (ctypes.cast(fn, ctypes.c_void_p).value or 0) if fn else 0
    return address


def parallel_threads() -> int:
    """Threads the multi-threaded trainer may use: 1 (serial) unless NumPy's OpenBLAS
    is the one found, Numba's threading layer is thread-safe (``workqueue`` aborts
    on concurrent parallel calls) and both Numba and that BLAS may use more than one
    thread (:func:`fastnn.set_num_threads` sets both; a threadpoolctl limit on the
    BLAS counts too)."""
    import numba

    lib = _numpy_blas()
    if lib is None or numba.config.THREADING_LAYER not in ("threadsafe", "tbb", "omp"):
        return 1
    return max(1, min(numba.get_num_threads(), lib.scipy_openblas_get_num_threads64_()))


class _SerialBlas:
    """Context: NumPy's OpenBLAS limited to one thread (the calling thread does the
    work, its pool stays idle), restored on exit.  Process-wide, as every BLAS
    thread setting is: other threads' products run single-threaded meanwhile.
    Overlapping uses from several threads are counted: the first entry saves the
    setting, the last exit restores it."""

    _lock = threading.Lock()
    _depth = 0
    _saved = 1

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                lib = _numpy_blas()
                cls._saved = lib.scipy_openblas_get_num_threads64_()
                lib.scipy_openblas_set_num_threads64_(1)
            cls._depth += 1

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                _numpy_blas().scipy_openblas_set_num_threads64_(cls._saved)


def choose_path(dims) -> str:
    """``"small"`` (batch-minor loops) or ``"gemm"`` (BLAS) for layer widths ``dims``."""
    return "small" if max(dims) <= SMALL_WIDTH else "gemm"


def compile_trainers(dtype) -> None:
    """Compile (or load from the on-disk cache) every training loop for ``dtype``.

    ``train_batches`` picks a loop by the net's widths and the thread count, so a
    warm-up through it compiles only the loops of that machine's current setting;
    this runs each of them once on a tiny problem (``_train_gemm_par`` with two
    slices, which also runs on one thread) so no later call compiles.
    """
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(0)
    dims = np.array([3, 4, 2], np.int64)
    acts = np.array([RELU, LINEAR], np.int64)
    X = rng.standard_normal((4, 3)).astype(dtype)
    T = np.zeros((4, 2), dtype)
    order = np.arange(4, dtype=np.int64)
    P = rng.standard_normal(3 * 4 + 4 + 4 * 2 + 2).astype(dtype) * dtype.type(0.1)
    S = np.zeros((1, P.size), dtype)
    C = _constants(dtype, (0.01, 0.0))
    args = (P, S, dims, acts, X, T, _DUMMY_LABELS, order, 2, MSE, SGD, C, 0, np.zeros((2, 2)))
    _train_small(*args)
    fn = numpy_gemm_address(dtype)
    _train_gemm(*args, fn)
    if fn:
        with _SerialBlas():
            _train_gemm_par(*args, fn, 2)


class TrainMixin:
    """Fused :meth:`train_batches` for the ``numba`` backend.

    Mix in *before* :class:`~fastnn.kernels.contract.Ops` (``class NumbaOps(TrainMixin,
    Ops)``) so this method overrides the contract's default composition.
    """

    def train_batches(
        self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state, hyper, step
    ):
        """The contract's ``train_batches``, fused and compiled (same arguments, same numbers).

        See :meth:`fastnn.kernels.contract.Ops.train_batches`.  ``Ws[l]: (in_l, out_l)``,
        ``bs[l]: (out_l,)`` and the optimizer state are updated in place; returns
        ``(losses, correct)`` float64 arrays of shape ``(n_batches,)``.
        """
        L = len(Ws)
        m = len(order)
        n_batches = -(-m // batch_size)
        if L == 0 or n_batches == 0:
            return Ops.train_batches(
                self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state,
                hyper, step,
            )  # fmt: skip
        if "step" in activations:
            raise StepBackwardError()
        acts = _cached(
            ("acts", *activations),
            lambda: np.array([_ACT_CODE[a] for a in activations], np.int64),
        )
        dtype = X.dtype
        dims = _cached(
            ("dims", Ws[0].shape[0], *(W.shape[1] for W in Ws)),
            lambda: np.array([Ws[0].shape[0], *(W.shape[1] for W in Ws)], np.int64),
        )
        params = [p for l in range(L) for p in (Ws[l], bs[l])]
        P = np.concatenate([p.reshape(-1) for p in params])
        n_state = len(state[0])
        S = np.empty((n_state, P.shape[0]), dtype)
        for s in range(n_state):
            np.concatenate([state[p][s].reshape(-1) for p in range(2 * L)], out=S[s])
        if head == "softmax_cross_entropy":
            T2, labels = _DUMMY_T[dtype], np.asarray(T, np.int64)
        else:
            T2, labels = T, _DUMMY_LABELS
        out = np.zeros((2, n_batches))
        args = (
            P, S, dims, acts, X, T2, labels, np.asarray(order, np.int64), batch_size,
            _HEAD_CODE[head], _OPT_CODE[optimizer],
            _cached(("C", dtype, *hyper), lambda: _constants(dtype, hyper)), step, out,
        )  # fmt: skip
        if choose_path(dims) == "small":
            _train_small(*args)
        else:
            fn = numpy_gemm_address(dtype)
            n_threads = parallel_threads() if fn else 1
            if n_threads > 1:
                with _SerialBlas():
                    _train_gemm_par(*args, fn, n_threads)
            else:
                _train_gemm(*args, fn)
        off = 0
        for p, param in enumerate(params):
            size = param.size
            param.reshape(-1)[:] = P[off : off + size]
            for s in range(n_state):
                state[p][s].reshape(-1)[:] = S[s, off : off + size]
            off += size
        return out[0], out[1]
