"""``fastnn bench``'s verdicts, tables and HTML page, on made-up measurements.

No timing happens here: cases are filled with hand-picked numbers, so every
ratio and verdict below is computed by hand.
"""

from __future__ import annotations

import json

import pytest

from fastnn.tools.bench import estimators, report, runner, summary, workloads
from fastnn.tools.bench.text import format_report


def _case(regime, name, times, params=None, flops=None, info=None):
    """A case whose runners took ``times[runner] = (median, min, max)`` seconds."""
    case = runner.Case(regime, name, params or {}, flops)
    case.record({r: {"median": m, "min": lo, "max": hi} for r, (m, lo, hi) in times.items()})
    case.info.update(info or {})
    return case


def _targets(case):
    return {t["label"]: t for t in runner.evaluate_targets(case)}


def test_auto_target_uses_the_faster_backend_and_flags_noise():
    # auto 0.33 vs best (numba 0.30): 1.1 > 1.05 -> FAIL; auto's fastest 0.29 against
    # numba's slowest 0.31 gives 0.935 <= 1.05: within the spread, i.e. noise.
    case = _case("epoch", "sgd-b256", {
        "numba": (0.30, 0.29, 0.31), "numpy": (0.50, 0.49, 0.52), "auto": (0.33, 0.29, 0.36),
    })  # fmt: skip
    t = _targets(case)["auto <= 1.05x best backend"]
    assert t["ratio"] == pytest.approx(0.33 / 0.30)
    assert t["status"] == "FAIL" and t["noise"]
    assert summary.status_label(t) == "FAIL (noise)"
    # a clear miss: auto's fastest sample is still 1.5x numba's slowest
    case = _case("epoch", "sgd-b256", {"numba": (0.30, 0.29, 0.31), "numpy": (0.5, 0.5, 0.5),
                                       "auto": (0.50, 0.47, 0.52)})  # fmt: skip
    t = _targets(case)["auto <= 1.05x best backend"]
    assert t["status"] == "FAIL" and not t["noise"]


def test_auto_that_ran_the_best_backends_code_is_noise_and_says_so():
    """auto 1.5x numba with spreads apart, but its timed batches all ran numba's
    trainer (its info): the gap is the machine's -> FAIL (noise), and the note names
    the code it ran.  Had it run numpy for some batches, the miss stands."""
    times = {"numba": (0.30, 0.29, 0.31), "numpy": (0.5, 0.5, 0.5), "auto": (0.45, 0.44, 0.46)}
    case = _case("epoch", "adam-b32", times, info={"auto": {"trained": {"numba": 1875}}})
    t = _targets(case)["auto <= 1.05x best backend"]
    assert t["status"] == "FAIL" and t["noise"] and t["same_code"]
    assert "timed batches on numba 100%" in summary.notes_text(case.to_json(), "auto")
    case = _case("epoch", "adam-b32", times,
                 info={"auto": {"trained": {"numba": 1500, "numpy": 375}}})  # fmt: skip
    t = _targets(case)["auto <= 1.05x best backend"]
    assert t["status"] == "FAIL" and not t["noise"] and not t["same_code"]
    assert "numba 80%, numpy 20%" in summary.notes_text(case.to_json(), "auto")


def test_contention_target_and_missing_runner():
    case = _case("contention", "sgd-b256 hog", {"numba-1t": (0.28, 0.27, 0.29),
                                                "numba": (0.30, 0.29, 0.33)})  # fmt: skip
    (t,) = runner.evaluate_targets(case)
    assert t["ratio"] == pytest.approx(0.30 / 0.28) and t["status"] == "PASS"
    case.status["torch"] = "n/a: PyTorch not installed"
    del case.seconds["numba-1t"]
    case.status["numba-1t"] = "n/a: gone"
    (t,) = runner.evaluate_targets(case)
    assert t["status"].startswith("n/a (numba-1t")


