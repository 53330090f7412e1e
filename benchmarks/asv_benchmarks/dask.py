"""Distributed prediction on Dask (``fastnn.dask.predict``) and its in-memory peers.

The workload is :mod:`benchmarks/dask_predict.py`'s: a 784-100-10 float32
``fastnn.sklearn.MLPClassifier`` predicting labels.  ``track_rows_per_second``
reports rows per second (higher is better) for ``dask`` (2 single-thread worker
processes, data persisted on them) and ``memory-1t`` / ``memory-2t`` (in-memory
``predict`` on 1 / 2 BLAS threads); ``track_dask_ratio`` the dask rate over each
in-memory one.  Skipped at commits without ``fastnn.dask`` or without the extra.
"""

import os
import sys

from ._common import QUICK, import_or_skip

#: Rows of the distributed array (the issue's 2,000,000; fewer in quick mode).
ROWS = 200_000 if QUICK else 2_000_000
MEMORY_ROWS = 50_000 if QUICK else 200_000


def _script():
    """benchmarks/dask_predict.py (one directory up from this suite)."""
    import_or_skip("fastnn.dask")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if here not in sys.path:
        sys.path.insert(0, here)
    return import_or_skip("dask_predict")


class DaskPredict:
    params = (["dask", "memory-1t", "memory-2t"],)
    param_names = ("runner",)
    unit = "rows/s"
    number = 1
    repeat = 1
    timeout = 1800

    def setup_cache(self):
        script = _script()
        return script.main(["--rows", str(ROWS), "--memory-rows", str(MEMORY_ROWS)])

    def track_rows_per_second(self, rates, runner):
        return rates[runner]


class DaskPredictRatio:
    params = (["memory-1t", "memory-2t"],)
    param_names = ("peer",)
    unit = "x"
    timeout = 1800

    def setup_cache(self):
        script = _script()
        return script.main(["--rows", str(ROWS), "--memory-rows", str(MEMORY_ROWS)])

    def track_dask_ratio(self, rates, peer):
        return rates["dask"] / rates[peer]
