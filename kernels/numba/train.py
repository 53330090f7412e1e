"""Fused, compiled ``train_batches`` for the ``numba`` backend: the Python driver.

One call of :meth:`TrainMixin.train_batches` runs every mini-batch of ``order``
(gather, forward, loss head, backward, optimizer update) inside one compiled
function, so a training loop pays Python and dispatch overhead once per call,
not once per op and step.  The numbers are those of the contract's default
composition (:meth:`fastnn.kernels.contract.Ops.train_batches`) within float
rounding: same formulas (:mod:`.scalar`), same dtype, different summation order.

Three compiled loops share one argument layout (:mod:`.layout`):

* :func:`~.train_small.train_small` -- every layer at most :data:`SMALL_WIDTH`
  units wide and at most :data:`SMALL_MACS` multiply-adds per row (the tutorials'
  tiny nets): batch-minor activations, loop products;
* :func:`~.train_gemm.train_gemm` -- larger nets: batch-major activations,
  products in NumPy's OpenBLAS (:mod:`.blas`);
* :func:`~.train_gemm.train_gemm_par` -- the same on several threads of Numba's
  pool (:func:`~.blas.parallel_threads` sets the most; :mod:`.threads` runs
  each chunk of batches on as many of them as measured faster).
"""

from __future__ import annotations

import numba
import numpy as np

from ..contract import LEAKY_RELU_SLOPE, MASK64, Ops, StepBackwardError, count_batches
from .blas import SerialBlas, numpy_gemm_address, parallel_threads
from .codes import (
    ACTIVATION_CODES,
    HEAD_CODES,
    LINEAR,
    MSE,
    NEEDS_Z_NAMES,
    OPTIMIZER_CODES,
    RELU,
    SGD,
)
from .layout import (
    DUMMY_LABELS,
    DUMMY_TARGETS,
    cached,
    constants,
    flatten,
    unflatten,
)
from .scalar import keep_threshold
from .threads import GOVERNOR
from .train_gemm import call_workspace, train_gemm, train_gemm_par
from .train_small import train_small

__all__ = [
    "SMALL_WIDTH",
    "TrainMixin",
    "choose_path",
    "compile_trainers",
    "numpy_gemm_address",
    "parallel_threads",
]

#: Widest layer (units) the batch-minor loop handles; wider nets go to BLAS.
SMALL_WIDTH = 64

#: Most multiply-adds per row (``sum(in_l * out_l)``) the batch-minor loop takes:
#: above it even narrow layers train faster as BLAS products (the crossover, from
#: 8-64-2 to 30-64-2, is in benchmarks/README.md).
SMALL_MACS = 1024


def choose_path(dims) -> str:
    """``"small"`` (batch-minor loops) or ``"gemm"`` (BLAS) for layer widths ``dims``."""
    macs = sum(int(a) * int(b) for a, b in zip(dims[:-1], dims[1:]))
    return "small" if max(dims) <= SMALL_WIDTH and macs <= SMALL_MACS else "gemm"


def loop_args(P, S, dims, acts, X, T, labels, order, batch_size, head, opt, C, step, out, opts):
    """The compiled loops' positional arguments, every input array a read-only view
    (``P``, ``S`` and ``out`` are written): whatever the caller's arrays' flags,
    every call has the argument types :func:`compile_trainers` built for, so no call
    compiles a second specialization."""
    dims, acts, X, T, labels, C = (_readonly(A, A.dtype) for A in (dims, acts, X, T, labels, C))
    order = _readonly(order, np.int64)
    return (P, S, dims, acts, X, T, labels, order, batch_size, head, opt, C, step, out, opts)