def _run_data(with_ops=True):
    cases = [
        _case("epoch", "sgd-b256", {"numba": (0.30, 0.29, 0.31), "numpy": (0.5, 0.49, 0.52),
              "auto": (0.31, 0.30, 0.33), "numpy-loop": (0.40, 0.39, 0.42),
              "torch": (0.46, 0.45, 0.50), "gemm-floor": (0.25, 0.25, 0.25)},
              {"samples": 60000}, 4.9e10),
        _case("tiny", "xor-2-8-1", {"numba": (1e-6, 9e-7, 1.1e-6), "numpy": (3e-5, 3e-5, 3e-5)}),
        _case("contention", "sgd-b256 hog", {"numba-1t": (0.28, 0.27, 0.29),
                                             "numba": (0.60, 0.55, 0.70)}),
        # numba 0.28 / sklearn 0.46 = 0.61 > 0.2, and 0.27 / 0.5 = 0.54 still > 0.2: FAIL
        _case("sklearn", "digits-h64", {"numba": (0.28, 0.27, 0.29), "numpy": (0.5, 0.5, 0.6),
              "sklearn": (0.46, 0.4, 0.5), "gemm-floor": (0.01, 0.01, 0.01)},
              {"epochs": 200}, 1e9,
              {"numba": {"score": 0.9733, "n_iter": 200},
               "sklearn": {"score": 0.97, "n_iter": 200}}),
        # seconds per row: dask 2e-7 (5M rows/s) vs 1 thread 4e-7 (0.5 <= 1/1.7) and
        # 2 threads 2.2e-7 (0.91 <= 1/0.85): both PASS
        _case("dask", "predict", {"dask": (2e-7, 1.9e-7, 2.1e-7), "memory-1t": (4e-7, 4e-7, 4e-7),
              "memory-2t": (2.2e-7, 2.2e-7, 2.3e-7)}, {"unit": "row"}),
    ]  # fmt: skip
    if with_ops:
        for n in (32, 256):
            p = {"op": "dense_forward", "name": "relu", "shape": [n, 16, 16], "dtype": "float32"}
            times = {"python": (1e-4, 1e-4, 1e-4), "numpy": (1e-5, 9e-6, 1.2e-5),
                     "numba": (8e-6, 7e-6, 9e-6), "auto": (8.2e-6, 7e-6, 9e-6)}  # fmt: skip
            name = f"dense_forward[relu] {n}x16->16 float32"
            cases.append(_case("ops", name, times, p, 2.0 * n * 256))
    machine = {"cpu": "Test CPU", "cores": 2, "usable_cores": 2, "platform": "test",
               "backends": ["python", "numpy", "numba"], "blas": [], "loadavg": "0.10, 0, 0",
               "versions": {"fastnn": "0", "numpy": "2"}}  # fmt: skip
    return {"format": 2, "created": "2025-01-01T00:00:00+00:00", "quick": True,
            "machine": machine, "gemm": {"float32": 1e11, "float64": 5e10},
            "cases": [c.to_json() for c in cases]}  # fmt: skip


def test_text_report_leads_with_verdicts_and_shows_spread():
    text = format_report(_run_data())
    head, _, rest = text.partition("== summary: targets per regime ==")
    assert rest, text
    verdicts = dict(line.split()[:2] for line in rest.splitlines()[1:5])
    # contention: 0.60 / 0.28 = 2.1 > 1.15 even from 0.55 / 0.29: a real FAIL
    verdicts = dict(line.split()[:2] for line in rest.splitlines()[1:6])
    assert verdicts == {"epoch": "FAIL", "tiny": "PASS", "contention": "FAIL", "sklearn": "FAIL",
                        "dask": "PASS"}  # fmt: skip
    assert "290.00 ms - 310.00 ms" in text  # numba's epoch spread
    assert "0.75x numpy-loop" in text  # 0.30 / 0.40
    # ops times carry half their spread in percent: numpy 10 us, 9-12 us -> +-15%
    assert "10.00 us ±15%" in text
    assert text.index("== epoch") < text.index("== ops")


# --- the sklearn and dask regimes --------------------------------------------------


