"""The one place for Numba compilation options of the ``numba`` backend.

Every kernel in this package is decorated ``@njit(**JIT)``.  The options are fixed
constants on purpose: Numba's on-disk cache key ignores decorator options, so
options chosen from runtime configuration would silently load a build made with
other options.  (After editing this file, clear the cache: ``__pycache__/*.nbi``
and ``*.nbc`` next to the kernels, or the directory in ``NUMBA_CACHE_DIR``.  The
cache also does not notice edits to a *called* kernel in another module.)

Choices, and why:

* ``njit`` (no ``nopython=`` needed: ``njit`` always compiles in nopython mode and
  warns if the option is passed) -- kernels never fall back to object mode.
* ``cache=True`` -- compiled machine code is stored on disk and loaded by later
  processes (a few ms per kernel instead of ~0.5-2 s compiles).
* ``nogil=True`` -- kernels release the GIL, so calls from several Python threads
  run concurrently; kernels share no global state.
* ``error_model="numpy"`` -- division by zero gives inf/NaN as in NumPy instead of
  raising; this removes the per-division check that blocks vectorization.
* ``fastmath=FASTMATH`` -- only flags that cannot change inf/NaN semantics or
  cancel digits: ``contract`` (fused multiply-add: one rounding instead of two)
  and ``nsz`` (the sign of a zero result is not significant).  Deliberately *not*
  ``nnan``/``ninf`` (``fastmath=True`` implies them): with them LLVM may assume no
  NaN/inf exist and fold away the comparisons that keep ``softmax`` of ``-inf``
  logits, ``relu(NaN)`` and the loss clips correct; nor ``afn``/``arcp``, which
  allow approximate functions and reciprocals; nor, in general, ``reassoc``: it
  lets LLVM rewrite ``b2 v + (1 - b2) g^2`` as ``b2 (v - g^2) + g^2``, which
  cancels digits in a float32 Adam moment.
* ``JIT_REDUCE`` (``FASTMATH_REDUCE`` = ``FASTMATH`` + ``reassoc``) -- only for
  kernels that are pure sums or dot products (:func:`~.kernels.row_sum`,
  :func:`~.kernels._sum64`, :func:`~.gemm.gemm_nt`, the batch-minor trainer's
  :func:`~.train_small.layer_grads` and :func:`~.train_small.sum64_prefix`): there
  reassociation just reorders the sum so it can be vectorized, changing the result by rounding only
  (as BLAS does).
* ``JIT_INLINE`` (``JIT`` + ``inline="always"``) -- for the scalar formulas of
  :mod:`.scalar` and the phases of the batch-minor trainer: Numba inlines them
  into the caller before typing, so a dispatch on an activation code inside an
  element loop is hoisted out of the loop by LLVM, and a phase that takes arrays
  costs no call and no reference-count updates.  A plain ``@njit`` callee is
  compiled separately and is not reliably inlined; a switch inside it then stays
  in the loop and blocks vectorization.
* ``parallel=True`` only in ``JIT_PARALLEL``, for the one kernel that earns it: the
  trainer of wide networks (:func:`~.train_gemm.train_gemm_par`), where each thread
  does a whole slice of a batch (gather, products, epilogues) and calls NumPy's
  OpenBLAS limited to one thread, so Numba's is the only active pool (see
  :mod:`fastnn.dispatch.runtime`: two pools alternating on 2 cores make idle threads spin
  against working ones).  Every other kernel is serial: elementwise epilogues are
  memory-bound and fast single-threaded, their products run in NumPy's BLAS pool,
  and serial kernels are safe to call from concurrent threads under any
  threading layer.
"""

from __future__ import annotations

#: LLVM fast-math flags that keep IEEE inf/NaN behaviour (see the module docstring).
FASTMATH: set[str] = {"contract", "nsz"}

#: FASTMATH plus reassociation, for pure reductions (see the module docstring).
FASTMATH_REDUCE: set[str] = {"contract", "nsz", "reassoc"}

#: Keyword arguments of every ``@njit`` in this package.
JIT: dict = dict(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)

#: Keyword arguments of the pure-reduction kernels (sums, dot products).
JIT_REDUCE: dict = dict(JIT, fastmath=FASTMATH_REDUCE)

#: Keyword arguments of scalar formulas and trainer phases, inlined into their callers.
JIT_INLINE: dict = dict(JIT, inline="always")

#: Keyword arguments of the one parallel kernel, the multi-threaded trainer.
JIT_PARALLEL: dict = dict(JIT, parallel=True)


def select_threading_layer() -> str:
    """Choose a thread-safe Numba threading layer unless the user chose one.

    Numba's default picks ``tbb``, else ``omp``, else ``workqueue``, and
    ``workqueue`` aborts the process when two threads launch parallel kernels at
    once.  When ``NUMBA_THREADING_LAYER`` is not set and ``tbb`` or ``omp`` can be
    loaded, this asks for ``"threadsafe"`` (one of those two), so concurrent calls
    of parallel kernels are safe.  Must run before the first parallel launch.
    Returns the configured layer name.
    """
    import importlib
    import os

    from numba import config

    if os.environ.get("NUMBA_THREADING_LAYER"):
        return config.THREADING_LAYER
    for pool in ("tbbpool", "omppool"):
        try:
            importlib.import_module(f"numba.np.ufunc.{pool}")
        except ImportError:
            continue
        config.THREADING_LAYER = "threadsafe"
        break
    return config.THREADING_LAYER
