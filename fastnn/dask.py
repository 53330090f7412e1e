"""fastnn beyond one machine, on Dask (needs ``pip install 'fastnn[dask]'``).

fastnn has no scheduler of its own: Dask's ``distributed`` scheduler runs the
work, ``dask.array`` holds the data in row blocks, and scikit-learn's and
dask-ml's tools drive :mod:`fastnn.sklearn`'s estimators.  This module adds what
they do not already do:

* :func:`predict`, :func:`predict_proba`, :func:`predict_log_proba`: a fitted
  estimator over a dask array, one task per row block (``map_blocks``); a block
  that fails validation raises the in-memory error with the block named.
* :func:`partial_fit`: out-of-core training, ``partial_fit`` block after block in
  order, on whichever worker holds the block (as ``dask_ml.wrappers.Incremental``
  does), with the failing block named in errors.
* :func:`incremental_search_compat`: dask-ml 2025.1's ``HyperbandSearchCV``
  family on Dask >= 2025.3 (a workaround for dask/dask-ml#1016).
* :func:`from_npy`: a dask array over a ``.npy`` file larger than memory, each
  block read by its task through ``np.load(mmap_mode="r")``.
* :class:`WorkerSettings`, :func:`configure_workers`, :func:`worker_threads`: each
  worker's BLAS and Numba pools limited to the worker's own thread count, so
  ``n_workers`` processes on one machine do not each start one thread per core;
  optionally the compiled kernels warmed in every worker.
* :func:`measure_predict`: the distributed-prediction benchmark
  (``benchmarks/dask_predict.py``).

``dask_ml.wrappers.Incremental``/``ParallelPostFit`` and ``GridSearchCV`` under
``joblib.parallel_backend("dask")`` work with fastnn's estimators as they are;
see README.md, "Beyond one machine".

Exactness.  Each task computes exactly what the same call computes in memory on
that block.  One call over the whole array can differ in the last bits: OpenBLAS's
float32 GEMM rounds a row differently depending on its position in the call and
on the thread count (measured here up to 3e-7 in probabilities), so blocks are the
unit of bitwise agreement.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import types

import numpy as np

try:
    import dask
    import dask.array as da
    from distributed import WorkerPlugin, get_worker
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"fastnn.dask needs Dask: pip install 'fastnn[dask]' (missing: {exc.name})"
    ) from exc

__all__ = [
    "WorkerSettings",
    "configure_workers",
    "from_npy",
    "incremental_search_compat",
    "measure_predict",
    "partial_fit",
    "predict",
    "predict_log_proba",
    "predict_proba",
    "worker_threads",
]


# ---------------------------------------------------------------------- blocks
def block_label(index, location, name="X"):
    """``"block 3 (rows 300:400) of X"`` for error messages (rows when known)."""
    rows = ""
    if location is not None and None not in location and not np.isnan(location).any():
        rows = f" (rows {int(location[0])}:{int(location[1])})"
    return f"block {index}{rows} of {name}"


def renamed_error(exc, label):
    """``exc`` again, same type, with ``label`` in front of its message."""
    try:
        return type(exc)(f"{label}: {exc}")
    except TypeError:  # an exception type whose constructor takes other arguments
        return ValueError(f"{label}: {exc}")


def one_column_block(X):
    """``X`` (2-D dask array, known width) with all its columns in one block."""
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask.array.Array, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D")
    if np.isnan(X.shape[1]):
        raise ValueError("X must have a known number of columns")
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


def row_locations(chunks):
    """``[(start, stop)]`` of each row block (NaN bounds where sizes are unknown)."""
    stops = np.cumsum(chunks)
    return list(zip(stops - np.asarray(chunks), stops))


# ------------------------------------------------------------------- predicting
def call_on_block(X, model, method, block_info=None):
    """``model.<method>(X)`` for one block; a ValueError names the block."""
    info = (block_info or {}).get(0, {})
    index = info.get("chunk-location", ("?",))[0]
    location = info.get("array-location", [None])[0]
    try:
        return getattr(model, method)(X)
    except ValueError as exc:
        raise renamed_error(exc, block_label(index, location)) from exc


def map_method(model, X, method):
    """``model.<method>`` over the row blocks of the dask array ``X: (n, d)``.

    The output's shape (``(n,)`` or ``(n, k)``) and dtype come from calling the
    method on one row of zeros here, which also raises the in-memory error at once
    for a wrong column count or an unfitted model.
    """
    X = one_column_block(X)
    meta = getattr(model, method)(np.zeros((1, X.shape[1]), dtype=X.dtype))
    # One graph key for the model: each worker receives it once, not once per task.
    shared = dask.delayed(model, traverse=False)
    if meta.ndim == 1:
        kwargs = {"drop_axis": 1, "chunks": (X.chunks[0],)}
    else:
        kwargs = {"chunks": (X.chunks[0], (meta.shape[1],))}
    return X.map_blocks(call_on_block, shared, method, meta=meta[:0], **kwargs)


def predict(model, X):
    """Lazy ``model.predict(X)`` for a dask array ``X: (n, d)``: ``(n,)`` or ``(n, k)``."""
    return map_method(model, X, "predict")


def predict_proba(model, X):
    """Lazy ``model.predict_proba(X)``: ``(n, n_classes)``."""
    return map_method(model, X, "predict_proba")


def predict_log_proba(model, X):
    """Lazy ``model.predict_log_proba(X)``: ``(n, n_classes)``."""
    return map_method(model, X, "predict_log_proba")


# ------------------------------------------------------------------- training
def partial_fit_block(model, X, y, index, location, kwargs):
    """A copy of ``model`` after ``partial_fit`` on one block; errors name the block.

    The copy keeps each task free of side effects on its input, so a task Dask
    reruns (a lost worker, a retry) starts from the same model as the first time.
    """
    model = copy.deepcopy(model)
    try:
        model.partial_fit(X, y, **kwargs)
    except ValueError as exc:
        raise renamed_error(exc, block_label(index, location, "X, y")) from exc
    return model


def partial_fit(model, X, y, *, shuffle_blocks=False, random_state=None, compute=True, **kwargs):
    """``model`` trained by one ``partial_fit`` per row block of ``(X, y)``, in order.

    ``X: (n, d)`` and ``y: (n,)`` (or ``(n, k)``) are dask arrays with the same row
    blocks; ``kwargs`` go to every ``partial_fit`` call (``classes=`` for a
    classifier).  The blocks are visited in order, or shuffled with ``random_state``
    as ``dask_ml.wrappers.Incremental`` shuffles them; only one block is in memory
    per step.  Returns the fitted copy (``model`` itself is not changed), or a
    ``Delayed`` of it with ``compute=False``.  The result equals the in-memory
    ``partial_fit`` loop over the same blocks in the same order.
    """
    X = one_column_block(X)
    if not isinstance(y, da.Array) or y.chunks[0] != X.chunks[0]:
        raise ValueError("y must be a dask array with the same row blocks as X")
    if y.ndim == 2 and y.numblocks[1] > 1:
        y = y.rechunk({1: -1})
    order = np.arange(X.numblocks[0])
    if shuffle_blocks:
        from sklearn.utils import check_random_state

        check_random_state(random_state).shuffle(order)
    X_blocks, y_blocks = X.to_delayed().ravel(), y.to_delayed().ravel()
    locations = row_locations(X.chunks[0])
    fitted = dask.delayed(model, traverse=False)
    step = dask.delayed(partial_fit_block, pure=True)
    for i in order:
        fitted = step(fitted, X_blocks[i], y_blocks[i], int(i), locations[i], kwargs)
    return fitted.compute() if compute else fitted


# ------------------------------------------------------------------- dask-ml searches
def client_persist(*args, **kwargs):
    """``dask.persist`` through the default client, usable inside its event loop."""
    from dask.base import unpack_collections
    from distributed import default_client

    kwargs.pop("priority", None)  # a dask.persist keyword client.persist does not take
    collections, repack = unpack_collections(*args)
    if not collections:
        return args
    return repack(default_client().persist(collections, **kwargs))


@contextlib.contextmanager
def incremental_search_compat():
    """Let dask-ml's incremental searches (``HyperbandSearchCV``...) run on new Dask.

    dask-ml 2025.1.0 calls ``dask.persist`` inside the client's event loop, which
    Dask refuses since 2025.3 ("Attempting to use an asynchronous Client in a
    synchronous context", dask/dask-ml#1016, with any estimator).  Inside this
    block, that module's ``dask.persist`` is the client's ``persist``; the module
    is restored on exit.  Not needed (a no-op) where the search already works.
    """
    from dask_ml.model_selection import _incremental as module

    original = module.dask
    module.dask = types.SimpleNamespace(
        **{k: getattr(dask, k) for k in dir(dask) if not k.startswith("__")}
    )
    module.dask.persist = client_persist
    try:
        yield
    finally:
        module.dask = original


# ------------------------------------------------------------------- .npy files
def read_npy_rows(path, start, stop):
    """Rows ``start:stop`` of the ``.npy`` file ``path`` (memory-mapped, then copied)."""
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def from_npy(path, chunk_rows):
    """A dask array over the ``.npy`` file ``path``, ``chunk_rows`` rows per block.

    Only the header is read here; each block's task maps the file
    (``np.load(mmap_mode="r")``) and copies its rows, so the file may be larger
    than memory.  ``path`` must be readable by the workers (a shared file system on
    a real cluster).
    """
    mm = np.load(path, mmap_mode="r")
    n = mm.shape[0]
    path = os.fspath(path)
    blocks = []
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        block = dask.delayed(read_npy_rows, pure=True)(path, start, stop)
        blocks.append(da.from_delayed(block, (stop - start, *mm.shape[1:]), dtype=mm.dtype))
    return da.concatenate(blocks, axis=0)


# ------------------------------------------------------------------- workers
def worker_nthreads():
    """The thread count of the Dask worker running this code (None outside a worker)."""
    try:
        return get_worker().state.nthreads
    except ValueError:
        return None


def set_threads_in_this_thread(n, barrier):
    """Numba's (thread-local) count for the executor thread running this task."""
    import fastnn

    barrier.wait()  # every executor thread holds one of these tasks: each runs once
    fastnn.set_num_threads(n)


def limit_threads(worker, n):
    """Cap the worker process's BLAS and Numba pools at ``n`` threads.

    ``fastnn.set_num_threads`` covers the BLAS libraries (process-wide) and the
    calling thread's Numba count.  Numba's count is thread-local and tasks run in
    the worker's executor threads, so: before Numba is imported, the process-wide
    ceiling ``NUMBA_NUM_THREADS`` is set, which every thread then starts with;
    after, one task per executor thread (held together by a barrier, so each thread
    gets one) sets each thread's count.  A thread busy with a long task delays its
    setting until it is free (at most 60 s, then it stays unset).
    """
    import sys
    import threading

    import fastnn

    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    fastnn.set_num_threads(n)
    if "numba" in sys.modules:
        k = worker.state.nthreads
        barrier = threading.Barrier(k, timeout=60)
        for _ in range(k):
            worker.executors["default"].submit(set_threads_in_this_thread, n, barrier)


class WorkerSettings(WorkerPlugin):
    """Worker plugin: fastnn's thread pools sized to the worker, optional warm-up.

    ``setup`` runs on every worker when registered and on every worker that joins
    or restarts later: ``fastnn.set_num_threads(worker's nthreads)`` (or ``nthreads``)
    and, with ``warmup=True``, ``fastnn.warmup(dtypes, backend)``.
    """

    name = "fastnn-worker-settings"

    def __init__(self, nthreads=None, warmup=False, dtypes=("float32", "float64"), backend="auto"):
        self.nthreads = nthreads
        self.warmup = warmup
        self.dtypes = tuple(dtypes)
        self.backend = backend

    def setup(self, worker):
        limit_threads(worker, self.nthreads or worker.state.nthreads)
        if self.warmup:
            import fastnn

            fastnn.warmup(self.dtypes, self.backend)


def configure_workers(client, nthreads=None, warmup=False, **warmup_kwargs):
    """Register :class:`WorkerSettings` on ``client``'s cluster (now and for new workers).

    Without it, each worker process on a machine sizes Numba's pool (and BLAS's,
    where Dask's defaults do not cap it) to all the machine's cores.
    """
    client.register_plugin(WorkerSettings(nthreads, warmup, **warmup_kwargs))


def worker_threads():
    """What this process's pools use: for ``client.run`` / ``client.submit`` checks.

    Keys: ``nthreads`` (the Dask worker's, None outside one), ``fastnn``
    (``fastnn.get_num_threads()``), ``blas`` (each BLAS library's thread count, from
    threadpoolctl), ``numba`` (the calling thread's Numba count, None if Numba is
    not imported) and ``numba_ceiling`` (``NUMBA_NUM_THREADS``).
    """
    import sys

    from threadpoolctl import threadpool_info

    import fastnn

    report = {
        "nthreads": worker_nthreads(),
        "fastnn": fastnn.get_num_threads(),
        "blas": [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"],
        "numba": None,
        "numba_ceiling": None,
    }
    if "numba" in sys.modules:
        import numba

        report["numba"] = numba.get_num_threads()
        report["numba_ceiling"] = numba.config.NUMBA_NUM_THREADS
    return report


# ------------------------------------------------------------------- benchmark
def measure_predict(client, model, X, repeats=3):
    """Best wall-clock seconds of ``predict(model, X).compute()`` on ``client``'s cluster.

    ``X`` should already be persisted on the workers (``client.persist``), so that
    only prediction (and gathering the labels) is timed.  Returns
    ``(seconds, rows_per_second, labels)``.
    """
    labels = client.compute(predict(model, X)).result()  # first run: workers load the model
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        labels = client.compute(predict(model, X)).result()
        best = min(best, time.perf_counter() - start)
    return best, X.shape[0] / best, labels
