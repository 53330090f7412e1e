"""Batch-major training loops with BLAS products (nets beyond the batch-minor loop's size).

Activations are batch-major ``(n, features)`` and the three products per layer go
to NumPy's OpenBLAS (:mod:`.blas`); bias and activation are applied in one pass
over the product, the activation's derivative and ``db`` in one pass before the
backward products.  The gradient of the first layer's input is never formed:
nothing uses it.  Plain SGD (no momentum) is folded into the weight-gradient
product (``W += -lr A^T dZ``, one BLAS call with ``beta = 1``), so ``dW`` is never
stored and the update costs no pass over ``W``.

Each step is two phases, written once and run by both loops:

1. :func:`rows_phase` on a slice of the batch's rows: gather, forward, loss head,
   and backward down to every layer's ``dZ`` (all row-local), with a partial
   ``db`` per slice;
2. :func:`params_phase` on a slice of every layer's inputs and units: ``dW`` for
   those rows of ``W`` and ``db`` for those units (partials summed in slice
   order: deterministic), then the optimizer update.

:func:`train_gemm` runs them on the whole batch, one thread of ours (products
in NumPy's BLAS pool); :func:`train_gemm_par` splits each phase over
``n_threads`` threads of Numba's pool with NumPy's OpenBLAS limited to one
thread, so one pool does everything and the gather and elementwise passes also
run on every core.

Workspace (allocated once per call; a step allocates nothing): ``A`` holds
``A_0`` (the gathered batch) .. ``A_L`` back to back, each ``(bsz, dims[l])``, at
offsets ``a_at``; ``dZ`` holds ``dZ_0 .. dZ_{L-1}`` (``dZ_l: (bsz, dims[l + 1])``) at
``dz_at``, and ``dL/dA_l`` is formed in ``dZ_{l-1}``'s buffer.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import scalar
from .blas import blas_gemm, blas_gemm_at
from .codes import CCE, SGD, SIGMOID_CE, SOFTMAX, SOFTMAX_CE
from .config import JIT, JIT_PARALLEL
from .kernels import abs_sum, bias_act_rows, scale_row, softmax_ce_row, square_sum
from .layout import (
    C_MOMENTUM,
    C_NESTEROV,
    C_ONE,
    C_PROB_HI,
    C_PROB_LO,
    C_SGD_DECAY,
    C_ZERO,
    batch_bounds,
    batch_lr,
    bias_corrections,
    decay_range,
    offsets,
    penalize_range,
    update_block,
    view,
)

# ----------------------------------------------------------------------- row helpers


@njit(**JIT)
def bias_act_grad_rows(Z, b, act, slope, Dg, rate, key, threshold, row0):
    """In place ``Z = activation(Z + b) * M`` and ``Dg = activation'(Z + b) * M`` for an
    elementwise activation (``M`` the dropout mask of rows ``row0 ..`` of the batch,
    all ones when ``rate == 0``): the layers whose derivative needs ``Z`` or whose
    output is dropped keep ``Dg`` for the backward pass (:func:`grad_rows`)."""
    n, k = Z.shape
    zero = Z.dtype.type(0.0)
    scale = scalar.typed(1.0 / (1.0 - rate), zero)
    for i in range(n):
        scalar.act_forward_grad(act, Z, i, k, b, Dg, slope)
        if rate > 0.0:
            base = (row0 + i) * k
            for c in range(k):
                m = scale if scalar.dropout_kept(key, base + c, threshold) else zero
                Z[i, c] *= m
                Dg[i, c] *= m


@njit(**JIT)
def act_backward_rows(D, Y, act, db, slope):
    """In place ``D = dL/dZ`` from ``D = dL/dY`` for batch-major ``(n, out)``, and
    ``db = sum over rows of dL/dZ`` in the same pass (only ``Y`` is kept: see
    :func:`~.scalar.act_backward`)."""
    n, k = D.shape
    for c in range(k):
        db[c] = D.dtype.type(0.0)
    for i in range(n):
        d = D[i]
        y = Y[i]
        if act == SOFTMAX:
            s = D.dtype.type(0.0)
            for c in range(k):
                s += d[c] * y[c]
            for c in range(k):
                v = scalar.softmax_backward(d[c], y[c], s)
                d[c] = v
                db[c] += v
        else:
            scalar.act_backward(act, D, Y, Y, i, k, db, slope, None)


@njit(**JIT)
def grad_rows(D, Dg, db):
    """``D *= Dg`` (the kept derivative, dropout included) and ``db = sum over rows``."""
    n, k = D.shape
    for c in range(k):
        db[c] = D.dtype.type(0.0)
    for i in range(n):
        d = D[i]
        g = Dg[i]
        for c in range(k):
            v = d[c] * g[c]
            d[c] = v
            db[c] += v


@njit(**JIT)
def argmax(v):
    """First index of the maximum of ``v``, NaN counting as the maximum (as ``np.argmax``)."""
    best = 0
    for c in range(1, v.shape[0]):
        if scalar.argmax_takes(v[best], v[c]):
            best = c
    return best


@njit(**JIT)
def head_rows(O, D, T, labels, order, first, head, C, nb, sw, feat):
    """Loss head on output rows ``O: (n, k)`` (rows ``first ..`` of ``order``, out of a
    batch of ``nb``): ``dL/dO`` into ``D``; returns this slice's ``(loss, correct)``,
    the loss in float64 and already divided by the batch's normalizer.  ``sw``: sample
    weights indexed like ``X`` (empty: unweighted), scaling each row's loss and ``dL/dO``;
    ``feat`` None: a plain call (:func:`train_gemm`), unweighted."""
    n, k = O.shape
    zero = C[C_ZERO]
    lo = C[C_PROB_LO]
    hi = C[C_PROB_HI]
    rows = scalar.typed(nb, zero)
    size = scalar.typed(nb * k, zero)
    coef = scalar.typed(2.0 / (nb * k), zero)
    weighted = feat is not None and sw.shape[0] > 0
    terms = np.empty(k)  # float64 loss terms of a row
    total = 0.0
    correct = 0
    for i in range(n):
        o = O[i]
        d = D[i]
        row = order[first + i]
        if head == SOFTMAX_CE:
            label = labels[row]
            value = softmax_ce_row(o, label, rows, d)
            correct += argmax(o) == label
        else:
            scalar.float_head(head, O, T, D, i, row, terms, k, lo, hi, coef, size, rows)
            value = 0.0
            for c in range(k):
                value += terms[c]
            if k > 1:
                correct += argmax(o) == argmax(T[row])
            else:
                correct += scalar.binary_hit(o[0], T[row, 0], head == SIGMOID_CE)
        if feat is not None and weighted:
            scale_row(d, sw[row])
            value *= sw[row]
        total += value
    if head == SOFTMAX_CE or head == CCE:
        return total / nb, correct
    return total / (nb * k), correct


# ---------------------------------------------------------------------------- phases


@njit(**JIT)
def rows_phase(P, dims, acts, X, T, labels, order, start, lo, r, nb, head, C, fn, ws, db,
               opts, t, feat):  # fmt: skip
    """Rows ``lo .. lo + r`` of the batch at ``order[start:]`` (update ``t``): gather,
    forward (dropout), head, backward to every ``dZ_l`` from the top down to layer
    ``lowest`` and the partial ``db`` (into ``db``, laid out as ``P``).
    ``ws = (A, dZ, Dg, a_at, dz_at, w_at, b_at)``.  Returns the rows' ``(loss, correct)``."""
    A, dZ, Dg, a_at, dz_at, w_at, b_at = ws
    lopt, modes, thresholds, seed, sw, lowest = opts[2], opts[3], opts[4], opts[7], opts[6], opts[9]
    L = dims.shape[0] - 1
    one = C[C_ONE]
    zero = C[C_ZERO]
    n_in = dims[0]
    Xb = view(A, a_at[0] + lo * n_in, r, n_in)
    for i in range(r):
        x = X[order[start + lo + i]]
        xb = Xb[i]
        for f in range(n_in):
            xb[f] = x[f]
    for l in range(L):
        d_in, d_out = dims[l], dims[l + 1]
        Z = view(A, a_at[l + 1] + lo * d_out, r, d_out)
        W = view(P, w_at[l], d_in, d_out)
        blas_gemm(fn, False, False, view(A, a_at[l] + lo * d_in, r, d_in), W, Z, one, zero)
        b = P[b_at[l] : b_at[l] + d_out]
        slope = scalar.typed(lopt[l, 3], zero)
        if feat is None or modes[l] == 0:
            bias_act_rows(Z, b, acts[l], slope, None)
        else:
            rate = lopt[l, 2]
            key = scalar.dropout_key(seed, t, l) if rate > 0.0 else seed
            Dl = view(Dg, a_at[l + 1] + lo * d_out, r, d_out)
            bias_act_grad_rows(Z, b, acts[l], slope, Dl, rate, key, thresholds[l], lo)
    k = dims[L]
    loss, correct = head_rows(
        view(A, a_at[L] + lo * k, r, k), view(dZ, dz_at[L - 1] + lo * k, r, k),
        T, labels, order, start + lo, head, C, nb, sw, feat,
    )  # fmt: skip
    for l in range(L - 1, lowest - 1, -1):
        d_in, d_out = dims[l], dims[l + 1]
        D = view(dZ, dz_at[l] + lo * d_out, r, d_out)
        db_l = db[b_at[l] : b_at[l] + d_out]
        if feat is None or modes[l] == 0:
            Y = view(A, a_at[l + 1] + lo * d_out, r, d_out)
            act_backward_rows(D, Y, acts[l], db_l, scalar.typed(lopt[l, 3], zero))
        else:
            grad_rows(D, view(Dg, a_at[l + 1] + lo * d_out, r, d_out), db_l)
        if l > lowest:  # dL/dA_l = dZ_l W_l^T, with the weights before this step's update
            dA = view(dZ, dz_at[l - 1] + lo * d_in, r, d_in)
            blas_gemm(fn, False, True, D, view(P, w_at[l], d_in, d_out), dA, one, zero)
    return loss, correct


