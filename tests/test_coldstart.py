"""``auto``'s cold start (fastnn/dispatch/coldstart.py): numba's trainers build in a
background process while numpy trains, then ``auto`` returns to its usual choice.

The suite runs with ``FASTNN_BACKGROUND_BUILD=0`` (tests/conftest.py) so no other test
starts a build; these tests turn it on.  The decision tests use a fake process; one
test runs the real build command end to end.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from test_autotune import FakeClock, FakeTrainer, _trainer_args

from fastnn.dispatch import autotune, coldstart


class FakeProc:
    """A background build that ends when told, with ``returncode``."""

    def __init__(self):
        self.returncode = None

    def poll(self):
        return self.returncode


@pytest.fixture
def building(tmp_path, monkeypatch):
    """Background build on, a fresh cache directory, and a fake launcher."""
    monkeypatch.setenv("FASTNN_BACKGROUND_BUILD", "1")
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path))
    coldstart.reset()
    launched = []

    def launch(dtype):
        proc = FakeProc()
        launched.append((dtype, proc))
        return proc, io.StringIO("numba: some compile error\n")

    monkeypatch.setattr(coldstart, "launch", launch)
    yield launched
    coldstart.reset()


def _auto(tmp_path):
    clock = FakeClock()
    FakeTrainer.last = None
    fakes = {"numba": FakeTrainer("numba", clock, 1.0), "numpy": FakeTrainer("numpy", clock, 2.0)}
    table = autotune.Table(tmp_path / "table.json")
    args = _trainer_args(rows=512)
    table.put(autotune.shape_key("train_batches", args), "numba", {"numba": 1.0, "numpy": 2.0})
    ops = autotune.AutoOps("auto", fakes["numba"], table, timer=clock, loader=fakes.get)
    return ops, fakes, args


def _used(ops, fakes, args):
    before = {n: f.calls for n, f in fakes.items()}
    ops.run_prevalidated("train_batches", *args)
    return [n for n, f in fakes.items() if f.calls > before[n]]


def test_numpy_trains_while_numba_builds_then_auto_returns_to_numba(building, tmp_path):
    ops, fakes, args = _auto(tmp_path)
    assert _used(ops, fakes, args) == ["numpy"]
    assert _used(ops, fakes, args) == ["numpy"]
    assert [d for d, _ in building] == ["float32"]  # one build, started by the first call
    building[0][1].returncode = 0
    assert _used(ops, fakes, args) == ["numba"]
    assert len(building) == 1


def test_a_stamp_means_built_no_background_process(building, tmp_path):
    coldstart.write_stamp("float32")
    ops, fakes, args = _auto(tmp_path)
    assert _used(ops, fakes, args) == ["numba"]
    assert building == []
    assert not coldstart.stamp_path("float64").exists()  # per dtype


def test_failed_build_warns_with_its_output_and_auto_uses_numba(building, tmp_path):
    ops, fakes, args = _auto(tmp_path)
    assert _used(ops, fakes, args) == ["numpy"]
    building[0][1].returncode = 1
    with pytest.warns(RuntimeWarning, match="(?s)background build .* failed .*some compile error"):
        assert _used(ops, fakes, args) == ["numba"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert _used(ops, fakes, args) == ["numba"]


def test_turned_off_auto_uses_numba_at_once(building, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_BACKGROUND_BUILD", "0")
    ops, fakes, args = _auto(tmp_path)
    assert _used(ops, fakes, args) == ["numba"]
    assert building == []


def test_without_numpy_candidate_nothing_is_redirected(building, tmp_path):
    clock = FakeClock()
    only = {"numba": FakeTrainer("numba", clock, 1.0)}
    ops = autotune.AutoOps("auto", only["numba"], autotune.Table(tmp_path / "t.json"),
                           timer=clock, loader=only.get)  # fmt: skip
    before = only["numba"].calls
    ops.run_prevalidated("train_batches", *_trainer_args(rows=512))
    assert only["numba"].calls == before + 1 and building == []


@pytest.mark.skipif(coldstart.fcntl is None, reason="flock is POSIX-only")
def test_no_second_build_while_another_process_holds_the_lock(building, tmp_path):
    """A build running elsewhere (its lock held: here through a separate open file,
    which flock treats as another holder): numpy trains and no build starts; once the
    lock is free without a stamp (that build failed), this process starts its own."""
    ops, fakes, args = _auto(tmp_path)
    path = coldstart.lock_path("float32")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as other:
        coldstart.fcntl.flock(other, coldstart.fcntl.LOCK_EX)
        assert coldstart.building_elsewhere("float32")
        assert _used(ops, fakes, args) == ["numpy"]
        assert _used(ops, fakes, args) == ["numpy"]
        assert building == []
        coldstart.fcntl.flock(other, coldstart.fcntl.LOCK_UN)
    assert not coldstart.building_elsewhere("float32")
    assert _used(ops, fakes, args) == ["numpy"]
    assert [d for d, _ in building] == ["float32"]


def test_build_under_the_lock_skips_what_another_build_stamped(tmp_path, monkeypatch):
    """The build process compiles under the lock, and not at all when the stamp
    appeared while it waited for another build."""
    from fastnn.kernels import numba as numba_backend

    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path))
    coldstart.reset()
    compiled = []

    def compile_trainers(dtype):
        compiled.append(dtype)
        assert coldstart.building_elsewhere(dtype) == (coldstart.fcntl is not None)

    monkeypatch.setattr(numba_backend, "compile_trainers", compile_trainers)
    coldstart.build("float32")
    assert compiled == [np.dtype(np.float32)]
    assert coldstart.stamp_path("float32").exists()
    coldstart.build("float32")  # stamped meanwhile: nothing compiles
    assert compiled == [np.dtype(np.float32)]
    coldstart.reset()


def test_stamp_is_keyed_by_the_fingerprint_and_the_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path))
    coldstart.reset()
    path = coldstart.stamp_path(np.float64)
    assert path.parent == tmp_path and "float64" in path.name
    from fastnn.dispatch import machine

    assert machine.machine_fingerprint() in path.name
    coldstart.reset()


pytest.importorskip("numba")


def test_real_background_build_writes_the_stamp(tmp_path, monkeypatch):
    """The real command: a process that builds the float64 trainers into Numba's
    cache (a load, when an earlier test compiled them) and stamps them."""
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path))
    coldstart.reset()
    assert coldstart.command("float64")[:3] == [sys.executable, "-m", "fastnn.dispatch.coldstart"]
    proc = subprocess.run(coldstart.command("float64"), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert coldstart.stamp_path("float64").exists()
    assert coldstart.trainers_ready("float64")
    coldstart.reset()


def test_real_launch_runs_in_the_background(tmp_path, monkeypatch):
    """``trainers_ready`` returns False at once (the build runs in another process)
    and becomes True when that process ends."""
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path))
    coldstart.reset()
    assert not coldstart.trainers_ready("float64")  # started, not waited for
    deadline = time.monotonic() + 900
    while not coldstart.trainers_ready("float64"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert coldstart.stamp_path("float64").exists()
    coldstart.reset()


def test_wait_until_ready_starts_the_build_and_returns_when_it_ends(building, monkeypatch):
    polls = []

    def sleep(seconds):  # the build ends on the third poll
        polls.append(seconds)
        if len(polls) == 3:
            building[0][1].returncode = 0

    monkeypatch.setattr(coldstart.time, "sleep", sleep)
    coldstart.wait_until_ready(np.float64, poll=0.25)
    assert [d for d, _ in building] == ["float64"] and polls == [0.25] * 3
    assert coldstart.trainers_ready(np.float64)


def test_wait_until_ready_returns_at_once_when_background_builds_are_off(building, monkeypatch):
    monkeypatch.setenv("FASTNN_BACKGROUND_BUILD", "0")
    monkeypatch.setattr(coldstart.time, "sleep", lambda s: pytest.fail("waited"))
    coldstart.wait_until_ready(np.float32)
    assert building == []


@pytest.mark.parametrize("runner", ["auto", "numba"])
def test_bench_workloads_measure_autos_steady_state(runner, monkeypatch):
    """``fastnn bench`` builds its auto runners (epoch, tiny nets) only once numba's
    trainers are built: a build in flight would time numpy in auto's place."""
    from fastnn.tools.bench import workloads

    waited = []
    monkeypatch.setattr(coldstart, "wait_until_ready", lambda dtype: waited.append(dtype))
    X = np.zeros((8, 784), np.float32)
    workloads.epoch_call(runner, X, np.zeros(8, np.int64), "sgd", 4)
    workloads.tiny_call(runner, workloads.TINY_NETS[0], steps=2)
    expected = [np.float32, np.float64] if runner == "auto" else []
    assert [np.dtype(d) for d in waited] == [np.dtype(d) for d in expected]