def compile_trainers(dtype) -> None:
    """Compile (or load from the on-disk cache) every training loop for ``dtype``.

    ``train_batches`` picks a loop by the net's widths and the thread count, so a
    warm-up through it compiles only the loops of that machine's current setting;
    this runs each of them once on a tiny problem (``train_gemm_par`` with two
    slices, which also runs on one thread) so no later call compiles.  Options
    travel as arrays of fixed types (:func:`options`), so these builds serve every
    option combination; the BLAS loops build twice, plain and with the options'
    paths (:func:`features`).
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
    C = constants(dtype, (0.01, 0.0))
    opts = options(dtype, ["relu", "linear"], 4, None, {})
    args = loop_args(P, S, dims, acts, X, T, DUMMY_LABELS, order, 2, MSE, SGD, C, 0,
                     np.zeros((2, 2)), opts)  # fmt: skip
    train_small(*args)
    fn = numpy_gemm_address(dtype)
    for feat in (None, True):
        train_gemm(*args, fn, feat)
        if fn:
            with SerialBlas():
                work = call_workspace(args[0], args[2], 2, args[14], 2)
                train_gemm_par(*args, fn, feat, 2, 0, args[13].shape[1], work)


def _readonly(A, dtype):
    """``A`` as a contiguous read-only array of ``dtype`` (itself when it already is one):
    every call passes the same array type, so one compiled specialization serves all."""
    if not A.flags.writeable and A.flags.c_contiguous and A.dtype == dtype:
        return A  # already one (the cached arrays of this module): no view to make
    A = np.ascontiguousarray(A, dtype).view()
    A.flags.writeable = False
    return A


def _empty(dtype):
    return cached(("empty", np.dtype(dtype)), lambda: np.zeros(0, dtype))


def options(dtype, activations, m, epoch_size, kw):
    """The ``opts`` tuple of the compiled loops for one ``train_batches`` call, or None
    when a combination is not fused (dropout on a softmax layer: the default
    composition serves it).  ``kw`` holds the call's keyword options (absent = default).

    ``(epoch_size, lrs, lopt, modes, thresholds, train, sample_weight, seed,
    penalty_per_row, lowest, plain)``: ``lopt[l] = (l1, l2, dropout rate, negative
    slope)`` float64; ``modes[l] = 1`` where the forward keeps the derivative
    (dropout, or an activation in :data:`~.codes.NEEDS_Z_NAMES`, or a negative
    ``leaky_relu`` slope);
    ``thresholds[l]`` the dropout keep threshold; ``train`` one flag per parameter;
    ``lowest`` the lowest layer backpropagated into; ``plain``: every parameter
    trains and none is penalized.  Empty ``lrs`` / ``sample_weight``: not given.
    """
    L = len(activations)
    penalties = kw.get("penalties") or [None] * L
    rates = kw.get("dropout") or [None] * L
    slopes = kw.get("negative_slopes") or [None] * L
    trainable = kw.get("trainable")
    train = (True,) * (2 * L) if trainable is None else tuple(bool(f) for f in trainable)
    pens = tuple((0.0, 0.0) if p is None else (float(p[0]), float(p[1])) for p in penalties)
    rates = tuple(float(r or 0.0) if l < L - 1 else 0.0 for l, r in enumerate(rates))
    slopes = tuple(LEAKY_RELU_SLOPE if sl is None else float(sl) for sl in slopes)
    if any(r > 0 and a == "softmax" for r, a in zip(rates, activations)):
        return None
    key = (*activations, pens, rates, slopes, train)
    lopt = cached(
        ("lopt", *key),
        lambda: np.array([(*p, r, sl) for p, r, sl in zip(pens, rates, slopes)], np.float64),
    )
    modes = cached(
        ("modes", *key),
        lambda: np.array(
            [
                int(r > 0 or a in NEEDS_Z_NAMES or (a == "leaky_relu" and sl < 0))
                for a, r, sl in zip(activations, rates, slopes)
            ],
            np.int64,
        ),  # fmt: skip
    )
    thresholds = cached(
        ("thresholds", *key), lambda: np.array([keep_threshold(r) for r in rates], np.uint64)
    )
    train_flags = cached(("train", *key), lambda: np.array(train, np.int64))
    trains = [train[2 * l] or train[2 * l + 1] for l in range(L)]
    lowest = trains.index(True) if any(trains) else L
    lrs = kw.get("lrs")
    sample_weight = kw.get("sample_weight")
    return (
        m if epoch_size is None else int(epoch_size),
        _empty(dtype) if lrs is None else _readonly(lrs, dtype),
        lopt,
        modes,
        thresholds,
        train_flags,
        _empty(dtype) if sample_weight is None else _readonly(sample_weight, dtype),
        np.uint64(int(kw.get("seed") or 0) & MASK64),
        bool(kw.get("penalty_per_row")),
        lowest,
        all(train) and not any(l1 or l2 for l1, l2 in pens),
    )


def features(opts):
    """The BLAS loops' ``feat`` argument for a call's ``opts``: None when no option
    path runs (every layer's derivative from ``Y``, no dropout, penalty or sample
    weight, every parameter trained), so the plain specialization serves it; else True."""
    modes, sample_weight, plain = opts[3], opts[6], opts[10]
    return None if plain and not modes.any() and sample_weight.size == 0 else True


def _run(args, dims, dtype) -> None:
    """Run the compiled loop for these widths and the current thread setting."""
    if choose_path(dims) == "small":
        train_small(*args)
        return
    fn = numpy_gemm_address(dtype)
    n_threads = parallel_threads() if fn else 1
    feat = features(args[14])
    if n_threads > 1:
        _run_parallel(args, fn, feat, n_threads)
    else:
        train_gemm(*args, fn, feat)


def _run_parallel(args, fn, feat, n_threads) -> None:
    """:func:`train_gemm_par` in chunks of batches, each on the thread count the
    governor picks (:mod:`.threads`); the slices, and so the numbers, stay ``n_threads``."""
    out, dims = args[13], args[2]
    key = (tuple(dims), args[8], args[0].dtype.char, args[10])
    configured = numba.get_num_threads()
    work = call_workspace(args[0], dims, args[8], args[14], n_threads)

    def run_chunk(j0, j1, threads):
        numba.set_num_threads(threads)
        try:
            train_gemm_par(*args, fn, feat, n_threads, j0, j1, work)
        finally:
            numba.set_num_threads(configured)

    with SerialBlas():
        if configured > 1:
            GOVERNOR.run(key, min(n_threads, configured), out.shape[1], run_chunk)
        else:
            train_gemm_par(*args, fn, feat, n_threads, 0, out.shape[1], work)


class TrainMixin:
    """Fused :meth:`train_batches` for the ``numba`` backend.

    Mix in *before* :class:`~fastnn.kernels.contract.Ops` (``class NumbaOps(TrainMixin,
    Ops)``) so this method overrides the contract's default composition.
    """

    def train_batches(
        self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state, hyper, step,
        *, penalties=None, penalty_per_row=False, trainable=None, lrs=None, epoch_size=None,
        dropout=None, seed=0, sample_weight=None, negative_slopes=None,
    ):  # fmt: skip
        """The contract's ``train_batches``, fused and compiled (same arguments, same numbers).

        See :meth:`fastnn.kernels.contract.Ops.train_batches`.  ``Ws[l]: (in_l, out_l)``,
        ``bs[l]: (out_l,)`` and the optimizer state are updated in place; returns
        ``(losses, correct)`` float64 arrays of shape ``(n_batches,)``.  Every option is
        fused; a hidden softmax layer with dropout runs the contract's composition of
        this backend's ops.
        """
        L = len(Ws)
        kw = dict(
            penalties=penalties, penalty_per_row=penalty_per_row, trainable=trainable, lrs=lrs,
            epoch_size=epoch_size, dropout=dropout, seed=seed, sample_weight=sample_weight,
            negative_slopes=negative_slopes,
        )  # fmt: skip
        n_batches = count_batches(len(order), batch_size, epoch_size)
        dtype = X.dtype
        opts = options(dtype, activations, len(order), epoch_size, kw) if L else None
        if opts is None or n_batches == 0:
            return Ops.train_batches(
                self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state,
                hyper, step, **{k: v for k, v in kw.items() if v is not None},
            )  # fmt: skip
        if "step" in activations:
            raise StepBackwardError()
        acts = cached(
            ("acts", *activations),
            lambda: np.array([ACTIVATION_CODES[a] for a in activations], np.int64),
        )
        widths = (Ws[0].shape[0], *(W.shape[1] for W in Ws))
        dims = cached(("dims", *widths), lambda: np.array(widths, np.int64))
        params = [p for l in range(L) for p in (Ws[l], bs[l])]
        P, S = flatten(params, state, dtype)
        if head == "softmax_cross_entropy":
            T, labels = DUMMY_TARGETS[dtype], np.asarray(T, np.int64)
        else:
            labels = DUMMY_LABELS
        out = np.zeros((2, n_batches))
        C = cached(("C", dtype, *hyper), lambda: constants(dtype, hyper))
        args = loop_args(
            P, S, dims, acts, X, T, labels, order, batch_size, HEAD_CODES[head],
            OPTIMIZER_CODES[optimizer], C, step, out, opts,
        )  # fmt: skip
        _run(args, dims, dtype)
        unflatten(P, S, params, state)
        return out[0], out[1]
