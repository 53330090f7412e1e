"""Checks on user data at the model API edge (``fit``/``predict``/``evaluate``).

Error texts follow scikit-learn's, which many users already recognise:
"Expected 2D array, got 1D array instead", "Found input variables with
inconsistent numbers of samples: [n, m]", "X has N features, but Sequential is
expecting M features as input.".  Every check returns a *new* C-contiguous array
of the requested dtype (or the input itself when it already is one) and never
modifies its argument.
"""

from __future__ import annotations

import numpy as np


def as_numeric(name: str, A) -> np.ndarray:
    """``A`` as a real numeric numpy array, or a TypeError naming what it holds."""
    try:
        arr = np.asarray(A)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        kind = {"O": "objects", "U": "strings", "S": "bytes", "c": "complex numbers"}.get(
            arr.dtype.kind, f"dtype {arr.dtype}"
        )
        raise TypeError(
            f"{name} must be numeric (bool, integer or float), got an array of {kind} "
            f"(dtype {arr.dtype})"
        )
    return arr


def check_some_samples(arr: np.ndarray) -> None:
    if arr.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required."
        )


def all_finite(A: np.ndarray) -> bool:
    """Whether every element of float array ``A`` is finite.

    Screened by one sum, which needs no temporary of ``A``'s size: NaN and inf
    propagate through a sum, so a finite sum proves every element finite.  A
    non-finite sum -- a bad value, or finite values whose sum overflows -- gets the
    exact elementwise check.  Not a BLAS product (row sums would read ``A`` on BLAS's
    threads, faster): after it, those threads keep spinning on the cores for a while,
    and ``fit`` calls the trainer right after this check; the numba trainer's own
    threads would share the cores with them.
    """
    if A.size == 0:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(A, axis=None)):  # no .all(): a scalar
            return True
    return bool(np.isfinite(A).all())


def check_finite(name: str, A: np.ndarray) -> None:
    """Raise if float array ``A`` holds NaN or infinity (see :func:`all_finite`)."""
    if A.dtype.kind != "f" or all_finite(A):
        return
    if np.isnan(A).any():
        raise ValueError(f"Input {name} contains NaN.")
    raise ValueError(f"Input {name} contains infinity or a value too large for {A.dtype!r}.")


def _cast_finite(name: str, arr: np.ndarray, dtype) -> np.ndarray:
    """``arr`` as a C-contiguous array of ``dtype``, checked finite.

    Checked after the cast only: NaN and inf survive it, and a cast that overflows
    (1e300 -> float32 inf) is caught too.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(name, out)
    return out


def check_2d(name: str, x, dtype) -> np.ndarray:
    """A non-empty, finite, 2-D sample matrix ``(n_samples, n_features)`` of ``dtype``."""
    arr = as_numeric(name, x)
    if arr.ndim != 2:
        if arr.ndim == 1:
            raise ValueError(
                f"Expected 2D array, got 1D array instead ({name} has shape {arr.shape}). "
                "Reshape your data either using array.reshape(-1, 1) if your data has a "
                "single feature or array.reshape(1, -1) if it contains a single sample."
            )
        raise ValueError(
            f"Expected 2D array, got {arr.ndim}D array instead ({name} has shape "
            f"{arr.shape}); flatten each sample first, e.g. {name}.reshape(len({name}), -1)."
        )
    check_some_samples(arr)
    if arr.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    return _cast_finite(name, arr, dtype)


def check_consistent_length(x: np.ndarray, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: [{len(x)}, {len(y)}]"
        )


def check_features(x: np.ndarray, expected: int, owner: str = "Sequential") -> None:
    if x.shape[1] != expected:
        raise ValueError(
            f"X has {x.shape[1]} features, but {owner} is expecting {expected} features as input."
        )


def check_labels(name: str, y, n_classes: int) -> np.ndarray:
    """Integer class labels ``(n,)`` in ``[0, n_classes)`` as int64.

    Accepts integer or bool arrays, and float arrays holding whole numbers;
    ``(n, 1)`` columns are flattened.
    """
    arr = as_numeric(name, y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"sparse labels {name} must be a 1-D array of class indices, got shape {arr.shape}"
            + (
                " (one-hot targets go with loss='categorical_crossentropy')"
                if arr.ndim == 2
                else ""
            )
        )
    check_some_samples(arr)
    if arr.dtype.kind == "f":
        check_finite(name, arr)
        whole = np.floor(arr) == arr
        if not whole.all():
            bad = arr[~whole][0]
            raise ValueError(
                f"labels in {name} must be whole numbers (class indices), found {bad.item()}"
            )
    if arr.min() < 0:
        raise ValueError(
            f"labels in {name} must be non-negative class indices, found {arr.min().item()}"
        )
    if arr.max() >= n_classes:
        raise ValueError(
            f"label {arr.max().item()} in {name} is out of range: the output layer has "
            f"{n_classes} units, so labels must lie in [0, {n_classes})"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_targets(name: str, y, n_outputs: int, dtype) -> np.ndarray:
    """Dense targets ``(n, n_outputs)`` of ``dtype``; 1-D allowed for one output."""
    arr = as_numeric(name, y)
    if arr.ndim == 1 and n_outputs == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {arr.ndim}D array instead: {name} has shape {arr.shape} "
            f"but the output layer has {n_outputs} units, so {name} must have shape "
            f"(n_samples, {n_outputs})"
            + (
                " (for integer class labels use loss='sparse_categorical_crossentropy')"
                if arr.ndim == 1
                else ""
            )
        )
    check_some_samples(arr)
    if arr.shape[1] != n_outputs:
        raise ValueError(
            f"{name} has {arr.shape[1]} columns, but the output layer has {n_outputs} units"
        )
    return _cast_finite(name, arr, dtype)