@njit(**JIT)
def penalty_value(P, lo, hi, l1, l2, scale):
    """``scale (l1 sum|W| + l2 sum W^2)`` over ``P[lo:hi]``, float64."""
    value = 0.0
    if l1 != 0.0:
        value += l1 * abs_sum(P[lo:hi])
    if l2 != 0.0:
        value += l2 * square_sum(P[lo:hi])
    return scale * value


@njit(**JIT)
def params_phase(P, G, S, dims, opt, C, nb, fn, ws, db_parts, t, nt, fold, keep, lr, a, b,
                 opts, feat):  # fmt: skip
    """Slice ``t`` of ``nt`` of every trained layer: ``dW`` rows (input features) plus the
    penalty's gradient, and ``db`` units (the ``db_parts`` rows summed in order), then
    their update -- or, with ``fold`` (SGD without momentum, no L1), the whole SGD step
    ``W = (1 - lr wd - lr c2) W - lr A^T dZ`` in the product itself.  ``keep`` (the
    call's last batch): folded steps also write the velocity the unfolded step leaves,
    from a product of their own, so ``W``'s step is the same on every batch.  Frozen
    parameters are skipped.  Returns the slice's penalty value (float64)."""
    A, dZ, Dg, a_at, dz_at, w_at, b_at = ws
    lopt, train, per_row, lowest = opts[2], opts[5], opts[8], opts[9]
    one = C[C_ONE]
    zero = C[C_ZERO]
    scale = 1.0 / nb if per_row else 1.0
    value = 0.0
    for l in range(lowest, dims.shape[0] - 1):
        d_in, d_out = dims[l], dims[l + 1]
        f0, f1 = t * d_in // nt, (t + 1) * d_in // nt
        w0, w1 = w_at[l] + f0 * d_out, w_at[l] + f1 * d_out
        l1, l2 = lopt[l, 0], lopt[l, 1]
        c1 = scalar.typed(scale * l1, zero)
        c2 = scalar.typed(2.0 * scale * l2, zero)
        fold_l = fold and l1 == 0.0
        if train[2 * l] and f1 > f0:
            if feat is not None:
                value += penalty_value(P, w0, w1, l1, l2, scale)
            if keep or not fold_l:  # dW (plus the penalty's gradient) into G
                if fn != 0:
                    blas_gemm_at(fn, True, False, f1 - f0, d_out, nb, one, A, a_at[l] + f0, d_in,
                                 dZ, dz_at[l], d_out, zero, G, w0, d_out)  # fmt: skip
                else:  # np.dot fallback: serial only, so the slice is the whole of W
                    Al, Dl = view(A, a_at[l], nb, d_in), view(dZ, dz_at[l], nb, d_out)
                    blas_gemm(fn, True, False, Al, Dl, view(G, w0, d_in, d_out), one, zero)
                if feat is not None:
                    penalize_range(P, G, w0, w1, c1, c2, zero)
            if fold_l:
                if keep:  # SGD's velocity with momentum 0, before W changes
                    for p in range(w0, w1):
                        _, S[0, p] = scalar.sgd_step(zero, G[p], zero, lr, zero)
                beta = one - lr * wd_of(C, opt) - lr * c2
                blas_gemm_at(fn, True, False, f1 - f0, d_out, nb, -lr, A, a_at[l] + f0, d_in,
                             dZ, dz_at[l], d_out, beta, P, w0, d_out)  # fmt: skip
            else:
                update_block(P, G, S, opt, C, w0, w1, lr, a, b)
        if not train[2 * l + 1]:
            continue
        c0, c1_ = b_at[l] + t * d_out // nt, b_at[l] + (t + 1) * d_out // nt
        for c in range(c0, c1_):
            g = db_parts[0, c]
            for u in range(1, db_parts.shape[0]):
                g += db_parts[u, c]
            G[c] = g
        if fold and not keep:  # SGD with momentum 0: the velocity is neither read nor kept
            decay_range(P, C, opt, c0, c1_, lr)
            for c in range(c0, c1_):
                P[c], _ = scalar.sgd_step(P[c], G[c], zero, lr, zero)
        else:
            update_block(P, G, S, opt, C, c0, c1_, lr, a, b)
    return value