def test_sklearn_targets_overhead_ratio_and_gemm_floor():
    # overhead-bound: numba 0.05 s against scikit-learn 0.46 s -> 0.109 <= 0.2
    case = _case("sklearn", "digits-h64", {"numba": (0.05, 0.05, 0.06),
                                           "sklearn": (0.46, 0.45, 0.5)})  # fmt: skip
    (t,) = runner.evaluate_targets(case)
    assert t["label"].startswith("numba <= 0.2x scikit-learn")
    assert t["ratio"] == pytest.approx(0.05 / 0.46) and t["status"] == "PASS"
    # 0.1 / 0.3 = 0.33 > 0.2; the spread 0.09 / 0.31 = 0.29 does not reach it either
    case = _case("sklearn", "breast-cancer-h64", {"numba": (0.1, 0.09, 0.11),
                                                  "sklearn": (0.3, 0.29, 0.31)})  # fmt: skip
    (t,) = runner.evaluate_targets(case)
    assert t["status"] == "FAIL" and not t["noise"]
    # matrix-bound: 0.30 s against a 0.25 s floor -> 1.2 <= 1.3
    case = _case("sklearn", "50k-h100", {"numba": (0.30, 0.29, 0.31), "sklearn": (1.5, 1.4, 1.6),
                                         "gemm-floor": (0.25, 0.25, 0.25)})  # fmt: skip
    (t,) = runner.evaluate_targets(case)
    assert t["reference"] == "gemm-floor" and t["ratio"] == pytest.approx(1.2)
    assert t["status"] == "PASS"
    case.seconds["numba"] = 0.4  # 1.6x the floor
    case.spread["numba"] = [0.39, 0.41]
    assert runner.evaluate_targets(case)[0]["status"] == "FAIL"


def test_sklearn_runner_that_cannot_fit_is_na_in_its_target():
    case = _case("sklearn", "50k-h256-128", {"numpy": (1.0, 1.0, 1.1),
                                             "gemm-floor": (0.5, 0.5, 0.5)})  # fmt: skip
    case.status["numba"] = "n/a: fit raised NotImplementedError: no penalties"
    (t,) = runner.evaluate_targets(case)
    assert t["status"] == "n/a (numba: n/a: fit raised NotImplementedError: no penalties)"
    text = format_report({**_run_data(False), "cases": [case.to_json()]})
    assert "n/a: fit raised NotImplementedError: no penalties (runners: numba)" in text
    assert text.split("== summary: targets per regime ==")[1].split()[:2] == ["sklearn", "n/a"]


def test_sklearn_and_dask_tables_show_scores_rates_and_floor_ratio():
    text = format_report(_run_data(False))
    sk = text.split("== sklearn: median time per fit ==")[1].split("\n\n")[0]
    numba = next(line for line in sk.splitlines() if line.split()[1:2] == ["numba"])
    assert "0.609x sklearn" in numba  # 0.28 / 0.46
    assert "28x gemm-floor" in numba  # 0.28 / 0.01
    assert "accuracy 0.9733, 200 epochs" in numba
    assert "FAIL: numba <= 0.2x scikit-learn (>= 5x faster) (0.609)" in numba
    dk = text.split("== dask: median time per row ==")[1]
    row = next(line for line in dk.splitlines() if line.split()[1:2] == ["dask"])
    assert "5,000,000 rows/s" in row and "0.5x memory-1t" in row and "0.909x memory-2t" in row
    # targets worded as rates show the rate ratio: 4e-7 / 2e-7 = 2
    assert "PASS: dask >= 1.7x the 1-thread in-memory rate (rate 2x)" in row
    assert "PASS: dask >= 0.85x the 2-thread in-memory rate (rate 1.1x)" in row
    assert "2,500,000 rows/s" in dk  # memory-1t: 1 / 4e-7


