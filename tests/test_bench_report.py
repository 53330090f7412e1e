"""``fastnn bench``'s verdicts, tables and HTML page, on made-up measurements.

No timing happens here: cases are filled with hand-picked numbers, so every
ratio and verdict below is computed by hand.
"""

from __future__ import annotations

import pytest

from fastnn.tools.bench import report, runner, summary
from fastnn.tools.bench.text import format_report


def _case(regime, name, times, params=None, flops=None):
    """A case whose runners took ``times[runner] = (median, min, max)`` seconds."""
    case = runner.Case(regime, name, params or {}, flops)
    case.record({r: {"median": m, "min": lo, "max": hi} for r, (m, lo, hi) in times.items()})
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
        _case("sklearn", "digits", {"numba": (0.28, 0.27, 0.29), "sklearn": (0.46, 0.4, 0.5)}),
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
    assert verdicts == {"epoch": "FAIL", "tiny": "PASS", "contention": "FAIL", "sklearn": "n/a"}
    assert "290.00 ms - 310.00 ms" in text  # numba's epoch spread
    assert "0.75x numpy-loop" in text  # 0.30 / 0.40
    # ops times carry half their spread in percent: numpy 10 us, 9-12 us -> +-15%
    assert "10.00 us ±15%" in text
    assert text.index("== epoch") < text.index("== ops")


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
    assert page.count('<img class="plot"') == 2 + 3  # ladder + GFLOP/s; 3 training regimes


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
