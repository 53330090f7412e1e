"""scikit-learn estimators: ``fastnn.sklearn.MLPClassifier`` against scikit-learn's.

``Fit.time_fit``: one ``fit`` (Adam, ``batch_size="auto"``, every epoch run:
``tol=0``, ``n_iter_no_change=max_iter``) on float32 input, standardized, for
fastnn's ``numba`` and ``numpy`` backends (``dtype="float32"``) and scikit-learn.
``FitSpeedup.track_fit_speedup``: scikit-learn's fit time over fastnn's (unit x,
higher is faster), the two fits timed alternately in one process.  Cases: digits
with 64 hidden units and the 50,000 x 40 ``make_classification`` problem with 100,
at fewer epochs than ``fastnn bench --regimes sklearn`` (the time per epoch is
what the history follows).  The workload is :mod:`fastnn.tools.bench.estimators`;
skipped at commits without it or without ``fastnn.sklearn``, and for a backend
that cannot train these estimators at that commit.
"""

from ._common import QUICK, alternate, import_or_skip

#: (data set, hidden layers, epochs) per case.
CASES = {
    "digits-h64": ("digits", (64,), 20 if QUICK else 100),
    "50k-h100": ("classification", (100,), 2 if QUICK else 5),
}
#: Training rows of the make_classification case (the issue's 50,000; fewer in quick mode).
ROWS = 10_000 if QUICK else 50_000


def _fit_call(runner, case):
    """The bench's fit callable, warmed once (compilation, first touch); NotImplementedError
    (asv skips) when the workload or the runner is not available at this commit."""
    estimators = import_or_skip("fastnn.tools.bench.estimators")
    import_or_skip("fastnn.sklearn")
    workloads = import_or_skip("fastnn.tools.bench.workloads")
    data, hidden, epochs = CASES[case]
    rows = ROWS if data == "classification" else None
    try:
        fit = estimators.sklearn_fit_call(runner, data, hidden, epochs, rows)
        fit()
    except workloads.Unavailable as exc:
        raise NotImplementedError(str(exc)) from exc
    return fit


class Fit:
    params = (["numba", "numpy", "sklearn"], list(CASES))
    param_names = ("runner", "case")
    number = 1
    timeout = 600

    def setup(self, runner, case):
        self.fit = _fit_call(runner, case)

    def time_fit(self, runner, case):
        self.fit()


class FitSpeedup:
    """scikit-learn's fit time divided by fastnn's, timed alternately (unit x)."""

    params = (["numba", "numpy"], list(CASES))
    param_names = ("backend", "case")
    unit = "x"
    timeout = 600

    def setup(self, backend, case):
        self.calls = {name: _fit_call(name, case) for name in (backend, "sklearn")}

    def track_fit_speedup(self, backend, case):
        t = alternate(self.calls, repeats=3, min_time=0.0)
        return t["sklearn"] / t[backend]
