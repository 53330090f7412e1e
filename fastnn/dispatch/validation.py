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


def check_array_type(name: str, A) -> None:
    if not isinstance(A, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(A).__name__}")


def check_sequence(name: str, seq) -> None:
    if not isinstance(seq, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple, got {type(seq).__name__}")


def check_flag(name: str, value) -> bool:
    """A yes/no option: a bool, or 0/1 (as the optimizers' hyper-parameter tuples carry it)."""
    if isinstance(value, (bool, np.bool_)) or (
        isinstance(value, numbers.Real) and float(value) in (0.0, 1.0)
    ):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def check_float_dtype(name: str, dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {dtype!r}")
    return dt


#: Ranges of the optimizers' hyper-parameters, declared once: read by the op edge and
#: by the optimizer classes of the model API.  Flags (``nesterov``, ``eps_outside``)
#: are 0 or 1.
HYPER_LIMITS: dict[str, dict] = {
    "lr": {"low": 0},
    "momentum": {"low": 0, "high": 1},
    "beta1": {"low": 0, "high": 1, "high_open": True},
    "beta2": {"low": 0, "high": 1, "high_open": True},
    "eps": {"low": 0, "low_open": True},
    "rho": {"low": 0, "high": 1, "high_open": True},
    "weight_decay": {"low": 0},
}
HYPER_FLAGS: tuple[str, ...] = ("nesterov", "eps_outside")


def check_hyper(name: str, value, label: str | None = None) -> float:
    """One optimizer hyper-parameter in its declared range (``label``: the name to show)."""
    if name in HYPER_FLAGS:
        return float(check_flag(label or name, value))
    return check_scalar(label or name, value, **HYPER_LIMITS[name])


def check_hypers(**values) -> tuple[float, ...]:
    """Several hyper-parameters by contract name, in the order given."""
    return tuple(check_hyper(name, v) for name, v in values.items())


def as_weights(name: str, w, n: int, dtype: np.dtype):
    """Per-row weights ``(n,)``: finite, ``>= 0``, of ``dtype`` (None stays None)."""
    if w is None:
        return None
    check_array_type(name, w)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) (one weight per row), got {w.shape}")
    w = as_array(name, w, 1, dtype)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must be finite and >= 0; {name}[{i}] is {w[i]}")
    return w


def check_penalty_pair(name: str, pair) -> tuple[float, float]:
    """An ``(l1, l2)`` pair of finite coefficients ``>= 0``."""
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise ValueError(f"{name} must be an (l1, l2) pair, got {pair!r}")
    return (
        check_scalar(f"{name} l1", pair[0], low=0),
        check_scalar(f"{name} l2", pair[1], low=0),
    )


def check_per_layer(name: str, values, L: int, check):
    """``None``, or one entry per layer, each ``None`` or ``check(label, entry)``."""
    if values is None:
        return None
    check_sequence(name, values)
    if len(values) != L:
        raise ValueError(f"{name} must have one entry per layer ({L}), got {len(values)}")
    return [None if v is None else check(f"{name}[{l}]", v) for l, v in enumerate(values)]


def check_dropout_rate(name: str, rate) -> float:
    return check_scalar(name, rate, low=0, high=1, high_open=True)


def check_dropout(rates, L: int):
    """Per-layer dropout rates in ``[0, 1)``; the last layer's must be 0 or None."""
    rates = check_per_layer("dropout", rates, L, check_dropout_rate)
    if rates is not None and rates[-1]:
        raise ValueError(
            f"dropout of the last layer must be 0 or None, got {rates[-1]}: the loss "
            "sees the undropped prediction"
        )
    return rates


def check_trainable(flags, n_params: int):
    """One bool per parameter (``W0, b0, W1, b1, ...``), or None (all trainable)."""
    if flags is None:
        return None
    check_sequence("trainable", flags)
    if len(flags) != n_params:
        raise ValueError(
            f"trainable must have one entry per parameter (W0, b0, W1, b1, ...): "
            f"expected {n_params}, got {len(flags)}"
        )
    return [check_flag(f"trainable[{p}]", f) for p, f in enumerate(flags)]


def check_lrs(lrs, n_batches: int):
    """Per-batch learning rates: ``(n_batches,)``, finite, ``>= 0``, as float64."""
    if lrs is None:
        return None
    lrs = np.asarray(lrs)
    if lrs.shape != (n_batches,) or lrs.dtype.kind not in "fiu":
        raise ValueError(
            f"lrs must be a real array of shape ({n_batches},) (one learning rate per "
            f"batch), got shape {lrs.shape} dtype {lrs.dtype}"
        )
    lrs = np.ascontiguousarray(lrs, dtype=np.float64)
    if not (np.isfinite(lrs) & (lrs >= 0)).all():
        raise ValueError("lrs must be finite and >= 0")
    return lrs
