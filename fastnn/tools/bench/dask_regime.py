"""The ``dask`` regime's workload: distributed prediction against in-memory ``predict``.

The model and the sizes are those of ``benchmarks/dask_predict.py``: a fitted
784-100-10 float32 ``fastnn.sklearn.MLPClassifier`` predicting labels.

* ``dask``: ``fastnn.dask.predict(model, X).compute()`` over a ``rows x 784``
  float32 dask array generated block by block on a ``LocalCluster`` of 2
  single-thread worker processes and persisted there (not timed); the labels
  are gathered back to this process (timed).
* ``memory-1t`` / ``memory-2t``: ``model.predict`` in this process on an
  in-memory array of ``memory_rows`` rows, BLAS limited to 1 / 2 threads.

Each runner's time is per row (its call's seconds over its rows), so the rates
compare although the in-memory array is smaller than the distributed one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings

import numpy as np

FEATURES, HIDDEN, CLASSES = 784, 100, 10
#: Rows of the distributed array: the issue's 2,000,000, and ``--quick``'s.
ROWS, QUICK_ROWS = 2_000_000, 200_000
#: Rows per dask block and of the in-memory runners' array.
CHUNK_ROWS, MEMORY_ROWS = 50_000, 200_000
#: How to get the regime's dependencies.
MISSING = "install the dask extra: pip install 'fastnn[dask]'"


def unavailable_reason() -> str | None:
    """None when dask, distributed and ``fastnn.dask`` import here, else why not."""
    for module in ("dask", "distributed"):
        if importlib.util.find_spec(module) is None:
            return f"{module} missing; {MISSING}"
    try:
        import fastnn.dask  # noqa: F401
    except ImportError as exc:
        return f"fastnn.dask not importable ({exc}); {MISSING}"
    return None


def fitted_model(backend: str = "numpy"):
    """A 784-100-10 classifier trained for one epoch on random float32 data, then set
    to predict on ``backend``."""
    from fastnn.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.random((2000, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch: ConvergenceWarning on purpose
        model = MLPClassifier((HIDDEN,), max_iter=1, random_state=0, backend="numpy")
        model.fit(X, y)
    return model.set_params(backend=backend)


def _in_memory(model, X, threads: int):
    from threadpoolctl import threadpool_limits

    def call():
        with threadpool_limits(threads):
            model.predict(X)

    return call


@contextlib.contextmanager
def predict_runners(rows: int, chunk: int = CHUNK_ROWS, memory_rows: int = MEMORY_ROWS,
                    backend: str = "numpy"):  # fmt: skip
    """Yields ``(calls, rows_per_call)``: the three runners as zero-argument callables
    (each warmed once: workers load the model) and the rows each call predicts.
    The cluster is closed on exit."""
    import dask.array as da
    import distributed

    import fastnn.dask as fdask

    model = fitted_model(backend)
    memory_rows = min(memory_rows, rows)
    X_memory = np.random.default_rng(1).random((memory_rows, FEATURES), dtype=np.float32)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=":0", silence_logs=logging.ERROR) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        fdask.configure_workers(client)
        X = da.random.default_rng(2).random(
            (rows, FEATURES), chunks=(min(chunk, rows), FEATURES), dtype=np.float32
        )
        X = client.persist(X)
        distributed.wait(X)

        def dask_call():
            labels = client.compute(fdask.predict(model, X)).result()
            if labels.shape != (rows,):
                raise RuntimeError(f"dask predict returned {labels.shape}, expected ({rows},)")

        calls = {"dask": dask_call, "memory-1t": _in_memory(model, X_memory, 1),
                 "memory-2t": _in_memory(model, X_memory, 2)}  # fmt: skip
        for fn in calls.values():
            fn()
        yield calls, {"dask": rows, "memory-1t": memory_rows, "memory-2t": memory_rows}
