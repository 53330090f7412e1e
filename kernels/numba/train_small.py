"""Batch-minor training loop for small nets (``SMALL_WIDTH`` and ``SMALL_MACS`` in :mod:`.train`).

All layers' activations live in one ``(sum of widths, bsz)`` array ``A`` and their
gradients in one ``dA`` of the same shape: layer ``l``'s input is rows
``first[l] .. first[l] + dims[l]``; weights, biases and optimizer state are read
from the flat buffers by offset (:mod:`.layout`).  Inner loops run along the
batch with a non-negative index, which compiles to SIMD code; matrix products
are plain loops (a BLAS call would cost more than the work); a partial last batch
uses the first ``n`` columns.

A step of a tiny net (2-8-1) is only a few hundred flops, so per-step overheads
dominate it: every call of a compiled function that passes arrays costs atomic
reference-count updates, and so does every array object (view, slice) a step
creates.  The phases of the step (gather, forward, head, backward, update) are
therefore ``JIT_INLINE`` functions, inlined into :func:`train_small` before it
is compiled, and create no array objects; the only real calls are
:func:`layer_grads` and :func:`sum64_prefix`, whose reductions need
reassociation (a different fast-math setting).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import scalar
from .codes import CCE, LINEAR, SIGMOID_CE, SOFTMAX, SOFTMAX_CE
from .config import JIT, JIT_INLINE, JIT_REDUCE
from .kernels import abs_sum, square_sum
from .layout import (
    C_PROB_HI,
    C_PROB_LO,
    C_ZERO,
    batch_bounds,
    batch_lr,
    bias_corrections,
    offsets,
    penalize_range,
    update_range,
)


@njit(**JIT_REDUCE)
def layer_grads(A, dA, G, x_row, z_row, d_in, d_out, w_at, b_at, n):
    """A layer's weight and bias gradients from batch-minor rows, into the flat ``G``:
    ``dW[f, c] = sum_i A[x_row + f, i] dZ[c, i]``, ``db[c] = sum_i dZ[c, i]`` with
    ``dZ = dA[z_row : z_row + d_out]``.  Pure sums, so reassociation lets them
    vectorize (changing the result by rounding only)."""
    for c in range(d_out):
        s = dA[z_row + c, 0]
        for i in range(1, n):
            s += dA[z_row + c, i]
        G[b_at + c] = s
    for f in range(d_in):
        for c in range(d_out):
            s = A[x_row + f, 0] * dA[z_row + c, 0]
            for i in range(1, n):
                s += A[x_row + f, i] * dA[z_row + c, i]
            G[w_at + f * d_out + c] = s


@njit(**JIT_REDUCE)
def sum64_prefix(v, n):
    """``sum_i v[i]`` for ``i < n``; reassociation lets the reduction vectorize."""
    s = 0.0
    for i in range(n):
        s += v[i]
    return s


# ---------------------------------------------------------------------------- phases


@njit(**JIT_INLINE)
def same_rows(order, start, prev, n, prev_n):
    """Whether batch ``order[start : start + n]`` repeats the one at ``prev``."""
    if n != prev_n:
        return False
    for i in range(n):
        if order[start + i] != order[prev + i]:
            return False
    return True


@njit(**JIT_INLINE)
def gather_columns(X, T, labels, order, start, n, A, Tb, lab, float_head, sw, wb):
    """Batch ``order[start : start + n]`` transposed into ``A[:n_in, :n]`` (features x
    samples), its targets into ``Tb: (k, n)`` or its labels into ``lab``, its sample
    weights (if ``sw`` is not empty) into ``wb``."""
    for i in range(n):
        row = order[start + i]
        if sw.shape[0] > 0:
            wb[i] = sw[row]
        for f in range(X.shape[1]):
            A[f, i] = X[row, f]
        if float_head:
            for c in range(Tb.shape[0]):
                Tb[c, i] = T[row, c]
        else:
            lab[i] = labels[row]


@njit(**JIT_INLINE)
def softmax_columns(A, row, width, n, col_max, col_sum):
    """In place softmax of rows ``row .. row + width`` of ``A`` along each column."""
    for i in range(n):
        col_max[i] = A[row, i]
        col_sum[i] = A.dtype.type(0.0)
    for c in range(row + 1, row + width):
        for i in range(n):
            col_max[i] = scalar.nan_max(col_max[i], A[c, i])
    for c in range(row, row + width):
        for i in range(n):
            e = scalar.softmax_numerator(A[c, i], col_max[i])
            A[c, i] = e
            col_sum[i] += e
    for c in range(row, row + width):
        for i in range(n):
            A[c, i] = A[c, i] / col_sum[i]


@njit(**JIT_INLINE)
def dropout_columns(A, Dg, z, c, width, n, rate, key, threshold):
    """Dropout on unit ``c`` (row ``z`` of ``A`` and ``Dg``) for the ``n`` samples: element
    ``i * width + c`` of the batch's ``(n, width)`` output, as the contract indexes it."""
    zero = A.dtype.type(0.0)
    scale = scalar.typed(1.0 / (1.0 - rate), zero)
    for i in range(n):
        m = scale if scalar.dropout_kept(key, i * width + c, threshold) else zero
        A[z, i] *= m
        Dg[z, i] *= m


