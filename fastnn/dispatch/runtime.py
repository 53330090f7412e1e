"""Runtime controls: thread counts and ahead-of-time warm-up of the compiled kernels.

Thread pools.  A fastnn process can hold up to three pools: NumPy's OpenBLAS
(matrix products of the ``numpy`` and ``numba`` backends' ops), SciPy's OpenBLAS
(``np.dot`` inside ``@njit`` code, only where NumPy's BLAS cannot be located) and
Numba's own (``parallel=True`` kernels).  On a 2-core machine, idle OpenBLAS
threads spin-wait for new work for a while after each call; a different pool
starting work in that window shares the cores with spinning threads and runs
several times slower (``benchmarks/README.md`` has the figures).  fastnn therefore
keeps one pool per hot path: the primitive ops use only NumPy's BLAS (their own
kernels are serial); the fused trainer of wide networks runs in Numba's pool
alone, each thread calling NumPy's BLAS limited to one thread.  Switching between
those two pools still costs the other pool's spin window once per switch
(``benchmarks/alternate_pools.py`` measures it), which a training run pays once
per ``fit`` chunk or validation pass, not per step.  :func:`set_num_threads` caps
every pool at once so they are never oversubscribed.

Threading layer.  fastnn's primitive kernels never use ``parallel=True``, so they
are safe to call from several Python threads at once (they also release the
GIL).  For its parallel trainer, the ``numba`` backend selects a thread-safe layer
(``tbb`` or ``omp``, when one is installed) unless ``NUMBA_THREADING_LAYER`` is
set: Numba's fallback ``workqueue`` layer aborts the process when two threads
launch parallel kernels concurrently, so with it the trainer stays serial.

Nothing here imports Numba unless the ``numba`` backend is, or has been,
requested; importing this module compiles nothing.
"""

from __future__ import annotations

import importlib.util
import numbers
import sys
import time
import warnings

import numpy as np

from . import coldstart, machine, registry

__all__ = ["get_num_threads", "set_num_threads", "warmup"]

#: The count set by :func:`set_num_threads` (None: libraries' defaults).
_requested: int | None = None


def _load_scipy_blas() -> None:
    """Load SciPy's BLAS (if installed) so thread limits reach it too.

    threadpoolctl can only limit libraries already loaded; SciPy's OpenBLAS is
    otherwise loaded later, by the first compiled kernel that calls ``np.dot``.
    """
    if importlib.util.find_spec("scipy") is not None:
        importlib.import_module("scipy.linalg.cython_blas")


def _apply_numba(n: int) -> None:
    """Cap Numba's parallel threads at ``n`` (Numba's ceiling if lower)."""
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def numba_backend_loaded() -> None:
    """Run when the ``numba`` backend is loaded: applies a pending thread count."""
    if _requested is not None:
        _apply_numba(_requested)


registry.on_backend_loaded("numba", numba_backend_loaded)


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads in every BLAS library loaded and in Numba.

    Applies to NumPy's and SciPy's OpenBLAS (process-wide, via threadpoolctl) and
    to Numba's parallel kernels (for the calling thread: Numba's thread count is
    thread-local; if the ``numba`` backend is not loaded yet, the count is applied
    when it is).  ``n`` above the cores this process may use (its CPU affinity,
    :func:`os.sched_getaffinity`) is clamped to them with a :class:`RuntimeWarning`:
    more threads than cores only wait for each other.  Numba also caps at its thread ceiling
    (``NUMBA_NUM_THREADS``, normally the core count).
    """
    global _requested
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be a positive integer, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    n = int(n)
    usable = machine.usable_cores()
    if n > usable:
        warnings.warn(
            f"set_num_threads({n}): this process may use {usable} core(s); using {usable} "
            "threads (more threads than cores only wait for each other)",
            RuntimeWarning,
            stacklevel=2,
        )
        n = usable
    from threadpoolctl import threadpool_limits

    _load_scipy_blas()
    threadpool_limits(limits=n, user_api="blas")
    if "numba" in sys.modules:
        _apply_numba(n)
    _requested = n


def get_num_threads() -> int:
    """Threads fastnn's kernels may use: the last :func:`set_num_threads` value, else
    the BLAS libraries' current maximum (their default, usually the core count)."""
    if _requested is not None:
        return _requested
    from threadpoolctl import threadpool_info

    counts = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return max(counts) if counts else 1


