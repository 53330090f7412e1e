"""Shared fixtures for the kernel-core tests: backends, dtypes, tolerances, data.

Backends are discovered, not listed: every name in ``fastnn.available_backends()``
is tested, so a backend (e.g. ``numba``) is picked up as soon as it imports here.
The ``python`` backend is the reference every other backend is compared with.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastnn

# Hypothesis: no per-example deadline (the first call of a JIT backend compiles, and the
# python reference is slow by design); few examples per test, since the grid of
# op x activation x backend x dtype is already large.  HYPOTHESIS_PROFILE=thorough
# runs many more when hunting a bug.
settings.register_profile(
    "fastnn",
    deadline=None,
    max_examples=20,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile("thorough", parent=settings.get_profile("fastnn"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fastnn"))

# ``auto``'s background build of the numba trainers (fastnn/dispatch/coldstart.py)
# would make the backend a test sees depend on when a background process ends: off
# for the suite (and the processes it starts); tests/test_coldstart.py turns it on.
os.environ.setdefault("FASTNN_BACKGROUND_BUILD", "0")

REFERENCE = "python"
BACKENDS: list[str] = fastnn.available_backends()
DTYPES = (np.float32, np.float64)

#: Hypothesis shapes stay small: the python reference loops in Python.
MAX_DIM = 12

# ---------------------------------------------------------------------------
# Tolerances against the python reference (which accumulates in double precision
# and rounds once at the end, so it is within half an ulp of the exact result).
#
# float64: a backend that sums in a different order (BLAS blocking, pairwise sums,
#   FMA) differs by a few ulp per term: ~1e-16 * terms relative to the sum of |terms|.
#   rtol 1e-10 / atol 1e-12 leaves a 10^4-10^5 margin over that for our O(1) data and
#   still catches any real bug (wrong index, missing term, float32 round trip: 1e-7).
# float32: unit roundoff is 6e-8; a length-12 float32 dot product of O(1) values
#   carries up to ~12 * 6e-8 = 7e-7 absolute error, transcendental functions
#   (exp, log, tanh) a few ulp.  rtol 1e-5 / atol 1e-6 covers that with margin.
#
# Longer reductions (e.g. 784 input features of Fashion-MNIST) accumulate error
# proportional to their length in the worst case; ``tolerance(dtype, terms)`` widens
# atol linearly beyond 16 terms (784 terms: float32 atol 4.9e-5).
#
# The same table serves comparisons against float64 formulas at large shapes (the
# reference is then exact to ~1e-16) and train_batches after a few updates (an update
# turns an O(u) gradient error into an O(lr * u) parameter error: no growth).
# 500 hypothesis examples per test (HYPOTHESIS_PROFILE=thorough) pass with these values.
# ---------------------------------------------------------------------------
TOLERANCES: dict[type, dict[str, float]] = {
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
    np.float32: {"rtol": 1e-5, "atol": 1e-6},
}


def tolerance(dtype, terms: int = 1) -> dict[str, float]:
    """``rtol``/``atol`` for results of ``dtype`` built from reductions of ``terms`` terms."""
    tol = dict(TOLERANCES[np.dtype(dtype).type])
    tol["atol"] *= max(1.0, terms / 16)
    return tol


def assert_close(actual, expected, dtype, terms: int = 1, err_msg: str = "") -> None:
    """Compare with the per-dtype tolerance (values) after checking shape."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{err_msg}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, err_msg=err_msg, **tolerance(dtype, terms))


def assert_output(A, dtype, shape) -> None:
    """An op's array output: the input dtype, the documented shape, C-contiguous."""
    assert isinstance(A, np.ndarray), type(A)
    assert A.dtype == np.dtype(dtype), f"dtype {A.dtype}, expected {np.dtype(dtype)}"
    assert A.shape == tuple(shape), f"shape {A.shape}, expected {tuple(shape)}"
    assert A.flags.c_contiguous, "output is not C-contiguous"


def assert_fresh(outputs, inputs) -> None:
    """Outputs are new arrays: no memory shared with the inputs or with each other
    (a caller may update one in place without corrupting another)."""
    for i, A in enumerate(outputs):
        for B in list(inputs) + list(outputs[i + 1 :]):
            assert not np.shares_memory(A, B), "an output shares memory with another array"


def assert_unchanged(inputs, originals) -> None:
    """Ops never write to their inputs (the edge passes C-contiguous user arrays through
    without copying, so an in-place kernel would corrupt the caller's data)."""
    for A, A0 in zip(inputs, originals, strict=True):
        np.testing.assert_array_equal(A, A0, err_msg="an op modified its input")


def relayout(A: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``A`` in another memory layout.

    ``"C"``: C-contiguous; ``"F"``: Fortran order; ``"strided"``: a view with steps
    into a larger buffer (neither C- nor F-contiguous for 2-D arrays with >1 row and
    column), padded with invalid values so reading outside the view would show.
    """
    if layout == "C":
        return np.ascontiguousarray(A)
    if layout == "F":
        return np.asfortranarray(A)
    if layout == "strided":
        # Floats are padded with NaN, integers (labels, indices) with -1: both invalid.
        fill = np.nan if A.dtype.kind == "f" else -1
        big = np.full(tuple(2 * s + 1 for s in A.shape), fill, dtype=A.dtype)
        view = big[tuple(slice(1, None, 2) for _ in A.shape)]
        view[...] = A
        return view
    raise AssertionError(layout)


LAYOUTS = ("C", "F", "strided")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each available backend by name (the reference included)."""
    return request.param


@pytest.fixture(params=[name for name in BACKENDS if name != REFERENCE])
def fast_backend(request) -> str:
    """Each available backend except the python reference (for sizes its loops cannot do
    in reasonable time; the reference is checked at small sizes and by hand)."""
    return request.param


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture(scope="session")
def ref():
    """The python reference ops (through the validating edge)."""
    return fastnn.get_ops(REFERENCE)


@pytest.fixture
def restore_backend():
    """Restore the process-wide default backend after a test that changes it."""
    from fastnn.dispatch import registry

    saved = (registry._default, registry._default_error)
    yield
    registry._default, registry._default_error = saved