@njit(**JIT)
def wd_of(C, opt):
    """The decoupled weight decay of optimizer ``opt`` (SGD's when folding)."""
    return C[C_SGD_DECAY] if opt == SGD else C[C_ZERO]


@njit(**JIT)
def workspace(P, dims, bsz, n_parts, keep_grads):
    """``(ws, G, db_parts)``: the phases' workspace tuple (see the module docstring),
    the gradient buffer and ``n_parts`` partial bias-gradient rows.  ``keep_grads``:
    some layer keeps its derivative (``Dg``, laid out as ``A``)."""
    L = dims.shape[0] - 1
    w_at, b_at, total = offsets(dims)
    a_at = np.empty(L + 1, np.int64)
    dz_at = np.empty(L, np.int64)
    a_size = 0
    dz_size = 0
    for l in range(L + 1):
        a_at[l] = a_size
        a_size += bsz * dims[l]
        if l < L:
            dz_at[l] = dz_size
            dz_size += bsz * dims[l + 1]
    Dg = np.empty(a_size if keep_grads else 0, P.dtype)
    ws = (np.empty(a_size, P.dtype), np.empty(dz_size, P.dtype), Dg, a_at, dz_at, w_at, b_at)
    return ws, np.empty(total, P.dtype), np.zeros((n_parts, total), P.dtype)