@njit(**JIT)
def forward_grad_unit(A, Dg, z, n, bias, act, slope, c, width, rate, key, threshold):
    """Unit ``c`` (row ``z``) of a mode-1 layer: activation and kept derivative
    (:func:`~.scalar.act_forward_grad`), then dropout.  A real call, not inlined: the
    dispatcher's nine loops would otherwise be compiled into the trainer a second time
    (next to :func:`~.scalar.act_forward`'s), doubling its compile time; only layers
    with dropout or a derivative that needs ``Z`` pay the call."""
    scalar.act_forward_grad(act, A, z, n, bias, Dg, slope)
    if rate > 0.0:
        dropout_columns(A, Dg, z, c, width, n, rate, key, threshold)


@njit(**JIT_INLINE)
def forward_columns(P, dims, acts, w_at, b_at, first, A, Dg, col_max, col_sum, n, opts, t):
    """Every layer: ``Z[c, :] = sum_f W[f, c] A_l[f, :] + b[c]``, then the activation
    (``col_sum`` also holds the bias broadcast along the batch); layers in mode 1
    (:func:`~.train.options`) keep their derivative in ``Dg`` and apply dropout."""
    lopt, modes, thresholds, seed = opts[2], opts[3], opts[4], opts[7]
    bias = col_sum
    zero = A.dtype.type(0.0)
    for l in range(dims.shape[0] - 1):
        # Indices as local scalars: read from arrays inside the loops, they would be
        # reloaded every iteration (they might alias A) and block vectorization.
        d_in, d_out = dims[l], dims[l + 1]
        x_row, z_row = first[l], first[l + 1]
        w_l, b_l = w_at[l], b_at[l]
        act = acts[l]
        mode = modes[l]
        slope = scalar.typed(lopt[l, 3], zero)
        rate = lopt[l, 2]
        key = scalar.dropout_key(seed, t, l) if rate > 0.0 else seed
        for c in range(d_out):
            z = z_row + c
            for i in range(n):
                A[z, i] = zero
            for f in range(d_in):
                w = P[w_l + f * d_out + c]
                x = x_row + f
                for i in range(n):
                    A[z, i] += w * A[x, i]
            b = P[b_l + c]
            for i in range(n):
                bias[i] = b
            if mode == 0:
                scalar.act_forward(act, A, z, n, bias, slope, None)
            else:
                forward_grad_unit(A, Dg, z, n, bias, act, slope, c, d_out, rate, key, thresholds[l])
        if act == SOFTMAX:
            softmax_columns(A, z_row, d_out, n, col_max, col_sum)


@njit(**JIT_INLINE)
def softmax_ce_columns(A, dA, lab, row, k, n, rows, weighted, wb):
    """Softmax cross-entropy head on logits ``A[row : row + k, :n]``: ``dL/dZ`` into
    ``dA``'s same rows (times the sample weights ``wb`` if ``weighted``); returns
    ``(mean loss, correct)``."""
    loss = 0.0
    correct = 0
    for i in range(n):
        z_max = A[row, i]
        for c in range(row + 1, row + k):
            z_max = scalar.nan_max(z_max, A[c, i])
        s = A.dtype.type(0.0)
        for c in range(row, row + k):
            e = scalar.softmax_numerator(A[c, i], z_max)
            dA[c, i] = e
            s += e
        label = lab[i]
        value = scalar.softmax_ce_value(s, A[row + label, i] - z_max)
        best = 0
        for c in range(k):
            dA[row + c, i] = scalar.softmax_ce_grad(dA[row + c, i], s, c == label, rows)
            if scalar.argmax_takes(A[row + best, i], A[row + c, i]):
                best = c
        if weighted:
            for c in range(k):
                dA[row + c, i] *= wb[i]
            value *= wb[i]
        loss += value
        correct += best == label
    return loss / n, correct


