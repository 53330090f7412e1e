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