def _warm_ops(ops, dtype: np.dtype) -> None:
    """Call every primitive op of a backend once per code path, at dtype ``dtype``."""
    from fastnn.kernels.contract import DIFFERENTIABLE_ACTIVATIONS, LOSSES

    rng = np.random.default_rng(0)
    cast = dtype.type
    # (n, in, out): a tiny layer (fused small-shape kernels), a one-row layer (BLAS
    # path, outer-product dW, all-Numba epilogues) and one large enough for NumPy's
    # vectorized exp/tanh around the kernels.
    for n, n_in, n_out in ((2, 3, 4), (1, 160, 128), (40, 128, 128)):
        X = rng.standard_normal((n, n_in)).astype(dtype)
        W = rng.standard_normal((n_in, n_out)).astype(dtype)
        b = rng.standard_normal(n_out).astype(dtype)
        dY = rng.standard_normal((n, n_out)).astype(dtype)
        ops.dense_forward(X, W, b, "step")
        for act in DIFFERENTIABLE_ACTIVATIONS:
            Z, Y = ops.dense_forward(X, W, b, act)
            ops.dense_backward(dY, X, W, Z, Y, act)
    for shape in ((3, 4), (40, 30)):  # single-kernel and NumPy exp/log paths of the losses
        P = rng.uniform(0.1, 0.9, shape).astype(dtype)
        T = rng.uniform(0.0, 1.0, shape).astype(dtype)
        for name in LOSSES:
            ops.loss(name, P, T)
        ops.softmax_cross_entropy(P, rng.integers(0, shape[1], shape[0]))
        ops.sigmoid_cross_entropy(P, T)
    param, grad, s1, s2 = (np.zeros(5, dtype=dtype) for _ in range(4))
    ops.sgd_update(param, grad, s1, cast(0.1), cast(0.9))
    ops.adam_update(param, grad, s1, s2, 1, cast(1e-3), cast(0.9), cast(0.999), cast(1e-7))


#: Output activation paired with each head in the warm-up nets (logit heads need "linear").
_LAST_ACTIVATION = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax"}


def _warm_train(ops, dtype: np.dtype) -> None:
    """Run ``train_batches`` once per head x optimizer on a narrow and a wide net."""
    from fastnn.kernels.contract import HEADS, HYPER_REQUIRED, OPTIMIZERS

    rng = np.random.default_rng(0)
    n, k = 4, 3
    for widths in ((5, 4, k), (5, 80, k)):  # below / above the fused loop's small width
        X = rng.standard_normal((n, widths[0])).astype(dtype)
        Ws = [rng.standard_normal(s).astype(dtype) * 0.1 for s in zip(widths, widths[1:])]
        bs = [np.zeros(w, dtype=dtype) for w in widths[1:]]
        for head in HEADS:
            last = _LAST_ACTIVATION.get(head, "linear")
            if head == "softmax_cross_entropy":
                T = np.array([0, 1, 2, 0], dtype=np.int64)
            else:
                T = np.eye(k, dtype=dtype)[[0, 1, 2, 0]]
            for optimizer, (state_names, hyper_names) in OPTIMIZERS.items():
                params = [p for pair in zip(Ws, bs) for p in pair]
                state = [tuple(np.zeros_like(p) for _ in state_names) for p in params]
                hyper = {"lr": 0.01, "momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7,
                         "rho": 0.9}  # fmt: skip
                hyper_names = hyper_names[: HYPER_REQUIRED[optimizer]]
                ops.train_batches(
                    [W.copy() for W in Ws], [b.copy() for b in bs], ["relu", last], X, T,
                    np.arange(n, dtype=np.int64), 2, head, optimizer, state,
                    tuple(hyper[h] for h in hyper_names), 0,
                )  # fmt: skip


def warmup(dtypes=("float32", "float64"), backend: str = "numba") -> float:
    """Compile (or load from Numba's on-disk cache) every kernel a training needs.

    Calls each op of ``backend`` once per code path on tiny arrays of each dtype in
    ``dtypes``, and ``train_batches`` once per head and optimizer, so no compile
    happens later inside a timed region or a first training step.  ``"auto"``
    warms the ``numba`` backend when it is available; ``"numpy"``/``"python"``
    have nothing to compile.  Returns the elapsed wall-clock seconds.
    """
    from fastnn import dispatch
    from fastnn.dispatch.validation import FLOAT_DTYPES

    start = time.perf_counter()
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    resolved = []
    for d in dtypes:
        try:
            dt = np.dtype(d)
        except TypeError:
            dt = None
        if dt not in FLOAT_DTYPES:
            raise ValueError(f"warmup dtypes must be float32 or float64, got {d!r}")
        resolved.append(dt)
    name = dispatch.resolve_auto_backend() if backend == "auto" else backend
    ops = dispatch.get_ops(name)
    if ops.impl.name == "numba":
        from fastnn.kernels.numba import compile_trainers

        for dt in resolved:
            _warm_ops(ops.impl, dt)
            compile_trainers(dt)
            coldstart.write_stamp(dt)  # auto needs no background build for dt
            _warm_train(ops, dt)
    return time.perf_counter() - start