@njit(**JIT_INLINE)
def float_head_columns(A, dA, Tb, row, k, n, head, C, terms, weighted, wb):
    """Float-target heads on outputs ``A[row : row + k, :n]`` against ``Tb``: ``dL/dY``
    into ``dA``'s same rows; returns ``(mean loss, correct)``.  The float64 loss
    terms of a row go to ``terms`` and are summed after: a running float64 sum
    would keep the loop scalar."""
    zero = C[C_ZERO]
    lo = C[C_PROB_LO]
    hi = C[C_PROB_HI]
    rows = scalar.typed(n, zero)
    size = scalar.typed(n * k, zero)
    coef = scalar.typed(2.0 / (n * k), zero)
    loss = 0.0
    for c in range(k):
        scalar.float_head(head, A, Tb, dA, row + c, c, terms, n, lo, hi, coef, size, rows)
        if weighted:  # sample weights scale each sample's terms and gradient
            for i in range(n):
                terms[i] *= wb[i]
                dA[row + c, i] *= wb[i]
        loss += sum64_prefix(terms, n)
    correct = 0
    for i in range(n):
        if k > 1:
            best_y, best_t = 0, 0
            for c in range(1, k):
                if scalar.argmax_takes(A[row + best_y, i], A[row + c, i]):
                    best_y = c
                if scalar.argmax_takes(Tb[best_t, i], Tb[c, i]):
                    best_t = c
            correct += best_y == best_t
        else:
            correct += scalar.binary_hit(A[row, i], Tb[0, i], head == SIGMOID_CE)
    return (loss / n if head == CCE else loss / (n * k)), correct


@njit(**JIT_INLINE)
def backward_columns(P, G, dims, acts, w_at, b_at, first, A, dA, Dg, col_sum, n, opts):
    """From ``dL/dY`` of the last layer (in ``dA``): each layer's ``dZ`` in place, its
    gradients into ``G`` (:func:`layer_grads`), then ``dL/dA_l`` below it, down to
    layer ``lowest``."""
    lopt, modes, lowest = opts[2], opts[3], opts[9]
    zero = A.dtype.type(0.0)
    for l in range(dims.shape[0] - 2, lowest - 1, -1):
        d_in, d_out = dims[l], dims[l + 1]
        x_row, z_row = first[l], first[l + 1]
        act = acts[l]
        if modes[l] != 0:  # the derivative (and dropout mask) kept by the forward pass
            for c in range(z_row, z_row + d_out):
                for i in range(n):
                    dA[c, i] *= Dg[c, i]
        elif act == SOFTMAX:  # dZ = Y (dY - s), s = sum_c dY_c Y_c per sample (column)
            for i in range(n):
                col_sum[i] = zero
            for c in range(z_row, z_row + d_out):
                for i in range(n):
                    col_sum[i] += dA[c, i] * A[c, i]
            for c in range(z_row, z_row + d_out):
                for i in range(n):
                    dA[c, i] = scalar.softmax_backward(dA[c, i], A[c, i], col_sum[i])
        elif act != LINEAR:  # only Y is kept: see scalar.act_backward
            slope = scalar.typed(lopt[l, 3], zero)
            for c in range(z_row, z_row + d_out):
                # col_sum: a sink for the bias sums (layer_grads forms db)
                scalar.act_backward(act, dA, A, A, c, n, col_sum, slope, None)
        layer_grads(A, dA, G, x_row, z_row, d_in, d_out, w_at[l], b_at[l], n)
        if l > lowest:  # dA_l[f, :] = sum_c W[f, c] dZ[c, :]
            w_l = w_at[l]
            for f in range(d_in):
                x = x_row + f
                for i in range(n):
                    dA[x, i] = zero
                for c in range(d_out):
                    w = P[w_l + f * d_out + c]
                    z = z_row + c
                    for i in range(n):
                        dA[x, i] += w * dA[z, i]