def test_summary_rows_carry_notes_for_html():
    rows = summary.headline_rows(_run_data(False)["cases"])
    notes = {(r["regime"], r["runner"]): r["notes"] for r in rows}
    assert notes[("sklearn", "sklearn")] == "accuracy 0.9700, 200 epochs"
    assert notes[("sklearn", "numpy")] == ""  # nothing reported
    assert notes[("dask", "memory-2t")] == "4,545,455 rows/s"  # 1 / 2.2e-7
    assert notes[("epoch", "numba")] == ""


def test_dask_regime_without_the_extra_is_na_with_how_to_install(monkeypatch):
    from fastnn.tools.bench import dask_regime

    monkeypatch.setattr(dask_regime.importlib.util, "find_spec",
                        lambda name: None if name == "distributed" else object())  # fmt: skip
    assert "pip install 'fastnn[dask]'" in dask_regime.unavailable_reason()
    (case,) = runner.run_dask(quick=True, log=lambda msg: None)
    assert set(case.status) == {"dask", "memory-1t", "memory-2t"} and not case.seconds
    assert all(st.startswith("n/a: distributed missing") for st in case.status.values())
    data = {**_run_data(False), "cases": [case.to_json()]}
    assert [t["status"][:3] for t in data["cases"][0]["targets"]] == ["n/a", "n/a"]
    text = format_report(data)
    assert "install the dask extra: pip install 'fastnn[dask]'" in text
    assert "dask         n/a" in text
    assert "pip install &#x27;fastnn[dask]&#x27;" in report.render_html(data)


def test_sklearn_fastnn_runner_whose_first_fit_raises_is_unavailable(monkeypatch):
    pytest.importorskip("sklearn")
    from fastnn import sklearn as fsk

    def refuse(self, X, y):
        raise NotImplementedError("backend lacks penalties\nsecond line")

    monkeypatch.setattr(fsk.MLPClassifier, "fit", refuse)
    fit = estimators.sklearn_fit_call("numpy", "breast_cancer", (4,), 1)
    with pytest.raises(runner.Unavailable, match=r"^fit raised NotImplementedError: backend "
                       r"lacks penalties$"):  # fmt: skip
        fit()
    with pytest.raises(NotImplementedError):  # a failure after the first fit is a real error
        fit()


def test_fit_flops_by_hand():
    # 64-64-10 on 1,000 rows, 2 epochs: (4*64*64 + 6*64*10) * 1000 * 2
    expected = (4 * 64 * 64 + 6 * 64 * 10) * 1000 * 2
    assert estimators.fit_flops(1000, 64, (64,), 10, 2) == expected
    # binary: one output unit; (256, 128) hidden: the second layer has its input gradient
    assert estimators.fit_flops(10, 30, (8,), 2, 1) == (4 * 30 * 8 + 6 * 8 * 1) * 10
    expected = (4 * 40 * 256 + 6 * 256 * 128 + 6 * 128 * 3) * 50_000 * 10
    assert estimators.fit_flops(50_000, 40, (256, 128), 3, 10) == expected


