"""Shared helpers of the asv suite (no benchmarks here).

Only the op contract is used (``fastnn.get_ops``), so these helpers work at
every commit of the history the suite is run against.
"""

import importlib
import math
import os
import statistics
import time

import numpy as np

#: Set FASTNN_BENCH_QUICK=1 for a reduced parameter grid (smoke runs).
QUICK = os.environ.get("FASTNN_BENCH_QUICK", "") not in ("", "0")

BACKENDS = ["python", "numpy", "numba", "auto"]
DTYPES = ["float32", "float64"]

#: Dense shapes "batch x in x out": the performance issue's widths at typical batches.
DENSE_SHAPES = (
    ["32x128x128", "256x784x256"]
    if QUICK
    else ["1x16x16", "32x128x128", "256x784x256", "256x256x10", "1024x1024x1024"]
)

#: The python backend loops in the interpreter (~20-50 ns per multiply-add):
#: it is benchmarked only up to this many multiply-adds per call.
PYTHON_MAX_MACS = 600_000


def parse_shape(shape: str) -> tuple[int, ...]:
    return tuple(int(d) for d in shape.split("x"))


def get_ops(backend: str):
    """fastnn's op object for ``backend``, or NotImplementedError (asv skips) if missing."""
    import fastnn

    if backend != "auto" and backend not in fastnn.available_backends():
        raise NotImplementedError(f"backend {backend!r} not available")
    return fastnn.get_ops(backend)


def skip_python_if_large(backend: str, macs: int) -> None:
    if backend == "python" and macs > PYTHON_MAX_MACS:
        raise NotImplementedError("python backend is benchmarked at small shapes only")


def import_or_skip(*modules: str):
    """Import the first of ``modules`` that exists (a module's path at this commit,
    then its older paths, so the history spans moves) or raise NotImplementedError
    (the API is missing at this commit)."""
    errors = []
    for module in modules:
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            errors.append(f"{module}: {exc}")
    raise NotImplementedError("not available: " + "; ".join(errors))


def dense_data(dtype: str, n: int, n_in: int, n_out: int, seed: int = 0):
    """Random ``X (n, in)``, ``W (in, out)``, ``b (out,)`` and ``dY (n, out)``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / math.sqrt(n_in)).astype(dtype)
    b = (0.1 * rng.standard_normal(n_out)).astype(dtype)
    dY = rng.standard_normal((n, n_out)).astype(dtype)
    return X, W, b, dY


def op_callable(ops, op: str, dtype: str, shape: tuple[int, ...], seed: int = 0):
    """A zero-argument callable running ``op`` on random data built here.

    ``op`` is a dense op (``shape = (n, in, out)``, ReLU), a loss name
    (``softmax_cross_entropy``, ``sigmoid_cross_entropy``, ``mse``,
    ``binary_crossentropy``, ``categorical_crossentropy``; ``shape = (n, k)``) or an
    optimizer update (``sgd_update``, ``adam_update``; ``shape`` of the parameter).
    """
    rng = np.random.default_rng(seed)
    if op in ("dense_forward", "dense_backward"):
        X, W, b, dY = dense_data(dtype, *shape, seed=seed)
        if op == "dense_forward":
            return lambda: ops.dense_forward(X, W, b, "relu")
        Z = X @ W + b
        Y = np.maximum(Z, 0)
        return lambda: ops.dense_backward(dY, X, W, Z, Y, "relu")
    if op == "softmax_cross_entropy":
        Z = rng.standard_normal(shape).astype(dtype)
        labels = rng.integers(0, shape[1], shape[0])
        return lambda: ops.softmax_cross_entropy(Z, labels)
    if op == "sigmoid_cross_entropy":
        Z = rng.standard_normal(shape).astype(dtype)
        T = rng.uniform(0, 1, shape).astype(dtype)
        return lambda: ops.sigmoid_cross_entropy(Z, T)
    if op in ("mse", "binary_crossentropy", "categorical_crossentropy"):
        Y = rng.uniform(0.01, 0.99, shape).astype(dtype)
        if op == "categorical_crossentropy":
            Y /= Y.sum(axis=1, keepdims=True)
            T = np.eye(shape[1], dtype=dtype)[rng.integers(0, shape[1], shape[0])]
        else:
            T = rng.uniform(0, 1, shape).astype(dtype)
        return lambda: ops.loss(op, Y, T)
    if op in ("sgd_update", "adam_update"):
        # Tiny gradients keep the parameters bounded however many times asv repeats.
        param = rng.standard_normal(shape).astype(dtype)
        grad = (1e-6 * rng.standard_normal(shape)).astype(dtype)
        if op == "sgd_update":
            velocity = np.zeros_like(param)
            return lambda: ops.sgd_update(param, grad, velocity, 0.01, 0.9)
        m, v = np.zeros_like(param), np.zeros_like(param)
        return lambda: ops.adam_update(param, grad, m, v, 1, 1e-3, 0.9, 0.999, 1e-7)
    raise ValueError(f"unknown op {op!r}")


def alternate(calls: dict, repeats: int = 5, min_time: float = 0.01) -> dict:
    """Median seconds per call of each callable, timed round-robin in this process.

    Each callable is called once untimed (warm-up: JIT, autotune), once to choose
    a loop count reaching ``min_time`` per sample, then ``repeats`` samples are
    taken in turn (rotating the order), so a ratio of two results is measured
    under the same machine conditions.
    """
    names = list(calls)
    number = {}
    for name in names:
        calls[name]()
        t0 = time.perf_counter()
        calls[name]()
        number[name] = max(1, math.ceil(min_time / max(time.perf_counter() - t0, 1e-9)))
    samples = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            for _ in range(number[name]):
                calls[name]()
            samples[name].append((time.perf_counter() - t0) / number[name])
    return {name: statistics.median(s) for name, s in samples.items()}
