"""The benchmark suites still run: each pytest-benchmark body once, the asv suite checked.

Benchmarks are not part of the unit run (they live in ``benchmarks/``); this
test keeps them from rotting by running them the cheap way, on the reduced grid
(``FASTNN_BENCH_QUICK=1``), in subprocesses started from the repository root.
No timing is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _env(tmp_path) -> dict:
    env = dict(os.environ, FASTNN_BENCH_QUICK="1", FASTNN_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("PYTEST_ADDOPTS", None)
    return env


def test_pytest_benchmarks_run_once_each(tmp_path):
    cmd = [
        sys.executable, "-m", "pytest", "benchmarks", "--benchmark-disable", "-q",
        "-p", "no:cacheprovider", "-x",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True)
    tail = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout, tail
    # every benchmark module was collected and ran something
    assert "error" not in proc.stdout.splitlines()[-1], tail


def test_asv_suite_checks(tmp_path):
    pytest.importorskip("asv")
    cmd = [sys.executable, "-m", "asv", "check", "--python=same"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "No problems found" in out, out


# --- fastnn bench's sklearn and dask regimes, at tiny sizes --------------------------


def test_sklearn_regime_runs_each_runner_in_its_process(monkeypatch):
    pytest.importorskip("sklearn")
    from fastnn.tools.bench import estimators, runner
    from fastnn.tools.bench.text import format_report

    # the digits case's name (so its target applies) at a small width and 20 epochs;
    # one BLAS thread per worker: nothing is measured, and small products on two
    # threads crawl when other processes share the cores
    tiny = estimators.SklearnCase("digits-h64", "digits", (16,), 20, 20, "overhead")
    monkeypatch.setattr(runner, "SKLEARN_CASES", (tiny,))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    (case,) = runner.run_sklearn(quick=True, gemm32=1e11, log=lambda msg: None)
    assert case.status["sklearn"] == "ok" and case.status["numpy"] == "ok"
    # numba trains these estimators once its backend has the training keywords;
    # until then its first fit raises and the runner is n/a with the reason
    assert case.status["numba"] == "ok" or case.status["numba"].startswith("n/a: fit raised")
    for r in ("sklearn", "numpy"):
        lo, hi = case.spread[r]
        assert 0 < lo <= case.seconds[r] <= hi
        assert case.info[r]["n_iter"] == 20  # every epoch ran: no early stop
        assert 0.5 < case.info[r]["score"] <= 1.0  # 10 classes: chance is 0.1
    # same hyper-parameters, same algorithm: the same accuracy up to float32 rounding
    assert abs(case.info["numpy"]["score"] - case.info["sklearn"]["score"]) <= 0.02
    # 1,347 training rows of 64 features, 10 classes, 20 epochs, over 1e11 FLOP/s
    assert case.seconds["gemm-floor"] == (4 * 64 * 16 + 6 * 16 * 10) * 1347 * 20 / 1e11
    # the same products timed at their shapes: positive, below the fits themselves
    assert 0 < case.seconds["gemm-shapes"] < case.seconds["numpy"]
    (t,) = case.to_json()["targets"]
    assert t["reference"] == "sklearn" and t["status"].split()[0] in ("PASS", "FAIL", "n/a")
    data = {"machine": runner.machine_info(), "gemm": {"float32": 1e11, "float64": 5e10},
            "cases": [case.to_json()]}  # fmt: skip
    text = format_report(data)
    assert "== sklearn: median time per fit ==" in text and "accuracy 0." in text
    assert "x gemm-shapes" in text


def test_dask_regime_runs_on_a_local_cluster():
    pytest.importorskip("distributed")
    from fastnn.tools.bench import runner

    (case,) = runner.run_dask(quick=True, log=lambda msg: None, rows=100_000)
    assert case.params["rows"] == 100_000 and case.params["memory_rows"] == 100_000
    assert set(case.seconds) == {"dask", "memory-1t", "memory-2t"}
    for r, t in case.seconds.items():
        lo, hi = case.spread[r]
        assert 0 < lo <= t <= hi < 1e-3  # seconds per row
    ratios = [t["ratio"] for t in case.to_json()["targets"]]
    assert len(ratios) == 2 and all(r > 0 for r in ratios)


def test_paired_epochs_script_pairs_worker_rounds(tmp_path):
    """``benchmarks/paired_epochs.py`` on a small epoch: every runner's samples and
    each requested pair's per-round ratio with its interval are printed."""
    cmd = [sys.executable, "benchmarks/paired_epochs.py", "--runners", "numpy,numpy-loop",
           "--samples", "512", "--rounds", "3"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "512 rows, 3 rounds" in out, out
    for runner in ("numpy", "numpy-loop"):
        assert f"\n  {runner} " in out, out
    pair = [line for line in out.splitlines() if line.startswith("  numpy/numpy-loop: ")]
    assert len(pair) == 1, out
    med, low, high = (float(x) for x in pair[0].split(": ")[1].replace("(", "").replace(")", "")
                      .replace("-", " ").split())  # fmt: skip
    assert 0 < low <= med <= high, pair
