"""Fused, compiled ``train_batches`` for the ``numba`` backend: the Python driver.

One call of :meth:`TrainMixin.train_batches` runs every mini-batch of ``order``
(gather, forward, loss head, backward, optimizer update) inside one compiled
function, so a training loop pays Python and dispatch overhead once per call,
not once per op and step.  The numbers are those of the contract's default
composition (:meth:`fastnn.kernels.contract.Ops.train_batches`) within float
rounding: same formulas (:mod:`.scalar`), same dtype, different summation order.

Three compiled loops share one argument layout (:mod:`.layout`):

* :func:`~.train_small.train_small` -- every layer at most :data:`SMALL_WIDTH`
  units wide (the tutorials' tiny nets): batch-minor activations, loop products;
* :func:`~.train_gemm.train_gemm` -- wider layers: batch-major activations,
  products in NumPy's OpenBLAS (:mod:`.blas`);
* :func:`~.train_gemm.train_gemm_par` -- the same on several threads of Numba's
  pool (:func:`~.blas.parallel_threads` decides).
"""

from __future__ import annotations

import numpy as np

from ..contract import Ops, StepBackwardError
from .blas import SerialBlas, numpy_gemm_address, parallel_threads
from .codes import ACTIVATION_CODES, HEAD_CODES, LINEAR, MSE, OPTIMIZER_CODES, RELU, SGD
from .layout import (
    DUMMY_LABELS,
    DUMMY_TARGETS,
    cached,
    constants,
    flatten,
    unflatten,
)
from .train_gemm import train_gemm, train_gemm_par
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


def choose_path(dims) -> str:
    """``"small"`` (batch-minor loops) or ``"gemm"`` (BLAS) for layer widths ``dims``."""
    return "small" if max(dims) <= SMALL_WIDTH else "gemm"


def compile_trainers(dtype) -> None:
    """Compile (or load from the on-disk cache) every training loop for ``dtype``.

    ``train_batches`` picks a loop by the net's widths and the thread count, so a
    warm-up through it compiles only the loops of that machine's current setting;
    this runs each of them once on a tiny problem (``train_gemm_par`` with two
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
    C = constants(dtype, (0.01, 0.0))
    args = (P, S, dims, acts, X, T, DUMMY_LABELS, order, 2, MSE, SGD, C, 0, np.zeros((2, 2)))
    train_small(*args)
    fn = numpy_gemm_address(dtype)
    train_gemm(*args, fn)
    if fn:
        with SerialBlas():
            train_gemm_par(*args, fn, 2)


def _run(args, dims, dtype) -> None:
    """Run the compiled loop for these widths and the current thread setting."""
    if choose_path(dims) == "small":
        train_small(*args)
        return
    fn = numpy_gemm_address(dtype)
    n_threads = parallel_threads() if fn else 1
    if n_threads > 1:
        with SerialBlas():
            train_gemm_par(*args, fn, n_threads)
    else:
        train_gemm(*args, fn)


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
        n_batches = -(-len(order) // batch_size)
        if L == 0 or n_batches == 0:
            return Ops.train_batches(
                self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state,
                hyper, step,
            )  # fmt: skip
        if "step" in activations:
            raise StepBackwardError()
        dtype = X.dtype
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
        args = (
            P, S, dims, acts, X, T, labels, np.asarray(order, np.int64), batch_size,
            HEAD_CODES[head], OPTIMIZER_CODES[optimizer], C, step, out,
        )  # fmt: skip
        _run(args, dims, dtype)
        unflatten(P, S, params, state)
        return out[0], out[1]