@pytest.mark.parametrize("n_rows, batch", [(1347, 200), (1000, 200), (50_000, 200), (7, 200)])
def test_epoch_products_are_the_fits_products(n_rows, batch):
    """The products timed for the shape-level floor carry exactly the FLOPs of the
    GEMM floor (written independently, by hand above), batch by batch."""
    dims = (40, 256, 128, 3)
    products = workloads.epoch_products(n_rows, dims, batch)
    flops = sum(2.0 * n * n_in * n_out * count for _, n, n_in, n_out, count in products)
    assert flops == estimators.fit_flops(n_rows, 40, (256, 128), 3, 1)
    assert sum(c for k, n, i, o, c in products if k == "fwd" and i == 40) == -(-n_rows // batch)
    assert {k for k, n, i, o, c in products if i == 40} == {"fwd", "dW"}  # no dX for layer 0


def test_product_seconds_times_each_layout():
    for kind in ("fwd", "dW", "dX"):
        assert 0 < workloads.product_seconds(kind, 16, 8, 4, repeats=1) < 0.01


def test_html_without_matplotlib_says_how_to_get_plots(monkeypatch):
    monkeypatch.setattr(report, "plots_available", lambda: False)
    page = report.render_html(_run_data())
    assert "pip install &#x27;fastnn[bench]&#x27;" in page
    assert "<img" not in page
    assert page.index("id='summary'") < page.index("id='training'")
    assert "sklearn" in page  # an extra regime shows up in the summary by itself


@pytest.mark.slow
def test_html_groups_op_charts_in_collapsed_details():
    pytest.importorskip("matplotlib")
    page = report.render_html(_run_data())
    assert page.count("<details class='op'>") == 1  # one op x dtype group
    assert "<details class='op' open" not in page
    assert page.index("id='summary'") < page.index("id='training'") < page.index("id='ops'")
    # ladder + GFLOP/s; epoch, tiny, contention, sklearn, dask
    assert page.count('<img class="plot"') == 2 + 5


# --- worker processes and the CPU hog ------------------------------------------------


def test_worker_protocol_times_each_run_request(monkeypatch):
    import io

    from fastnn.tools.bench import worker

    calls = []
    monkeypatch.setattr(worker, "build", lambda spec: lambda: calls.append(spec["runner"]))
    stdout = io.StringIO()
    code = worker.serve({"runner": "x", "warmup": 2}, io.StringIO("run\nrun\nquit\n"), stdout)
    assert code == 0
    lines = stdout.getvalue().splitlines()
    assert lines[0] == "ready" and len(lines) == 3
    assert all(float(x) >= 0 for x in lines[1:])
    assert calls == ["x"] * 4  # two warm-up calls, two timed

    # "info" answers with what the callable reports (a JSON object), {} when nothing
    def fit():
        calls.append("fit")

    fit.info = lambda: {"score": 0.5, "n_iter": len(calls)}
    monkeypatch.setattr(worker, "build", lambda spec: fit)
    stdout = io.StringIO()
    worker.serve({"runner": "y"}, io.StringIO("run\ninfo\nquit\n"), stdout)
    lines = stdout.getvalue().splitlines()
    assert lines[0] == "ready" and float(lines[1]) >= 0
    assert json.loads(lines[2]) == {"score": 0.5, "n_iter": 6}  # 4 + warm-up + run
    # mark_timed, when the callable has one, runs once, after the warm-up calls
    fit.mark_timed = lambda: calls.append("mark")
    worker.serve({"runner": "y", "warmup": 2}, io.StringIO("run\nquit\n"), io.StringIO())
    assert calls[6:] == ["fit", "fit", "mark", "fit"]
    monkeypatch.setattr(worker, "build", lambda spec: lambda: None)
    stdout = io.StringIO()
    worker.serve({"runner": "z"}, io.StringIO("info\n"), stdout)
    assert stdout.getvalue().splitlines()[1] == "{}"

    def unavailable(spec):
        raise runner.Unavailable("PyTorch not installed")

    monkeypatch.setattr(worker, "build", unavailable)
    stdout = io.StringIO()
    assert worker.serve({"runner": "torch"}, io.StringIO(""), stdout) == 0
    assert stdout.getvalue() == "unavailable: PyTorch not installed\n"


@pytest.mark.slow
def test_worker_process_runs_an_epoch_and_reports_unavailable_runners():
    from fastnn.tools.bench.worker import Worker

    spec = {"runner": "numpy-loop", "optimizer": "sgd", "batch_size": 64, "samples": 256}
    w = Worker(spec)
    try:
        times = [w(), w()]
    finally:
        w.close()
    assert all(t > 0 for t in times) and w.proc.returncode == 0
    with pytest.raises(runner.Unavailable, match="not available|not installed"):
        Worker(dict(spec, runner="no-such-backend"))


def test_cpu_hog_runs_and_is_stopped():
    from fastnn.tools.bench import contention

    with contention.cpu_hog(seconds=30) as proc:
        assert proc.poll() is None  # spinning
    assert proc.poll() is not None  # stopped on exit, long before its 30 s