@njit(**JIT)
def call_workspace(P, dims, batch_size, opts, n_parts):
    """:func:`workspace` for a loop call with these arguments, its batches cut into
    ``n_parts`` slices (1 for :func:`train_gemm`)."""
    epoch_size, modes = opts[0], opts[3]
    return workspace(P, dims, min(batch_size, epoch_size), n_parts, np.any(modes != 0))


@njit(**JIT)
def can_fold(opt, C, fn):
    """Whether the SGD step folds into the weight-gradient product: SGD without
    momentum (heavy ball or Nesterov: then identical) and a CBLAS address."""
    return opt == SGD and C[C_MOMENTUM] == C[C_ZERO] and C[C_NESTEROV] == C[C_ZERO] and fn != 0


# ------------------------------------------------------------------------ the loops


@njit(**JIT)
def train_gemm(P, S, dims, acts, X, T, labels, order, batch_size, head, opt, C, step, out, opts,
               fn, feat):  # fmt: skip
    """Batch-major training loop, one thread of ours.

    * ``P: (n_params,)`` all parameters, updated in place; ``S: (n_state, n_params)``
      optimizer state in the same layout (:mod:`.layout`);
    * ``dims: (L + 1,)`` layer widths, ``acts: (L,)`` activation codes;
    * ``X: (N, dims[0])``; ``T: (N, k)`` float targets (float heads) or a dummy,
      ``labels: (N,)`` (softmax cross-entropy head) or a dummy;
    * ``order``, ``batch_size``, ``step`` as in the contract; ``head``/``opt`` codes;
    * ``C``: constants and hyper-parameters in P's dtype (:mod:`.layout`);
    * ``out: (2, n_batches)`` float64, receives each batch's loss and correct count;
    * ``opts``: the per-call options (:func:`~.layout.options`);
    * ``fn``: address of NumPy's ``cblas_?gemm`` for P's dtype, or 0 (``np.dot``);
    * ``feat``: None for a plain call (no layer keeps its derivative or is dropped, no
      penalty, no sample weight): those paths are then pruned before typing, so a
      plain model compiles a smaller specialization.  Else True.
    """
    epoch_size, lrs = opts[0], opts[1]
    ws, G, db_parts = call_workspace(P, dims, batch_size, opts, 1)
    n_batches = out.shape[1]
    fold_sgd = can_fold(opt, C, fn)
    for j in range(n_batches):
        start, nb = batch_bounds(j, batch_size, epoch_size)
        t = step + j + 1
        out[0, j], out[1, j] = rows_phase(
            P, dims, acts, X, T, labels, order, start, 0, nb, nb, head, C, fn, ws, db_parts[0],
            opts, t, feat,
        )  # fmt: skip
        # The velocity is not read when momentum is 0, so only the call's last batch
        # writes it (keep); every batch folds W's step the same way, so the weights do
        # not depend on where calls begin and end.
        keep = j == n_batches - 1
        lr = batch_lr(C, lrs, j)
        a, b = bias_corrections(opt, C, t, lr)
        out[0, j] += params_phase(
            P, G, S, dims, opt, C, nb, fn, ws, db_parts, 0, 1, fold_sgd, keep, lr, a, b, opts,
            feat,
        )  # fmt: skip


