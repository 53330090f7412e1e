"""Input checks shared by the op edge (``fastnn.dispatch``) and the model layer.

Every check raises an error that names the argument and what was wrong with it
(shape, dtype, range, NaN, unknown name).  Nothing here computes results.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_name(kind: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"unknown {kind} {value!r}; valid choices are: {', '.join(repr(c) for c in choices)}"
        )
    return value


def float_dtype_of(name: str, A) -> np.dtype:
    dtype = np.asarray(A).dtype if not isinstance(A, np.ndarray) else A.dtype
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {dtype}")
    return dtype


def as_array(name: str, A, ndim: int, dtype: np.dtype | None = None) -> np.ndarray:
    """``A`` as a C-contiguous float array of rank ``ndim`` (copying only if needed).

    Non-contiguous and Fortran-ordered inputs are copied to C order here, at the
    edge, so kernels can index rows directly and are never silently wrong.
    """
    if not isinstance(A, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(A).__name__}")
    if A.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {A.dtype}")
    if dtype is not None and A.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {A.dtype} but the other arrays are {dtype}; "
            "all arrays of one op must share one dtype"
        )
    if A.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {A.ndim}-D array of shape {A.shape}")
    return np.ascontiguousarray(A)


def as_labels(name: str, labels, n: int, k: int) -> np.ndarray:
    """Integer class labels ``(n,)`` in ``[0, k)`` as a C-contiguous int64 array."""
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(labels).__name__}")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= k):
        bad = labels[(labels < 0) | (labels >= k)][0]
        raise ValueError(f"{name} must lie in [0, {k}) for {k} classes; found label {bad}")
    return np.ascontiguousarray(labels, dtype=np.int64)


def check_nonempty(name: str, A: np.ndarray, what: str) -> None:
    """Reject arrays with a zero-length axis where the op has no meaning for them."""
    if A.size == 0:
        raise ValueError(f"{name} has shape {A.shape}: {what}")


def check_same_shape(names_arrays) -> None:
    (n0, a0), *rest = names_arrays
    for n, a in rest:
        if a.shape != a0.shape:
            raise ValueError(f"{n} has shape {a.shape} but {n0} has shape {a0.shape}")


def check_inplace(name: str, A: np.ndarray) -> None:
    """In-place ops cannot update a copy: their state arrays must be C-contiguous."""
    if not A.flags.c_contiguous:
        raise ValueError(
            f"{name} must be C-contiguous to be updated in place "
            "(pass np.ascontiguousarray(...) and keep that array)"
        )
    if not A.flags.writeable:
        raise ValueError(f"{name} is read-only and cannot be updated in place")


def check_scalar(name: str, value, *, low=None, high=None, low_open=False, high_open=False):
    """A finite real number in the stated range, returned as a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        op = ">" if low_open else ">="
        raise ValueError(f"{name} must be {op} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        op = "<" if high_open else "<="
        raise ValueError(f"{name} must be {op} {high}, got {value}")
    return value


def check_int(name: str, value, *, low=None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value
