"""pytest-benchmark suite: fastnn's backends and its peers side by side.

Run from the repository root (they are not part of the unit-test run)::

    .venv/bin/python -m pytest benchmarks                       # tables grouped by op
    .venv/bin/python -m pytest benchmarks --benchmark-save=base # store a run
    .venv/bin/python -m pytest benchmarks --benchmark-compare   # compare with the last stored run
    .venv/bin/python -m pytest benchmarks --benchmark-disable -q   # smoke: each body once

Every test sets ``benchmark.group`` to the op (or epoch / net) and its shape, so
pytest-benchmark's default ``--benchmark-group-by=group`` prints one table per
op and shape with one row per backend or peer (``--benchmark-group-by=param:backend``
regroups by backend instead).  ``FASTNN_BENCH_QUICK=1`` selects a reduced grid.
Each body is warmed up (JIT compile, autotune) before ``benchmark(...)``.
"""

import os

import numpy as np
import pytest

from fastnn.tools.bench import runner as bench

QUICK = os.environ.get("FASTNN_BENCH_QUICK", "") not in ("", "0")


def build_or_skip(build):
    """Run a workload builder; a runner that cannot run here is skipped, not failed."""
    try:
        return build()
    except bench.Unavailable as exc:
        pytest.skip(str(exc))


def warm(call, times: int = 1):
    """Call ``call`` untimed (JIT compile, autotune, first allocation) before measuring."""
    for _ in range(times):
        call()
    return call


@pytest.fixture(scope="session")
def fashion_mnist():
    """``(X, y)`` float32 Fashion-MNIST training set (a 2,048-sample slice in quick mode)."""
    X, y, _source = bench.training_data(2048 if QUICK else None, np.float32)
    return X, y