@njit(**JIT_PARALLEL)
def train_gemm_par(P, S, dims, acts, X, T, labels, order, batch_size, head, opt, C, step, out,
                   opts, fn, feat, n_threads, j0, j1, work):  # fmt: skip
    """:func:`train_gemm` for batches ``j0 .. j1`` of the call, each phase cut into
    ``n_threads`` slices run on Numba's pool (``fn`` != 0).

    The slices fix the numbers; the pool may run them on fewer threads
    (``numba.set_num_threads``, see :mod:`.threads`) with the same result.
    ``work``: :func:`call_workspace` of the call, allocated once for all its chunks
    (fresh buffers per chunk would pay their page faults again).  The caller limits
    NumPy's OpenBLAS to one thread for the call (:class:`~.blas.SerialBlas`).
    """
    epoch_size, lrs = opts[0], opts[1]
    nt = n_threads
    ws, G, db_parts = work
    part = np.empty((3, nt))  # per-thread loss, correct count and penalty of the batch
    n_batches = out.shape[1]
    fold_sgd = can_fold(opt, C, fn)
    # Plain loops, no array expressions: each would become a parallel region of its
    # own, compiled (and launched) like the two slices below.  The slice index is
    # cast to int64 so both regions call the phases with one signature (Numba types
    # a prange index unsigned in one of them, which compiled the phase twice).
    for j in range(j0, j1):
        start, nb = batch_bounds(j, batch_size, epoch_size)
        t_step = step + j + 1
        for u in prange(nt):
            t = np.int64(u)
            lo = t * nb // nt
            r = (t + 1) * nb // nt - lo
            for c in range(db_parts.shape[1]):
                db_parts[t, c] = C[C_ZERO]
            part[0, t] = 0.0
            part[1, t] = 0.0
            if r > 0:
                part[0, t], part[1, t] = rows_phase(
                    P, dims, acts, X, T, labels, order, start, lo, r, nb, head, C, fn, ws,
                    db_parts[t], opts, t_step, feat,
                )  # fmt: skip
        keep = j == n_batches - 1  # as in train_gemm
        lr = batch_lr(C, lrs, j)
        a, b = bias_corrections(opt, C, t_step, lr)
        for u in prange(nt):
            t = np.int64(u)
            part[2, t] = params_phase(
                P, G, S, dims, opt, C, nb, fn, ws, db_parts, t, nt, fold_sgd, keep, lr, a, b,
                opts, feat,
            )  # fmt: skip
        loss = 0.0
        penalty = 0.0
        correct = 0.0
        for t in range(nt):
            loss += part[0, t]
            penalty += part[2, t]
            correct += part[1, t]
        out[0, j] = loss + penalty
        out[1, j] = correct
