"""The thread governor of the multi-threaded numba trainer (kernels/numba/threads.py).

Two kinds of checks:

* the decision rule on a simulated clock: chunks cost a scripted time per batch on
  1 and 2 threads (a quiet machine, then a busy one, then quiet again), so the
  tests state what the governor must achieve (the issue's target: under contention
  no slower than 1.15x one thread; quiet, nearly all batches on 2 threads) without
  timing anything real;
* the load rule: other processes' load on our cores (a fake meter on the
  simulated machine, and the real ``/proc/stat`` meter beside a real spinning
  process) keeps the trainer on one thread without probing the parallel path;
* the numbers: a call whose chunks alternate thread counts gives bit-identical
  weights, state and losses to one call on the configured count (only the active
  thread count changes, never the slices).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastnn.kernels.numba import threads as governor_module
from fastnn.kernels.numba import train
from fastnn.kernels.numba.threads import (
    CHUNK_SECONDS,
    LOAD_MIN_S,
    MAX_INTERVAL,
    Governor,
    LoadMeter,
)

QUIET = {2: 1.0e-3, 1: 1.7e-3}  # seconds per batch: 2 threads ~1.7x faster
BUSY = {2: 3.0e-3, 1: 1.8e-3}  # a hog on one core: the barriers make 2 threads slower


class FakeMachine:
    """A clock advanced by the scripted cost of each chunk; counts batches per thread
    count.  ``others``: cores other processes keep busy, read by :meth:`meter` (0: the
    load is invisible to the meter, as on a machine without ``/proc/stat``, so the
    decision-by-timing tests see only their scripted costs)."""

    def __init__(self, costs, others=0.0):
        self.costs = costs
        self.now = 0.0
        self.others = others
        self.others_seconds = 0.0
        self.batches = {1: 0, 2: 0}

    def clock(self):
        return self.now

    def meter(self):
        return self.others_seconds

    def governor(self, enabled=True):
        return Governor(clock=self.clock, enabled=enabled, meter=self.meter)

    def run_chunk(self, j0, j1, k):
        seconds = (j1 - j0) * self.costs[k]
        self.now += seconds
        self.others_seconds += seconds * self.others
        self.batches[k] += j1 - j0


def train_calls(gov, machine, calls, batches_per_call=235):
    """``calls`` fit-like calls (an epoch of 235 batches each); returns the fake seconds."""
    t0 = machine.now
    for _ in range(calls):
        gov.run(("shape",), 2, batches_per_call, machine.run_chunk)
    return machine.now - t0


def test_quiet_machine_stays_on_all_threads():
    machine = FakeMachine(QUIET)
    gov = machine.governor()
    seconds = train_calls(gov, machine, 20)
    best = 20 * 235 * QUIET[2]
    assert gov.state()[(("shape",), 2)]["current"] == 2
    assert machine.batches[1] / (machine.batches[1] + machine.batches[2]) < 0.05
    assert seconds <= 1.03 * best


def test_busy_machine_falls_back_to_one_thread_within_the_target():
    machine = FakeMachine(QUIET)
    gov = machine.governor()
    train_calls(gov, machine, 5)
    machine.costs = BUSY
    seconds = train_calls(gov, machine, 20)
    one_thread = 20 * 235 * BUSY[1]
    assert gov.state()[(("shape",), 2)]["current"] == 1
    assert seconds <= 1.15 * one_thread


class StallingMachine(FakeMachine):
    """What a busy machine really does to the parallel path (seen in the chunk
    timings of the contention bench): most 2-thread chunks run about as fast as one
    thread, but every ``every``-th stalls ~10x (a barrier waiting a scheduler slice
    for a descheduled thread)."""

    def __init__(self, every=5):
        super().__init__({1: 3.8e-3, 2: 3.5e-3})
        self.every, self.chunks2 = every, 0

    def run_chunk(self, j0, j1, k):
        stall = 1.0
        if k == 2:
            self.chunks2 += 1
            stall = 10.0 if self.chunks2 % self.every == 0 else 1.0
        self.now += (j1 - j0) * self.costs[k] * stall
        self.batches[k] += j1 - j0


@pytest.mark.parametrize("every", [3, 5, 9])
def test_rare_long_stalls_count_against_the_parallel_path(every):
    """A short probe that misses the stalls must not bring the parallel path back for long."""
    machine = StallingMachine(every)
    gov = machine.governor()
    seconds = train_calls(gov, machine, 20)
    assert seconds <= 1.15 * 20 * 235 * machine.costs[1]


def test_returns_to_all_threads_when_the_load_goes_away():
    machine = FakeMachine(BUSY)
    gov = machine.governor()
    train_calls(gov, machine, 5)
    assert gov.state()[(("shape",), 2)]["current"] == 1
    machine.costs = QUIET
    # The longest wait before the other count is tried: MAX_INTERVAL chunks.
    chunk = int(CHUNK_SECONDS / QUIET[1])
    batches = (MAX_INTERVAL + 4) * chunk
    gov.run(("shape",), 2, batches, machine.run_chunk)
    assert gov.state()[(("shape",), 2)]["current"] == 2


def test_load_of_other_processes_keeps_one_thread_without_probing():
    """A hog the meter sees: after the first load reading, no chunk runs on 2 threads
    (each probe there risks a stall), however fast 2 threads look by their timings."""
    machine = FakeMachine(QUIET)
    gov = machine.governor()
    train_calls(gov, machine, 3)
    machine.others = 1.0
    before = machine.batches[2]
    train_calls(gov, machine, 10)
    state = gov.state()[(("shape",), 2)]
    assert state["current"] == 1 and state["others_load"] > 0.9
    # at most the chunks of the first LOAD_MIN_S (+ one) ran on 2 threads
    assert machine.batches[2] - before <= (LOAD_MIN_S / QUIET[2]) + int(CHUNK_SECONDS / QUIET[2])


def test_parallel_path_is_probed_at_once_when_the_load_goes():
    machine = FakeMachine(QUIET, others=1.0)
    gov = machine.governor()
    train_calls(gov, machine, 3)
    assert gov.state()[(("shape",), 2)]["current"] == 1
    machine.others = 0.0
    batches = int(5 * LOAD_MIN_S / QUIET[1])  # a few readings' worth of batches
    gov.run(("shape",), 2, batches, machine.run_chunk)
    assert gov.state()[(("shape",), 2)]["current"] == 2


@pytest.mark.parametrize("others", [0.1, 0.4])
def test_light_load_leaves_the_decision_to_timing(others):
    """Below BUSY_CORES the meter does not force one thread: timing decides."""
    machine = FakeMachine(QUIET, others=others)
    gov = machine.governor()
    train_calls(gov, machine, 5)
    assert gov.state()[(("shape",), 2)]["current"] == 2


def _others_beside(code: str | None, seconds: float = 0.6) -> float:
    """Other processes' load (cores) the real meter reads while this process spins
    for ``seconds``, with ``code`` running in a separate process (or nothing)."""
    import subprocess
    import sys
    import time

    meter = LoadMeter()
    proc = subprocess.Popen([sys.executable, "-c", code]) if code else None
    try:
        time.sleep(0.3 if proc else 0.0)
        t0, used0 = time.perf_counter(), meter()
        while time.perf_counter() - t0 < seconds:
            pass
        return (meter() - used0) / (time.perf_counter() - t0)
    finally:
        if proc:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not LoadMeter().available, reason="no /proc/stat (not Linux)")
def test_real_meter_sees_another_process_and_not_this_one():
    import os

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 usable cores")
    spin = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 10: pass"
    assert _others_beside(spin) > 0.6  # a spinning process: ~1 core
    assert _others_beside(None) < 0.5  # our own spinning is not the others' load


def test_disabled_runs_one_chunk_on_the_configured_count():
    machine = FakeMachine(BUSY)
    calls = []
    gov = machine.governor(enabled=False)
    gov.run(("shape",), 2, 100, lambda j0, j1, k: calls.append((j0, j1, k)))
    assert calls == [(0, 100, 2)]


def test_environment_variable_disables(monkeypatch):
    monkeypatch.setenv("FASTNN_ADAPTIVE_THREADS", "0")
    assert not Governor().enabled
    monkeypatch.setenv("FASTNN_ADAPTIVE_THREADS", "1")
    assert Governor().enabled


def test_chunks_cover_every_batch_once_in_order():
    machine = FakeMachine(QUIET)
    gov = machine.governor()
    seen = []

    def run_chunk(j0, j1, k):
        seen.append((j0, j1))
        machine.run_chunk(j0, j1, k)

    gov.run(("shape",), 2, 997, run_chunk)
    assert seen[0][0] == 0 and seen[-1][1] == 997
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(seen, seen[1:]))


class Alternating:
    """A governor stand-in: one-batch chunks on 1, 2, 1, 2, ... active threads."""

    def __init__(self):
        self.counts = []

    def run(self, key, n_threads, n_batches, run_chunk):
        for j in range(n_batches):
            k = 1 + j % n_threads
            self.counts.append(k)
            run_chunk(j, j + 1, k)


def _train(dtype, optimizer, hyper, dropout):
    from fastnn.kernels.numba import NumbaOps

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)).astype(dtype)
    y = rng.integers(0, 5, 300)
    Ws = [(0.3 * rng.standard_normal(s)).astype(dtype) for s in ((20, 16), (16, 5))]
    bs = [np.zeros(5 if l else 16, dtype) for l in range(2)]
    names = {"sgd": 1, "adam": 2}[optimizer]
    state = [tuple(np.zeros_like(p) for _ in range(names)) for W, b in zip(Ws, bs) for p in (W, b)]
    order = rng.permutation(300)
    losses, correct = NumbaOps().train_batches(
        Ws, bs, ["relu", "linear"], X, y, order, 32, "softmax_cross_entropy", optimizer, state,
        hyper, 0, dropout=[dropout, None], seed=3,
    )  # fmt: skip
    return [*Ws, *bs, *(a for s in state for a in s), losses, correct]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "optimizer, hyper, dropout",
    [("sgd", (0.1,), None), ("sgd", (0.1, 0.9), 0.2), ("adam", (0.01, 0.9, 0.999, 1e-7), None)],
    ids=["sgd-folded", "momentum-dropout", "adam"],
)
def test_alternating_thread_counts_give_identical_numbers(dtype, optimizer, hyper, dropout,
                                                          monkeypatch):  # fmt: skip
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 Numba threads to alternate")
    monkeypatch.setattr(train, "SMALL_WIDTH", 0)
    monkeypatch.setattr(train, "parallel_threads", lambda: 2)
    monkeypatch.setattr(train, "GOVERNOR", Governor(enabled=False))
    fixed = _train(dtype, optimizer, hyper, dropout)
    alternating = Alternating()
    monkeypatch.setattr(train, "GOVERNOR", alternating)
    switched = _train(dtype, optimizer, hyper, dropout)
    assert set(alternating.counts) == {1, 2}
    for a, b in zip(fixed, switched):
        np.testing.assert_array_equal(a, b)


def test_module_governor_is_the_trainers():
    assert train.GOVERNOR is governor_module.GOVERNOR