@njit(**JIT_INLINE)
def update_params(P, G, S, dims, w_at, b_at, total, opt, C, lr, a, b, opts, n):
    """Penalties and the optimizer step of every trainable parameter; returns the
    penalty value (float64).  Without penalties or frozen parameters, one range.  The
    step is written once (one inlined :func:`~.layout.update_range`, looping over the
    parameter ranges) to keep compile time down."""
    lopt, train, per_row, lowest, plain = opts[2], opts[5], opts[8], opts[9], opts[10]
    zero = C[C_ZERO]
    scale = 1.0 / n if per_row else 1.0
    value = 0.0
    L = dims.shape[0] - 1
    n_ranges = 1 if plain else 2 * (L - lowest)
    for q in range(n_ranges):
        if plain:
            lo, hi = 0, total
        else:
            l = lowest + q // 2
            if not train[2 * l + q % 2]:
                continue
            if q % 2 == 0:
                lo, hi = w_at[l], w_at[l] + dims[l] * dims[l + 1]
                l1, l2 = lopt[l, 0], lopt[l, 1]
                if l1 != 0.0:
                    value += scale * l1 * abs_sum(P[lo:hi])
                if l2 != 0.0:
                    value += scale * l2 * square_sum(P[lo:hi])
                c1 = scalar.typed(scale * l1, zero)
                c2 = scalar.typed(2.0 * scale * l2, zero)
                penalize_range(P, G, lo, hi, c1, c2, zero)
            else:
                lo, hi = b_at[l], b_at[l] + dims[l + 1]
        update_range(P, G, S, opt, C, lo, hi, lr, a, b)
    return value


# -------------------------------------------------------------------------- the loop


@njit(**JIT)
def train_small(P, S, dims, acts, X, T, labels, order, batch_size, head, opt, C, step, out, opts):
    """Batch-minor training loop (same arguments as :func:`~.train_gemm.train_gemm`
    without ``fn``).  The phases are inlined here (see the module docstring)."""
    epoch_size, lrs, modes, sw = opts[0], opts[1], opts[3], opts[6]
    L = dims.shape[0] - 1
    bsz = min(batch_size, epoch_size)
    w_at, b_at, total = offsets(dims)
    G = np.empty(total, P.dtype)
    first = np.empty(L + 1, np.int64)  # layer l's input: rows first[l] .. of A and dA
    height = 0
    for l in range(L + 1):
        first[l] = height
        height += dims[l]
    A = np.empty((height, bsz), P.dtype)
    dA = np.empty((height, bsz), P.dtype)
    Dg = np.empty((height if np.any(modes != 0) else 0, bsz), P.dtype)
    k = dims[L]
    float_head = head != SOFTMAX_CE
    Tb = np.empty((k, bsz) if float_head else (1, 1), P.dtype)
    lab = np.empty(bsz, np.int64)
    weighted = sw.shape[0] > 0
    wb = np.empty(bsz, P.dtype)
    col_max = np.empty(bsz, P.dtype)  # per-sample (column) scratch
    col_sum = np.empty(bsz, P.dtype)
    terms = np.empty(bsz)
    prev = -1  # start of the previous batch in ``order``
    prev_n = 0
    for j in range(out.shape[1]):
        start, n = batch_bounds(j, batch_size, epoch_size)
        t = step + j + 1
        # A batch of the same rows as the previous one (full-batch training without
        # shuffling, as the tutorials do) leaves A[:n_in] and the targets as they are.
        if not same_rows(order, start, prev, n, prev_n):
            gather_columns(X, T, labels, order, start, n, A, Tb, lab, float_head, sw, wb)
        prev, prev_n = start, n
        forward_columns(P, dims, acts, w_at, b_at, first, A, Dg, col_max, col_sum, n, opts, t)
        if float_head:
            loss, correct = float_head_columns(
                A, dA, Tb, first[L], k, n, head, C, terms, weighted, wb
            )
        else:
            rows = scalar.typed(n, C[C_ZERO])
            loss, correct = softmax_ce_columns(A, dA, lab, first[L], k, n, rows, weighted, wb)
        out[1, j] = correct
        backward_columns(P, G, dims, acts, w_at, b_at, first, A, dA, Dg, col_sum, n, opts)
        lr = batch_lr(C, lrs, j)
        a, b = bias_corrections(opt, C, t, lr)
        out[0, j] = loss + update_params(
            P, G, S, dims, w_at, b_at, total, opt, C, lr, a, b, opts, n
        )
