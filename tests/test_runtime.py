"""Thread controls: ``set_num_threads`` beyond the usable cores is clamped, with a warning."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import fastnn
from fastnn.dispatch import machine, runtime


@pytest.fixture
def restore_threads():
    saved = runtime._requested
    before = fastnn.get_num_threads()
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fastnn.set_num_threads(saved if saved is not None else before)
    runtime._requested = saved


def test_usable_cores_is_the_affinity_mask():
    assert machine.usable_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("extra", [1, 62])
def test_more_threads_than_usable_cores_are_clamped_with_a_warning(
    extra, restore_threads, monkeypatch
):
    monkeypatch.setattr(machine, "usable_cores", lambda: 1)
    with pytest.warns(RuntimeWarning, match=r"may use 1 core\(s\); using 1 threads"):
        fastnn.set_num_threads(1 + extra)
    assert fastnn.get_num_threads() == 1


def test_usable_count_is_accepted_silently(restore_threads):
    usable = machine.usable_cores()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastnn.set_num_threads(usable)
    assert fastnn.get_num_threads() == usable


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_clamp_follows_a_restricted_affinity_mask():
    """A process pinned to one core (as ``taskset -c 0`` would) gets one thread."""
    code = (
        "import os, warnings\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "import fastnn\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    fastnn.set_num_threads(8)\n"
        "print(fastnn.get_num_threads(), [str(x.message) for x in w])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    count, _, messages = out.partition(" ")
    assert count == "1"
    assert "may use 1 core(s)" in messages
